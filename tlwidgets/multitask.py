"""Multi-task learning with hard parameter sharing: one trunk, one head per task.

A *trunk* (word embeddings, optionally initialised from GloVe, plus a BiLSTM or
convolutional encoder) turns a sentence into one vector per token; each task
has its own small *head* on top. Training sums the tasks' losses, each weighted
by a fixed number or, with ``weighting="uncertainty"``, by a learned
homoscedastic uncertainty (Kendall, Gal and Cipolla, 2018). A token counts in a
task's loss only if it has a label for that task, so a sentence without
entities still trains the trunk through its part-of-speech tags.

The tasks here are token-level: ``ner`` (IOB2 entities), ``pos`` (universal
part-of-speech tags) and ``lm`` (predict the next word, from the forward
direction of the BiLSTM only, so the model cannot peek at the answer).

Word ids come from :mod:`tlwidgets.word_ids`; the NER learning curve
(:func:`compare_learning_curves`) is :func:`tlwidgets.learning_curves.learning_curve`
with a :class:`NerLabels` sampler. The module stays whole (about 700 lines)
because its sections are one pipeline that notebook 05 reads in order: tasks,
encoding and batches, the model, training and scores, the experiment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import keras
import numpy as np
from keras import ops

from tlwidgets.conll import ENTITY_TYPES, UPOS_TAGS, Sentence
from tlwidgets.learning_curves import Draw, learning_curve
from tlwidgets.training import release_traced_gradients
from tlwidgets.word_ids import PAD, UNK, Vocabulary, pretrained_vocabulary

__all__ = [
    "PAD",
    "UNK",
    "Encoded",
    "MultiTaskModel",
    "NerLabels",
    "Task",
    "Vocabulary",
    "architecture",
    "build_multitask_model",
    "build_trunk",
    "compare_learning_curves",
    "encode",
    "evaluate",
    "make_tasks",
    "predict_tags",
    "prepare",
    "pretrained_vocabulary",
    "reset",
    "run_config",
    "subsample_labels",
    "train",
]

IGNORE = -1  # target value of tokens that have no label for a task (padding included)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """A token-level task: ``kind`` is ``"ner"``, ``"pos"`` or ``"lm"``; ``labels`` its classes."""

    name: str
    kind: str
    labels: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.labels)


def make_tasks(names: Iterable[str], *, lm_words: Sequence[str] = ()) -> list[Task]:
    """The tasks named (``"ner"``, ``"pos"``, ``"lm"``), in that order of appearance.

    ``lm_words`` are the words the next-word head predicts (any other word is
    the class ``<other>``); it is required for ``"lm"``.
    """
    tasks = []
    for name in names:
        if name == "ner":
            labels = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in "BI"))
        elif name == "pos":
            labels = UPOS_TAGS
        elif name == "lm":
            if not lm_words:
                raise ValueError("The 'lm' task needs lm_words: the vocabulary it predicts.")
            labels = ("<other>", *lm_words)
        else:
            raise ValueError(f"Unknown task {name!r}; choose from 'ner', 'pos', 'lm'.")
        tasks.append(Task(name, name, tuple(labels)))
    if not tasks:
        raise ValueError("Choose at least one task.")
    if len({t.name for t in tasks}) != len(tasks):
        raise ValueError(f"Tasks repeat: {list(names)}.")
    return tasks


# --------------------------------------------------------------------------- encoding


def casing(token: str) -> int:
    """Capitalisation class of a token (1 lower, 2 Title, 3 UPPER, 4 has a digit, 5 other).

    Words are lower-cased for the embedding, so this small extra input keeps
    the capital letters that entity recognition leans on.
    """
    if any(c.isdigit() for c in token):
        return 4
    if token.islower():
        return 1
    if token.isupper():
        return 3
    if token[:1].isupper():
        return 2
    return 5


N_CASES = 6


@dataclass
class Encoded:
    """Sentences as integer sequences: inputs ``words``/``case`` and per-task targets.

    Targets hold :data:`IGNORE` (-1) where a token has no label for the task.
    Sequences are ragged (lists of arrays); :func:`batches` pads them.
    """

    words: list[np.ndarray]
    case: list[np.ndarray]
    targets: dict[str, list[np.ndarray]]
    sentences: list[Sentence] = field(repr=False)

    def __len__(self) -> int:
        return len(self.words)

    def labelled(self, task: str) -> int:
        """Number of sentences with labels for ``task``."""
        return sum(bool((t >= 0).any()) for t in self.targets[task])


def _targets(s: Sentence, task: Task, index: Mapping[str, int],
             lm_index: Mapping[str, int] | None) -> np.ndarray:
    n = len(s.tokens)
    if task.kind == "lm":
        nxt = [lm_index.get(t.lower(), 0) for t in s.tokens[1:]]
        return np.asarray([*nxt, IGNORE], dtype=np.int32)
    tags = s.ner if task.kind == "ner" else s.upos
    if tags is None:
        return np.full(n, IGNORE, dtype=np.int32)
    try:
        return np.asarray([index[t] for t in tags], dtype=np.int32)
    except KeyError as exc:
        raise ValueError(f"{s.source}: tag {exc.args[0]!r} is not a {task.name} label "
                         f"({', '.join(task.labels)}).") from None


def encode(sentences: Sequence[Sentence], vocab: Vocabulary, tasks: Sequence[Task], *,
           require_labels: bool = True) -> Encoded:
    """Encode sentences for ``tasks``; sentences with no label for any task are dropped.

    With ``require_labels`` (for training data), a task without a single
    labelled sentence raises a ``ValueError``.
    """
    indexes = {t.name: {lab: i for i, lab in enumerate(t.labels)} for t in tasks}
    lm_index = next(({w: i for i, w in enumerate(t.labels) if i}
                     for t in tasks if t.kind == "lm"), None)
    words, case, targets, kept = [], [], {t.name: [] for t in tasks}, []
    for s in sentences:
        if not s.tokens:
            continue
        ys = {t.name: _targets(s, t, indexes[t.name], lm_index) for t in tasks}
        if not any((y >= 0).any() for y in ys.values()):
            continue
        words.append(np.asarray(vocab.encode(s.tokens), dtype=np.int32))
        case.append(np.asarray([casing(t) for t in s.tokens], dtype=np.int32))
        for name, y in ys.items():
            targets[name].append(y)
        kept.append(s)
    data = Encoded(words, case, targets, kept)
    if require_labels:
        for t in tasks:
            if data.labelled(t.name) == 0:
                raise ValueError(f"Task {t.name!r} has no labelled sentence among the "
                                 f"{len(sentences)} given; add sentences with {t.name} labels "
                                 "or drop the task.")
    return data


def _pad(seqs: Sequence[np.ndarray], width: int, value: int) -> np.ndarray:
    out = np.full((len(seqs), width), value, dtype=np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def _groups(lengths: np.ndarray, order: np.ndarray, batch_size: int, *, shuffle: bool,
            rng: np.random.Generator | None) -> list[np.ndarray]:
    """Split ``order`` into batches of similar length (sorted in chunks of 50 batches)."""
    if shuffle:
        order = rng.permutation(order)
    chunk, groups = batch_size * 50, []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        groups += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return groups


def _collate(data: Encoded, idx: np.ndarray) -> tuple[dict, dict, np.ndarray]:
    width = max(len(data.words[i]) for i in idx)
    x = {"words": _pad([data.words[i] for i in idx], width, PAD),
         "case": _pad([data.case[i] for i in idx], width, PAD)}
    y = {k: _pad([v[i] for i in idx], width, IGNORE) for k, v in data.targets.items()}
    return x, y, idx


def batches(data: Encoded, batch_size: int, *, shuffle: bool = False,
            rng: np.random.Generator | None = None,
            mix: str | None = None) -> Iterator[tuple[dict, dict, np.ndarray]]:
    """Padded batches ``(inputs, targets, indices)`` of sentences of similar length.

    Sentences are sorted by length in chunks of 50 batches (shuffled first
    when ``shuffle``), which keeps padding, and so wasted compute, small.
    With ``mix="ner"``, each batch holds ``batch_size`` sentences labelled for
    that task plus ``batch_size`` of the others (cycled), so an auxiliary task's
    extra sentences add to the end task's examples instead of diluting them.
    One pass covers the labelled sentences once.
    """
    rng = rng or np.random.default_rng()
    lengths = np.asarray([len(w) for w in data.words])
    if mix is None:
        groups = _groups(lengths, np.arange(len(data)), batch_size, shuffle=shuffle, rng=rng)
    else:
        has = np.asarray([(t >= 0).any() for t in data.targets[mix]], dtype=bool)
        main = _groups(lengths, np.flatnonzero(has), batch_size, shuffle=shuffle, rng=rng)
        rest: list[np.ndarray] = []
        while len(rest) < len(main) and (~has).any():
            rest += _groups(lengths, np.flatnonzero(~has), batch_size, shuffle=shuffle, rng=rng)
        groups = [np.concatenate([m, rest[i]]) if rest else m for i, m in enumerate(main)]
    if shuffle:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    for idx in groups:
        yield _collate(data, idx)


# --------------------------------------------------------------------------- model


def build_trunk(vocab_size: int, *, encoder: str = "bilstm", embed_dim: int = 50,
                units: int = 64, dropout: float = 0.25,
                embeddings: np.ndarray | None = None, train_embeddings: bool = True):
    """The shared layers: word + casing embeddings, then a BiLSTM or a 2-layer CNN.

    Returns a Keras model mapping ``{"words", "case"}`` (int, padded with 0)
    to ``{"context": (batch, time, features)}``; the BiLSTM trunk also returns
    ``"forward"``, its left-to-right states, which have not seen the next word.
    """
    from keras import layers

    if encoder not in ("bilstm", "cnn"):
        raise ValueError(f"encoder must be 'bilstm' or 'cnn', not {encoder!r}.")
    if embeddings is not None:
        if embeddings.shape[0] != vocab_size:
            raise ValueError(f"embeddings have {embeddings.shape[0]} rows for a vocabulary "
                             f"of {vocab_size} words.")
        embed_dim = embeddings.shape[1]
    words = keras.Input((None,), dtype="int32", name="words")
    case = keras.Input((None,), dtype="int32", name="case")
    real = ops.not_equal(words, PAD)  # False on padding
    init = ("uniform" if embeddings is None
            else keras.initializers.Constant(embeddings))
    w = layers.Embedding(vocab_size, embed_dim, embeddings_initializer=init,
                         trainable=train_embeddings, name="word_embedding")(words)
    c = layers.Embedding(N_CASES, 8, name="case_embedding")(case)
    h = layers.Concatenate(name="token_features")([w, c])
    h = layers.Dropout(dropout, name="embedding_dropout")(h)
    outputs = {}
    if encoder == "bilstm":
        # The mask keeps padding out of the right-to-left pass.
        fwd, bwd = layers.Bidirectional(layers.LSTM(units, return_sequences=True),
                                        merge_mode=None, name="bilstm")(h, mask=real)
        outputs["forward"] = layers.Dropout(dropout, name="forward_dropout")(fwd)
        h = layers.Concatenate(name="bilstm_states")([fwd, bwd])
    else:
        # Zeroed padding is what 'same' convolutions pad with anyway.
        zero_pad = ops.expand_dims(ops.cast(real, h.dtype), -1)
        for i in (1, 2):
            h = layers.Conv1D(2 * units, 3, padding="same", activation="relu",
                              name=f"conv{i}")(h * zero_pad)
    outputs["context"] = layers.Dropout(dropout, name="context_dropout")(h)
    return keras.Model({"words": words, "case": case}, outputs, name="trunk")


def _check_weights(weights: Mapping[str, float] | None, names: Sequence[str]) -> list[float]:
    weights = dict(weights or {})
    unknown = set(weights) - set(names)
    if unknown:
        raise ValueError(f"Loss weights for unknown tasks {sorted(unknown)}; tasks are {list(names)}.")
    values = [float(weights.get(n, 1.0)) for n in names]
    bad = {n: v for n, v in zip(names, values, strict=True) if not math.isfinite(v) or v < 0}
    if bad:
        raise ValueError(f"Loss weights must be finite and >= 0, got {bad}.")
    if not any(values):
        raise ValueError("All loss weights are zero, so nothing would be learned; "
                         "give at least one task a positive weight.")
    return values


class MultiTaskModel(keras.Model):
    """A shared trunk with one head per task and a weighted sum of their losses.

    ``weighting="fixed"``: loss = sum_i w_i L_i. ``weighting="uncertainty"``:
    loss = sum_i w_i (exp(-s_i) L_i + s_i / 2), where ``s_i = log sigma_i^2``
    are trainable (Kendall et al., 2018, for classification); a task's
    effective weight exp(-s_i) falls as its loss stays high. ``w_i = 0``
    switches a task off. L_i averages the cross-entropy over the tokens that
    have a label for task i.
    """

    def __init__(self, trunk, tasks: Sequence[Task], *, head_units: int = 32,
                 loss_weights: Mapping[str, float] | None = None,
                 weighting: str = "fixed", **kwargs):
        super().__init__(**kwargs)
        if weighting not in ("fixed", "uncertainty"):
            raise ValueError(f"weighting must be 'fixed' or 'uncertainty', not {weighting!r}.")
        self.trunk = trunk
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        self.weighting = weighting
        if any(t.kind == "lm" for t in tasks) and "forward" not in trunk.output:
            raise ValueError("Next-word prediction ('lm') needs the left-to-right states of "
                             "the BiLSTM trunk (encoder='bilstm').")
        self.heads = {}  # task -> its layers, applied in order
        for t in self.tasks:
            head = [keras.layers.Dense(head_units, activation="relu", name=f"{t.name}_hidden")
                    ] if head_units else []
            head.append(keras.layers.Dense(t.n_classes, activation="softmax",
                                           name=f"{t.name}_output"))
            self.heads[t.name] = head
        values = _check_weights(loss_weights, self.task_names)
        self.task_weights = self.add_weight(
            shape=(len(tasks),), initializer=keras.initializers.Constant(values),
            trainable=False, name="task_weights")
        self.log_variances = self.add_weight(
            shape=(len(tasks),), initializer="zeros",
            trainable=weighting == "uncertainty", name="log_variances")
        self.task_loss_trackers = {n: keras.metrics.Mean(name=f"{n}_loss")
                                   for n in self.task_names}

    def call(self, inputs, training=False):
        features = self.trunk(inputs, training=training)
        outputs = {}
        for t in self.tasks:
            h = features["forward" if t.kind == "lm" else "context"]
            for layer in self.heads[t.name]:
                h = layer(h)
            outputs[t.name] = h
        return outputs

    def head_variables(self, task: str) -> list:
        """The trainable variables of one task's head."""
        return [v for layer in self.heads[task] for v in layer.trainable_variables]

    def set_loss_weights(self, weights: Mapping[str, float]) -> None:
        """Change the fixed weights (no recompiling needed)."""
        self.task_weights.assign(_check_weights(weights, self.task_names))

    @property
    def loss_weights_(self) -> dict[str, float]:
        """The weight each task's loss gets now (exp(-s_i) w_i under uncertainty)."""
        w = self.task_weights.numpy()
        if self.weighting == "uncertainty":
            w = w * np.exp(-self.log_variances.numpy())
        return {n: float(v) for n, v in zip(self.task_names, w, strict=True)}

    def task_losses(self, y, y_pred) -> dict:
        """Masked mean cross-entropy of each task (0 for a batch without its labels)."""
        return self._losses_and_counts(y, y_pred)[0]

    def _losses_and_counts(self, y, y_pred) -> tuple[dict, dict]:
        losses, counts = {}, {}
        for name in self.task_names:
            target = ops.convert_to_tensor(y[name])
            mask = ops.cast(target >= 0, "float32")
            ce = keras.losses.sparse_categorical_crossentropy(
                ops.maximum(target, 0), y_pred[name])
            counts[name] = ops.sum(mask)
            losses[name] = ops.sum(ce * mask) / ops.maximum(counts[name], 1.0)
        return losses, counts

    def combine(self, losses) -> object:
        """Weighted total of per-task losses, as described in the class docstring."""
        total = 0.0
        for i, name in enumerate(self.task_names):
            term = losses[name]
            if self.weighting == "uncertainty":
                s = self.log_variances[i]
                term = ops.exp(-s) * term + 0.5 * s
            total = total + self.task_weights[i] * term
        return total

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses, counts = self._losses_and_counts(y, y_pred)
        for name, value in losses.items():  # batches without the task's labels do not count
            self.task_loss_trackers[name].update_state(value, ops.minimum(counts[name], 1.0))
        return self.combine(losses)


