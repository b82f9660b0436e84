"""How much of a corpus a vocabulary covers: the out-of-vocabulary (OOV) report.

A corpus is one of, and a ``str`` is never guessed at:

* ``Path("...")``: a file or a folder (read a block at a time, see
  :mod:`tlwidgets.textfiles` for encodings, binary files, HTML and hidden folders);
* ``Text("...")``: text itself (``str``, or ``bytes`` decoded like a file);
* an iterable of documents: strings, or lists of string tokens;
* a :class:`Corpus`.

A bare ``str`` raises a ``TypeError`` saying which of ``Text(...)`` and ``Path(...)``
to write, so a mistyped path is never counted as five words of text.

The report says first what would make its numbers misleading: a text in another
language than the vectors (their 1,000 most frequent words then cover little of
it), undecodable bytes, files skipped. It counts content words with the stop
words of the text's own language, and shows coverage *quality*: each covered
word's frequency rank in the vectors' vocabulary, the covered words that are
rare there but frequent in the corpus (poorly trained vectors), and, for pruned
tables (spaCy's), the words that only share another word's vector.

Tokens follow the vectors' conventions: for English GloVe's (``don't`` ->
``do n't``), for French the way French readers split words (and spaCy's French
vectors store them): an elided article or pronoun is a word with its apostrophe,
``l'entreprise`` -> ``l'`` + ``entreprise``, ``lorsqu'il`` -> ``lorsqu'`` + ``il``,
``jusqu'à`` -> ``jusqu'`` + ``à``, while ``aujourd'hui``, ``prud'homme(s)``,
``quelqu'un(e)`` and ``presqu'île`` stay whole; the typographic apostrophe ``’``
counts as ``'``. Text is compared in NFC and lowercased.
"""

from __future__ import annotations

import heapq
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from tlwidgets import textfiles
from tlwidgets.language import LANGUAGES, guess_language, stop_words, vocabulary_language
from tlwidgets.vocab import SharedRows, lookup_rows

__all__ = [
    "STOP_WORDS",
    "Corpus",
    "OOVReport",
    "Text",
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
# French: elided words keep their apostrophe; a few words hold one inside.
FRENCH_TOKEN = re.compile(
    r"aujourd'hui|prud'hom\w*|quelqu'une?s?\b|presqu'îles?"
    r"|(?:[cdjlmnst]|qu|lorsqu|puisqu|quoiqu|jusqu)'(?=\w)|\w+(?:-\w+)*")
PLAIN_TOKEN = re.compile(r"\w+(?:-\w+)*")
DEFAULT_LIMITS = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 400_000)
TEXT_SUFFIXES = textfiles.TEXT_SUFFIXES
_SAMPLE = 200_000  # characters read before the language is decided
_SAME_LANGUAGE_TOP1000 = 0.30  # below this the text is unlikely to be in the vectors' language

STOP_WORDS = stop_words("en")


class Text(str):
    """Text to analyse as it is (``Text("...")``), never taken for a path.

    ``Text(b"...")`` decodes bytes as files are decoded (see :mod:`tlwidgets.textfiles`).
    """

    def __new__(cls, value: str | bytes = ""):
        if isinstance(value, bytes):
            decoded, encoding, replaced = textfiles.decode_bytes(value)
            self = super().__new__(cls, decoded)
            self.encoding, self.decode_errors = encoding, replaced
            return self
        if not isinstance(value, str):
            raise TypeError(f"Text() takes a str or bytes, not {type(value).__name__}.")
        self = super().__new__(cls, value)
        self.encoding, self.decode_errors = "str", 0
        return self


def _ambiguous(value: str | bytes) -> TypeError:
    shown = value[:60] if isinstance(value, str) else value[:60].decode("utf-8", "replace")
    return TypeError(
        f"A bare {type(value).__name__} ({shown!r}) could be text or a path, so it is not "
        f"guessed. Write Text({shown[:20]!r}...) for text or Path({shown[:20]!r}...) for a "
        "file or folder (from pathlib import Path; from tlwidgets.oov import Text).")


