"""tlwidgets: widgets and helpers for a hands-on transfer-learning course.

Importing the package is cheap: TensorFlow, gensim and the widgets load only
when the module that needs them is imported.
"""

from tlwidgets import tf_logging as _tf_logging  # noqa: F401  (first: quiets TF start-up logs)
from tlwidgets.assets import AssetError, fetch, resolve

__version__ = "0.1.0"
__all__ = ["AssetError", "__version__", "fetch", "resolve"]
