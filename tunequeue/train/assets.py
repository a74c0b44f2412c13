"""Bundled assets: the tiny demo model and the demo datasets shipped inside the package.

``model_name_or_path: tunequeue/tiny-llama`` names the bundled model (resolved, like every model
reference, by `tunequeue.core.models`, the resolver preflight uses too); a ``dataset`` name resolves in the
bundled ``dataset_info.json`` when ``dataset_dir`` is unset.
"""

from __future__ import annotations

from pathlib import Path

from tunequeue.core.models import BUNDLED_MODEL_NAME, bundled_model_dir, resolve_model_path
from tunequeue.core.paths import DATA_DIR

__all__ = ["BUNDLED_MODEL_NAME", "bundled_dataset_dir", "bundled_model_dir", "resolve_model_path"]


def bundled_dataset_dir() -> Path:
    """Directory holding the demo datasets and their dataset_info.json."""
    return DATA_DIR / "datasets"
