"""Multi-task training cost on CPU: one epoch over 3,000 EWT sentences, and what the
auxiliary heads add per epoch (ratios measured in this run)."""

from __future__ import annotations

import time

from tlwidgets import multitask as mt
from tlwidgets.conll import load_ewt


def epoch_seconds(sentences, task_names, *, encoder="bilstm", repeats=2) -> float:
    """Best of ``repeats`` timed epochs, after a short warm-up that traces the step."""
    vocab, tasks, data = mt.prepare(sentences, task_names)
    model = mt.build_multitask_model(vocab, tasks, encoder=encoder)
    mt.train(model, data, steps=3)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mt.train(model, data, epochs=1)
        best = min(best, time.perf_counter() - start)
    return best


def step_seconds(sentences, task_names, *, steps=60) -> float:
    """Seconds per update as the learning curve trains (mixed batches for several tasks)."""
    vocab, tasks, data = mt.prepare(sentences, task_names)
    model = mt.build_multitask_model(vocab, tasks)
    mix = "ner" if len(task_names) > 1 else None
    mt.train(model, data, steps=3, mix=mix)
    start = time.perf_counter()
    mt.train(model, data, steps=steps, mix=mix)
    return (time.perf_counter() - start) / steps


def main(quick: bool = False) -> list[dict]:
    n = 600 if quick else 3000
    sents = (load_ewt("dev") + load_ewt("test"))[:n]
    single = epoch_seconds(sents, ["ner"])
    multi = epoch_seconds(sents, ["ner", "pos"])
    with_lm = epoch_seconds(sents, ["ner", "pos", "lm"])
    cnn = epoch_seconds(sents, ["ner", "pos"], encoder="cnn")
    budget = 30 * n / 3000
    curve_sents = mt.subsample_labels(sents[:2001], "ner", 300, seed=0)
    step_single = step_seconds(curve_sents, ["ner"])
    step_multi = step_seconds(curve_sents, ["ner", "pos"])
    return [
        {"metric": f"epoch over {n} sentences, NER only (BiLSTM trunk)", "value": single,
         "unit": "s", "target": f"< {budget:.0f}", "ok": single < budget},
        {"metric": f"epoch over {n} sentences, NER + POS (BiLSTM trunk)", "value": multi,
         "unit": "s", "target": f"< {budget:.0f}", "ok": multi < budget},
        {"metric": "NER + POS / NER only, time per epoch", "value": multi / single, "unit": "x"},
        {"metric": f"epoch over {n} sentences, NER + POS + next word", "value": with_lm,
         "unit": "s"},
        {"metric": "NER + POS + next word / NER only, time per epoch", "value": with_lm / single,
         "unit": "x"},
        {"metric": "learning-curve step (300 NER of 2,001), NER + POS / NER only",
         "value": step_multi / step_single, "unit": "x"},
        {"metric": f"epoch over {n} sentences, NER + POS (CNN trunk)", "value": cnn, "unit": "s"},
        {"metric": "CNN / BiLSTM trunk (NER + POS), time per epoch", "value": cnn / multi,
         "unit": "x"},
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
