"""Featuriser: accuracy on real data, the cache, nested cuts, sources and bad input."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from tlwidgets.backbones import load_backbone
from tlwidgets.data import load_hymenoptera
from tlwidgets.featurize import (
    Featuriser,
    FeaturiserError,
    candidate_layers,
    featurise_layers,
)
from tlwidgets.layers import LayerNotFoundError
from tlwidgets.notices import reset as reset_notices


@pytest.fixture(autouse=True)
def _fresh_notices():
    """Notices are said once per process; each test expects its own."""
    reset_notices()
    yield
    reset_notices()


@pytest.fixture(scope="module")
def ants_bees(shared_assets):
    return load_hymenoptera("train", image_size=224), load_hymenoptera("val", image_size=224)


@pytest.fixture(scope="module")
def few(ants_bees):
    train, _ = ants_bees
    idx = np.r_[0:4, len(train) - 4:len(train)]
    return train.images[idx], train.labels[idx]


def _tiny(name="tiny.v1", size=32):
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, name="conv.1")(inp)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    return keras.Model(inp, x, name=name)


def _images(n=6, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- real numbers


def test_imagenet_features_beat_random_weights_on_ants_and_bees(ants_bees):
    train, val = ants_bees
    acc = {}
    for weights in ("imagenet", "random"):
        # The session's cache: test_transferability reuses these features.
        f = Featuriser("auto", weights=weights, progress=False)
        clf = LogisticRegression(max_iter=3000).fit(f.transform(train.images), train.labels)
        acc[weights] = clf.score(f.transform(val.images), val.labels)
        # The same architecture either way: only the weights differ.
        assert f.backbone_.name == "mobilenet_0.25"
        assert f.n_features_out_ == 256
    assert acc["imagenet"] >= 0.78, acc
    assert acc["random"] <= acc["imagenet"] - 0.2, acc


def test_pipeline_clone_and_params(few, tmp_path):
    x, y = few
    pipe = make_pipeline(Featuriser("auto", layer="conv_pw_11_relu", cache=tmp_path,
                                    progress=False), LogisticRegression(max_iter=1000))
    pipe.fit(x, y)
    assert pipe.score(x, y) == 1.0
    f = pipe[0]
    params = f.get_params()
    assert params["layer"] == "conv_pw_11_relu" and params["pooling"] == "avg"
    twin = clone(f)
    assert twin.get_params() == params and not hasattr(twin, "model_")
    np.testing.assert_array_equal(twin.transform(x), f.transform(x))
    # set_params rebuilds the cut: a changed layer gives other features.
    f.set_params(layer="conv_pw_13_relu")
    assert f.transform(x).shape == (8, 256)
    assert f.layer_path_ == "conv_pw_13_relu"
    assert "conv_pw_13_relu" in f.describe() and "256 features" in f.describe()


def test_cut_by_name_index_and_drop_last_agree(few, tmp_path):
    x, _ = few
    model = load_backbone("mobilenet_0.25", input_size=224).model
    by_name = Featuriser(model, layer="conv_pw_12_relu", preprocess="mobilenet", cache=False,
                         progress=False)
    names = [ly.name for ly in model.layers[1:]]
    by_index = Featuriser(model, layer=names.index("conv_pw_12_relu"), preprocess="mobilenet",
                          cache=False, progress=False)
    dropped = Featuriser(model, drop_last=len(names) - 1 - names.index("conv_pw_12_relu"),
                         preprocess="mobilenet", cache=False, progress=False).fit()
    a, b, c = (f.transform(x[:3]) for f in (by_name, by_index, dropped))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert dropped.layer_path_ == "conv_pw_12_relu"


def test_nested_cut_equals_flat_model(few):
    """A base inside a classifier (a name with dots) gives the base's own features."""
    x, _ = few
    bb = load_backbone("mobilenet_0.25", input_size=224)
    base = bb.model
    assert "." in base.name  # mobilenet_0.25_224
    inp = keras.Input((224, 224, 3))
    h = bb.preprocessing_layer()(inp)
    h = base(h, training=False)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    clf = keras.Model(inp, keras.layers.Dense(2, name="head")(h), name="ants.vs.bees")

    flat = Featuriser(bb, layer="conv_pw_11_relu", cache=False, progress=False)
    nested = Featuriser(clf, layer=f"{base.name}/conv_pw_11_relu", preprocess=None, cache=False,
                        progress=False)
    np.testing.assert_allclose(nested.transform(x), flat.transform(x), rtol=1e-4, atol=1e-4)
    # Dropping the head and the pooling of the classifier = the base's output, pooled.
    top = Featuriser(clf, drop_last=2, preprocess=None, cache=False, progress=False).fit()
    assert top.layer_path_ == base.name
    whole = Featuriser(bb, cache=False, progress=False)
    np.testing.assert_allclose(top.transform(x), whole.transform(x), rtol=1e-4, atol=1e-4)
    # The classifier's GAP layer is a vector: used as is.
    gap = Featuriser(clf, layer="gap", preprocess=None, cache=False, progress=False)
    np.testing.assert_allclose(gap.transform(x), whole.transform(x), rtol=1e-4, atol=1e-4)


