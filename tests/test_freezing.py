"""Freezing: layer tables, block grouping, hand-computed trainable counts, BN policy, recompiling."""

import warnings

import keras
import numpy as np
import pytest

from tlwidgets import freezing
from tlwidgets.backbones import load_backbone
from tlwidgets.layers import LayerNotFoundError


@pytest.fixture(scope="module")
def mobilenet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = load_backbone("mobilenet_0.25", input_size=128)
    assert bb.weights_path.endswith("mobilenet_2_5_224_tf_no_top.h5")
    return bb.model


@pytest.fixture(scope="module")
def resnet50():
    return keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))


def _small_base():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inp)  # 3*3*3*4 + 4 = 112
    x = keras.layers.BatchNormalization(name="bn1")(x)  # gamma, beta 8 + moving 8
    x = keras.layers.Conv2D(8, 3, name="conv2")(x)  # 3*3*4*8 + 8 = 296
    return keras.Model(inp, x, name="base")


def _nested(base):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inp)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(x), name="clf")  # 8*2 + 2 = 18


def test_mobilenet_025_counts_match_hand_computed(mobilenet):
    # Top block 13: depthwise 3x3 on 256 channels (2,304) + pointwise 256->256 (65,536); no biases.
    assert freezing.unfreeze_top(mobilenet, 1).trainable == 2_304 + 65_536
    # Its two BatchNormalizations (256 channels each) add gamma+beta when released.
    assert freezing.unfreeze_top(mobilenet, 1, train_bn=True).trainable == 67_840 + 2 * 2 * 256
    # Block 12: depthwise on 128 channels (1,152) + pointwise 128->256 (32,768).
    assert freezing.unfreeze_top(mobilenet, 2).trainable == 67_840 + 1_152 + 32_768
    counts = freezing.freeze_all(mobilenet)
    assert (counts.trainable, counts.total) == (0, 218_544)
    # Every BN layer is frozen and therefore in inference mode.
    rows = freezing.layer_table(mobilenet)
    assert {r.bn_mode for r in rows if r.type == "BatchNormalization"} == {"inference"}
    names = [b.name for b in freezing.blocks(mobilenet)]
    assert names == ["stem"] + [f"block_{i}" for i in range(1, 14)]


def test_resnet50_counts_match_hand_computed(resnet50):
    # conv5_block3: 1x1 2048->512 (+bias), 3x3 512->512 (+bias), 1x1 512->2048 (+bias).
    top = (2048 * 512 + 512) + (9 * 512 * 512 + 512) + (512 * 2048 + 2048)
    assert freezing.unfreeze_top(resnet50, 1).trainable == top
    # Everything but BN: all 23,587,712 minus 4 x 26,560 BN channels (gamma, beta, mean, var).
    counts = freezing.unfreeze_all(resnet50)
    assert counts.total == 23_587_712
    bn_channels = sum(v.shape[0] for v in resnet50.weights if v.path.endswith("gamma"))
    assert bn_channels == 26_560
    assert counts.trainable == 23_587_712 - 4 * bn_channels
    assert len(freezing.blocks(resnet50)) == 17  # stem + 16 bottleneck blocks
    with pytest.raises(ValueError, match="only 17 blocks"):
        freezing.unfreeze_top(resnet50, 18)


def test_nested_base_counts_and_paths():
    keras.utils.set_random_seed(0)
    clf = _nested(_small_base())
    assert freezing.unfreeze_from(clf, "base/conv2").trainable == 296 + 18
    assert freezing.unfreeze_from(clf, "conv1").trainable == 112 + 296 + 18  # BN stays frozen
    assert freezing.unfreeze_from(clf, "conv1", train_bn=True).trainable == 112 + 8 + 296 + 18
    assert freezing.unfreeze_top(clf, 0).trainable == 18
    rows = {r.path: r for r in freezing.layer_table(clf)}
    assert rows["base/conv2"].output_shape == (None, 12, 12, 8)
    assert rows["base/conv1"].trainable is False and rows["head"].trainable is True
    assert rows["base"].params == 112 + 16 + 296
    assert freezing.set_blocks_trainable(clf, ["base/conv2"], True).trainable == 296 + 18


def test_bad_input_leaves_model_unchanged(mobilenet):
    freezing.unfreeze_top(mobilenet, 1)
    before = freezing.trainable_state(mobilenet)
    with pytest.raises(LayerNotFoundError, match="conv_pw_13"):
        freezing.unfreeze_from(mobilenet, "conv_pw_31")
    with pytest.raises(ValueError, match="only 14 blocks"):
        freezing.unfreeze_top(mobilenet, 20)
    with pytest.raises(KeyError, match="block_13"):
        freezing.set_blocks_trainable(mobilenet, ["block_31"], True)
    assert freezing.trainable_state(mobilenet) == before
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="never built"):
        freezing.freeze_all(unbuilt)
    no_weights = keras.Sequential([keras.Input((4,)), keras.layers.ReLU()])
    with pytest.raises(ValueError, match="no weights"):
        freezing.freeze_all(no_weights)


