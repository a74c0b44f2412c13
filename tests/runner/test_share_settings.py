"""GPU-sharing keys of settings.yaml's ``runner:`` block reach the scheduler; absent keys keep defaults."""

from __future__ import annotations

from tunequeue.core import paths
from tunequeue.runner.scheduler import SchedulerSettings
from tunequeue.runner.settings import load_settings


def test_without_a_settings_file_the_scheduler_gets_its_own_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    settings = load_settings().scheduler_settings()
    assert settings == SchedulerSettings(allowed_gpus=None, gpu_free_memory_mib=1024)


def test_sharing_keys_from_settings_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    paths.settings_path().write_text(
        "runner:\n  max_jobs_per_gpu: 3\n  joinable_fraction: 0.4\n"
        "  share_max_utilization_pct: 70\n  memory_headroom_fraction: 0.2\n",
        encoding="utf-8",
    )
    settings = load_settings().scheduler_settings()
    assert (
        settings.max_jobs_per_gpu,
        settings.joinable_fraction,
        settings.share_max_utilization_pct,
        settings.memory_headroom_fraction,
    ) == (3, 0.4, 70, 0.2)
