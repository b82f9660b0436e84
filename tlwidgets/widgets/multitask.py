"""MultiTaskWidget: choose tasks, weigh their losses, train, and watch each task learn."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

import ipywidgets as widgets
import keras
import traitlets

from tlwidgets import multitask as mt
from tlwidgets.conll import Sentence
from tlwidgets.widgets.charts import PALETTE, Chart, Line, Panel

TASK_TITLES = {"ner": "Named entities (end task)", "pos": "Part of speech",
               "lm": "Next word (language model)"}
COLOURS = {"ner": PALETTE[3], "pos": PALETTE[0], "lm": PALETTE[4], "total": PALETTE[7]}


def loss_chart(history: dict[str, list[float]], tasks: Sequence[str], *, every: int = 1,
               width: int = 1000) -> Chart:
    """Two panels: each task's training loss, and the weight its loss gets, per logged batch."""
    def lines(prefix: str) -> list[Line]:
        return [Line([every * (i + 1) for i in range(len(history[prefix + t]))],
                     history[prefix + t], label=TASK_TITLES.get(t, t), colour=COLOURS.get(t))
                for t in tasks if history.get(prefix + t)]

    weights = lines("weight:")
    values = [v for line in weights for v in line.y]
    fixed = bool(values) and all(min(line.y) == max(line.y) for line in weights)
    start = {t: history["weight:" + t][0] for t in tasks if history.get("weight:" + t)}
    if not fixed:
        note = ""
    elif len(set(start.values())) == 1:
        note = f"fixed weights: every task {next(iter(start.values())):g}"
    else:
        note = "fixed weights: " + ", ".join(f"{t} {w:g}" for t, w in start.items())
    return Chart([Panel("loss of each task (training batches)", lines=lines(""),
                        xlabel="batches seen", ylabel="loss", empty="press Train"),
                  Panel("weight each task's loss gets", lines=weights,
                        xlabel="batches seen", ylabel="weight", ylog=False, clip=False,
                        ylim=(0.0, 1.2 * max(values)) if values else None, note=note,
                        empty="press Train")],
                 width=width, panel_height=260, css_class="tlw-mt-chart")


def diagram_html(arch: dict) -> str:
    """Shared layers as one column at the bottom, one column per task head on top."""
    def box(name, params, colour):
        return (f"<div class='tlw-mt-layer' style='border:2px solid {colour};border-radius:4px;"
                f"padding:2px 6px;margin:3px;background:#fff'>{html.escape(name)} "
                f"<span style='color:#666;font-size:0.85em'>({params:,} weights)</span></div>")

    heads = "".join(
        f"<div class='tlw-mt-head' data-task='{t}' style='display:inline-block;vertical-align:bottom;"
        f"margin:0 6px'><b style='color:{COLOURS.get(t, '#333')}'>{t} head</b>"
        + "".join(box(n, p, COLOURS.get(t, "#333")) for n, p in reversed(layers)) + "</div>"
        for t, layers in arch["heads"].items())
    shared = "".join(box(n, p, "#57606a") for n, p in reversed(arch["shared"]))
    return ("<div class='tlw-mt-diagram' style='font-size:0.9em'>"
            f"<div>task-specific layers (one set per task):</div><div>{heads}</div>"
            "<div style='margin-top:4px'>&#8593; every head reads the same token vectors &#8593;</div>"
            f"<div class='tlw-mt-shared' style='display:inline-block;background:#f6f8fa;"
            f"padding:4px'><b>shared trunk</b>{shared}</div></div>")


class _Monitor(keras.callbacks.Callback):
    """Sends the running per-task losses to the widget every ``every`` batches and
    at the end of each epoch."""

    def __init__(self, widget: MultiTaskWidget, every: int):
        super().__init__()
        self.widget, self.every, self.seen, self.logged = widget, every, 0, 0
        self.logs: dict = {}

    def on_train_batch_end(self, batch, logs=None):
        self.seen, self.logs = self.seen + 1, dict(logs or {})
        if self.seen % self.every == 0:
            self._send()

    def on_epoch_end(self, epoch, logs=None):
        if self.logged != self.seen:
            self._send()

    def _send(self):
        self.logged = self.seen
        self.widget._log(self.logs)


