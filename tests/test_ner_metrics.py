"""Entity-level scores against hand-worked examples (exact spans, as conlleval)."""

from __future__ import annotations

import pytest

from tlwidgets.ner_metrics import entity_scores, entity_spans


def test_spans():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]) == [
        ("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4)]


def test_perfect_prediction():
    gold = [["B-PER", "I-PER", "O"], ["B-ORG"]]
    s = entity_scores(gold, gold)
    assert (s["precision"], s["recall"], s["f1"], s["support"]) == (1.0, 1.0, 1.0, 2)


def test_partial_span_is_one_false_positive_and_one_false_negative():
    # Gold: PER(0-1), LOC(3). Predicted: PER(0) (too short), LOC(3).
    # TP = 1 (LOC), FP = 1 (PER 0-0), FN = 1 (PER 0-1): P = R = F1 = 1/2.
    s = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(0.5)
    assert s["per_type"]["PER"]["f1"] == 0.0
    assert s["per_type"]["LOC"]["f1"] == 1.0


def test_wrong_type_counts_as_error_and_micro_average_pools_sentences():
    gold = [["B-ORG", "I-ORG", "O"], ["O", "B-PER"], ["B-LOC"]]
    pred = [["B-PER", "I-PER", "O"], ["O", "B-PER"], ["O"]]
    # Gold entities: ORG(0-1), PER(1), LOC(0) = 3. Predicted: PER(0-1), PER(1) = 2.
    # TP = 1 -> P = 1/2, R = 1/3, F1 = 2PR/(P+R) = 0.4.
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(1 / 2)
    assert s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(0.4)
    assert s["support"] == 3


def test_longer_predicted_span_is_wrong_too():
    s = entity_scores([["B-LOC", "O"]], [["B-LOC", "I-LOC"]])
    assert s["f1"] == 0.0


def test_stray_inside_tag_opens_an_entity_as_in_conlleval():
    s = entity_scores([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])
    assert s["f1"] == 1.0


def test_no_entities_anywhere_scores_zero_without_warnings():
    assert entity_scores([["O", "O"]], [["O", "O"]])["f1"] == 0.0


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="Sentence 0: 2 gold tags but 1"):
        entity_scores([["O", "O"]], [["O"]])
