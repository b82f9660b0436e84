"""Which language a text, or a vocabulary, is in: by the stop words each language uses.

Function words (``the, of, and`` / ``de, la, et``) are the most frequent tokens of
any text, and each language has its own. spaCy ships a stop-word list for each
language; the share of a text's tokens found in each list names the language
(long texts: a few hundred tokens are enough), and the share of a list found
among a vocabulary's most frequent words names the vocabulary's language.

The lists are read from spaCy's source files without importing spaCy (importing
it takes seconds); when spaCy is not installed, only English is known (from
scikit-learn).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["LANGUAGES", "LanguageGuess", "guess_language", "stop_words", "vocabulary_language"]

#: The languages told apart (ISO 639-1), with their names in English.
LANGUAGES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish",
             "it": "Italian", "pt": "Portuguese", "nl": "Dutch"}


@cache
def stop_words(language: str) -> frozenset[str]:
    """spaCy's stop-word list for ``language`` (lowercase; ``’`` spelled ``'``)."""
    if language not in LANGUAGES:
        raise ValueError(f"No stop-word list for {language!r}; known: {', '.join(LANGUAGES)}.")
    spec = importlib.util.find_spec("spacy")
    source = (Path(spec.origin).parent / "lang" / language / "stop_words.py"
              if spec and spec.origin else None)
    if source is None or not source.is_file():
        if language == "en":
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            return frozenset(ENGLISH_STOP_WORDS)
        raise ValueError(f"spaCy is not installed, so there is no {LANGUAGES[language]} "
                         "stop-word list; pip install spacy.")
    words = _string_literals(source.read_text(encoding="utf-8"))
    return frozenset(w.lower().replace("’", "'") for w in words)


def _string_literals(code: str) -> set[str]:
    """The words of the string constants in a spaCy ``stop_words.py`` (no code is run)."""
    words: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.update(node.value.split())
    return words


@dataclass(frozen=True)
class LanguageGuess:
    """The best-scoring language, how far ahead it is, and every language's score."""

    language: str | None  # None: too little evidence to say
    scores: dict[str, float]

    @property
    def name(self) -> str:
        return LANGUAGES.get(self.language, "an unknown language") if self.language else (
            "an unknown language")


def _decide(scores: dict[str, float], floor: float) -> LanguageGuess:
    ranked = sorted(scores, key=scores.get, reverse=True)
    best, second = scores[ranked[0]], scores[ranked[1]] if len(ranked) > 1 else 0.0
    sure = best >= floor and best >= 1.5 * second
    return LanguageGuess(ranked[0] if sure else None, scores)


def guess_language(counts: Mapping[str, int], *, min_tokens: int = 50) -> LanguageGuess:
    """The language of a text from its token counts: the share of tokens in each stop list.

    Undecided (``language=None``) below ``min_tokens`` tokens, when no list covers
    10% of the tokens, or when the best is not 1.5 times ahead of the next.
    """
    total = sum(counts.values())
    if total < min_tokens:
        return LanguageGuess(None, {})
    scores = {lang: sum(c for w, c in counts.items() if w in stop_words(lang)) / total
              for lang in _known()}
    return _decide(scores, 0.10)


def vocabulary_language(words: Sequence[str], *, top: int = 1000) -> LanguageGuess:
    """The language of a vocabulary from its ``top`` most frequent words.

    The score of a language is the share of its stop words found among them;
    undecided for vocabularies of fewer than ``top`` words.
    """
    if len(words) < top:
        return LanguageGuess(None, {})
    head = {w.lower().replace("’", "'") for w in words[:top]}
    scores = {lang: len(stop_words(lang) & head) / len(stop_words(lang)) for lang in _known()}
    return _decide(scores, 0.15)


@cache
def _known() -> tuple[str, ...]:
    known = []
    for lang in LANGUAGES:
        try:
            stop_words(lang)
        except ValueError:
            continue
        known.append(lang)
    return tuple(known)
