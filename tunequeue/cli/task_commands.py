"""CLI commands about task files and parameters: `params` (the reference) and `validate FILE`.

Both are generated from the task model (`tunequeue.core.spec`) and its rules (`tunequeue.core.rules`);
nothing here knows a parameter by name except to print it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("params")(params_command)
    app.command("validate")(validate_command)
    app.command("import")(import_command)


# ---------------------------------------------------------------------------------------------------
# params
# ---------------------------------------------------------------------------------------------------


def params_command(
    key: Optional[str] = typer.Argument(None, help="Show one parameter in detail."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language of the help: en or zh."),
    group: Optional[str] = typer.Option(None, "--group", "-g", help="Only this group (e.g. hyper, lora)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Reference of every task parameter: type, default, bounds, recommended range and help."""
    from tunequeue.cli.output import print_json
    from tunequeue.core import spec

    language = _language(lang)
    foreign = _foreign_key(key)
    if foreign is not None:
        key, sentence = foreign
        if not as_json:
            typer.echo(f"{sentence}; use the key {key}:")
    if key is not None:
        infos = [spec.param_info(key)]
    elif group is not None:
        infos = spec.params_of_group(_group_id(group))
    else:
        infos = spec.all_params()
    if as_json:
        payload = [_param_dict(info, language) for info in infos]
        if foreign is not None:
            payload[0]["mapped_from"] = {"name": _foreign_name(foreign), "note": foreign[1]}
        print_json(payload[0] if key is not None else payload)
        return
    if key is not None:
        _print_param_detail(infos[0], language)
        return
    _print_param_list(infos, language)


def _foreign_key(key: str | None) -> tuple[str, str] | None:
    """(our key, sentence) when ``key`` is an LLaMA-Factory or Firefly name that maps onto ours."""
    from tunequeue.core import spec
    from tunequeue.core.compat import FOREIGN_KEYS

    if key is None or key in spec.KEYS:
        return None
    return FOREIGN_KEYS.get(key)


def _foreign_name(foreign: tuple[str, str]) -> str:
    from tunequeue.core.compat import FOREIGN_KEYS

    return next(name for name, value in FOREIGN_KEYS.items() if value == foreign)


def _language(lang: str | None) -> str:
    from tunequeue.core import i18n
    from tunequeue.core.errors import UserError

    if lang is not None and i18n.normalize_language(lang) is None:
        raise UserError(f"--lang must be en or zh; got '{lang}'")
    return i18n.current_language(lang)


def _group_id(name: str) -> str:
    import difflib

    from tunequeue.core import spec
    from tunequeue.core.errors import UserError

    ids = [gid for gid, _model in spec.GROUPS]
    if name in ids:
        return name
    near = difflib.get_close_matches(name, ids, n=1)
    hint = f"did you mean '{near[0]}'?" if near else "groups: " + ", ".join(ids)
    raise UserError(f"unknown group '{name}'; {hint}")


def _default_text(info: Any) -> str:
    from tunequeue.core.spec import format_value

    if info.required:
        return "required"
    return format_value(info.default)


def _param_dict(info: Any, lang: str) -> dict[str, Any]:
    return {
        "key": info.key,
        "group": info.group,
        "type": info.type_name,
        "default": None if info.required else info.default,
        "required": info.required,
        "nullable": info.nullable,
        "choices": list(info.choices),
        "bounds": info.bounds_text(lang),
        "recommended": info.recommendation(lang),
        "help": info.help(lang),
        "choices_help": {c: info.choice_help(c, lang) for c in info.choices_help},
        "tunequeue_only": info.tq,
    }


