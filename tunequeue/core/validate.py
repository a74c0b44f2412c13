"""Preflight: every check a task gets before it is queued, trained or shown as valid.

`preflight(data)` is the one check that `tunequeue validate`, `submit` (every sweep combination),
`train`, the wizard's review and the training process at launch all run, so a task that validates
is exactly a task that starts. In order:

1. the raw values (`value_problems`): booleans where numbers belong, NaN/±inf, integers beyond any
   real range, NUL bytes, an empty ``dataset`` list;
2. the keys' own rules and the cross-field rules (`tunequeue.core.rules.check_task`);
3. the model (`tunequeue.core.models`): a local path must hold a sane config.json; a hub ID outside
   the Hugging Face cache is a warning (an error under ``HF_HUB_OFFLINE=1``);
4. what launch needs: a template the engine knows, the packages that quantization methods, boosters,
   attention implementations, GPTQ export and ``report_to`` trackers import;
5. the datasets (`tunequeue.core.dataset_info`): known names that fit the stage, local files that
   exist, are UTF-8 and whose first rows carry the mapped columns; their sample count gives the total
   steps, which the step-count warnings and the wizard's review use;
6. the per-task Slurm options (`tunequeue.core.slurm_task`): only the allowed ones, no control characters.

Messages quote at most about 80 characters of a bad value.
"""

from __future__ import annotations

import codecs
import csv
import importlib.util
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.core.i18n import both, piece, text
from tunequeue.core.rules import (
    Problem,
    ValidationReport,
    check_chat_template,
    check_dataset_fits_stage,
    check_task,
    estimate_total_steps,
    local_model_dir,
    step_warnings,
)
from tunequeue.core.slurm_task import slurm_problems

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

# Whole numbers beyond this are no real count, step or seed (and overflow SQLite and torch).
MAX_INT = 2**31 - 1
# Tighter real ranges of keys whose own bounds leave them open above.
REAL_MAX = {
    "num_train_epochs": 10_000,
    "per_device_train_batch_size": 65_536,
    "per_device_eval_batch_size": 65_536,
    "gradient_accumulation_steps": 65_536,
    "seed": 2**32 - 1,
    "max_samples": 10**12,
}
MAX_COUNT_BYTES = 256 * 1024 * 1024  # files larger than this are not counted (samples stay unknown)
ROWS_CHECKED = 3
TRACKER_PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
    "swanlab": (("swanlab",), "swanlab"),
    "comet_ml": (("comet_ml",), "comet-ml"),
    "clearml": (("clearml",), "clearml"),
    "neptune": (("neptune",), "neptune"),
    "dvclive": (("dvclive",), "dvclive"),
    "trackio": (("trackio",), "trackio"),
}


@dataclass
class Preflight:
    """The validation report, the model config it was judged with and the task's training size.

    ``num_examples`` is the number of training examples of local datasets (None when unknown) and
    ``total_steps`` the optimizer steps they make (None when unknown).
    """

    report: ValidationReport
    model_config: dict | None
    num_examples: int | None = None
    total_steps: int | None = None


def short(value: Any) -> str:
    """A value as an error quotes it: repr, at most about 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


def _problem(key: str | None, en: str, zh: str | None = None) -> Problem:
    return Problem(key, en, zh or en)


# ----- 1. raw values -------------------------------------------------------------------------------


def _walk(value: Any, path: str):
    """Yield (path, leaf) for every scalar inside nested lists and mappings (no recursion)."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((f"{where}.{k}", v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))
        else:
            yield where, item


