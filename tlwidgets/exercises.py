"""Self-checks for the notebooks' exercises.

Each exercise has an id, ``"NN-k"`` (notebook ``NN``, e.g. ``04b``, exercise ``k``). After an
attempt, the learner calls ``check(id, answer, ...)`` on what they built or found::

    >>> from tlwidgets.exercises import check
    >>> check("04-2", 20_000, report=rep_general)        # doctest: +SKIP
    ✗ 04-2: not yet. With the first 20,000 words, 91.2% of the general tokens are known ...

The result (:class:`Feedback`) is truthy when the answer is right and shows a short
message either way: what was checked, or a hint at what to change. It is also
recorded (``tlwidgets.notebook.record``) as ``exercise NN-k``, so the tests that run
every solution can see that each check passed.
"""

from __future__ import annotations

import html
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["EXERCISES", "Feedback", "check", "record_key"]


@dataclass(frozen=True)
class Feedback:
    """Outcome of one self-check: ``passed`` and a message for the learner."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        verdict = "well done." if self.passed else "not yet."
        return f"{mark} {self.exercise}: {verdict} {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, mark = ("#1b7f3b", "✓") if self.passed else ("#a15c00", "✗")
        verdict = "Well done." if self.passed else "Not yet."
        return (f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
                f'<b style="color:{colour}">{mark} Exercise {self.exercise}: {verdict}</b> '
                f"{html.escape(self.message)}</div>")


class _NotYet(Exception):
    """Raised inside a checker: the answer is not right yet; the text is the hint."""


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise _NotYet(hint)


def _fraction(value: Any, what: str) -> float:
    _expect(isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0,
            f"{what} should be a number between 0 and 1 (a fraction, as `.score()` returns), "
            f"not {value!r}.")
    return float(value)


# --- one checker per exercise: (answer, **context) -> message when right -----------------

def _01_1(featuriser, *, accuracy=None) -> str:
    _expect(hasattr(featuriser, "pooling"),
            "Pass the Featuriser you built, e.g. `Featuriser(\"auto\", pooling=\"max\")`.")
    _expect(featuriser.pooling == "max",
            f"This featuriser pools with {featuriser.pooling!r}; the exercise asks for "
            "`pooling=\"max\"`.")
    if accuracy is None:
        return "Max pooling is set; now compare its accuracy with the average's."
    acc = _fraction(accuracy, "The accuracy")
    return f"Max pooling scores {acc:.1%} on the validation images; compare it with the average."


def _01_2(pipeline, *, layer: str) -> str:
    steps = getattr(pipeline, "steps", None)
    _expect(bool(steps), "Pass the scikit-learn pipeline (`make_pipeline(featuriser, model)`).")
    first = steps[0][1]
    _expect(getattr(first, "layer", None) == layer,
            f"The pipeline cuts at {getattr(first, 'layer', None)!r}; the depth sweep's best "
            f"layer is {layer!r} (`best_far[\"layer\"]`).")
    _expect(hasattr(steps[-1][1], "classes_"),
            "The pipeline is not fitted yet: call `.fit(xray_train.images, xray_train.labels)`.")
    return f"The pipeline cuts at {layer} and is fitted; compare its score with the last layer's."


def _01_3(scores: Mapping, *, subset=None) -> str:
    _expect(isinstance(scores, Mapping) and {"imagenet", "random"} <= set(scores),
            "Pass a dict with the two LogME scores: `{\"imagenet\": ..., \"random\": ...}`.")
    values = {k: float(scores[k]) for k in ("imagenet", "random")}
    _expect(all(math.isfinite(v) for v in values.values()),
            f"LogME gave a non-finite score: {values}; check the features you passed.")
    if subset is not None:
        import numpy as np

        counts = {int(c) for c in np.bincount(np.asarray(subset.labels)) if c}
        _expect(counts == {10}, f"The subset has {sorted(counts)} images per class, not 10: "
                                "use `ants_train.subset(10, seed=0)`.")
    order = "above" if values["imagenet"] > values["random"] else "below"
    return (f"With 10 images per class, LogME ranks ImageNet ({values['imagenet']:.3f}) {order} "
            f"random weights ({values['random']:.3f}).")


def _trainable_blocks(model) -> tuple[list, list]:
    from tlwidgets import freezing

    base = freezing.find_base(model)
    rows = {row.path: row for row in freezing.layer_table(model)}
    blocks = freezing.blocks(model, base)
    trainable = [b for b in blocks if any(rows[p].trainable and rows[p].params
                                          for p in b.paths if p in rows)]
    return blocks, trainable


def _02_1(model) -> str:
    blocks, trainable = _trainable_blocks(model)
    _expect(bool(trainable), "No block of the base is trainable: unfreeze the stem "
                             "(`freezing.blocks(m, freezing.find_base(m))[0]`).")
    names = [b.name for b in trainable]
    _expect(names == [blocks[0].name],
            f"Trainable blocks of the base: {', '.join(names)}; only the lowest one, "
            f"{blocks[0].name!r}, should be.")
    return f"Only the stem ({blocks[0].name}) trains in the base; compare with the top blocks."


def _02_2(model) -> str:
    from tlwidgets import freezing

    rows = freezing.layer_table(model)
    base = freezing.find_base(model).name
    in_base = [r for r in rows if r.path.startswith(base + "/")]
    moving = [r for r in in_base if r.trainable and r.trainable_params]
    _expect(bool(moving), "Nothing in the base trains: set its BatchNormalization layers "
                          "trainable (`freezing.set_layers_trainable(m, ..., train_bn=True)`).")
    others = [r.path for r in moving if r.bn_mode is None]
    if others:
        raise _NotYet(f"Besides BatchNormalization, {len(others)} layers of the base train "
                      f"(e.g. {others[0]}); keep the rest of the base frozen.")
    return f"Only the base's {len(moving)} BatchNormalization layers train, with the new head."


def _02_3(lr, *, finder) -> str:
    _expect(isinstance(lr, int | float) and lr > 0,
            f"Pass the learning rate you used (a positive number), not {lr!r}.")
    suggestion = float(finder.suggestion)
    _expect(math.isclose(lr, suggestion, rel_tol=1e-6),
            f"You used {lr:.2g}; the finder suggests {suggestion:.2g} (`found.suggestion`).")
    return f"Full fine-tuning at the finder's {suggestion:.2g}; compare with 1e-05."


def _03_1(layer, *, activations, image_size: int) -> str:
    layers = activations.layers
    index = layers.index(layer) if isinstance(layer, str) and layer in layers else layer
    _expect(isinstance(index, int) and 0 <= index < len(layers),
            f"Give a layer name from `acts.layers` or its number in the table, not {layer!r}.")
    sizes = [activations.receptive_fields[p].size for p in layers]
    first = next((i for i, s in enumerate(sizes) if s >= image_size), None)
    if first is None:
        _expect(False, "No layer in the table sees the whole image at this size; "
                       f"the last sees {sizes[-1]} px of {image_size}.")
    _expect(sizes[index] >= image_size,
            f"Layer {index} sees {sizes[index]} px, less than the {image_size}-px image: "
            "look further down the table.")
    _expect(index == first, f"Layer {index} sees the whole image, but an earlier one does too.")
    return f"Layer {index} ({layers[index]}) is the first to see all {image_size} px."


def _03_2(layer, *, activations, image_size: int) -> str:
    layers = activations.layers
    _expect(layer in layers, f"Give a layer name from `acts.layers` (the explorer's list), "
                             f"not {layer!r}.")
    size = activations.receptive_fields[layer].size
    return (f"{layer} sees {size} px of the {image_size}-px image ({size / image_size:.0%}); "
            "maps usually stop looking like the photo once each unit sees a large part of it.")


def _03_3(result, *, backbone) -> str:
    import numpy as np

    images = getattr(result, "images", result)
    _expect(isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[-1] == 3,
            "Pass the FilterVisualizer's result (`viz.run(...)`): images (n, size, size, 3).")
    _expect(getattr(backbone, "weights", None) == "random",
            f"The filters come from a network with {getattr(backbone, 'weights', None)!r} "
            "weights; load it with `load_backbone(..., weights=\"random\")`.")
    return f"{len(images)} filters of the untrained network; compare them with the trained grid."


def _04_1(report) -> str:
    _expect(hasattr(report, "covered_content_tokens"),
            "Pass the report of your paragraph: `oov.oov_report(oov.Text(text), glove)`.")
    _expect(report.tokens > 0, "Your text has no tokens: paste a paragraph.")
    share = 1 - report.covered_content_tokens / max(report.content_tokens, 1)
    words = ", ".join(w for w, _ in report.top_oov[:5]) or "none"
    return f"{share:.1%} of its content words would become UNK (most frequent: {words})."


def _04_2(limit, *, report) -> str:
    by_limit = report.coverage_by_limit
    right = next((k for k, v in sorted(by_limit.items()) if v >= 0.95), None)
    if right is None:
        _expect(limit is None, "No listed limit reaches 95% of the general tokens: the answer "
                               "is `None`.")
        return "No listed limit reaches 95%; even the whole vocabulary falls short."
    _expect(limit in by_limit, f"Pick one of the limits of `coverage_by_limit` "
                               f"({', '.join(f'{k:,}' for k in sorted(by_limit))}).")
    _expect(by_limit[limit] >= 0.95, f"With the first {limit:,} words, "
                                     f"{by_limit[limit]:.1%} of the general tokens are known: "
                                     "less than 95%.")
    _expect(limit == right, f"{limit:,} words keep 95%, but a smaller limit does too.")
    return f"{limit:,} words keep {by_limit[limit]:.1%} of the general tokens."


def _04_3(choice: str) -> str:
    _expect(choice in ("locked", "free"), "Answer \"locked\" or \"free\".")
    _expect(choice == "locked",
            "The free model moved general words towards the domain's sense, so a classifier "
            "trained on general text would read them differently.")
    return ("The locked model keeps general words where GloVe put them, so a classifier trained "
            "on GloVe features still understands them.")


def _04b_1(share, *, report) -> str:
    _expect(hasattr(report, "shared_tokens"), "Pass the report of Livre IV against the French "
                                              "vectors: `report=r`.")
    right = report.shared_tokens / max(report.tokens, 1)
    value = _fraction(share, "The share")
    if abs(value - right) > 0.005:
        _expect(abs(value - report.token_coverage) > 0.005,
                "That is the token coverage (every covered token); count only the tokens whose "
                "vector is another word's: `r.shared_tokens`.")
        _expect(abs(value - report.unk_share) > 0.005,
                "That is the share of tokens with no vector at all; count the covered tokens "
                "whose vector is another word's: `r.shared_tokens`.")
        raise _NotYet(f"{value:.1%} is not it: divide `r.shared_tokens` by `r.tokens`.")
    return (f"{right:.1%} of the tokens count as covered yet carry another word's meaning; "
            "coverage alone would hide them.")


def _04b_2(pair, *, vectors) -> str:
    from tlwidgets.embeddings import shared_words

    _expect(isinstance(pair, tuple | list) and len(pair) == 2,
            "Answer with a pair: `(word, owner)`.")
    word, owner = pair
    _expect(word in vectors.key_to_index, f"{word!r} has no French vector at all (it is UNK); "
                                          "pick a word from `r.shared_covered`.")
    sharing = shared_words(vectors, word)
    _expect(sharing[0] != word, f"{word!r} owns its vector (no other word's meaning); pick a "
                                "word from `r.shared_covered`.")
    _expect(owner == sharing[0], f"{word!r} shares its vector with {len(sharing) - 1:,} words; "
                                 f"the first of `E.shared_words(french, {word!r})` owns it, "
                                 f"not {owner!r}.")
    return f"{word!r} is read as {owner!r}: one vector for both."


def _04b_3(k, *, table: Mapping) -> str:
    _expect(isinstance(table, Mapping) and {"bag of words", "general French"} <= set(table),
            "Pass the table of section 5: `table=table`.")
    bag, general = table["bag of words"], table["general French"]
    sizes = sorted(bag)
    ahead = [s for s in sizes if bag[s][0] > general[s][0]]
    right = next((s for s in sizes if all(t in ahead for t in sizes if t >= s)), None)
    if right is None:
        _expect(k is None, "The bag of words does not stay ahead at the largest size: "
                           "answer `None`.")
        return "The vectors stay ahead at every size measured: with few labels, they help."
    _expect(k in sizes, f"Pick one of the sizes measured ({', '.join(map(str, sizes))}), "
                        "or `None`.")
    _expect(k == right, f"From {right} labels per class on the bag of words is ahead; "
                        f"at {k} it is " + ("ahead, but not at every larger size."
                                            if k in ahead else "behind."))
    return (f"From {right} labels per class the bag of words wins; below that the general "
            "vectors' knowledge is worth more than the labels.")


def _05_1(answer: Mapping) -> str:
    _expect(isinstance(answer, Mapping) and set(answer) >= {2, 0.2},
            "Answer with a dict: the task whose loss falls faster at each POS weight, "
            "`{2: \"pos\" or \"ner\", 0.2: ...}`.")
    _expect(answer[2] == "pos", "At POS weight 2 the shared trunk mostly serves POS: its loss "
                                "falls faster.")
    _expect(answer[0.2] == "ner", "At POS weight 0.2 the trunk mostly serves NER again.")
    return "The weight decides which task the shared trunk serves first."


def _05_2(scores: Mapping, *, vocab=None) -> str:
    _expect(isinstance(scores, Mapping) and "ner_f1" in scores,
            "Pass the scores `mt.evaluate(model, test_data)` returned (they hold `ner_f1`).")
    f1 = _fraction(scores["ner_f1"], "The NER F1")
    if vocab is not None:
        _expect(not getattr(vocab, "pretrained", ()),
                f"{len(vocab.pretrained):,} words of this vocabulary have pretrained vectors; "
                "build it with `mt.prepare(sents, [\"ner\"])` (training words only).")
    return f"NER F1 {f1:.3f} with random embeddings; compare it with the GloVe curve at 300."


def _07_1(strategy, *, pool) -> str:
    _expect(callable(strategy), "Pass your strategy function itself: `check(\"07-1\", "
            "my_strategy, pool=pool)`, a function `(pool, n, rng) -> positions`.")
    n = min(5, len(pool.unlabelled))
    try:
        picked = np.asarray(strategy(pool, n, np.random.default_rng(0)))
    except Exception as error:  # the learner's code: say what broke, not a traceback
        raise _NotYet(f"Calling my_strategy(pool, {n}, rng) raised {type(error).__name__}: "
                      f"{error}") from None
    _expect(picked.ndim == 1 and len(picked) == n,
            f"Asked for {n} items, the strategy returned {picked.shape}: return {n} positions.")
    _expect(len(set(picked.tolist())) == n, "Some positions repeat: return distinct items.")
    _expect(set(picked.tolist()) <= set(pool.unlabelled.tolist()),
            "Some positions are already labelled, or not in the pool: pick from "
            "`pool.unlabelled`.")
    return f"Your strategy asks for {n} distinct unlabelled items; compare its curve with random."


def _06_1(result, *, rows) -> str:
    from tlwidgets.transfer_regimes import crossover

    _expect(isinstance(result, Mapping) and "size" in result and "metric" in result,
            "Pass one domain's result of `tr.crossover(rows, metric=...)[domain]` (a dict with "
            "'size', 'metric', ...).")
    _expect(result["metric"] == "roc_auc",
            f"This crossover compares {result['metric']!r}; the exercise asks for ROC AUC: "
            "`metric=\"roc_auc\"`.")
    domain = result.get("domain")
    truth = crossover(rows, metric="roc_auc")
    _expect(domain in truth, f"The rows hold no domain {domain!r}; pass the X-rays' records.")
    _expect(result["size"] == truth[domain]["size"],
            f"The records give a crossover at {truth[domain]['size']!r}, not "
            f"{result['size']!r}: use the same records (`curves[\"chest X-rays\"]`).")
    where = ("not in range" if result["size"] is None
             else f"from {result['size']} images per class")
    return f"By ROC AUC, fine-tuning overtakes the featuriser {where}; compare with accuracy."


def _06_2(model) -> str:
    from tlwidgets import freezing

    _expect(hasattr(model, "layers"), "Pass the Keras model you built.")
    blocks, trainable = _trainable_blocks(model)
    weighted = [b for b in blocks if b.params]
    top = [b.name for b in weighted[-2:]]
    names = [b.name for b in trainable]
    _expect(names == top, f"Trainable blocks of the base: {', '.join(names) or 'none'}; the top "
                          f"two, {', '.join(top)}, should be (`freezing.unfreeze_top(m, 2)`).")
    bn = [r.path for r in freezing.layer_table(model) if r.bn_mode is not None and r.trainable]
    _expect(not bn, f"{len(bn)} BatchNormalization layers train (e.g. {bn[0] if bn else ''}); "
                    "keep them frozen (`train_bn=False`).")
    head = [layer for layer in model.layers if layer.name == "head"]
    _expect(not head or head[0].trainable, "The head must train too.")
    return f"The top blocks {', '.join(top)} and the head train; BatchNormalization stays frozen."


EXERCISES: dict[str, Callable[..., str]] = {
    "01-1": _01_1, "01-2": _01_2, "01-3": _01_3,
    "02-1": _02_1, "02-2": _02_2, "02-3": _02_3,
    "03-1": _03_1, "03-2": _03_2, "03-3": _03_3,
    "04-1": _04_1, "04-2": _04_2, "04-3": _04_3,
    "04b-1": _04b_1, "04b-2": _04b_2, "04b-3": _04b_3,
    "05-1": _05_1, "05-2": _05_2,
    "06-1": _06_1, "06-2": _06_2,
    "07-1": _07_1,
}


def record_key(exercise: str) -> str:
    """The name under which :func:`check` records an exercise's outcome."""
    return f"exercise {exercise}"


def check(exercise: str, answer: Any, **context: Any) -> Feedback:
    """Check an answer to exercise ``exercise`` (``"NN-k"``); see each exercise's text.

    Returns a :class:`Feedback` (truthy when right) and records whether it passed.
    """
    from tlwidgets.notebook import record

    if exercise not in EXERCISES:
        raise ValueError(f"No exercise {exercise!r}; the exercises are "
                         f"{', '.join(EXERCISES)}.")
    checker = EXERCISES[exercise]
    try:
        inspect.signature(checker).bind(answer, **context)
    except TypeError as error:  # a missing or unexpected keyword
        raise TypeError(f"check({exercise!r}, ...): {error}; the exercise's text says what to "
                        "pass.") from None
    try:
        feedback = Feedback(exercise, True, checker(answer, **context))
    except _NotYet as hint:
        feedback = Feedback(exercise, False, str(hint))
    record(record_key(exercise), feedback.passed)
    return feedback
