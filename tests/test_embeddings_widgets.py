"""The embedding widgets, driven from Python (the browser test covers rendering)."""

from __future__ import annotations

import pytest

from tlwidgets import oov
from tlwidgets.embeddings import continue_training, load_vectors
from tlwidgets.widgets.embedding_explorer import EmbeddingExplorer
from tlwidgets.widgets.oov_report import OOVReportWidget


@pytest.fixture(scope="module")
def glove(shared_assets):
    return load_vectors("glove-6b-50d-top20k")


def test_oov_widget_reports_any_corpus(glove, tmp_path):
    w = OOVReportWidget(glove, {"Python reference manual": oov.python_reference()},
                        reference=["The cat sat on the mat."], reference_name="cats")
    assert w.source == "Python reference manual" and 0.5 < w.token_coverage < 1
    assert w.unk_share == pytest.approx(1 - w.token_coverage)
    assert "tlw-oov-chart" in w._out.value and "cats" in w._out.value
    # Only the box the chosen source needs is shown.
    assert (w._path.layout.display, w._text.layout.display) == ("none", "none")
    w._choice.value = "pasted text"
    assert (w._path.layout.display, w._text.layout.display) == ("none", None)
    w._text.value = "The flarpish zorbs def __init__"
    w._button.click()
    assert w.source == "pasted text" and ["flarpish", 1] in w.top_oov
    w._text.value = "   "
    w._button.click()
    assert "no word tokens" in w.error
    w._choice.value = "a file or folder"
    assert (w._path.layout.display, w._text.layout.display) == (None, "none")
    (tmp_path / "doc.txt").write_bytes(b"the cat \xff sat")
    w._path.value = str(tmp_path)
    w._button.click()
    assert w.error == "" and w.token_coverage == 1.0 and w.runs == 4


def test_oov_widget_does_not_compare_the_reference_with_itself(glove):
    general = ["The cat sat on the mat.", "A dog ran in the park."]
    w = OOVReportWidget(glove, {"Python reference manual": oov.python_reference(),
                                "everyday text": general},
                        reference=general, reference_name="everyday text")
    assert w._out.value.count("<th>everyday text</th>") == 1  # beside the domain corpus
    w._choice.value = "everyday text"
    w._button.click()
    assert w.source == "everyday text"
    assert w._out.value.count("<th>everyday text</th>") == 1  # not twice, side by side
    assert w._out.value.count("<th>") == 2  # the label column and this corpus


def test_explorer_compares_general_and_domain_vectors(glove):
    sents = oov.sentences(oov.python_reference())[:3000]
    adapted = continue_training(glove, sents, lock=True, epochs=3)
    ex = EmbeddingExplorer(glove, adapted.wv, words=["class", "function", "tuple", "list"],
                           word="class", analogy_questions=300)
    assert len(ex.neighbours_general) == 8 and len(ex.neighbours_domain) == 8
    assert ex.neighbours_general != ex.neighbours_domain
    ex.show_neighbours("__init__")  # a domain word: no general vector
    assert ex.neighbours_general == [] and len(ex.neighbours_domain) == 8
    assert "not in the vocabulary" in ex._tables.value
    ex.solve_analogy("man", "king", "woman")
    assert "queen" in ex.analogy_result
    ex.solve_analogy("man", "king", "qwzxv")
    assert ex.analogy_result == [] and "qwzxv" in ex._analogy_out.value
    assert 0.2 < ex.score_analogies().accuracy == ex.analogy_accuracy
    ex.project("class, tuple, __init__, qwzxv")
    spaces = {row[0] for row in ex.projected}
    assert spaces == {"domain"} | ({"general"} if "tuple" in glove.key_to_index else set())
    assert "qwzxv" in ex.message
    assert "tlw-emb-map" in ex._map.value and "data:image/png" in ex._map.value
    assert "white-space:nowrap" in ex._tables.value  # "domain-adapted" stays on one line