class MultiTaskWidget(widgets.VBox):
    """Pick tasks and loss weights (or learned weights), train, and compare per-task progress.

    ``train_sents`` train the model and ``test_sents`` score it. Every press
    of **Train** builds a fresh model from the current settings.
    """

    tasks = traitlets.List(traitlets.Unicode(), default_value=["ner", "pos"]).tag(sync=True)
    loss_weights = traitlets.Dict().tag(sync=True)
    weighting = traitlets.Unicode("fixed").tag(sync=True)
    epochs = traitlets.Int(2).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    history = traitlets.Dict().tag(sync=True)
    scores = traitlets.Dict().tag(sync=True)
    runs = traitlets.Int(0).tag(sync=True)

    def __init__(self, train_sents: Sequence[Sentence], test_sents: Sequence[Sentence], *,
                 available: Sequence[str] = ("ner", "pos", "lm"), epochs: int = 2,
                 batch_size: int = 32, log_every: int = 5, seed: int = 0, **model_kwargs):
        self.train_sents, self.test_sents = list(train_sents), list(test_sents)
        self.available, self.batch_size, self.log_every = list(available), batch_size, log_every
        self.seed, self.model_kwargs, self.model = seed, model_kwargs, None
        self._boxes, self._sliders = {}, {}
        rows = []
        for t in self.available:
            box = widgets.Checkbox(value=t in self.tasks, description=TASK_TITLES.get(t, t),
                                   indent=False, layout={"width": "230px"})
            box.add_class(f"tlw-mt-task-{t}")
            slider = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.1,
                                         description="weight", continuous_update=False)
            slider.add_class(f"tlw-mt-weight-{t}")
            box.observe(self._on_controls, "value")
            slider.observe(self._on_controls, "value")
            self._boxes[t], self._sliders[t] = box, slider
            rows.append(widgets.HBox([box, slider]))
        self._weighting = widgets.ToggleButtons(
            options=[("fixed weights", "fixed"), ("learned (uncertainty)", "uncertainty")],
            value="fixed", tooltips=["Use the sliders", "Learn one weight per task "
                                     "(Kendall et al., 2018); sliders at 0 still switch a task off"],
            style={"button_width": "auto"})
        self._weighting.add_class("tlw-mt-weighting")
        self._weighting.observe(self._on_controls, "value")
        self._epochs = widgets.IntSlider(value=epochs, min=1, max=20, description="epochs")
        self._epochs.observe(self._on_controls, "value")
        self._button = widgets.Button(description="Train", icon="play", button_style="primary")
        self._button.add_class("tlw-mt-train")
        self._button.on_click(lambda _: self.train())
        self._status = widgets.HTML()
        self._status.add_class("tlw-mt-status")
        self._diagram = widgets.HTML()
        self._chart = widgets.HTML(layout=widgets.Layout(min_height="280px"))
        self._chart.add_class("tlw-mt-monitor")
        self._last_draw, self.draw_ms = 0.0, 0.0
        self._vocab_cache: dict[tuple, tuple] = {}
        self._scores = widgets.HTML()
        self._scores.add_class("tlw-mt-scores")
        controls = widgets.VBox([*rows, self._weighting, widgets.HBox([self._epochs, self._button]),
                                 self._status])
        super().__init__([widgets.HBox([controls, self._diagram]),
                          self._chart, self._scores])
        self.add_class("tlw-multitask")
        self.epochs = epochs
        self._on_controls()
        self._draw_chart()

    # -- state --------------------------------------------------------------------------------

    def _on_controls(self, _change=None) -> None:
        tasks = [t for t in self.available if self._boxes[t].value]
        if tasks != self.tasks or not self._diagram.value:
            self.tasks = tasks
            self._diagram.value = self._preview()  # the architecture changed
        self.loss_weights = {t: self._sliders[t].value for t in self.tasks}
        self.weighting = self._weighting.value
        self.epochs = self._epochs.value
        for t in self.available:
            self._sliders[t].disabled = not self._boxes[t].value

    def _preview(self) -> str:
        if not self.tasks:
            self.status = "Choose at least one task."
            self._status.value = self.status
            return ""
        if self.status == "Choose at least one task.":
            self.status = self._status.value = ""
        # The model Train will build: the same vocabulary, output sizes and settings.
        key = tuple(self.tasks)
        if key not in self._vocab_cache:
            vocab, tasks, data = mt.prepare(self.train_sents, self.tasks)
            self._vocab_cache[key] = (vocab, tasks, len(data))
        vocab, tasks, _ = self._vocab_cache[key]
        trunk = mt.build_trunk(len(vocab), **{
            k: v for k, v in self.model_kwargs.items()
            if k in ("encoder", "units", "embed_dim", "dropout", "embeddings",
                     "train_embeddings")})
        head_units = self.model_kwargs.get("head_units", 32)
        preview = mt.MultiTaskModel(trunk, tasks, head_units=head_units,
                                    loss_weights=None, weighting="fixed")
        preview({"words": keras.ops.ones((1, 2), "int32"), "case": keras.ops.ones((1, 2), "int32")})
        arch = mt.architecture(preview)
        total = preview.count_params()
        del preview, trunk
        return diagram_html(arch) + (
            f"<div class='tlw-mt-total' style='color:#555;font-size:0.9em'>{total:,} weights in "
            f"all; vocabulary of {len(vocab):,} words from the training sentences</div>")

    def _log(self, logs: dict) -> None:
        hist = {k: list(v) for k, v in self.history.items()}
        for t in self.tasks:
            if f"{t}_loss" in logs:
                hist.setdefault(t, []).append(float(logs[f"{t}_loss"]))
        for t, w in self.model.loss_weights_.items():
            hist.setdefault(f"weight:{t}", []).append(w)
        self.history = hist
        # Live, but drawing takes at most a fifth of the training time.
        if time.perf_counter() - self._last_draw >= max(0.5, 4 * self.draw_ms / 1000):
            self._draw_chart()

    def _draw_chart(self) -> None:
        t0 = self._last_draw = time.perf_counter()
        self._chart.value = loss_chart(self.history, self.tasks, every=self.log_every).html(
            alt="loss and loss weight of each task")
        self.draw_ms = 1000 * (time.perf_counter() - t0)

    # -- actions ------------------------------------------------------------------------------

    def train(self) -> dict:
        """Build a fresh model from the current settings, train it, score it on the test set."""
        try:
            vocab, tasks, data = mt.prepare(self.train_sents, self.tasks)
            self.model = mt.build_multitask_model(vocab, tasks, loss_weights=self.loss_weights,
                                                  weighting=self.weighting, seed=self.seed,
                                                  **self.model_kwargs)
        except ValueError as exc:
            self.status = f"Cannot train: {exc}"
            self._status.value = f"<span style='color:#cf222e'>{html.escape(self.status)}</span>"
            return {}
        self.history, self.scores = {}, {}
        self._scores.value = ""
        self._draw_chart()
        self._button.disabled = True
        self.status = f"training on {len(data)} sentences for {self.epochs} epoch(s)..."
        self._status.value = html.escape(self.status)
        try:
            mt.train(self.model, data, epochs=self.epochs, batch_size=self.batch_size,
                     seed=self.seed, callbacks=[_Monitor(self, self.log_every)])
            test = mt.encode(self.test_sents, vocab, tasks, require_labels=False)
            self.scores = mt.evaluate(self.model, test)
        finally:
            self._button.disabled = False
            self._draw_chart()  # the last batches too
        self.runs += 1
        self.status = f"done: run {self.runs}"
        self._status.value = html.escape(self.status)
        self._scores.value = self._scores_html()
        return self.scores

    def _scores_html(self) -> str:
        weights = ", ".join(f"{t} {w:.2f}" for t, w in self.model.loss_weights_.items())
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td class='tlw-mt-score' data-metric='{k}'>"
                       f"{v:.3f}</td></tr>" for k, v in self.scores.items())
        return (f"<b>Test scores</b> (weights at the end: {html.escape(weights)})"
                f"<table>{rows}</table>")