def _print_param_detail(info: Any, lang: str) -> None:
    from tunequeue.core import i18n, spec

    rows = [
        (i18n.t("label.key", lang), info.key),
        (i18n.t("label.group", lang), f"{info.group} ({spec.group_title(info.group, lang)})"),
        (
            i18n.t("label.type", lang),
            info.type_name + (f" ({i18n.t('params.tq_only', lang)})" if info.tq else ""),
        ),
        (i18n.t("label.default", lang), _default_text(info)),
        (i18n.t("label.allowed", lang), info.bounds_text(lang) or "-"),
        (i18n.t("label.recommended", lang), info.recommendation(lang) or "-"),
        (i18n.t("label.help", lang), info.help(lang)),
    ]
    width = max(_display_width(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"{_pad(label, width)}  {value}")
    for choice in info.choices:
        text = info.choice_help(choice, lang)
        if text:
            typer.echo(f"  {spec.format_value(choice):<22} {text}")


def _print_param_list(infos: list[Any], lang: str) -> None:
    from tunequeue.core import i18n, spec

    current = None
    for info in infos:
        if info.group != current:
            current = info.group
            if current != infos[0].group:
                typer.echo("")
            typer.echo(f"[{current}] {spec.group_title(current, lang)}")
        facts = [info.bounds_text(lang)]
        if info.recommendation(lang):
            facts.append(f"{i18n.t('label.recommended', lang).lower()} {info.recommendation(lang)}")
        detail = "; ".join(f for f in facts if f)
        tq = " (tq)" if info.tq else ""
        typer.echo(
            f"  {info.key}: {info.type_name} = {_default_text(info)}{tq}"
            + (f"  [{detail}]" if detail else "")
        )
        typer.echo(f"      {info.help(lang)}")


def _display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _display_width(text))


# ---------------------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------------------


def validate_command(
    file: Path = typer.Argument(..., help="Task file: our YAML, LLaMA-Factory YAML or Firefly JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language of the messages: en or zh."),
) -> None:
    """Check a task file: show the resolved task, warnings, errors and VRAM estimate; exit 2 on errors."""
    import tempfile

    language = _language(lang)
    with tempfile.TemporaryDirectory(prefix="tunequeue-validate-") as scratch:
        checked, import_warnings = preflight_file(file, dataset_home=Path(scratch))
        _print_validation(checked, import_warnings, as_json=as_json, language=language)
    if checked.report.errors:
        raise typer.Exit(2)


def preflight_file(
    path: Path, *, dataset_home: Path | None = None, queue: bool = False
) -> tuple[Any, list[str]]:
    """Read a task file and run the one preflight on it; return (Preflight, import warnings).

    ``queue`` judges it for this home's runner (a Slurm cluster's GPUs are not this machine's);
    otherwise for this machine. A Firefly train file is registered in ``dataset_home``.
    """
    from tunequeue.core.validate import preflight

    data, import_warnings = load_task_mapping(path, dataset_home)
    on_cluster = False
    if queue:
        from tunequeue.runner.backends import multi_node_allowed

        on_cluster = multi_node_allowed()
    checked = preflight(data, host_gpus=None if on_cluster else host_gpus(), multi_node=on_cluster)
    return checked, import_warnings


def _print_validation(checked: Any, import_warnings: list[str], *, as_json: bool, language: str) -> None:
    from tunequeue.cli.output import print_json
    from tunequeue.core import i18n

    report = checked.report
    estimate, estimate_reason = vram_estimate(report.spec, checked.model_config)

    if as_json:
        payload = report.to_dict(language)
        payload["import_warnings"] = import_warnings
        payload["estimate"] = estimate.to_dict() if estimate is not None else None
        payload["total_steps"] = checked.total_steps
        payload["num_examples"] = checked.num_examples
        print_json(payload)
    else:
        if report.spec is not None:
            import yaml

            typer.echo(f"# {i18n.t('validate.task', language)}")
            typer.echo(
                yaml.safe_dump(report.spec.to_yaml_dict(), allow_unicode=True, sort_keys=False).rstrip()
            )
        warnings = import_warnings + [_problem_line(p, language) for p in report.warnings]
        if warnings:
            typer.echo(f"{i18n.t('label.warnings', language)}:")
            for line in warnings:
                typer.echo(f"  - {line}")
        if report.errors:
            typer.echo(f"{i18n.t('label.errors', language)}:")
            for problem in report.errors:
                typer.echo(f"  - {_problem_line(problem, language)}")
        from tunequeue.core.validate import steps_line

        line = steps_line(checked, on_gpu=bool(host_gpus()), lang=language)
        if line is not None:
            typer.echo(line)
        if estimate is not None:
            for line in estimate.lines():
                typer.echo(line)
        elif report.spec is not None and estimate_reason:
            typer.echo(i18n.t("validate.no_estimate", language, reason=estimate_reason))
        if report.errors:
            typer.echo(i18n.t("validate.failed", language, count=len(report.errors)), err=True)
        else:
            typer.echo(i18n.t("validate.ok", language))


