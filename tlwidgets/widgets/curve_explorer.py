"""CurveExplorer: featurise or fine-tune, per domain; add a folder of your own images.

A thin view over :mod:`tlwidgets.transfer_regimes`: pick a domain and the methods,
press *Run*, and the learning curves (mean over repeats, one line per method) and
the crossover sentence appear. *Add folder* checks a ``root/<class>/<images>``
folder (:func:`~tlwidgets.transfer_regimes.learner_domain`) before anything is
computed, and adds it as a domain; a bad folder gets a notice and adds nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import traitlets

from tlwidgets import transfer_regimes as tr
from tlwidgets.learning_curves import summarise_curves
from tlwidgets.widgets.charts import Chart, Line, Panel, colour

Runner = Callable[["tr.DomainData", Sequence[str]], list[dict]]


class CurveExplorer(widgets.VBox):
    """Learning curves of chosen methods on a chosen domain (yours too).

    ``domains``: ``{name: DomainData}``; ``run(domain, methods) -> records`` computes
    curves (e.g. :func:`~tlwidgets.transfer_regimes.domain_curves` with the notebook's
    sizes); ``known``: ``{name: records}`` already computed (the notebook's curves),
    shown without running again. ``prepare(root) -> DomainData`` turns a checked folder
    into a domain (features computed); it is called only after the folder passed.
    """

    domain = traitlets.Unicode("").tag(sync=True)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    folder = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    crossover_text = traitlets.Unicode("").tag(sync=True)
    runs = traitlets.Int(0).tag(sync=True)

    def __init__(self, domains: Mapping[str, tr.DomainData], run: Runner, *,
                 known: Mapping[str, list[dict]] | None = None,
                 prepare: Callable[[str], tr.DomainData] | None = None,
                 methods: Sequence[str] = tr.FEATURISED + tr.FINE_TUNED, metric: str = "accuracy"):
        if not domains:
            raise ValueError("Give at least one domain: {name: DomainData}.")
        self._domains = dict(domains)
        self._run, self._prepare, self._metric = run, prepare, metric
        self._rows: dict[str, list[dict]] = {k: list(v) for k, v in (known or {}).items()}
        self._domain_w = widgets.Dropdown(options=list(self._domains), description="domain")
        self._methods_w = widgets.SelectMultiple(options=list(tr.METHODS), value=tuple(methods),
                                                 rows=len(tr.METHODS), description="methods")
        self._folder_w = widgets.Text(placeholder="folder with one sub-folder per class",
                                      description="your images")
        self._add_w = widgets.Button(description="Add folder")
        self._run_w = widgets.Button(description="Run", button_style="primary")
        self._chart_w = widgets.HTML()
        self._text_w = widgets.HTML()
        self._add_w.on_click(lambda _: self.add_folder(self._folder_w.value))
        self._run_w.on_click(lambda _: self.update())
        super().__init__([widgets.HBox([self._domain_w, self._run_w]), self._methods_w,
                          widgets.HBox([self._folder_w, self._add_w]), self._text_w,
                          self._chart_w])
        self.add_class("tlw-curve-explorer")
        self._domain_w.add_class("tlw-ce-domain")
        self._text_w.add_class("tlw-ce-text")
        for w, trait in ((self._domain_w, "domain"), (self._folder_w, "folder")):
            widgets.link((w, "value"), (self, trait))
        self.methods = list(methods)
        self._methods_w.observe(lambda ch: setattr(self, "methods", list(ch["new"])), "value")
        self.observe(lambda ch: setattr(self._methods_w, "value", tuple(ch["new"])), "methods")
        self.domain = next(iter(self._domains))
        self.observe(lambda _: self.update(compute=False), "domain")
        self.update(compute=False)

    # ------------------------------------------------------------------ actions
    def add_folder(self, root: str) -> bool:
        """Check ``root`` and add it as a domain; on bad input say why and add nothing."""
        self.error = ""
        if self._prepare is None:
            self.error = "This explorer was made without a way to prepare folders (prepare=)."
            return self._show()
        try:
            domain = self._prepare(root)
        except (ValueError, FileNotFoundError, OSError) as exc:
            self.error = str(exc)
            return self._show()
        name = domain.name
        self._domains[name] = domain
        self._rows.pop(name, None)
        self._domain_w.options = list(self._domains)
        self.domain = name
        self.status = (f"Added {name!r}: {len(domain.y_train)} training and {len(domain.y_test)} "
                       f"test images. " + " ".join(domain.notices))
        self.update(compute=False)
        return True

    def update(self, *, compute: bool = True) -> None:
        """Curves of the chosen methods on the chosen domain (computing what is missing)."""
        self.error = ""
        if not self.methods:
            self.error = "Choose at least one method."
            self._show()
            return
        have = self._rows.get(self.domain, [])
        missing = [m for m in self.methods if not any(r["method"] == m for r in have)]
        if missing and compute:
            try:
                rows = self._run(self._domains[self.domain], missing)
            except ValueError as exc:
                self.error = str(exc)
                self._show()
                return
            self._rows[self.domain] = have + rows  # kept only once the run is complete
            self.runs += 1
        self._show()

    # ------------------------------------------------------------------ view
    def records(self) -> list[dict]:
        """The records on show: the chosen domain's, for the chosen methods."""
        return [r for r in self._rows.get(self.domain, []) if r["method"] in self.methods]

    def chart(self) -> Chart:
        rows = [r for r in self.records() if r["metric"] == self._metric]
        lines = []
        if rows:
            summary = summarise_curves(rows, metric=self._metric)
            n_classes = rows[0]["n_classes"] or 1
            for i, (m, by) in enumerate(summary.items()):
                xs = [s if s is not None else p["n_train"] / n_classes for s, p in by.items()]
                lines.append(Line(xs, [p["mean"] for p in by.values()], label=m,
                                  colour=colour(tr.METHODS.index(m) if m in tr.METHODS else i),
                                  dashed=m not in tr.FEATURISED + tr.FINE_TUNED, marker="o"))
        missing = [m for m in self.methods if not any(r["method"] == m for r in rows)]
        note = f"not computed yet (press Run): {', '.join(missing)}" if missing else ""
        return Chart([Panel(self.domain, lines=lines, xlabel="labelled images per class",
                            ylabel=f"test {self._metric}", xlog=True, ylog=False, note=note,
                            empty="press Run")], width=760, panel_height=320)

    def _show(self) -> bool:
        rows = self.records()
        self.crossover_text = ""
        if rows:
            try:
                result = tr.crossover(rows, metric=self._metric)[self.domain]
                self.crossover_text = tr.crossover_sentence(result)
            except ValueError:
                self.crossover_text = ("Choose a featuriser method and a fine-tuning method to "
                                       "see where one overtakes the other.")
        parts = []
        if self.error:
            parts.append(f"<div class='tlw-ce-error' style='color:#a40e26'>{html.escape(self.error)}</div>")
        if self.status:
            parts.append(f"<div class='tlw-ce-status'>{html.escape(self.status)}</div>")
        if self.crossover_text:
            parts.append(f"<div class='tlw-ce-crossover'>{html.escape(self.crossover_text)}</div>")
        self._text_w.value = "".join(parts)
        self._chart_w.value = self.chart().html(alt=f"learning curves on {self.domain}")
        return not self.error
