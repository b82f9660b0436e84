# %% [markdown]
# # Hierarchical features: edges, then textures, then parts
#
# **Time:** about 30 minutes (CPU). **You will:**
#
# * look inside a pretrained image network, layer by layer, with the **FeatureExplorer**;
# * measure how much of the image each layer can see (its *receptive field*);
# * make images that a channel responds to most (*feature visualisation*), for an
#   early, a middle and a late layer;
# * compare ImageNet weights with random ones and with weights fine-tuned on ants and bees,
#   and a natural photo with a chest X-ray, to see which layers are generic;
# * ask a classifier *where* it looks, with Grad-CAM and saliency maps.
#
# Transfer learning rests on one claim: the lower layers of a network trained on
# ImageNet compute generic features (edges, colours, simple textures) that are
# useful for almost any images, while the higher layers become specific to the
# task. This notebook lets you check the claim for yourself.

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter) or "smoke" (the tests)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import skimage.data

from tlwidgets.activations import Activations, prepare_image
from tlwidgets.backbones import load_backbone
from tlwidgets.data import load_hymenoptera, load_pneumoniamnist
from tlwidgets.filter_viz import FilterVisualizer, montage
from tlwidgets.notebook import check_profile, record

check_profile(profile)
# What each profile runs: smoke (the tests) tiny sizes and counts; quick a little less
# than the workshop.
SIZE = {"smoke": 128, "quick": 160, "workshop": 224}[profile]  # input size for maps, Grad-CAM
FILTER_SIZE = 128                     # optimised images are smaller: faster
FILTER_STEPS = {"smoke": 8, "quick": 32, "workshop": 64}[profile]  # gradient-ascent steps
N_FILTERS = {"smoke": 4, "quick": 9, "workshop": 16}[profile]      # filters per grid
FT_PER_CLASS = {"smoke": 4, "quick": 16, "workshop": 40}[profile]  # ants, bees to fine-tune on
FT_EPOCHS = {"smoke": 1, "quick": 1, "workshop": 2}[profile]
PER_DOMAIN = {"smoke": 2, "quick": 4, "workshop": 8}[profile]      # photos, X-rays compared
SALIENCY_SAMPLES = {"smoke": 0, "quick": 4, "workshop": 8}[profile]  # SmoothGrad samples
t_start = time.perf_counter()

# %% [markdown]
# ## 1. A pretrained network and some images
#
# `load_backbone("auto")` gives the course's workshop network, MobileNetV2, or
# a smaller stand-in when its weights are not on this machine (the notice says
# which). It comes without its classifier: just the convolutional layers.

# %%
backbone = load_backbone("auto", input_size=SIZE)
print(backbone.describe())
record("backbone", backbone.name)

