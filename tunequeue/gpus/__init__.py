"""GPUs as the runner and the TUI see them: NVML on real machines, or simulated ones.

- `devices`: the records every reader produces (`Gpu`, `GpuProcess`, `GpuSnapshot`).
- `nvml`: reads the machine's NVIDIA GPUs through NVML (``pynvml``).
- `simulated`: GPUs from ``TUNEQUEUE_SIMULATED_GPUS`` (e.g. ``4x80``) for tests, demos and machines
  without a driver.
- `processes`: which processes use each GPU and how much memory each holds (the GPUs screen's
  per-process view, foreign processes included).

`read_gpus` is the one entry point. ``TUNEQUEUE_SIMULATED_GPUS`` replaces NVML everywhere; without it
NVML is asked, and a machine without a driver gets an empty snapshot whose ``error`` says so (jobs then
run on CPU where their task allows it).
"""

from __future__ import annotations

from tunequeue.gpus.devices import Gpu, GpuProcess, GpuSnapshot

__all__ = ["Gpu", "GpuProcess", "GpuSnapshot", "read_gpus", "CUDA_DEVICE_ORDER"]

# Launch env: makes CUDA number GPUs like NVML does (PCI bus order).
CUDA_DEVICE_ORDER = "PCI_BUS_ID"


def read_gpus() -> GpuSnapshot:
    """Every GPU of this machine right now (simulated ones when TUNEQUEUE_SIMULATED_GPUS is set).

    A malformed TUNEQUEUE_SIMULATED_GPUS or simulated-gpus.json raises `UserError`.
    """
    from tunequeue.gpus.nvml import read_nvml
    from tunequeue.gpus.simulated import read_simulated

    snapshot = read_simulated()
    if snapshot is not None:
        return snapshot
    return read_nvml()