def value_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Problems of raw values that pydantic would coerce or pass: bools as numbers, NaN/inf, huge ints."""
    from tunequeue.core.spec import KEYS, param_info

    problems: list[Problem] = []
    for key, value in data.items():
        if not isinstance(key, str):
            problems.append(_problem(None, f"key {short(key)} is not text; write keys as plain names"))
            continue
        kind = param_info(key).kind if key in KEYS else None
        if kind in ("int", "float", "number") and isinstance(value, bool):
            problems.append(
                _problem(
                    key,
                    *both("validate.number_not_bool", shown=str(value).lower(), key=key),
                )
            )
            continue
        limit = REAL_MAX.get(key)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if limit is not None and is_number and math.isfinite(value) and value > limit:
            problems.append(
                _problem(
                    key,
                    *both("validate.beyond_run", key=key, value=short(value), limit=limit),
                )
            )
            continue
        for where, leaf in _walk(value, key):
            if isinstance(leaf, float) and not math.isfinite(leaf):
                problems.append(
                    _problem(
                        key,
                        *both("validate.not_finite", where=where, leaf=leaf),
                    )
                )
                break
            if isinstance(leaf, int) and not isinstance(leaf, bool) and abs(leaf) > MAX_INT:
                problems.append(
                    _problem(
                        key,
                        *both("validate.beyond_range", where=where, leaf=short(leaf), MAX_INT=MAX_INT),
                    )
                )
                break
            if isinstance(leaf, str) and "\x00" in leaf:
                problems.append(_problem(key, f"{where} contains a NUL byte; remove it"))
                break
    dataset = data.get("dataset")
    if isinstance(dataset, str) and dataset.strip() and not any(p.strip() for p in dataset.split(",")):
        problems.append(
            _problem(
                "dataset",
                *both("validate.no_dataset_names", dataset=short(dataset)),
            )
        )
    return problems


# ----- 4. what launch needs ------------------------------------------------------------------------


def engine_template_names() -> list[str]:
    """The names the training engine's template registry accepts (read from it; it imports no torch)."""
    import importlib

    registry = importlib.import_module("tunequeue.train.templates")
    return list(registry.template_names())


def _missing(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is None for module in modules)


def _needs_package(key: str, what: str, pip: str, instead: str) -> Problem:
    return _problem(
        key,
        *both("validate.needs_package", what=what, pip=pip, instead=instead),
    )


def launch_problems(spec: TaskSpec) -> list[Problem]:
    """Errors the training process would stop with at launch: unknown template, missing packages."""
    import difflib

    problems: list[Problem] = []
    if spec.template not in (None, "", "auto"):
        names = engine_template_names()
        if spec.template not in names:
            near = difflib.get_close_matches(spec.template, names, n=1, cutoff=0.0)
            hint = "validate.template_near" if near else "validate.template_auto"
            problems.append(
                _problem(
                    "template",
                    *both(
                        "validate.template_unknown",
                        template=short(spec.template),
                        hint=piece(hint, near=near[0] if near else ""),
                    ),
                )
            )
    if spec.quantization_bit is not None:
        method = spec.quantization_method
        if method == "bnb" and _missing("bitsandbytes"):
            problems.append(
                _needs_package(
                    "quantization_bit", "quantization_method bnb", "bitsandbytes", "remove quantization_bit"
                )
            )
        if method == "hqq" and _missing("hqq"):
            problems.append(
                _needs_package("quantization_method", "quantization_method hqq", "hqq", "use bnb")
            )
        if method == "eetq" and _missing("eetq"):
            problems.append(
                _needs_package("quantization_method", "quantization_method eetq", "eetq", "use bnb")
            )
    if (spec.booster == "flashattn2" or spec.flash_attn == "fa2") and _missing("flash_attn"):
        key = "booster" if spec.booster == "flashattn2" else "flash_attn"
        problems.append(
            _needs_package(key, f"{key} {getattr(spec, key)}", "flash-attn", f"set {key} to auto")
        )
    if (spec.booster == "unsloth" or spec.use_unsloth) and _missing("unsloth"):
        key = "booster" if spec.booster == "unsloth" else "use_unsloth"
        problems.append(_needs_package(key, "unsloth", "unsloth", "set booster to auto"))
    if (spec.booster == "liger_kernel" or spec.enable_liger_kernel) and _missing("liger_kernel"):
        key = "booster" if spec.booster == "liger_kernel" else "enable_liger_kernel"
        problems.append(_needs_package(key, "liger kernels", "liger-kernel", "set booster to auto"))
    gptq_missing = _missing("optimum") or _missing("gptqmodel", "auto_gptq")
    if spec.export_quantization_bit is not None and gptq_missing:
        problems.append(
            _problem(
                "export_quantization_bit",
                *both("validate.gptq_packages"),
            )
        )
    trackers = ["tensorboard", "wandb", "mlflow"] if spec.report_to == "all" else [spec.report_to]
    for tracker in trackers:
        modules, pip = TRACKER_PACKAGES.get(tracker, ((), ""))
        if modules and _missing(*modules):
            problems.append(_needs_package("report_to", f"report_to {tracker}", pip, "set report_to none"))
    if spec.stage == "dpo" and spec.pref_loss == "kto_pair":
        problems.append(
            _problem(
                "pref_loss",
                *both("validate.kto_pair"),
            )
        )
    return problems


