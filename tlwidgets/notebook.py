"""Helpers for the course notebooks: profiles and values recorded for tests."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["PROFILES", "RECORD_MIME", "check_profile", "read_records", "record"]

PROFILES = ("smoke", "workshop")
RECORD_MIME = "application/vnd.tlwidgets.record+json"


def check_profile(profile: str) -> str:
    """Validate the notebook's ``profile`` parameter (``smoke`` or ``workshop``)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}.")
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


def record(name: str, value: Any, *, show: bool = True) -> Any:
    """Record a value the notebook computed, so tests can assert on it.

    It is stored as a display output with its own MIME type (readable from the
    executed notebook with :func:`read_records`); ``show`` also prints it.
    """
    from IPython.display import display

    value = _jsonable(value)
    json.dumps(value)  # fail here, not in the test, if it cannot be stored
    text = f"{name} = {value!r}" if show else ""
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