def _problem_line(problem: Any, lang: str) -> str:
    return problem.message(lang)


def load_task_mapping(path: Path, dataset_home: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read a task file (our YAML, LLaMA-Factory YAML or Firefly JSON) into (our keys, import warnings).

    A missing file, bad YAML/JSON (naming the line) or an unknown key raises `UserError`; a Firefly
    train file is registered in ``dataset_home`` (see `tunequeue.core.compat.load_task_file`).
    """
    from tunequeue.core.compat import load_task_file
    from tunequeue.core.errors import UserError

    if not path.is_file():
        raise UserError(f"no task file at {path}; give the path of a task YAML file")
    data, warnings = load_task_file(path, dataset_home)
    return dict(data), list(warnings)


def host_gpus() -> list | None:
    """GPUs of this machine for the precision and GPU-count rules: [] when it has none, None when unknown."""
    try:
        from tunequeue.gpus import read_gpus

        snapshot = read_gpus()
    except Exception:  # noqa: BLE001 — a broken driver must not stop validation; the runner re-checks
        return None
    if snapshot.gpus:
        return list(snapshot.gpus)
    return None if snapshot.error and not _no_gpu_can_appear(snapshot.error) else []


def _no_gpu_can_appear(error: str) -> bool:
    """Whether an NVML error means this machine has no NVIDIA driver or device at all."""
    text = error.lower()
    return "no nvidia driver found" in text or "nvidia-ml-py is not installed" in text


def vram_estimate(spec: TaskSpec, model_config: dict | None) -> tuple[Any, str | None]:
    """VRAM estimate hook for `validate`: (Estimate or None, reason it is missing)."""
    if spec is None:
        return None, None
    if model_config is None:
        return None, f"no local config.json for model '{spec.model_name_or_path}'"
    from tunequeue.core.errors import UserError
    from tunequeue.core.estimate import estimate_vram

    try:
        return estimate_vram(spec, model_config), None
    except UserError as err:
        return None, err.message


# ---------------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------------


def import_command(
    file: Path = typer.Argument(..., help="LLaMA-Factory YAML, Firefly train_args JSON, or our YAML."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    fmt: str = typer.Option("ours", "--format", help="Output format: ours (tunequeue YAML) or lf."),
) -> None:
    """Convert a task file to tunequeue YAML (or LLaMA-Factory YAML); warnings go to stderr.

    With -o, a Firefly train file is registered in a dataset_info.json next to the output and
    ``dataset_dir`` points there; without -o the YAML is printed and nothing is written.
    """
    from tunequeue.core.compat import load_task, register_datasets
    from tunequeue.core.errors import UserError
    from tunequeue.core.rules import check_task
    from tunequeue.core.task_files import dump_task_yaml

    if fmt not in ("ours", "lf"):
        raise UserError(f"--format must be ours or lf; got '{fmt}'")
    result = load_task(file)
    values = dict(result.values)
    folder = output.expanduser().resolve().parent if output else None
    if result.datasets and folder is not None:
        values["dataset_dir"] = str(folder)
    report = check_task(values)
    spec = report.raise_if_errors()
    text = dump_task_yaml(spec, lf_only=fmt == "lf")
    warnings = list(result.warnings) + [p.message() for p in report.warnings]
    if result.datasets and folder is None:
        warnings.append(
            f"dataset {', '.join(result.datasets)} is not registered anywhere; add -o TASK.yaml to register "
            "it next to the output (`tunequeue submit` and `validate` accept the Firefly file directly)"
        )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if output is None:
        typer.echo(text, nl=False)
        return
    if result.datasets:
        info = register_datasets(result.datasets, folder)
        typer.echo(f"warning: registered dataset {', '.join(result.datasets)} in {info}", err=True)
    _write_atomically(output.expanduser(), text)
    typer.echo(f"wrote {output.expanduser()}", err=True)


def _write_atomically(target: Path, text: str) -> None:
    import os

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
