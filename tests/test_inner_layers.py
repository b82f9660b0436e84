"""Inner layers of every keras.applications family, however the base is wrapped.

Each family (weights=None, small inputs) is built once per module and wrapped four
ways: the bare base, nested in a functional classifier, inside a ``Sequential``,
and the TensorFlow tutorial's way with the family's ``preprocess_input`` applied to
a ``keras.Input`` (raw graph operations in front of the base). Through every
wrapper, activations and Featuriser features at inner layers equal a plain Keras
cut of the bare base, Grad-CAM is finite and of the right shape, and the
receptive fields computed from the graph equal those measured from gradients.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlwidgets.activations import (
    Activations,
    default_layers,
)
from tlwidgets.featurize import Featuriser
from tlwidgets.gradcam import GradCAM
from tlwidgets.layers import activation_model, find_layer, is_squeeze_excite, iter_layers
from tlwidgets.receptive_fields import (
    ReceptiveField,
    measure_receptive_fields,
    receptive_fields,
    spatial_layers,
)

# family: (constructor, module with preprocess_input, input size)
FAMILIES = {
    "ConvNeXtTiny": ("convnext", 32),
    "DenseNet121": ("densenet", 32),
    "EfficientNetB0": ("efficientnet", 32),
    "EfficientNetV2B0": ("efficientnet_v2", 32),
    "InceptionResNetV2": ("inception_resnet_v2", 75),
    "InceptionV3": ("inception_v3", 75),
    "MobileNet": ("mobilenet", 32),
    "MobileNetV2": ("mobilenet_v2", 32),
    "MobileNetV3Small": ("mobilenet_v3", 32),
    "MobileNetV3Large": ("mobilenet_v3", 32),
    "NASNetMobile": ("nasnet", 32),
    "ResNet50": ("resnet", 32),
    "ResNet50V2": ("resnet_v2", 32),
    "VGG16": ("vgg16", 32),
    "Xception": ("xception", 71),
}
# The quick set covers every mechanism: raw preprocessing ops (caffe-style channel slices in
# ResNet50, hard-swish and squeeze-excite arithmetic in MobileNetV3), residual and
# depthwise bases, a plain chain. The rest (deeper graphs, nested Sequentials in
# ConvNeXt, whose grouped-convolution gradients are slow on CPU) run as slow tests.
QUICK = {"MobileNet", "MobileNetV2", "MobileNetV3Small", "ResNet50", "VGG16"}
SLOW = set(FAMILIES) - QUICK
WRAPPERS = ("bare", "functional", "sequential", "preprocessing")


class Family:
    """A base and its four wrappers, with the inner layers the tests look at."""

    def __init__(self, name: str):
        module, size = FAMILIES[name]
        keras.utils.set_random_seed(0)
        self.name, self.size = name, size
        self.base = getattr(keras.applications, name)(
            weights=None, include_top=False, input_shape=(size, size, 3))
        self.preprocess = getattr(keras.applications, module).preprocess_input
        shape = (size, size, 3)
        inp = keras.Input(shape)
        head = keras.layers.Dense(3, name="head")
        functional = keras.Model(
            inp, head(keras.layers.GlobalAveragePooling2D(name="gap")(self.base(inp))), name="clf")
        sequential = keras.Sequential([keras.Input(shape), self.base,
                                       keras.layers.GlobalAveragePooling2D(name="gap"),
                                       keras.layers.Dense(3, name="head")], name="seq")
        inp = keras.Input(shape)
        x = self.preprocess(inp)  # raw graph operations, not layers
        x = self.base(x, training=False)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        tutorial = keras.Model(inp, keras.layers.Dense(3, name="head")(x), name="tutorial")
        self.models = {"bare": self.base, "functional": functional, "sequential": sequential,
                       "preprocessing": tutorial}
        spatial = [i for i in spatial_layers(self.base) if not is_squeeze_excite(i)]
        picks = np.unique(np.linspace(0, len(spatial) - 1, 5).round().astype(int))
        self.layers = [spatial[i].path for i in picks]
        nested = [i.path for i in spatial if "/" in i.path]  # inside the base's own Sequentials
        self.layers += nested[:1] + nested[-1:]
        rng = np.random.default_rng(0)
        self.images = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)

    def path(self, wrapper: str, layer: str) -> str:
        return layer if wrapper == "bare" else f"{self.base.name}/{layer}"

    def model_input(self, wrapper: str) -> np.ndarray:
        """What the base sees: the preprocessing wrapper applies it inside the model."""
        if wrapper == "preprocessing":
            return self.images
        return np.asarray(self.preprocess(self.images.copy()), np.float32)

    def plain_cut(self, layer: str) -> np.ndarray:
        """``keras.Model(base.input, base.get_layer(name).output)`` on the preprocessed images;
        for a layer inside one of the base's Sequentials, that Sequential's own cut applied
        to the plain cut in front of it."""
        x = np.asarray(self.preprocess(self.images.copy()), np.float32)
        if "/" not in layer:
            return _run(keras.Model(self.base.input, self.base.get_layer(layer).output), x)
        outer, inner = layer.split("/", 1)
        seq = self.base.get_layer(outer)
        front = _run(keras.Model(self.base.input, seq.input), x)
        return _run(keras.Model(seq.inputs, seq.get_layer(inner).output), front)


def _run(model: keras.Model, x: np.ndarray):
    """The model called eagerly (no tracing: cheaper than ``predict`` for one small batch)."""
    out = model(x, training=False)
    return [np.asarray(o) for o in out] if isinstance(out, list | tuple) else np.asarray(out)


def _params():
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FAMILIES]


@pytest.fixture(scope="module", params=_params())
def fam(request) -> Family:
    """Each family built once; pytest groups the tests by family, one in memory at a time."""
    family = Family(request.param)
    yield family
    keras.backend.clear_session()


def _close(a, b, what):
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def test_activations_at_inner_layers_equal_a_plain_cut(fam):
    name = fam.name
    expected = {layer: fam.plain_cut(layer) for layer in fam.layers}
    for wrapper, model in fam.models.items():
        paths = [fam.path(wrapper, layer) for layer in fam.layers]
        got = _run(activation_model(model, paths), fam.model_input(wrapper))
        for layer, value in zip(fam.layers, got, strict=True):
            _close(value, expected[layer], f"{name} {wrapper} {layer}")


def test_featuriser_activations_and_gradcam_through_the_wrappers(fam):
    """Featuriser and Activations through every nested wrapper; Grad-CAM (a compiled
    gradient, the costly part) through the tutorial wrapper and one other, taking
    turns over the families so that each wrapper is covered."""
    name = fam.name
    layer = fam.layers[2]
    expected = fam.plain_cut(layer)
    turn = ("functional", "sequential")[list(FAMILIES).index(name) % 2]
    for wrapper in ("functional", "sequential", "preprocessing"):
        model, path, x = fam.models[wrapper], fam.path(wrapper, layer), fam.model_input(wrapper)
        feats = Featuriser(model, layer=path, preprocess=None, cache=False,
                           progress=False).transform(x)
        _close(feats, expected.mean(axis=(1, 2)), f"{name} {wrapper} Featuriser")
        acts = Activations(model, [path])
        assert acts.receptive_fields[path] == receptive_fields(fam.base)[layer]
        if wrapper in ("preprocessing", turn):
            cam = GradCAM(model, path)(x)
            assert cam.heatmaps.shape == (2, fam.size, fam.size)
            assert cam.coarse.shape == (2, *expected.shape[1:3])
            assert np.isfinite(cam.heatmaps).all() and np.isfinite(cam.scores).all()
            assert cam.heatmaps.max() > 0  # some region raises the class score
            _close(cam.scores, _run(model, x), f"{name} {wrapper} Grad-CAM scores")


def _agree(field: ReceptiveField, measured: dict, image: tuple[int, int]) -> bool:
    """The graph's field and the gradient's support agree: exactly where the field lies
    inside the image; where it reaches past a border (units see padding), the support
    lies within the field's clipped box and reaches the same unclipped sides."""
    box = field.box(measured["unit"], image)
    if box == measured["box"]:
        return True
    for (lo, hi), (mlo, mhi), (start, jump, size), i, n in zip(
            box, measured["box"], field.spans, measured["unit"], image, strict=True):
        free_lo, free_hi = start + i * jump >= 0, start + i * jump + size - 1 <= n - 1
        if not (lo <= mlo and mhi <= hi) or (free_lo and mlo != lo) or (free_hi and mhi != hi):
            return False
    return True


