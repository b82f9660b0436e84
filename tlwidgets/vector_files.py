"""Word-vector files: detect their format and read them into gensim ``KeyedVectors``.

The readers behind :func:`tlwidgets.embeddings.load_vectors` (which lists the
formats): GloVe and word2vec text parsed a block at a time into one
preallocated float32 matrix, word2vec binary, a ``.npy`` matrix with a parquet
word index, and a spaCy pipeline's vectors. None unpickles a file; a damaged or
mislabelled file is an error that says where and what to do.
"""

from __future__ import annotations

import os
import warnings
from array import array
from itertools import accumulate
from pathlib import Path
from typing import Literal

import numpy as np
from gensim.models import KeyedVectors

from tlwidgets.system import trim_heap
from tlwidgets.vocab import SharedRows, WordList

__all__ = ["FORMATS", "WordVectors", "detect_format"]

Format = Literal["auto", "glove", "word2vec", "word2vec-bin", "fasttext-bin", "npy", "spacy"]
FORMATS: tuple[str, ...] = ("glove", "word2vec", "word2vec-bin", "fasttext-bin", "npy", "spacy")
FORMAT_ALIASES = {"fasttext-vec": "word2vec", "vec": "word2vec", "word2vec-text": "word2vec",
                  "bin": "word2vec-bin", "glove-text": "glove"}
_FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin
_BOM = b"\xef\xbb\xbf"
_COMPRESSED = {b"\x1f\x8b": ("gzip", "gunzip -k {name}"), b"PK\x03\x04": ("zip", "unzip {name}"),
               b"BZh": ("bzip2", "bunzip2 -k {name}"), b"\xfd7zXZ": ("xz", "unxz -k {name}")}
FORMAT_HELP = {
    "glove": "GloVe text, no header line (format='glove')",
    "word2vec": "word2vec/fastText text with a 'count dim' header line (format='word2vec')",
    "word2vec-bin": "word2vec binary (format='word2vec-bin')",
    "fasttext-bin": "a Facebook fastText .bin model with subwords (format='fasttext-bin')",
    "npy": "a folder with a .npy matrix and a parquet word index (format='npy')",
    "spacy": "a spaCy pipeline or its vocab folder (format='spacy')",
}
_SPACY_VOCAB = ("vectors", "key2row", "strings.json")


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
        f"Expected one of: {'; '.join(FORMAT_HELP.values())}."
    )


def warn_non_finite(path: Path, kv: KeyedVectors, block: int = 16_384) -> None:
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


def read_word2vec_binary(path: Path, limit: int | None) -> KeyedVectors:
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


def drop_repeats(path: Path, words: WordList, matrix: np.ndarray) -> tuple[WordList, np.ndarray]:
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


def read_text(path: Path, *, header: bool, limit: int | None) -> tuple[WordList, np.ndarray, int]:
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


def read_npy_folder(folder: Path, limit: int | None) -> tuple[WordList, np.ndarray, int]:
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


def read_spacy(path: Path, limit: int | None) -> KeyedVectors:
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


def truncate(kv: KeyedVectors, limit: int) -> KeyedVectors:
    if limit >= len(kv):
        return kv
    small = KeyedVectors(kv.vector_size, count=0, dtype=kv.vectors.dtype)
    small.add_vectors(kv.index_to_key[:limit], kv.vectors[:limit])
    return small

