"""The shared chart component (tlwidgets.widgets.charts) and the LR finder's chart."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from tlwidgets.widgets.charts import PALETTE, Chart, Line, Mark, Panel, colour


def _runs(n_runs=12, epochs=100, diverged=(3, 7)):
    x = np.arange(1, epochs + 1)
    lines = []
    for r in range(n_runs):
        y = np.full(epochs, 33.0) if r in diverged else 2.0 * np.exp(-x / (10 + 3 * r)) + 0.05
        lines.append(Line(x, y, label=f"run {r}", colour=colour(r)))
        lines.append(Line(x, y * 1.1, label=f"run {r}", colour=colour(r), dashed=True))
    return lines


def test_palette_has_at_least_twelve_distinguishable_colours():
    rgb = [np.array(Image.new("RGB", (1, 1), c).getpixel((0, 0)), float) for c in PALETTE]
    assert len(set(PALETTE)) == len(PALETTE) >= 12
    closest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(rgb, 2))
    assert closest > 50, f"two colours of the palette are nearly the same ({closest:.0f})"


def test_diverged_runs_are_clipped_named_and_do_not_flatten_the_rest():
    chart = Chart([Panel("loss", lines=_runs(), xlabel="epoch")])
    png = Image.open(io.BytesIO(chart.png))
    assert png.size[0] == 1000
    info = chart.info[0]
    assert info.off_scale == ["run 3", "run 7"]
    assert info.ylog  # 0.05 .. 2: more than a decade, so a log axis
    assert "off scale" in chart.notes[0] and "run 3, run 7" in chart.notes[0]
    html = chart.html()
    assert html.startswith("<figure class='tlw-chart") and "data:image/png;base64," in html
    assert "run 3, run 7" in html  # said in words beside the chart, too


def test_no_clipping_or_log_when_the_lines_agree():
    x = np.arange(1, 11)
    chart = Chart([Panel("accuracy", lines=[Line(x, 0.5 + 0.04 * x, label="a"),
                                              Line(x, 0.45 + 0.04 * x, label="b")])])
    assert chart.png[:4] == b"\x89PNG"
    assert chart.info[0].off_scale == [] and not chart.info[0].ylog and chart.notes == []


def test_a_panel_note_is_said_once_in_its_corner_not_again_as_a_caption():
    x = np.arange(1, 11)
    chart = Chart([Panel("weight", lines=[Line(x, np.ones(10), label="a")],
                         note="fixed weights: every task 1")])
    html = chart.html()
    assert chart.notes == ["weight: fixed weights: every task 1"]  # still there in words
    assert "figcaption" not in html and "fixed weights" not in html


def test_a_nan_loss_is_off_scale_even_alone_with_others():
    x = [1, 2, 3]
    chart = Chart([Panel("loss", lines=[Line(x, [1.0, 0.8, 0.7], label="ok"),
                                        Line(x, [1.0, float("nan"), float("nan")], label="nan"),
                                        Line(x, [0.9, 0.7, 0.6], label="ok too")])])
    assert chart.png[:4] == b"\x89PNG"
    assert chart.info[0].off_scale == ["nan"]


def test_marks_are_numbered_once_per_text():
    x = np.arange(1, 6)
    panels = [Panel(m, lines=[Line(x, x * 1.0, label="r")],
                    marks=[Mark(2, "unfroze 2 blocks"), Mark(2, "unfroze 2 blocks"),
                           Mark(2.1, "unfroze all")]) for m in ("loss", "accuracy")]
    chart = Chart(panels)
    assert chart._mark_numbers() == {"unfroze 2 blocks": 1, "unfroze all": 2}
    assert chart.png[:4] == b"\x89PNG"


def test_an_empty_panel_says_so_and_a_chart_needs_panels():
    chart = Chart([Panel("ner_loss")])
    assert chart.png[:4] == b"\x89PNG" and chart.info[0].lines == 0
    with pytest.raises(ValueError, match="at least one Panel"):
        Chart([])


def test_lr_finder_chart_draws_the_curve_and_marks_the_suggestion():
    from tlwidgets.lr_finder import LRFinderResult
    from tlwidgets.widgets.lr_finder import lr_finder_chart

    lrs = np.geomspace(1e-6, 1.0, 40)
    raw = 2.0 - 1.5 * np.exp(-((np.log10(lrs) + 2.5) ** 2)) + np.where(lrs > 0.1, 40 * lrs, 0)
    found = LRFinderResult(lrs, raw, raw, suggestion=float(lrs[np.argmin(raw)] / 10))
    chart = lr_finder_chart(found)
    assert chart._repr_png_()[:4] == b"\x89PNG"
    assert chart.info[0].lines == 3 and chart.info[0].marks == 1
    assert any("diverged" in n for n in chart.notes)  # the blow-up is clipped, and said
    assert f"{found.suggestion:.2g}" in chart.panels[0].marks[0].text
    with pytest.raises(ValueError, match="no learning rates"):
        lr_finder_chart(LRFinderResult(np.array([]), np.array([]), np.array([]), 0.0))


def test_counts_on_the_x_axis_get_whole_number_ticks():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from tlwidgets.widgets.charts import count_ticks

    # one epoch (a smoke run): one tick at 1, not 0.96 ... 1.04
    ax = Figure().subplots()
    ax.plot([1], [0.5], marker="o")
    assert count_ticks(ax.xaxis, [1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1"]
    # learning-curve sizes on a log axis: a tick at each size
    ax = Figure().subplots()
    ax.plot([5, 10, 20], [0.6, 0.7, 0.8])
    ax.set_xscale("log")
    assert count_ticks(ax.xaxis, [5, 10, 20])
    assert list(ax.xaxis.get_majorticklocs()) == [5, 10, 20]
    # many batches: integer ticks; rates: untouched
    ax = Figure().subplots()
    ax.plot(np.arange(1, 301), np.ones(300))
    assert count_ticks(ax.xaxis, np.arange(1, 301))
    assert all(float(t).is_integer() for t in ax.xaxis.get_majorticklocs())
    assert not count_ticks(ax.xaxis, [1e-4, 3e-3])
