"""What a featurisation returns (:class:`FeatureSet`) and how it fails (:class:`FeaturiserError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class FeaturiserError(ValueError):
    """The input or the configuration cannot be featurised; the message says what to do."""


@dataclass
class FeatureSet:
    """Features of one input, with what the input said about itself.

    ``features`` is ``(n, d)`` float32; ``layers`` holds one array per layer
    when several were asked for (:func:`featurise_layers`). ``labels`` and
    ``class_names`` come from a folder or a labelled dataset (or the ``y`` you
    passed); ``skipped`` lists the files that were not images or did not decode.
    """

    features: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    from_cache: bool = False
    seconds: float = 0.0
    source: str = ""
    keys: list[str] = field(default_factory=list)
    layers: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def images_per_second(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("inf")


def empty_input(what: str) -> FeaturiserError:
    return FeaturiserError(
        f"Nothing to featurise: the input is {what}. Pass at least one image "
        "(check the folder path, the subset size or the filter that produced it)."
    )


def add_notice(notices: list[str], text: str) -> None:
    """Record ``text`` once in a run's notices (said to the user at the end of the run)."""
    if text not in notices:
        notices.append(text)
