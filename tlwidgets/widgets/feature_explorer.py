"""FeatureExplorer: slide through a network's depth and watch edges become textures become parts.

A thin view over :class:`tlwidgets.activations.Activations` (maps),
:class:`tlwidgets.filter_viz.FilterVisualizer` (filters) and
:class:`tlwidgets.gradcam.GradCAM` (where a classifier looks). One compiled
forward pass per image serves every layer, so moving the slider only ranks,
downsamples and draws: the browser receives one small PNG per update.
"""

from __future__ import annotations

import hashlib
import html
import io
import time
from collections.abc import Callable, Mapping

import ipywidgets as widgets
import numpy as np
import traitlets

from tlwidgets.activations import Activations, grid_image, prepare_image, read_image_bytes
from tlwidgets.filter_viz import FilterVisualizer, montage
from tlwidgets.gradcam import GradCAM, overlay
from tlwidgets.layers import iter_layers

MODES = {"Activation maps": "activations", "Filters": "filters", "Grad-CAM": "gradcam"}


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def _device() -> str:
    import tensorflow as tf

    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


class FeatureExplorer(widgets.VBox):
    """Pick an image, a layer and a mode; a grid of the layer's strongest channels follows.

    Parameters
    ----------
    model : keras.Model or Backbone
        The convolutional network to explore (a ``Backbone`` brings its preprocessing).
    images : mapping of name -> image array
        The images to choose from; learners can add their own with the upload button.
    classifier : keras.Model, optional
        A classifier containing ``model`` (nested is fine), for the Grad-CAM mode.
    class_names : list of str, optional
        Names of the classifier's outputs.
    preprocess : callable, optional
        uint8 images -> model input (taken from the backbone when omitted).
    top, tile : channels shown and their tile size in pixels.
    filter_steps, filter_count : effort of the Filters mode (cached per layer).
    filter_model : keras.Model, optional
        The same network built at a smaller input size (e.g. 128 px), so the
        Filters mode optimises smaller images, faster; defaults to ``model``.
    value_range : the model's input range, for the Filters mode.
    """

    layer_index = traitlets.Int(0).tag(sync=True)
    mode = traitlets.Unicode("activations").tag(sync=True)
    image_name = traitlets.Unicode("").tag(sync=True)
    updates = traitlets.Int(0).tag(sync=True)
    grid_digest = traitlets.Unicode("").tag(sync=True)
    payload_bytes = traitlets.Int(0).tag(sync=True)
    compute_ms = traitlets.Float(0.0).tag(sync=True)
    render_ms = traitlets.Float(0.0).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    device = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model, images: Mapping[str, np.ndarray], *, classifier=None,
                 class_names: list[str] | None = None,
                 preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                 layers=None, top: int = 16, tile: int = 64, filter_steps: int = 48,
                 filter_count: int = 8, filter_model=None, value_range: tuple[float, float] = (-1.0, 1.0),
                 **kwargs):
        keras_model = getattr(model, "model", model)
        preprocess = preprocess or getattr(model, "preprocess", None)
        if not images:
            raise ValueError("Give at least one image to explore (a dict of name -> array).")
        self.acts = Activations(keras_model, layers, preprocess=preprocess)
        self.model = keras_model
        self.images = dict(images)
        self.classifier, self.class_names = classifier, class_names
        self.top, self.tile = top, tile
        self.filter_steps, self.filter_count = filter_steps, filter_count
        self.value_range = value_range
        self.filter_model = getattr(filter_model, "model", filter_model) or keras_model
        self._filters: dict[str, np.ndarray] = {}
        self._cams: dict[str, GradCAM] = {}
        self._last_work = ""

        n = len(self.acts.layers)
        self._image = widgets.Dropdown(options=list(self.images), description="Image",
                                       layout=widgets.Layout(width="max-content",
                                                             min_width="260px"))
        self._upload = widgets.FileUpload(accept="image/*", multiple=False,
                                          description="Your image")
        self._slider = widgets.IntSlider(0, 0, n - 1, description="Layer", readout=False,
                                         continuous_update=True,
                                         layout=widgets.Layout(width="420px"))
        self._slider.add_class("tlw-fe-layer")
        self._mode = widgets.ToggleButtons(options=list(MODES), value="Activation maps")
        # One box for every mode (maps, filters, Grad-CAM), so the page does not jump;
        # wide images (a row of filters) shrink to fit it, none is blown up.
        self._grid = widgets.Image(format="png", layout=widgets.Layout(
            width="960px", max_width="100%", height=f"{max(4 * tile, 240)}px",
            object_fit="scale-down", object_position="left top"))
        self._grid.add_class("tlw-fe-grid")
        self._info = widgets.HTML(layout=widgets.Layout(min_height="42px"))
        self._info.add_class("tlw-fe-info")
        self._status = widgets.HTML(layout=widgets.Layout(min_height="22px"))
        self._status.add_class("tlw-fe-status")

        traitlets.link((self._slider, "value"), (self, "layer_index"))
        self._mode.observe(lambda c: setattr(self, "mode", MODES[c["new"]]), "value")
        self._image.observe(lambda c: setattr(self, "image_name", c["new"]), "value")
        self._upload.observe(self._on_upload, "value")
        super().__init__([
            widgets.HBox([self._image, self._upload]),
            widgets.HBox([self._slider, self._mode]),
            self._info, self._grid, self._status,
        ], **kwargs)
        self.add_class("tlw-feature-explorer")
        self.device = _device()
        self.image_name = self._image.value  # draws the first grid

    # ------------------------------------------------------------------ events
    @traitlets.validate("layer_index")
    def _valid_layer(self, proposal):
        return int(np.clip(proposal["value"], 0, len(self.acts.layers) - 1))

    @traitlets.validate("mode")
    def _valid_mode(self, proposal):
        if proposal["value"] not in MODES.values():
            raise traitlets.TraitError(f"mode must be one of {list(MODES.values())}.")
        return proposal["value"]

    @traitlets.observe("layer_index", "mode", "image_name")
    def _changed(self, change):
        if change["name"] == "image_name" and change["new"] not in self.images:
            self.message = f"No image named {change['new']!r}."
            return
        if hasattr(self, "_grid"):  # not while the parent class sets up
            if change["name"] == "mode" or change["name"] == "image_name":
                self._say("")  # a status about the previous mode or image is stale now
            self.refresh()

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return
        item = files[0]
        name = item["name"] if isinstance(item, dict) else item.name
        content = item["content"] if isinstance(item, dict) else item.content
        try:
            self.add_image(f"upload: {name}", read_image_bytes(bytes(content)))
        except ValueError as exc:
            self._say(str(exc), error=True)

    def _say(self, text: str, *, error: bool = False, busy: bool = False) -> None:
        """One status line: errors in red, work in progress in grey, notices plain."""
        self.message = text
        style = "color:#cf222e" if error else "color:#666" if busy else ""
        self._status.value = (f"<span style='{style}'>{html.escape(text)}</span>" if text else "")

    def add_image(self, name: str, image: np.ndarray) -> None:
        """Add an image (any size, grey/RGB/RGBA) to the menu and show it."""
        prepared, notice = prepare_image(image, self.acts.image_size)
        self.images[name] = prepared
        self._image.options = list(self.images)
        self._image.value = name
        if notice:
            self._say(notice)

    @property
    def layer(self) -> str:
        return self.acts.layers[self.layer_index]

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        """Recompute and redraw for the current image, layer and mode."""
        t0 = time.perf_counter()
        image = self.images[self.image_name]
        slow = {"filters": self.layer not in self._filters,
                "gradcam": self.classifier is not None}.get(self.mode, False)
        if slow:  # seconds of work: say so before starting (the message reaches the page now)
            self._say({"filters": "Optimising images for this layer's channels…",
                       "gradcam": "Computing Grad-CAM for this layer…"}[self.mode], busy=True)
        try:
            if self.mode == "filters":
                grid, detail = self._filters_grid()
            elif self.mode == "gradcam":
                grid, detail = self._gradcam_grid(image)
            else:
                grid, detail = self._maps_grid(image)
        except ValueError as exc:  # explained to the learner, never a stuck widget
            self._say(str(exc), error=True)
            return
        if slow:
            self._say(self._last_work)
        t1 = time.perf_counter()
        png = _png(grid)
        self._grid.value = png
        self.render_ms = (time.perf_counter() - t1) * 1000
        self.compute_ms = (t1 - t0) * 1000
        self.payload_bytes = len(png)
        self.grid_digest = hashlib.blake2b(png, digest_size=8).hexdigest()
        self.updates += 1
        self._info.value = self._info_html(detail)
        if self.acts.notice and self.mode != "filters":
            self.message = self.acts.notice

    def _maps_grid(self, image):
        maps = self.acts.maps(image, self.layer, top=self.top, size=self.tile)
        grid = grid_image(maps.maps, ncols=8, tile=self.tile)
        return grid, (f"the {len(maps.channels)} strongest of {maps.map_shape[-1]} channels "
                      f"(ranked by mean activation): {', '.join(map(str, maps.channels[:8]))}…")

    def _filters_grid(self):
        path = self.layer
        if path not in self._filters:
            viz = FilterVisualizer(self.filter_model, path, value_range=self.value_range)
            start = viz.start_response()
            channels = np.argsort(-start)[: self.filter_count].tolist()
            result = viz.run(channels, steps=self.filter_steps)
            self._filters[path] = montage(result.images, ncols=min(8, len(channels)))
            self._last_work = (f"Filters: {self.filter_steps} steps in {result.seconds:.1f} s "
                               f"({result.steps_per_second:.1f} steps/s)")
        return self._filters[path], f"images optimised to excite {self.filter_count} channels"

    def _classifier_path(self, path: str) -> str:
        for info in iter_layers(self.classifier):
            if info.path == path or info.path.endswith("/" + path):
                return info.path
        raise ValueError(f"The classifier has no layer {path!r}.")

    def _gradcam_grid(self, image):
        if self.classifier is None:
            raise ValueError("Grad-CAM needs a classifier: pass classifier=<a model containing "
                             "this network> to FeatureExplorer.")
        path = self._classifier_path(self.layer)
        if path not in self._cams:
            self._cams[path] = GradCAM(self.classifier, path)
        prepared, _ = prepare_image(image, self.acts.image_size)
        result = self._cams[path](prepared)
        self._last_work = ""  # its time is in the info line's "ms compute"
        heat = result.heatmaps[0]
        grid = np.concatenate([prepared, overlay(prepared, heat)], axis=1)
        k = int(result.class_index[0])
        name = self.class_names[k] if self.class_names else f"class {k}"
        return grid, f"Grad-CAM for <b>{html.escape(name)}</b> (the predicted class)"

    def _info_html(self, detail: str) -> str:
        shape = self.acts.shapes[self.layer]
        rf = self.acts.receptive_fields[self.layer]
        size = self.acts.image_size[0]
        rf_text = "n/a" if rf is None else (
            f"{rf.size} px" + (" (more than the whole image)" if rf.size > size else ""))
        return (
            f"<div><b>{self.layer_index + 1}/{len(self.acts.layers)}: "
            f"<code>{html.escape(self.layer)}</code></b> · map {shape[0]}×{shape[1]}, "
            f"{shape[2]} channels · receptive field {rf_text}</div>"
            f"<div style='color:#666;font-size:0.9em'>{detail} · "
            f"{self.compute_ms:.0f} ms compute, {self.render_ms:.0f} ms render, "
            f"{self.payload_bytes / 1024:.0f} KB · on {self.device}</div>"
        )
