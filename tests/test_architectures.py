"""Freezing on every keras.applications family, bare and wrapped the ways people wrap them.

Each family is built once (``weights=None``, the smallest input it allows) and
checked bare, nested in a functional classifier, inside a ``Sequential``, and
behind the TensorFlow tutorial's ``preprocess_input(inputs)`` then
``base(x, training=False)``. The expected top blocks come from the graph, not
from :mod:`tlwidgets.freezing`: everything computed after a named tensor (the
output of the block below) is the top block(s).
"""

from __future__ import annotations

import collections
import re

import keras
import numpy as np
import pytest

from tlwidgets import freezing

A = keras.applications

# family: (constructor, preprocess module, input size, blocks, start of the top block,
#          start of the top two blocks). "<name": the input of that layer, "re:..." a
#          pattern on the names of the layers with weights (NASNet cells take two inputs,
#          so no single tensor separates them).
FAMILIES = {
    "ConvNeXtTiny": (A.ConvNeXtTiny, A.convnext, 32, 22,
                     "<convnext_tiny_stage_3_block_2_depthwise_conv",
                     "<convnext_tiny_stage_3_block_1_depthwise_conv"),
    "DenseNet121": (A.DenseNet121, A.densenet, 32, 62, "conv5_block15_concat",
                    "conv5_block14_concat"),
    "EfficientNetB0": (A.EfficientNetB0, A.efficientnet, 32, 18, "block7a_project_bn",
                       "block6d_add"),
    "EfficientNetV2B0": (A.EfficientNetV2B0, A.efficientnet_v2, 32, 23, "block6h_add",
                         "block6g_add"),
    "InceptionResNetV2": (A.InceptionResNetV2, A.inception_resnet_v2, 75, 45, "<conv_7b",
                          "block8_9_ac"),
    "InceptionV3": (A.InceptionV3, A.inception_v3, 75, 12, "mixed9", "mixed8"),
    "MobileNet": (A.MobileNet, A.mobilenet, 32, 14, "conv_pw_12_relu", "conv_pw_11_relu"),
    "MobileNetV2": (A.MobileNetV2, A.mobilenet_v2, 32, 19, "block_16_project_BN",
                    "block_15_add"),
    "MobileNetV3Small": (A.MobileNetV3Small, A.mobilenet_v3, 32, 13, "expanded_conv_10_add",
                         "expanded_conv_9_add"),
    "MobileNetV3Large": (A.MobileNetV3Large, A.mobilenet_v3, 32, 17, "expanded_conv_14_add",
                         "expanded_conv_13_add"),
    "NASNetMobile": (A.NASNetMobile, A.nasnet, 32, 17, "re:_12$", "re:_1[12]$"),
    "NASNetLarge": (A.NASNetLarge, A.nasnet, 32, 23, "re:_18$", "re:_1[78]$"),
    "ResNet50": (A.ResNet50, A.resnet, 32, 17, "conv5_block2_out", "conv5_block1_out"),
    "ResNet50V2": (A.ResNet50V2, A.resnet_v2, 32, 17, "conv5_block2_out", "conv5_block1_out"),
    "VGG16": (A.VGG16, A.vgg16, 32, 5, "block4_pool", "block3_pool"),
    "Xception": (A.Xception, A.xception, 71, 14, "<block14_sepconv1", "<block13_sepconv1_act"),
}
SLOW = {"NASNetLarge"}  # 85M parameters, 1,040 layers
WRAPPERS = ("bare", "functional", "sequential", "preprocessing")


def _trainable_non_bn(layers) -> int:
    """Parameters of fresh (all trainable) layers, BatchNormalization left out."""
    return sum(int(np.prod(w.shape)) for layer in layers if not freezing.is_batchnorm(layer)
               for w in layer.trainable_weights)


def _expected(base: keras.Model, spec: str) -> int:
    if spec.startswith("re:"):
        pattern = re.compile(spec[3:])
        return _trainable_non_bn(
            layer for layer in base.layers
            if pattern.search(layer.name) and re.match(r"normal|adjust|separable_conv", layer.name))
    tensor = base.get_layer(spec[1:]).input if spec.startswith("<") else base.get_layer(spec).output
    return _trainable_non_bn(keras.Model(tensor, base.output).layers)


_BUILT: dict[str, dict] = {}


def _family(name: str) -> dict:
    """The family's base, built once; only the latest is kept (tests run family by family)."""
    if name not in _BUILT:
        _BUILT.clear()
        make, module, size, n_blocks, top1, top2 = FAMILIES[name]
        keras.utils.set_random_seed(0)
        base = make(weights=None, include_top=False, input_shape=(size, size, 3))
        # Expected counts are read while every layer is still trainable, as built.
        _BUILT[name] = {"name": name, "base": base, "preprocess": module.preprocess_input,
                        "size": size, "blocks": n_blocks,
                        "top": (_expected(base, top1), _expected(base, top2))}
    return _BUILT[name]


