"""The local models a task can name: the bundled tiny Llama, the model roots, and the Hugging Face cache.

`list_models()` finds every directory with a ``config.json`` under the model roots (settings key
``model_roots`` or ``TUNEQUEUE_MODEL_ROOTS``, see `tunequeue.core.settings_file.model_roots`) and every
model snapshot in the Hugging Face hub cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else
``~/.cache/huggingface/hub``). Each `ModelChoice` says what to write into ``model_name_or_path`` (the
directory, or the hub ID for a cached hub model, which the model resolver maps to its snapshot), the
architecture and parameter count read from the files, and the chat template to suggest.

Only JSON and the safetensors header are read; no weights are loaded and no model library is imported.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunequeue.core.models import hub_cache_dir

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_SAFETENSORS_HEADER = 64 * 1024 * 1024
ROOT_DEPTH = 2  # a root may hold models directly (root/model) or by owner (root/org/model)

# model_type → template, for families whose chat format has a named template.
TEMPLATE_BY_MODEL_TYPE = {
    "qwen2": "qwen",
    "qwen2_moe": "qwen",
    "qwen3": "qwen3",
    "qwen3_moe": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3": "gemma3",
    "gemma3_text": "gemma3",
    "mistral": "mistral",
    "mixtral": "mistral",
    "mistral3": "mistral_small",
    "llama4": "llama4",
    "deepseek_v2": "deepseek",
    "deepseek_v3": "deepseek3",
    "glm4": "glm4",
    "glm4_moe": "glm4_moe",
    "chatglm": "chatglm3",
    "baichuan": "baichuan2",
    "cohere": "cohere",
    "olmo": "olmo",
    "olmo2": "olmo",
    "granite": "granite3",
    "falcon": "falcon",
    "falcon_h1": "falcon_h1",
    "exaone": "exaone",
    "internlm2": "intern2",
    "internlm3": "intern3",
    "minicpm": "cpm3",
    "gpt_oss": "gpt_oss",
    "telechat": "telechat",
    "xverse": "xverse",
    "orion": "orion",
}
# Families that share a model_type, told apart by vocabulary size.
_TEMPLATE_BY_VOCAB = {
    "llama": {128256: "llama3", 32000: "llama2"},
    "phi3": {100352: "phi4", 200064: "phi4_mini", 32064: "phi"},
}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1}


@dataclass(frozen=True)
class ModelChoice:
    """One local model: the value for ``model_name_or_path`` and what its files say about it."""

    value: str  # what the field receives: a directory, a hub ID, or tunequeue/tiny-llama
    directory: Path
    source: str  # "bundled", "root" or "hub"
    architecture: str | None
    model_type: str | None
    params: int | None
    params_exact: bool  # counted from the weights' headers, not estimated from config.json
    template: str | None  # suggested chat template (None: no suggestion)

    @property
    def params_text(self) -> str:
        """The parameter count as people say it (``1.5B``, ``≈494M``), or ``?``."""
        if self.params is None:
            return "?"
        text = format_params(self.params)
        return text if self.params_exact else "≈" + text


def format_params(count: int) -> str:
    """``1543714304`` → ``1.5B``; ``494032768`` → ``494M``; ``101440`` → ``101K``."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)


def read_json_object(path: Path, limit: int = MAX_CONFIG_BYTES) -> dict[str, Any] | None:
    """A small JSON file's top-level object, or None when it is missing, too large or not an object."""
    try:
        if path.stat().st_size > limit:
            return None
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _safetensors_params(path: Path) -> int | None:
    """Parameters stored in one .safetensors file, summed from its header's tensor shapes."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > MAX_SAFETENSORS_HEADER:
                return None
            header = json.loads(handle.read(length).decode("utf-8"))
    except (OSError, ValueError, struct.error):
        return None
    if not isinstance(header, dict):
        return None
    total = 0
    for name, tensor in header.items():
        if name == "__metadata__" or not isinstance(tensor, dict):
            continue
        count = 1
        for dim in tensor.get("shape") or []:
            count *= int(dim)
        total += count
    return total or None


def _dtype_bytes(config: Mapping[str, Any]) -> int:
    text_config = config.get("text_config")
    dtype = config.get("torch_dtype") or config.get("dtype")
    if dtype is None and isinstance(text_config, Mapping):
        dtype = text_config.get("torch_dtype") or text_config.get("dtype")
    return DTYPE_BYTES.get(str(dtype), 2)


def parameter_count(directory: Path, config: Mapping[str, Any]) -> tuple[int | None, bool]:
    """(count, exact): from a single safetensors file's header, the shard index's byte total, or the
    config's dimensions (an estimate)."""
    single = directory / "model.safetensors"
    if single.is_file():
        count = _safetensors_params(single)
        if count:
            return count, True
    index = read_json_object(directory / "model.safetensors.index.json", limit=MAX_SAFETENSORS_HEADER)
    if index is not None:
        metadata = index.get("metadata")
        total = metadata.get("total_size") if isinstance(metadata, Mapping) else None
        if isinstance(total, (int, float)) and total > 0:
            return int(total) // _dtype_bytes(config), False
    from tunequeue.core.errors import UserError
    from tunequeue.core.estimate import model_shape

    try:
        return model_shape(config).total_params(), False
    except (UserError, ValueError, TypeError, ZeroDivisionError):
        return None, False


