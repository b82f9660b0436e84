"""The learning curve: test scores of several methods as the labelled training set grows.

:func:`learning_curve` trains every method on the same random subsets of the
training set, size by size, and scores it on one test set; it returns tidy
records (method, size and its unit, repeat, metric, score), whatever the domain.
A *sampler* says what a size counts and draws the subsets: :class:`PerClass`
(images per class), :class:`Stratified` (examples in total),
``multitask.NerLabels`` (NER-labelled sentences). A method is any callable
``method(draw) -> score``; :class:`Fit` makes one from a scikit-learn-style
estimator. :func:`summarise_curves` gives the mean and spread over repeats,
:func:`plot_learning_curves` draws them.

Domain adapters, each returning these records: ``curves.compare_learning_curves``
(notebook 01's images), ``embedding_classifier.compare_learning_curves`` (text),
``multitask.compare_learning_curves`` (NER).

``None`` is "all the training data" wherever a size is asked for; 0 is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tlwidgets.ticks import count_ticks, readable_log_ticks

__all__ = [
    "Draw",
    "Fit",
    "PerClass",
    "Sampler",
    "Stratified",
    "check_size",
    "learning_curve",
    "per_class_indices",
    "plot_learning_curves",
    "size_label",
    "summarise_curves",
]

Score = float | Mapping[str, float]
Method = Callable[["Draw"], Score]


def check_size(size) -> int | None:
    """``size`` if it is a training size: a positive whole number, or ``None`` for all."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        hint = " (0 no longer means all: write None)" if size == 0 else ""
        raise ValueError(f"A training size is a positive whole number, or None for all the "
                         f"training data; got {size!r}{hint}.")
    return int(size)


def size_label(size: int | None) -> str:
    """``"all"`` for ``None``, else the number: the column names of a curve's table."""
    return "all" if size is None else str(size)


@dataclass(frozen=True)
class Draw:
    """One training subset of a learning curve, as a sampler drew it."""

    size: int | None  # in the sampler's unit; None: all the training data
    seed: int
    n_train: int  # labelled examples in the subset
    index: np.ndarray | None = None  # their positions in the training set
    data: Any = None  # what the sampler built instead of positions (NER: sentences)


class Sampler(Protocol):
    """What a size counts, and how a training subset of that size is drawn."""

    unit: str  # what a size counts, as an axis label: "labelled images per class"

    def resolve(self, size: int | None) -> int | None:
        """The size measured for ``size``: ``None`` where it means all; raises if impossible."""

    def draw(self, size: int | None, seed: int) -> Draw:
        """A random training subset of ``size`` (``None``: all of them)."""


class PerClass:
    """Sizes in examples per class: ``size`` random examples of every class.

    A size at or above the smallest class takes every example (``None``, "all").
    """

    def __init__(self, labels, *, unit: str = "labelled images per class"):
        self.labels = np.asarray(labels)
        self.unit = unit
        counts = np.unique(self.labels, return_counts=True)[1]
        if len(counts) < 2:
            raise ValueError(f"A learning curve needs at least two classes; the labels hold "
                             f"{len(counts)}.")
        self.n_classes, self.smallest = len(counts), int(counts.min())

    def resolve(self, size: int | None) -> int | None:
        return None if size is None or size >= self.smallest else size

    def draw(self, size: int | None, seed: int) -> Draw:
        idx = per_class_indices(self.labels, size, seed=seed)
        return Draw(size, seed, len(idx), idx)


class Stratified:
    """Sizes in examples in total, drawn with the classes' proportions (``train_test_split``).

    A size above the training set is an error; the whole set is ``None`` ("all").
    """

    def __init__(self, labels, *, unit: str = "labelled examples"):
        self.labels = np.asarray(labels)
        self.unit = unit
        self.n_classes = len(np.unique(self.labels))

    def resolve(self, size: int | None) -> int | None:
        if size is not None and size > len(self.labels):
            raise ValueError(f"The size {size} exceeds the {len(self.labels)} {self.unit} "
                             "available for training; use smaller sizes, or None for all.")
        return None if size is None or size == len(self.labels) else size

    def draw(self, size: int | None, seed: int) -> Draw:
        from sklearn.model_selection import train_test_split

        positions = np.arange(len(self.labels))
        if size is not None:
            positions = train_test_split(positions, train_size=size, stratify=self.labels,
                                         random_state=seed)[0]
        return Draw(size, seed, len(positions), positions)


