"""tlwidgets: widgets and helpers for a hands-on transfer-learning course.

The objects a learner uses are importable from the top::

    from tlwidgets import Featuriser, LayerFreezer, FeatureExplorer, load_hymenoptera

Importing the package is cheap: each name is imported from its module on
first use (a module-level ``__getattr__``), so TensorFlow, gensim and the
widgets load only when something that needs them is asked for.
"""

from __future__ import annotations

import importlib

from tlwidgets import tf_logging as _tf_logging  # noqa: F401  (first: quiets TF start-up logs)
from tlwidgets.assets import AssetError, fetch, resolve
from tlwidgets.system import pool_tensorflow_memory as _pool_tensorflow_memory
from tlwidgets.system import return_large_blocks as _return_large_blocks

__version__ = "0.1.0"
_return_large_blocks()  # before TensorFlow starts its threads (tlwidgets.system says why)
_pool_tensorflow_memory()  # before TensorFlow makes its CPU allocator

# name -> the module that defines it
_LAZY = {
    # data and pretrained networks
    "load_hymenoptera": "tlwidgets.data",
    "load_pneumoniamnist": "tlwidgets.data",
    "load_image_folder": "tlwidgets.data",
    "load_image": "tlwidgets.images",
    "load_backbone": "tlwidgets.backbones",
    # featurisers and what is inside a network
    "Featuriser": "tlwidgets.featurize",
    "FeatureSet": "tlwidgets.featurize",
    "featurise_layers": "tlwidgets.featurize",
    "candidate_layers": "tlwidgets.layers",
    "Activations": "tlwidgets.activations",
    # fine-tuning
    "build_classifier": "tlwidgets.training",
    "fine_tune": "tlwidgets.training",
    # word vectors
    "load_vectors": "tlwidgets.embeddings",
    # notebooks
    "record": "tlwidgets.notebook",
    "notice": "tlwidgets.notices",
    # widgets
    "DoctorWidget": "tlwidgets.widgets.doctor",
    "EmbeddingExplorer": "tlwidgets.widgets.embedding_explorer",
    "FeatureExplorer": "tlwidgets.widgets.feature_explorer",
    "FeaturiserExplorer": "tlwidgets.widgets.featuriser_explorer",
    "LayerFreezer": "tlwidgets.widgets.layer_freezer",
    "MultiTaskWidget": "tlwidgets.widgets.multitask",
    "OOVReportWidget": "tlwidgets.widgets.oov_report",
    "TrainingMonitor": "tlwidgets.widgets.training_monitor",
}

__all__ = ["AssetError", "__version__", "fetch", "resolve", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tlwidgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