def has_chat_template(directory: Path) -> bool:
    """Whether the tokenizer in ``directory`` brings its own chat template."""
    if (directory / "chat_template.jinja").is_file() or (directory / "chat_template.json").is_file():
        return True
    tokenizer_config = read_json_object(directory / "tokenizer_config.json")
    return bool(tokenizer_config and tokenizer_config.get("chat_template"))


def suggest_template(config: Mapping[str, Any], directory: Path | None = None) -> str | None:
    """The template to suggest for a model: its family's named template, else ``auto`` when the tokenizer
    has a chat template, else None."""
    model_type = str(config.get("model_type") or "")
    text_config = config.get("text_config")
    vocab = config.get("vocab_size")
    if vocab is None and isinstance(text_config, Mapping):
        vocab = text_config.get("vocab_size")
    by_vocab = _TEMPLATE_BY_VOCAB.get(model_type, {}).get(vocab) if isinstance(vocab, int) else None
    named = by_vocab or TEMPLATE_BY_MODEL_TYPE.get(model_type)
    if named:
        return named
    if directory is not None and has_chat_template(directory):
        return "auto"
    return None


def describe_model(directory: Path, value: str, source: str) -> ModelChoice | None:
    """The `ModelChoice` for a model directory, or None when its config.json is missing or unreadable."""
    config = read_json_object(directory / "config.json")
    if config is None:
        return None
    architectures = config.get("architectures")
    architecture = architectures[0] if isinstance(architectures, list) and architectures else None
    params, exact = parameter_count(directory, config)
    model_type = config.get("model_type")
    return ModelChoice(
        value=value,
        directory=directory,
        source=source,
        architecture=str(architecture) if architecture else None,
        model_type=str(model_type) if model_type else None,
        params=params,
        params_exact=exact,
        template=suggest_template(config, directory),
    )


def _model_dirs_under(root: Path, depth: int = ROOT_DEPTH) -> Iterable[Path]:
    """``root`` itself when it holds a model, else model directories up to ``depth`` levels below."""
    if (root / "config.json").is_file():
        yield root
        return
    if depth == 0:
        return
    try:
        children = sorted(
            child for child in root.iterdir() if child.is_dir() and not child.name.startswith(".")
        )
    except OSError:
        return
    for child in children:
        yield from _model_dirs_under(child, depth - 1)


def _snapshot_of(repo_dir: Path) -> Path | None:
    """The snapshot ``refs/main`` points to, else the newest snapshot holding a config.json."""
    snapshots = repo_dir / "snapshots"
    try:
        ref = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        ref = ""
    if ref and (snapshots / ref / "config.json").is_file():
        return snapshots / ref
    try:
        candidates = [s for s in snapshots.iterdir() if (s / "config.json").is_file()]
    except OSError:
        return None
    return max(candidates, key=lambda s: s.stat().st_mtime, default=None)


def hub_models(cache: Path | None = None) -> list[ModelChoice]:
    """Models in the Hugging Face hub cache (``models--ORG--NAME``), named by their hub ID."""
    cache = cache or hub_cache_dir()
    try:
        repos = sorted(d for d in cache.iterdir() if d.name.startswith("models--") and d.is_dir())
    except OSError:
        return []
    found = []
    for repo_dir in repos:
        repo_id = repo_dir.name[len("models--") :].replace("--", "/", 1)
        snapshot = _snapshot_of(repo_dir)
        if snapshot is not None:
            choice = describe_model(snapshot, repo_id, "hub")
            if choice is not None:
                found.append(choice)
    return found


def list_models(roots: Iterable[Path] | None = None, *, hub_cache: Path | None = None) -> list[ModelChoice]:
    """Every model a task can name here: the bundled one, those under ``roots`` (default: the
    configured model roots), then the hub cache's; a directory found twice is listed once."""
    from tunequeue.core.models import BUNDLED_MODEL_NAME, bundled_model_dir

    if roots is None:
        from tunequeue.core.settings_file import model_roots

        roots = model_roots()
    found: list[ModelChoice] = []
    seen: set[Path] = set()

    def add(choice: ModelChoice | None) -> None:
        if choice is None:
            return
        key = choice.directory.resolve()
        if key not in seen:
            seen.add(key)
            found.append(choice)

    add(describe_model(bundled_model_dir(), BUNDLED_MODEL_NAME, "bundled"))
    for root in roots:
        for directory in _model_dirs_under(Path(root).expanduser()):
            add(describe_model(directory, str(directory), "root"))
    for choice in hub_models(hub_cache):
        add(choice)
    return found


def suggested_template_for(model: str | None) -> str | None:
    """The template to suggest for the model a ``model_name_or_path`` value names (None when unknown)."""
    if not model or not model.strip():
        return None
    from tunequeue.core.errors import UserError
    from tunequeue.core.models import resolve_model

    try:
        ref = resolve_model(model.strip())
    except UserError:
        return None
    if ref.directory is None:
        return None
    config = read_json_object(ref.directory / "config.json")
    return None if config is None else suggest_template(config, ref.directory)
