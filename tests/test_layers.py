"""Layer paths and intermediate-output models, nested bases included."""

import keras
import numpy as np
import pytest

from tlwidgets.layers import LayerNotFoundError, activation_model, find_layer, iter_layers


def _base():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv.1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv2")(x)
    return keras.Model(inp, x, name="base.v1")


def _classifier(base):
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inp)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(2, name="head")(x)
    return keras.Model(inp, out, name="clf")


def test_paths_cover_nested_layers():
    keras.utils.set_random_seed(0)
    clf = _classifier(_base())
    paths = [info.path for info in iter_layers(clf)]
    assert paths == ["scale", "base.v1", "base.v1/conv.1", "base.v1/bn1", "base.v1/conv2", "gap", "head"]
    info = find_layer(clf, "conv2")
    assert (info.path, info.depth, info.parent.name) == ("base.v1/conv2", 1, "base.v1")
    assert find_layer(clf, "base.v1/conv.1").layer is clf.get_layer("base.v1").get_layer("conv.1")
    assert find_layer(clf, -1).name == "head"


def test_unknown_layer_suggests_close_matches():
    clf = _classifier(_base())
    with pytest.raises(LayerNotFoundError, match="conv2"):
        find_layer(clf, "conv_2")
    with pytest.raises(LayerNotFoundError, match="out of range"):
        find_layer(clf, 99)


def test_nested_activations_equal_flat_model():
    keras.utils.set_random_seed(0)
    base = _base()
    clf = _classifier(base)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    act = activation_model(clf, ["base.v1/bn1", "gap", "head"])
    bn, gap, head = act.predict(x, verbose=0)
    # Same numbers as the base alone and the whole classifier.
    inner = keras.Model(base.input, base.get_layer("bn1").output)
    np.testing.assert_allclose(bn, inner.predict(x / 255, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head, clf.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert gap.shape == (3, 8)


def test_flat_layers_use_the_original_graph():
    clf = _classifier(_base())
    act = activation_model(clf, ["gap"])
    assert act.outputs[0].shape[-1] == 8


def test_non_chain_outer_model_with_raw_ops_is_replayed():
    """A base inside a branching outer graph with raw ``keras.ops`` arithmetic."""
    keras.utils.set_random_seed(0)
    base = _base()
    inp = keras.Input((32, 32, 3))
    scaled = keras.ops.subtract(inp / 127.5, 1.0)  # raw ops: not layers
    a = base(scaled)
    b = keras.layers.Conv2D(8, 3, strides=2, name="side")(keras.layers.Conv2D(4, 3, name="s0")(inp))
    model = keras.Model(inp, a + b)  # a raw residual add
    x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    got, side = activation_model(model, ["base.v1/conv2", "side"]).predict(x, verbose=0)
    cut = keras.Model(base.input, base.get_layer("conv2").output)
    np.testing.assert_allclose(got, cut.predict(x / 127.5 - 1, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got + side, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_layers_of_a_subclassed_nested_model_are_explained():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.conv = keras.layers.Conv2D(4, 3, name="inner")

        def call(self, x):
            return self.conv(x)

    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Flatten(name="flat")(Net()(inp)))
    with pytest.raises(ValueError, match="subclassed keras.Model.*functional API"):
        activation_model(model, ["net/inner"])


def test_residual_base_nested_in_a_classifier():
    """MobileNetV2-style bases are not chains; their own layers are still reachable."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inp)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    base = keras.Model(inp, keras.layers.Add(name="add")([a, b]), name="resnetish")
    clf = _classifier_for(base, (16, 16, 3))
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    b_out, head = activation_model(clf, ["resnetish/b", "head"]).predict(x, verbose=0)
    np.testing.assert_allclose(head, clf.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    expected = keras.Model(base.input, base.get_layer("b").output).predict(x, verbose=0)
    np.testing.assert_allclose(b_out, expected, rtol=1e-5, atol=1e-5)


def _classifier_for(base, shape):
    inp = keras.Input(shape)
    x = base(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(x), name="clf2")


def test_a_nested_model_as_a_whole_is_reachable():
    keras.utils.set_random_seed(0)
    base = _base()
    clf = _classifier(base)
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    got = activation_model(clf, ["base.v1"]).predict(x, verbose=0)
    np.testing.assert_allclose(got, base.predict(x / 255, verbose=0), rtol=1e-5, atol=1e-5)
