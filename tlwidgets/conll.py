"""Readers for tagged sentences: CoNLL-U (UPOS tags) and IOB2 (named entities).

Both formats hold one token per line, a blank line between sentences and
``# key = value`` comment lines; ``# sent_id`` names each sentence. The UD
English-EWT treebank (POS) and UNER English-EWT (NER) annotate the same
sentences, but not in the same order, so :func:`align` joins them by
``sent_id`` and checks that the tokens agree. Every error names the file and
the line to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tlwidgets import assets

__all__ = [
    "ENTITY_TYPES",
    "UPOS_TAGS",
    "ConllError",
    "Sentence",
    "align",
    "load_ewt",
    "read_conllu",
    "read_iob2",
]

#: The 17 universal part-of-speech tags (https://universaldependencies.org/u/pos/).
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
             "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
#: The entity types of Universal NER.
ENTITY_TYPES = ("PER", "LOC", "ORG")


class ConllError(ValueError):
    """A malformed or inconsistent annotation file; the message names file and line."""


@dataclass(frozen=True)
class Sentence:
    """One sentence: its tokens and, where known, its UPOS and NER tags.

    ``upos`` or ``ner`` is ``None`` when the sentence has no labels for that
    task (the UD train split, for instance, has POS tags but no entities).
    ``source`` is ``"file:line"`` of the sentence's first token line.
    """

    sent_id: str
    tokens: tuple[str, ...]
    upos: tuple[str, ...] | None = None
    ner: tuple[str, ...] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.tokens)


def _blocks(path: Path) -> Iterator[tuple[str | None, int, list[tuple[int, list[str]]]]]:
    """Yield (sent_id, first line number, [(line number, tab fields)]) per sentence."""
    sent_id, first, rows = None, 0, []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = _decode_line(path, lineno, raw).rstrip("\n").rstrip("\r")
            if not line.strip():
                if rows:
                    yield sent_id, first, rows
                elif sent_id is not None:
                    raise ConllError(f"{path}:{lineno}: sentence {sent_id!r} has no token lines.")
                sent_id, rows = None, []
            elif line.startswith("#"):
                if rows:
                    raise ConllError(f"{path}:{lineno}: comment line inside a sentence; "
                                     "sentences must be separated by a blank line.")
                key, _, value = line[1:].partition("=")
                if key.strip() == "sent_id":
                    sent_id = value.strip()
            else:
                if not rows:
                    first = lineno
                rows.append((lineno, line.split("\t")))
    if rows:
        yield sent_id, first, rows


def _decode_line(path: Path, lineno: int, raw: bytes) -> str:
    """One line as text: a UTF-8 BOM on line 1 dropped; binary or non-UTF-8 bytes refused."""
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        raise ConllError(f"{path}:{lineno}: NUL bytes: this is a binary file, not CoNLL text "
                         "(compressed? decompress it first).")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConllError(
            f"{path}:{lineno}: byte {raw[exc.start]:#04x} at column {exc.start + 1} is not "
            "UTF-8; CoNLL files are UTF-8. If the file is Latin-1/cp1252, convert it: "
            f"iconv -f cp1252 -t utf-8 {path.name} > fixed.conllu") from None


def _check_ids(path: Path, sent_id: str, first: int, ids: list[tuple[int, str]]) -> None:
    for expected, (lineno, tid) in enumerate(ids, start=1):
        if not tid.isdigit():
            raise ConllError(f"{path}:{lineno}: token id {tid!r} is not a whole number.")
        if int(tid) != expected:
            raise ConllError(f"{path}:{lineno}: token id {tid} out of order in sentence "
                             f"{sent_id!r} (expected {expected}).")


def read_conllu(path: str | Path, *, tags: Sequence[str] = UPOS_TAGS) -> list[Sentence]:
    """Read a CoNLL-U file: tokens (FORM) and universal POS tags (UPOS).

    Multiword-token ranges (``1-2``) and empty nodes (``8.1``) are skipped, so
    tokens are the syntactic words, as UNER annotates them. Lines without 10
    tab-separated columns, ids out of order and tags outside ``tags`` raise
    :class:`ConllError` naming the file and line.
    """
    path = Path(path)
    known = set(tags)
    sentences, seen = [], {}
    for sent_id, first, rows in _blocks(path):
        sid = sent_id if sent_id is not None else f"{path.name}:{first}"
        tokens, upos, ids = [], [], []
        for lineno, fields in rows:
            if len(fields) != 10:
                raise ConllError(f"{path}:{lineno}: expected 10 tab-separated CoNLL-U columns, "
                                 f"found {len(fields)}.")
            tid = fields[0]
            if "-" in tid or "." in tid:  # multiword token or empty node
                continue
            if not fields[1]:
                raise ConllError(f"{path}:{lineno}: empty FORM column.")
            if fields[3] not in known:
                raise ConllError(f"{path}:{lineno}: unknown UPOS tag {fields[3]!r}; "
                                 f"expected one of {', '.join(tags)}.")
            ids.append((lineno, tid))
            tokens.append(fields[1])
            upos.append(fields[3])
        _check_sentence(path, sid, first, ids, seen)
        sentences.append(Sentence(sid, tuple(tokens), upos=tuple(upos), source=f"{path}:{first}"))
    if not sentences:
        raise ConllError(f"{path}: no sentences found; is this a CoNLL-U file?")
    return sentences


def _check_sentence(path: Path, sid: str, first: int, ids: list, seen: dict[str, int]) -> None:
    """Token ids run 1..n, and no sent_id appears twice in one file."""
    _check_ids(path, sid, first, ids)
    if sid in seen:
        raise ConllError(f"{path}:{first}: sent_id {sid!r} repeats line {seen[sid]}.")
    seen[sid] = first


def _check_tag(path: Path, lineno: int, tag: str, types: set[str]) -> None:
    if tag == "O":
        return
    prefix, _, kind = tag.partition("-")
    if prefix not in ("B", "I") or kind not in types:
        raise ConllError(f"{path}:{lineno}: unknown tag {tag!r}; expected O, B-X or I-X "
                         f"with X in {', '.join(sorted(types))}.")


def read_iob2(path: str | Path, *, types: Sequence[str] = ENTITY_TYPES) -> list[Sentence]:
    """Read an IOB2 file as UNER ships it: columns id, token, tag (then ignored ones).

    Tags are ``O``, ``B-X`` (an entity starts) or ``I-X`` (it continues), with
    ``X`` in ``types``. An ``I-X`` that does not continue an ``X`` entity is
    invalid IOB2 and raises, as do short lines and unknown tags.
    """
    path = Path(path)
    known = set(types)
    sentences, seen = [], {}
    for sent_id, first, rows in _blocks(path):
        sid = sent_id if sent_id is not None else f"{path.name}:{first}"
        tokens, ner, ids = [], [], []
        for lineno, fields in rows:
            if len(fields) < 3:
                raise ConllError(f"{path}:{lineno}: expected at least 3 tab-separated columns "
                                 f"(id, token, tag), found {len(fields)}.")
            tid, token, tag = fields[0], fields[1], fields[2]
            if not token:
                raise ConllError(f"{path}:{lineno}: empty token column.")
            _check_tag(path, lineno, tag, known)
            if tag.startswith("I-") and (not ner or ner[-1][2:] != tag[2:]):
                raise ConllError(f"{path}:{lineno}: {tag} does not continue a {tag[2:]} entity "
                                 f"(previous tag {ner[-1] if ner else 'none'}); IOB2 starts "
                                 "each entity with B-.")
            ids.append((lineno, tid))
            tokens.append(token)
            ner.append(tag)
        _check_sentence(path, sid, first, ids, seen)
        sentences.append(Sentence(sid, tuple(tokens), ner=tuple(ner), source=f"{path}:{first}"))
    if not sentences:
        raise ConllError(f"{path}: no sentences found; is this an IOB2 file?")
    return sentences


def align(pos: Iterable[Sentence], ner: Iterable[Sentence]) -> list[Sentence]:
    """Join POS-tagged and NER-tagged sentences by ``sent_id``, in the POS file's order.

    Raises :class:`ConllError` when a sentence is in one file only or when the
    tokens differ, naming both places (file and line).
    """
    by_id = {s.sent_id: s for s in ner}
    joined = []
    for p in pos:
        n = by_id.pop(p.sent_id, None)
        if n is None:
            raise ConllError(f"{p.source}: sentence {p.sent_id!r} has no NER annotation.")
        if n.tokens != p.tokens:
            i = next((i for i, (a, b) in enumerate(zip(p.tokens, n.tokens, strict=False)) if a != b),
                     min(len(p.tokens), len(n.tokens)))
            a = p.tokens[i] if i < len(p.tokens) else "<end>"
            b = n.tokens[i] if i < len(n.tokens) else "<end>"
            raise ConllError(f"Sentence {p.sent_id!r} is misaligned at token {i + 1}: "
                             f"{a!r} at {p.source} vs {b!r} at {n.source}.")
        joined.append(replace(p, ner=n.ner))
    if by_id:
        extra = next(iter(by_id.values()))
        raise ConllError(f"{extra.source}: {len(by_id)} NER sentence(s), starting with "
                         f"{extra.sent_id!r}, have no POS annotation.")
    return joined


def load_ewt(split: str) -> list[Sentence]:
    """English-EWT sentences through the asset layer.

    ``"dev"`` and ``"test"`` carry both UPOS and NER tags (UD joined with UNER);
    ``"train"`` carries UPOS only (no UNER file ships with the fixtures).
    """
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', not {split!r}.")
    pos = read_conllu(assets.resolve(f"ud-en-ewt-{split}").path)
    if split == "train":
        return pos
    return align(pos, read_iob2(assets.resolve(f"uner-en-ewt-{split}").path))
