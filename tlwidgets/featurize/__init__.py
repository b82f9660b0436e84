"""A pretrained network, cut at a chosen layer, as a scikit-learn transformer.

>>> from sklearn.linear_model import LogisticRegression            # doctest: +SKIP
>>> from sklearn.pipeline import make_pipeline                      # doctest: +SKIP
>>> clf = make_pipeline(Featuriser("auto", drop_last=0), LogisticRegression())  # doctest: +SKIP
>>> clf.fit(train.images, train.labels).score(val.images, val.labels)            # doctest: +SKIP

What it does:

* **Cut** the network by layer path/name (``layer="conv_pw_11_relu"``), by index
  (``layer=-5``) or by dropping the last N top-level layers (``drop_last=2``).
  Layers inside nested models (a base inside a classifier, names with dots)
  are reached through :func:`tlwidgets.layers.activation_model`.
* **Pool** feature maps to vectors: global average (``"avg"``), global max
  (``"max"``) or ``"flatten"``. Vector outputs pass through unchanged.
* **Stream** from a numpy array (or a list of differently sized images), a
  folder ``root/<class>/<image>``, a ``tf.data.Dataset`` or any iterable of
  images/batches: at most a few batches are in memory at once. Grey and RGBA
  images are converted to RGB and other sizes resized to the network's input
  size, each with a notice.
* **Run fast**: each batch goes through one compiled ``tf.function`` (the
  backbone's preprocessing, the cut network and the pooling in one graph),
  never image by image in eager mode.
* **Cache** features on disk (``$TLWIDGETS_CACHE/features``), keyed by the
  network's weights and architecture, the cut layer, the pooling, the
  preprocessing, the input size and the input data itself, so a second run is
  instant and a changed layer or image never reuses stale features. Files are
  written to a temporary name and renamed into place, so an interrupted run
  never leaves a half-written cache entry.

How the input data is identified for the cache: arrays by an XXH3-128 hash of
their bytes (plus shape and dtype); folders by each file's relative path, class,
size and modification time (like ``make``); datasets by a hash of every
element they yield (a shuffling or augmenting dataset therefore never hits the
cache, which is the safe answer). Plain iterators cannot be read twice, so they
are only cached when you name them: ``featurise(it, cache_key="my-data-v1")``.

The package's modules: :mod:`~tlwidgets.featurize.sources` (input adapters,
prefetching), :mod:`~tlwidgets.featurize.cache` (keys, storage),
:mod:`~tlwidgets.featurize.extractor` (the compiled cut and pooling),
:mod:`~tlwidgets.featurize.estimator` (the :class:`Featuriser`) and
:mod:`~tlwidgets.featurize.shards` (one collection featurised by several workers).
"""

from tlwidgets.featurize.cache import (
    CACHE_VERSION,
    clear_cache,
    default_cache_dir,
    leftovers,
    stale_temporaries,
)
from tlwidgets.featurize.estimator import Featuriser, featurise_layers
from tlwidgets.featurize.results import FeatureSet, FeaturiserError
from tlwidgets.featurize.shards import featurise_sharded

__all__ = [
    "CACHE_VERSION",
    "FeatureSet",
    "Featuriser",
    "FeaturiserError",
    "candidate_layers",
    "clear_cache",
    "default_cache_dir",
    "featurise_layers",
    "featurise_sharded",
    "leftovers",
    "stale_temporaries",
]


def __getattr__(name: str):
    if name == "candidate_layers":  # lives in tlwidgets.layers (imports Keras)
        from tlwidgets.layers import candidate_layers

        return candidate_layers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
