# %% [markdown]
# # Featurisers: a pretrained network as a feature extractor
#
# **Time:** about 30 minutes on a CPU, several of them waiting for the computer in
# the `workshop` profile (`smoke` runs the same code on a few dozen images in seconds).
#
# **You will:**
#
# * cut a pretrained image network at a chosen layer and use its output as features
#   for logistic regression and a linear SVM, in a scikit-learn pipeline;
# * measure **where to cut**: accuracy of a linear probe at each depth of the network;
# * measure **when a featuriser beats training from scratch**: learning curves as the
#   number of labelled images per class grows;
# * estimate transferability **before training** (LogME, a kNN score) and compare it
#   with the measured accuracy on a near domain (ants vs bees, photos like ImageNet's)
#   and a far one (chest X-rays);
# * explore all of it with a widget.
#
# The rule of thumb this notebook puts to the test: with fewer than about 1,000
# labelled images per class, remove the last layer or two of a large pretrained
# network and train a linear classifier on its output.

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter) or "smoke" (the tests)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, display

from tlwidgets.notebook import check_profile, record, report_run_cost

check_profile(profile)
T0 = time.perf_counter()

# What each profile runs: smoke (the tests) the same code on a few dozen images; quick
# fewer images, sizes and cut points; workshop everything. {} means every image.
PER_CLASS = {"smoke": dict(ants_train=12, ants_val=10, xray_train=12, xray_test=10),
             "quick": dict(ants_train=50, ants_val=40, xray_train=60, xray_test=50),
             "workshop": {}}[profile]
SIZES = {"smoke": (3, None), "quick": (5, 20, None),  # labelled images per class; None = all
         "workshop": (5, 10, 20, 50, None)}[profile]
REPEATS = {"smoke": 1, "quick": 1, "workshop": 2}[profile]  # random subsets per training size
CNN_IMAGE_PASSES = {"smoke": 200, "quick": 1000, "workshop": 3000}[profile]
N_LAYERS = {"smoke": 4, "quick": 6, "workshop": 10}[profile]  # cut points in the depth sweep
WIDGET_XRAYS_PER_CLASS = {"smoke": 12, "quick": 40, "workshop": 150}[profile]

# %% [markdown]
# ## 1. The backbone
#
# `Featuriser` loads a pretrained network through the course's asset layer, cuts
# it, and pools its feature maps into one vector per image. `"auto"` asks for the
# workshop network (MobileNetV2, ImageNet weights); where those weights are not
# available it uses a smaller real ImageNet network and says so. Read which one
# you got:

# %%
from tlwidgets.featurize import Featuriser

featuriser = Featuriser("auto").fit()   # the whole convolutional base, global average pooling
print(featuriser.describe())
record("backbone", featuriser.backbone_.describe(), show=False)
record("backbone_name", featuriser.backbone_.name)
record("backbone_is_standin", featuriser.backbone_.notice is not None)

# %% [markdown]
# ## 2. Two target tasks: near and far from ImageNet
#
# * **Ants vs bees** (the PyTorch tutorial's data): photos of insects, the kind of
#   picture ImageNet is full of. A *near* domain.
# * **PneumoniaMNIST**: 28x28 grey chest X-rays, normal vs pneumonia. Nothing like
#   ImageNet: a *far* domain. The featuriser converts grey to RGB and resizes to the
#   network's input size, batch by batch.

# %%
from tlwidgets.data import load_hymenoptera, load_pneumoniamnist

size = featuriser.input_size_
ants_train = load_hymenoptera("train", image_size=size, per_class=PER_CLASS.get("ants_train"))
ants_val = load_hymenoptera("val", image_size=size, per_class=PER_CLASS.get("ants_val"))
xray_train = load_pneumoniamnist("train", per_class=PER_CLASS.get("xray_train"))
xray_test = load_pneumoniamnist("test", per_class=PER_CLASS.get("xray_test"))
for name, d in [("ants/bees train", ants_train), ("ants/bees val", ants_val),
                ("X-ray train", xray_train), ("X-ray test", xray_test)]:
    counts = [int(c) for c in np.bincount(d.labels)]
    print(f"{name:16s} {len(d):5d} images {d.images.shape[1:]}, per class {dict(zip(d.class_names, counts, strict=True))}")
