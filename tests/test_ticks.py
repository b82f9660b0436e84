"""Axis ticks a reader can read: plain numbers, thousands separated, on every range."""

from __future__ import annotations

from matplotlib.figure import Figure

from tlwidgets.ticks import plain_number, readable_log_ticks


def test_plain_numbers_separate_thousands():
    assert [plain_number(v) for v in (0.2, 5, 1000, 100000, 1e6, 2.5e3)] == [
        "0.2", "5", "1,000", "100,000", "1,000,000", "2,500"]


def test_decade_ticks_read_like_the_narrow_ones():
    ax = Figure().subplots()
    ax.plot([1000, 400000], [0.5, 0.9])
    ax.set_xscale("log")
    readable_log_ticks(ax.xaxis)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "10,000" in labels and "100,000" in labels and "10000" not in labels
