"""ProbeLab: the model behind the FeaturiserExplorer widget.

Features of every candidate layer of a backbone on one train/test split,
computed once (and cached on disk), then any classifier, layer and training
size in milliseconds; its learning curve is :func:`tlwidgets.learning_curves.learning_curve`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tlwidgets.curves import make_classifier
from tlwidgets.learning_curves import Fit, PerClass, learning_curve, per_class_indices

__all__ = ["ProbeLab"]


class ProbeLab:
    """Features of every candidate layer on one train/test split, then fast probes.

    ``ProbeLab(train_images, y_train, test_images, y_test)`` keeps the images;
    :meth:`features` featurises them once per (backbone, weights) for all
    candidate layers (cached on disk too), and :meth:`evaluate` fits a
    classifier on a per-class subset of one layer in milliseconds.
    """

    def __init__(self, X_train, y_train, X_test, y_test, *, class_names: Sequence[str] = (),
                 input_size: int | None = None, n_layers: int = 8, batch_size: int = 32,
                 progress: bool = False):
        self.X_train, self.y_train = X_train, np.asarray(y_train)
        self.X_test, self.y_test = X_test, np.asarray(y_test)
        self.class_names = list(class_names)
        self.input_size = input_size
        self.n_layers = n_layers
        self.batch_size = batch_size
        self.progress = progress
        self._features: dict[tuple, dict] = {}
        self._featurisers: dict[tuple, object] = {}

    def featuriser(self, backbone: str = "auto", weights: str = "imagenet"):
        from tlwidgets.featurize import Featuriser

        key = (backbone, weights)
        if key not in self._featurisers:
            f = Featuriser(backbone, weights=weights, input_size=self.input_size,
                           batch_size=self.batch_size, progress=self.progress)
            self._featurisers[key] = f.fit()
        return self._featurisers[key]

    def layers(self, backbone: str = "auto", weights: str = "imagenet") -> list[str]:
        from tlwidgets.featurize import candidate_layers

        return candidate_layers(self.featuriser(backbone, weights).model_, n=self.n_layers)

    def features(self, backbone: str = "auto", weights: str = "imagenet") -> dict:
        """{"train": {layer: array}, "test": {layer: array}} for every candidate layer."""
        from tlwidgets.featurize import featurise_layers

        key = (backbone, weights)
        if key not in self._features:
            f = self.featuriser(backbone, weights)
            layers = self.layers(backbone, weights)
            tr = featurise_layers(f, layers, self.X_train)
            te = featurise_layers(f, layers, self.X_test)
            self._features[key] = {"train": tr.layers, "test": te.layers}
        return self._features[key]

    def evaluate(self, *, backbone: str = "auto", weights: str = "imagenet",
                 layer: str | None = None, classifier: str = "logistic regression",
                 per_class: int | None = None, seed: int = 0) -> dict:
        """Accuracy of ``classifier`` trained on ``per_class`` images of each class
        (``None``: all)."""
        feats = self.features(backbone, weights)
        layer = layer or list(feats["train"])[-1]
        idx = per_class_indices(self.y_train, per_class, seed=seed)
        clf = make_classifier(classifier).fit(feats["train"][layer][idx], self.y_train[idx])
        acc = float(np.mean(clf.predict(feats["test"][layer]) == self.y_test))
        return {"accuracy": acc, "n_train": int(len(idx)), "layer": layer,
                "dim": int(feats["train"][layer].shape[1]), "train_index": idx}

    def curve(self, *, sizes: Sequence[int | None] = (5, 10, 20, 50, None), repeats: int = 3,
              seed: int = 0, backbone: str = "auto", weights: str = "imagenet",
              layer: str | None = None, classifier: str = "logistic regression") -> list[dict]:
        """The learning curve of one layer and classifier: :func:`~tlwidgets.learning_curves.learning_curve`
        records (method: the classifier; sizes in images per class)."""
        feats = self.features(backbone, weights)
        layer = layer or list(feats["train"])[-1]
        fit = Fit(lambda: make_classifier(classifier), feats["train"][layer], self.y_train,
                  feats["test"][layer], self.y_test)
        return learning_curve({classifier: fit}, PerClass(self.y_train), sizes,
                              repeats=repeats, seed=seed)

    def projection(self, *, backbone: str = "auto", weights: str = "imagenet",
                   layer: str | None = None) -> dict:
        """2D PCA of the training features (fitted on train), test points projected too."""
        from sklearn.decomposition import PCA

        feats = self.features(backbone, weights)
        layer = layer or list(feats["train"])[-1]
        pca = PCA(2, random_state=0).fit(feats["train"][layer])
        return {"train": pca.transform(feats["train"][layer]),
                "test": pca.transform(feats["test"][layer]),
                "explained": pca.explained_variance_ratio_.tolist(), "layer": layer}