ants_bees = load_hymenoptera("val", image_size=SIZE, per_class=2, seed=1)
xrays = load_pneumoniamnist("test", image_size=SIZE, per_class=2, seed=0)
images = {
    "astronaut (skimage)": skimage.data.astronaut(),
    "cat (skimage)": skimage.data.chelsea(),
    "coffee (skimage)": skimage.data.coffee(),
    "ant (hymenoptera)": ants_bees.images[ants_bees.labels == 0][0],
    "bee (hymenoptera)": ants_bees.images[ants_bees.labels == 1][0],
    "chest X-ray (PneumoniaMNIST)": xrays.images[0],
}
images = {name: prepare_image(img, SIZE)[0] for name, img in images.items()}
fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4))
for ax, (name, img) in zip(axes, images.items(), strict=True):
    ax.imshow(img)
    ax.set_title(name, fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. Depth and receptive field
#
# Each convolution looks at a small window of the layer below; a stride skips
# positions. Stacked, they let a unit deep in the network see a large part of
# the image: its **receptive field**. It is computed here from the architecture
# alone (kernel sizes, strides, dilations), for every layer we will look at.
#
# In plain Keras, the maps of a layer come from a second model that shares the
# network's layers and returns that layer's output; here for three layers at once:

# %%
import keras

net = backbone.model
probe = keras.Model(net.input, [net.layers[k].output for k in (3, len(net.layers) // 2, -1)])
x = backbone.preprocess(images["astronaut (skimage)"][None].astype("float32"))
for layer, maps in zip([net.layers[k] for k in (3, len(net.layers) // 2, -1)],
                       probe(x, training=False), strict=True):
    print(f"{layer.name:<20} maps {tuple(maps.shape)}")  # (images, height, width, channels)

# %% [markdown]
# `Activations` builds that model for every layer worth looking at, compiles it once,
# and knows each layer's receptive field:

# %%
acts = Activations.from_backbone(backbone)
print(f"{'#':>3}  {'layer':<28}{'map':>10}{'channels':>10}{'receptive field':>18}")
for i, path in enumerate(acts.layers):
    h, w, c = acts.shapes[path]
    rf = acts.receptive_fields[path]
    print(f"{i:>3}  {path:<28}{f'{h}x{w}':>10}{c:>10}{f'{rf.size} px':>18}")
record("n_layers", len(acts.layers))
record("rf_first", acts.receptive_fields[acts.layers[0]].size)
record("rf_last", acts.receptive_fields[acts.layers[-1]].size)
first_whole = next((i for i, p in enumerate(acts.layers)
                    if acts.receptive_fields[p].size >= SIZE), None)
record("first_layer_seeing_whole_image", first_whole)

# %% [markdown]
# ## 3. The FeatureExplorer
#
# Pick an image (or upload your own), then move the **Layer** slider. The grid
# shows the layer's strongest channels for that image, ranked by mean
# activation (bright = strong). One compiled forward pass computes every layer
# at once, so the slider only ranks, shrinks and draws. The line above the grid
# says how long that took and how many bytes went to your browser.
#
# * **Activation maps**: what each channel responds to, where.
# * **Filters**: images optimised to excite the layer's channels (section 4 explains; a few seconds per layer the first time).
# * **Grad-CAM**: where a classifier looks (it needs the classifier of section 6; come back then).
#
# Things to look for: early maps are sharp copies of the image's edges and
# colour blobs; deeper maps get coarser and respond to fewer, larger things.

# %%
from tlwidgets.widgets.feature_explorer import FeatureExplorer

small = backbone if SIZE == FILTER_SIZE else load_backbone("auto", input_size=FILTER_SIZE)
explorer = FeatureExplorer(backbone, images, filter_model=small,
                           filter_steps=FILTER_STEPS, filter_count=8)
explorer

# %%
# The explorer's state is plain Python: move it from code too.
explorer.layer_index = len(acts.layers) // 2
record("explorer_updates", explorer.updates)
record("explorer_payload_kb", round(explorer.payload_bytes / 1024, 1))
record("explorer_device", explorer.device)

# %% [markdown]
# ## 4. What does a channel look for?
#
# *Activation maximisation* starts from a grey image and changes it, by gradient
# ascent, until one channel's mean activation is as high as it gets. Done
# naively, the result is high-frequency noise that fools the network. Two
# tricks from Olah et al. ("Feature Visualization", Distill 2017) make it
# readable:
#
# * the image is described by its **Fourier spectrum**, scaled so that coarse and
#   fine patterns get an equal say, in a **decorrelated colour space**;
# * at every step the image is randomly **padded, scaled, rotated and shifted**,
#   so only patterns that survive small transformations grow.
#
# Below: one grid each for an early, a middle and a late layer.

# %%
# Depthwise layers filter each channel on its own; the 1x1 ("pointwise", "expand") layers
# mix channels and show richer patterns. Pick an early, a middle and a late one of those.
mixing = [p for p in acts.layers if "dw" not in p and "depthwise" not in p]
depths = {"early": acts.layers.index(mixing[1]),
          "middle": acts.layers.index(mixing[len(mixing) // 2]),
          "late": acts.layers.index(mixing[-2])}
grids, gains = {}, {}
for label, i in depths.items():
    viz = FilterVisualizer(small.model, acts.layers[i])
    result = viz.run(range(N_FILTERS), steps=FILTER_STEPS)
    grids[label] = montage(result.images, ncols=int(np.ceil(np.sqrt(N_FILTERS))))
    gains[label] = float(np.mean(result.end - result.start))
    print(f"{label:>6}: {viz.layer} (receptive field {acts.receptive_fields[acts.layers[i]].size} px), "
          f"{result.steps_per_second:.1f} steps/s, {result.seconds:.0f} s")
fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
for ax, (label, grid) in zip(axes, grids.items(), strict=True):
    ax.imshow(grid)
    ax.set_title(f"{label}: {acts.layers[depths[label]]}")
    ax.axis("off")
plt.show()
record("filter_steps_per_s", round(result.steps_per_second, 2))
record("filter_gain_mean", {k: round(v, 3) for k, v in gains.items()})

# %% [markdown]
# What to look for: early channels tend to want a colour, sometimes with fine
# stripes at one orientation; middle ones, repeating textures; late ones, larger
# structures (eyes, fur, leaves) that repeat across the image. A flat grey tile
# is a channel that the grey start does not reach (no gradient): a *dead* channel
# for this image. (Late layers' receptive fields exceed the image, so every unit
# sees nearly everything.)
#
# ## 5. Are lower layers generic? Two comparisons
#
# **ImageNet vs random weights.** The same architecture, untrained. Compare the
# strongest channel at each depth: which network's deep maps still pick out
# parts of the astronaut (face, flag, helmet), and which only blur the image?
# Whatever differs was learned, not built into the architecture.

# %%
random_bb = load_backbone(backbone.name, input_size=SIZE, weights="random")
random_acts = Activations.from_backbone(random_bb, acts.layers)
photo = images["astronaut (skimage)"]
rows = {"ImageNet": acts, "random": random_acts}
fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for r, (name, a) in enumerate(rows.items()):
    for c, (label, i) in enumerate(depths.items()):
        maps = a.maps(photo, i, top=1, size=None)
        axes[r, c].imshow(maps.maps[0], cmap="viridis")
        axes[r, c].set_title(f"{name}, {label}: strongest channel", fontsize=9)
        axes[r, c].axis("off")
plt.show()

# %% [markdown]
# **A natural photo vs a chest X-ray.** For each layer, compare which channels
# a set of photos uses with which channels a set of X-rays uses: the cosine
# similarity of their mean channel activations. Near 1: the layer uses its
# channels for X-rays as it does for photos (a generic layer); lower: the two
# domains light up different channels.

# %%
xray_set = load_pneumoniamnist("test", image_size=SIZE, per_class=PER_DOMAIN, seed=2).images
photo_set = load_hymenoptera("val", image_size=SIZE, per_class=PER_DOMAIN, seed=2).images

def channel_profile(a, batch, path):
    return np.mean([a.compute(img)[path].mean(axis=(0, 1)) for img in batch], axis=0)

similarity = []
for path in acts.layers:
    p, x = channel_profile(acts, photo_set, path), channel_profile(acts, xray_set, path)
    similarity.append(float(p @ x / (np.linalg.norm(p) * np.linalg.norm(x) + 1e-12)))
plt.figure(figsize=(8, 3))
plt.plot(similarity, marker="o")
plt.xlabel("layer (depth)")
plt.ylabel("photo vs X-ray similarity")
plt.ylim(0, 1.05)
plt.show()
third = max(1, len(similarity) // 3)
record("domain_similarity_early", round(float(np.mean(similarity[:third])), 3))
record("domain_similarity_late", round(float(np.mean(similarity[-third:])), 3))

fig, axes = plt.subplots(2, 8, figsize=(14, 4))
for r, img in enumerate([images["cat (skimage)"], images["chest X-ray (PneumoniaMNIST)"]]):
    maps = acts.maps(img, depths["early"], top=8, size=None)
    for c in range(8):
        axes[r, c].imshow(maps.maps[c], cmap="gray")
        axes[r, c].set_title(f"ch {maps.channels[c]}", fontsize=8)
        axes[r, c].axis("off")
plt.suptitle("The same early layer on a photo (top) and a chest X-ray (bottom)")
plt.show()

# %% [markdown]
# **Fine-tuned weights.** Now fine-tune a copy of the network on a few ants and
# bees (every layer trainable, small learning rate, BatchNormalization kept in
# inference mode, as notebook 02 explains), and measure how far each layer's
# weights moved, relative to their size.

# %%
ft_bb = load_backbone("auto", input_size=SIZE)
train = load_hymenoptera("train", image_size=SIZE, per_class=FT_PER_CLASS, seed=0)
inputs = keras.Input((SIZE, SIZE, 3))
x = ft_bb.preprocessing_layer()(inputs)
x = ft_bb.model(x, training=False)
x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
outputs = keras.layers.Dense(2, name="ants_bees")(x)
classifier = keras.Model(inputs, outputs, name="ants_vs_bees")
for layer in ft_bb.model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False  # inference mode: fit's training=True reaches the nested base
before = {w.path: w.numpy() for w in ft_bb.model.weights if w.path.endswith("kernel")}
# run_eagerly: for a few small batches, skipping the training graph's build (tens of
# seconds on a CPU) is faster than what the compiled graph would save.
classifier.compile(optimizer=keras.optimizers.Adam(1e-4),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"], run_eagerly=True)
history = classifier.fit(train.images.astype("float32"), train.labels, epochs=FT_EPOCHS,
                         batch_size=8, verbose=0)
change = [float(np.linalg.norm(w.numpy() - before[w.path]) / np.linalg.norm(before[w.path]))
          for w in ft_bb.model.weights if w.path in before]
plt.figure(figsize=(8, 3))
plt.plot(change, marker=".")
plt.xlabel("convolution (depth)")
plt.ylabel("relative weight change")
plt.show()
third = max(1, len(change) // 3)
record("ft_change_early", float(np.mean(change[:third])))
record("ft_change_late", float(np.mean(change[-third:])))
record("ft_train_accuracy", round(float(history.history["accuracy"][-1]), 3))

# The same layers, same photo: ImageNet weights (top) vs the fine-tuned copy (bottom).
ft_acts = Activations.from_backbone(ft_bb, acts.layers)
fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for r, (name, a) in enumerate({"ImageNet": acts, "fine-tuned": ft_acts}.items()):
    for c, (label, i) in enumerate(depths.items()):
        maps = a.maps(images["bee (hymenoptera)"], i, top=1, size=None)
        axes[r, c].imshow(maps.maps[0], cmap="viridis")
        axes[r, c].set_title(f"{name}, {label}: channel {maps.channels[0]}", fontsize=9)
        axes[r, c].axis("off")
plt.show()

# %% [markdown]
# Compare the two recorded numbers above: which third of the network moved
# more? (With a handful of images and epochs every change is small; the
# pattern across depth is what counts.)
#
# ## 6. Where does the classifier look? Grad-CAM and saliency
#
# **Grad-CAM** weights a layer's channels by how much they raise the class
# score and sums them: a coarse map of the regions that made the decision.
# **Saliency** is the gradient of the score with respect to each pixel. Both
# work here although the pretrained base is *nested* inside the classifier
# (the case that breaks many Keras tools): layers are named by their path.

# %%
from tlwidgets.gradcam import GradCAM, overlay, saliency
from tlwidgets.layers import iter_layers

last_conv = next(i.path for i in reversed(iter_layers(classifier))
                 if i.path.endswith(acts.layers[-1]))
cam = GradCAM(classifier, last_conv)
val = load_hymenoptera("val", image_size=SIZE, per_class=2, seed=3)
result = cam(val.images)
sal = saliency(classifier, val.images, result.class_index, samples=SALIENCY_SAMPLES)
fig, axes = plt.subplots(3, len(val.images), figsize=(3 * len(val.images), 9))
for j, img in enumerate(val.images):
    k = result.class_index[j]
    axes[0, j].imshow(img)
    axes[0, j].set_title(f"true {val.class_names[val.labels[j]]}, says {train.class_names[k]}", fontsize=9)
    axes[1, j].imshow(overlay(img, result.heatmaps[j]))
    axes[2, j].imshow(sal[j], cmap="magma")
    for r in range(3):
        axes[r, j].axis("off")
axes[1, 0].set_title("Grad-CAM", loc="left")
axes[2, 0].set_title("saliency", loc="left")
plt.show()
record("gradcam_layer", last_conv)
record("gradcam_shape", list(result.heatmaps.shape))

# The explorer can show Grad-CAM now: pick the mode above, or set it from code.
explorer.classifier, explorer.class_names = classifier, train.class_names
explorer.mode = "gradcam"
record("explorer_gradcam_payload_kb", round(explorer.payload_bytes / 1024, 1))
explorer.mode = "activations"

# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt. When you have an answer, call the
# self-check shown in the exercise (`check("03-1", ...)`): it says what is right, or what
# to change. A solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Which is the first layer whose receptive field covers the whole image? Find it
# in the table of section 2 and check its number (or name):
# `check("03-1", layer, activations=acts, image_size=SIZE)`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
sizes = [acts.receptive_fields[p].size for p in acts.layers]
layer = next((i for i, s in enumerate(sizes) if s >= SIZE), None)
print(layer, acts.layers[layer] if layer is not None else "no layer sees the whole image")
check("03-1", layer, activations=acts, image_size=SIZE)

# %% [markdown]
# **2.** Upload a photo of your own in the explorer (a face, a street, text). At which
# depth do the maps stop looking like the photo? Check the layer's name:
# `check("03-2", name, activations=acts, image_size=SIZE)`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
# In the explorer: upload the photo, then step through the depths. The answer depends on
# the photo; here, the middle of the network:
name = acts.layers[len(acts.layers) // 2]
check("03-2", name, activations=acts, image_size=SIZE)

# %% [markdown]
# **3.** Make filter grids for the *random* network (load it with
# `load_backbone(backbone.name, input_size=FILTER_SIZE, weights="random")`) at the same
# depths. What is missing? Check the visualiser's result:
# `check("03-3", result, backbone=random_small)`.

# %% tags=["attempt"]
# Your attempt at exercise 3

# %% tags=["solution"]
# Filters of the untrained network: no structure to find, only noise
random_small = load_backbone(backbone.name, input_size=FILTER_SIZE, weights="random")
viz = FilterVisualizer(random_small.model, acts.layers[depths["middle"]])
result = viz.run(range(N_FILTERS), steps=FILTER_STEPS)
plt.imshow(montage(result.images))
plt.axis("off")
plt.show()
check("03-3", result, backbone=random_small)

# %%
record("runtime_s", round(time.perf_counter() - t_start, 1))

# %% [markdown]
# ## Key points
#
# * A convolutional network computes a hierarchy: small receptive fields and
#   simple patterns (edges, colours) at the bottom, large receptive fields and
#   complex patterns at the top.
# * Feature visualisation needs priors (Fourier/decorrelated parameterisation,
#   transformation robustness) to show what a channel wants rather than noise.
# * Lower layers behave alike on very different images and move least when
#   fine-tuning: that is why reusing them works. Check the measured numbers
#   above for *this* network.
# * Grad-CAM and saliency show where a classifier looks; for a nested base, name
#   the layer by its path.
