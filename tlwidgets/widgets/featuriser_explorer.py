"""FeaturiserExplorer: pick a backbone, a cut layer, a classifier and a training size.

A thin view over :class:`tlwidgets.widgets.probe_lab.ProbeLab` (one per data set): the
features of every candidate layer are computed once per backbone (and cached
on disk), so each change of layer, classifier or training size refits a
scikit-learn classifier in well under a second and redraws

* a 2D projection (PCA) of the training features, the images used for
  training filled, the others hollow;
* the learning curve of that backbone/layer/classifier, with the current
  training size marked;
* the accuracy on the test set, the raw input dimension and the feature dimension.

State lives in traits (``dataset``, ``backbone``, ``layer``, ``classifier``,
``per_class``; results in ``accuracy``, ``n_train``, ``feature_dim``,
``raw_dim``, ``updates``), so tests can drive it from Python.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import traitlets

from tlwidgets.curves import CLASSIFIERS
from tlwidgets.learning_curves import check_size, size_label, summarise_curves
from tlwidgets.widgets.charts import count_ticks, readable_log_ticks
from tlwidgets.widgets.probe_lab import ProbeLab

SIZES = (5, 10, 20, 50, None)  # None = all
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _backbone_label(key: str) -> str:
    name, weights = key.split("/")
    return f"{name} ({'ImageNet' if weights == 'imagenet' else 'random'} weights)"


class FeaturiserExplorer(widgets.VBox):
    """Interactive featuriser + classifier on one or more train/test splits."""

    dataset = traitlets.Unicode("").tag(sync=True)
    backbone = traitlets.Unicode("auto/imagenet").tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    classifier = traitlets.Unicode(CLASSIFIERS[0]).tag(sync=True)
    per_class = traitlets.Int(None, allow_none=True).tag(sync=True)  # None = all
    accuracy = traitlets.Float(0.0).tag(sync=True)
    n_train = traitlets.Int(0).tag(sync=True)
    feature_dim = traitlets.Int(0).tag(sync=True)
    raw_dim = traitlets.Int(0).tag(sync=True)
    description = traitlets.Unicode("").tag(sync=True)
    updates = traitlets.Int(0).tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)

    def __init__(self, labs: Mapping[str, ProbeLab] | ProbeLab, *,
                 backbones: Sequence[str] = ("auto/imagenet", "auto/random"),
                 sizes: Sequence[int | None] = SIZES, curve_repeats: int = 2, **kwargs):
        if isinstance(labs, ProbeLab):
            labs = {"data": labs}
        if not labs:
            raise ValueError("Give at least one ProbeLab (a train/test split).")
        self.labs = dict(labs)
        self.sizes = tuple(check_size(s) for s in sizes)
        self.curve_repeats = curve_repeats
        self._curves: dict[tuple, list[dict]] = {}
        self._syncing = False

        style = {"description_width": "90px"}
        self._dataset = widgets.Dropdown(options=list(self.labs), description="Data",
                                         style=style)
        self._backbone = widgets.Dropdown(
            options=[(_backbone_label(k), k) for k in backbones], description="Backbone",
            style=style)
        self._layer = widgets.Dropdown(options=[], description="Cut at", style=style)
        self._classifier = widgets.Dropdown(options=list(CLASSIFIERS), description="Classifier",
                                            style=style)
        self._size = widgets.ToggleButtons(
            options=[size_label(s) for s in self.sizes],
            description="Per class", style={"description_width": "90px", "button_width": "48px"})
        for w, cls in ((self._dataset, "dataset"), (self._backbone, "backbone"),
                       (self._layer, "layer"), (self._classifier, "classifier"),
                       (self._size, "size")):
            w.add_class(f"tlw-fx-{cls}")
        self._summary = widgets.HTML()
        self._summary.add_class("tlw-fx-summary")
        self._figure = widgets.Image(format="png")
        self._figure.add_class("tlw-fx-figure")
        self._status = widgets.HTML()
        controls = widgets.HBox([
            widgets.VBox([self._dataset, self._backbone, self._layer]),
            widgets.VBox([self._classifier, self._size]),
        ])
        super().__init__([controls, self._status, self._summary, self._figure], **kwargs)
        self.add_class("tlw-featuriser-explorer")

        self.dataset = next(iter(self.labs))
        self.backbone = backbones[0]
        self.per_class = None if None in self.sizes else self.sizes[-1]
        self._refresh_layers()
        # Controls take the traits' values first (a link copies source to target).
        self._dataset.value, self._backbone.value = self.dataset, self.backbone
        self._classifier.value, self._size.value = self.classifier, size_label(self.per_class)
        for w, name in ((self._dataset, "dataset"), (self._backbone, "backbone"),
                        (self._layer, "layer"), (self._classifier, "classifier")):
            widgets.link((w, "value"), (self, name))
        by_label = {size_label(s): s for s in self.sizes}  # the buttons show "all" for None
        widgets.link((self._size, "value"), (self, "per_class"),
                     transform=(by_label.__getitem__, size_label))
        self.observe(self._on_change, names=["dataset", "backbone", "layer", "classifier",
                                             "per_class"])
        self.update()

    # ------------------------------------------------------------------ core

    @property
    def lab(self) -> ProbeLab:
        return self.labs[self.dataset]

    @property
    def _bb(self) -> tuple[str, str]:
        name, weights = self.backbone.split("/")
        return name, weights

    def _refresh_layers(self) -> None:
        name, weights = self._bb
        self._busy("Featurising every candidate layer (once per backbone and data set)...")
        self.lab.features(name, weights)
        layers = self.lab.layers(name, weights)
        keep = self.layer if self.layer in layers else layers[-1]
        self._syncing = True
        try:
            self._layer.options = layers  # (this resets the dropdown's value)
            self._layer.value = keep
            self.layer = keep
        finally:
            self._syncing = False

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        if change["name"] in ("dataset", "backbone"):
            self._refresh_layers()
        self.update()

    def _busy(self, text: str) -> None:
        self.busy = True
        self._status.value = f"<span style='color:#666'>{html.escape(text)}</span>"

    def curve(self) -> list[dict]:
        name, weights = self._bb
        key = (self.dataset, self.backbone, self.layer, self.classifier)
        if key not in self._curves:
            self._curves[key] = self.lab.curve(backbone=name, weights=weights, layer=self.layer,
                                               classifier=self.classifier, sizes=self.sizes,
                                               repeats=self.curve_repeats)
        return self._curves[key]

    def update(self) -> dict:
        """Refit the classifier for the current choices and redraw."""
        name, weights = self._bb
        self._busy("Training the classifier...")
        res = self.lab.evaluate(backbone=name, weights=weights, layer=self.layer,
                                classifier=self.classifier, per_class=self.per_class)
        curve = self.curve()
        proj = self.lab.projection(backbone=name, weights=weights, layer=self.layer)
        f = self.lab.featuriser(name, weights)
        self.accuracy = res["accuracy"]
        self.n_train = res["n_train"]
        self.feature_dim = res["dim"]
        self.raw_dim = int(np.prod(np.asarray(self.lab.X_train).shape[1:]))
        self.description = self._describe(f)
        self._summary.value = self._summary_html(f)
        self._figure.value = self._draw(proj, res, curve)
        self.updates += 1
        self.busy = False
        self._status.value = ""
        return res

    # ------------------------------------------------------------------ view

    def _describe(self, f) -> str:
        """The current choice in words: network, weights, cut layer and feature count."""
        _, weights = self._bb
        bb = getattr(f, "backbone_", None)
        network = bb.title.split(",")[0] if bb is not None else f.model_.name
        trained = "ImageNet-pretrained" if weights == "imagenet" else "random (untrained)"
        size = f" at {f.input_size_} px" if getattr(f, "input_size_", None) else ""
        shape = ""
        try:
            dims = f.model_.get_layer(self.layer).output.shape[1:]
            shape = " (" + "x".join(str(d) for d in dims) + ")"
        except (ValueError, AttributeError):
            pass  # a layer inside a nested model: its shape is not needed to say what it is
        pooled = {"avg": "global average pooling", "max": "global max pooling",
                  "flatten": "flattened"}.get(getattr(f, "pooling", "avg"), "pooled")
        return (f"{network} with {trained} weights{size}; cut at {self.layer}{shape}, "
                f"{pooled} -> {self.feature_dim:,} features")

    def _summary_html(self, f) -> str:
        shape = np.asarray(self.lab.X_train).shape[1:]
        raw = "x".join(str(s) for s in shape)
        net = f"{f.input_size_}x{f.input_size_}x3"
        seen = "" if raw == net else f" (the network sees it resized to {net})"
        desc = html.escape(self.description)
        notices = "".join(f"<div style='color:#9a6700;font-size:0.9em'>{html.escape(n)}</div>"
                          for n in getattr(f, "notices_", ()))
        return (
            f"<div class='tlw-fx-accuracy' style='font-size:1.3em'>test accuracy "
            f"<b>{self.accuracy:.3f}</b> with {self.n_train} labelled images "
            f"({self.classifier}, {len(self.lab.y_test)} test images)</div>"
            f"<div class='tlw-fx-dims'>raw image: {raw} = {self.raw_dim:,} numbers{seen}; "
            f"features: <b>{self.feature_dim:,}</b> numbers</div>"
            f"<div style='color:#555;font-size:0.9em'>{desc}</div>{notices}"
        )

    def _draw(self, proj: dict, res: dict, curve: list[dict]) -> bytes:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.8), dpi=80)
        ax1, ax2 = fig.subplots(1, 2)
        y = self.lab.y_train
        used = np.zeros(len(y), bool)
        used[res["train_index"]] = True
        names = self.lab.class_names or [str(c) for c in np.unique(y)]
        for c in np.unique(y):
            colour = _COLOURS[int(c) % len(_COLOURS)]
            pts = proj["train"][(y == c) & ~used]
            ax1.scatter(pts[:, 0], pts[:, 1], s=14, facecolors="none", edgecolors=colour,
                        alpha=0.5, linewidths=0.8)
            pts = proj["train"][(y == c) & used]
            label = names[int(c)] if int(c) < len(names) else str(c)
            ax1.scatter(pts[:, 0], pts[:, 1], s=22, color=colour, label=f"{label} (trained on)")
        ev = proj["explained"]
        ax1.set_title(f"features at {self.layer} (PCA: {ev[0]:.0%} + {ev[1]:.0%} of variance)",
                      fontsize=9)
        ax1.set_xticks([])
        ax1.set_yticks([])
        ax1.legend(fontsize=7, loc="best")
        n_classes = len(np.unique(y))
        points = summarise_curves(curve)[self.classifier].values()
        xs = [p["n_train"] / n_classes for p in points]
        ax2.plot(xs, [p["mean"] for p in points], marker="o", color="#1f77b4")
        ax2.plot([self.n_train / n_classes], [self.accuracy], marker="*", markersize=16,
                 color="#d62728", linestyle="none", label="this choice")
        ax2.axhline(np.max(np.bincount(self.lab.y_test)) / len(self.lab.y_test), color="#999",
                    lw=0.8, ls=":", label="majority class")
        ax2.set_xscale("log")
        ax2.set_xlim(min(xs + [1.0]) / 1.3, max(xs) * 1.3)
        readable_log_ticks(ax2.xaxis)
        count_ticks(ax2.xaxis, xs + [self.n_train / n_classes])
        ax2.set_xlabel("labelled images per class")
        ax2.set_ylabel("test accuracy")
        ax2.set_ylim(0.3, 1.0)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7, loc="lower right")
        ax2.set_title(f"learning curve: {self.classifier}", fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
