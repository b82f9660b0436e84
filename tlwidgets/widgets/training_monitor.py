"""TrainingMonitor: live curves of any named metrics, per epoch or per batch, runs side by side.

    monitor = TrainingMonitor(["loss", "accuracy"])
    model.fit(..., callbacks=[monitor.run("frozen base")])

Each metric gets a panel with the training curve (solid) and the validation
curve (``val_<metric>``, dashed) of every run shown; marks such as "unfroze 2
blocks" are drawn as vertical lines. Any metric names work (``"ner_loss"``,
``"pos_accuracy"``), so multi-task notebooks can reuse it.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

import ipywidgets as widgets
import traitlets

from tlwidgets.training import RunLog

_COLOURS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bc4c00", "#57606a"]
_W, _H, _PAD = 340, 200, 34


class TrainingMonitor(widgets.VBox):
    """A Keras-callback factory and its live plots: ``monitor.run(name)`` is the callback."""

    metrics = traitlets.List(traitlets.Unicode()).tag(sync=True)
    view = traitlets.Unicode("epoch").tag(sync=True)
    run_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    shown = traitlets.List(traitlets.Unicode()).tag(sync=True)
    updates = traitlets.Int(0).tag(sync=True)

    def __init__(self, metrics: Sequence[str] = ("loss", "accuracy"), *,
                 redraw_every: float = 0.5, **kwargs):
        self.logs: dict[str, RunLog] = {}
        self.redraw_every = redraw_every
        self._last_draw = 0.0
        self._view = widgets.ToggleButtons(options=["epoch", "batch"], value="epoch",
                                           description="x axis:")
        self._shown = widgets.SelectMultiple(options=[], description="runs:", rows=3)
        self._plots = widgets.HTML()
        self._table = widgets.HTML()
        controls = widgets.HBox([self._view, self._shown])
        super().__init__([controls, self._plots, self._table], metrics=list(metrics), **kwargs)
        self.add_class("tlw-training-monitor")
        widgets.link((self._view, "value"), (self, "view"))
        self._shown.observe(lambda ch: setattr(self, "shown", list(ch["new"])), "value")
        self.observe(lambda _: self.draw(), ["view", "shown", "metrics"])
        self.draw()

    # --- runs ---------------------------------------------------------------------------------
    def run(self, name: str) -> RunLog:
        """A new run: returns the Keras callback that feeds this monitor."""
        if name in self.logs:
            raise ValueError(f"A run named {name!r} exists already; pick another name.")
        return self.add(RunLog(name))

    def add(self, log: RunLog) -> RunLog:
        """Show a run recorded elsewhere (or re-use its log for another fit)."""
        self.logs[log.name] = log
        log.listeners.append(self._on_update)
        self.run_names = list(self.logs)
        self._shown.options = list(self.logs)
        self._shown.value = tuple(self.logs)  # new runs are shown, for comparison
        self.draw()
        return log

    def summary(self) -> list[dict]:
        """Per run: last and best value of each validation metric (or training metric)."""
        rows = []
        for name, log in self.logs.items():
            row = {"run": name, "epochs": len(log.epoch_x)}
            for metric in self.metrics:
                key = f"val_{metric}" if f"val_{metric}" in log.epochs else metric
                if key in log.epochs:
                    mode = "min" if "loss" in metric else "max"
                    row[f"last {key}"] = log.last(key)
                    row[f"best {key}"] = log.best(key, mode)
            rows.append(row)
        return rows

    # --- drawing ------------------------------------------------------------------------------
    def _on_update(self, log: RunLog, event: str) -> None:
        if event != "batch":
            self.draw()
        elif self.view == "batch" and time.perf_counter() - self._last_draw >= self.redraw_every:
            self.draw()  # live batch curves, at most every `redraw_every` seconds

    def draw(self) -> None:
        self._last_draw = time.perf_counter()
        self.updates += 1
        shown = [n for n in (self.shown or list(self.logs)) if n in self.logs]
        panels = [self._panel(metric, shown) for metric in self.metrics]
        legend = " ".join(
            f"<span style='color:{_COLOURS[list(self.logs).index(n) % len(_COLOURS)]}'>"
            f"&#9632; {html.escape(n)}</span>" for n in shown)
        self._plots.value = (f"<div class='tlw-tm-legend'>{legend} "
                             "<span style='color:#666'>(solid: training, dashed: validation)"
                             "</span></div><div style='display:flex;flex-wrap:wrap;gap:8px'>"
                             + "".join(panels) + "</div>")
        self._table.value = self._summary_html()

    def _series(self, log: RunLog, key: str) -> tuple[list[float], list[float]]:
        if self.view == "batch" and not key.startswith("val_"):
            return log.batch_x, log.batches.get(key, [])
        return [float(x) for x in log.epoch_x], log.epochs.get(key, [])

    def _panel(self, metric: str, shown: list[str]) -> str:
        lines = []
        for name in shown:
            log = self.logs[name]
            colour = _COLOURS[list(self.logs).index(name) % len(_COLOURS)]
            for key, dash in ((metric, ""), (f"val_{metric}", "5,4")):
                xs, ys = self._series(log, key)
                n = min(len(xs), len(ys))
                if n:
                    lines.append((xs[:n], ys[:n], colour, dash, name))
        marks = [(at, text, name) for name in shown for at, text in self.logs[name].marks]
        points = [(x, y) for xs, ys, *_ in lines for x, y in zip(xs, ys, strict=True)
                  if y == y and abs(y) != float("inf")]
        body = [f"<text x='{_W / 2}' y='14' text-anchor='middle' font-weight='bold'>"
                f"{html.escape(metric)}</text>"]
        if points:
            x0 = min([0.0] + [p[0] for p in points] + [m[0] for m in marks])
            x1 = max([1.0] + [p[0] for p in points] + [m[0] for m in marks])
            y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
            if y1 - y0 < 1e-9:
                y0, y1 = y0 - 0.5, y1 + 0.5

            def sx(x):
                return _PAD + (x - x0) / (x1 - x0) * (_W - _PAD - 8)

            def sy(y):
                return _H - 20 - (y - y0) / (y1 - y0) * (_H - 44)

            for xs, ys, colour, dash, name in lines:
                pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True)
                               if y == y and abs(y) != float("inf"))
                body.append(f"<polyline class='tlw-tm-line' data-run='{html.escape(name)}' "
                            f"points='{pts}' fill='none' stroke='{colour}' stroke-width='1.6' "
                            f"stroke-dasharray='{dash}'/>")
            for at, text, _name in marks:
                body.append(f"<line class='tlw-tm-mark' x1='{sx(at):.1f}' x2='{sx(at):.1f}' "
                            f"y1='22' y2='{_H - 20}' stroke='#888' stroke-dasharray='2,2'/>"
                            f"<text x='{sx(at) + 3:.1f}' y='30' font-size='10' fill='#555'>"
                            f"{html.escape(text)}</text>")
            body.append(f"<text x='2' y='26' font-size='10'>{y1:.3g}</text>"
                        f"<text x='2' y='{_H - 20}' font-size='10'>{y0:.3g}</text>"
                        f"<text x='{_W - 8}' y='{_H - 4}' font-size='10' text-anchor='end'>"
                        f"{self.view} {x1:.3g}</text>")
        else:
            body.append(f"<text x='{_W / 2}' y='{_H / 2}' text-anchor='middle' fill='#888'>"
                        "no data yet</text>")
        return (f"<svg class='tlw-tm-panel' data-metric='{html.escape(metric)}' width='{_W}' "
                f"height='{_H}' style='border:1px solid #ddd;font-family:sans-serif;"
                f"font-size:11px'>{''.join(body)}</svg>")

    def _summary_html(self) -> str:
        rows = self.summary()
        if not rows:
            return ""
        keys = list(dict.fromkeys(k for row in rows for k in row))
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{_fmt(row.get(k, ''))}</td>" for k in keys) + "</tr>"
            for row in rows)
        return f"<table class='tlw-tm-summary'><tr>{head}</tr>{body}</table>"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))
