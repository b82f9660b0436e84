"""Helpers for the course notebooks: profiles and values recorded for tests."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["PROFILES", "RECORD_MIME", "check_profile", "display_value", "read_records", "record",
           "report_run_cost"]

#: Each notebook's ``profile`` parameter, shortest first.
PROFILES: dict[str, str] = {
    "smoke": "for the tests (CI) only: a few images and steps that prove every cell runs; "
             "its numbers mean nothing",
    "quick": "a shorter run for learners in a hurry; smaller data and fewer epochs, "
             "results still make each lesson's point",
    "workshop": "the full lesson, as timed in its introduction",
}
RECORD_MIME = "application/vnd.tlwidgets.record+json"


def check_profile(profile: str) -> str:
    """Validate the notebook's ``profile`` parameter; say so when it is the CI profile."""
    if profile not in PROFILES:
        choices = "; ".join(f"{name!r}: {text}" for name, text in PROFILES.items())
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, not {profile!r} ({choices}).")
    if profile == "smoke":
        from tlwidgets.notices import notice

        notice(f"Profile 'smoke' is {PROFILES['smoke']}. Learners: use 'quick' or 'workshop'.",
               key="profile smoke")
    return profile


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def display_value(value: Any, digits: int = 4) -> str:
    """``value`` as a reader should see it: floats to ``digits`` significant figures,
    NumPy scalars as plain numbers, containers element by element."""
    value = _jsonable(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return repr(value)
        return f"{value:.{digits}g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {display_value(v, digits)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(display_value(v, digits) for v in value) + "]"
    return repr(value)


def record(name: str, value: Any, *, show: bool = False) -> Any:
    """Record a value the notebook computed, so tests can assert on it; return it.

    It is stored as a display output with its own MIME type (readable from the
    executed notebook with :func:`read_records`) and shows nothing; ``show=True``
    also prints ``name = value`` with numbers rounded for reading.
    """
    from IPython.display import display

    value = _jsonable(value)
    json.dumps(value)  # fail here, not in the test, if it cannot be stored
    text = f"{name} = {display_value(value)}" if show else ""
    display({RECORD_MIME: {name: value}, "text/plain": text}, raw=True)
    return value


def read_records(nb) -> dict[str, Any]:
    """All values recorded by an executed notebook (``nbformat`` node or dict)."""
    found: dict[str, Any] = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if RECORD_MIME in data:
                payload = data[RECORD_MIME]
                found.update(json.loads(payload) if isinstance(payload, str) else payload)
    return found


def report_run_cost(started: float) -> dict[str, float]:
    """Print and record this kernel's run time since ``started`` (``time.perf_counter()``),
    its CPU time and its peak resident memory (``run_seconds``, ``cpu_seconds``,
    ``peak_memory_mb``)."""
    import resource
    import sys
    import time
    from pathlib import Path

    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:  # Linux: this process's own high-water mark
        status = Path("/proc/self/status").read_text().splitlines()
        peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        peak_mb = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    cost = {"run_seconds": time.perf_counter() - started,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_memory_mb": peak_mb}
    print(f"this notebook ran for {cost['run_seconds']:.0f} s (CPU time "
          f"{cost['cpu_seconds']:.0f} s); peak memory of the kernel {peak_mb:.0f} MB")
    for name, value in cost.items():
        record(name, value)
    return cost
