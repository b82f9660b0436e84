"""A compact, read-only vocabulary for large word-vector files.

gensim keeps a vocabulary as a Python list of ``str`` plus a ``dict`` of word ->
row: for GloVe's 400,000 words that is about 50 MB beside a 76 MB matrix. A
:class:`WordList` keeps the same words as one UTF-8 buffer with their offsets,
and looks them up through sorted 64-bit hashes: about 7 MB, built in a
tenth of a second. It is a ``Sequence[str]`` (gensim's ``index_to_key``) and its
:attr:`WordList.mapping` a ``Mapping[str, int]`` (gensim's ``key_to_index``),
so ``KeyedVectors`` queries work unchanged; only adding words is refused.
"""

from __future__ import annotations

import bisect
import operator
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property

import numpy as np

__all__ = ["SharedRows", "WordIndex", "WordList", "lookup_rows"]

_P = 0x100000001B3  # the 64-bit FNV prime, as the multiplier of a polynomial hash
_MASK = (1 << 64) - 1
_M1, _M2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53  # MurmurHash3 fmix64 multipliers
_CHUNK = 1 << 16  # bytes hashed per vectorised step: bounds the temporaries (~2 MB)
_NUMPY = {"i": np.int32, "q": np.int64, "Q": np.uint64}  # array.array typecode -> dtype
_READ_ONLY = (
    "This vocabulary is tlwidgets' compact, read-only word list (a few bytes a word instead "
    "of a Python string and a dict entry each). To add or change words, load with compact=False, or make this one "
    "mutable first: kv.index_to_key = list(kv.index_to_key); "
    "kv.key_to_index = dict(kv.key_to_index)."
)


def _to_array(typecode: str, values: np.ndarray) -> array:
    """``values`` as an ``array.array``: its items index faster from Python than numpy's."""
    out = array(typecode)
    out.frombytes(memoryview(np.ascontiguousarray(values, dtype=_NUMPY[typecode])).cast("B"))
    return out


def _mix(h):
    """MurmurHash3's 64-bit finaliser: spreads every input bit over the high bits the
    lookup keys keep (a bare polynomial hash leaves short words' high bits all alike).
    Works on a Python int and, wrapping, on a uint64 array."""
    if isinstance(h, np.ndarray):
        h ^= h >> np.uint64(33)
        h *= np.uint64(_M1)
        h ^= h >> np.uint64(33)
        h *= np.uint64(_M2)
        h ^= h >> np.uint64(33)
        return h
    h ^= h >> 33
    h = (h * _M1) & _MASK
    h ^= h >> 33
    h = (h * _M2) & _MASK
    return h ^ (h >> 33)


def _hash_one(word: bytes) -> int:
    h = 0
    for byte in word:
        h = (h * _P + byte) & _MASK
    return _mix(h)


