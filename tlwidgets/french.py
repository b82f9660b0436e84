"""French text for the course: the Commercial Code (legal, with topic labels) and UD French-GSD.

Both ship in the course's data folder (``text/fr_legal``, ``text/fr_gsd``; see
``assets/README.md``). The French vectors are spaCy's ``fr_core_news_md``,
catalogue id ``fr-core-news-md-vectors``: ``load_vectors("fr-core-news-md-vectors")``.
French tokens (elisions: ``l'`` + ``entreprise``) are :func:`tlwidgets.oov.tokenize`'s
with ``language="fr"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tlwidgets.oov import Corpus, _conllu_texts

__all__ = ["BOOKS", "Article", "code_de_commerce", "gsd_corpus"]

#: The nine books (Livres) of the Code de commerce.
BOOKS = {
    "I": "Du commerce en général", "II": "Des sociétés commerciales et des groupements "
    "d'intérêt économique", "III": "De certaines formes de ventes et des clauses d'exclusivité",
    "IV": "De la liberté des prix et de la concurrence", "V": "Des effets de commerce et des "
    "garanties", "VI": "Des difficultés des entreprises", "VII": "Des juridictions commerciales "
    "et de l'organisation du commerce", "VIII": "De quelques professions réglementées",
    "IX": "Dispositions relatives à l'outre-mer",
}


@dataclass(frozen=True)
class Article:
    book: str  # "I" .. "IX"
    part: str
    article: str  # e.g. "L420-1"
    text: str


def _find(relative: str) -> Path:
    from tlwidgets.assets import data_dirs

    for folder in data_dirs():
        if (folder / relative).is_file():
            return folder / relative
    raise FileNotFoundError(f"{relative} is not in the data folders; set TLWIDGETS_DATA to the "
                            "course's assets folder (../shared/assets).")


def code_de_commerce(books: Sequence[str] | None = None) -> list[Article]:
    """The articles of the Code de commerce in force (5,590), optionally of some books only."""
    path = _find("text/fr_legal/code_de_commerce.jsonl")
    with path.open(encoding="utf-8") as fh:
        rows = [Article(**json.loads(line)) for line in fh if line.strip()]
    if books is not None:
        unknown = set(books) - set(BOOKS)
        if unknown:
            raise ValueError(f"Unknown books {sorted(unknown)}; the Code has {', '.join(BOOKS)}.")
        rows = [a for a in rows if a.book in books]
    return rows


def gsd_corpus(splits: Sequence[str] = ("dev", "test")) -> Corpus:
    """UD French-GSD sentences (news, blogs, Wikipedia, reviews): general French."""
    texts = [t for s in splits for _, t in _conllu_texts(_find(f"text/fr_gsd/fr_gsd-ud-{s}.conllu"))]
    return Corpus(texts, f"UD French-GSD ({'+'.join(splits)})")