def _cases() -> list:
    """(family, wrapper) pairs, family by family; NASNetLarge marked slow."""
    return [pytest.param(name, kind, id=f"{name}-{kind}",
                         marks=[pytest.mark.slow] if name in SLOW else [])
            for name in FAMILIES for kind in WRAPPERS]


def _wrap(base: keras.Model, kind: str, preprocess) -> keras.Model:
    shape = tuple(base.inputs[0].shape[1:])
    if kind == "bare":
        return base
    if kind == "sequential":
        return keras.Sequential([keras.Input(shape), base, keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(3)], name="sequential_classifier")
    inputs = keras.Input(shape)
    if kind == "preprocessing":  # the TensorFlow transfer-learning tutorial's wrapper
        x = preprocess(inputs)
        x = base(x, training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(0.2)(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(x), name=f"{kind}_classifier")


def _bn_layers(model):
    return [row for row in freezing.layer_table(model) if row.type == "BatchNormalization"]


@pytest.mark.parametrize(("name", "kind"), _cases())
def test_blocks_and_trainable_counts(name, kind):
    family = _family(name)
    base = family["base"]
    model = _wrap(base, kind, family["preprocess"])
    found = freezing.blocks(model)
    keys = [b.key for b in found]
    assert not [k for k, n in collections.Counter(keys).items() if n > 1], "duplicate keys"
    leaves = [p for b in found for p in b.paths]
    assert len(leaves) == len(set(leaves)), "a layer in two blocks"
    assert freezing.find_base(model) is base
    inside = freezing.blocks(model, base)
    assert len(inside) == family["blocks"], [b.name for b in inside]
    assert all(b.trainable_size for b in inside), "a block with nothing to train"
    if kind == "bare":
        assert freezing.find_base(base) is base  # never one of its parts (a ConvNeXt stem)
        assert [b.key for b in freezing.blocks(base, base)] == keys

    head = 0 if kind == "bare" else _trainable_non_bn(model.layers[-1:])
    top1, top2 = family["top"]
    assert freezing.unfreeze_top(model, 1).trainable == top1 + head
    assert freezing.unfreeze_top(model, 2, base=base).trainable == top2 + head
    assert inside[-1].trainable_size == top1 and inside[-2].trainable_size == top2 - top1
    assert {r.bn_mode for r in _bn_layers(model)} <= {"inference"}
    if kind == "preprocessing":
        _training_step(family, model)


# The step costs 5-40 s per model on 2 cores (eager, so nothing is traced; Keras 3.15's
# TensorFlow backend compiles ConvNeXt's grouped convolutions with XLA on every eager call):
# by default it runs in the tutorial's wrapper (preprocessing, then base(x, training=False)),
# where BatchNormalization is most at risk; the other three wrappers run with -m slow.
@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), [
    pytest.param(n, k, id=f"{n}-{k}") for n in FAMILIES for k in WRAPPERS if k != "preprocessing"])
def test_a_training_step_in_the_other_wrappers(name, kind):
    family = _family(name)
    _training_step(family, _wrap(family["base"], kind, family["preprocess"]), kind)


def _training_step(family: dict, model: keras.Model, kind: str = "preprocessing") -> None:
    freezing.unfreeze_top(model, 2)
    # One training step: everything frozen stays bit-identical, every BN statistic too.
    trained = {id(v) for v in model.trainable_variables}
    before = {id(v): np.array(v.numpy()) for v in model.weights}
    out_shape = tuple(model.outputs[0].shape[1:])
    # Random weights shrink the signal to ~1e-23 through some bases; with a tiny epsilon
    # Adam still moves every weight with a nonzero gradient by about the learning rate.
    model.compile(keras.optimizers.Adam(1e-2, epsilon=1e-30), "mse", run_eagerly=True)
    rng = np.random.default_rng(0)
    shape = (2, family["size"], family["size"], 3)
    # Raw pixels for the wrapper that preprocesses, what preprocessing gives for the others.
    x = rng.uniform(0, 255, shape) if kind == "preprocessing" else rng.uniform(-1, 1, shape)
    model.train_on_batch(x, rng.normal(size=(2, *out_shape)).astype("float32"))
    changed = {id(v) for v in model.weights if not np.array_equal(v.numpy(), before[id(v)])}
    assert changed & {id(v) for v in family["base"].weights}, "the step trained nothing in the base"
    assert changed <= trained, [v.path for v in model.weights if id(v) in changed - trained][:5]
    for v in model.weights:  # the base is shared by the next wrapper: give it back as it was
        v.assign(before[id(v)])