def tokenize(text: str, *, lowercase: bool = True, language: str = "en") -> list[str]:
    """Word tokens: GloVe's for English, French elisions for ``"fr"`` (module docstring).

    Other languages get plain word tokens (letters, digits, inner hyphens).
    """
    if lowercase:
        text = text.lower()
    text = text.replace("’", "'")
    if language == "fr":
        return FRENCH_TOKEN.findall(text)
    if language == "en":
        return TOKEN.findall(_NT.sub(" n't", text))
    return PLAIN_TOKEN.findall(text)


@dataclass
class Corpus:
    """Text read from somewhere, with what reading found out."""

    texts: list[str]
    name: str = "corpus"
    decode_errors: int = 0  # undecodable byte sequences, replaced by U+FFFD
    files: int = 0
    info: textfiles.ReadInfo = field(default_factory=textfiles.ReadInfo, repr=False)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def _name(source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, Corpus):
        return source.name
    if isinstance(source, Text):
        return "text"
    if isinstance(source, os.PathLike):
        return Path(source).name or str(source)
    return "texts"


def _blocks(source, info: textfiles.ReadInfo) -> Iterator[str]:
    """Any accepted corpus form as blocks of text (a file is never read whole)."""
    if isinstance(source, Corpus):
        info.merge(source.info)
        if not source.info.files:
            info.files += source.files
            info.decode_errors += source.decode_errors
        yield from (unicodedata.normalize("NFC", t) for t in source.texts)
        return
    if isinstance(source, Text):
        info.decode_errors += source.decode_errors
        if source.encoding not in ("str", "utf-8"):
            info.encodings[source.encoding] += 1
        yield from textfiles.text_blocks(str(source))
        return
    if isinstance(source, str | bytes):
        raise _ambiguous(source)
    if isinstance(source, os.PathLike):
        yield from _path_blocks(Path(source), info)
        return
    if isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise TypeError(
            "A corpus is Path(...) (a file or folder), Text(...), or a list of documents "
            f"(strings or token lists); got {type(source).__name__}.")
    for i, item in enumerate(source):
        if isinstance(item, Text):
            info.decode_errors += item.decode_errors
            yield str(item)
        elif isinstance(item, str):
            yield unicodedata.normalize("NFC", item)
        elif isinstance(item, bytes):
            yield Text(item)
        elif isinstance(item, Sequence) and all(isinstance(t, str) for t in item):
            yield unicodedata.normalize("NFC", " ".join(item))
        else:
            raise TypeError(
                f"Corpus item {i} is {type(item).__name__} ({item!r:.60}); items must be "
                "strings (documents) or lists of string tokens.")


def _path_blocks(path: Path, info: textfiles.ReadInfo) -> Iterator[str]:
    if path.is_file():
        yield from textfiles.file_blocks(path, info)
        return
    if path.is_dir():
        files = textfiles.folder_files(path)
        if not files:
            raise ValueError(f"{path} holds no text files "
                             f"({', '.join(sorted(TEXT_SUFFIXES - {''}))}); hidden folders "
                             "are skipped.")
        for f in files:
            try:
                yield from textfiles.file_blocks(f, info)
            except textfiles.BinaryFileError as exc:
                info.skipped.append(f"{f.relative_to(path)} ({str(exc).split(' is ', 1)[-1]})")
        if not info.files:
            raise ValueError(f"{path} holds no readable text files: {'; '.join(info.skipped)}.")
        return
    raise FileNotFoundError(f"{path} does not exist: point the corpus at a text file or a folder.")


def read_corpus(source, *, name: str | None = None) -> Corpus:
    """Read any accepted corpus form into a :class:`Corpus` held in memory.

    For large corpora prefer :func:`oov_report` on the ``Path``: it never holds the text.
    """
    if isinstance(source, Corpus):
        return source
    info = textfiles.ReadInfo()
    texts = list(_blocks(source, info))
    return Corpus(texts, _name(source, name), info.decode_errors, info.files, info)


def _decide_language(blocks: Iterator[str], language: str) -> tuple[str, Iterator[str]]:
    """The language to tokenise in, and the blocks again (those read to decide included)."""
    if language != "auto":
        if language not in LANGUAGES:
            raise ValueError(f"language must be 'auto' or one of {', '.join(LANGUAGES)}, "
                             f"not {language!r}.")
        return language, blocks
    head, size = [], 0
    for block in blocks:
        head.append(block)
        size += len(block)
        if size >= _SAMPLE:
            break
    guess = guess_language(Counter(PLAIN_TOKEN.findall(" ".join(head).lower())))
    return guess.language or "en", chain(head, blocks)