def test_receptive_fields_equal_the_gradient_measured_ones(fam):
    image = (fam.size, fam.size)
    spatial = [i.path for i in spatial_layers(fam.base)]
    base_fields = receptive_fields(fam.base)
    undefined = [p for p in spatial if base_fields[p] is None]
    # Undefined only after global pooling: the 1x1 squeeze-excite gates, saying why.
    assert all(is_squeeze_excite(find_layer(fam.base, p)) for p in undefined), undefined
    assert all("global pooling" in base_fields.why(p) for p in undefined)
    for wrapper, model in fam.models.items():
        fields = receptive_fields(model)
        for p in spatial:
            assert fields[fam.path(wrapper, p)] == base_fields[p], (wrapper, p)
    picks = [i.path for i in spatial_layers(fam.base)]
    picks = [picks[i] for i in np.unique(np.linspace(0, len(picks) - 1, 8).round().astype(int))]
    picks += [p for p in fam.layers if p not in picks]
    for wrapper in ("bare", "preprocessing"):
        model = fam.models[wrapper]
        paths = [fam.path(wrapper, p) for p in picks]
        measured = measure_receptive_fields(model, paths)
        fields = receptive_fields(model)
        for path in paths:
            if fields[path] is None:
                assert measured[path] is None, path
            else:
                assert measured[path] is not None, path
                assert _agree(fields[path], measured[path], image), (
                    path, fields[path], fields[path].box(measured[path]["unit"], image),
                    measured[path])


