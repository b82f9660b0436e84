"""EmbeddingExplorer: neighbours, analogies and a 2D map, general vs domain-adapted vectors."""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
import traitlets

from tlwidgets import embeddings as E
from tlwidgets.widgets.charts import PALETTE, Chart, Panel, Points

_SPACE_COLOURS = {"general": PALETTE[0], "domain": PALETTE[3]}
_SPACE_TITLES = {"general": "general (pretrained)", "domain": "domain-adapted"}


def word_map(maps: dict[str, list[tuple[str, float, float]]], *, width: int = 1000) -> Chart:
    """One panel per vector space: the words at their 2D (PCA) coordinates."""
    panels = [Panel(f"{_SPACE_TITLES.get(name, name)} space", hide_ticks=True,
                    xlabel="1st principal component", ylabel="2nd principal component",
                    points=[Points([p[1] for p in pts], [p[2] for p in pts], [p[0] for p in pts],
                                   colour=_SPACE_COLOURS.get(name, PALETTE[0]))])
              for name, pts in maps.items()]
    return Chart(panels, width=width, panel_height=340, css_class="tlw-emb-map")


def _neighbour_table(title: str, rows: list[tuple[str, float]] | str, css: str) -> str:
    if isinstance(rows, str):
        body = f"<tr><td colspan='2' style='color:#9a6700'>{html.escape(rows)}</td></tr>"
    else:
        body = "".join(f"<tr><td>{html.escape(w)}</td><td>{s:.2f}</td></tr>" for w, s in rows)
    return (f"<table class='{css}' style='display:inline-block;vertical-align:top;"
            f"margin-right:2em;min-width:220px'><caption style='white-space:nowrap;"
            f"text-align:left'><b>{html.escape(title)}</b></caption>{body}</table>")