def test_frozen_weights_and_bn_statistics_unchanged_bit_for_bit():
    keras.utils.set_random_seed(1)
    base = _small_base()
    clf = _nested(base)
    freezing.unfreeze_from(clf, "base/conv2")  # conv1 and bn1 frozen; BN of any block stays frozen
    frozen = {v.path: v.numpy().copy() for v in base.get_layer("conv1").weights + base.get_layer("bn1").weights}
    trained = base.get_layer("conv2").kernel.numpy().copy()
    clf.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    clf.fit(rng.uniform(0, 255, (32, 16, 16, 3)), rng.integers(0, 2, 32), epochs=2, verbose=0)
    for layer in ("conv1", "bn1"):
        for v in base.get_layer(layer).weights:
            np.testing.assert_array_equal(v.numpy(), frozen[v.path])
    assert not np.array_equal(base.get_layer("conv2").kernel.numpy(), trained)


def test_released_bn_updates_moving_statistics():
    keras.utils.set_random_seed(1)
    base = _small_base()
    clf = _nested(base)
    freezing.unfreeze_all(clf, train_bn=True)
    mean = base.get_layer("bn1").moving_mean.numpy().copy()
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    clf.fit(rng.uniform(0, 255, (16, 16, 16, 3)), rng.integers(0, 2, 16), epochs=1, verbose=0)
    assert not np.array_equal(base.get_layer("bn1").moving_mean.numpy(), mean)


def _compiled_and_trained(clf):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (16, 16, 16, 3)), rng.integers(0, 2, 16)
    freezing.unfreeze_top(clf, 0)
    clf.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clf.fit(x, y, epochs=1, verbose=0)
    return x, y


def test_a_change_after_training_warns_and_fit_refuses_until_compiled_again():
    keras.utils.set_random_seed(2)
    base = _small_base()
    clf = _nested(base)
    x, y = _compiled_and_trained(clf)
    assert not freezing.is_stale(clf)
    with pytest.warns(UserWarning, match="Compile again"):
        freezing.unfreeze_all(clf)  # after compile() and fit(): Keras alone would ignore this
    assert freezing.is_stale(clf)
    kernel = base.get_layer("conv1").kernel.numpy().copy()
    with pytest.raises(RuntimeError, match="compile"):
        clf.fit(x, y, epochs=1, verbose=0, callbacks=[freezing.RecompileCheck()])
    np.testing.assert_array_equal(base.get_layer("conv1").kernel.numpy(), kernel)
    # Without the check Keras trains the old set silently: what the check is for.
    clf.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(base.get_layer("conv1").kernel.numpy(), kernel)
    freezing.recompile(clf)  # same loss and settings, fresh optimizer
    assert not freezing.is_stale(clf)
    clf.fit(x, y, epochs=1, verbose=0, callbacks=[freezing.RecompileCheck()])
    assert not np.array_equal(base.get_layer("conv1").kernel.numpy(), kernel)
    assert clf.optimizer.learning_rate.numpy() == pytest.approx(0.05)


def test_compiling_by_hand_is_accepted_and_fit_is_not_patched():
    keras.utils.set_random_seed(3)
    clf = _nested(_small_base())
    x, y = _compiled_and_trained(clf)
    with pytest.warns(UserWarning, match="Compile again"):
        freezing.freeze_all(clf)
    freezing.unfreeze_from(clf, "head")  # back to what was compiled: nothing stale
    assert not freezing.is_stale(clf)
    assert "fit" not in vars(clf)  # the model's own fit, not a wrapper
    clf.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clf.fit(x, y, epochs=1, verbose=0, callbacks=[freezing.RecompileCheck()])
    assert len(clf.optimizer.variables) > 0 and not freezing.is_stale(clf)
    with pytest.raises(ValueError, match="never compiled"):
        freezing.recompile(_nested(_small_base()))


def test_layer_freezer_widget_drives_the_real_model(mobilenet):
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    inp = keras.Input((128, 128, 3))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(mobilenet(inp))
    clf = keras.Model(inp, keras.layers.Dense(2, name="head")(x), name="clf")
    freezing.unfreeze_top(clf, 0)
    w = LayerFreezer(clf)
    keys = [b["key"] for b in w.blocks]
    base = mobilenet.name
    assert keys[:2] == [f"{base}/stem", f"{base}/block_1"] and keys[-1] == "head"
    assert "gap" not in keys  # a layer without weights joins the neighbouring block
    assert w.trainable_params == 514 and w.trainable[-1] is True
    w.toggle(f"{base}/block_13")  # as the browser's per-block toggle does
    assert w.trainable_params == freezing.param_counts(clf).trainable == 67_840 + 514
    assert mobilenet.get_layer("conv_pw_13").trainable and not mobilenet.get_layer("conv_pw_12").trainable
    block13 = w.blocks[keys.index(f"{base}/block_13")]
    assert (block13["state"], block13["bn"]) == ("trainable", "inference")
    w.freeze_up_to(f"{base}/block_11")  # blocks 12, 13 and the head train
    assert w.trainable_params == 67_840 + 1_152 + 32_768 + 514
    assert w.share == pytest.approx(w.trainable_params / w.total_params)
    w.train_bn = True
    assert w.blocks[keys.index(f"{base}/block_13")]["bn"] == "training"
    assert w.trainable_params == 67_840 + 1_152 + 32_768 + 514 + 3 * 2 * 256 + 2 * 128
    w.trainable = [False] * len(keys)  # what "freeze all" sends
    assert freezing.param_counts(clf).trainable == 0 and w.changes == 4
    with pytest.raises(KeyError, match="block_13"):
        w.toggle("block_31")