# ----- 5. datasets ---------------------------------------------------------------------------------


def _first_rows(path: Path) -> tuple[list[Any], int | None]:
    """(first rows, number of rows or None when not counted) of a json/jsonl/csv file."""
    size = path.stat().st_size
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        head = handle.read(min(size, 1 << 20))
    codecs.getincrementaldecoder("utf-8")().decode(head, final=size <= 1 << 20)  # not UTF-8 → raises
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            records: list[Any] = list(itertools.islice(reader, ROWS_CHECKED))
            counted = len(records) + sum(1 for _ in reader) if size <= MAX_COUNT_BYTES else None
        return records, counted
    if suffix == ".json" and head.lstrip()[:1] == b"[":
        if size > MAX_COUNT_BYTES:
            return [], None
        data = json.loads(path.read_bytes().decode("utf-8"))
        return (data[:ROWS_CHECKED], len(data)) if isinstance(data, list) else ([], None)
    rows: list[Any] = []
    count = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if len(rows) < ROWS_CHECKED:
                rows.append(json.loads(line))
            count += 1
            if size > MAX_COUNT_BYTES and len(rows) >= ROWS_CHECKED:
                return rows, None
    return rows, count


def _required_columns(entry: Any, stage: str) -> list[tuple[str, str]]:
    """(role, column) pairs every row of ``entry`` must have for ``stage``."""
    if entry.formatting == "sharegpt":
        needed = ["messages"]
        if entry.ranking:
            needed += ["chosen", "rejected"]
    elif stage == "pt":
        needed = ["prompt"]
    elif entry.ranking:
        needed = ["prompt", "chosen", "rejected"]
    else:
        needed = ["prompt", "response"]
    if stage == "kto":
        needed.append("kto_tag")
    return [(role, entry.column(role)) for role in needed if entry.column(role)]


def _file_problem(entry: Any, path: Path, stage: str) -> tuple[Problem | None, int | None]:
    """(problem, row count) of a local dataset file or folder."""
    name = entry.name
    if not path.exists():
        return _problem(
            "dataset",
            f"dataset '{name}': file {path} does not exist; fix file_name in "
            "dataset_info.json or add the file",
        ), None
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    total: int | None = 0
    for file in files:
        if file.suffix.lower() not in (".json", ".jsonl", ".csv"):
            total = None  # parquet/arrow are read by the engine; not counted here
            continue
        try:
            rows, count = _first_rows(file)
        except UnicodeDecodeError as err:
            return _problem(
                "dataset", f"dataset '{name}': {file} is not UTF-8 text (byte {err.start}); save it as UTF-8"
            ), None
        except (json.JSONDecodeError, RecursionError, csv.Error):
            return _problem(
                "dataset", f"dataset '{name}': {file} is not valid {file.suffix[1:]}; fix the file"
            ), None
        except OSError as err:
            return _problem("dataset", f"dataset '{name}': cannot read {file}: {err.strerror}"), None
        if count == 0:
            return _problem("dataset", f"dataset '{name}': {file} holds no examples; add some"), None
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                return _problem(
                    "dataset",
                    f"dataset '{name}': row {number} of {file} is not an object; "
                    "write one JSON object per example",
                ), None
            for role, column in _required_columns(entry, stage):
                if column not in row:
                    return _problem(
                        "dataset",
                        f"dataset '{name}': row {number} of {file} has no column '{column}' ({role}); "
                        f"map the right column under columns in dataset_info.json",
                    ), None
        total = None if total is None or count is None else total + count
    return None, total


