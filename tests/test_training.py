"""Training helpers: two-phase fine-tuning on real images, layer-wise rates, LR finder, strategies."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tlwidgets import freezing, lr_finder, strategies, training
from tlwidgets.backbones import load_backbone
from tlwidgets.data import load_hymenoptera


@pytest.fixture(scope="module")
def backbone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("mobilenet_0.25", input_size=128)


@pytest.fixture(scope="module")
def ants_bees():
    train = load_hymenoptera("train", image_size=128, per_class=8)
    val = load_hymenoptera("val", image_size=128, per_class=8)
    return (train.images, train.labels), (val.images, val.labels)


def _small_model():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, name="conv1")(inp)
    x = keras.layers.Conv2D(6, 3, name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(x), name="small")


def test_two_phase_fine_tuning_keeps_frozen_layers_bit_for_bit(backbone, ants_bees):
    train, val = ants_bees
    model = training.build_classifier(backbone, 2, dropout=0.0)
    base = freezing.find_base(model)
    assert base is not backbone.model  # a copy: experiments never share weights
    np.testing.assert_array_equal(base.get_layer("conv1").kernel.numpy(),
                                  backbone.model.get_layer("conv1").kernel.numpy())
    frozen = {v.path: v.numpy().copy() for name in ("conv1", "conv1_bn", "conv_dw_13_bn")
              for v in base.get_layer(name).weights}
    top = base.get_layer("conv_pw_13").kernel.numpy().copy()
    log = training.RunLog("ft")
    result = training.fine_tune(model, train, val, head_lr=1e-3, base_lr=1e-3, epochs=(2, 1),
                                unfreeze=1, batch_size=8, callbacks=[log])
    assert result.head_counts.trainable == 256 * 2 + 2
    assert result.fine_tune_counts.trainable == 67_840 + 514
    assert len(result.history["val_accuracy"]) == result.unfrozen_at + 1
    assert log.marks == [(float(result.unfrozen_at), "unfroze top 1 blocks")]
    for name in ("conv1", "conv1_bn", "conv_dw_13_bn"):  # includes BN inside the unfrozen block
        for v in base.get_layer(name).weights:
            np.testing.assert_array_equal(v.numpy(), frozen[v.path])
    assert not np.array_equal(base.get_layer("conv_pw_13").kernel.numpy(), top)
    # Per-batch values recovered from Keras's running means average back to the epoch value.
    per_epoch = len(log.batch_x) // len(log.epoch_x)
    np.testing.assert_allclose(np.mean(log.batches["loss"][:per_epoch]), log.epochs["loss"][0],
                               rtol=1e-4)


def test_fine_tune_rejects_bad_requests_before_training(backbone):
    model = training.build_classifier(backbone, 2)
    before = freezing.trainable_state(model)
    data = (np.zeros((2, 128, 128, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="only 14 blocks"):
        training.fine_tune(model, data, unfreeze=30)
    with pytest.raises(TypeError, match="head epochs, fine-tuning epochs"):
        training.fine_tune(model, data, epochs=5)
    with pytest.raises(ValueError, match="base_lr must be a positive"):
        training.fine_tune(model, data, base_lr=0)
    with pytest.raises(TypeError, match="lr"):
        training.fine_tune(model, data, lr=1e-5)  # the learning rates have names now
    assert freezing.trainable_state(model) == before
    assert not model.compiled
    with pytest.raises(ValueError, match="not present"):
        strategies.get_strategy(["/cpu:0", "/gpu:7"])
    with pytest.raises(ValueError, match="not built under this strategy"):
        training.compile_classifier(model, strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = _small_model()
    freezing.unfreeze_all(model)
    return model


@pytest.mark.parametrize(("data", "error", "message"), [
    ((np.zeros((6, 8, 8, 3)), np.array([0, 1, 0, 1])), ValueError, "6 images but 4 labels"),
    ((np.zeros((0, 8, 8, 3)), np.array([], int)), ValueError, "set is empty"),
    ((np.zeros((2, 8, 8, 3)), np.array(["ant", "bee"])), TypeError,
     "integer class ids.*'ant'.*np.unique"),
    ((np.zeros((2, 8, 8, 3)), np.array([0.5, 1.0])), TypeError, "whole class ids"),
    ((np.zeros((2, 8, 8, 3)), np.eye(2)), ValueError, "one-hot"),
    ((np.zeros((2, 8, 8, 3)), np.array([0, 2])), ValueError, "run from 0 to 2.*2 outputs"),
    ((np.zeros((2, 9, 9, 3)), np.array([0, 1])), ValueError, r"shape \(9, 9, 3\).*\(8, 8, 3\)"),
    ((np.zeros((2, 8, 8, 3)),), TypeError, "must be \\(images, labels\\)"),
], ids=["length", "empty", "strings", "fractions", "one-hot", "range", "shape", "not-a-pair"])
def test_fine_tune_checks_data_before_tensorflow_sees_it(tiny, data, error, message):
    before = [w.copy() for w in tiny.get_weights()]
    with pytest.raises(error, match=message):
        training.fine_tune(tiny, data, epochs=(1, 1))
    with pytest.raises(error, match=message.replace("train", "validation")):
        training.fine_tune(tiny, (np.zeros((2, 8, 8, 3)), np.array([0, 1])), data, epochs=(1, 1))
    for a, b in zip(tiny.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fine_tune_refuses_nan_images_naming_the_first(tiny):
    x = np.zeros((5, 8, 8, 3), np.float32)
    x[3, 2, 2, 1] = np.nan
    x[4, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="2 of 5 train images contain NaN.*first is image 3"):
        training.fine_tune(tiny, (x, np.array([0, 1, 0, 1, 0])), epochs=(1, 0))
    # Integer labels stored as floats are accepted (and converted).
    x, y = training.check_data(tiny, (np.ones((2, 8, 8, 3), np.uint8), np.array([1.0, 0.0])))
    assert x.dtype == np.float32 and y.dtype == np.int64 and list(y) == [1, 0]


def test_layerwise_rates_move_lower_layers_by_the_ratio_asked():
    keras.utils.set_random_seed(0)
    model = _small_model()
    opt = training.layerwise_optimizer(keras.optimizers.Adam(1e-3), model,
                                       {"conv1": 0.1, "conv2": 1.0, "head": 1.0})
    assert type(opt).__name__ == "LayerwiseAdam"
    training.compile_classifier(model, opt)
    before = {n: model.get_layer(n).kernel.numpy().copy() for n in ("conv1", "conv2")}
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.normal(size=(16, 8, 8, 3)), rng.integers(0, 2, 16))
    moved = {n: np.abs(model.get_layer(n).kernel.numpy() - before[n]).mean() for n in before}
    # Adam's first step moves each weight by about lr * factor.
    assert moved["conv1"] / moved["conv2"] == pytest.approx(0.1, rel=0.15)


def test_block_lr_factors_decay_from_the_top(backbone):
    model = training.build_classifier(backbone, 2)
    factors = training.block_lr_factors(model, 0.5)
    base = freezing.find_base(model).name
    assert factors[f"{base}/conv_pw_13"] == 1.0
    assert factors[f"{base}/conv_dw_12"] == 0.5
    assert factors[f"{base}/conv1"] == 0.5**13
    assert "head" not in factors
    with pytest.raises(ValueError, match="decay"):
        training.block_lr_factors(model, 2.0)


def test_lr_finder_lands_near_the_known_best_rate():
    # Linear least squares: gradient descent converges fastest near 1 / (largest Hessian
    # eigenvalue) and diverges beyond 2 / lambda_max, so the good rate is known exactly.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 4)) * np.array([1.0, 2.0, 0.5, 3.0])
    y = x @ np.array([1.0, -2.0, 0.5, 0.3]) + 0.1 * rng.normal(size=512)
    xb = np.hstack([x, np.ones((512, 1))])
    good = 1 / np.linalg.eigvalsh(2 * xb.T @ xb / len(xb)).max()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    weights = [w.copy() for w in model.get_weights()]
    result = lr_finder.lr_find(model, x, y.astype("float32"), loss="mse", optimizer="sgd",
                              start_lr=1e-5, end_lr=10.0, steps=80, batch_size=64)
    assert good / 10 <= result.suggestion <= good * 10, (result.suggestion, good)
    assert len(result.lrs) < 80  # stopped once the loss blew up
    for a, b in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)  # the model itself was not trained


def test_augmentation_changes_training_inputs_only(ants_bees):
    (images, _), _ = ants_bees
    aug = training.augmentation(seed=0)
    batch = images[:4].astype("float32")
    trained = keras.ops.convert_to_numpy(aug(batch, training=True))
    assert trained.shape == batch.shape
    assert not np.allclose(trained, batch)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aug(batch, training=False)), batch)


def test_release_drops_compiled_functions_and_training_still_works():
    import keras
    import numpy as np

    from tlwidgets.training import free_memory, release

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.train_function is not None
    before = model.get_weights()
    release(model)
    free_memory()
    assert model.train_function is None
    np.testing.assert_array_equal(model.get_weights()[0], before[0])  # weights kept
    model.fit(x, y, epochs=1, verbose=0)  # compiles again
    assert model.train_function is not None


def test_index_batches_cover_each_row_once_per_epoch_and_cycle_the_copies():
    from tlwidgets.training import index_batches

    parts = [np.arange(10)[:, None] * 1.0, np.arange(10)[:, None] + 100.0]  # copy 0, copy 1
    index = np.array([1, 3, 4, 8, 9])
    y = np.array([0, 1, 0, 1, 1])
    stream = index_batches(parts, index, y, 2, seed=0)
    rows = [next(stream) for _ in range(5)]  # 10 rows: two epochs of five
    assert all(x.shape == (2, 1) and yy.shape == (2,) for x, yy in rows)
    x = np.concatenate([r[0][:, 0] for r in rows])
    labels = np.concatenate([r[1] for r in rows])
    assert sorted(x[:5]) == [1, 3, 4, 8, 9]  # epoch 0 reads copy 0, every row once
    assert sorted(x[5:]) == [101, 103, 104, 108, 109]  # epoch 1 reads copy 1
    lookup = dict(zip(index, y, strict=True))
    assert [lookup[int(v) % 100] for v in x] == list(labels)  # each row keeps its label
    tiny = next(index_batches([parts[0]], np.array([2]), np.array([1]), 3, seed=0))
    assert list(tiny[0][:, 0]) == [2, 2, 2]  # a one-row set fills a batch from three epochs


def test_a_trained_model_is_freed_with_its_graphs():
    """Neither the freezing plan nor TensorFlow's gradient registry keeps a finished model
    (and its traced training graph, tens of MB for a real network) alive."""
    import gc
    import weakref

    import keras
    import numpy as np
    from tensorflow.python.framework import func_graph

    from tlwidgets import freezing
    from tlwidgets.training import compile_classifier, free_memory

    def trained():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="hidden"),
                                  keras.layers.Dense(2, name="head")])
        freezing.unfreeze_top(model, 1)  # the plan is made and kept for the model
        compile_classifier(model, 1e-2)
        model.fit(np.ones((16, 6), "float32"), np.arange(16) % 2, epochs=1, verbose=0)
        return weakref.ref(model), weakref.ref(model.train_function)

    free_memory()
    graphs_before = sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())
    model, step = trained()
    free_memory()
    assert model() is None, "the model outlived every reference to it"
    assert step() is None, "its traced training step outlived it"
    assert sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects()) == graphs_before