def _hash_spans(data: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The hash of each word ``data[bounds[i]:bounds[i + 1]]``, as :func:`_hash_one` gives it."""
    n = len(bounds) - 1
    out = np.zeros(n, dtype=np.uint64)
    if n == 0:
        return out
    longest = max(int(np.diff(bounds[i : i + _CHUNK + 1]).max()) for i in range(0, n, _CHUNK))
    powers = np.ones(longest + 1, dtype=np.uint64)  # P**k mod 2**64 (uint64 arithmetic wraps)
    if longest:
        powers[1:] = np.cumprod(np.full(longest, _P, dtype=np.uint64))
    first = 0
    while first < n:
        # as many words as fit in _CHUNK bytes (at least one)
        last = max(first + 1, int(np.searchsorted(bounds, int(bounds[first]) + _CHUNK, "right")) - 1)
        last = min(last, n)
        lo, hi = int(bounds[first]), int(bounds[last])
        lens = np.diff(bounds[first : last + 1])
        if hi > lo:
            ends = np.repeat(bounds[first + 1 : last + 1], lens)
            weights = powers[ends - 1 - np.arange(lo, hi)]
            terms = data[lo:hi].astype(np.uint64) * weights
            filled = lens > 0
            out[first:last][filled] = np.add.reduceat(terms, bounds[first:last][filled] - lo)
        out[first:last] = _mix(out[first:last])  # a chunk at a time: no full-size temporary
        first = last
    return out


class WordList(Sequence[str]):
    """Words stored as one UTF-8 buffer plus offsets; word ``i`` is ``data[bounds[i]:bounds[i+1]]``.

    Build one with :meth:`from_words`. A word that occurs twice maps to its first row.
    """

    def __init__(self, data: bytes, bounds: np.ndarray | Sequence[int]):
        data = bytes(data)
        # An array.array indexes fastest from Python; numpy views it without a copy.
        typecode = "i" if len(data) < 2**31 else "q"
        if isinstance(bounds, array) and bounds.typecode == typecode:
            held = bounds
        else:
            held = _to_array(typecode, np.asarray(bounds))
        view = np.frombuffer(held, dtype=_NUMPY[typecode])
        if len(view) < 1 or view[0] != 0 or view[-1] != len(data):
            raise ValueError("bounds must run from 0 to len(data), one more entry than words.")
        if np.any(view[1:] < view[:-1]):
            raise ValueError("bounds must not decrease.")
        self._data = data
        self._bounds = held

    @classmethod
    def from_words(cls, words: Iterable[str]) -> WordList:
        encoded = [w.encode("utf-8") for w in words]
        bounds = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in encoded], out=bounds[1:])
        return cls(b"".join(encoded), bounds)

    # ----------------------------------------------------------------- Sequence

    def __len__(self) -> int:
        return len(self._bounds) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._word(k) for k in range(*i.indices(len(self)))]
        k = operator.index(i)
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(f"word index {i} out of range for {n:,} words")
        return self._word(k)

    def _word(self, k: int) -> str:
        return self._data[self._bounds[k] : self._bounds[k + 1]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        data, bounds = self._data, self._bounds
        for k in range(len(self)):
            yield data[bounds[k] : bounds[k + 1]].decode("utf-8")

    def __contains__(self, word: object) -> bool:
        return self.find(word) >= 0

    def index(self, word: str, start: int = 0, stop: int | None = None) -> int:
        start, stop, _ = slice(start, stop).indices(len(self))
        k = self.find(word)
        if start <= k < stop:
            return k
        if 0 <= k < start:  # a repeat may lie in range: look there, as list.index does
            for i in range(start, stop):
                if self._word(i) == word:
                    return i
        raise ValueError(f"{word!r} is not in the word list")

    def count(self, word: str) -> int:
        return sum(w == word for w in self) if word in self else 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WordList):
            return self._data == other._data and self._bounds == other._bounds
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # mutable-looking container semantics, like list

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self[:5])
        return f"WordList([{head}{', ...' if len(self) > 5 else ''}], {len(self):,} words)"

    def __reduce__(self):
        return (WordList, (self._data, self._bounds))

    def _refuse(self, *args, **kwargs):
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = append = extend = insert = _refuse

    # ----------------------------------------------------------------- lookup

    @property
    def _shift(self) -> int:
        return max(1, len(self).bit_length())  # low bits of a key hold the row

    @cached_property
    def _keys(self) -> np.ndarray:
        """One sorted uint64 per word: its hash's high bits, then its row in the low bits.

        Sorting these in place keeps equal hashes together in row order (a repeated
        word's first row comes first) with no second array: 8 bytes a word in all.
        """
        keys = _hash_spans(np.frombuffer(self._data, dtype=np.uint8), self._bounds_view())
        shift = np.uint64(self._shift)
        keys >>= shift
        keys <<= shift
        for start in range(0, len(keys), _CHUNK):
            stop = min(start + _CHUNK, len(keys))
            keys[start:stop] |= np.arange(start, stop, dtype=np.uint64)
        keys.sort()
        return keys

    def _bounds_view(self) -> np.ndarray:
        return np.frombuffer(self._bounds, dtype=_NUMPY[self._bounds.typecode])

    def find(self, word: object) -> int:
        """The row of ``word``, or -1 when it is not in the list."""
        if not isinstance(word, str):
            return -1
        try:
            key = word.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: never a stored (valid UTF-8) word
            return -1
        return self._find(key, _hash_one(key) >> self._shift)

    def _find(self, key: bytes, prefix: int) -> int:
        """Walk the keys whose hash starts with ``prefix`` until one holds ``key``."""
        keys, shift = self._keys, self._shift
        data, bounds, mask = self._data, self._bounds, (1 << shift) - 1
        i = int(keys.searchsorted(np.uint64(prefix << shift)))
        while i < len(keys):
            found = int(keys[i])
            if found >> shift != prefix:
                break
            k = found & mask
            if data[bounds[k] : bounds[k + 1]] == key:
                return k
            i += 1
        return -1

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """Rows of many words at once (``-1`` for those not in the list), vectorised."""
        # b"\xff" is never valid UTF-8, so a non-str query matches no stored word
        encoded = [w.encode("utf-8", "surrogatepass") if isinstance(w, str) else b"\xff"
                   for w in words]
        if not encoded or not len(self):
            return np.full(len(encoded), -1, dtype=np.int64)
        qbounds = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in encoded], out=qbounds[1:])
        shift = np.uint64(self._shift)
        prefix = _hash_spans(np.frombuffer(b"".join(encoded), dtype=np.uint8), qbounds) >> shift
        keys = self._keys
        pos = np.minimum(np.searchsorted(keys, prefix << shift), len(keys) - 1)
        first = keys[pos]
        hit = (first >> shift) == prefix
        hits = np.flatnonzero(hit)
        candidates = first[hits] & ((np.uint64(1) << shift) - np.uint64(1))
        rows = np.full(len(encoded), -1, dtype=np.int64)
        data, bounds = self._data, self._bounds
        for j, k in zip(hits.tolist(), candidates.tolist(), strict=True):
            key = encoded[j]
            if data[bounds[k] : bounds[k + 1]] == key:
                rows[j] = k
            else:  # another word shares the hash prefix: walk the run
                rows[j] = self._find(key, int(prefix[j]))
        return rows

    @cached_property
    def repeats(self) -> np.ndarray:
        """Rows whose word already stands at an earlier row (lookups give the earlier one)."""
        keys, shift = self._keys, self._shift
        mask, step = (1 << shift) - 1, np.uint64(shift)
        shared = []  # positions whose hash prefix equals the one before (compared in chunks)
        for start in range(1, len(keys), _CHUNK):
            stop = min(start + _CHUNK, len(keys))
            same = (keys[start:stop] >> step) == (keys[start - 1 : stop - 1] >> step)
            shared.extend((np.flatnonzero(same) + start).tolist())
        found = []
        for i in shared:
            prefix, row = int(keys[i]) >> shift, int(keys[i]) & mask
            word, j = self._span(row), i - 1
            while j >= 0 and int(keys[j]) >> shift == prefix:  # earlier rows, same prefix
                if self._span(int(keys[j]) & mask) == word:
                    found.append(row)
                    break
                j -= 1
        return np.array(sorted(found), dtype=np.int64)

    def _span(self, k: int) -> bytes:
        return self._data[self._bounds[k] : self._bounds[k + 1]]

    @cached_property
    def mapping(self) -> WordIndex:
        """The ``word -> row`` view (gensim's ``key_to_index``)."""
        return WordIndex(self)

    # ----------------------------------------------------------------- facts

    @property
    def nbytes(self) -> int:
        """Bytes held: the words, their offsets and, once built, the lookup index."""
        held = len(self._data) + self._bounds.itemsize * len(self._bounds)
        if "_keys" in self.__dict__:
            held += self._keys.nbytes
        return held

    def count_containing(self, text: str) -> int:
        """How many words contain ``text`` (e.g. U+FFFD, the mark of undecodable bytes)."""
        needle, bounds, found = text.encode("utf-8"), self._bounds, set()
        at = self._data.find(needle)
        while at >= 0:
            found.add(bisect.bisect_right(bounds, at) - 1)
            at = self._data.find(needle, at + 1)
        return len(found)


class WordIndex(Mapping[str, int]):
    """``word -> row`` over a :class:`WordList`, read-only."""

    def __init__(self, words: WordList):
        self.words = words

    def __getitem__(self, word: str) -> int:
        k = self.words.find(word)
        if k < 0:
            raise KeyError(word)
        return k

    def get(self, word, default=None):
        k = self.words.find(word)
        return default if k < 0 else k

    def __contains__(self, word: object) -> bool:
        return self.words.find(word) >= 0

    def __iter__(self) -> Iterator[str]:
        repeats = self.words.repeats
        if not len(repeats):
            return iter(self.words)
        skip = set(repeats.tolist())
        return (w for i, w in enumerate(self.words) if i not in skip)

    def __len__(self) -> int:
        return len(self.words) - len(self.words.repeats)

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """Rows of many words at once, ``-1`` for missing ones (see :meth:`WordList.lookup`)."""
        return self.words.lookup(words)

    def __repr__(self) -> str:
        return f"WordIndex({len(self):,} words)"

    def _refuse(self, *args, **kwargs):
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = _refuse


class SharedRows(Mapping[str, int]):
    """``word -> row`` when many words share a row (a pruned vector table, as spaCy's).

    ``keys`` holds every word, most frequent first (its position is the word's
    frequency rank); ``rows[i]`` is the row of ``keys[i]``. spaCy's
    ``fr_core_news_md`` maps 500,000 words onto 20,000 vectors: a rare word gets the
    vector of the most similar frequent word, and shares it.
    """

    def __init__(self, keys: WordList, rows: np.ndarray):
        if len(keys) != len(rows):
            raise ValueError(f"{len(keys)} keys but {len(rows)} rows: one row a key.")
        self.keys = keys
        self.rows = np.asarray(rows, dtype=np.int64)

    def __getitem__(self, word: str) -> int:
        k = self.keys.find(word)
        if k < 0:
            raise KeyError(word)
        return int(self.rows[k])

    def get(self, word, default=None):
        k = self.keys.find(word)
        return default if k < 0 else int(self.rows[k])

    def __contains__(self, word: object) -> bool:
        return self.keys.find(word) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """Rows of many words at once, ``-1`` for missing ones."""
        found = self.keys.lookup(words)
        return np.where(found >= 0, self.rows[np.maximum(found, 0)], -1)

    def keys_of_row(self, row: int) -> list[str]:
        """Every word that maps onto ``row``, most frequent first."""
        return [self.keys[int(k)] for k in np.flatnonzero(self.rows == row)]

    def __repr__(self) -> str:
        return f"SharedRows({len(self):,} words onto {len(np.unique(self.rows)):,} rows)"

    def _refuse(self, *args, **kwargs):
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = _refuse


def lookup_rows(index: Mapping[str, int], words: Sequence[str]) -> np.ndarray:
    """``index[w]`` for each word, -1 where it is missing: vectorised for a
    :class:`WordIndex` or :class:`SharedRows`, one ``get`` a word for any other mapping."""
    if isinstance(index, WordIndex | SharedRows):
        return index.lookup(words)
    return np.fromiter((index.get(w, -1) for w in words), dtype=np.int64, count=len(words))