def dataset_problems(spec: TaskSpec) -> tuple[list[Problem], int | None]:
    """(problems, training examples or None) of the task's datasets: names, stage fit, files, rows."""
    from tunequeue.core.dataset_info import dataset_entries

    if spec is None or not spec.dataset:
        return [], None
    try:
        entries = dataset_entries(spec.dataset, spec.dataset_dir)
    except UserError as err:
        return [Problem("dataset", err.message, err.message)], None
    problems = check_dataset_fits_stage(spec.stage, entries)
    if problems:
        return problems, None
    total: int | None = 0
    for entry in entries.values():
        if entry.path is None:
            total = None
            continue
        problem, count = _file_problem(entry, entry.path, spec.stage)
        if problem is not None:
            return [problem], None
        if count is not None:
            limits = [x for x in (spec.max_samples, entry.num_samples) if x]
            count = min([count, *limits])
        total = None if total is None or count is None else total + count
    return [], total


# ----- the whole preflight -------------------------------------------------------------------------


def read_local_model_config(model: Any) -> dict | None:
    """The model's config.json when it is a readable local (or cached) model; None otherwise."""
    from tunequeue.core.models import model_problems

    return model_problems(model)[2]


def preflight(
    data: Mapping[str, Any], *, host_gpus: list | None = None, multi_node: bool = False
) -> Preflight:
    """Check a task mapping against its keys' rules, the files it names and what launch needs.

    ``host_gpus`` (this machine's GPUs, [] when it has none, None when unknown) enables the precision
    and GPU-count rules; ``multi_node`` allows nnodes > 1 (the Slurm backend). Errors leave
    ``report.spec`` None.
    """
    from tunequeue.core.models import model_problems

    raw = value_problems(data)
    if raw:
        bad = {p.key for p in raw}
        report = check_task({k: v for k, v in data.items() if k not in bad and isinstance(k, str)})
        report.errors[:0] = raw
        report.spec = None
        return Preflight(report, None)
    model_errors, model_warnings, model_config = model_problems(data.get("model_name_or_path"))
    report = check_task(data, model_config=model_config, host_gpus=host_gpus, multi_node=multi_node)
    report.errors.extend(slurm_problems(data))
    if "model_name_or_path" in data and not report.errors_for("model_name_or_path"):
        report.errors.extend(Problem("model_name_or_path", m, m) for m in model_errors)
        report.warnings.extend(Problem("model_name_or_path", m, m) for m in model_warnings)
    spec = report.spec
    num_examples = total_steps = None
    if spec is not None:
        report.warnings.extend(check_chat_template(spec.template, local_model_dir(spec.model_name_or_path)))
        report.errors.extend(launch_problems(spec))
        problems, num_examples = dataset_problems(spec)
        report.errors.extend(problems)
        if num_examples is not None and spec.do_train:
            total_steps = estimate_total_steps(num_examples, spec)
            report.warnings.extend(step_warnings(spec, total_steps))
    if report.errors:
        report.spec = None
    return Preflight(report, model_config, num_examples, total_steps)


def first_error(checked: Preflight, source: str, lang: str = "en") -> UserError:
    """The `UserError` a command raises for a refused task: the first error, and how many more."""
    errors = checked.report.errors
    more = len(errors) - 1
    tail = f" (and {more} more; see `tunequeue validate {source}`)" if more else ""
    return UserError(f"{source}: {errors[0].message(lang)}{tail}")


def steps_line(checked: Preflight, *, on_gpu: bool, lang: str = "en") -> str | None:
    """``total steps: 150 (1,200 examples), about 12 min on GPU`` for a task whose data size is known."""
    if checked.total_steps is None or checked.report.spec is None:
        return None
    from tunequeue.core.estimate import estimate_train_seconds, format_duration

    where = text("validate.on_gpu" if on_gpu else "validate.on_cpu", lang)
    duration = ""
    if checked.model_config is not None:
        try:
            seconds = estimate_train_seconds(
                checked.report.spec, checked.model_config, checked.total_steps, on_gpu=on_gpu
            )
        except UserError:
            seconds = None
        if seconds is not None:
            duration = text("validate.steps_duration", lang, duration=format_duration(seconds), where=where)
    return text(
        "validate.steps_line",
        lang,
        steps=checked.total_steps,
        examples=checked.num_examples,
        duration=duration,
    )
