"""Export what was learned: a featuriser and the head trained on it, as ONE Keras file.

As Teachable Machine does for its users: the file takes images and returns class
probabilities, loads in any Keras 3 with ``safe_mode=True``, and comes with its
class names and a three-line loading snippet (:data:`LOADING_SNIPPET`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlwidgets.active import ActiveLearner, ActiveLearningError

__all__ = ["LOADING_SNIPPET", "export_classifier"]


LOADING_SNIPPET = """\
import json, keras, numpy as np
model, labels = keras.models.load_model("{model}", safe_mode=True), json.load(open("{labels}"))
print(labels[model.predict(np.array([keras.utils.load_img("photo.jpg", target_size=({size}, {size}))]), verbose=0).argmax()])"""


def export_classifier(featuriser, learner: ActiveLearner, path: str | Path) -> Path:
    """Save the featuriser and the learner's head as ONE Keras model file, plus its labels.

    The model takes RGB images (0-255) at the featuriser's input size and returns
    class probabilities; ``path`` (``.keras``) and ``path.labels.json`` (the class
    names, in output order) are written atomically. It loads with
    ``keras.models.load_model`` in safe mode; :data:`LOADING_SNIPPET` shows how.
    """
    import json
    import tempfile

    import keras

    from tlwidgets.system import atomic_write

    path = Path(path)
    if path.suffix != ".keras":
        raise ActiveLearningError(f"Save the model as a .keras file, not {path.name!r}.")
    head = learner.model
    if head is None:
        raise ActiveLearningError("No model to export yet: label items of at least two "
                                  "classes, then call fit().")
    if not (hasattr(head, "coef_") and hasattr(head, "intercept_")):
        raise ActiveLearningError(f"Only a linear head (coef_, intercept_) can go into a "
                                  f"Keras file; this one is a {type(head).__name__}.")
    # The head sees standardised features, (x - mean) / std: fold that into its weights.
    coef = np.asarray(head.coef_, np.float64) / learner.std_
    bias = np.asarray(head.intercept_, np.float64) - coef @ learner.mean_
    if coef.shape[0] == 1:  # binary: softmax over (0, z) is the logistic sigmoid of z
        coef, bias = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], bias])
    classes = [learner.classes[int(c)] for c in head.classes_]
    base = featuriser.as_keras()
    dense = keras.layers.Dense(len(classes), activation="softmax", name="head")
    out = dense(base.output)
    dense.set_weights([coef.T.astype(np.float32), bias.astype(np.float32)])
    model = keras.Model(base.input, out, name="classifier")
    with tempfile.TemporaryDirectory() as tmp:  # Keras saves to a file name
        model.save(Path(tmp) / path.name)
        with atomic_write(path) as fh:
            fh.write((Path(tmp) / path.name).read_bytes())
    labels = path.with_name(path.name + ".labels.json")
    with atomic_write(labels) as fh:
        fh.write(json.dumps([str(c) for c in classes]).encode("utf-8"))
    return path