def sentences(source, *, lowercase: bool = True, min_tokens: int = 1,
              language: str = "auto") -> list[list[str]]:
    """Tokenised sentences for gensim: one per non-empty line of each text."""
    info = textfiles.ReadInfo()
    lang, blocks = _decide_language(_blocks(source, info), language)
    out = []
    for text in blocks:
        for line in text.splitlines():
            tokens = tokenize(line, lowercase=lowercase, language=lang)
            if len(tokens) >= min_tokens:
                out.append(tokens)
    return out


# --------------------------------------------------------------------------- the report


@dataclass
class OOVReport:
    """Coverage of a corpus by a vocabulary (counts are exact; shares are in 0..1).

    ``warnings`` lists, in words and most serious first, what makes the numbers
    misleading (a language mismatch comes first).
    """

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
    language: str | None = None  # the text's language (ISO 639-1) used for tokens and stop words
    vectors_language: str | None = None  # the vocabulary's, None when it cannot be told
    top1000_coverage: float = 0.0  # token share covered by the vocabulary's 1,000 first words
    warnings: list[str] = field(default_factory=list)
    top_covered: list[tuple[str, int, int]] = field(default_factory=list)  # word, count, rank
    rare_covered: list[tuple[str, int, int]] = field(default_factory=list)  # word, count, rank
    shared_covered: list[tuple[str, int, str]] = field(default_factory=list)  # word, count, owner
    shared_tokens: int = 0  # covered tokens whose vector belongs to another word
    files: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    covered_counts: Counter = field(default_factory=Counter, repr=False)
    ranks: dict[str, int] = field(default_factory=dict, repr=False)  # covered word -> rank

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

    @property
    def language_mismatch(self) -> bool:
        return bool(self.warnings) and self.warnings[0].startswith("Language mismatch")

    def rank(self, word: str) -> int | None:
        """The frequency rank (0 = most frequent) of a covered word in the vocabulary."""
        return self.ranks.get(word)

    def summary(self) -> dict[str, float | int | str | list[str] | None]:
        return {
            "corpus": self.name, "tokens": self.tokens, "types": self.types,
            "token_coverage": self.token_coverage, "type_coverage": self.type_coverage,
            "unk_share": self.unk_share, "content_lost": self.content_lost,
            "decode_errors": self.decode_errors, "language": self.language,
            "vectors_language": self.vectors_language,
            "top1000_coverage": self.top1000_coverage, "warnings": list(self.warnings),
        }


@dataclass
class _Vocabulary:
    ranks: Mapping[str, int]  # word -> frequency rank
    size: int
    head: Sequence[str]  # the most frequent words, in order (at most 1,000)
    owners: SharedRows | None = None  # pruned table: which words own their row
    owner_words: Sequence[str] = ()


def _vocabulary(vocabulary) -> _Vocabulary:
    """Ranks and head of KeyedVectors, a mapping, a compact WordList or a word list."""
    index = getattr(vocabulary, "key_to_index", None)
    if isinstance(index, SharedRows):
        return _Vocabulary(index.keys.mapping, len(index.keys), index.keys[:1000], index,
                           vocabulary.index_to_key)
    if index is not None:
        return _Vocabulary(index, len(index), vocabulary.index_to_key[:1000])
    if hasattr(vocabulary, "mapping"):  # a compact WordList
        return _Vocabulary(vocabulary.mapping, len(vocabulary.mapping), vocabulary[:1000])
    if isinstance(vocabulary, Mapping):
        head = [w for w, _ in heapq.nsmallest(1000, vocabulary.items(), key=lambda kv: kv[1])]
        return _Vocabulary(vocabulary, len(vocabulary), head)
    if isinstance(vocabulary, str):
        raise TypeError("The vocabulary is a list of words (or KeyedVectors), not one string.")
    words = list(vocabulary)
    return _Vocabulary({w: i for i, w in reversed(list(enumerate(words)))}, len(words),
                       words[:1000])


