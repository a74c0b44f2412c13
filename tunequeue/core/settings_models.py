"""The pydantic models of settings.yaml: the ``runner:`` block, the ``queue:`` block and the whole file.

`RunnerEnv` and `QueueEnv` are the two blocks with environment variables (``TUNEQUEUE_<KEY>``,
``TUNEQUEUE_DB_<KEY>``) winning over the file. Imported only through `tunequeue.core.settings_file`
(which loads it on first use, so commands that never read settings do not import pydantic) and by
`tunequeue.runner.settings`, whose `RunnerSettings` extends `RunnerBlock`.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict


class RunnerBlock(BaseModel):
    """The ``runner:`` block: tick, cancel grace, GPU sampling and scheduling knobs, backend."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tick_seconds: float = Field(2.0, gt=0)
    cancel_grace_seconds: float = Field(60.0, gt=0)
    gpu_sample_seconds: float = Field(5.0, ge=0)  # 0: a stored sample every tick
    gpu_sample_keep_seconds: float = Field(7 * 24 * 3600.0, gt=0)
    train_command: Annotated[list[str] | None, NoDecode] = None
    gpu_free_memory_mib: int = Field(1024, ge=0)
    allowed_gpus: list[Annotated[int, Field(ge=0)]] | None = None
    max_wait_seconds: float = Field(3600.0, ge=0)
    max_cpu_jobs: int = Field(2, ge=0)
    # GPU sharing (see runner.scheduler): jobs per GPU, who may be joined, calm-GPU rule, headroom.
    max_jobs_per_gpu: int = Field(2, ge=1)
    joinable_fraction: float = Field(0.5, ge=0, le=1)
    share_max_utilization_pct: float = Field(80.0, ge=0, le=100)
    memory_headroom_fraction: float = Field(0.10, ge=0, lt=1)
    backend: Literal["local", "slurm"] = "local"
    slurm: dict[str, Any] = Field(default_factory=dict)

    @field_validator("train_command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        if isinstance(value, str):
            words = shlex.split(value)
            return words or None
        return value

    @field_validator("backend", mode="before")
    @classmethod
    def _lower_backend(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("gpu_free_memory_mib", "max_cpu_jobs", "max_jobs_per_gpu", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # Environment values arrive as "2.0" from scripts that treat every knob as a number.
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return value
            return int(number) if number.is_integer() else value
        return value


class QueueBlock(BaseModel):
    """The ``queue:`` block: how long a command waits for the queue database's write lock."""

    model_config = ConfigDict(extra="forbid")

    busy_timeout_seconds: float = Field(30.0, gt=0)
    lock_wait_seconds: float = Field(60.0, ge=0)


class SettingsFile(BaseModel):
    """The whole settings.yaml; keys other parts of tunequeue do not know are kept as they are."""

    model_config = ConfigDict(extra="allow")

    language: Literal["en", "zh"] | None = None
    model_roots: list[str] | None = None
    runner: RunnerBlock = Field(default_factory=RunnerBlock)
    queue: QueueBlock = Field(default_factory=QueueBlock)


class _EnvironmentFirst(BaseSettings):
    """Settings read from ``TUNEQUEUE_*`` environment variables first, then from the file's values."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables first, then the file's values; no .env or secrets files."""
        return (env_settings, init_settings)


class RunnerEnv(_EnvironmentFirst, RunnerBlock):
    """The runner block with ``TUNEQUEUE_<KEY>`` environment variables winning over the file."""

    model_config = SettingsConfigDict(env_prefix="TUNEQUEUE_", extra="forbid")


class QueueEnv(_EnvironmentFirst, QueueBlock):
    """The queue block with ``TUNEQUEUE_DB_<KEY>`` environment variables winning over the file."""

    model_config = SettingsConfigDict(env_prefix="TUNEQUEUE_DB_", extra="forbid")