class EmbeddingExplorer(widgets.VBox):
    """Explore one or two vector sets: ``general`` (pretrained) and ``domain`` (adapted).

    Every action also works from Python: :meth:`show_neighbours`, :meth:`solve_analogy`,
    :meth:`score_analogies`, :meth:`project`; results land in the synced traits.
    """

    word = traitlets.Unicode("").tag(sync=True)
    neighbours_general = traitlets.List().tag(sync=True)
    neighbours_domain = traitlets.List().tag(sync=True)
    analogy_result = traitlets.List().tag(sync=True)
    analogy_accuracy = traitlets.Float(None, allow_none=True).tag(sync=True)
    projected = traitlets.List().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, general, domain=None, *, words: Sequence[str] = ("king", "queen", "man", "woman"),
                 word: str = "king", topn: int = 8, analogy_questions: int | None = 2000, **kwargs):
        self.general, self.domain, self.topn = general, domain, topn
        self.analogy_questions = analogy_questions
        layout = widgets.Layout(width="160px")
        self._word = widgets.Text(value=word, description="Word:", continuous_update=False)
        self._word.add_class("tlw-emb-word")
        self._go = widgets.Button(description="Neighbours", icon="search")
        self._go.add_class("tlw-emb-neighbours")
        self._tables = widgets.HTML()
        self._tables.add_class("tlw-emb-tables")
        self._a = widgets.Text(value="man", layout=layout, placeholder="a")
        self._b = widgets.Text(value="king", layout=layout, placeholder="b")
        self._c = widgets.Text(value="woman", layout=layout, placeholder="c")
        self._solve = widgets.Button(description="Solve a : b :: c : ?")
        self._solve.add_class("tlw-emb-solve")
        self._score = widgets.Button(description="Score on Google analogies",
                                     layout=widgets.Layout(width="220px"))
        self._score.add_class("tlw-emb-score")
        self._analogy_out = widgets.HTML()
        self._analogy_out.add_class("tlw-emb-analogy")
        self._words = widgets.Text(value=", ".join(words), description="Words:",
                                   layout=widgets.Layout(width="620px"))
        self._project = widgets.Button(description="Project to 2D", icon="map")
        self._project.add_class("tlw-emb-project")
        self._map = widgets.HTML()
        self._status = widgets.HTML()
        self._status.add_class("tlw-emb-status")
        self._go.on_click(lambda _: self.show_neighbours(self._word.value))
        self._word.observe(lambda change: self.show_neighbours(change["new"]), "value")
        self._solve.on_click(lambda _: self.solve_analogy(self._a.value, self._b.value, self._c.value))
        self._score.on_click(lambda _: self.score_analogies())
        self._project.on_click(lambda _: self.project(self._words.value))
        super().__init__([
            widgets.HTML("<b>Nearest neighbours</b> (cosine similarity)"),
            widgets.HBox([self._word, self._go]), self._tables,
            widgets.HTML("<b>Analogies</b>: a is to b as c is to ?"),
            widgets.HBox([self._a, self._b, self._c, self._solve, self._score]), self._analogy_out,
            widgets.HTML("<b>2D map</b> (PCA of the chosen words, in each vector space)"),
            widgets.HBox([self._words, self._project]), self._map, self._status,
        ], **kwargs)
        self.add_class("tlw-emb-explorer")
        self.show_neighbours(word)
        self.project(", ".join(words))

    # ------------------------------------------------------------------ actions

    def _spaces(self):
        yield "general", self.general
        if self.domain is not None:
            yield "domain", self.domain

    def _say(self, text: str) -> None:
        self.message = text
        self._status.value = f"<div style='color:#9a6700'>{html.escape(text)}</div>" if text else ""

    def show_neighbours(self, word: str) -> None:
        word = word.strip()
        self.word = word
        tables, found = [], {}
        for name, kv in self._spaces():
            try:
                found[name] = E.nearest(kv, word, self.topn)
            except KeyError as exc:
                found[name] = exc.args[0]
            tables.append(_neighbour_table(_SPACE_TITLES[name], found[name], f"tlw-emb-{name}"))
        self.neighbours_general = [w for w, _ in found["general"]] if isinstance(
            found["general"], list) else []
        self.neighbours_domain = [w for w, _ in found.get("domain", [])] if isinstance(
            found.get("domain"), list) else []
        self._tables.value = "".join(tables)

    def solve_analogy(self, a: str, b: str, c: str) -> None:
        try:
            result = E.analogy(self.general, a.strip(), b.strip(), c.strip(), topn=5)
        except KeyError as exc:
            self.analogy_result = []
            self._analogy_out.value = f"<span style='color:#cf222e'>{html.escape(exc.args[0])}</span>"
            return
        self.analogy_result = [w for w, _ in result]
        best = ", ".join(f"<b>{html.escape(w)}</b> ({s:.2f})" for w, s in result)
        self._analogy_out.value = f"{html.escape(a)} : {html.escape(b)} :: {html.escape(c)} : {best}"

    def score_analogies(self) -> E.AnalogyScore:
        score = E.evaluate_analogies(self.general, max_questions=self.analogy_questions)
        self.analogy_accuracy = score.accuracy
        self._analogy_out.value = (
            f"Google analogy set: <b>{score.accuracy:.1%}</b> right on {score.covered:,} "
            f"questions covered (of {score.questions:,} asked).")
        return score

    def project(self, words: str | Sequence[str]) -> None:
        if isinstance(words, str):
            words = [w.strip() for w in words.split(",") if w.strip()]
        maps, projected, skipped = {}, [], []
        for name, kv in self._spaces():
            known = [w for w in words if w in kv.key_to_index or E._has_subwords(kv)]
            skipped += [f"{w} ({name})" for w in words if w not in known]
            if len(known) >= 2:
                xy = E.project_2d(kv, known)
                points = [(w, float(x), float(y)) for w, (x, y) in zip(known, xy, strict=True)]
                projected += [[name, w, x, y] for w, x, y in points]
                maps[name] = points
        self.projected = projected
        self._map.value = word_map(maps).html(alt="2D map of the chosen words") if maps else ""
        self._say(f"Not in the vocabulary, so not shown: {', '.join(skipped)}." if skipped else "")