# --------------------------------------------------------------------------- custom layers, saving


@keras.saving.register_keras_serializable(package="tlwidgets_test_inner_layers")
class ConvBN(keras.layers.Layer):
    """A custom block: Conv2D (5x5, dilation 2) + BatchNormalization + ReLU."""

    def __init__(self, filters=6, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 5, dilation_rate=2, padding="same")
        self.bn = keras.layers.BatchNormalization()

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build((*input_shape[:-1], self.filters))

    def call(self, x, training=None):
        return keras.ops.relu(self.bn(self.conv(x), training=training))

    def get_config(self):
        return super().get_config() | {"filters": self.filters}


def _custom_model():
    keras.utils.set_random_seed(1)
    inp = keras.Input((48, 48, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)  # 3
    x = ConvBN(name="custom")(x)  # + 8 (a 9-pixel dilated kernel): 11
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c2")(x)  # 13, jump 2
    x = keras.layers.MaxPooling2D(2, name="pool")(x)  # 15, jump 4
    x = keras.layers.Conv2D(8, 3, padding="same", name="c3")(x)  # 23
    x = keras.layers.Conv2D(8, 3, padding="same", name="c4")(x)  # 31
    out = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inp, out, name="custom_net")


def test_custom_layer_and_saved_model(tmp_path):
    model = _custom_model()
    fields = receptive_fields(model)
    # The custom layer is measured, not taken for an identity (which would give 23 at c4).
    assert fields["custom"] == ReceptiveField(11, 1)
    assert fields["c4"] == ReceptiveField(31, 4)
    assert fields["gap"] is None and "global pooling" in fields.why("gap")
    assert fields["head"] is None
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(2).normal(size=(2, 48, 48, 3)).astype(np.float32)
    for m in (model, loaded):
        measured = measure_receptive_fields(m, ["c1", "custom", "c2", "pool", "c4"])
        rf = receptive_fields(m)
        for p, meas in measured.items():
            assert _agree(rf[p], meas, (48, 48)), (p, rf[p], meas)
        cut = _run(activation_model(m, ["custom", "c4"]), x)
        ref = _run(keras.Model(model.input, model.get_layer("c4").output), x)
        _close(cut[1], ref, "c4")
        cam = GradCAM(m, "custom")(x)
        assert cam.coarse.shape == (2, 48, 48) and np.isfinite(cam.heatmaps).all()
    assert receptive_fields(loaded) == fields


def test_default_layers_skip_squeeze_excite_gates():
    base = keras.applications.EfficientNetV2B0(weights=None, include_top=False,
                                               input_shape=(32, 32, 3))
    chosen = default_layers(base)
    gates = [i.path for i in iter_layers(base) if is_squeeze_excite(i)]
    assert gates and not set(chosen) & set(gates)
    assert all("_se_" in p for p in gates)  # every flagged layer is a squeeze-excite layer
    # Every SE block's reduce/expand convolutions are flagged; the gated products are kept.
    assert {p for p in gates if p.endswith(("se_reduce", "se_expand"))} == {
        i.path for i in iter_layers(base) if i.path.endswith(("se_reduce", "se_expand"))}
    assert not any(p.endswith(("se_reduce", "se_expand")) for p in chosen)
    assert any(p.endswith("project_bn") or p.endswith("activation") for p in chosen)
