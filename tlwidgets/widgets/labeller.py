"""Labeller: label the batch the model asks for, watch held-out accuracy grow.

A thin view over :class:`tlwidgets.active.ActiveLearner`. The widget shows the
batch the strategy picks as thumbnails; the learner labels each one (a button
per class under it, or keys ``1``..``9`` and the arrows). When every item of the
batch has a label, the labels go to the learner, the head is refitted, the
held-out accuracy is added to a small accuracy-vs-labels chart, and the next
batch is shown.

Everything is in traits (``sync=True``), so Python drives it as the browser
does: ``choose(i, "cat")`` is a click, ``label_for_me()`` is the demo button.
The labels live in the learner; ``save(path)`` writes them as CSV (and, with
``save_path`` set, after every batch) and ``load(path)`` restores them.

Ways in:

* ``Labeller(learner, images, ...)``: a pool already featurised (the course
  data, with ``true_labels`` hidden from view for the "label for me" demo);
* ``Labeller.from_folder(folder, featuriser)``: your own images, one
  sub-folder per class (the names become classes) or loose files with
  ``classes=[...]``;
* ``Labeller.for_uploads(featuriser, classes)``: an empty pool that grows
  with the files uploaded in the browser.

Duplicate images (same bytes) are found by content hash: in a pool they are
labelled together; an upload that repeats an image already in the pool is skipped.

(About 500 lines: the three ways in, a pool, a folder and uploads, share the
thumbnail, duplicate and batch bookkeeping.)
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Sequence
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from tlwidgets import active
from tlwidgets.active import ActiveLearner, ActiveLearningError
from tlwidgets.widgets.charts import Chart, Line, Panel

_HERE = Path(__file__).parent
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _content_hash(image) -> str:
    if isinstance(image, str | Path):
        data = Path(image).read_bytes()
    elif isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
    else:
        arr = np.ascontiguousarray(image)
        data = str((arr.shape, arr.dtype)).encode() + arr.tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def thumbnail(image, size: int = 96) -> str:
    """A small JPEG data URL of an image file, bytes, PIL image or array."""
    from PIL import Image

    from tlwidgets.images import to_rgb, to_uint8

    if isinstance(image, str | Path):
        img = Image.open(image)
    elif isinstance(image, bytes | bytearray | memoryview):
        img = Image.open(io.BytesIO(bytes(image)))
    elif hasattr(image, "convert"):
        img = image
    else:
        img = Image.fromarray(to_uint8(to_rgb(np.asarray(image)[None])[0]))
    img = img.convert("RGB")
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _decodes(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except Exception:  # PIL raises many kinds for a broken file
        return False


def accuracy_chart(history: Sequence[dict]) -> Chart:
    """Held-out accuracy after each refit against the number of labels so far."""
    xs, ys = [h["labels"] for h in history], [h["accuracy"] for h in history]
    return Chart([Panel(lines=[Line(xs, ys, label="held-out accuracy", marker="o")],
                        xlabel="labels", ylabel="held-out accuracy", percent=True, ylog=False,
                        clip=False,  # at least 10 points of axis: distinct % ticks
                        ylim=(max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)))],
                 width=300, panel_height=190, dpi=100)


class Labeller(anywidget.AnyWidget):
    """Thumbnails of the batch to label, per-class buttons, refit, accuracy chart."""

    _esm = _HERE / "labeller.js"
    _css = _HERE / "labeller.css"

    classes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    strategies = traitlets.List(traitlets.Unicode(), list(active.STRATEGIES)).tag(sync=True)
    strategy = traitlets.Unicode("typical + margin").tag(sync=True)
    batch_size = traitlets.Int(8).tag(sync=True)
    #: the batch shown: dicts ``position``, ``item`` (name), ``src`` (data URL), ``twins``
    batch = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: the learner's choice per batch item: a class name, or "" (not yet)
    choices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    cursor = traitlets.Int(0).tag(sync=True)
    n_labelled = traitlets.Int(0).tag(sync=True)
    n_pool = traitlets.Int(0).tag(sync=True)
    #: ``{"labels": n, "accuracy": a}`` after each refit with held-out data
    history = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: the accuracy-vs-labels chart (:class:`tlwidgets.widgets.charts.Chart`), as HTML
    chart_html = traitlets.Unicode("").tag(sync=True)
    accuracy = traitlets.Float(None, allow_none=True).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    can_demo = traitlets.Bool(False).tag(sync=True)
    demo_clicks = traitlets.Int(0).tag(sync=True)
    accepts_uploads = traitlets.Bool(False).tag(sync=True)
    #: files sent by the browser: dicts ``name`` and ``data`` (base64)
    uploads = traitlets.List(traitlets.Dict()).tag(sync=True)
    save_path = traitlets.Unicode("").tag(sync=True)
    last_refit_ms = traitlets.Float(0.0).tag(sync=True)

    def __init__(self, learner: ActiveLearner | None, images: Sequence | None = None, *,
                 true_labels: Sequence | None = None, held_out: tuple | None = None,
                 featuriser=None, classes: Sequence[str] | None = None,
                 batch_size: int = 8, thumb_size: int = 96, save_path: str | Path = "",
                 message: str = "", **kwargs):
        self.learner = learner
        self.images = list(images) if images is not None else []
        self.featuriser = featuriser
        self.thumb_size = thumb_size
        self._truth = list(true_labels) if true_labels is not None else None
        self._held_out = held_out
        self._thumbs: dict[int, str] = {}
        self._quiet = True
        self._hashes: dict[int, str] = {}
        names = [str(c) for c in (learner.classes if learner is not None else classes or [])]
        strategy = (learner.strategy if learner is not None
                    and isinstance(learner.strategy, str) else "typical + margin")
        super().__init__(classes=names, strategy=strategy, batch_size=batch_size,
                         save_path=str(save_path), can_demo=self._truth is not None,
                         accepts_uploads=featuriser is not None, **kwargs)
        self._twins: dict[int, list[int]] = {}
        msg = message
        try:
            if learner is not None:
                if self.images and len(self.images) != len(learner.X):
                    raise ActiveLearningError(f"{len(self.images)} images for a pool of "
                                              f"{len(learner.X)} feature rows; give one image "
                                              "per row.")
                if self._truth is not None and len(self._truth) != len(learner.X):
                    raise ActiveLearningError(f"{len(self._truth)} true labels for a pool of "
                                              f"{len(learner.X)}; give one per row.")
                dup = self._find_twins()
                if dup and not msg:
                    msg = dup
        except (ActiveLearningError, OSError) as exc:
            self.learner, msg = None, str(exc)
        self._quiet = False
        self._sync_counts()
        if self.learner is not None and self.learner.model is None and self.learner.labels:
            self.learner.fit()
        self._next_batch(msg)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_folder(cls, folder: str | Path, featuriser, *, classes: Sequence[str] | None = None,
                    held_out: tuple | None = None, strategy: str = "typical + margin",
                    seed: int = 0, **kwargs) -> Labeller:
        """Your own images: ``folder/<class>/<image>`` (the class names from the
        sub-folders, the labels hidden but usable by "label for me"), or loose image
        files in ``folder`` with ``classes`` given. Duplicate files are labelled together."""
        folder = Path(folder)
        if not folder.is_dir():
            return cls(None, classes=classes, message=f"{folder} is not a folder; give the "
                       "folder that holds your images (one sub-folder per class).", **kwargs)
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and _folder_files(p))
        files, truth = [], None
        if subdirs:
            names = [p.name for p in subdirs]
            if classes is not None and set(classes) != set(names):
                return cls(None, classes=classes, message=f"The sub-folders are {names} but "
                           f"the classes given are {list(classes)}; make them agree.", **kwargs)
            truth = []
            for p in subdirs:
                found = _folder_files(p)
                files += found
                truth += [p.name] * len(found)
            classes = names
        else:
            files = _folder_files(folder)
        if not files:
            return cls(None, classes=classes, message=f"No image files in {folder} (looked "
                       f"for {', '.join(sorted(IMAGE_SUFFIXES))}).", **kwargs)
        if classes is None or len(set(classes)) < 2:
            found = f"only the class {list(classes)[0]!r}" if classes else "no class names"
            return cls(None, classes=classes, message=f"{folder}: {found}. Active learning "
                       "needs two or more classes: add a sub-folder per class, or pass "
                       "classes=[...] for loose files.", **kwargs)
        readable = [_decodes(f) for f in files]
        bad = [f.name for f, ok in zip(files, readable, strict=True) if not ok]
        if truth is not None:
            truth = [t for t, ok in zip(truth, readable, strict=True) if ok]
        files = [f for f, ok in zip(files, readable, strict=True) if ok]
        note = (f"Skipped {len(bad)} file(s) that do not decode as images: "
                f"{', '.join(bad[:5])}." if bad else "")
        if not files:
            return cls(None, classes=classes, message=note, **kwargs)
        try:
            features = featuriser.transform([str(f) for f in files])
            learner = ActiveLearner(features, list(classes), items=[str(f) for f in files],
                                    strategy=strategy, seed=seed)
        except (ActiveLearningError, ValueError, OSError) as exc:
            return cls(None, classes=classes, message=f"Could not featurise {folder}: {exc}",
                       **kwargs)
        w = cls(learner, files, true_labels=truth, held_out=held_out,
                featuriser=featuriser, **kwargs)
        if note:
            w.status = note + " " + w.status
        return w

    @classmethod
    def for_uploads(cls, featuriser, classes: Sequence[str], **kwargs) -> Labeller:
        """An empty pool that grows with the images uploaded in the browser."""
        if len(set(classes)) < 2:
            return cls(None, classes=classes, featuriser=featuriser, message=(
                f"Classes {list(classes)}: active learning needs two or more distinct "
                "class names."), **kwargs)
        return cls(None, classes=classes, featuriser=featuriser, message=(
            "Upload images to start: they are featurised, then you label the ones the "
            "model asks for."), **kwargs)

    # ------------------------------------------------------------------ Python API (the clicks)
    def choose(self, i: int, label: str | int) -> None:
        """Label item ``i`` of the batch (a click on its class button)."""
        if not 0 <= i < len(self.batch):
            self._say(error=f"No item {i} in this batch of {len(self.batch)}.")
            return
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < len(self.classes):
                self._say(error=f"No class {label + 1}; press 1..{len(self.classes)}.")
                return
            label = self.classes[label]
        choices = list(self.choices)
        choices[i] = str(label)
        self.choices = choices

    def label_for_me(self) -> None:
        """Demo: fill in the true labels of this batch (the demo button)."""
        self.demo_clicks += 1

    def save(self, path: str | Path) -> Path:
        """Write every label so far as ``item,label`` CSV."""
        if self.learner is None:
            raise ActiveLearningError("Nothing to save yet: there is no pool.")
        return self.learner.to_csv(path)

    def load(self, path: str | Path) -> int:
        """Restore labels written by :meth:`save`, refit, show the next batch."""
        if self.learner is None:
            self._say(error="Load labels after the pool exists (upload or give images first).")
            return 0
        try:
            n = self.learner.load_csv(path)
        except (ActiveLearningError, OSError, KeyError) as exc:
            self._say(error=f"Could not load {path}: {exc}")
            return 0
        self._refit_and_next(f"Loaded {n} labels from {path}.")
        return n

    # ------------------------------------------------------------------ observers
    @traitlets.observe("choices")
    def _on_choices(self, change) -> None:
        if self._quiet or self.busy:
            return
        choices = list(change["new"])
        bad = [c for c in choices if c and c not in self.classes]
        if bad:
            self._say(error=f"Unknown class {bad[0]!r}; the classes are {list(self.classes)}.")
            return
        if choices and len(choices) == len(self.batch) and all(choices):
            self._commit(choices)
        else:
            self._say(self._progress_text(choices))

    @traitlets.observe("history")
    def _on_history(self, change) -> None:
        self.chart_html = (accuracy_chart(change["new"]).html(
            alt="held-out accuracy against the number of labels") if change["new"] else "")

    @traitlets.observe("demo_clicks")
    def _on_demo(self, change) -> None:
        if self._truth is None:
            self._say(error="No true labels to fill in: 'label for me' works on the course "
                            "data (true_labels=...) or a folder with one sub-folder per class.")
            return
        if not self.batch:
            self._say(error="Nothing left to label.")
            return
        self._commit([str(self._truth[b["position"]]) for b in self.batch], demo=True)

    @traitlets.observe("strategy", "batch_size")
    def _on_settings(self, change) -> None:
        if self._quiet:
            return
        if change["name"] == "strategy":
            if self.learner is not None:
                try:
                    self.learner.strategy = change["new"]
                except ActiveLearningError as exc:
                    self._quiet = True
                    self.strategy = change["old"]
                    self._quiet = False
                    self._say(error=str(exc))
                    return
        elif change["new"] < 1:
            self._quiet = True
            self.batch_size = change["old"]
            self._quiet = False
            self._say(error=f"A batch needs at least one image; {change['new']} asked for.")
            return
        if not any(self.choices):  # nothing clicked yet: re-ask with the new setting
            self._next_batch("")

    @traitlets.observe("uploads")
    def _on_uploads(self, change) -> None:
        files = list(change["new"])
        if not files:
            return
        self._quiet = True
        self.uploads = []
        self._quiet = False
        self.add_images([(f.get("name", "upload"), base64.b64decode(f.get("data", "")))
                         for f in files])

    # ------------------------------------------------------------------ growing the pool
    def add_images(self, named_bytes: Sequence[tuple[str, bytes]]) -> int:
        """Featurise uploaded files and add them to the pool; return how many were added."""
        from tlwidgets.images import ImageError, decode_bytes

        if self.featuriser is None:
            self._say(error="This widget has no featuriser, so it cannot take uploads; "
                            "build it with featuriser=...")
            return 0
        if not named_bytes:
            self._say(error="The upload is empty: choose one or more image files.")
            return 0
        known = {self._hash(p): p for p in range(len(self.images))}
        added, arrays, skipped, dupes = [], [], [], []
        for name, data in named_bytes:
            if not data:
                skipped.append(f"{name} (empty file)")
                continue
            h = _content_hash(data)
            if h in known:
                dupes.append(name)
                continue
            try:
                arr = decode_bytes(data)
            except ImageError:
                skipped.append(f"{name} (not an image)")
                continue
            known[h] = -1
            added.append((name, data, h))
            arrays.append(arr)
        notes = []
        if dupes:
            notes.append(f"{len(dupes)} duplicate(s) of images already here skipped: "
                         f"{', '.join(dupes[:5])}.")
        if skipped:
            notes.append(f"Skipped {', '.join(skipped[:5])}.")
        if not added:
            self._say(error="No new images in the upload. " + " ".join(notes))
            return 0
        self.busy = True
        try:
            feats = np.asarray(self.featuriser.transform(arrays), dtype=np.float32)
            self._grow(feats, [n for n, _, _ in added], [d for _, d, _ in added])
            for i, (_, _, h) in enumerate(added):
                self._hashes[len(self.images) - len(added) + i] = h
        except (ActiveLearningError, ValueError, OSError) as exc:
            self.busy = False
            self._say(error=f"Could not add the upload: {exc}")
            return 0
        self.busy = False
        self._next_batch(" ".join([f"Added {len(added)} image(s); the pool holds "
                                   f"{self.n_pool}."] + notes))
        return len(added)

    def _grow(self, feats: np.ndarray, names: list[str], images: list) -> None:
        if self.learner is None:  # the first upload makes the pool
            self.learner = ActiveLearner(feats, self.classes, items=names, strategy=self.strategy)
        else:
            self.learner.extend(feats, names)
        learner = self.learner
        self.images += images
        if self._truth is not None:
            self._truth = None
            self.can_demo = False
        learner.fit()
        self._sync_counts()

    # ------------------------------------------------------------------ internals
    def _hash(self, p: int) -> str:
        if p not in self._hashes:
            self._hashes[p] = _content_hash(self.images[p])
        return self._hashes[p]

    def _find_twins(self) -> str:
        groups: dict[str, list[int]] = {}
        for p in range(len(self.images)):
            groups.setdefault(self._hash(p), []).append(p)
        self._twins = {p: [q for q in g if q != p] for g in groups.values() if len(g) > 1
                       for p in g}
        n = sum(len(g) - 1 for g in groups.values() if len(g) > 1)
        return (f"{n} duplicate image(s) in the pool (same bytes): each is labelled "
                "together with its copy." if n else "")

    def _say(self, status: str | None = None, *, error: str = "") -> None:
        with self.hold_sync():
            if status is not None:
                self.status = status
            self.error = error

    def _progress_text(self, choices) -> str:
        done = sum(bool(c) for c in choices)
        return (f"{done} of {len(choices)} labelled in this batch; {self.n_labelled} labels "
                f"so far ({self.n_pool - self.n_labelled} unlabelled).")

    def _sync_counts(self) -> None:
        self.n_pool = 0 if self.learner is None else len(self.learner.X)
        self.n_labelled = 0 if self.learner is None else len(self.learner.labels)

    def _commit(self, choices: list[str], demo: bool = False) -> None:
        positions = [b["position"] for b in self.batch]
        extra_p, extra_l = [], []
        for p, lab in zip(positions, choices, strict=True):
            for q in self._twins.get(p, []):
                if q not in self.learner.labels and q not in positions and q not in extra_p:
                    extra_p.append(q)
                    extra_l.append(lab)
        try:
            # the buttons show str(class); the learner keeps its own class objects
            by_name = {str(c): c for c in self.learner.classes}
            self.learner.teach(positions + extra_p, [by_name[c] for c in choices + extra_l])
        except (ActiveLearningError, KeyError) as exc:
            self._say(error=f"Could not record the labels: {exc}")
            return
        if self.save_path:
            self.learner.to_csv(self.save_path)
        note = f" ({len(extra_p)} duplicate(s) labelled with them.)" if extra_p else ""
        self._refit_and_next(("Labelled for you" if demo else "Labelled") + f" {len(positions)}."
                             + note)

    def _refit_and_next(self, note: str) -> None:
        t0 = time.perf_counter()
        self.busy = True
        try:
            model = self.learner.fit()
            self._sync_counts()
            if model is None:
                only = sorted({str(self.learner.classes[c]) for c in self.learner.labels.values()})
                note += (f" All labels so far are {only[0]!r}: the model needs at least one "
                         "image of another class; keep labelling." if only else "")
            elif self._held_out is not None:
                acc = self.learner.score(*self._held_out)
                self.accuracy = acc
                self.history = [*self.history, {"labels": self.n_labelled, "accuracy": acc}]
                note += f" Held-out accuracy {100 * acc:.1f}% with {self.n_labelled} labels."
            self._next_batch(note)
        finally:
            self.last_refit_ms = 1000 * (time.perf_counter() - t0)
            self.busy = False

    def _next_batch(self, note: str) -> None:
        error = ""
        batch: list[dict] = []
        if self.learner is None:
            error = note if note and not self.accepts_uploads else ""
            status = note if self.accepts_uploads or not note else ""
            if not note:
                status = ("Upload images to start." if self.accepts_uploads
                          else "No pool yet: give a learner and its images.")
        else:
            free = self.learner.n_unlabelled
            n = min(self.batch_size, free)
            if n == 0:
                status = (note + f" Every one of the {self.n_pool} images is labelled.").strip()
            else:
                if n < self.batch_size:
                    note += (f" Only {free} unlabelled image(s) left, so this batch has {n} "
                             f"(batch size {self.batch_size}).")
                positions = self.learner.query(n)
                batch = [self._item(int(p)) for p in positions]
                status = (note + " " + self._progress_text([""] * n)).strip()
        self._quiet = True
        with self.hold_sync():
            self.batch = batch
            self.choices = [""] * len(batch)
            self.cursor = 0
            self.status = status
            self.error = error
        self._quiet = False

    def _item(self, p: int) -> dict:
        if p not in self._thumbs and self.images:
            try:
                self._thumbs[p] = thumbnail(self.images[p], self.thumb_size)
            except OSError:
                self._thumbs[p] = ""
        name = self.learner.items[p]
        return {"position": p, "item": Path(str(name)).name if isinstance(name, str | Path)
                else str(name), "src": self._thumbs.get(p, ""),
                "twins": len(self._twins.get(p, []))}

