"""The table of bad task inputs the preflight must refuse, shared by the refusal and the training tests.

Each `Case` is a task (a mapping dumped to YAML, or raw text), optional extra files, and extra
`submit` arguments. `build_cases()` returns every case; `ACCEPTED` lists tasks of the same shapes that
the preflight accepts, which must also start training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunequeue.core.paths import DATA_DIR
from tunequeue.core.spec import all_params

GOOD: dict[str, Any] = {
    "task_name": "probe",
    "model_name_or_path": "tunequeue/tiny-llama",
    "dataset": "demo_alpaca",
    "max_samples": 8,
    "num_train_epochs": 1.0,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "cutoff_len": 64,
    "logging_steps": 1,
    "save_steps": 4,
    "lora_rank": 4,
}
TINY_CONFIG = json.loads((DATA_DIR / "tiny-llama" / "config.json").read_text(encoding="utf-8"))


@dataclass
class Case:
    """One bad input: the task (mapping or raw text), files to create first, extra submit arguments."""

    id: str
    task: dict[str, Any] | str | bytes = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    suffix: str = ".yaml"

    def write(self, folder: Path) -> Path:
        """Create the case's files in ``folder`` and return the task file's path."""
        if self.setup is not None:
            self.setup(folder)
        path = folder / f"task{self.suffix}"
        task = self.task
        if isinstance(task, dict):
            text = yaml.safe_dump(_expand(task, folder), sort_keys=False, allow_unicode=True)
            path.write_text(text, encoding="utf-8")
        elif isinstance(task, bytes):
            path.write_bytes(task)
        else:
            path.write_text(task.replace("@GOOD@", _good_yaml()), encoding="utf-8")
        return path


def _expand(task: dict[str, Any], folder: Path) -> dict[str, Any]:
    return {k: (v.replace("@DIR@", str(folder)) if isinstance(v, str) else v) for k, v in task.items()}


def _good_yaml() -> str:
    return yaml.safe_dump(GOOD, sort_keys=False)


def good(**changes: Any) -> dict[str, Any]:
    """GOOD with ``changes`` applied (a value of None removes the key)."""
    out = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _numeric_keys(kinds: tuple[str, ...]) -> list[str]:
    return [info.key for info in all_params() if info.kind in kinds and info.editable]


# ----- dataset and model fixtures ------------------------------------------------------------------


def dataset_dir(info: Any, files: dict[str, bytes | str] | None = None) -> Callable[[Path], None]:
    """A setup writing ``data/dataset_info.json`` (a dict, or raw bytes/text) and data files."""

    def setup(folder: Path) -> None:
        data = folder / "data"
        data.mkdir(exist_ok=True)
        raw = info if isinstance(info, (bytes, str)) else json.dumps(info)
        (data / "dataset_info.json").write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
        for name, content in (files or {}).items():
            target = data / name
            target.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    return setup


def model_dir(config: Any, *, write: bool = True) -> Callable[[Path], None]:
    """A setup writing ``model/config.json`` (a dict or raw text; nothing with ``write=False``)."""

    def setup(folder: Path) -> None:
        model = folder / "model"
        model.mkdir(exist_ok=True)
        if write:
            text = config if isinstance(config, str) else json.dumps(config)
            (model / "config.json").write_text(text, encoding="utf-8")

    return setup


ROWS = '[{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]'


def build_cases() -> list[Case]:
    """Every bad input, at least 200, covering each class the preflight refuses."""
    cases: list[Case] = []
    add = cases.append

    # Values: booleans where numbers belong, NaN/±inf, integers beyond any real range.
    for key in _numeric_keys(("int", "float", "number")):
        add(Case(f"bool-as-number-{key}", good(**{key: True})))
    for key in _numeric_keys(("float", "number")):
        add(Case(f"nan-{key}", good(**{key: math.nan})))
        add(Case(f"inf-{key}", good(**{key: math.inf})))
    for key in _numeric_keys(("int",)):
        add(Case(f"huge-int-{key}", good(**{key: 10**20})))
    add(Case("neg-inf-weight-decay", good(weight_decay=-math.inf)))
    add(Case("nan-in-extra", good(extra={"adam_beta1": math.nan})))
    add(Case("huge-epochs", good(num_train_epochs=10**12)))
    add(Case("huge-epochs-float", good(num_train_epochs=1e12)))
    add(Case("huge-batch", good(per_device_train_batch_size=10**6)))
    add(Case("huge-accumulation", good(gradient_accumulation_steps=10**6)))
    add(Case("huge-seed", good(seed=2**40)))
    add(Case("huge-seed-in-extra", good(extra={"x": 10**30})))

    # Structure of the YAML/JSON itself.
    add(Case("duplicate-key", "task_name: a\ntask_name: b\n" + "model_name_or_path: tunequeue/tiny-llama\n"))
    add(Case("duplicate-key-late", "@GOOD@" + "lora_rank: 8\n"))
    add(Case("int-key", "@GOOD@" + "1: x\n"))
    add(Case("bool-key", "@GOOD@" + "yes: x\n"))
    add(Case("null-key", "@GOOD@" + "null: x\n"))
    add(Case("list-key", "@GOOD@" + "? [a, b]\n: x\n"))
    add(Case("mapping-key", "@GOOD@" + "? {a: 1}\n: x\n"))
    add(Case("nested-value", good(lora_rank={"a": 1})))
    add(Case("list-value", good(learning_rate=[1e-4])))
    add(Case("nested-extra-key", "@GOOD@" + "extra:\n  1: 2\n"))
    add(Case("alias-bomb", _alias_bomb()))
    add(Case("deep-yaml", "@GOOD@" + "extra: " + "[" * 200 + "]" * 200 + "\n"))
    add(Case("very-deep-yaml", "@GOOD@" + "extra: " + "[" * 50000 + "]" * 50000 + "\n"))
    add(Case("deep-json", '{"a": ' + "[" * 100000 + "]" * 100000 + "}", suffix=".json"))
    add(Case("json-duplicate", json.dumps(GOOD)[:-1] + ', "task_name": "x"}', suffix=".json"))
    add(Case("json-nan", json.dumps(GOOD)[:-1] + ', "weight_decay": NaN}', suffix=".json"))
    add(Case("json-infinity", json.dumps(GOOD)[:-1] + ', "learning_rate": Infinity}', suffix=".json"))
    add(Case("nul-byte-yaml", "@GOOD@" + "template: a\x00b\n"))
    add(Case("nul-byte-json", json.dumps(good(template="a\u0000b")), suffix=".json"))
    add(Case("huge-string-value", good(template="x" * 200_000)))
    add(Case("huge-string-name", good(task_name="a" * 100_000)))
    add(Case("huge-file", "@GOOD@" + "# " + "x" * (5 * 1024 * 1024) + "\n"))
    add(Case("not-utf8-task", b"task_name: \xff\xfe\n"))
    add(Case("empty-file", ""))
    add(Case("top-level-list", "- a\n- b\n"))
    add(Case("top-level-scalar", "hello\n"))
    add(Case("bad-yaml-syntax", "task_name: [a\n"))
    add(Case("bad-json-syntax", "{", suffix=".json"))
    add(Case("unknown-key", good(learnin_rate=1e-4)))
    add(Case("tab-indented", "task_name: a\n\tmodel: b\n"))

    # Names and the dataset list.
    add(Case("dataset-commas", good(dataset=",,,")))
    add(Case("dataset-blank-commas", good(dataset=" , , ")))
    add(Case("dataset-empty", good(dataset="")))
    add(Case("dataset-missing", good(dataset=None)))
    add(Case("dataset-unknown", good(dataset="demo_alpacca")))
    add(Case("dataset-number", good(dataset=5)))
    add(Case("name-empty", good(task_name="")))
    add(Case("name-upper", good(task_name="Bad Name")))
    add(Case("name-slash", good(task_name="../x")))
    add(Case("namespace-bad", good(namespace="a/b")))
    add(Case("cli-name-empty", good(), args=["--name", ""]))
    add(Case("cli-name-spaces", good(), args=["--name", "   "]))
    add(Case("cli-name-bad", good(), args=["--name", "Bad Name!"]))

    # Models.
    add(Case("model-missing-abs", good(model_name_or_path="/nonexistent/model")))
    add(Case("model-missing-rel", good(model_name_or_path="./no-model-here")))
    add(Case("model-missing-home", good(model_name_or_path="~/no-model-here-xyz")))
    add(Case("model-missing-parent", good(model_name_or_path="../no-model-here")))
    add(Case("model-no-config", good(model_name_or_path="@DIR@/model"), setup=model_dir({}, write=False)))
    add(
        Case(
            "model-zero-heads",
            good(model_name_or_path="@DIR@/model"),
            setup=model_dir({**TINY_CONFIG, "num_attention_heads": 0}),
        )
    )
    add(
        Case(
            "model-zero-layers",
            good(model_name_or_path="@DIR@/model"),
            setup=model_dir({**TINY_CONFIG, "num_hidden_layers": 0}),
        )
    )
    add(
        Case(
            "model-negative-layers",
            good(model_name_or_path="@DIR@/model"),
            setup=model_dir({**TINY_CONFIG, "num_hidden_layers": -3}),
        )
    )
    add(
        Case(
            "model-string-heads",
            good(model_name_or_path="@DIR@/model"),
            setup=model_dir({**TINY_CONFIG, "num_attention_heads": "four"}),
        )
    )
    add(Case("model-config-not-json", good(model_name_or_path="@DIR@/model"), setup=model_dir("{nope")))
    add(Case("model-config-list", good(model_name_or_path="@DIR@/model"), setup=model_dir("[1, 2]")))
    add(
        Case(
            "model-is-file",
            good(model_name_or_path="@DIR@/model/config.txt"),
            setup=lambda d: (d / "model").mkdir() or (d / "model" / "config.txt").write_text("x"),
        )
    )
    add(
        Case(
            "model-hub-offline",
            good(model_name_or_path="no-such-org/no-such-model"),
            env={"HF_HUB_OFFLINE": "1"},
        )
    )
    add(Case("model-garbage", good(model_name_or_path="not a model at all!")))
    add(Case("model-empty", good(model_name_or_path="")))
    add(Case("model-number", good(model_name_or_path=7)))

    # Datasets and dataset_info.json.
    local = good(dataset="mine", dataset_dir="@DIR@/data")
    add(Case("info-missing", local, setup=lambda d: (d / "data").mkdir()))
    add(Case("info-dir-missing", good(dataset="mine", dataset_dir="@DIR@/nope")))
    add(Case("info-not-utf8", local, setup=dataset_dir(b'{"mine": {"file_name": "\xff.json"}}')))
    add(Case("info-not-json", local, setup=dataset_dir("{")))
    add(Case("info-list", local, setup=dataset_dir("[]")))
    add(Case("info-deep", local, setup=dataset_dir("[" * 100000 + "]" * 100000)))
    add(
        Case(
            "info-num-samples-string",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "num_samples": "10"}}, {"a.json": ROWS}),
        )
    )
    add(
        Case(
            "info-num-samples-bool",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "num_samples": True}}, {"a.json": ROWS}),
        )
    )
    add(
        Case(
            "info-num-samples-zero",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "num_samples": 0}}, {"a.json": ROWS}),
        )
    )
    add(
        Case(
            "info-ranking-string",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "ranking": "yes"}}, {"a.json": ROWS}),
        )
    )
    add(
        Case(
            "info-columns-list",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "columns": ["a"]}}, {"a.json": ROWS}),
        )
    )
    add(
        Case(
            "info-column-number",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "columns": {"prompt": 3}}}, {"a.json": ROWS}),
        )
    )
    add(Case("info-file-name-number", local, setup=dataset_dir({"mine": {"file_name": 5}})))
    add(Case("info-entry-string", local, setup=dataset_dir({"mine": "a.json"})))
    add(Case("info-unknown-field", local, setup=dataset_dir({"mine": {"file_name": "a.json", "colums": {}}})))
    add(
        Case(
            "info-bad-formatting",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "formatting": "openai"}}, {"a.json": ROWS}),
        )
    )
    add(Case("data-file-missing", local, setup=dataset_dir({"mine": {"file_name": "a.json"}})))
    add(
        Case(
            "data-file-not-utf8",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json"}}, {"a.json": b'[{"instruction": "\xff"}]'}),
        )
    )
    add(
        Case(
            "data-file-not-json",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json"}}, {"a.json": "[{"}),
        )
    )
    add(
        Case(
            "data-file-empty-list",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json"}}, {"a.json": "[]"}),
        )
    )
    add(
        Case(
            "data-rows-lack-output",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json"}}, {"a.json": '[{"instruction": "a"}]'}),
        )
    )
    add(
        Case(
            "data-rows-lack-mapped",
            local,
            setup=dataset_dir(
                {"mine": {"file_name": "a.json", "columns": {"prompt": "q", "response": "a"}}},
                {"a.json": ROWS},
            ),
        )
    )
    add(
        Case(
            "data-rows-not-objects",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json"}}, {"a.json": "[1, 2]"}),
        )
    )
    add(
        Case(
            "data-jsonl-lacks-column",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.jsonl"}}, {"a.jsonl": '{"instruction": "a"}\n'}),
        )
    )
    add(
        Case(
            "data-csv-lacks-column",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.csv"}}, {"a.csv": "instruction,answer\na,b\n"}),
        )
    )
    add(
        Case(
            "data-sharegpt-lacks-conversations",
            local,
            setup=dataset_dir({"mine": {"file_name": "a.json", "formatting": "sharegpt"}}, {"a.json": ROWS}),
        )
    )
    add(Case("stage-dpo-plain-data", good(stage="dpo")))
    add(Case("stage-kto-no-tag", good(stage="kto")))
    add(Case("stage-rm-plain-data", good(stage="rm")))
    add(Case("stage-sft-ranking-data", good(dataset="demo_dpo")))

    # What launch needs.
    add(Case("template-unknown", good(template="llama33")))
    add(Case("template-typo", good(template="qwenn")))
    add(Case("template-garbage", good(template="%%%")))
    add(Case("quant-hqq", good(quantization_bit=4, quantization_method="hqq")))
    add(Case("quant-eetq", good(quantization_bit=8, quantization_method="eetq")))
    add(Case("quant-bits-bad", good(quantization_bit=3)))
    add(Case("booster-unsloth", good(booster="unsloth")))
    add(Case("use-unsloth", good(use_unsloth=True)))
    add(Case("booster-liger", good(booster="liger_kernel")))
    add(Case("enable-liger", good(enable_liger_kernel=True)))
    add(Case("booster-flashattn2", good(booster="flashattn2", compute_type="bf16")))
    add(Case("flash-attn-fa2", good(flash_attn="fa2")))
    add(
        Case(
            "export-gptq",
            good(
                do_train=False,
                dataset=None,
                export_dir="@DIR@/out",
                export_quantization_bit=4,
                export_quantization_dataset="demo_alpaca",
            ),
        )
    )
    for tracker in ("tensorboard", "wandb", "mlflow", "swanlab", "comet_ml", "clearml", "neptune"):
        add(Case(f"report-to-{tracker}", good(report_to=tracker)))
    add(Case("pref-loss-kto-pair", good(stage="dpo", dataset="demo_dpo", pref_loss="kto_pair")))
    add(Case("allow-cpu-false", good(allow_cpu=False)))
    add(Case("nnodes-local", good(nnodes=2)))
    add(Case("gpu-count-huge", good(gpu_count=65)))
    add(Case("lora-only-on-full", good(finetuning_type="full", use_dora=True)))

    # Command-line values.
    for value in ("100000000000000000000", "-1", "65", "9999"):
        add(Case(f"cli-gpus-{value}", good(), args=["--gpus", value]))
    for value in ("100000000000000000000", "-100000000000000000000", "2000000"):
        add(Case(f"cli-priority-{value}", good(), args=["--priority", value]))
    for value in ("100000000000000000000", "0", "-5", "424242"):
        add(Case(f"cli-after-{value}", good(), args=["--after", value]))
    for value in ("-1", "0", "nan", "inf", "100000"):
        add(Case(f"cli-vram-{value}", good(), args=["--vram", value, "--share"]))
    add(Case("cli-gpus-not-number", good(), args=["--gpus", "two"]))
    add(Case("sweep-huge", good(), args=["--sweep", _huge_sweep()]))
    add(
        Case("sweep-many-values", good(), args=["--sweep", "seed=" + ",".join(str(i) for i in range(100000))])
    )
    add(Case("sweep-bad-item", good(), args=["--sweep", "learning_rate"]))
    add(Case("sweep-unknown-key", good(), args=["--sweep", "learnin_rate=1,2"]))
    add(Case("sweep-name", good(), args=["--sweep", "task_name=a,b"]))
    add(Case("sweep-repeated-key", good(), args=["--sweep", "seed=1,2 seed=3"]))
    add(Case("sweep-bad-value", good(), args=["--sweep", "learning_rate=1e-4,true"]))
    add(Case("sweep-nan", good(), args=["--sweep", "weight_decay=0.0,.nan"]))
    add(Case("sweep-empty", good(), args=["--sweep", " "]))
    add(Case("preset-unknown", good(), args=["--preset", "nope/nothing"]))
    return cases


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 12):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "@GOOD@" + "extra:\n" + "\n".join("  " + line for line in lines) + "\n"


def _huge_sweep() -> str:
    values = ",".join(str(i) for i in range(10))
    keys = ["seed", "lora_rank", "lora_alpha", "save_steps", "logging_steps", "cutoff_len", "max_samples"]
    return " ".join(f"{key}={values}" for key in keys)


# Tasks of the same shapes that the preflight accepts: each must also start training.
LF_TASK = """\
model_name_or_path: tunequeue/tiny-llama
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
dataset: demo_alpaca
cutoff_len: 64
max_samples: 4
dataloader_num_workers: 0
output_dir: saves/tiny/lora/sft
logging_steps: 1
save_steps: 100
save_strategy: steps
save_only_model: false
report_to: none
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
learning_rate: 1.0e-4
num_train_epochs: 1.0
bf16: false
"""
FIREFLY_ROWS = "".join(
    json.dumps({"conversation_id": i, "conversation": [{"human": f"hi {i}", "assistant": f"hello {i}"}]})
    + "\n"
    for i in range(4)
)


def accepted_cases() -> list[Case]:
    """Variants of the refused inputs that are fine and must train on the tiny model."""
    tiny = {**GOOD, "max_samples": 4, "save_steps": 100}
    return [
        Case("accepted-plain", dict(tiny)),
        Case(
            "accepted-local-data",
            {**tiny, "dataset": "mine", "dataset_dir": "@DIR@/data"},
            setup=dataset_dir({"mine": {"file_name": "a.json", "num_samples": 4}}, {"a.json": ROWS}),
        ),
        Case(
            "accepted-local-model",
            {**tiny, "model_name_or_path": "@DIR@/model", "template": "llama3"},
            setup=_copy_tiny_model,
        ),
        Case("accepted-llamafactory-yaml", LF_TASK, setup=_copy_demo_data),
        Case(
            "accepted-firefly-json",
            json.dumps(
                {
                    "output_dir": "output/tiny-firefly",
                    "model_name_or_path": "tunequeue/tiny-llama",
                    "train_file": "./train.jsonl",
                    "train_mode": "lora",
                    "num_train_epochs": 1,
                    "per_device_train_batch_size": 2,
                    "max_seq_length": 64,
                    "logging_steps": 1,
                    "save_steps": 100,
                    "lora_rank": 4,
                    "fp16": False,
                }
            ),
            setup=lambda folder: (folder / "train.jsonl").write_text(FIREFLY_ROWS, encoding="utf-8"),
            suffix=".json",
        ),
    ]


def _copy_tiny_model(folder: Path) -> None:
    import shutil

    shutil.copytree(DATA_DIR / "tiny-llama", folder / "model")


def _copy_demo_data(folder: Path) -> None:
    import shutil

    shutil.copytree(DATA_DIR / "datasets", folder / "data")  # LLaMA-Factory's default dataset_dir
