"""The one model resolver: what a ``model_name_or_path`` names, used by preflight and the training process.

A value is one of three things:

- ``tunequeue/tiny-llama``: the tiny Llama bundled with tunequeue;
- a local path (absolute, ``./``, ``../``, ``~``, or any existing directory): it must be a directory
  with a ``config.json`` that describes a transformer (layers and attention heads above 0);
- a Hugging Face hub ID (``org/name``): resolved to its snapshot in the local Hugging Face cache when
  it is there; otherwise it is downloaded when the job starts, which `HF_HUB_OFFLINE=1` forbids.

`resolve_model` says which; `resolve_model_path` gives the training process a directory (or the hub
ID to download); `model_problems` gives preflight its errors and warnings. Only huggingface_hub's cache
lookup is imported, never torch.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunequeue.core.errors import UserError

BUNDLED_MODEL_NAME = "tunequeue/tiny-llama"
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
MAX_CONFIG_BYTES = 16 * 1024 * 1024
_SHAPE_KEYS = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "attention heads": ("num_attention_heads", "n_head"),
}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference: its kind, the local directory (None when it must be downloaded)."""

    name: str
    kind: str  # "bundled", "local" or "hub"
    directory: Path | None

    @property
    def needs_download(self) -> bool:
        """True for a hub ID that is not in the local Hugging Face cache."""
        return self.directory is None


def bundled_model_dir() -> Path:
    """Directory of the bundled tiny Llama (weights, tokenizer, chat template)."""
    from tunequeue.core.paths import DATA_DIR

    return DATA_DIR / "tiny-llama"


def hub_offline() -> bool:
    """Whether the user forbade downloads (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set to 1)."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _shown(name: str) -> str:
    return repr(name) if len(name) <= 80 else repr(name[:77] + "...")


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", "..") or name.count("/") > 1


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub finds it (without importing it), read
    each time so that a changed environment counts."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return Path(hf_home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot directory of hub model ``repo_id`` when its config.json is cached, else None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache_dir())
    except (ValueError, OSError):
        return None
    return Path(found).parent if isinstance(found, str) else None


def resolve_model(name: Any) -> ModelRef:
    """Say what ``name`` names (see the module docstring); a path that is no model is a `UserError`."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("model_name_or_path is empty; give a local model directory or tunequeue/tiny-llama")
    if "\x00" in name:
        raise UserError("model_name_or_path contains a NUL byte; give a local model directory")
    if name == BUNDLED_MODEL_NAME:
        return ModelRef(name, "bundled", bundled_model_dir())
    path = Path(name).expanduser()
    try:
        exists = path.exists()
    except OSError:
        exists = False
    if exists or _looks_like_path(name):
        if not exists:
            raise UserError(
                f"model_name_or_path {_shown(name)} does not exist; give the directory of a local model"
            )
        if path.is_file() and path.name == "config.json":
            path = path.parent
        if not path.is_dir():
            raise UserError(
                f"model_name_or_path {_shown(name)} is not a directory; give the folder holding config.json"
            )
        if not (path / "config.json").is_file():
            raise UserError(
                f"model_name_or_path {_shown(name)} has no config.json; give a Hugging Face model directory"
            )
        return ModelRef(name, "local", path)
    if HUB_ID_PATTERN.match(name):
        return ModelRef(name, "hub", cached_snapshot(name))
    raise UserError(
        f"model_name_or_path {_shown(name)} is neither a local directory nor a hub ID (org/name); "
        "give the path of a local model directory"
    )


def resolve_model_path(name: str) -> str:
    """A directory (or, for a hub ID that may be downloaded, the ID) to load ``name`` from.

    A hub ID that is not cached while downloads are forbidden is a `UserError`.
    """
    ref = resolve_model(name)
    if ref.directory is not None:
        return str(ref.directory)
    if hub_offline():
        raise UserError(
            f"model {name} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
            "downloading it; download it first or give a local model directory"
        )
    return name


def read_config(directory: Path) -> dict[str, Any]:
    """The config.json of a model directory as a dict; unreadable or not an object is a `UserError`."""
    path = directory / "config.json"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"{path} is larger than 16 MiB; give a model's real config.json")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise UserError(f"cannot read {path} ({reason}); fix or replace the model's config.json") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object; fix or replace the model's config.json")
    return data


def check_config(config: dict[str, Any], where: str) -> None:
    """Refuse a config.json whose layer or attention-head count is present but not a positive integer."""
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    for what, keys in _SHAPE_KEYS.items():
        for key in keys:
            if key in text:
                value = text[key]
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise UserError(
                        f"{key} in {where} is {value!r:.40}, so the model has no {what}; "
                        "give a valid model's config.json"
                    )
                break


def model_problems(name: Any) -> tuple[list[str], list[str], dict | None]:
    """(errors, warnings, config.json) of a ``model_name_or_path`` for preflight."""
    try:
        ref = resolve_model(name)
    except UserError as err:
        return [err.message], [], None
    if ref.directory is None:
        if hub_offline():
            return (
                [
                    f"model {name} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
                    "downloading it; download it first or give a local model directory"
                ],
                [],
                None,
            )
        warning = f"model {name} is not in the local Hugging Face cache; it is downloaded when the job starts"
        return [], [warning], None
    try:
        config = read_config(ref.directory)
        check_config(config, str(ref.directory / "config.json"))
    except UserError as err:
        return [err.message], [], None
    return [], [], config
