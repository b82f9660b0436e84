"""One list of layers worth cutting at, shared by the Featuriser, the FeatureExplorer and
the depth sweep."""

from __future__ import annotations

import keras
import pytest

from tlwidgets.layers import candidate_layers, nearest_layers


def _mixed():
    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_relu")(inp)
    b = keras.layers.Conv2D(4, 3, padding="same", name="conv_linear")(a)
    b = keras.layers.BatchNormalization(name="bn")(b)
    b = keras.layers.Activation("linear", name="identity")(b)
    c = keras.layers.ELU(name="elu")(b)
    d = keras.layers.LeakyReLU(name="leaky")(c)
    e = keras.layers.Concatenate(name="concat")([a, d])
    f = keras.layers.Activation("swish", name="swish")(e)
    g = keras.layers.Add(name="add")([f, f])
    out = keras.layers.Dense(2, activation="softmax", name="head")(
        keras.layers.GlobalAveragePooling2D(name="gap")(g))
    return keras.Model(inp, out, name="mixed")


def test_ends_of_blocks_of_every_kind_in_order():
    model = _mixed()
    assert candidate_layers(model) == ["conv_relu", "elu", "leaky", "concat", "swish", "add"]
    # Linear convolutions, identity activations, BN, vectors and the softmax head are not.
    assert candidate_layers(model, n=3) == ["conv_relu", "leaky", "add"]
    assert candidate_layers(model, n=1) == ["add"]


def test_nested_and_plain_convolution_networks():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inp)
    x = keras.layers.Conv2D(4, 3, name="c2")(x)
    base = keras.Model(inp, x, name="base")
    outer = keras.Input((16, 16, 3))
    clf = keras.Model(outer, keras.layers.Flatten()(base(outer)))
    assert candidate_layers(clf) == ["base/c1", "base/c2"]  # no activations: the convolutions
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert candidate_layers(dense) == []


def test_featuriser_explorer_and_sweep_share_the_list():
    from tlwidgets.activations import default_layers
    from tlwidgets.featurize import candidate_layers as featurize_candidates

    model = _mixed()
    assert featurize_candidates is candidate_layers
    assert default_layers(model) == candidate_layers(model)


def test_nearest_layers_in_network_order():
    model = _mixed()
    among = candidate_layers(model)
    assert nearest_layers(model, "bn", among) == ["conv_relu", "elu", "leaky"]
    assert nearest_layers(model, "head", among, n=2) == ["swish", "add"]


def test_unknown_layer_in_default_layers_is_refused():
    with pytest.raises(ValueError, match="no convolutional layers"):
        from tlwidgets.activations import default_layers

        default_layers(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
