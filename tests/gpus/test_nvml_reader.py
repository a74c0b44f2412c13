"""The NVML reader, driven through a module shaped like ``pynvml`` (no GPU exists on this machine).

The fake keeps pynvml's own error classes and constants and answers the same calls the reader makes;
the code under test is the same `read_nvml` the runner uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml
import pytest

from tunequeue.gpus.nvml import read_nvml


@dataclass
class FakeDevice:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-11111111-2222-3333-4444-555555555555"
    bus_id: str = "00000000:18:00.0"
    total: int = 80 * 1024**3
    used: int = 512 * 1024**2
    utilization: int | None = 3
    temperature: int | None = 41
    power_mw: int | None = 70_500
    capability: tuple[int, int] | None = (9, 0)
    compute_mode: int = pynvml.NVML_COMPUTEMODE_DEFAULT
    mig: bool | None = None  # None: MIG not supported by this GPU
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    graphics: list[tuple[int, int | None]] = field(default_factory=list)
    power_limit_mw: int | None = 700_000
    broken: bool = False


class FakeNvml:
    """Answers the pynvml calls `read_nvml` makes from a list of `FakeDevice`."""

    NVMLError = pynvml.NVMLError
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_COMPUTEMODE_EXCLUSIVE_PROCESS = pynvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE

    def __init__(self, devices, init_error=None, names_as_bytes=False):
        self.devices = devices
        self.init_error = init_error
        self.names_as_bytes = names_as_bytes
        self.initialised = False
        self.shutdowns = 0

    def _text(self, value):
        return value.encode() if self.names_as_bytes else value

    @staticmethod
    def _unsupported():
        return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def nvmlInit(self):
        if self.init_error is not None:
            raise self.init_error
        self.initialised = True

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        device = self.devices[index]
        if device.broken:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return device

    def nvmlDeviceGetName(self, device):
        return self._text(device.name)

    def nvmlDeviceGetUUID(self, device):
        return self._text(device.uuid)

    def nvmlDeviceGetPciInfo(self, device):
        return SimpleNamespace(busId=self._text(device.bus_id))

    def nvmlDeviceGetMemoryInfo(self, device):
        return SimpleNamespace(total=device.total, used=device.used, free=device.total - device.used)

    def nvmlDeviceGetUtilizationRates(self, device):
        if device.utilization is None:
            raise self._unsupported()
        return SimpleNamespace(gpu=device.utilization, memory=0)

    def nvmlDeviceGetTemperature(self, device, sensor):
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        if device.temperature is None:
            raise self._unsupported()
        return device.temperature

    def nvmlDeviceGetPowerUsage(self, device):
        if device.power_mw is None:
            raise self._unsupported()
        return device.power_mw

    def nvmlDeviceGetCudaComputeCapability(self, device):
        if device.capability is None:
            raise self._unsupported()
        return device.capability

    def nvmlDeviceGetComputeMode(self, device):
        return device.compute_mode

    def nvmlDeviceGetMigMode(self, device):
        if device.mig is None:
            raise self._unsupported()
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if device.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetComputeRunningProcesses(self, device):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in device.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, device):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in device.graphics]

    def nvmlDeviceGetEnforcedPowerLimit(self, device):
        if device.power_limit_mw is None:
            raise self._unsupported()
        return device.power_limit_mw

    def nvmlSystemGetProcessName(self, pid):
        if pid == 999:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
        return self._text(f"python{pid}")


def test_reads_every_field_of_two_gpus():
    fake = FakeNvml(
        [
            FakeDevice(),
            FakeDevice(
                uuid="GPU-2",
                bus_id="00000000:3B:00.0",
                used=20 * 1024**3,
                utilization=97,
                processes=[(4242, 20 * 1024**3), (999, None)],
            ),
        ]
    )
    snapshot = read_nvml(fake)
    assert (snapshot.simulated, snapshot.error) == (False, None)
    first, second = snapshot.gpus
    assert (first.index, first.name, first.uuid, first.pci_bus_id) == (
        0,
        "NVIDIA H100 80GB HBM3",
        "GPU-11111111-2222-3333-4444-555555555555",
        "00000000:18:00.0",
    )
    assert (first.memory_total_mib, first.memory_used_mib) == (81920.0, 512.0)
    assert (first.utilization_pct, first.temperature_c, first.power_w) == (3.0, 41.0, 70.5)
    assert first.compute_capability == (9, 0)
    assert (first.exclusive_process, first.mig, first.simulated, first.processes) == (False, False, False, [])
    assert second.index == 1 and second.utilization_pct == 97.0
    assert [(p.pid, p.used_memory_mib, p.name, p.kind) for p in second.processes] == [
        (4242, 20480.0, "python4242", "compute"),
        (999, None, "", "compute"),
    ]
    assert (first.power_limit_w, first.graphics_processes) == (700.0, [])
    assert fake.shutdowns == 1


def test_graphics_processes_are_kept_apart_and_both_kinds_merged():
    gpu = read_nvml(
        FakeNvml(
            [
                FakeDevice(
                    processes=[(100, 2 * 1024**3), (300, 1024**3), (300, 1024**3)],
                    graphics=[(200, 64 * 1024**2), (100, 2 * 1024**3), (400, 2**64 - 1)],
                    power_limit_mw=None,
                )
            ]
        )
    ).gpus[0]
    assert [(p.pid, p.kind, p.used_memory_mib) for p in gpu.processes] == [
        (100, "compute+graphics", 2048.0),
        (300, "compute", 2048.0),  # listed twice (two contexts): memory summed
    ]
    assert [(p.pid, p.kind, p.used_memory_mib) for p in gpu.graphics_processes] == [
        (200, "graphics", 64.0),
        (400, "graphics", None),  # NVML's "not available" value
    ]
    assert [p.pid for p in gpu.all_processes] == [100, 300, 200, 400]
    assert gpu.power_limit_w is None
    assert gpu.to_dict()["graphics_processes"][0] == {
        "pid": 200,
        "used_memory_mib": 64.0,
        "name": "python200",
        "kind": "graphics",
        "user": "",
        "command": "",
    }


def test_bytes_from_older_bindings_are_decoded():
    gpu = read_nvml(FakeNvml([FakeDevice()], names_as_bytes=True)).gpus[0]
    assert (
        gpu.name == "NVIDIA H100 80GB HBM3" and gpu.uuid.startswith("GPU-") and gpu.pci_bus_id.endswith(".0")
    )


def test_unsupported_queries_become_none():
    gpu = read_nvml(
        FakeNvml([FakeDevice(utilization=None, temperature=None, power_mw=None, capability=None)])
    )
    only = gpu.gpus[0]
    assert (only.utilization_pct, only.temperature_c, only.power_w, only.compute_capability) == (
        None,
        None,
        None,
        None,
    )


def test_exclusive_process_and_mig_are_flagged():
    snapshot = read_nvml(
        FakeNvml([FakeDevice(compute_mode=pynvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS), FakeDevice(mig=True)])
    )
    exclusive, mig = snapshot.gpus
    assert exclusive.exclusive_process and not exclusive.mig
    assert mig.mig and not mig.exclusive_process


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND),
            "no NVIDIA driver found (NVML library missing); "
            "set TUNEQUEUE_SIMULATED_GPUS=2x24 to simulate GPUs",
        ),
        (
            pynvml.NVMLError_DriverNotLoaded(pynvml.NVML_ERROR_DRIVER_NOT_LOADED),
            "the NVIDIA driver is not loaded",
        ),
        (pynvml.NVMLError_NoPermission(pynvml.NVML_ERROR_NO_PERMISSION), "no permission"),
        (pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN), "NVML could not start"),
    ],
)
def test_init_failures_give_an_empty_snapshot_with_a_clear_message(error, message):
    fake = FakeNvml([FakeDevice()], init_error=error)
    snapshot = read_nvml(fake)
    assert snapshot.gpus == [] and not snapshot.simulated
    assert snapshot.error.startswith(message)
    assert "TUNEQUEUE_SIMULATED_GPUS" in snapshot.error
    assert fake.shutdowns == 0


def test_a_lost_gpu_is_reported_and_the_others_still_read():
    snapshot = read_nvml(FakeNvml([FakeDevice(broken=True), FakeDevice(uuid="GPU-ok")]))
    assert [g.uuid for g in snapshot.gpus] == ["GPU-ok"]
    assert [g.index for g in snapshot.gpus] == [1]
    assert snapshot.error.startswith("GPU 0 could not be read")


def test_the_real_binding_on_this_machine():
    snapshot = read_nvml()
    if snapshot.gpus:
        assert all(gpu.uuid.startswith(("GPU-", "MIG-")) for gpu in snapshot.gpus)
    else:
        assert snapshot.error
