"""tlwidgets.notebook: profiles, silent records, numbers rounded for reading."""

import numpy as np
import pytest

from tlwidgets.notebook import PROFILES, check_profile, display_value, read_records, record


def test_profiles_are_smoke_quick_workshop_and_bad_ones_are_explained():
    assert list(PROFILES) == ["smoke", "quick", "workshop"]
    assert "CI" in PROFILES["smoke"]
    assert check_profile("quick") == "quick"
    with pytest.raises(ValueError, match="'fast'.*'quick': a shorter run"):
        check_profile("fast")


def test_display_value_rounds_and_drops_numpy_reprs():
    assert display_value(0.10000000000000005) == "0.1"
    assert display_value(np.int64(12)) == "12"
    assert display_value({"a": np.float32(0.123456789), "b": [1.0 / 3, 2]}) == \
        "{'a': 0.1235, 'b': [0.3333, 2]}"
    assert display_value(float("nan")) == "nan"


def test_record_is_silent_by_default_and_readable_back(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    assert record("n", np.int64(12)) == 12
    assert record("acc", 0.10000000000000005, show=True) == pytest.approx(0.1)
    assert [s["text/plain"] for s in shown] == ["", "acc = 0.1"]
    nb = {"cells": [{"outputs": [{"data": s} for s in shown]}]}
    assert read_records(nb) == {"n": 12, "acc": 0.10000000000000005}
    with pytest.raises(TypeError):
        record("bad", object())


def test_report_run_cost_prints_and_records_time_cpu_and_peak(monkeypatch, capsys):
    import time

    from tlwidgets.notebook import report_run_cost

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    started = time.perf_counter() - 2.0
    cost = report_run_cost(started)
    assert cost["run_seconds"] >= 2.0 and cost["cpu_seconds"] > 0
    assert 10 < cost["peak_memory_mb"] < 100_000  # a Python process, in MB
    assert "this notebook ran for" in capsys.readouterr().out
    recorded = read_records({"cells": [{"outputs": [{"data": s} for s in shown]}]})
    assert recorded == cost