class Fit:
    """A learning-curve method: a fresh ``make()`` estimator fitted on the drawn rows of
    ``X_train``, scored on all of ``X_test`` (the same test set at every size and repeat).

    ``scoring`` is ``"accuracy"`` or any scikit-learn scorer name (``"roc_auc"``); a
    sequence of names gives one record per metric.
    """

    def __init__(self, make: Callable[[], Any], X_train, y_train, X_test, y_test, *,
                 scoring: str | Sequence[str] = "accuracy"):
        self.make, self.X_train, self.X_test = make, X_train, X_test
        self.y_train, self.y_test = np.asarray(y_train), np.asarray(y_test)
        self.scoring = scoring

    def __call__(self, draw: Draw) -> Score:
        from sklearn.metrics import get_scorer

        model = self.make()
        model.fit(_take(self.X_train, draw.index), self.y_train[draw.index])
        names = [self.scoring] if isinstance(self.scoring, str) else list(self.scoring)
        scores = {n: float(np.mean(model.predict(self.X_test) == self.y_test)) if n == "accuracy"
                  else float(get_scorer(n)(model, self.X_test, self.y_test)) for n in names}
        return scores[self.scoring] if isinstance(self.scoring, str) else scores


def _take(X, idx):
    return X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]


def learning_curve(
    methods: Mapping[str, Method],
    sampler: Sampler,
    sizes: Sequence[int | None] = (5, 10, 20, 50, None),
    *,
    repeats: int = 3,
    seed: int = 0,
    repeat_all: bool = False,
    metric: str = "accuracy",
    domain: str = "",
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Test scores of several methods as the labelled training set grows: tidy records.

    ``sampler`` says what a size counts (:class:`PerClass` images, :class:`Stratified`
    examples, :class:`tlwidgets.multitask.NerLabels` sentences) and draws the training
    subsets; ``None`` in ``sizes`` is all the training data. For each size, ``repeats``
    subsets are drawn (seeds ``seed``, ``seed + 1``, ...; "all" once, unless
    ``repeat_all``: when the methods' own randomness follows the seed) and every method
    trains on the same subset. A method is a callable ``method(draw)`` returning its
    score on the test set (named ``metric``) or a dict of scores; :class:`Fit` makes one
    from an estimator.

    One record per (size, repeat, method, metric): ``domain``, ``method``, ``size``
    (``None``: all), ``size_unit``, ``n_train``, ``n_classes``, ``repeat``, ``seed``,
    ``metric``, ``score``, ``seconds`` (the fit and scoring). :func:`summarise_curves`
    gives the mean and spread.
    """
    if not methods:
        raise ValueError("Give at least one method: {name: callable(draw) -> score}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive whole number, not {repeats!r}.")
    plan: list[int | None] = []
    for size in sizes:  # every size checked before anything trains
        resolved = sampler.resolve(check_size(size))
        if resolved not in plan:  # a size that means "all" is measured once
            plan.append(resolved)
    if not plan:
        raise ValueError("Give at least one training size.")
    rows = []
    for size in plan:
        for repeat in range(repeats if size is not None or repeat_all else 1):
            draw = sampler.draw(size, seed + repeat)
            for name, method in methods.items():
                start = time.perf_counter()
                out = method(draw)
                seconds = time.perf_counter() - start
                for m, value in (out.items() if isinstance(out, Mapping) else [(metric, out)]):
                    row = {"domain": domain, "method": name, "size": size,
                           "size_unit": sampler.unit, "n_train": int(draw.n_train),
                           "n_classes": getattr(sampler, "n_classes", None), "repeat": repeat,
                           "seed": draw.seed, "metric": m, "score": float(value),
                           "seconds": seconds}
                    rows.append(row)
                    if progress is not None:
                        progress(row)
    return rows


def summarise_curves(rows: Sequence[Mapping], *, metric: str | None = None,
                     ) -> dict[str, dict[int | None, dict]]:
    """Mean and spread over repeats: ``{method: {size: {"mean", "std", "n", "n_train"}}}``.

    ``std`` is the sample standard deviation (ddof=1; 0 for a single repeat). Sizes
    keep the curve's order (``None``: all). ``metric`` picks one where the records hold
    several.
    """
    domains = {r["domain"] for r in rows}
    if len(domains) > 1:
        raise ValueError(f"The records come from several domains {sorted(domains)}; "
                         "summarise each domain's records on their own.")
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    if metric is None and len(metrics) > 1:
        raise ValueError(f"The records hold several metrics {metrics}; choose one with metric=.")
    if metric is not None and rows and metric not in metrics:
        raise ValueError(f"No record measures {metric!r}; the records hold {metrics}.")
    metric = metric or (metrics[0] if metrics else None)
    groups: dict[str, dict[int | None, list[Mapping]]] = {}
    for r in rows:
        if r["metric"] == metric:
            groups.setdefault(r["method"], {}).setdefault(r["size"], []).append(r)
    out: dict[str, dict[int | None, dict]] = {}
    for method, by_size in groups.items():
        for size, rs in by_size.items():
            v = [r["score"] for r in rs]
            out.setdefault(method, {})[size] = {
                "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "n": len(v), "n_train": int(round(np.mean([r["n_train"] for r in rs])))}
    return out


def per_class_indices(labels: np.ndarray, per_class: int | None, *, seed: int = 0) -> np.ndarray:
    """Indices of at most ``per_class`` samples of every class (``None``: all), sorted."""
    y = np.asarray(labels)
    if check_size(per_class) is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


# --------------------------------------------------------------------------- plot

_STYLES = {
    "pixels + logistic regression": ("#8c8c8c", "s", ":"),
    "small CNN from scratch": ("#d62728", "^", "--"),
    "featuriser + logistic regression": ("#1f77b4", "o", "-"),
    "featuriser + linear SVM": ("#2ca02c", "D", "-"),
}


def _other_styles() -> list[tuple[str, str, str]]:
    """Styles for the other methods, in order: colours the named ones do not use."""
    from tlwidgets.widgets.charts import PALETTE

    taken = {c for c, _, _ in _STYLES.values()}
    markers = "vP*Xph<>"
    return [(c, markers[i % len(markers)], "-")
            for i, c in enumerate(c for c in PALETTE if c not in taken)]


_OTHER_STYLES = _other_styles()


def plot_learning_curves(rows: Sequence[Mapping], ax=None, *, title: str = "",
                         chance: float | None = None, metric: str | None = None):
    """Mean score vs training size (log axis), one line per method, the spread as error bars.

    "All" sits at its mean size: its examples per class, or in total.
    """
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 4)).subplots()
    summary = summarise_curves(rows, metric=metric)
    unit = rows[0]["size_unit"] if rows else ""
    per_class = unit.endswith("per class")
    sizes: list[float] = []
    others = iter(_OTHER_STYLES)
    for m, by_size in summary.items():
        n_classes = next(r["n_classes"] for r in rows if r["method"] == m)
        x = [s if s is not None else p["n_train"] / (n_classes if per_class else 1)
             for s, p in by_size.items()]
        sizes += x
        colour, marker, ls = _STYLES[m] if m in _STYLES else next(others, (None, "o", "-"))
        ax.errorbar(x, [p["mean"] for p in by_size.values()],
                    yerr=[p["std"] for p in by_size.values()], label=m, color=colour,
                    marker=marker, linestyle=ls, capsize=3)
    ax.set_xscale("log")
    readable_log_ticks(ax.xaxis)
    count_ticks(ax.xaxis, sizes)  # a tick at each size: 5, 20, 50, not 2 x 10^1
    if chance is not None:  # inside the axes at their left edge, whatever the x scale
        ax.axhline(chance, color="#999", lw=0.8, ls=":")
        ax.text(0.01, chance, "chance", va="bottom", fontsize=8, color="#666",
                transform=ax.get_yaxis_transform())
    ax.set_xlabel(unit)
    ax.set_ylabel(f"test {metric or (rows[0]['metric'] if rows else 'score')}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
