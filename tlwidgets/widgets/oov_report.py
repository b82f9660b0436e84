"""OOVReportWidget: how much of a corpus the pretrained vocabulary covers, beside a general corpus."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import traitlets

from tlwidgets.oov import OOVReport, Text, oov_report

_COLOURS = ["#cf222e", "#0969da", "#1a7f37", "#9a6700"]


def coverage_chart(reports: Sequence[OOVReport], *, width: int = 460, height: int = 230) -> str:
    """SVG: token coverage against the vocabulary limit (log scale), one line per report."""
    xs = sorted({x for r in reports for x in r.coverage_by_limit})
    if not xs:
        return ""
    lo, hi = math.log10(xs[0]), math.log10(xs[-1])
    span = (hi - lo) or 1.0
    left, right, top, bottom = 45, width - 10, 10, height - 35

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (math.log10(x) - lo) / span * (right - left), bottom - y * (bottom - top)

    parts = [f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' stroke='#888'/>",
             f"<line x1='{left}' y1='{top}' x2='{left}' y2='{bottom}' stroke='#888'/>"]
    for tick in (0.0, 0.5, 1.0):
        parts.append(f"<text x='5' y='{px(xs[0], tick)[1] + 4:.1f}' font-size='10'>{tick:.0%}</text>")
    for x in xs:
        a = px(x, 0)[0]
        label = f"{x / 1000:g}k" if x >= 1000 else f"{x:g}"
        parts.append(f"<text x='{a - 8:.1f}' y='{bottom + 12}' font-size='9'>{label}</text>")
    for i, r in enumerate(reports):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = " ".join("{:.1f},{:.1f}".format(*px(x, y)) for x, y in r.coverage_by_limit.items())
        parts.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='2'/>")
        parts.append(f"<text x='{left + 10}' y='{bottom - 8 - 14 * i}' font-size='11' "
                     f"fill='{colour}'>{html.escape(r.name)}</text>")
    parts.append(f"<text x='{left + 60}' y='{height - 5}' font-size='11'>"
                 "words loaded (vocabulary limit, log scale) -> share of tokens covered</text>")
    return (f"<svg class='tlw-oov-chart' width='{width}' height='{height}' "
            f"style='border:1px solid #ddd;background:#fff'>{''.join(parts)}</svg>")


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
        super().__init__([self._choice, self._path, self._text, self._button, self._out], **kwargs)
        self.add_class("tlw-oov")
        self.run()

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
        shown = [report] + ([self.reference] if self.reference is not None else [])
        self._out.value = report_table(shown) + coverage_chart(shown)
        return report
