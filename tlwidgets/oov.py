"""How much of a corpus a vocabulary covers: the out-of-vocabulary (OOV) report.

A corpus is any of: a string of text, ``bytes``, a ``pathlib.Path`` (or a string
naming an existing file or folder), or an iterable of strings (documents) or of
token lists. Files are read as UTF-8; undecodable bytes are replaced and counted,
never fatal. Two real corpora ship with the machine: :func:`python_reference`
(CPython's reference manual, a specialised domain) and :func:`ewt_sentences`
(UD English-EWT: web text, answers, email, reviews; a general domain).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlwidgets.vocab import lookup_rows

__all__ = [
    "STOP_WORDS",
    "Corpus",
    "OOVReport",
    "ewt_corpus",
    "ewt_sentences",
    "oov_report",
    "python_reference",
    "read_corpus",
    "sentences",
    "tokenize",
]

# GloVe's (Stanford) tokenisation splits clitics: "don't" -> "do n't", "it's" -> "it 's".
TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:-\w+)*")
_NT = re.compile(r"n't\b")
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".conllu", ""}
DEFAULT_LIMITS = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 400_000)


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


STOP_WORDS = _stop_words()


def tokenize(text: str, *, lowercase: bool = True) -> list[str]:
    """Word tokens as GloVe saw them: ``well-known``, ``__init__``, ``do n't``, ``it 's``."""
    if lowercase:
        text = text.lower()
    return TOKEN.findall(_NT.sub(" n't", text.replace("’", "'")))


@dataclass
class Corpus:
    """Text read from somewhere, with what could not be decoded."""

    texts: list[str]
    name: str = "corpus"
    decode_errors: int = 0  # undecodable byte sequences, replaced by U+FFFD
    files: int = 0

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def _decode(data: bytes) -> tuple[str, int]:
    text = data.decode("utf-8", errors="replace")
    return text, text.count("\ufffd") - data.count("\ufffd".encode())


def _read_file(path: Path) -> tuple[str, int]:
    text, errors = _decode(path.read_bytes())
    if path.suffix == ".conllu":
        text = "\n".join(line[9:] for line in text.splitlines() if line.startswith("# text = "))
    return text, errors


def read_corpus(source, *, name: str | None = None) -> Corpus:
    """Read any accepted corpus form into a :class:`Corpus` (see the module docstring)."""
    if isinstance(source, Corpus):
        return source
    if isinstance(source, bytes):
        text, errors = _decode(source)
        return Corpus([text], name or "bytes", errors)
    if isinstance(source, str) and "\n" not in source and len(source) < 4096 and (
        os.path.exists(source)
    ):
        source = Path(source)
    if isinstance(source, str):
        return Corpus([source], name or "pasted text")
    if isinstance(source, os.PathLike):
        return _read_path(Path(source), name)
    if isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise TypeError(
            f"A corpus is text, a file or folder path, or a list of strings or token lists; "
            f"got {type(source).__name__}."
        )
    texts = []
    for i, item in enumerate(source):
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, bytes):
            texts.append(item.decode("utf-8", errors="replace"))
        elif isinstance(item, Sequence) and all(isinstance(t, str) for t in item):
            texts.append(" ".join(item))
        else:
            raise TypeError(
                f"Corpus item {i} is {type(item).__name__} ({item!r:.60}); items must be "
                "strings (documents) or lists of string tokens."
            )
    return Corpus(texts, name or "texts")


def _read_path(path: Path, name: str | None) -> Corpus:
    if path.is_file():
        text, errors = _read_file(path)
        return Corpus([text], name or path.name, errors, 1)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and p.suffix.lower() in TEXT_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise ValueError(f"{path} holds no text files ({', '.join(sorted(TEXT_SUFFIXES - {''}))}).")
        texts, errors = [], 0
        for f in files:
            text, e = _read_file(f)
            texts.append(text)
            errors += e
        return Corpus(texts, name or path.name, errors, len(files))
    raise FileNotFoundError(f"{path} does not exist: point the corpus at a text file or a folder.")


def sentences(source, *, lowercase: bool = True, min_tokens: int = 1) -> list[list[str]]:
    """Tokenised sentences for gensim: one per non-empty line of each text."""
    corpus = read_corpus(source)
    out = []
    for text in corpus.texts:
        for line in text.splitlines():
            tokens = tokenize(line, lowercase=lowercase)
            if len(tokens) >= min_tokens:
                out.append(tokens)
    return out


# --------------------------------------------------------------------------- the report


@dataclass
class OOVReport:
    """Coverage of a corpus by a vocabulary (counts are exact; shares are in 0..1)."""

    name: str
    tokens: int
    types: int
    covered_tokens: int
    covered_types: int
    content_tokens: int  # tokens that are not stop words
    covered_content_tokens: int
    top_oov: list[tuple[str, int]]
    coverage_by_limit: dict[int, float]  # vocabulary limit -> token coverage
    vocabulary_size: int
    decode_errors: int = 0
    oov_counts: Counter = field(default_factory=Counter, repr=False)

    @property
    def token_coverage(self) -> float:
        return self.covered_tokens / self.tokens

    @property
    def type_coverage(self) -> float:
        return self.covered_types / self.types

    @property
    def unk_share(self) -> float:
        """Share of tokens that would become the UNK vector."""
        return 1.0 - self.token_coverage

    @property
    def content_lost(self) -> float:
        """Share of content-word (non stop word) tokens that are out of vocabulary."""
        if not self.content_tokens:
            return 0.0
        return 1.0 - self.covered_content_tokens / self.content_tokens

    def summary(self) -> dict[str, float | int | str]:
        return {
            "corpus": self.name, "tokens": self.tokens, "types": self.types,
            "token_coverage": self.token_coverage, "type_coverage": self.type_coverage,
            "unk_share": self.unk_share, "content_lost": self.content_lost,
            "decode_errors": self.decode_errors,
        }


def _ranks(vocabulary) -> Mapping[str, int]:
    """word -> frequency rank (0 = most frequent) from KeyedVectors, a mapping or a word list."""
    if hasattr(vocabulary, "key_to_index"):
        return vocabulary.key_to_index
    if hasattr(vocabulary, "mapping"):  # a compact WordList
        return vocabulary.mapping
    if isinstance(vocabulary, Mapping):
        return vocabulary
    if isinstance(vocabulary, str):
        raise TypeError("The vocabulary is a list of words (or KeyedVectors), not one string.")
    return {w: i for i, w in enumerate(vocabulary)}


def oov_report(
    corpus,
    vocabulary,
    *,
    lowercase: bool = True,
    top: int = 20,
    limits: Sequence[int] = DEFAULT_LIMITS,
    stop_words: Iterable[str] = STOP_WORDS,
    name: str | None = None,
) -> OOVReport:
    """Measure how much of ``corpus`` the ``vocabulary`` covers.

    ``vocabulary`` is a ``KeyedVectors`` (its order is its frequency rank, as in
    GloVe), a word -> rank mapping, or a list of words, most frequent first.
    ``coverage_by_limit`` gives the token coverage if only the first ``limit``
    words were loaded.
    """
    read = read_corpus(corpus, name=name)
    counts: Counter = Counter()
    for text in read.texts:
        counts.update(tokenize(text, lowercase=lowercase))
    if not counts:
        raise ValueError(
            f"The corpus {read.name!r} has no word tokens (it is empty or holds only "
            "punctuation/whitespace). Point it at some text."
        )
    ranks = _ranks(vocabulary)
    size = len(ranks)
    words = list(counts)
    freq = np.fromiter(counts.values(), dtype=np.int64, count=len(words))
    missing = size + 1
    rank = lookup_rows(ranks, words)
    rank[rank < 0] = missing
    stop = frozenset(stop_words)
    content = np.fromiter((w not in stop for w in words), dtype=bool, count=len(words))
    covered = rank < missing
    order = np.argsort(rank, kind="stable")
    cumulative = np.cumsum(freq[order])
    sorted_rank = rank[order]
    by_limit = {}
    total = int(freq.sum())
    for limit in sorted({*(x for x in limits if x < size), size}):
        k = int(np.searchsorted(sorted_rank, limit, side="left"))
        by_limit[int(limit)] = float(cumulative[k - 1]) / total if k else 0.0
    oov = Counter({w: int(c) for w, c, ok in zip(words, freq, covered, strict=True) if not ok})
    return OOVReport(
        name=read.name, tokens=total, types=len(words),
        covered_tokens=int(freq[covered].sum()), covered_types=int(covered.sum()),
        content_tokens=int(freq[content].sum()),
        covered_content_tokens=int(freq[content & covered].sum()),
        top_oov=oov.most_common(top), coverage_by_limit=by_limit,
        vocabulary_size=size, decode_errors=read.decode_errors, oov_counts=oov,
    )


# --------------------------------------------------------------------------- corpora on the machine


def python_reference() -> Corpus:
    """CPython's reference manual (``pydoc_data.topics``): a specialised domain, offline."""
    from pydoc_data.topics import topics

    return Corpus([topics[k] for k in sorted(topics)], "Python reference manual")


def ewt_sentences(splits: Sequence[str] = ("dev", "test")) -> list[tuple[str, str]]:
    """``(sent_id, text)`` for UD English-EWT sentences, through the asset layer."""
    from tlwidgets.assets import resolve

    found = []
    for split in splits:
        path = resolve(f"ud-en-ewt-{split}").path
        sent_id = None
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("# sent_id = "):
                    sent_id = line[12:].strip()
                elif line.startswith("# text = ") and sent_id is not None:
                    found.append((sent_id, line[9:].strip()))
                    sent_id = None
    return found


def ewt_corpus(splits: Sequence[str] = ("dev", "test")) -> Corpus:
    """UD English-EWT sentences as a general-domain :class:`Corpus`."""
    return Corpus([t for _, t in ewt_sentences(splits)], f"UD English-EWT ({'+'.join(splits)})")
