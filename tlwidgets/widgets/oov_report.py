"""OOVReportWidget: how much of a corpus the pretrained vocabulary covers, beside a general corpus."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import traitlets

from tlwidgets.oov import OOVReport, Text, oov_report
from tlwidgets.widgets.charts import Chart, Line, Panel, colour


def coverage_chart(reports: Sequence[OOVReport], *, width: int = 760, height: int = 320) -> str:
    """HTML figure: share of tokens covered against the vocabulary limit (log x), one line
    per report."""
    if not any(r.coverage_by_limit for r in reports):
        return ""
    lines = [Line(list(r.coverage_by_limit), list(r.coverage_by_limit.values()), label=r.name,
                  colour=colour(i), marker="o", width=2)
             for i, r in enumerate(reports) if r.coverage_by_limit]
    panel = Panel("How much of each corpus the first N words of the vocabulary cover",
                  lines=lines, xlog=True, ylog=False, percent=True, ylim=(0, 1.02), clip=False,
                  xlabel="words loaded (vocabulary limit, log scale)",
                  ylabel="share of tokens covered")
    return Chart([panel], width=width, panel_height=height, css_class="tlw-oov-chart").html(
        alt="token coverage against the vocabulary limit")


def report_table(reports: Sequence[OOVReport]) -> str:
    """HTML: one column per corpus, the report's numbers as rows."""
    rows = [
        ("tokens", lambda r: f"{r.tokens:,}"),
        ("distinct words (types)", lambda r: f"{r.types:,}"),
        ("token coverage", lambda r: f"{r.token_coverage:.1%}"),
        ("type coverage", lambda r: f"{r.type_coverage:.1%}"),
        ("tokens that become UNK", lambda r: f"<b>{r.unk_share:.1%}</b>"),
        ("content words lost (not stop words)", lambda r: f"<b>{r.content_lost:.1%}</b>"),
        ("undecodable bytes", lambda r: f"{r.decode_errors:,}"),
        ("most frequent OOV words", lambda r: ", ".join(
            f"{html.escape(w)} ({c})" for w, c in r.top_oov[:12]) or "none"),
    ]
    head = "".join(f"<th>{html.escape(r.name)}</th>" for r in reports)
    body = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{fmt(r)}</td>" for r in reports) + "</tr>"
        for name, fmt in rows)
    return (f"<table class='tlw-oov-table'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


class OOVReportWidget(widgets.VBox):
    """Point it at a corpus (a built-in one, a file or folder, or pasted text); see what is lost.

    ``vectors`` is the vocabulary (``KeyedVectors`` or a word list, most frequent
    first); ``corpora`` maps names to built-in corpora; ``reference`` is a general
    corpus whose report is shown beside the chosen one.
    """

    source = traitlets.Unicode("").tag(sync=True)
    token_coverage = traitlets.Float(0.0).tag(sync=True)
    unk_share = traitlets.Float(0.0).tag(sync=True)
    content_lost = traitlets.Float(0.0).tag(sync=True)
    top_oov = traitlets.List().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    runs = traitlets.Int(0).tag(sync=True)

    def __init__(self, vectors, corpora: Mapping[str, object], *, reference=None,
                 reference_name: str = "general corpus", **kwargs):
        self.vectors = vectors
        self.corpora = dict(corpora)
        self.report: OOVReport | None = None
        self._reference_corpus = reference
        self.reference = (oov_report(reference, vectors, name=reference_name)
                          if reference is not None else None)
        self._choice = widgets.Dropdown(
            options=[*self.corpora, "a file or folder", "pasted text"], description="Corpus:",
            layout=widgets.Layout(width="420px"))
        self._path = widgets.Text(placeholder="/path/to/file.txt or a folder",
                                  description="Path:", layout=widgets.Layout(width="420px"))
        self._text = widgets.Textarea(placeholder="Paste some text from your domain here",
                                      description="Text:",
                                      layout=widgets.Layout(width="620px", height="90px"))
        self._button = widgets.Button(description="Report", icon="search",
                                      tooltip="Measure the coverage of this corpus")
        self._button.add_class("tlw-oov-run")
        self._text.add_class("tlw-oov-text")
        self._choice.add_class("tlw-oov-choice")
        self._out = widgets.HTML()
        self._out.add_class("tlw-oov-output")
        self._button.on_click(lambda _: self.run())
        self._choice.observe(self._show_inputs, "value")
        super().__init__([self._choice, self._path, self._text, self._button, self._out], **kwargs)
        self.add_class("tlw-oov")
        self._show_inputs()
        self.run()

    def _show_inputs(self, _change=None) -> None:
        """The Path box only for a file or folder, the Text box only for pasted text."""
        choice = self._choice.value
        self._path.layout.display = None if choice == "a file or folder" else "none"
        self._text.layout.display = None if choice == "pasted text" else "none"

    def _corpus(self):
        choice = self._choice.value
        if choice == "a file or folder":
            if not self._path.value.strip():
                raise ValueError("Type the path of a text file or a folder of text files.")
            return Path(self._path.value.strip()).expanduser(), self._path.value.strip()
        if choice == "pasted text":
            return Text(self._text.value), "pasted text"
        return self.corpora[choice], choice

    def run(self) -> OOVReport | None:
        """Compute the report for the current choice (errors are shown, not raised)."""
        self.runs += 1
        try:
            corpus, name = self._corpus()
            self.report = report = oov_report(corpus, self.vectors, name=name)
        except (ValueError, TypeError, OSError) as exc:
            self.error = str(exc)
            self._out.value = (f"<div class='tlw-oov-error' style='color:#cf222e'>"
                               f"{html.escape(str(exc))}</div>")
            return None
        self.error = ""
        self.source = report.name
        self.token_coverage = report.token_coverage
        self.unk_share = report.unk_share
        self.content_lost = report.content_lost
        self.top_oov = [[w, c] for w, c in report.top_oov]
        is_reference = self.reference is None or report.name == self.reference.name or (
            self._choice.value in self.corpora
            and self.corpora[self._choice.value] is self._reference_corpus)
        shown = [report] if is_reference else [report, self.reference]
        self._out.value = report_table(shown) + coverage_chart(shown)
        return report
