"""The exercises' self-checks: right answers pass, wrong ones say what to change."""

from types import SimpleNamespace

import pytest

from tlwidgets.exercises import EXERCISES, Feedback, check


def test_a_right_answer_passes_and_is_recorded():
    feedback = check("04-3", "locked")
    assert isinstance(feedback, Feedback) and feedback
    assert feedback.passed and str(feedback).startswith("✓ 04-3")
    assert "Exercise 04-3" in feedback._repr_html_()


def test_a_wrong_answer_gets_a_hint():
    report = SimpleNamespace(coverage_by_limit={1000: 0.80, 10000: 0.96, 50000: 0.99})
    assert check("04-2", 10000, report=report)
    too_small = check("04-2", 1000, report=report)
    assert not too_small and "80.0%" in too_small.message and "less than 95%" in too_small.message
    too_large = check("04-2", 50000, report=report)
    assert not too_large and "smaller limit" in too_large.message
    assert "one of the limits" in check("04-2", 123, report=report).message


def test_answers_of_the_wrong_kind_are_explained():
    assert "dict" in check("05-1", "pos").message
    assert not check("05-1", {2: "ner", 0.2: "ner"})
    assert "between 0 and 1" in check("05-2", {"ner_f1": 3.0}).message
    assert "02-3" in str(check("02-3", 0.5, finder=SimpleNamespace(suggestion=1e-3)))


def test_unknown_exercise_and_missing_context_fail_clearly():
    with pytest.raises(ValueError, match="No exercise '09-1'"):
        check("09-1", 1)
    with pytest.raises(TypeError, match="report"):
        check("04-2", 1000)


def test_every_notebook_exercise_is_numbered():
    import re

    assert all(re.fullmatch(r"\d\d[a-z]?-\d", k) for k in EXERCISES)


def test_french_exercises_explain_what_is_wrong():
    report = SimpleNamespace(shared_tokens=50, tokens=1000, token_coverage=0.9, unk_share=0.1)
    assert check("04b-1", 0.05, report=report)
    assert "token coverage" in check("04b-1", 0.9, report=report).message
    assert "no vector at all" in check("04b-1", 0.1, report=report).message
    table = {"bag of words": {5: (0.3, 0.1), 20: (0.6, 0.1), 50: (0.8, 0.0)},
             "general French": {5: (0.5, 0.1), 20: (0.55, 0.1), 50: (0.7, 0.0)}}
    assert check("04b-3", 20, table=table)
    assert "behind" in check("04b-3", 5, table=table).message
    table["bag of words"][50] = (0.6, 0.0)
    assert check("04b-3", None, table=table)
    assert "None" in check("04b-3", 20, table=table).message
