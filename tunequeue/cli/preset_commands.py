"""CLI commands: `tunequeue preset ls | show | create | edit | cp | rm` over `tunequeue.core.presets`.

Values given with ``--set key=value`` are parsed as YAML (``--set lora_rank=16`` is an int,
``--set quantization_bit=null`` is null). Deleting asks for confirmation on a terminal and needs
``--yes`` otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

preset_app = typer.Typer(
    name="preset",
    help="Presets (parameter groups): named sets of hyperparameters a task starts from.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(preset_app, name="preset")


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` → ``{k: yaml.safe_load(v)}``; a malformed item raises UserError."""
    import yaml

    from tunequeue.core.errors import UserError

    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set '{item}' must look like key=value (e.g. --set learning_rate=2e-4).")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise UserError(f"--set {key}: cannot read the value '{text}'; quote it or fix it.") from None
        if isinstance(value, str):
            value = _number_or_text(value)
        values[key] = value
    return values


def _number_or_text(text: str) -> Any:
    # YAML 1.1 reads "2e-4" (no dot) as a string; users mean a number.
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


@preset_app.command("ls")
def list_command(
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Only this namespace."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List presets (built-ins first in namespace default), sorted by namespace and name.

    A preset file that cannot be read is left out and named in a warning line on stderr.
    """
    from tunequeue.cli.output import print_json
    from tunequeue.core.presets import list_presets

    problems: list[str] = []
    found = list_presets(namespace, problems=problems)
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    if not found:
        typer.echo(f"no presets in namespace {namespace}" if namespace else "no presets")
        return
    rows = [
        (p.ref, p.stage, p.finetuning_type, "built-in" if p.builtin else p.updated_at[:19].replace("T", " "),
         p.description)
        for p in found
    ]
    header = ("PRESET", "STAGE", "METHOD", "UPDATED", "DESCRIPTION")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:4], widths, strict=True)]
        typer.echo("  ".join(cells + [str(row[4])]).rstrip())


@preset_app.command("show")
def show_command(
    ref: str = typer.Argument(..., help="NAMESPACE/NAME"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one preset: header and values, each beside the task default it replaces."""
    from tunequeue.cli.output import print_json
    from tunequeue.core.presets import get_preset
    from tunequeue.core.spec import format_value, param_info

    preset = get_preset(ref)
    if as_json:
        print_json(preset.to_dict())
        return
    typer.echo(f"preset      {preset.ref}{'  (built-in, read-only)' if preset.builtin else ''}")
    typer.echo(f"stage       {preset.stage}")
    typer.echo(f"method      {preset.finetuning_type}")
    if preset.description:
        typer.echo(f"description {preset.description}")
    if not preset.builtin:
        typer.echo(f"created     {preset.created_at}")
        typer.echo(f"updated     {preset.updated_at}")
    typer.echo("values:")
    if not preset.values:
        typer.echo("  (none: every parameter keeps its default)")
    width = max((len(k) for k in preset.values), default=0)
    for key, value in preset.values.items():
        default = param_info(key).default
        note = f"  (default {format_value(default)})" if value != default else "  (= default)"
        typer.echo(f"  {key.ljust(width)}  {format_value(value)}{note}")


def _values_from_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, values) from a preset YAML (with ``values:``) or a plain mapping of keys."""
    from tunequeue.core.presets import preset_keys
    from tunequeue.core.yaml_files import read_yaml_mapping

    data = read_yaml_mapping(path, expected="a preset or task YAML", keys="parameter keys")
    header = {k: data[k] for k in ("stage", "finetuning_type", "description") if k in data}
    if isinstance(data.get("values"), dict):
        return header, dict(data["values"])
    allowed = preset_keys()
    from tunequeue.core.spec import KEYS

    values = {k: v for k, v in data.items() if k not in header and (k in allowed or k not in KEYS)}
    values.pop("extra", None)
    dropped = sorted(k for k in data if k in KEYS and k not in allowed and k not in header)
    if dropped:
        _print_warnings([f"task fields left out of the preset: {', '.join(dropped)}"])
    return header, values


@preset_app.command("create")
def create_command(
    ref: str = typer.Argument(..., help="NAMESPACE/NAME of the new preset."),
    from_file: Optional[Path] = typer.Option(
        None, "--from-file", "-f", help="Preset YAML, or a task YAML whose hyperparameters to keep."
    ),
    assignments: Optional[list[str]] = typer.Option(
        None, "--set", "-s", help="key=value (YAML value); repeat for more keys."
    ),
    stage: Optional[str] = typer.Option(None, "--stage", help="Training stage: pt, sft, rm, ppo, dpo, kto."),
    finetuning_type: Optional[str] = typer.Option(
        None, "--finetuning-type", help="Method: lora, freeze or full."
    ),
    description: Optional[str] = typer.Option(None, "--description", "-d", help="One line about it."),
) -> None:
    """Create a preset; parameters it leaves out keep the task defaults."""
    from tunequeue.core.presets import create_preset

    header: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if from_file is not None:
        header, values = _values_from_file(from_file)
    values.update(parse_assignments(assignments))
    preset = create_preset(
        ref,
        values=values,
        stage=stage or header.get("stage"),
        finetuning_type=finetuning_type or header.get("finetuning_type"),
        description=description if description is not None else str(header.get("description") or ""),
    )
    _print_warnings(preset.warnings)
    typer.echo(f"created preset {preset.ref}")


@preset_app.command("edit")
def edit_command(
    ref: str = typer.Argument(..., help="NAMESPACE/NAME"),
    assignments: Optional[list[str]] = typer.Option(
        None, "--set", "-s", help="key=value (YAML value); repeat for more keys."
    ),
    unset: Optional[list[str]] = typer.Option(None, "--unset", help="Drop a key (it takes its default)."),
    stage: Optional[str] = typer.Option(None, "--stage", help="New training stage."),
    finetuning_type: Optional[str] = typer.Option(None, "--finetuning-type", help="New method."),
    description: Optional[str] = typer.Option(None, "--description", "-d", help="New description."),
    rename: Optional[str] = typer.Option(None, "--rename", help="New NAME or NAMESPACE/NAME."),
) -> None:
    """Change a user preset (built-ins are read-only: copy them first)."""
    from tunequeue.core.errors import UserError
    from tunequeue.core.presets import edit_preset

    values = parse_assignments(assignments)
    if not (values or unset or stage or finetuning_type or description is not None or rename):
        raise UserError("nothing to change; give --set key=value, --unset, --description or --rename.")
    preset = edit_preset(
        ref,
        values=values,
        unset=list(unset or []),
        stage=stage,
        finetuning_type=finetuning_type,
        description=description,
        rename=rename,
    )
    _print_warnings(preset.warnings)
    typer.echo(f"updated preset {preset.ref}")


@preset_app.command("cp")
def copy_command(
    src: str = typer.Argument(..., help="Preset to copy (built-in or user)."),
    dst: str = typer.Argument(..., help="NAMESPACE/NAME of the copy."),
) -> None:
    """Copy a preset (the way to start from a built-in)."""
    from tunequeue.core.presets import copy_preset

    copy = copy_preset(src, dst)
    typer.echo(f"copied {src} to {copy.ref}")


@preset_app.command("rm")
def remove_command(
    ref: str = typer.Argument(..., help="NAMESPACE/NAME"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
) -> None:
    """Delete a user preset. This cannot be undone; tasks created from it keep their values."""
    from tunequeue.core.errors import UserError
    from tunequeue.core.presets import delete_preset, get_preset

    preset = get_preset(ref)
    if preset.builtin:
        delete_preset(ref)  # raises the read-only message
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"deleting preset {preset.ref} cannot be undone; add --yes to confirm.")
        if not typer.confirm(f"Delete preset {preset.ref}? This cannot be undone.", default=False):
            typer.echo("kept")
            raise typer.Exit(1)
    delete_preset(ref)
    typer.echo(f"deleted preset {preset.ref}")
