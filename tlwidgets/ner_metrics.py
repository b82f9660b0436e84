"""Entity-level precision, recall and F1, scored as CoNLL's ``conlleval`` does.

An entity counts as found only if its type and both of its boundaries match a
gold entity exactly: a partial span is one false positive *and* one false
negative. Scores come from `seqeval <https://github.com/chakki-works/seqeval>`_
(its default mode reproduces ``conlleval``, where a stray ``I-X`` opens an
entity).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["entity_scores", "entity_spans"]


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities in one tag sequence as ``(type, first, last)`` token indices (inclusive)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(kind, start, end) for kind, start, end in get_entities(list(tags))]


def _check(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold sentences but {len(y_pred)} predicted ones.")
    for i, (t, p) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(t) != len(p):
            raise ValueError(f"Sentence {i}: {len(t)} gold tags but {len(p)} predicted tags.")


def entity_scores(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]
) -> dict[str, float | dict]:
    """Micro-averaged entity precision/recall/F1 plus the same per entity type.

    Returns ``{"precision", "recall", "f1", "support", "per_type": {type: {...}}}``;
    ``support`` is the number of gold entities. With no gold and no predicted
    entities every score is 0.
    """
    from seqeval.metrics import classification_report

    _check(y_true, y_pred)
    true, pred = [list(s) for s in y_true], [list(s) for s in y_pred]
    n_true = sum(len(entity_spans(s)) for s in true)
    n_pred = sum(len(entity_spans(s)) for s in pred)
    if n_true == 0 and n_pred == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "per_type": {}}
    report = classification_report(true, pred, output_dict=True, zero_division=0)
    micro = report.pop("micro avg")
    for key in ("macro avg", "weighted avg"):
        report.pop(key, None)

    def row(r: dict) -> dict:
        return {"precision": float(r["precision"]), "recall": float(r["recall"]),
                "f1": float(r["f1-score"]), "support": int(r["support"])}

    return {**row(micro), "per_type": {k: row(v) for k, v in sorted(report.items())}}
