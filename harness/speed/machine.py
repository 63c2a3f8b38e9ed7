"""The machine a speed report was measured on: hardware, thread settings, library versions."""

from __future__ import annotations

import datetime
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Machine:
    """Where and when the figures were measured."""

    device: str
    cpu: str
    cpu_cores: int | None
    torch_threads: int
    omp_wait_policy: str
    torch: str
    timm: str
    pyiqa: str
    python: str
    date: str  # UTC, ISO 8601
    gpu: str | None = None  # CUDA devices only

    def to_dict(self) -> dict[str, object]:
        """The JSON form; ``gpu`` only where there is one."""
        return {key: value for key, value in asdict(self).items()
                if key != "gpu" or value is not None}

    @property
    def processor(self) -> str:
        """The GPU's name on CUDA, else the CPU's."""
        return self.gpu or self.cpu


def describe_machine(device: torch.device) -> Machine:
    """This machine, with ``device`` as the one measured."""
    import timm

    try:
        import pyiqa

        pyiqa_version = pyiqa.__version__
    except ImportError:  # the inference section then fails alone, with this error
        pyiqa_version = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return Machine(
        device=str(device), cpu=cpu, cpu_cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "default (active)"),
        torch=torch.__version__, timm=timm.__version__, pyiqa=pyiqa_version,
        python=platform.python_version(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None)