def oov_report(
    corpus,
    vocabulary,
    *,
    language: str = "auto",
    lowercase: bool = True,
    top: int = 20,
    limits: Sequence[int] = DEFAULT_LIMITS,
    stop_words: Iterable[str] | None = None,
    rare_rank: int = 100_000,
    min_count: int = 5,
    name: str | None = None,
) -> OOVReport:
    """Measure how much of ``corpus`` (see the module docstring) the ``vocabulary`` covers.

    ``vocabulary`` is a ``KeyedVectors`` (its order is its frequency rank, as in
    GloVe), a word -> rank mapping, or a list of words, most frequent first.
    ``coverage_by_limit`` gives the token coverage if only the first ``limit``
    words were loaded. ``language="auto"`` tells the text's language from its
    stop words; it picks the tokeniser and the stop words of content words
    (``stop_words`` overrides them). Covered words ranked ``rare_rank`` or later
    in the vocabulary that occur ``min_count`` times or more are ``rare_covered``.
    Counts are built a block at a time: memory grows with the number of distinct
    words, not with the corpus.
    """
    info = textfiles.ReadInfo()
    lang, blocks = _decide_language(_blocks(corpus, info), language)
    counts: Counter = Counter()
    for text in blocks:
        counts.update(tokenize(text, lowercase=lowercase, language=lang))
    display = _name(corpus, name)
    if not counts:
        raise ValueError(
            f"The corpus {display!r} has no word tokens (it is empty or holds only "
            "punctuation/whitespace). Point it at some text.")
    vocab = _vocabulary(vocabulary)
    size = vocab.size
    words = list(counts)
    freq = np.fromiter(counts.values(), dtype=np.int64, count=len(words))
    missing = size + 1
    rank = lookup_rows(vocab.ranks, words)
    rank[rank < 0] = missing
    stop = frozenset(stop_words) if stop_words is not None else globals()["stop_words"](lang)
    content = np.fromiter((w not in stop for w in words), dtype=bool, count=len(words))
    covered = rank < missing
    order = np.argsort(rank, kind="stable")
    cumulative = np.cumsum(freq[order])
    sorted_rank = rank[order]
    total = int(freq.sum())

    def share_within(limit: int) -> float:
        k = int(np.searchsorted(sorted_rank, limit, side="left"))
        return float(cumulative[k - 1]) / total if k else 0.0

    by_limit = {int(x): share_within(x) for x in sorted({*(x for x in limits if x < size), size})}
    oov = Counter({w: int(c) for w, c, ok in zip(words, freq, covered, strict=True) if not ok})
    cov = Counter({w: int(c) for w, c, ok in zip(words, freq, covered, strict=True) if ok})
    ranks = {w: int(r) for w, r, ok in zip(words, rank, covered, strict=True) if ok}
    rare = [(w, c, ranks[w]) for w, c in cov.most_common() if ranks[w] >= rare_rank
            and c >= min_count][:top]
    shared, shared_tokens = _shared(vocab, cov, top)
    top1000 = share_within(1000) if size >= 1000 else float("nan")
    vectors_lang = vocabulary_language(vocab.head).language
    report = OOVReport(
        name=display, tokens=total, types=len(words),
        covered_tokens=int(freq[covered].sum()), covered_types=int(covered.sum()),
        content_tokens=int(freq[content].sum()),
        covered_content_tokens=int(freq[content & covered].sum()),
        top_oov=oov.most_common(top), coverage_by_limit=by_limit,
        vocabulary_size=size, decode_errors=info.decode_errors, oov_counts=oov,
        language=lang, vectors_language=vectors_lang, top1000_coverage=top1000,
        top_covered=[(w, c, ranks[w]) for w, c in cov.most_common(top)], rare_covered=rare,
        shared_covered=shared, shared_tokens=shared_tokens, files=info.files,
        encodings=dict(info.encodings), skipped=list(info.skipped), covered_counts=cov,
        ranks=ranks,
    )
    report.warnings = _warnings(report, info, language == "auto")
    return report


