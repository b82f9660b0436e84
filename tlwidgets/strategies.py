"""Distribution strategies for training: made from device names, checked to exist.

:func:`get_strategy` builds a ``MirroredStrategy`` over devices that are present
(say which are, when one is not); :func:`check_strategy` checks one made
elsewhere; :func:`model_strategy` is the strategy a model was built under, the
one :mod:`tlwidgets.training` and :mod:`tlwidgets.lr_finder` train it in.
When ``TF_CONFIG`` names several workers, :func:`get_strategy` gives the
``MultiWorkerMirroredStrategy`` and :func:`fit_function` the custom loop of
:mod:`tlwidgets.multi_worker` (``model.fit`` fails there under Keras 3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

__all__ = ["check_strategy", "fit_function", "get_strategy", "model_strategy"]


def _device_key(name: str) -> tuple[str, int]:
    spec = tf.DeviceSpec.from_string(name)
    return (spec.device_type or "CPU").upper(), spec.device_index or 0


def _present() -> dict[tuple[str, int], str]:
    return {_device_key(d.name): d.name for d in tf.config.list_logical_devices()}


def get_strategy(devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """``MirroredStrategy`` over ``devices`` (checked to exist); for None, the
    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several workers, else the
    default strategy."""
    if devices is None:
        from tlwidgets import multi_worker

        if multi_worker.task().count > 1:
            return multi_worker.multi_worker_strategy()
        return tf.distribute.get_strategy()
    present = _present()
    missing = [d for d in devices if _device_key(d) not in present]
    if missing:
        raise ValueError(
            f"Devices {missing} are not present on this machine; it has {sorted(present.values())}. "
            "Pick from those (two logical CPUs can be made with "
            "tf.config.set_logical_device_configuration before TensorFlow starts)."
        )
    return tf.distribute.MirroredStrategy(list(devices))


def check_strategy(strategy: tf.distribute.Strategy | None) -> tf.distribute.Strategy:
    """The strategy itself, after checking that its devices exist (None -> default strategy)."""
    if strategy is None:
        return tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy, not {type(strategy).__name__}.")
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: whatever device TensorFlow places on
        return strategy
    present = _present()
    missing = [d for d in devices if _device_key(d) not in present]
    if missing:
        raise ValueError(
            f"The strategy uses devices that are not present: {missing}. This machine has "
            f"{sorted(present.values())}; make the strategy with get_strategy(<those devices>)."
        )
    return strategy


def model_strategy(model: keras.Model, strategy) -> tf.distribute.Strategy:
    if strategy is None:
        return model.distribute_strategy
    strategy = check_strategy(strategy)
    if model.distribute_strategy is not strategy:
        raise ValueError(
            f"Model {model.name!r} was not built under this strategy, so its weights are not "
            "mirrored. Build it inside the strategy: build_classifier(..., strategy=strategy)."
        )
    return strategy


def fit_function(model: keras.Model) -> Callable:
    """``model.fit``, or for a model built under ``MultiWorkerMirroredStrategy`` the custom
    loop :func:`tlwidgets.multi_worker.fit` with the same arguments."""
    from tlwidgets import multi_worker

    if multi_worker.is_multi_worker(model.distribute_strategy):
        return functools.partial(multi_worker.fit, model)
    return model.fit
