"""MultiTaskWidget driven from Python: controls set the traits, Train trains and scores."""

from __future__ import annotations

import pytest

from tlwidgets import multitask as mt
from tlwidgets.conll import load_ewt
from tlwidgets.widgets.multitask import MultiTaskWidget, loss_chart


@pytest.fixture(scope="module")
def widget():
    dev = load_ewt("dev")
    return MultiTaskWidget(dev[:60], dev[60:90], epochs=1, batch_size=16, log_every=1,
                           units=8, head_units=8)


def test_controls_set_tasks_weights_and_diagram(widget):
    assert widget.tasks == ["ner", "pos"]
    widget._boxes["lm"].value = True
    widget._sliders["pos"].value = 0.5
    assert widget.tasks == ["ner", "pos", "lm"]
    assert widget.loss_weights == {"ner": 1.0, "pos": 0.5, "lm": 1.0}
    diagram = widget._diagram.value
    assert diagram.count("class='tlw-mt-head'") == 3 and "bilstm" in diagram
    widget._boxes["lm"].value = False
    assert widget._diagram.value.count("class='tlw-mt-head'") == 2
    assert widget._sliders["lm"].disabled
    for t in ("ner", "pos"):
        widget._boxes[t].value = False
    assert widget.tasks == [] and widget.status == "Choose at least one task."
    for t in ("ner", "pos"):
        widget._boxes[t].value = True
    assert widget.tasks == ["ner", "pos"] and widget.status == ""


def test_train_fills_monitor_and_scores(widget):
    widget._weighting.value = "uncertainty"
    scores = widget.train()
    assert widget.runs == 1 and widget.status == "done: run 1"
    assert set(scores) >= {"ner_f1", "pos_accuracy"}
    assert len(widget.history["pos"]) == 4  # 60 sentences / 16 per batch, logged every batch
    # Learned weighting moved the weights away from their starting value of 0.5 for pos.
    assert widget.history["weight:pos"][-1] != 0.5
    assert "tlw-mt-chart" in widget._chart.value and "pos_accuracy" in widget._scores.value
    chart = loss_chart(widget.history, widget.tasks)
    assert chart.png[:4] == b"\x89PNG" and [i.lines for i in chart.info] == [2, 2]


def test_all_weights_zero_is_reported_not_raised(widget):
    widget._weighting.value = "fixed"
    for t in widget.tasks:
        widget._sliders[t].value = 0.0
    assert widget.train() == {}
    assert "All loss weights are zero" in widget.status
    for t in widget.tasks:
        widget._sliders[t].value = 1.0


def test_diagram_counts_the_weights_train_builds(widget):
    vocab, tasks, _ = mt.prepare(widget.train_sents, widget.tasks)
    model = mt.build_multitask_model(vocab, tasks, units=8, head_units=8)
    arch = mt.architecture(model)
    embedding = dict(arch["shared"])["word_embedding"]
    assert embedding == len(vocab) * 50 > 1000  # the real vocabulary, not a one-word stand-in
    assert f"word_embedding <span style='color:#666;font-size:0.85em'>({embedding:,} weights)" in (
        widget._diagram.value)
    assert f"{model.count_params():,} weights in all" in widget._diagram.value


def test_loss_chart_draws_one_line_per_task():
    chart = loss_chart({"ner": [3.0, 2.0, 1.0], "pos": [2.0, 1.0], "weight:ner": [1.0, 1.0]},
                       ["ner", "pos"])
    assert chart.png[:4] == b"\x89PNG"
    assert [i.lines for i in chart.info] == [2, 1]
    assert {ln.label for ln in chart.panels[0].lines} == {"Named entities (end task)",
                                                          "Part of speech"}


def test_fixed_weights_are_said_in_words_on_an_axis_from_zero():
    history = {"ner": [3.0, 2.0], "pos": [2.0, 1.0], "weight:ner": [1.0, 1.0],
               "weight:pos": [1.0, 1.0]}
    chart = loss_chart(history, ["ner", "pos"])
    weights = chart.panels[1]
    assert weights.ylim == (0.0, 1.2) and weights.note.startswith("fixed weights:")
    learned = loss_chart({**history, "weight:pos": [1.0, 0.5]}, ["ner", "pos"]).panels[1]
    assert learned.note == ""  # weights that move need no words
