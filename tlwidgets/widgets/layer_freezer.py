"""LayerFreezer: see and change which blocks of a Keras model are frozen.

A thin view over :mod:`tlwidgets.freezing`. The control is the ``trainable``
trait (one bool per block): the browser and Python tests set it, the widget
applies it to the real model and publishes what the model now says
(``blocks``, ``trainable_params``, ``share``). Nothing is compiled here: a
model that was already compiled and trained must be compiled again before the
next ``fit`` (:mod:`tlwidgets.freezing` warns when that is needed).
"""

from __future__ import annotations

import time
from pathlib import Path

import anywidget
import keras
import traitlets

from tlwidgets import freezing

_HERE = Path(__file__).parent


class LayerFreezer(anywidget.AnyWidget):
    """The layer stack drawn as blocks, with per-block toggles and "freeze up to here"."""

    _esm = _HERE / "layer_freezer.js"
    _css = _HERE / "layer_freezer.css"

    title = traitlets.Unicode("").tag(sync=True)
    blocks = traitlets.List(traitlets.Dict()).tag(sync=True)
    trainable = traitlets.List(traitlets.Bool()).tag(sync=True)
    train_bn = traitlets.Bool(False).tag(sync=True)
    trainable_params = traitlets.Int(0).tag(sync=True)
    total_params = traitlets.Int(0).tag(sync=True)
    share = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    changes = traitlets.Int(0).tag(sync=True)
    last_update_ms = traitlets.Float(0.0).tag(sync=True)

    def __init__(self, model: keras.Model, *, train_bn: bool = False, **kwargs):
        freezing.layer_table(model)  # checks the model is built and has weights
        self.model = model
        self._blocks = freezing.blocks(model)
        self._trains = freezing._weighted_paths(model)  # leaves with weights to train (BN aside)
        self._applying = True  # the traits the constructor sets are not a learner's change
        try:
            super().__init__(title=model.name, train_bn=train_bn, **kwargs)
        finally:
            self._applying = False
        if train_bn:  # the blocks already trainable train their BatchNormalization too
            on = {b.key: True for b, t in zip(self._blocks, self._states(), strict=True) if t}
            if on:
                freezing.set_block_states(model, on, train_bn=True, all_blocks=self._blocks)
        self.refresh()

    def _states(self) -> list[bool]:
        """Whether each block is trainable now (every weighted layer in it)."""
        trainable = {r.path: r.trainable for r in freezing.layer_table(self.model, block_list=self._blocks)}
        return [any(p in self._trains for p in b.paths)
                and all(trainable[p] for p in b.paths if p in self._trains) for b in self._blocks]

    # --- Python API (what the buttons do) -----------------------------------------------------
    def block_index(self, key: str | int) -> int:
        """The position of a block, by :attr:`~tlwidgets.freezing.Block.key`, unique name or index."""
        if isinstance(key, int):
            if not -len(self._blocks) <= key < len(self._blocks):
                raise IndexError(f"Block {key} out of range: {len(self._blocks)} blocks.")
            return key % len(self._blocks)
        block = freezing._find_blocks(self.model, [key], self._blocks)[0]
        return self._blocks.index(block)

    def toggle(self, key: str | int) -> None:
        """Freeze a trainable block or unfreeze a frozen (or partly frozen) one."""
        i = self.block_index(key)
        block = self._blocks[i]
        if not block.trainable_size and not (self.train_bn and block.params):
            raise ValueError(f"Block {block.key!r} has no weights to train; toggle another block.")
        states = list(self.trainable)
        states[i] = not states[i]
        self.trainable = states

    def freeze_up_to(self, key: str | int) -> None:
        """Freeze this block and every block before it; unfreeze every block after it."""
        i = self.block_index(key)
        self.trainable = [j > i for j in range(len(self._blocks))]

    def refresh(self) -> None:
        """Re-read the model (after it was changed outside the widget)."""
        self._publish(time.perf_counter())

    # --- model <-> traits ---------------------------------------------------------------------
    @traitlets.observe("trainable", "train_bn")
    def _on_change(self, change) -> None:
        if self._applying:
            return
        t0 = time.perf_counter()
        states = list(self.trainable)
        if len(states) != len(self._blocks):
            self.error = f"Expected {len(self._blocks)} block states, got {len(states)}."
            self._publish(t0)
            return
        wanted = {b.key: on for b, on in zip(self._blocks, states, strict=True)
                  if b.trainable_size or (self.train_bn and b.params)}
        freezing.set_block_states(self.model, wanted, train_bn=self.train_bn,
                                  all_blocks=self._blocks)
        self.error = ""
        self.changes += 1
        self._publish(t0)

    def _publish(self, t0: float) -> None:
        rows = {r.path: r for r in freezing.layer_table(self.model, block_list=self._blocks)}
        out, states = [], []
        for block in self._blocks:
            layers = [rows[p] for p in block.paths]
            weighted = [r for r in layers if r.path in self._trains]
            bns = [r for r in layers if r.bn_mode]
            on = [r.trainable for r in weighted]
            state = ("none" if not weighted else "trainable" if all(on)
                     else "frozen" if not any(on) else "partial")
            states.append(bool(weighted) and all(on))
            out.append({
                "key": block.key, "name": block.name, "parent": block.parent,
                "params": block.params,
                "trainable_params": sum(r.trainable_params for r in layers),
                "state": state,
                "bn": ("training" if any(r.bn_mode == "training" for r in bns)
                       else "inference" if bns else ""),
                "layers": [{"name": r.path.rsplit("/", 1)[-1], "type": r.type,
                            "shape": str(r.output_shape), "params": r.params,
                            "trainable": r.trainable, "bn": r.bn_mode or ""} for r in layers],
            })
        counts = freezing.param_counts(self.model)
        self._applying = True
        try:
            with self.hold_sync():
                self.blocks = out
                self.trainable = states
                self.trainable_params = counts.trainable
                self.total_params = counts.total
                self.share = counts.share
                self.last_update_ms = 1000 * (time.perf_counter() - t0)
        finally:
            self._applying = False
