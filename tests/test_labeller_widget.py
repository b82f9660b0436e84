"""Labeller driven from Python: clicks set `choices`, a full batch refits and asks again."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest

from tlwidgets.active import STRATEGIES, ActiveLearner
from tlwidgets.widgets.labeller import Labeller


@pytest.fixture(scope="module")
def course(shared_assets):
    """40 cats and 40 dogs of the course's pool (thumbnails from the real files), with
    features that separate them (a class shift plus noise: the widget, not the
    featuriser, is under test) and a held-out set built the same way."""
    root = shared_assets / "images" / "cats_vs_dogs" / "train"
    files = sorted((root / "cats").glob("*.jpg"))[:40] + sorted((root / "dogs").glob("*.jpg"))[:40]
    truth = ["cat"] * 40 + ["dog"] * 40
    rng = np.random.default_rng(0)
    shift = np.r_[np.zeros(40), np.ones(40)][:, None] * 1.5

    def feats(n_shift):
        return (rng.normal(size=(len(n_shift), 16)) + n_shift).astype(np.float32)

    X = feats(shift)
    Xt = feats(shift)
    return files, truth, X, (Xt, truth)


class ColourFeaturiser:
    """Stands in for a Featuriser: the mean colour of a 4x4 resize (fast, deterministic)."""

    def transform(self, images):
        from PIL import Image

        out = []
        for im in images:
            img = Image.open(im) if isinstance(im, str | Path) else Image.fromarray(np.asarray(im))
            out.append(np.asarray(img.convert("RGB").resize((4, 4)), np.float32).ravel())
        return np.stack(out)


def make(course, **kwargs):
    files, truth, X, held = course
    learner = ActiveLearner(X, ["cat", "dog"], items=[str(f) for f in files],
                            strategy=kwargs.pop("strategy", "margin"), seed=0)
    return Labeller(learner, files, true_labels=truth, held_out=held, batch_size=6, **kwargs)


def test_construction_shows_a_batch_without_error(course):
    w = make(course)
    assert w.error == ""
    assert len(w.batch) == 6 and w.choices == [""] * 6
    assert w.strategies == list(STRATEGIES)
    assert all(b["src"].startswith("data:image/jpeg;base64,") for b in w.batch)
    raw = base64.b64decode(w.batch[0]["src"].split(",", 1)[1])
    assert raw[:2] == b"\xff\xd8" and len(raw) < 20_000  # a small JPEG
    assert w.n_pool == 80 and w.n_labelled == 0 and w.can_demo


def test_clicks_label_the_batch_refit_and_ask_again(course):
    files, truth, X, held = course
    w = make(course)
    first = [b["position"] for b in w.batch]
    for i, p in enumerate(first[:-1]):
        w.choose(i, truth[p])
    assert w.learner.labels == {} and "5 of 6 labelled" in w.status
    w.choose(5, 1 if truth[first[5]] == "dog" else 0)  # a class index, as key "2"/"1" does
    assert w.learner.labels == {p: ["cat", "dog"].index(truth[p]) for p in first}
    second = [b["position"] for b in w.batch]
    assert len(second) == 6 and not set(second) & set(first)
    assert w.choices == [""] * 6 and not w.busy
    if len({truth[p] for p in first}) == 2:
        assert w.learner.model is not None and len(w.history) == 1
        assert w.history[0]["labels"] == 6 and w.accuracy == w.learner.score(*held)


def test_demo_mode_labels_with_the_truth_one_batch_per_click(course):
    files, truth, X, held = course
    w = make(course, strategy="typical")
    for k in range(3):
        batch = [b["position"] for b in w.batch]
        w.label_for_me()
        assert w.n_labelled == 6 * (k + 1)
        assert all(w.learner.labels[p] == ["cat", "dog"].index(truth[p]) for p in batch)
    assert [h["labels"] for h in w.history] == [6, 12, 18]
    assert w.history[-1]["accuracy"] > 0.7  # the classes are well separated
    # the chart is the shared Chart's figure: one line of three points, axis in %
    assert w.chart_html.startswith("<figure class='tlw-chart") and "data-lines='1'" in w.chart_html


def test_strategy_and_batch_size_traits(course):
    w = make(course)
    w.strategy = "k-center"
    assert w.learner.strategy == "k-center" and w.error == ""
    w.batch_size = 3
    assert len(w.batch) == 3
    w.batch_size = 0
    assert w.batch_size == 3 and "at least one" in w.error
    w.strategy = "no such strategy"
    assert w.strategy == "k-center" and "Unknown strategy" in w.error
    w.batch_size = 500  # larger than the pool: the batch is what is left, said so
    assert len(w.batch) == 80 and "Only 80 unlabelled" in w.status
    w.label_for_me()
    assert w.batch == [] and "Every one of the 80 images is labelled" in w.status


def test_one_class_only_is_explained_and_kept(course):
    files, truth, X, held = course
    w = make(course, strategy="random")
    for i in range(len(w.batch)):
        w.choose(i, "cat")
    assert w.n_labelled == 6 and w.learner.model is None
    assert "All labels so far are 'cat'" in w.status and w.error == ""
    assert len(w.batch) == 6  # the next batch still comes


def test_save_load_round_trip_and_autosave(course, tmp_path):
    w = make(course, save_path=tmp_path / "auto.csv")
    w.label_for_me()
    w.label_for_me()
    assert (tmp_path / "auto.csv").read_text().count("\n") == 13  # header + 12 labels
    path = w.save(tmp_path / "labels.csv")
    fresh = make(course)
    assert fresh.load(path) == 12
    assert fresh.learner.labels == w.learner.labels and fresh.n_labelled == 12
    assert not {b["position"] for b in fresh.batch} & set(w.learner.labels)
    (tmp_path / "bad.csv").write_text("name,class\nx,cat\n")
    assert fresh.load(tmp_path / "bad.csv") == 0
    assert "item,label" in fresh.error and fresh.n_labelled == 12  # nothing lost


def test_folder_with_class_subfolders_and_duplicates(course, tmp_path):
    files = course[0]
    for cls, group in (("cat", files[:5]), ("dog", files[40:45])):
        (tmp_path / cls).mkdir()
        for f in group:
            shutil.copy(f, tmp_path / cls / f.name)
    shutil.copy(files[0], tmp_path / "cat" / "copy_of_first.jpg")
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    w = Labeller.from_folder(tmp_path, ColourFeaturiser(), batch_size=2, strategy=first_free)
    assert w.classes == ["cat", "dog"] and w.n_pool == 11 and w.can_demo
    assert "1 duplicate image(s)" in w.status and w.error == ""
    assert "Skipped 1 file(s) that do not decode as images: broken.jpg" in w.status
    copy = w.learner.items.index(str(tmp_path / "cat" / "copy_of_first.jpg"))
    assert w._twins == {0: [copy], copy: [0]} and [b["position"] for b in w.batch] == [0, 1]
    assert w.batch[0]["twins"] == 1
    w.choose(0, "cat")
    w.choose(1, "cat")
    assert w.learner.labels == {0: 0, 1: 0, copy: 0}  # the copy labelled with its original
    assert "1 duplicate(s) labelled with them" in w.status and copy not in \
        [b["position"] for b in w.batch]


def first_free(pool, n, rng):
    return pool.unlabelled[:n]


def test_folder_bad_inputs_give_messages(tmp_path):
    (tmp_path / "only").mkdir()
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "only" / "a.png")
    w = Labeller.from_folder(tmp_path, ColourFeaturiser())
    assert "only the class 'only'" in w.error and w.batch == []
    w = Labeller.from_folder(tmp_path / "missing", ColourFeaturiser())
    assert "is not a folder" in w.error
    empty = tmp_path / "empty"
    empty.mkdir()
    w = Labeller.from_folder(empty, ColourFeaturiser(), classes=["a", "b"])
    assert "No image files" in w.error


def test_uploads_grow_the_pool_and_skip_duplicates(course):
    files = course[0]
    w = Labeller.for_uploads(ColourFeaturiser(), ["cat", "dog"], batch_size=4)
    assert w.error == "" and "Upload images" in w.status and w.accepts_uploads
    w.batch_size = 5  # no pool yet: nothing breaks, the hint stays
    assert w.error == "" and "Upload images" in w.status
    w.batch_size = 4
    w.uploads = []
    w.add_images([])
    assert "upload is empty" in w.error

    def send(paths, extra=()):
        w.uploads = [{"name": Path(p).name, "data": base64.b64encode(Path(p).read_bytes())
                      .decode()} for p in paths] + list(extra)

    send(files[:3] + files[40:43])
    assert w.n_pool == 6 and len(w.batch) == 4 and w.error == ""
    w.choose(0, "cat")
    send([files[0], files[1]], [{"name": "notes.txt", "data": base64.b64encode(b"hi").decode()},
                                {"name": "zero.jpg", "data": ""}])
    assert w.n_pool == 6 and "2 duplicate(s)" in w.error and "notes.txt (not an image)" \
        in w.error and "zero.jpg (empty file)" in w.error
    assert w.choices[0] == "cat"  # the batch in progress survives a failed upload
    for i in range(1, 4):
        w.choose(i, "dog")
    labelled = dict(w.learner.labels)
    send(files[3:5])  # the pool grows; the labels stay
    assert w.n_pool == 8 and w.learner.labels == labelled and w.n_labelled == 4
    assert not w.can_demo and all(b["src"] for b in w.batch)


def test_upload_without_featuriser_and_unknown_class(course):
    w = make(course)
    w.add_images([("a.jpg", b"x")])
    assert "no featuriser" in w.error
    w.choices = ["horse"] + [""] * 5
    assert "Unknown class 'horse'" in w.error and w.n_labelled == 0


def test_non_string_classes_are_shown_as_text_and_taught_as_given(course):
    files, truth, X, held = course
    y = [0 if t == "cat" else 1 for t in truth]
    learner = ActiveLearner(X, [0, 1], strategy="random", seed=0)
    w = Labeller(learner, files, true_labels=y, held_out=(held[0], y), batch_size=4)
    assert w.classes == ["0", "1"]
    w.label_for_me()
    assert w.error == "" and w.n_labelled == 4
    assert all(w.learner.labels[p] == y[p] for p in w.learner.labels)
