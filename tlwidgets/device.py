"""What the kernel runs on: accelerator, memory, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

_PACKAGES = ("tlwidgets", "tensorflow", "keras", "numpy", "scikit-learn", "gensim",
             "ipywidgets", "anywidget", "jupyterlab", "matplotlib")


@dataclass
class Accelerator:
    name: str
    kind: str  # "GPU" or "CPU"
    memory_bytes: int | None = None


@dataclass
class DeviceInfo:
    """A snapshot of the kernel's hardware and software."""

    python: str
    platform: str
    cpu_count: int
    ram_total_bytes: int
    ram_available_bytes: int
    ram_limit_bytes: int | None = None
    accelerators: list[Accelerator] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    tensorflow_error: str | None = None

    @property
    def has_gpu(self) -> bool:
        return any(a.kind == "GPU" for a in self.accelerators)

    @property
    def summary(self) -> str:
        gpus = [a for a in self.accelerators if a.kind == "GPU"]
        if gpus:
            names = ", ".join(
                a.name + (f" ({a.memory_bytes / 2**30:.0f} GiB)" if a.memory_bytes else "")
                for a in gpus
            )
            return f"GPU: {names}"
        return f"CPU only ({self.cpu_count} cores)"

    def as_dict(self) -> dict:
        return asdict(self) | {"has_gpu": self.has_gpu, "summary": self.summary}


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _gpus() -> tuple[list[Accelerator], str | None]:
    """GPUs that TensorFlow sees, with memory where the driver reports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except Exception as exc:  # broken install: report, don't crash the doctor
        return [], f"{type(exc).__name__}: {exc}"
    found = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        name = details.get("device_name", dev.name)
        memory = None
        try:
            import subprocess

            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout.split()
            index = int(dev.name.rsplit(":", 1)[-1])
            memory = int(out[index]) * 2**20
        except Exception:
            pass
        found.append(Accelerator(name=name, kind="GPU", memory_bytes=memory))
    return found, None


def cgroup_memory_limit() -> int | None:
    """The container's memory limit (Binder, JupyterHub), if one is set."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < psutil.virtual_memory().total:
            return int(text)
    return None


def device_info(*, probe_tensorflow: bool = True) -> DeviceInfo:
    """Collect the device report (importing TensorFlow takes a few seconds)."""
    mem = psutil.virtual_memory()
    accelerators, error = _gpus() if probe_tensorflow else ([], None)
    accelerators.append(Accelerator(name=platform.processor() or platform.machine(), kind="CPU"))
    return DeviceInfo(
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_count=os.cpu_count() or 1,
        ram_total_bytes=mem.total,
        ram_available_bytes=mem.available,
        ram_limit_bytes=cgroup_memory_limit(),
        accelerators=accelerators,
        versions=package_versions(),
        tensorflow_error=error,
    )