def test_layer_freezer_toggles_the_block_it_names():
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    keras.utils.set_random_seed(0)
    base = A.ConvNeXtTiny(weights=None, include_top=False, input_shape=(32, 32, 3))
    one = _expected(base, "<convnext_tiny_stage_3_block_1_depthwise_conv") - _expected(
        base, "<convnext_tiny_stage_3_block_2_depthwise_conv")  # read while all trainable
    model = _wrap(base, "functional", None)
    freezing.unfreeze_top(model, 0)
    widget = LayerFreezer(model)
    keys = [b["key"] for b in widget.blocks]
    assert keys == [b.key for b in freezing.blocks(model)]
    assert keys[0] == "convnext_tiny/stem" and "convnext_tiny/downsampling_1" in keys
    head = widget.trainable_params
    widget.toggle("convnext_tiny/stage_3_block_1")  # the second block from the top only
    assert widget.trainable_params == head + one
    states = dict(zip(keys, widget.trainable, strict=True))
    assert [k for k, on in states.items() if on] == ["convnext_tiny/stage_3_block_1", keys[-1]]
    widget.toggle("stage_3_block_1")  # a unique name works too
    assert widget.trainable_params == head


@keras.saving.register_keras_serializable(package="tlwidgets_test_architectures")
class ConvBN(keras.layers.Layer):
    """A custom block: Conv2D + BatchNormalization + ReLU inside one subclassed layer."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn = keras.layers.BatchNormalization()

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build((*input_shape[:-1], self.filters))

    def call(self, x, training=None):
        return keras.ops.relu(self.bn(self.conv(x), training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _custom_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = ConvBN(4, name="unit1")(inputs)  # conv 3*3*3*4 = 108; BN 4 x (gamma, beta, mean, var)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = ConvBN(8, name="unit2")(x)  # conv 3*3*4*8 = 288; BN 8 x 4
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="custom")  # 18


def _check_custom(model: keras.Model) -> None:
    rows = {r.path: r for r in freezing.layer_table(model)}
    inner_bn = [p for p, r in rows.items() if r.type == "BatchNormalization"]
    assert len(inner_bn) == 2 and all(p.startswith(("unit1/", "unit2/")) for p in inner_bn)
    assert [b.key for b in freezing.blocks(model)] == ["unit1", "unit2", "head"]
    assert freezing.unfreeze_all(model).trainable == 108 + 288 + 18  # gamma/beta stay frozen
    rows = {r.path: r for r in freezing.layer_table(model)}
    assert {rows[p].bn_mode for p in inner_bn} == {"inference"} == {
        r.bn_mode for r in freezing.layer_table(model) if r.type == "BatchNormalization"}
    bn_vars = [v for layer in ("unit1", "unit2") for v in model.get_layer(layer).bn.weights]
    before = [v.numpy().copy() for v in bn_vars]
    conv = model.get_layer("unit1").conv.kernel.numpy().copy()
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), run_eagerly=True)
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 1, (8, 16, 16, 3)), rng.integers(0, 2, 8), epochs=1, verbose=0)
    for v, old in zip(bn_vars, before, strict=True):  # moving statistics and gamma/beta
        np.testing.assert_array_equal(v.numpy(), old)
    assert not np.array_equal(model.get_layer("unit1").conv.kernel.numpy(), conv)
    # Released on request: gamma and beta train, the statistics move.
    with pytest.warns(UserWarning, match="Compile again"):
        counts = freezing.unfreeze_all(model, train_bn=True)
    assert counts.trainable == 108 + 288 + 18 + 2 * (4 + 8)
    freezing.recompile(model)
    model.fit(rng.uniform(0, 1, (8, 16, 16, 3)), rng.integers(0, 2, 8), epochs=1, verbose=0)
    assert not np.array_equal(model.get_layer("unit1").bn.moving_mean.numpy(), before[2])
    with pytest.warns(UserWarning, match="Compile again"):  # a bare model: its top is the head
        assert freezing.unfreeze_top(model, 2).trainable == 288 + 18


def test_custom_layer_with_batchnorm_and_a_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    model = _custom_model()
    _check_custom(model)
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded.compile(keras.optimizers.Adam(0.05), "mse")  # loaded with a built optimizer: fresh one
    assert [b.key for b in freezing.blocks(loaded)] == [b.key for b in freezing.blocks(model)]
    _check_custom(loaded)
    # A keras.applications classifier saved and loaded keeps its blocks and counts.
    base = A.MobileNetV3Small(weights=None, include_top=False, input_shape=(32, 32, 3))
    clf = _wrap(base, "preprocessing", A.mobilenet_v3.preprocess_input)
    counts = freezing.unfreeze_top(clf, 2).trainable
    clf.save(tmp_path / "clf.keras")
    again = keras.models.load_model(tmp_path / "clf.keras")
    assert [b.key for b in freezing.blocks(again)] == [b.key for b in freezing.blocks(clf)]
    assert freezing.unfreeze_top(again, 2).trainable == counts
