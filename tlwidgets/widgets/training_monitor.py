"""TrainingMonitor: live curves of any named metrics, per epoch or per batch, runs side by side.

    monitor = TrainingMonitor(["loss", "accuracy"])
    model.fit(..., callbacks=[monitor.run("frozen base")])

Each metric gets a panel with the training curve (solid) and the validation
curve (``val_<metric>``, dashed) of every run shown; marks such as "unfroze 2
blocks" are drawn as numbered vertical lines, their text in the legend. Any
metric names work (``"ner_loss"``, ``"pos_accuracy"``), so multi-task notebooks
can reuse it. Charts come from :mod:`tlwidgets.widgets.charts` (log scale for
losses spanning decades, diverged runs clipped and named, 14 colours).
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

import ipywidgets as widgets
import traitlets

from tlwidgets.training import RunLog
from tlwidgets.widgets.charts import Chart, Line, Mark, Panel, colour

_STYLE_KEY = [Line([], [], label="training (solid)", colour="#555"),
              Line([], [], label="validation (dashed)", colour="#555", dashed=True)]


def _fmt(value) -> str:
    """A number for reading: 3 decimals for floats, thousands separators for ints."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _runs(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 2 else f"{len(names)} runs"


class RunSummary(list):
    """One dict per run (``summary[i]["best val_accuracy"]``), shown as a rounded table."""

    def columns(self) -> list[str]:
        return list(dict.fromkeys(k for row in self for k in row))

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No runs yet.</p>"
        keys = self.columns()
        # Numbers right-aligned under right-aligned headings, with room between columns.
        pad = "padding:2px 12px 2px 0"
        head = "".join(f"<th style='text-align:{'left' if k == 'run' else 'right'};{pad}'>"
                       f"{html.escape(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(
                f"<td style='text-align:{'left' if k == 'run' else 'right'};{pad}'>"
                f"{html.escape(_fmt(row.get(k)))}</td>" for k in keys) + "</tr>"
            for row in self)
        return (f"<table class='tlw-tm-summary'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def __repr__(self) -> str:
        if not self:
            return "RunSummary([])"
        keys = self.columns()
        cells = [[_fmt(row.get(k)) for k in keys] for row in self]
        widths = [max(len(k), *(len(r[i]) for r in cells)) for i, k in enumerate(keys)]
        lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
        lines += ["  ".join((c.ljust(w) if i == 0 else c.rjust(w))
                            for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                  for r in cells]
        return "\n".join(lines)

    __str__ = __repr__

class TrainingMonitor(widgets.VBox):
    """A Keras-callback factory and its live plots: ``monitor.run(name)`` is the callback."""

    metrics = traitlets.List(traitlets.Unicode()).tag(sync=True)
    view = traitlets.Unicode("epoch").tag(sync=True)
    run_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    shown = traitlets.List(traitlets.Unicode()).tag(sync=True)
    updates = traitlets.Int(0).tag(sync=True)
    draw_ms = traitlets.Float(0.0).tag(sync=True)
    log_scale = traitlets.List(traitlets.Unicode()).tag(sync=True)  # metrics drawn on a log axis
    off_scale = traitlets.Dict().tag(sync=True)  # metric -> runs clipped at the top edge

    def __init__(self, metrics: Sequence[str] = ("loss", "accuracy"), *,
                 redraw_every: float = 0.5, width: int = 1000, **kwargs):
        self.logs: dict[str, RunLog] = {}
        self.redraw_every = redraw_every
        self.width = width
        self._last_draw = 0.0
        self._view = widgets.ToggleButtons(options=["epoch", "batch"], value="epoch",
                                           description="x axis:",
                                           style={"button_width": "70px"})
        self._shown = widgets.SelectMultiple(
            options=[], description="runs shown:", rows=2,
            tooltip="Ctrl/Cmd-click to show several runs", style={"description_width": "80px"},
            layout=widgets.Layout(width="420px"))
        self._plots = widgets.HTML(layout=widgets.Layout(min_height="320px"))
        self._plots.add_class("tlw-tm-plots")
        self._table = widgets.HTML()
        controls = widgets.HBox([self._view, self._shown],
                                layout=widgets.Layout(align_items="flex-start"))
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
        with self.hold_trait_notifications():
            self._shown.options = list(self.logs)
            self._shown.rows = max(2, min(len(self.logs), 12))  # every run visible, no scrolling
            self._shown.value = tuple(self.logs)  # new runs are shown, for comparison
        self.draw()
        return log

    def summary(self) -> RunSummary:
        """Per run: last and best value of each validation metric (or training metric).

        A list of dicts (``summary()[0]["best val_accuracy"]``) that a notebook shows
        as a table, numbers rounded for reading.
        """
        rows = RunSummary()
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
        elif self.view == "batch":
            # Live batch curves, at most every `redraw_every` seconds, and never more than
            # a fifth of the time spent drawing.
            wait = max(self.redraw_every, 4 * self.draw_ms / 1000)
            if time.perf_counter() - self._last_draw >= wait:
                self.draw()

    def chart(self) -> Chart:
        """The current plots as a :class:`~tlwidgets.widgets.charts.Chart`."""
        shown = [n for n in (self.shown or list(self.logs)) if n in self.logs]
        order = list(self.logs)
        panels = []
        for metric in self.metrics:
            lines = []
            for name in shown:
                log, c = self.logs[name], colour(order.index(name))
                for key, dashed in ((metric, False), (f"val_{metric}", True)):
                    xs, ys = self._series(log, key)
                    n = min(len(xs), len(ys))
                    if n:
                        lines.append(Line(xs[:n], ys[:n], label=name, colour=c, dashed=dashed,
                                          marker="o" if n == 1 else None))
            marks: dict[tuple[float, str], list[str]] = {}
            for name in shown:
                for at, text in self.logs[name].marks:
                    marks.setdefault((at, text), []).append(name)
            panels.append(Panel(
                metric, lines=lines, ylabel=metric,
                # batch points sit at their fraction of the epoch: the axis counts epochs
                xlabel="epoch" if self.view == "epoch" else "epoch (a point per training batch)",
                percent="accuracy" in metric and all(0 <= v <= 1 for ln in lines for v in ln.y),
                marks=[Mark(at, f"{text} ({_runs(names)})") for (at, text), names in marks.items()]))
        return Chart(panels, width=self.width, legend=_STYLE_KEY if shown else (),
                     css_class="tlw-tm-chart", ncols=min(len(panels), 2) or 1)

    def draw(self) -> None:
        t0 = time.perf_counter()
        self._last_draw = t0
        chart = self.chart()
        self._plots.value = chart.html(alt="training curves: " + ", ".join(self.metrics))
        self.log_scale = [m for m, info in zip(self.metrics, chart.info, strict=False) if info.ylog]
        self.off_scale = {m: info.off_scale for m, info in zip(self.metrics, chart.info,
                                                                strict=False) if info.off_scale}
        summary = self.summary()
        self._table.value = summary._repr_html_() if summary else ""
        self.draw_ms = 1000 * (time.perf_counter() - t0)
        self.updates += 1

    def _series(self, log: RunLog, key: str) -> tuple[list[float], list[float]]:
        if self.view == "batch" and not key.startswith("val_"):
            return log.batch_x, log.batches.get(key, [])
        return [float(x) for x in log.epoch_x], log.epochs.get(key, [])