def _shared(vocab: _Vocabulary, cov: Counter, top: int) -> tuple[list[tuple[str, int, str]], int]:
    """Covered words whose vector row belongs to another (more frequent) word."""
    if vocab.owners is None or not cov:
        return [], 0
    words = list(cov)
    rows = vocab.owners.lookup(words)
    found = [(w, cov[w], vocab.owner_words[int(r)]) for w, r in zip(words, rows.tolist(),
                                                                    strict=True)
             if vocab.owner_words[int(r)] != w]
    found.sort(key=lambda t: -t[1])
    return found[:top], sum(c for _, c, _ in found)


def _warnings(r: OOVReport, info: textfiles.ReadInfo, guessed: bool) -> list[str]:
    out = []
    text_name = LANGUAGES.get(r.language, r.language)
    vec_name = LANGUAGES.get(r.vectors_language, "")
    low = r.top1000_coverage == r.top1000_coverage and r.top1000_coverage < _SAME_LANGUAGE_TOP1000
    if (r.vectors_language and r.language != r.vectors_language) or low:
        who = (f"the text is {text_name}{' (from its stop words)' if guessed else ''}, the "
               f"vectors {vec_name}" if vec_name and r.language != r.vectors_language
               else "the text may not be in the vectors' language")
        out.append(
            f"Language mismatch: {who}. The vectors' 1,000 most frequent words cover only "
            f"{r.top1000_coverage:.1%} of the text's tokens (text in the vectors' own language: "
            f"usually over {_SAME_LANGUAGE_TOP1000:.0%}), so the coverage figures count "
            "words that merely look alike in the two languages, and their vectors carry the "
            "other language's sense. Use vectors trained on text in the corpus's language.")
    if info.decode_errors:
        out.append(f"{info.decode_errors:,} byte sequences were not valid UTF-8 and were "
                   f"replaced (in {', '.join(info.damaged[:3]) or 'the text'}); the words around "
                   "them are miscounted. Fix or re-export those files as UTF-8.")
    legacy = {e: n for e, n in info.encodings.items()
              if e not in ("utf-8", "utf-8-sig", "ascii", "str")}
    if legacy:
        out.append("Not UTF-8: " + ", ".join(f"{n} file(s) decoded as {e}"
                                              for e, n in legacy.items())
                   + " (the encoding was detected by charset-normalizer).")
    if info.skipped:
        out.append(f"Skipped {len(info.skipped)} binary file(s): {'; '.join(info.skipped[:3])}.")
    if r.rare_covered:
        w, c, k = r.rare_covered[0]
        out.append(f"{len(r.rare_covered)} frequent corpus words are covered only by vectors "
                   f"that are rare in the vocabulary (e.g. {w!r}: {c:,} times here, rank "
                   f"{k:,} there); rare words get poorly trained vectors.")
    if r.shared_tokens:
        w, c, owner = r.shared_covered[0]
        out.append(f"{r.shared_tokens / r.tokens:.1%} of the tokens are covered by a vector "
                   f"shared with another word (e.g. {w!r} uses the vector of {owner!r}): the "
                   "table was pruned, and these words have no vector of their own.")
    return out


# --------------------------------------------------------------------------- corpora on the machine


def python_reference() -> Corpus:
    """CPython's reference manual (``pydoc_data.topics``): a specialised domain, offline."""
    from pydoc_data.topics import topics

    return Corpus([topics[k] for k in sorted(topics)], "Python reference manual")


def _conllu_texts(path: Path) -> list[tuple[str, str]]:
    found, sent_id = [], None
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            if line.startswith("# sent_id = "):
                sent_id = line[12:].strip()
            elif line.startswith("# text = ") and sent_id is not None:
                found.append((sent_id, line[9:].strip()))
                sent_id = None
    return found


def ewt_sentences(splits: Sequence[str] = ("dev", "test")) -> list[tuple[str, str]]:
    """``(sent_id, text)`` for UD English-EWT sentences, through the asset layer."""
    from tlwidgets.assets import resolve

    return [pair for split in splits for pair in _conllu_texts(resolve(f"ud-en-ewt-{split}").path)]


def ewt_corpus(splits: Sequence[str] = ("dev", "test")) -> Corpus:
    """UD English-EWT sentences as a general-domain :class:`Corpus`."""
    return Corpus([t for _, t in ewt_sentences(splits)], f"UD English-EWT ({'+'.join(splits)})")
