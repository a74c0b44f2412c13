"""Atomic checkpoints: a checkpoint directory appears complete or not at all.

Every Trainer (transformers' and trl's, which call it through ``super()``) saves a checkpoint through
``Trainer._save_checkpoint``. `install_atomic_checkpoints` wraps it so that the checkpoint is written
into ``.partial-checkpoint-N/checkpoint-N`` next to where it belongs and renamed into place only when
every file is written (all ranks done). A save that dies half way (disk full, kill -9) leaves only the
``.partial-`` directory, which resume never looks at (`tunequeue.train.runtime.newest_checkpoint` and
transformers both match ``checkpoint-N`` only) and `remove_partial_checkpoints` deletes at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from tunequeue.core.disk_full import is_disk_full, nearly_full

PARTIAL_PREFIX = ".partial-"


def remove_partial_checkpoints(directory: Path) -> list[Path]:
    """Delete the leftovers of interrupted checkpoint saves in ``directory``; return what was removed."""
    removed = []
    if not Path(directory).is_dir():
        return removed
    for child in Path(directory).iterdir():
        if child.name.startswith(PARTIAL_PREFIX + "checkpoint-") and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def _publish(staged: Path, final: Path) -> None:
    """Rename a fully written checkpoint into place (replacing an older save of the same step)."""
    if final.exists():
        old = final.with_name(f"{PARTIAL_PREFIX}{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)
    with contextlib.suppress(OSError):
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def install_atomic_checkpoints() -> None:
    """Make ``transformers.Trainer._save_checkpoint`` write into a temporary dir and rename it at the end."""
    from transformers import Trainer
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

    original = Trainer._save_checkpoint
    if getattr(original, "_tunequeue_atomic", False):
        return

    def _save_checkpoint(self, model, trial):
        root = Path(self._get_output_dir(trial=trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = root / f"{PARTIAL_PREFIX}{name}"
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._get_output_dir = lambda trial=None: str(staging)
        try:
            original(self, model, trial)
        except Exception as err:
            # Judge before the cleanup gives the space back: torch says only "file write failed".
            full = is_disk_full(err) or nearly_full(root)
            if self.args.should_save:
                shutil.rmtree(staging, ignore_errors=True)
            if full and not is_disk_full(err):
                raise OSError(errno.ENOSPC, f"No space left on device while saving {name}") from err
            raise
        finally:
            del self._get_output_dir
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            _publish(staging / name, root / name)
            shutil.rmtree(staging, ignore_errors=True)
            best = self.state.best_model_checkpoint
            if best and str(best).startswith(str(staging)):
                self.state.best_model_checkpoint = str(root / Path(best).name)
            rotate_checkpoints(
                output_dir=str(root),
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()

    _save_checkpoint._tunequeue_atomic = True
    Trainer._save_checkpoint = _save_checkpoint
