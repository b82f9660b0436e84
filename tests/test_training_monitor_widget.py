"""TrainingMonitor driven from Python: runs, views, marks, readable charts and summary table."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlwidgets import training
from tlwidgets.training import RunLog
from tlwidgets.widgets.training_monitor import RunSummary, TrainingMonitor


def _small_model():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(inp))
    return keras.Model(inp, keras.layers.Dense(2, name="head")(x))


def _fake_run(name, losses, accs=None, marks=()):
    log = RunLog(name)
    for i, loss in enumerate(losses):
        logs = {"loss": loss, "val_loss": loss * 1.1}
        if accs is not None:
            logs |= {"accuracy": accs[i], "val_accuracy": accs[i] - 0.02}
        log.on_epoch_end(i, logs)
    for at, text in marks:
        log.mark(text, at=at)
    return log


def test_keras_runs_feed_the_monitor_in_both_views():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8, 8, 3)), rng.integers(0, 2, 64)
    monitor = TrainingMonitor(["loss", "accuracy"], redraw_every=0.0)
    draws = {}
    for name, lr, view in (("slow", 1e-4, "epoch"), ("fast", 1e-2, "batch")):
        keras.utils.set_random_seed(0)
        model = training.compile_classifier(_small_model(), lr)
        monitor.view = view
        log = monitor.run(name)
        before = monitor.updates
        model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[log], verbose=0)
        draws[view] = monitor.updates - before
        log.mark("unfroze top 1 blocks")
    assert draws["epoch"] == 2  # one redraw per epoch
    assert draws["batch"] >= 2
    # Batch view redraws live, but never more often than drawing time allows.
    n = monitor.updates
    monitor._last_draw = -1e9
    monitor.logs["fast"]._notify("batch")
    monitor.logs["fast"]._notify("batch")  # right after a draw: throttled
    assert monitor.updates == n + 1
    monitor.view = "epoch"
    monitor.logs["fast"]._notify("batch")  # epoch view ignores batches
    assert monitor.updates == n + 2  # (the view change itself redrew)
    assert monitor.run_names == ["slow", "fast"] and monitor.shown == ["slow", "fast"]
    log = monitor.logs["fast"]
    assert log.epoch_x == [1, 2] and len(log.batch_x) == 2 * 3 and log.marks[0][0] == 2.0
    chart = monitor.chart()
    assert chart.png[:4] == b"\x89PNG"
    assert [p.title for p in chart.panels] == ["loss", "accuracy"]
    assert [i.lines for i in chart.info] == [4, 4]  # train + val curves of both runs
    # The same event at the same epoch in two runs: one mark, naming both.
    assert [m.text for m in chart.panels[0].marks] == ["unfroze top 1 blocks (slow, fast)"]
    assert "tlw-tm-chart" in monitor._plots.value
    monitor.shown = ["slow"]
    assert {ln.label for ln in monitor.chart().panels[0].lines} == {"slow"}
    with pytest.raises(ValueError, match="exists already"):
        monitor.run("slow")
    # Any metric names work, e.g. a multi-task model's; a metric nobody logged says so.
    multi = TrainingMonitor(["ner_loss"])
    multi.add(log)
    assert multi.chart().panels[0].lines == []


def test_twelve_runs_two_diverged_stay_readable():
    monitor = TrainingMonitor(["loss", "accuracy"])
    epochs = np.arange(1, 31)
    for r in range(12):
        losses = (np.full(30, 33.0) if r in (4, 9) else 2.0 * np.exp(-epochs / (4 + r)) + 0.03)
        monitor.add(_fake_run(f"run {r}", losses, np.clip(1 - losses / 2.2, 0, 1),
                              marks=[(10, "unfroze 2 blocks")] if r < 3 else ()))
    assert monitor._shown.rows == 12  # every run listed, no two-row scrollbar
    assert monitor.off_scale == {"loss": ["run 4", "run 9"]}
    assert monitor.log_scale == ["loss"]
    assert "off scale" in monitor._plots.value and "run 4, run 9" in monitor._plots.value
    colours = {ln.colour for ln in monitor.chart().panels[0].lines}
    assert len(colours) == 12
    marks = monitor.chart().panels[0].marks
    assert [m.text for m in marks] == ["unfroze 2 blocks (3 runs)"]
    assert monitor.draw_ms > 0


def test_summary_is_a_rounded_table():
    monitor = TrainingMonitor(["loss", "accuracy"])
    monitor.add(_fake_run("frozen base", [0.9, 0.6000000000000001], [0.7, 0.80000000000000004]))
    monitor.add(_fake_run("fine-tuned", [0.8, 0.4], [0.75, 0.9]))
    summary = monitor.summary()
    assert isinstance(summary, RunSummary) and isinstance(summary, list)
    assert summary[1]["run"] == "fine-tuned" and summary[1]["epochs"] == 2
    assert summary[0]["best val_accuracy"] == pytest.approx(0.78)
    table = summary._repr_html_()
    assert table.count("<tr>") == 3 and ">best val_loss</th>" in table and "padding" in table
    assert "0.660" in table and "0.6600000" not in table
    text = repr(summary)
    assert text.splitlines()[0].split()[:2] == ["run", "epochs"] and "{" not in text
    assert len(text.splitlines()) == 3
    assert "No runs" in RunSummary()._repr_html_()
