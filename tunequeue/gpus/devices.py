"""What tunequeue knows about a GPU: the records NVML and the simulator both produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMPUTE = "compute"
GRAPHICS = "graphics"
COMPUTE_GRAPHICS = "compute+graphics"


@dataclass
class GpuProcess:
    """A process NVML reports on a GPU (pid as NVML sees it; in containers a host pid).

    ``kind`` is ``compute``, ``graphics`` or ``compute+graphics``; ``user`` and ``command`` come from
    the host's process table (`tunequeue.gpus.processes.describe`) and stay empty when it cannot be read.
    """

    pid: int
    used_memory_mib: float | None
    name: str = ""
    kind: str = COMPUTE
    user: str = ""
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "pid": self.pid,
            "used_memory_mib": self.used_memory_mib,
            "name": self.name,
            "kind": self.kind,
            "user": self.user,
            "command": self.command,
        }


@dataclass
class Gpu:
    """One GPU at one moment. ``index`` is the NVML index, which is the PCI bus order.

    ``processes`` are the compute processes (what the scheduler counts as a GPU in use, a process that
    also draws included); ``graphics_processes`` the ones that only draw, such as a display server.
    """

    index: int
    uuid: str
    name: str
    pci_bus_id: str
    memory_total_mib: float
    memory_used_mib: float
    utilization_pct: float | None
    temperature_c: float | None
    power_w: float | None
    compute_capability: tuple[int, int] | None
    processes: list[GpuProcess] = field(default_factory=list)
    graphics_processes: list[GpuProcess] = field(default_factory=list)
    power_limit_w: float | None = None
    simulated: bool = False
    exclusive_process: bool = False
    mig: bool = False

    @property
    def all_processes(self) -> list[GpuProcess]:
        """Compute and graphics-only processes together."""
        return [*self.processes, *self.graphics_processes]

    @property
    def memory_free_mib(self) -> float:
        """Memory not in use right now."""
        return max(0.0, self.memory_total_mib - self.memory_used_mib)

    def as_sample(self, time: float, job_id: int | None = None) -> dict[str, Any]:
        """A row for `tunequeue.jobqueue.metrics.add_gpu_samples`."""
        return {
            "time": time,
            "uuid": self.uuid,
            "gpu_index": self.index,
            "utilization": self.utilization_pct,
            "memory_used_mib": self.memory_used_mib,
            "memory_total_mib": self.memory_total_mib,
            "temperature": self.temperature_c,
            "power_w": self.power_w,
            "job_id": job_id,
            "simulated": self.simulated,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for ``tunequeue gpus --json``)."""
        return {
            "index": self.index,
            "uuid": self.uuid,
            "name": self.name,
            "pci_bus_id": self.pci_bus_id,
            "memory_total_mib": self.memory_total_mib,
            "memory_used_mib": self.memory_used_mib,
            "utilization_pct": self.utilization_pct,
            "temperature_c": self.temperature_c,
            "power_w": self.power_w,
            "power_limit_w": self.power_limit_w,
            "compute_capability": list(self.compute_capability) if self.compute_capability else None,
            "processes": [p.to_dict() for p in self.processes],
            "graphics_processes": [p.to_dict() for p in self.graphics_processes],
            "simulated": self.simulated,
            "exclusive_process": self.exclusive_process,
            "mig": self.mig,
        }


@dataclass
class GpuSnapshot:
    """Every GPU of the machine at one moment, or why they could not be read (``error``)."""

    gpus: list[Gpu]
    simulated: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for ``tunequeue gpus --json``)."""
        return {"simulated": self.simulated, "error": self.error, "gpus": [g.to_dict() for g in self.gpus]}
