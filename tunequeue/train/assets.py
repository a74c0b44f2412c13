"""Bundled assets: the tiny demo model and the demo datasets shipped inside the package.

``model_name_or_path: tunequeue/tiny-llama`` names the bundled model; a ``dataset`` name resolves in the
bundled ``dataset_info.json`` when ``dataset_dir`` is unset. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

from tunequeue.core.errors import UserError
from tunequeue.core.paths import DATA_DIR

BUNDLED_MODEL_NAME = "tunequeue/tiny-llama"


def bundled_model_dir() -> Path:
    """Directory of the bundled tiny Llama (weights, tokenizer, chat template)."""
    return DATA_DIR / "tiny-llama"


def bundled_dataset_dir() -> Path:
    """Directory holding the demo datasets and their dataset_info.json."""
    return DATA_DIR / "datasets"


def resolve_model_path(name: str) -> str:
    """Turn a ``model_name_or_path`` value into a local directory path.

    The bundled name maps to the package's tiny model; anything else must already be a local directory,
    because models cannot be downloaded here.
    """
    if name == BUNDLED_MODEL_NAME:
        return str(bundled_model_dir())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise UserError(
            f"model_name_or_path '{name}' is not a local directory; models cannot be downloaded here — "
            "give the path of a local HF model directory"
        )
    return str(path)
