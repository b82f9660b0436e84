"""Fine-tuning the top from a cache of the frozen part: same training as end to end,
the cache's keys and hits, clean cuts only, augmentation made explicit, atomic writes."""

import warnings

import keras
import numpy as np
import pytest

from tlwidgets import frozen_cache as fc
from tlwidgets import training
from tlwidgets.featurize import cache as fcache


def _chain_base(name="base"):
    """Four named blocks (a chain) with BatchNormalization, 12 x 12 px."""
    inp = keras.Input((12, 12, 3))
    x = inp
    for i, width in enumerate((4, 6, 8, 8), start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", name=f"block_{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block_{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block_{i}_relu")(x)
    return keras.Model(inp, x, name=name)


def _skip_base():
    """block_3 adds block_1's output: a skip that crosses the block_2/block_3 boundary."""
    inp = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="block_1_conv")(inp)
    b = keras.layers.Conv2D(4, 3, padding="same", name="block_2_conv")(a)
    c = keras.layers.Conv2D(4, 3, padding="same", name="block_3_conv")(b)
    d = keras.layers.Add(name="block_3_add")([a, c])
    e = keras.layers.Conv2D(4, 3, padding="same", name="block_4_conv")(d)
    return keras.Model(inp, e, name="skipnet")


def _classifier(base_fn=_chain_base, **kwargs):
    keras.utils.set_random_seed(0)  # the same random base every time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return training.build_classifier(base_fn(), 2, seed=0, **kwargs)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 12, 12, 3)).astype("float32")
    y = (x[:, :6].mean(axis=(1, 2, 3)) > x[:, 6:].mean(axis=(1, 2, 3))).astype("int64")
    return x, y


def _bottom_weights(model, split):
    return [w.copy() for w in split.bottom.get_weights()]


def test_cached_training_equals_end_to_end(data, tmp_path):
    x, y = data
    cached, direct = _classifier(), _classifier()
    split = fc.split_frozen(cached, 2)
    assert split.cut == "base/block_2_relu" and [b.name for b in split.top_blocks] == [
        "block_3", "block_4"]
    before = _bottom_weights(cached, split)
    fc.fine_tune_top(cached, x, y, top_blocks=2, epochs=3, learning_rate=1e-2, batch_size=8,
                     cache=tmp_path)
    fc.fine_tune_top(direct, x, y, top_blocks=2, epochs=3, learning_rate=1e-2, batch_size=8,
                     cache=False)
    # the bottom is untouched; the top moved, and the same way on both paths
    for a, b in zip(before, split.bottom.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    moved = [not np.array_equal(a, b) for a, b in zip(
        _classifier().get_weights(), cached.get_weights(), strict=True)]
    assert any(moved)
    for a, b in zip(cached.get_weights(), direct.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    run, ref = fc.last_run(cached), fc.last_run(direct)
    np.testing.assert_allclose(run.history["loss"], ref.history["loss"], rtol=1e-4)
    # the returned model predicts raw images as top(bottom(x))
    got = cached.predict(x, verbose=0)
    np.testing.assert_allclose(got, split.top.predict(split.bottom.predict(x, verbose=0),
                                                      verbose=0), rtol=1e-5, atol=1e-6)


def test_second_call_hits_and_key_follows_bottom_weights(data, tmp_path):
    x, y = data
    model = _classifier()
    fc.fine_tune_top(model, x, y, top_blocks=1, epochs=1, batch_size=8, cache=tmp_path)
    first = fc.last_run(model)
    assert not first.hit and len(first.cache_paths) == 1 and first.cache_paths[0].is_file()
    fc.fine_tune_top(model, x, y, top_blocks=1, epochs=1, batch_size=8, cache=tmp_path)
    assert fc.last_run(model).hit and fc.last_run(model).cache_paths == first.cache_paths

    split = fc.split_frozen(model, 1)
    key = fc.bottom_output(split, x, cache=tmp_path).paths[0]
    head = model.get_layer("head")
    head.set_weights([w + 1 for w in head.get_weights()])  # above the cut: same key
    assert fc.bottom_output(split, x, cache=tmp_path).paths[0] == key
    conv = model.get_layer("base").get_layer("block_1_conv")
    conv.set_weights([w + 0.01 for w in conv.get_weights()])  # below the cut: another key
    out = fc.bottom_output(split, x, cache=tmp_path)
    assert not out.hit and out.paths[0] != key
    assert fc.bottom_output(split, x[:-1], cache=tmp_path).paths[0] != out.paths[0]  # data
    assert fc.bottom_output(fc.split_frozen(_classifier(), 1), x,  # the original bottom
                            cache=tmp_path).paths[0] == key
    one, two = (_classifier(preprocess=keras.layers.Rescaling(s, name="prep")) for s in (1., 2.))
    assert (fc.bottom_output(fc.split_frozen(one, 1), x, cache=tmp_path)
            .paths[0] != fc.bottom_output(fc.split_frozen(two, 1), x, cache=tmp_path).paths[0])


def test_bad_input_is_refused_clearly(data, tmp_path):
    x, y = data
    model = _classifier()
    with pytest.raises(fc.CutError, match=r"only 4 blocks .*top_blocks <= 3"):
        fc.fine_tune_top(model, x, y, top_blocks=9, cache=tmp_path)
    with pytest.raises(fc.CutError, match="nothing is frozen"):
        fc.split_frozen(model, 4)
    with pytest.raises(ValueError, match="top_blocks must be a whole number"):
        fc.fine_tune_top(model, x, y, top_blocks=-1)
    with pytest.raises(ValueError, match=r"shape \(N,\).*one-hot"):
        fc.fine_tune_top(model, x, np.eye(2)[y], cache=tmp_path)
    with pytest.raises(ValueError, match="40 images but 39 labels"):
        fc.fine_tune_top(model, x, y[:-1], cache=tmp_path)

    def weightless():
        inp = keras.Input((12, 12, 3))
        return keras.Model(inp, keras.layers.MaxPooling2D(name="pool_only")(inp), name="flat")

    with pytest.raises(fc.CutError, match="no nested base with blocks"):
        fc.split_frozen(_classifier(weightless), 1)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_skip_across_the_cut_is_refused_with_the_clean_cuts(data):
    model = _classifier(_skip_base)
    with pytest.raises(fc.CutError, match=r"block_3_add also reads .*top_blocks=1 or 3"):
        fc.split_frozen(model, 2)  # cut after block_2: block_3 adds block_1's output
    split = fc.split_frozen(model, 3)  # cut after block_1: the skip starts at the cut itself
    assert fc.split_frozen(model, 1).cut == "skipnet/block_3_add"  # after the residual add
    x = data[0]
    np.testing.assert_allclose(model.predict(x, verbose=0), split.top.predict(
        split.bottom.predict(x, verbose=0), verbose=0), rtol=1e-5, atol=1e-6)


def test_augmentation_is_refused_or_cached_as_fixed_copies(data, tmp_path):
    x, y = data
    model = _classifier(augment=training.augmentation(rotation=0, zoom=0, contrast=0.3))
    with pytest.raises(ValueError, match="augmented_copies=0 trains the top without"):
        fc.fine_tune_top(model, x, y, cache=tmp_path)
    fc.fine_tune_top(model, x, y, epochs=2, batch_size=8, cache=tmp_path, augmented_copies=2)
    run = fc.last_run(model)
    assert not run.hit and len(run.cache_paths) == 2
    split = fc.split_frozen(model, 1)
    copies = fc.bottom_output(split, x, cache=False, batch_size=8, augmented_copies=2).features
    plain = fc.bottom_output(split, x, cache=False).features[0]
    assert not np.allclose(copies[0], copies[1]) and not np.allclose(copies[0], plain)
    cached = fc.bottom_output(split, x, cache=tmp_path, batch_size=8, augmented_copies=2)
    assert cached.hit  # seeded: the same copies on every call
    np.testing.assert_allclose(cached.features[0], copies[0], rtol=1e-5, atol=1e-6)


def test_an_interrupted_cache_write_leaves_nothing(data, tmp_path, monkeypatch):
    x, y = data
    model = _classifier()

    def killed(fh, **arrays):
        fh.write(b"PK\x03\x04 half an npz")
        raise KeyboardInterrupt

    monkeypatch.setattr(fcache.np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        fc.fine_tune_top(model, x, y, epochs=1, cache=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    split = fc.split_frozen(model, 1)
    assert not fc.bottom_output(split, x, cache=tmp_path).hit  # computed again, then kept
    assert fc.bottom_output(split, x, cache=tmp_path).hit
