"""Read the machine's NVIDIA GPUs through NVML (the nvidia-ml-py package, imported as ``pynvml``).

NVML numbers GPUs in PCI bus order; processes are launched with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so
CUDA agrees. Every function takes the NVML module as an argument (default: the real ``pynvml``), so
the same code can be exercised against a module of the same shape on machines without a GPU.
"""

from __future__ import annotations

from typing import Any

from tunequeue.gpus.devices import COMPUTE, COMPUTE_GRAPHICS, GRAPHICS, Gpu, GpuProcess, GpuSnapshot

SIMULATE_HINT = "set TUNEQUEUE_SIMULATED_GPUS=2x24 to simulate GPUs"
_MIB = 1024 * 1024


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _optional(nvml: Any, function: Any, *args: Any) -> Any:
    """Call an NVML query that some GPUs or drivers do not support; None when unsupported."""
    try:
        return function(*args)
    except nvml.NVMLError:
        return None


def init_error_message(nvml: Any, error: Exception) -> str:
    """One sentence saying why NVML could not start and what to do."""
    if isinstance(error, getattr(nvml, "NVMLError_LibraryNotFound", ())):
        return f"no NVIDIA driver found (NVML library missing); {SIMULATE_HINT}"
    if isinstance(error, getattr(nvml, "NVMLError_DriverNotLoaded", ())):
        return f"the NVIDIA driver is not loaded; check `nvidia-smi`, or {SIMULATE_HINT}"
    if isinstance(error, getattr(nvml, "NVMLError_NoPermission", ())):
        return f"no permission to query the NVIDIA driver; check the device permissions, or {SIMULATE_HINT}"
    return f"NVML could not start ({error}); check `nvidia-smi`, or {SIMULATE_HINT}"


def _memory_mib(process: Any) -> float | None:
    used = getattr(process, "usedGpuMemory", None)
    # NVML reports "not available" (e.g. without permission, or under WDDM) as None or as ~0ULL.
    if used is None or used >= 2**63:
        return None
    return used / _MIB


def read_processes(nvml: Any, handle: Any) -> tuple[list[GpuProcess], list[GpuProcess]]:
    """Compute processes (those that also draw marked ``compute+graphics``) and graphics-only ones.

    A pid NVML lists twice in one list (one entry per MIG instance or context) is merged, its memory
    summed.
    """
    found: dict[int, GpuProcess] = {}
    for kind, query in (
        (COMPUTE, nvml.nvmlDeviceGetComputeRunningProcesses),
        (GRAPHICS, getattr(nvml, "nvmlDeviceGetGraphicsRunningProcesses", None)),
    ):
        if query is None:
            continue
        seen_here: set[int] = set()
        for process in _optional(nvml, query, handle) or []:
            pid = int(process.pid)
            memory = _memory_mib(process)
            known = found.get(pid)
            if known is None:
                name = _optional(nvml, nvml.nvmlSystemGetProcessName, pid)
                found[pid] = GpuProcess(
                    pid=pid, used_memory_mib=memory, name=_text(name) if name is not None else "", kind=kind
                )
            elif pid in seen_here:
                if memory is not None:
                    known.used_memory_mib = (known.used_memory_mib or 0.0) + memory
            else:
                known.kind = COMPUTE_GRAPHICS
                if known.used_memory_mib is None:
                    known.used_memory_mib = memory
            seen_here.add(pid)
    compute = [p for p in found.values() if p.kind != GRAPHICS]
    graphics = [p for p in found.values() if p.kind == GRAPHICS]
    return compute, graphics


def read_device(nvml: Any, index: int) -> Gpu:
    """Read one GPU by NVML index."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    utilization = _optional(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
    temperature = _optional(nvml, nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
    power_mw = _optional(nvml, nvml.nvmlDeviceGetPowerUsage, handle)
    capability = _optional(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
    compute_mode = _optional(nvml, nvml.nvmlDeviceGetComputeMode, handle)
    mig_mode = _optional(nvml, nvml.nvmlDeviceGetMigMode, handle)
    pci = _optional(nvml, nvml.nvmlDeviceGetPciInfo, handle)
    power_limit_mw = _optional(nvml, nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    compute, graphics = read_processes(nvml, handle)
    return Gpu(
        index=index,
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        name=_text(nvml.nvmlDeviceGetName(handle)),
        pci_bus_id=_text(pci.busId) if pci is not None else "",
        memory_total_mib=memory.total / _MIB,
        memory_used_mib=memory.used / _MIB,
        utilization_pct=float(utilization.gpu) if utilization is not None else None,
        temperature_c=float(temperature) if temperature is not None else None,
        power_w=power_mw / 1000.0 if power_mw is not None else None,
        power_limit_w=power_limit_mw / 1000.0 if power_limit_mw is not None else None,
        compute_capability=(int(capability[0]), int(capability[1])) if capability is not None else None,
        processes=compute,
        graphics_processes=graphics,
        simulated=False,
        exclusive_process=compute_mode == nvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS,
        mig=bool(mig_mode is not None and mig_mode[0] == nvml.NVML_DEVICE_MIG_ENABLE),
    )


def read_nvml(nvml: Any = None) -> GpuSnapshot:
    """Read every GPU through NVML (``nvml``: the pynvml module, or one shaped like it); on failure an
    empty snapshot whose ``error`` says why."""
    if nvml is None:
        try:
            import pynvml
        except ImportError:
            return GpuSnapshot(
                gpus=[],
                simulated=False,
                error=f"nvidia-ml-py is not installed (pip install nvidia-ml-py); {SIMULATE_HINT}",
            )
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        return GpuSnapshot(gpus=[], simulated=False, error=init_error_message(nvml, error))
    try:
        gpus, problems = [], []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                gpus.append(read_device(nvml, index))
            except nvml.NVMLError as error:
                problems.append(f"GPU {index} could not be read ({error})")
        return GpuSnapshot(gpus=gpus, simulated=False, error="; ".join(problems) or None)
    except nvml.NVMLError as error:
        return GpuSnapshot(gpus=[], simulated=False, error=f"NVML failed ({error}); check `nvidia-smi`")
    finally:
        _optional(nvml, nvml.nvmlShutdown)