record("n_images", {"ants_train": len(ants_train), "ants_val": len(ants_val),
                    "xray_train": len(xray_train), "xray_test": len(xray_test)})

fig, axes = plt.subplots(1, 8, figsize=(10, 2.4))
picks = [(ants_train, i) for i in (0, 1, -2, -1)] + [(xray_train, i) for i in (0, 1, -2, -1)]
for ax, (d, i) in zip(axes, picks, strict=True):
    ax.imshow(d.images[i])
    ax.set_title(d.class_names[d.labels[i]], fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. The size argument
#
# A linear classifier on raw pixels has to learn one weight per pixel and colour
# channel from a handful of examples. The featuriser hands it a short vector
# instead, made by a network that has already learned what edges, textures and
# object parts look like:

# %%
raw_dim = int(np.prod(ants_train.images.shape[1:]))
feature_dim = featuriser.n_features_out_
print(f"raw image: {' x '.join(map(str, ants_train.images.shape[1:]))} = {raw_dim:,} numbers")
print(f"features:  {feature_dim:,} numbers ({raw_dim / feature_dim:,.0f} times fewer)")
print(f"labelled ants/bees images: {len(ants_train)}")
record("raw_dim", raw_dim)
record("feature_dim", feature_dim)

# %% [markdown]
# ## 4. Featurise, then logistic regression
#
# `Featuriser` is a scikit-learn transformer. Featurising streams the images
# through the network in batches (a progress bar shows it), and caches the
# features on disk: keyed by the weights, the cut layer, the pooling, the
# preprocessing, the input size and the images themselves.

# %% [markdown]
# First, what it does, in plain Keras: the network without its classifier (its
# convolutional *base*), frozen, called in inference mode, and its last feature map
# averaged into one vector per image. Here for the first 8 training images:

# %%
import keras

base = featuriser.backbone_.model      # a keras.Model: the base, without its classifier
base.trainable = False                 # a featuriser never changes the network
x = featuriser.backbone_.preprocess(ants_train.images[:8].astype("float32"))  # pixels to [-1, 1]
maps = base(x, training=False)         # inference mode: BatchNormalization uses its statistics
by_hand = keras.layers.GlobalAveragePooling2D()(maps).numpy()
print(f"feature maps {tuple(maps.shape)} -> features {by_hand.shape}")

# %% [markdown]
# `featuriser.featurise` does the same for any number of images, in batches, and
# caches the result:

# %%
from sklearn.linear_model import LogisticRegression

t = time.perf_counter()
train_fs = featuriser.featurise(ants_train.images)
val_fs = featuriser.featurise(ants_val.images)
first_run = time.perf_counter() - t
print(f"featurised {len(train_fs) + len(val_fs)} images in {first_run:.1f} s "
      f"(from cache: {train_fs.from_cache and val_fs.from_cache})")
same = bool(np.allclose(by_hand, train_fs.features[:8], atol=1e-4))
print(f"the same features as the plain Keras cell: {same}")
record("plain_keras_matches_featuriser", same)

clf = LogisticRegression(max_iter=3000).fit(train_fs.features, ants_train.labels)
acc_imagenet = clf.score(val_fs.features, ants_val.labels)

# The same network with random weights: is it the architecture or the pretraining?
random_featuriser = Featuriser("auto", weights="random").fit()
clf_r = LogisticRegression(max_iter=3000).fit(random_featuriser.transform(ants_train.images),
                                              ants_train.labels)
acc_random = clf_r.score(random_featuriser.transform(ants_val.images), ants_val.labels)
print(f"ants vs bees validation accuracy: ImageNet weights {acc_imagenet:.3f}, "
      f"random weights {acc_random:.3f}")
record("ants_accuracy_imagenet", acc_imagenet)
record("ants_accuracy_random", acc_random)

# %% [markdown]
# Run it again: the features come from the cache. A different layer, pooling,
# weight or image would miss it and recompute.

# %%
t = time.perf_counter()
again = featuriser.featurise(ants_train.images)
again_val = featuriser.featurise(ants_val.images)
second_run = time.perf_counter() - t
print(f"second run: {second_run * 1000:.0f} ms, from cache: {again.from_cache}, "
      f"{first_run / second_run:.0f} times faster than the first")
record("cache_hit", again.from_cache and again_val.from_cache)
record("cache_speedup", first_run / second_run)

# %% [markdown]
# As a pipeline, the featuriser is one step like any other (and `clone`,
# `cross_val_score` or `GridSearchCV` work on it):

# %%
from sklearn.pipeline import make_pipeline

pipe = make_pipeline(Featuriser("auto", drop_last=0), LogisticRegression(max_iter=3000))
pipe.fit(ants_train.images, ants_train.labels)
acc_pipeline = pipe.score(ants_val.images, ants_val.labels)
print(f"pipeline accuracy {acc_pipeline:.3f} (features from the cache: {pipe[0].last_run_.from_cache})")
record("pipeline_accuracy", acc_pipeline)

# %% [markdown]
# ## 5. Where to cut: a depth sweep
#
# Yosinski et al. (2014) asked how transferable the features of each layer are.
# Here is the featuriser version: cut at several depths (block outputs, evenly
# spaced from the first convolution to the last layer), pool, train a logistic
# regression, measure. All depths are featurised in one pass over the images.

# %%
from tlwidgets.curves import depth_sweep, plot_depth_sweep

sweep_near = depth_sweep(featuriser, ants_train.images, ants_train.labels,
                         ants_val.images, ants_val.labels, n_layers=N_LAYERS)
sweep_far = depth_sweep(featuriser, xray_train.images, xray_train.labels,
                        xray_test.images, xray_test.labels, n_layers=N_LAYERS)

fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
plot_depth_sweep(sweep_near, ax, label="ants vs bees (near)")
plot_depth_sweep(sweep_far, ax, label="chest X-rays (far)",
                 title="Linear probe accuracy by cut depth")
plt.show()

best_near = max(sweep_near, key=lambda r: r["accuracy"])
best_far = max(sweep_far, key=lambda r: r["accuracy"])
for name, rows, best in [("near", sweep_near, best_near), ("far", sweep_far, best_far)]:
    print(f"{name}: best cut {best['layer']} ({best['accuracy']:.3f}); "
          f"last layer {rows[-1]['accuracy']:.3f}; first {rows[0]['accuracy']:.3f}")
record("depth_sweep_near", [(r["layer"], round(r["accuracy"], 4)) for r in sweep_near])
record("depth_sweep_far", [(r["layer"], round(r["accuracy"], 4)) for r in sweep_far])
record("best_layer_near", best_near["layer"])
record("best_layer_far", best_far["layer"])

# %% [markdown]
# Read the two curves. Early layers compute generic, low-level features (edges,
# colours, simple textures); the last layers the most ImageNet-specific ones.
# For each domain: where does the curve peak, and how far below the peak does it
# end? A cut before the last layer pays off when the target is far from the
# pretraining photos and the last layers' specialisation is worth little there.

# %% [markdown]
# ## 6. Learning curves: featuriser vs training from scratch
#
# Four ways to learn from `k` labelled images per class, each measured on the same
# held-out test images, over `REPEATS` random subsets per size:
#
# * (a) logistic regression on raw pixels (32x32 colour for the insects, the native
#   28x28 for the X-rays);
# * (b) a small CNN trained from scratch (3 conv blocks; 64x64 insects, 28x28 X-rays);
# * (c) featuriser + logistic regression;
# * (d) featuriser + linear SVM.

# %%
from tlwidgets.curves import compare_learning_curves, pixel_features
from tlwidgets.learning_curves import plot_learning_curves, size_label, summarise_curves


def means(rows):  # {method: {"3": mean accuracy, ..., "all": ...}} from the curve's records
    return {m: {size_label(s): round(p["mean"], 4) for s, p in by_size.items()}
            for m, by_size in summarise_curves(rows).items()}


xray_train_fs = featuriser.featurise(xray_train.images)   # cached by the depth sweep
xray_test_fs = featuriser.featurise(xray_test.images)

def small(images, px):
    from PIL import Image
    return np.stack([np.asarray(Image.fromarray(im).resize((px, px), Image.BILINEAR)) for im in images])

t = time.perf_counter()
curves_near = compare_learning_curves(
    features=(train_fs.features, val_fs.features),
    pixels=(pixel_features(ants_train.images, 32), pixel_features(ants_val.images, 32)),
    images=(small(ants_train.images, 64), small(ants_val.images, 64)),
    y_train=ants_train.labels, y_test=ants_val.labels,
    sizes=SIZES, repeats=REPEATS, cnn_image_passes=CNN_IMAGE_PASSES)
curves_far = compare_learning_curves(
    features=(xray_train_fs.features, xray_test_fs.features),
    pixels=(pixel_features(xray_train.images), pixel_features(xray_test.images)),
    images=(xray_train.images, xray_test.images),
    y_train=xray_train.labels, y_test=xray_test.labels,
    sizes=SIZES, repeats=REPEATS, cnn_image_passes=CNN_IMAGE_PASSES)
print(f"learning curves: {time.perf_counter() - t:.0f} s")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
plot_learning_curves(curves_near, ax1, title="ants vs bees (near domain)", chance=0.5)
plot_learning_curves(curves_far, ax2, title="chest X-rays (far domain)", chance=0.5)
fig.tight_layout()
plt.show()

record("learning_curves_near", means(curves_near))
record("learning_curves_far", means(curves_far))


# %%
def table(rows):
    sizes = list(dict.fromkeys(size_label(r["size"]) for r in rows))
    head = "".join(f"<th>{s}/class</th>" for s in sizes)
    body = ""
    for method, accs in means(rows).items():
        body += f"<tr><td>{method}</td>" + "".join(f"<td>{accs.get(s, float('nan')):.3f}</td>" for s in sizes) + "</tr>"
    return f"<table><tr><th>method</th>{head}</tr>{body}</table>"

display(HTML("<h4>Ants vs bees</h4>" + table(curves_near) + "<h4>Chest X-rays</h4>" + table(curves_far)))

# %%
# The comparison in words, computed from the curves above.
for name, rows in [("ants vs bees", curves_near), ("chest X-rays", curves_far)]:
    acc = means(rows)
    smallest, largest = list(acc["featuriser + logistic regression"])[0], "all"
    feat = {k: max(acc["featuriser + logistic regression"][k], acc["featuriser + linear SVM"][k])
            for k in (smallest, largest)}
    base = {k: max(acc["pixels + logistic regression"][k], acc["small CNN from scratch"][k])
            for k in (smallest, largest)}
    print(f"{name}: with {smallest} images per class, featuriser {feat[smallest]:.3f} vs best baseline "
          f"{base[smallest]:.3f} (gap {feat[smallest] - base[smallest]:+.3f}); with all of them, "
          f"{feat[largest]:.3f} vs {base[largest]:.3f} (gap {feat[largest] - base[largest]:+.3f})")

# %% [markdown]
# What to look for: the gap between the featuriser lines and the baselines at the
# left end (few labels) and at the right end (every label), on each domain. Where
# the gap shrinks as labels grow, training on the task itself is catching up with
# features learned on photos; where the lines would cross is the measured version
# of the "about 1,000 images per class" rule of thumb for that task.

# %% [markdown]
# ## 7. Transferability before training
#
# Can we tell which features will work *before* training a classifier? Three
# scores computed from the training features alone:
#
# * **LogME** (You et al., 2021): the evidence of a Bayesian linear model on the
#   features, maximised over its two hyper-parameters; higher is better, and it is
#   only comparable between feature extractors on the **same** target data.
# * **kNN**: leave-one-out 5-nearest-neighbour accuracy on the training features.
# * **linear probe**: 5-fold cross-validated logistic regression on the training set.
#
# We score four feature extractors per domain (ImageNet or random weights, cut at
# the last layer or halfway) and set the scores next to the test accuracy
# actually measured.

# %%
from scipy.stats import spearmanr

from tlwidgets.featurize import featurise_layers
from tlwidgets.transferability import knn_score, linear_probe_score, logme

layers_all = [r["layer"] for r in sweep_near]
middle, last = layers_all[len(layers_all) // 2], layers_all[-1]
domains = {"near (ants/bees)": (ants_train, ants_val), "far (X-rays)": (xray_train, xray_test)}
rows = []
for domain, (tr, te) in domains.items():
    for weights, f in [("ImageNet", featuriser), ("random", random_featuriser)]:
        ftr = featurise_layers(f, [middle, last], tr.images).layers
        fte = featurise_layers(f, [middle, last], te.images).layers
        for layer in (middle, last):
            acc = LogisticRegression(max_iter=3000).fit(ftr[layer], tr.labels).score(fte[layer], te.labels)
            rows.append({"domain": domain, "weights": weights, "layer": layer,
                         "logme": logme(ftr[layer], tr.labels),
                         "knn": knn_score(ftr[layer], tr.labels),
                         "probe": linear_probe_score(ftr[layer], tr.labels),
                         "accuracy": acc})

html = "<table><tr><th>domain</th><th>weights</th><th>cut at</th><th>LogME</th><th>kNN</th><th>probe (CV)</th><th>test accuracy</th></tr>"
for r in rows:
    html += (f"<tr><td>{r['domain']}</td><td>{r['weights']}</td><td>{r['layer']}</td><td>{r['logme']:.3f}</td>"
             f"<td>{r['knn']:.3f}</td><td>{r['probe']:.3f}</td><td>{r['accuracy']:.3f}</td></tr>")
display(HTML(html + "</table>"))

agreement = {}
for domain in domains:
    rs = [r for r in rows if r["domain"] == domain]
    agreement[domain] = {s: float(spearmanr([r[s] for r in rs], [r["accuracy"] for r in rs]).statistic)
                         for s in ("logme", "knn", "probe")}
    print(f"{domain}: rank correlation with test accuracy "
          + ", ".join(f"{k} {v:+.2f}" for k, v in agreement[domain].items()))
record("transferability", rows)
record("rank_agreement", agreement)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for ax, domain in zip(axes, domains, strict=True):
    for r in (r for r in rows if r["domain"] == domain):  # marker: weights; colour: cut
        marker = "o" if r["weights"] == "ImageNet" else "x"
        ax.scatter(r["logme"], r["accuracy"], marker=marker, s=60,
                   color="#1f77b4" if r["layer"] == last else "#ff7f0e",
                   label=f"{r['weights']}, {r['layer']}")
    ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("LogME (training features)")
    ax.set_ylabel("measured test accuracy")
    ax.set_title(domain)
    ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# LogME needs no classifier training, only one SVD of the feature matrix. Compare
# its ordering of the four feature extractors with the measured accuracy (the rank
# correlations printed above), domain by domain. It is an estimate: the literature
# finds such rankings unstable (Agostinelli et al., 2022), so use it to shortlist
# backbones and cut points, then measure.

# %% [markdown]
# ## 8. Explore: backbone, cut layer, classifier, training size
#
# The widget below featurises every candidate layer once per backbone (cached),
# then refits the classifier on every change. The left plot is a 2D projection
# (PCA) of the training features; filled points are the images the classifier
# was trained on. The right plot is the learning curve of the current choice.
#
# Try: the random-weights backbone; an early cut; 5 images per class; the X-rays
# at several depths.

# %%
from tlwidgets.widgets.featuriser_explorer import FeaturiserExplorer
from tlwidgets.widgets.probe_lab import ProbeLab

xray_widget_train = xray_train.subset(WIDGET_XRAYS_PER_CLASS, seed=0)
labs = {
    "ants vs bees (near)": ProbeLab(ants_train.images, ants_train.labels, ants_val.images,
                                    ants_val.labels, class_names=ants_train.class_names,
                                    n_layers=N_LAYERS),
    "chest X-rays (far)": ProbeLab(xray_widget_train.images, xray_widget_train.labels,
                                   xray_test.images, xray_test.labels,
                                   class_names=xray_train.class_names, n_layers=N_LAYERS),
}
explorer = FeaturiserExplorer(labs, sizes=SIZES,
                              curve_repeats=REPEATS)
explorer

# %% [markdown]
# Everything the widget shows is also in its traits, so you can drive it from code:

# %%
first = explorer.accuracy
explorer.classifier = "linear SVM"
print(f"{explorer.layer}: logistic regression {first:.3f}, linear SVM {explorer.accuracy:.3f} "
      f"({explorer.n_train} training images, {explorer.feature_dim} features)")
record("widget_accuracy_lr", first)
record("widget_accuracy_svm", explorer.accuracy)
record("widget_updates", explorer.updates)
explorer.classifier = "logistic regression"

# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt. When you have an answer, call the
# self-check shown in the exercise (`check("01-1", ...)`): it says what is right, or what
# to change. A solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Global *max* pooling keeps the strongest response of each channel instead
# of the average. Does it help on ants vs bees? (One line changes.) Check your
# featuriser and its accuracy: `check("01-1", fmax, accuracy=acc_max)`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
fmax = Featuriser("auto", pooling="max")
acc_max = LogisticRegression(max_iter=3000).fit(fmax.transform(ants_train.images), ants_train.labels) \
    .score(fmax.transform(ants_val.images), ants_val.labels)
print(f"max pooling {acc_max:.3f} vs average pooling {acc_imagenet:.3f}")
check("01-1", fmax, accuracy=acc_max)

# %% [markdown]
# **2.** For the X-rays, build a pipeline that cuts at the best layer of the depth
# sweep and compare it with cutting at the last layer. Check the fitted pipeline:
# `check("01-2", pipeline, layer=best_far["layer"])`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
pipeline = make_pipeline(Featuriser("auto", layer=best_far["layer"]),
                         LogisticRegression(max_iter=3000))
acc_best = pipeline.fit(xray_train.images, xray_train.labels).score(xray_test.images,
                                                                    xray_test.labels)
print(f"cut at {best_far['layer']}: {acc_best:.3f}; at the last layer: {sweep_far[-1]['accuracy']:.3f}")
check("01-2", pipeline, layer=best_far["layer"])

# %% [markdown]
# **3.** Does LogME still rank ImageNet above random weights with only 10 training
# images per class? Compute both scores on `sub = ants_train.subset(10, seed=0)` and
# check them: `check("01-3", {"imagenet": ..., "random": ...}, subset=sub)`.

# %% tags=["attempt"]
# Your attempt at exercise 3

# %% tags=["solution"]
sub = ants_train.subset(10, seed=0)
scores = {"imagenet": logme(featuriser.transform(sub.images), sub.labels),
          "random": logme(random_featuriser.transform(sub.images), sub.labels)}
check("01-3", scores, subset=sub)

# %%
report_run_cost(T0)

# %% [markdown]
# ## Key points
#
# * A pretrained network minus its last layer(s) is a **featuriser**: a fixed
#   function from images to short vectors, fitted by nobody on your data. A linear
#   model on those vectors needs few labelled examples.
# * **Where to cut** is measurable: a linear probe per depth shows it. Late
#   layers suit tasks near the pretraining data; for far domains look at earlier cuts.
# * **Featuriser vs training from scratch** is measurable too: the learning
#   curves show how large the featuriser's advantage is on each task, and how it
#   changes with the number of labels and the distance from the pretraining data.
# * **LogME** and kNN scores estimate transferability without training a
#   classifier; they rank options, measured accuracy decides.
# * Featurise once, cache the features, then iterate on the classifier in
#   seconds: the cache is keyed by everything the features depend on.