def test_training_false_on_a_nested_base_does_not_protect_bn_statistics():
    # The lesson's claim (keras 3.15): fit() passes training=True into every nested call, so
    # `base(x, training=False)` alone lets BN statistics drift; only trainable=False protects them.
    # If this starts failing, Keras changed and the notebook's warning should be updated.
    keras.utils.set_random_seed(4)
    base = _small_base()
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inp, training=False))
    clf = keras.Model(inp, keras.layers.Dense(2)(x))
    bn = base.get_layer("bn1")
    mean = bn.moving_mean.numpy().copy()
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x_train, y_train = rng.uniform(0, 255, (16, 16, 16, 3)), rng.integers(0, 2, 16)
    clf.fit(x_train, y_train, epochs=1, verbose=0)
    assert not np.array_equal(bn.moving_mean.numpy(), mean)
    with pytest.warns(UserWarning, match="Compile again"):
        freezing.unfreeze_all(clf)  # BN frozen by the policy
    freezing.recompile(clf)
    mean = bn.moving_mean.numpy().copy()
    clf.fit(x_train, y_train, epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), mean)


def test_requests_that_cannot_be_honoured_raise_and_change_nothing(mobilenet):
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    inp = keras.Input((128, 128, 3))
    aug = keras.Sequential([keras.layers.RandomFlip("horizontal")], name="augment")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(mobilenet(aug(inp)))
    clf = keras.Model(inp, keras.layers.Dense(2, name="head")(x), name="clf")
    freezing.unfreeze_top(clf, 1)
    before = freezing.trainable_state(clf)
    base = mobilenet.name
    keys = [b.key for b in freezing.blocks(clf)]
    assert keys[0] == "augment" and keys[1] == f"{base}/stem"  # weightless nested model: one block
    with pytest.raises(ValueError, match="no weights to train"):
        freezing.set_blocks_trainable(clf, ["augment"], True)
    with pytest.raises(LayerNotFoundError, match=f"{base}/block_13"):
        freezing.set_block_states(clf, {f"{base}/block_12": True, "block_31": True})
    with pytest.raises(ValueError, match="train_bn=True"):
        freezing.set_layers_trainable(clf, {f"{base}/conv_pw_12_bn": True})
    with pytest.raises(ValueError, match="not nested inside"):
        freezing.unfreeze_top(clf, 1, base=_small_base())
    with pytest.raises(ValueError, match="whole number"):
        freezing.unfreeze_top(clf, True)
    assert freezing.trainable_state(clf) == before
    w = LayerFreezer(clf)
    with pytest.raises(ValueError, match="no weights to train"):
        w.toggle("augment")
    with pytest.raises(LayerNotFoundError, match="block_13"):
        w.toggle("block_31")
    with pytest.raises(ValueError, match="not layers of 'clf'"):
        freezing.set_trainable_state(clf, {**before, "other/conv1": True})
    assert freezing.trainable_state(clf) == before and w.changes == 0
    # The model itself as its own base, and by name.
    assert freezing.unfreeze_top(mobilenet, 1, base=mobilenet).trainable == 67_840
    assert freezing.unfreeze_top(clf, 1, base=base).trainable == 67_840 + 514


def test_graph_blocks_for_an_unknown_residual_model():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="a_conv")(inp)
    x = keras.layers.BatchNormalization(name="a_norm")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="r_conv1")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="r_conv2")(y)
    x = keras.layers.Activation("relu", name="after")(x + y)  # a raw op merges the branch
    x = keras.layers.MaxPooling2D(name="down")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", name="b_conv1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", name="b_conv2")(x)
    model = keras.Model(inp, x, name="unknown")
    found = freezing.blocks(model)
    assert [(b.name, len(b.paths)) for b in found] == [
        ("a_conv", 2), ("r_conv1", 4), ("b_conv1", 2)]  # stem, residual (+relu, pool), stage


def test_layer_freezer_train_bn_is_applied_at_construction():
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    clf = _nested(_small_base())
    freezing.unfreeze_all(clf)  # BN frozen: the library's default
    assert not clf.get_layer("base").get_layer("bn1").trainable
    w = LayerFreezer(clf, train_bn=True)
    # the trainable blocks train their BatchNormalization from the start, not after a click
    assert clf.get_layer("base").get_layer("bn1").trainable
    assert w.trainable_params == freezing.param_counts(clf).trainable == 112 + 8 + 296 + 18
    assert w.changes == 0 and not w.error
    # frozen blocks stay frozen, BN included
    freezing.freeze_all(clf)
    w = LayerFreezer(clf, train_bn=True)
    assert not clf.get_layer("base").get_layer("bn1").trainable
    assert w.trainable_params == freezing.param_counts(clf).trainable
