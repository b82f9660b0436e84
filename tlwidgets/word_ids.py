"""Word ids for a Keras ``Embedding`` layer, and its starting matrix from pretrained vectors.

:class:`Vocabulary` maps lower-cased words to ids (0 padding, 1 any unknown
word); :func:`pretrained_vocabulary` builds one from training text plus every
word a pretrained set (GloVe) has a vector for, with the embedding matrix that
starts from those vectors. The text classifier (``embedding_classifier``) and
the multi-task tagger (``multitask``) both use it. (``vocab.WordList`` is
something else: the compact word list behind a ``KeyedVectors``.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["PAD", "UNK", "Vocabulary", "pretrained_vocabulary"]

PAD, UNK = 0, 1


def _tokens(text) -> Sequence[str]:
    """A token list, or the tokens of a ``conll.Sentence``."""
    return getattr(text, "tokens", text)


class Vocabulary:
    """Lower-cased words to integer ids; 0 is padding and 1 any unknown word."""

    def __init__(self, words: Iterable[str], *, pretrained: Iterable[str] = ()):
        self.words = ["<pad>", "<unk>", *words]
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("Vocabulary words must be unique.")
        #: Words with a pretrained vector: known whether or not training text holds them.
        self.pretrained = frozenset(pretrained) & self.index.keys()

    @classmethod
    def fit(cls, texts: Iterable, *, min_count: int = 2, max_size: int | None = 20_000,
            base: Vocabulary | None = None, pretrained: Iterable[str] = ()) -> Vocabulary:
        """The words seen at least ``min_count`` times, most frequent first, then
        the ``pretrained`` words (those with a GloVe vector, say) not among them.

        ``texts`` are token lists (or ``conll.Sentence``\\ s). With ``base``, ids stay
        those of ``base`` (so models of the same shape can be reused) but only the
        words seen often enough here, and the base's pretrained words, are known;
        the others map to the unknown word.
        """
        counts = Counter(tok.lower() for text in texts for tok in _tokens(text))
        if base is not None:
            vocab = cls(base.words[2:], pretrained=base.pretrained)
            vocab.index = {w: i for w, i in base.index.items()
                           if i < 2 or counts[w] >= min_count or w in base.pretrained}
            return vocab
        ranked = sorted((w for w, c in counts.items() if c >= min_count),
                        key=lambda w: (-counts[w], w))[:max_size]
        seen = set(ranked)
        extra = sorted({w.lower() for w in pretrained} - seen)
        return cls([*ranked, *extra], pretrained=pretrained)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t.lower(), UNK) for t in tokens]

    def encode_padded(self, texts: Sequence, maxlen: int) -> np.ndarray:
        """Token ids of each text, padded (0) or cut to ``maxlen``; an empty text is one
        unknown word."""
        out = np.zeros((len(texts), maxlen), dtype=np.int32)
        for i, text in enumerate(texts):
            ids = self.encode(_tokens(text))[:maxlen] or [UNK]
            out[i, : len(ids)] = ids
        return out

    def embedding_matrix(self, vectors, *, dim: int | None = None,
                         seed: int = 0) -> tuple[np.ndarray, float]:
        """The starting matrix of an Embedding layer over these ids, and the share of
        words the vectors know.

        ``vectors`` is a ``KeyedVectors`` or anything
        :func:`tlwidgets.embeddings.load_vectors` reads (a GloVe file, an asset id).
        Known words get their pretrained vector; the others start as Keras starts an
        Embedding (uniform in +-0.05, seeded); row 0 (padding) is zero.
        """
        from tlwidgets.embeddings import find_rows

        kv = _keyed_vectors(vectors)
        dim = dim or kv.vector_size
        if dim != kv.vector_size:
            raise ValueError(f"The vectors are {kv.vector_size}-d, not {dim}-d.")
        rng = np.random.default_rng(seed)
        matrix = rng.uniform(-0.05, 0.05, size=(len(self), dim)).astype("float32")
        matrix[PAD] = 0
        rows = find_rows(kv, self.words[2:])
        known = rows >= 0
        matrix[np.flatnonzero(known) + 2] = kv.vectors[rows[known]]
        return matrix, int(known.sum()) / max(len(self) - 2, 1)


def _keyed_vectors(vectors):
    from gensim.models import KeyedVectors

    from tlwidgets.embeddings import load_vectors

    return vectors if isinstance(vectors, KeyedVectors) else load_vectors(vectors)


def pretrained_vocabulary(texts: Iterable, vectors, *, also: Iterable = (), min_count: int = 2,
                          max_size: int | None = 20_000, seed: int = 0,
                          ) -> tuple[Vocabulary, np.ndarray, float]:
    """A vocabulary with pretrained vectors: ``(vocabulary, embedding matrix, share found)``.

    The words are those seen ``min_count`` times in ``texts`` (the training text,
    token lists or sentences) plus every word of ``texts`` and ``also`` (the text
    the model will be applied to, test set included) that ``vectors`` has. Using
    the test text's words is fair: no label is read, and a pretrained embedding
    covers those words whether or not we list them; listing them only keeps the
    matrix small. ``vectors``: see :meth:`Vocabulary.embedding_matrix`.
    """
    from tlwidgets.embeddings import find_rows

    kv = _keyed_vectors(vectors)
    texts = list(texts)
    text = sorted({tok.lower() for t in (*texts, *also) for tok in _tokens(t)})
    known = {w for w, row in zip(text, find_rows(kv, text).tolist(), strict=True) if row >= 0}
    vocab = Vocabulary.fit(texts, min_count=min_count, max_size=max_size, pretrained=known)
    matrix, found = vocab.embedding_matrix(kv, seed=seed)
    return vocab, matrix, found