def build_multitask_model(
    vocab: Vocabulary,
    tasks: Sequence[Task],
    *,
    encoder: str = "bilstm",
    units: int = 64,
    head_units: int = 32,
    embed_dim: int = 50,
    embeddings: np.ndarray | None = None,
    train_embeddings: bool = True,
    dropout: float = 0.25,
    loss_weights: Mapping[str, float] | None = None,
    weighting: str = "fixed",
    learning_rate: float = 1e-2,
    seed: int | None = 0,
):
    """Build and compile a hard-sharing multi-task model (see :class:`MultiTaskModel`).

    ``embeddings`` (for instance from :meth:`Vocabulary.embedding_matrix`) initialise the word
    embedding; ``seed`` makes the initial weights reproducible.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    trunk = build_trunk(len(vocab), encoder=encoder, embed_dim=embed_dim, units=units,
                        dropout=dropout, embeddings=embeddings, train_embeddings=train_embeddings)
    model = MultiTaskModel(trunk, tasks, head_units=head_units, loss_weights=loss_weights,
                           weighting=weighting, name="multitask")
    model({"words": np.ones((1, 2), "int32"), "case": np.ones((1, 2), "int32")})
    release_traced_gradients()  # earlier models' graphs may go
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=False)
    return model


def architecture(model: MultiTaskModel) -> dict:
    """Which layers the tasks share and which belong to one task, with parameter counts.

    ``{"shared": [(layer, params)], "heads": {task: [(layer, params)]}}``; only
    layers with weights are listed.
    """
    shared = [(layer.name, layer.count_params()) for layer in model.trunk.layers if layer.weights]
    heads = {name: [(layer.name, layer.count_params()) for layer in layers]
             for name, layers in model.heads.items()}
    return {"shared": shared, "heads": heads}


# --------------------------------------------------------------------------- training


def _dataset(data: Encoded, batch_size: int, seed: int, mix: str | None = None):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    names = list(data.targets)

    def gen():
        while True:
            for x, y, _ in batches(data, batch_size, shuffle=True, rng=rng, mix=mix):
                yield x, y

    spec = tf.TensorSpec((None, None), tf.int32)
    signature = ({"words": spec, "case": spec}, {n: spec for n in names})
    return tf.data.Dataset.from_generator(gen, output_signature=signature).prefetch(2)


def train(model, data: Encoded, *, epochs: int = 1, steps: int | None = None,
          batch_size: int = 32, seed: int = 0, mix: str | None = None,
          callbacks: Sequence = (), verbose: int = 0):
    """Fit ``model`` on ``data``: ``epochs`` passes, or ``steps`` batch updates (one Keras
    epoch) if given; batches are reshuffled on every pass. ``mix``: see :func:`batches`.

    Returns the Keras ``History``; its logs hold the total ``loss`` and each
    task's ``<task>_loss``.
    """
    if len(data) == 0:
        raise ValueError("No training sentences.")
    n = len(data) if mix is None else data.labelled(mix)
    if n == 0:
        raise ValueError(f"No training sentence has {mix} labels.")
    per_epoch = math.ceil(n / batch_size)
    if steps is not None:
        epochs, per_epoch = 1, steps
    return model.fit(_dataset(data, batch_size, seed, mix), epochs=epochs, steps_per_epoch=per_epoch,
                     callbacks=list(callbacks), verbose=verbose, shuffle=False)


def _predictor(model):
    """``model`` in inference mode as one traced function for any batch shape."""
    fn = getattr(model, "_tlw_predictor", None)
    if fn is None:
        import tensorflow as tf

        spec = tf.TensorSpec((None, None), tf.int32)
        fn = tf.function(lambda x: model(x, training=False),
                         input_signature=[{"words": spec, "case": spec}])
        model._tlw_predictor = fn
    return fn


def predict_tags(model, data: Encoded, task: str, *, batch_size: int = 128) -> list[list[str]]:
    """The most likely label of every token, per sentence, for one task."""
    labels = next(t.labels for t in model.tasks if t.name == task)
    out: list[list[str] | None] = [None] * len(data)
    for x, _, idx in batches(data, batch_size):
        probs = np.asarray(_predictor(model)(x)[task])
        best = probs.argmax(-1)
        for row, i in enumerate(idx):
            out[i] = [labels[k] for k in best[row, : len(data.words[i])]]
    return out


def evaluate(model, data: Encoded) -> dict[str, float]:
    """Per-task scores on labelled tokens: entity F1/precision/recall for ``ner``,
    token accuracy for ``pos`` and ``lm`` (next-word accuracy)."""
    from tlwidgets.ner_metrics import entity_scores

    scores: dict[str, float] = {}
    for t in model.tasks:
        if t.name not in data.targets:
            continue
        rows = [i for i, y in enumerate(data.targets[t.name]) if (y >= 0).any()]
        if not rows:
            continue
        pred = predict_tags(model, data, t.name)
        if t.kind == "ner":
            gold = [[t.labels[k] for k in data.targets[t.name][i]] for i in rows]
            s = entity_scores(gold, [pred[i] for i in rows])
            scores.update(ner_f1=s["f1"], ner_precision=s["precision"], ner_recall=s["recall"])
        else:
            index = {lab: k for k, lab in enumerate(t.labels)}
            hits = total = 0
            for i in rows:
                y = data.targets[t.name][i]
                p = np.asarray([index[lab] for lab in pred[i]])
                hits += int(((p == y) & (y >= 0)).sum())
                total += int((y >= 0).sum())
            scores[f"{t.name}_accuracy"] = hits / total
    return scores


# --------------------------------------------------------------------------- experiments


def subsample_labels(sentences: Sequence[Sentence], task: str, n: int | None, *,
                     seed: int = 0) -> list[Sentence]:
    """Keep ``task`` labels (``"ner"`` or ``"pos"``) on ``n`` random sentences; drop the rest's.

    The sentences themselves (and their other labels) stay, so a multi-task
    model still learns from them.
    """
    if task not in ("ner", "pos"):
        raise ValueError(f"task must be 'ner' or 'pos', not {task!r}.")
    labelled = [i for i, s in enumerate(sentences) if getattr(s, "upos" if task == "pos" else task)]
    if n is None:
        return list(sentences)
    if n > len(labelled):
        raise ValueError(f"Asked for {n} {task}-labelled sentences; only {len(labelled)} have labels.")
    keep = set(np.random.default_rng(seed).choice(labelled, size=n, replace=False).tolist())
    field_name = "upos" if task == "pos" else task
    return [s if i in keep else replace(s, **{field_name: None}) for i, s in enumerate(sentences)]


def prepare(train_sents: Sequence[Sentence], task_names: Sequence[str], *,
            lm_size: int = 2000, base: Vocabulary | None = None,
            ) -> tuple[Vocabulary, list[Task], Encoded]:
    """Vocabulary, tasks and encoded training data for ``task_names``.

    The vocabulary comes from the sentences the model will train on: those
    with labels for one of its tasks (every sentence, with ``"lm"``); ``base``
    fixes its ids (see :meth:`Vocabulary.fit`). The next-word head predicts
    the ``lm_size - 1`` most frequent words.
    """
    tagging = [n for n in task_names if n != "lm"]
    used = list(train_sents)
    if "lm" not in task_names:
        used = [s for s in used if any(getattr(s, "upos" if n == "pos" else n) for n in tagging)]
    vocab = Vocabulary.fit(used, base=base)
    lm_words = vocab.words[2:2 + lm_size - 1] if "lm" in task_names else ()
    tasks = make_tasks(task_names, lm_words=lm_words)
    return vocab, tasks, encode(used, vocab, tasks)


def reset(model: MultiTaskModel, like: MultiTaskModel) -> MultiTaskModel:
    """Give ``model`` the initial weights of ``like`` (same architecture) and a fresh
    optimizer, keeping its traced training function: tracing a BiLSTM costs seconds."""
    model.set_weights(like.get_weights())
    for v in model.optimizer.variables:
        if not v.path.endswith("learning_rate"):
            v.assign(ops.zeros_like(v))
    return model


def run_config(train_sents: Sequence[Sentence], test_sents: Sequence[Sentence],
               task_names: Sequence[str], *, seed: int = 0, steps: int = 300,
               batch_size: int = 32, lm_size: int = 2000, base: Vocabulary | None = None,
               reuse: MultiTaskModel | None = None, callbacks: Sequence = (),
               mix: str | None = "ner", **model_kwargs) -> tuple[dict[str, float], MultiTaskModel]:
    """Train one model on ``train_sents`` for ``task_names``; score it on ``test_sents``.

    With ``mix="ner"`` (when NER is one of several tasks), each step sees a
    full batch of NER-labelled sentences plus a batch of the others, as a
    single-task NER model would see the first alone. ``reuse``, a model of the
    same shape, is reset to the new model's initial weights and trained
    instead (faster). Returns (scores, model); see :func:`prepare` and
    :func:`evaluate`.
    """
    vocab, tasks, data = prepare(train_sents, task_names, lm_size=lm_size, base=base)
    model = build_multitask_model(vocab, tasks, seed=seed, **model_kwargs)
    if reuse is not None:
        model = reset(reuse, model)
    if mix not in task_names or len(task_names) == 1:
        mix = None
    train(model, data, steps=steps, batch_size=batch_size, seed=seed, mix=mix,
          callbacks=callbacks)
    test = encode(test_sents, vocab, tasks, require_labels=False)
    return evaluate(model, test), model


_SCORES = {"ner": ("ner_f1", "ner_precision", "ner_recall"), "pos": ("pos_accuracy",),
           "lm": ("lm_accuracy",)}  # what :func:`evaluate` reports for each task


class NerLabels:
    """Learning-curve sizes in NER-labelled sentences (see :func:`subsample_labels`).

    Every sentence stays, with its other labels; ``size`` random ones keep their
    entity labels. ``None`` is all of them; a size above them is an error.
    """

    unit = "NER-labelled sentences"
    n_classes = None

    def __init__(self, sentences: Sequence[Sentence]):
        self.sentences = list(sentences)
        self.labelled = sum(bool(s.ner) for s in self.sentences)

    def resolve(self, size: int | None) -> int | None:
        if size is not None and size > self.labelled:
            raise ValueError(f"Asked for {size} ner-labelled sentences; only {self.labelled} "
                             "have labels. Use smaller sizes, or None for all.")
        return None if size == self.labelled else size

    def draw(self, size: int | None, seed: int) -> Draw:
        sents = subsample_labels(self.sentences, "ner", size, seed=seed)
        return Draw(size, seed, self.labelled if size is None else size, data=sents)


class _ConfigRun:
    """One configuration as a learning-curve method: train on the drawn sentences, score
    on the test ones; models of the same shape are shared (reset for each run)."""

    def __init__(self, spec: Mapping, test_sents, models: dict, metrics, **kwargs):
        self.spec, self.test_sents, self.models = dict(spec), test_sents, models
        self.metrics, self.kwargs = metrics, kwargs

    def __call__(self, draw: Draw) -> dict[str, float]:
        spec = dict(self.spec)
        tasks, extra = spec.pop("tasks"), list(spec.pop("extra", ()))
        shape = repr((tasks, sorted(spec.items())))
        scores, self.models[shape] = run_config(
            draw.data + extra, self.test_sents, tasks, seed=draw.seed,
            reuse=self.models.get(shape), **{**self.kwargs, **spec})
        return scores if self.metrics is None else {m: scores[m] for m in self.metrics}


def compare_learning_curves(
    train_sents: Sequence[Sentence],
    test_sents: Sequence[Sentence],
    *,
    sizes: Sequence[int | None],
    configs: Mapping[str, Sequence[str] | Mapping],
    repeats: int = 3,
    seed: int = 0,
    steps: int = 300,
    metrics: Sequence[str] | None = ("ner_f1",),
    progress: Callable[[dict], None] | None = None,
    base: Vocabulary | None = None,
    models: dict | None = None,
    glove: bool = True,
    domain: str = "",
    **model_kwargs,
) -> list[dict]:
    """Test scores of each configuration as the NER-labelled sentences grow:
    :func:`tlwidgets.learning_curves.learning_curve` records (sizes: :class:`NerLabels`).

    For each size ``n`` and repeat, ``n`` training sentences keep their entity
    labels; every sentence keeps its POS tags. A configuration maps a name to
    its tasks (``{"NER only": ["ner"], "NER + POS": ["ner", "pos"]}``) or to a
    dict with ``"tasks"``, optional ``"extra"`` sentences added to the training
    set (say POS-only ones) and model options (``"weighting"``, ...). Every
    model trains for the same number of ``steps`` (weight updates) and sees
    ``batch_size`` NER-labelled sentences per step; a multi-task model also
    sees as many other sentences per step (see :func:`run_config`), so the
    comparison isolates what the auxiliary labels add. ``metrics``: the scores
    of :func:`evaluate` to record (``None``: all). Repeat ``r`` uses seed
    ``seed + r`` for the labels kept, the initial weights and the batches, "all"
    included.

    Word ids come from all the training text (``extra`` included), but a run
    only knows the words of the sentences it trains on; so configurations of
    the same shape share one model, which is reset for every run. Pass the
    same ``base`` vocabulary and ``models`` dict to several calls to share
    models across them too. Without ``base`` and with ``glove``, the word
    embedding starts from GloVe (frozen unless ``train_embeddings=True``),
    over the training words plus the GloVe words of all the text, test
    sentences included (see :func:`pretrained_vocabulary`); pass ``embeddings``
    (and ``train_embeddings``) yourself with your own ``base``.
    """
    specs = {name: dict(s) if isinstance(s, Mapping) else {"tasks": list(s)}
             for name, s in configs.items()}
    if base is None:
        extras = {id(s): s for spec in specs.values() for s in spec.get("extra", ())}
        text = [*train_sents, *extras.values()]
        if glove:
            base, matrix, _ = pretrained_vocabulary(text, "glove-6b-50d-top20k", also=test_sents)
            model_kwargs.setdefault("embeddings", matrix)
            model_kwargs.setdefault("train_embeddings", False)
        else:
            base = Vocabulary.fit(text)
    for name, spec in specs.items():  # before anything trains
        scored = {m for t in spec["tasks"] for m in _SCORES.get(t, ())}
        missing = [m for m in metrics or () if m not in scored]
        if missing:
            raise ValueError(f"Metrics {missing} are not measured for {name!r} (tasks "
                             f"{spec['tasks']}); it reports {sorted(scored)}.")
    models = {} if models is None else models
    methods = {name: _ConfigRun(spec, test_sents, models, metrics, steps=steps, base=base,
                                **model_kwargs)
               for name, spec in specs.items()}
    return learning_curve(methods, NerLabels(train_sents), sizes, repeats=repeats, seed=seed,
                          repeat_all=True, domain=domain, progress=progress)