def test_pooling_options():
    x = _images(3)
    model = _tiny()
    shapes = {p: Featuriser(model, pooling=p, cache=False, progress=False).transform(x).shape
              for p in ("avg", "max", "flatten")}
    assert shapes == {"avg": (3, 8), "max": (3, 8), "flatten": (3, 14 * 14 * 8)}
    maps = keras.Model(model.input, model.output).predict(x.astype("float32"), verbose=0)
    got = Featuriser(model, pooling="max", cache=False, progress=False).transform(x)
    np.testing.assert_allclose(got, maps.max(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    with pytest.raises(FeaturiserError, match="pooling"):
        Featuriser(model, pooling="median").fit()


# --------------------------------------------------------------------------- cache


def _cache_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.npz"))


def test_cache_hits_and_invalidates_exactly_when_it_should(tmp_path):
    model = _tiny()
    x = _images(6)
    kw = dict(cache=tmp_path, progress=False)
    first = Featuriser(model, layer="relu2", **kw).featurise(x)
    assert not first.from_cache and len(_cache_files(tmp_path)) == 1
    # Same model, layer, pooling, preprocessing, size and data: hit, whatever else changed.
    for f in (Featuriser(model, layer="relu2", **kw),
              Featuriser(model, layer="relu2", batch_size=2, **kw),
              Featuriser(model, layer=3, **kw)):  # the same layer by index
        again = f.featurise(x.copy(), y=np.arange(6))
        assert again.from_cache
        np.testing.assert_array_equal(again.features, first.features)
        assert list(again.labels) == list(range(6))
    # Each of these must miss.
    changed = x.copy()
    changed[2, 5, 5, 1] ^= 1  # one pixel, one bit
    misses = {
        "layer": (Featuriser(model, layer="relu1", **kw), x),
        "pooling": (Featuriser(model, layer="relu2", pooling="max", **kw), x),
        "preprocessing": (Featuriser(model, layer="relu2", preprocess=lambda b: b / 255.0, **kw), x),
        "data": (Featuriser(model, layer="relu2", **kw), changed),
        "fewer images": (Featuriser(model, layer="relu2", **kw), x[:5]),
    }
    for what, (f, data) in misses.items():
        assert not f.featurise(data).from_cache, what
    # Weights changed in place (fine-tuning): miss, and the new features differ.
    conv = model.get_layer("conv2")
    kernel = conv.kernel.numpy()
    conv.kernel.assign(kernel * 1.5)
    after = Featuriser(model, layer="relu2", **kw).featurise(x)
    assert not after.from_cache
    assert not np.allclose(after.features, first.features)
    conv.kernel.assign(kernel)  # back to the original weights: the first entry is valid again
    assert Featuriser(model, layer="relu2", **kw).featurise(x).from_cache
    # Same weights in another model object (architecture and bytes equal): hit.
    twin = _tiny()
    twin.set_weights(model.get_weights())
    assert Featuriser(twin, layer="relu2", **kw).featurise(x).from_cache
    # Files are written atomically: no temporary files left behind.
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_keys_input_size(tmp_path, few):
    x, _ = few
    kw = dict(cache=tmp_path, progress=False)
    a = Featuriser("mobilenet_0.25", input_size=224, **kw).featurise(x[:2])
    b = Featuriser("mobilenet_0.25", input_size=128, **kw).featurise(x[:2])
    assert not a.from_cache and not b.from_cache
    assert Featuriser("mobilenet_0.25", input_size=128, **kw).featurise(x[:2]).from_cache
    assert not np.allclose(a.features, b.features)


def test_cache_survives_damage_and_can_be_off(tmp_path):
    model = _tiny()
    x = _images(4)
    f = Featuriser(model, cache=tmp_path, progress=False)
    good = f.featurise(x).features
    (path,) = _cache_files(tmp_path)
    path.write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match="damaged feature cache"):
        redo = f.featurise(x)
    assert not redo.from_cache
    np.testing.assert_array_equal(redo.features, good)
    assert f.featurise(x).from_cache  # rewritten
    off = tmp_path / "off"
    Featuriser(model, cache=False, progress=False).featurise(x)
    assert not off.exists()
    assert len(_cache_files(tmp_path)) == 1


def test_folder_source_cache_follows_files(tmp_path, shared_assets):
    root = tmp_path / "imgs"
    src = shared_assets / "images" / "hymenoptera" / "val"
    for cls in ("ants", "bees"):
        (root / cls).mkdir(parents=True)
        for p in sorted((src / cls).iterdir())[:3]:
            shutil.copy(p, root / cls / p.name)
    (root / "ants" / "notes.txt").write_text("not an image")
    kw = dict(cache=tmp_path / "cache", progress=False)
    f = Featuriser("auto", **kw)
    with pytest.warns(UserWarning, match="Skipped 1 non-image"):
        fs = f.featurise(root)
    assert fs.features.shape == (6, 256)
    assert fs.class_names == ["ants", "bees"] and list(fs.labels) == [0, 0, 0, 1, 1, 1]
    assert [Path(s).name for s in fs.skipped] == ["notes.txt"]
    # The same images as an array give the same features.
    from tlwidgets.data import load_image_folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = load_image_folder(root, image_size=224)
    np.testing.assert_allclose(f.transform(arr.images), fs.features, rtol=1e-5, atol=1e-5)
    # A list of files: the same features, in the same order.
    np.testing.assert_allclose(f.transform(list(fs.paths)), fs.features, rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hit = f.featurise(root)
        assert hit.from_cache and list(hit.labels) == list(fs.labels)
        assert [Path(s).name for s in hit.skipped] == ["notes.txt"]
        # A file edited (new modification time) or added: recomputed.
        p = next((root / "bees").iterdir())
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
        assert not f.featurise(root).from_cache
        shutil.copy(p, root / "bees" / "copy.jpg")
        assert len(f.featurise(root)) == 7


# --------------------------------------------------------------------------- sources


def test_dataset_and_iterable_sources_match_arrays(tmp_path):
    import tensorflow as tf

    model = _tiny()
    x = _images(7)
    y = np.array([0, 1, 0, 1, 1, 0, 1])
    f = Featuriser(model, cache=tmp_path, batch_size=3, progress=False)
    ref = f.transform(x)
    unbatched = f.featurise(tf.data.Dataset.from_tensor_slices((x, y)))
    np.testing.assert_allclose(unbatched.features, ref, rtol=1e-6)
    assert list(unbatched.labels) == list(y)
    batched = f.featurise(tf.data.Dataset.from_tensor_slices(x).batch(4))
    np.testing.assert_allclose(batched.features, ref, rtol=1e-6)
    assert batched.labels is None
    assert f.featurise(tf.data.Dataset.from_tensor_slices((x, y))).from_cache
    # A generator of single images, and one of (batch, labels).
    gen = f.featurise(iter(list(x)))
    np.testing.assert_allclose(gen.features, ref, rtol=1e-6)
    assert not gen.from_cache  # an unnamed iterator cannot be fingerprinted
    pairs = f.featurise(((x[i:i + 2], y[i:i + 2]) for i in range(0, 7, 2)), cache_key="pairs-v1")
    np.testing.assert_allclose(pairs.features, ref, rtol=1e-6)
    assert list(pairs.labels) == list(y)
    assert f.featurise(iter([]), cache_key="pairs-v1").from_cache  # named: trusted


def test_streaming_reads_ahead_a_bounded_number_of_batches():
    model = _tiny()
    pulled = []

    def images():
        for i in range(200):
            pulled.append(i)
            yield _images(1, seed=i)[0]

    f = Featuriser(model, cache=False, batch_size=10, progress=False)
    seen = []
    from tlwidgets.featurize import extractor as fz

    original = fz._Extractor.__call__

    def spy(self, batch):
        seen.append(len(pulled))
        return original(self, batch)

    fz._Extractor.__call__ = spy
    try:
        out = f.transform(images())
    finally:
        fz._Extractor.__call__ = original
    assert out.shape == (200, 8)
    # When batch k is computed, at most a few batches beyond it have been read.
    assert max(s - 10 * (k + 1) for k, s in enumerate(seen)) <= 4 * 10


# --------------------------------------------------------------------------- bad input


def test_grey_rgba_and_mixed_sizes_are_converted_with_notices():
    model = _tiny()
    f = Featuriser(model, cache=False, progress=False)
    rgb = _images(3)
    grey = rgb[..., 0]
    with pytest.warns(UserWarning, match="Grey images were converted to RGB"):
        g = f.featurise(grey)
    np.testing.assert_allclose(g.features, f.transform(np.repeat(grey[..., None], 3, -1)),
                               rtol=1e-6)
    reset_notices()  # said once per process: the same notice again for (n, h, w, 1)
    with pytest.warns(UserWarning, match="Grey images"):
        f.transform(grey[..., None])
    with pytest.warns(UserWarning, match="alpha channel was dropped"):
        rgba = f.transform(np.concatenate([rgb, np.full((3, 32, 32, 1), 255, np.uint8)], -1))
    np.testing.assert_allclose(rgba, f.transform(rgb), rtol=1e-6)
    mixed = [_images(1, 40)[0], _images(1, 32)[0], _images(1, 20, seed=3)[0][..., 0]]
    with pytest.warns(UserWarning, match="different sizes were resized to 32x32"):
        out = f.featurise(mixed)
    assert out.features.shape == (3, 8)
    np.testing.assert_allclose(out.features[1], f.transform(mixed[1][None])[0], rtol=1e-6)
    with pytest.warns(UserWarning, match="resized to 32x32"):
        f.transform(_images(2, 48))
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        Featuriser(model, preprocess="mobilenet", cache=False,
                   progress=False).transform(rgb / 255.0)


def test_empty_input_says_what_to_do(tmp_path):
    f = Featuriser(_tiny(), cache=False, progress=False)
    for empty in (np.zeros((0, 32, 32, 3), np.uint8), [], iter([])):
        with pytest.raises(FeaturiserError, match="Nothing to featurise"):
            f.transform(empty)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.md").write_text("x")
    with pytest.raises(FeaturiserError, match="no image files"):
        f.transform(tmp_path)
    with pytest.raises(FeaturiserError, match="does not exist"):
        f.transform(tmp_path / "nope")


def test_unknown_layer_names_close_matches():
    f = Featuriser("auto", layer="conv_pw_13_reul", cache=False, progress=False)
    with pytest.raises(LayerNotFoundError, match="conv_pw_13_relu"):
        f.fit()
    with pytest.raises(FeaturiserError, match="drop_last=500"):
        Featuriser("auto", drop_last=500).fit()
    with pytest.raises(FeaturiserError, match="either layer= or drop_last="):
        Featuriser("auto", layer="conv1", drop_last=1).fit()


def test_layer_that_is_not_a_feature_map_is_explained():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    seq = keras.layers.Reshape((30 * 30, 4), name="as_sequence")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="dense3d")(seq))
    with pytest.raises(FeaturiserError, match=r"neither a feature map.*relu"):
        Featuriser(model, layer="as_sequence").fit()
    with pytest.raises(FeaturiserError, match="an image model"):
        Featuriser(keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)])).fit()
    with pytest.raises(FeaturiserError, match="weights= applies to named backbones"):
        Featuriser(model, weights="random").fit()


# --------------------------------------------------------------------------- several layers


def test_featurise_layers_share_the_cache_with_single_layers(tmp_path, few):
    x, _ = few
    f = Featuriser("auto", cache=tmp_path, progress=False)
    layers = candidate_layers(f.fit().model_, n=4)
    assert layers[-1] == "conv_pw_13_relu" and len(layers) == 4
    multi = featurise_layers(f, layers, x)
    assert list(multi.layers) == layers
    dims = [a.shape[1] for a in multi.layers.values()]
    assert dims == sorted(dims) and dims[0] == 8 and dims[-1] == 256
    single = Featuriser("auto", layer=layers[1], cache=tmp_path, progress=False).featurise(x)
    assert single.from_cache
    np.testing.assert_array_equal(single.features, multi.layers[layers[1]])
    # The default cut (the whole base) is the last candidate: also cached already.
    assert f.featurise(x).from_cache


def test_errors_in_a_streamed_source_reach_the_caller():
    def broken():
        yield _images(1)[0]
        yield _images(1, seed=1)[0]
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        Featuriser(_tiny(), cache=False, batch_size=1, progress=False).transform(broken())
