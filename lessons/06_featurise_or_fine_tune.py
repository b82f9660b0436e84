# %% [markdown]
# # Featurise or fine-tune? The 1,000-images rule, measured
#
# **Time:** about 40 minutes, 15 of them computing on a 2-core CPU in the `workshop`
# profile (`quick` is shorter and still makes the point; `smoke` is for the tests).
#
# **You will:**
#
# * write the three Keras moves this lesson is about: a frozen base (`base.trainable =
#   False`), LP-FT (a linear probe, then fine-tuning: two compiles), and unfreezing the top
#   blocks with BatchNormalization kept frozen;
# * measure learning curves from 5 to 1,000 labelled images per class for ten methods, from
#   raw pixels and HOG to full fine-tuning and training from scratch, on a near domain (cats
#   vs dogs) and a far one (chest X-rays), all scored on the same test images;
# * find, per domain, the size where fine-tuning overtakes the featuriser, with its spread,
#   or see that it does not in range;
# * look at what happens when transfer fails, and set our numbers next to published ones;
# * explore the curves with a widget, on your own images too.
#
# The rule of thumb under test: with fewer than about 1,000 labelled images per class, use
# the pretrained network as a featuriser; with more, fine-tune its upper layers.

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
# What each profile runs. Sizes are labelled images per class (None: all of them). The
# cheap methods (pixels, HOG, the featuriser) run at every size; the six trained networks
# (five Keras regimes and the small CNN) at KERAS_SIZES, with KERAS_REPEATS below 200.
CFG = {
    "smoke": dict(cats_train=6, cats_test=6, xray_train=6, xray_test=6, sizes=(3, None),
                  repeats=1, keras_sizes=(3,), keras_repeats=1,
                  cnn=dict(image_passes=40, min_epochs=1, reuse_graph=True),
                  regime=dict(image_passes=8, min_epochs=1, max_epochs=1, run_eagerly=True)),
    "quick": dict(cats_train=None, cats_test=150, xray_train=None, xray_test=None,
                  sizes=(5, 20, 200, 1000), repeats=2, keras_sizes=(20, 1000),
                  keras_repeats=2, cnn=dict(image_passes=1000, min_epochs=1, reuse_graph=True),
                  regime=dict(image_passes=320, min_epochs=1, max_epochs=16, batch_size=32)),
    "workshop": dict(cats_train=None, cats_test=250, xray_train=None, xray_test=None,
                     sizes=(5, 10, 20, 50, 100, 200, 500, 1000), repeats=3,
                     keras_sizes=(20, 200, 1000), keras_repeats=3,
                     cnn=dict(image_passes=1500, min_epochs=1, reuse_graph=True),
                     regime=dict(image_passes=320, min_epochs=1, max_epochs=16, batch_size=32)),
}[profile]
# The network's input per domain: photos at 96 px (at 128 the pretrained methods score a few
# points higher and the networks train over twice as long); the 28 px X-rays need only 64.
# One ImageNet weights file serves every size.
INPUT = {"cats vs dogs": 96, "chest X-rays": 64}
IMAGE_SIZE = INPUT["cats vs dogs"]
print(f"profile {profile}: sizes {CFG['sizes']} ({CFG['repeats']} repeat(s)); trained networks "
      f"at {CFG['keras_sizes']} ({CFG['keras_repeats']} repeat(s) below 200, one above)")

# %% [markdown]
# ## 1. The Keras lines first
#
# Everything below is built from three moves on a pretrained base. First the base: MobileNet
# (alpha 0.25) with ImageNet weights, without its classifier, at the photos' size.

# %%
from tlwidgets.backbones import load_backbone

backbone = load_backbone("mobilenet_0.25", input_size=IMAGE_SIZE)
print(backbone.describe())
record("backbone", backbone.name)

# %%
import keras

# Move 1: a frozen base and a new head (the featuriser, trained as a network).
base = keras.models.clone_model(backbone.model)
base.set_weights(backbone.model.get_weights())
base.trainable = False
inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
x = keras.layers.RandomFlip("horizontal")(inputs)       # augmentation reaches the raw image
x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)     # MobileNet's [-1, 1]
x = base(x, training=False)                              # BatchNormalization in inference mode
outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inputs, outputs)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
frozen_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)

# Move 2, LP-FT: after the linear probe (the head alone, as above), unfreeze everything
# and compile again with a learning rate a hundred times lower (Kumar et al., 2022).
base.trainable = True
for layer in base.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False   # keep the ImageNet statistics: small batches would wreck them
model.compile(optimizer=keras.optimizers.Adam(1e-5), loss=loss, metrics=["accuracy"])
all_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)

# Move 3: fine-tune only the top blocks: freeze every layer before the cut.
cut = [i for i, layer in enumerate(base.layers) if layer.name == "conv_dw_12"][0]
for layer in base.layers[:cut]:
    layer.trainable = False
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, metrics=["accuracy"])
top_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
print(f"trainable weights: frozen base {frozen_trainable:,}; top blocks {top_trainable:,}; "
      f"all layers (BatchNormalization frozen) {all_trainable:,}")
record("trainable_counts", {"frozen": frozen_trainable, "top": top_trainable,
                            "all": all_trainable})

# %% [markdown]
# `tlwidgets.transfer_regimes.KerasRegime` does the same with `training.build_classifier`
# and `freezing.unfreeze_top` / `unfreeze_all(train_bn=False)`, builds each model once and
# resets it to its starting weights for every training subset (building a training graph
# costs seconds; a reset costs milliseconds). LP-FT's linear probe is a logistic
# regression on the featuriser's features, copied into the head. The frozen base and the
# top blocks train only above a frozen part, so that part runs once per image
# (`tlwidgets.frozen_cache.bottom_output`, cached on disk) and every subset trains the
# top on its output: many times faster. The trade: augmentation cannot reach the raw image
# in every epoch. The frozen base keeps two fixed augmented copies of each image; the top
# blocks train without augmentation. LP-FT and "all layers" train the same layers at the
# same rate, so they share one compiled model (their heads start differently). "Same
# network, random init" trains BatchNormalization from scratch in a few dozen steps, too few
# for its moving statistics to follow: they are re-estimated on a batch of training images
# after training.

# %% [markdown]
# ## 2. Two domains, one test set each
#
# * **Cats vs dogs**: Kaggle photos, the TensorFlow tutorial's data family: 1,000 training
#   images per class. A *near* domain: ImageNet has many cats and dogs.
# * **PneumoniaMNIST**: 28 x 28 grey chest X-rays, normal vs pneumonia (1,214 training
#   images per class in the balanced set), upsampled to 64 px RGB for the network. A *far*
#   domain.
#
# Every method of a domain is scored on the same test images.

# %%
from tlwidgets.data import ImageSet, cats_vs_dogs_files, load_pneumoniamnist
from tlwidgets.images import load_image


def load_cats(split, per_class):
    files = cats_vs_dogs_files(split, per_class=per_class)
    images = np.stack([load_image(p, IMAGE_SIZE) for p in files.paths])
    return ImageSet(images, files.labels, files.class_names, [str(p) for p in files.paths],
                    notice=files.notice)


cats_train, cats_test = load_cats("train", CFG["cats_train"]), load_cats("test", CFG["cats_test"])
XRAY_SIZE = INPUT["chest X-rays"]
xray_train = load_pneumoniamnist("train", image_size=XRAY_SIZE, per_class=CFG["xray_train"])
xray_test = load_pneumoniamnist("test", image_size=XRAY_SIZE, per_class=CFG["xray_test"])
for name, d in [("cats vs dogs train", cats_train), ("cats vs dogs test", cats_test),
                ("X-ray train", xray_train), ("X-ray test", xray_test)]:
    counts = dict(zip(d.class_names, (int(c) for c in np.bincount(d.labels)), strict=True))
    print(f"{name:20s} {len(d):5d} images, per class {counts}")
record("n_images", {"cats_train": len(cats_train), "cats_test": len(cats_test),
                    "xray_train": len(xray_train), "xray_test": len(xray_test)})

# %% [markdown]
# What each method gets, computed once per domain: the featuriser's pooled features (cached
# on disk), raw pixels at 32 px, HOG features at 64 px, and 64 px images for the small CNN.

# %%
from tlwidgets import transfer_regimes as tr
from tlwidgets.featurize import Featuriser

# Per input size: the featuriser, the ImageNet base and the same network with random weights.
featurisers = {s: Featuriser("mobilenet_0.25", input_size=s, progress=False)
               for s in set(INPUT.values())}
bases = {s: (backbone if s == IMAGE_SIZE else load_backbone("mobilenet_0.25", input_size=s),
             load_backbone("mobilenet_0.25", input_size=s, weights="random"))
         for s in set(INPUT.values())}
featuriser = featurisers[IMAGE_SIZE]
t = time.perf_counter()
domains = {"cats vs dogs": tr.prepare_domain("cats vs dogs", cats_train, cats_test,
                                             featuriser=featuriser),
           "chest X-rays": tr.prepare_domain("chest X-rays", xray_train, xray_test,
                                             featuriser=featurisers[XRAY_SIZE])}
print(f"features, pixels and HOG for both domains: {time.perf_counter() - t:.0f} s; "
      f"{domains['cats vs dogs'].features_train.shape[1]} features, "
      f"{domains['cats vs dogs'].hog_train.shape[1]} HOG values per image")

# %% [markdown]
# ## 3. The curves
#
# Ten methods (`tr.METHODS`), through the same `learning_curve` as notebook 01: every
# method trains on the same random subsets of each size and is scored on the same test
# images. The cheap methods run at every size; the trained networks at `CFG["keras_sizes"]`.

# %%
from tlwidgets import training
from tlwidgets.learning_curves import plot_learning_curves, size_label, summarise_curves

TRAINED = [*tr.KERAS_REGIMES, "small CNN from scratch"]
CHEAP = [m for m in tr.METHODS if m not in TRAINED]
settings = tr.RegimeSettings(**CFG["regime"])
curves, regimes = {}, {}


def trained_curves(domain, methods, sizes, repeats):
    """The trained networks on ``domain`` (their compiled models kept in ``regimes``)."""
    pretrained, random_init = bases[domain.images_train.shape[1]]
    return tr.domain_curves(domain, methods, sizes, backbone=pretrained,
                            random_backbone=random_init, repeats=repeats, settings=settings,
                            cnn_options=CFG["cnn"], regimes=regimes.setdefault(domain.name, {}))


t = time.perf_counter()
for name, domain in domains.items():
    # sizes beyond the smallest class become "all" (cats: 1,000 is all; X-rays stop at 1,000)
    sizes = [s if s is None or s < domain.smallest_class else None for s in CFG["sizes"]]
    rows = tr.domain_curves(domain, CHEAP, list(dict.fromkeys(sizes)), repeats=CFG["repeats"])
    # one trained network at a time, freed before the next: six compiled networks side by
    # side would not fit a small machine (LP-FT and "all layers" share one, so go together)
    for methods in tr.one_network_at_a_time(TRAINED):
        # repeats below 200 per class, one run at 200 and above (every method: the same draws)
        for few, repeats in ((True, CFG["keras_repeats"]), (False, 1)):
            chosen = [s for s in CFG["keras_sizes"] if (s < 200) == few]
            if chosen:
                rows += trained_curves(domain, methods, chosen, repeats)
        regimes.get(name, {}).clear()
        training.free_memory()
    curves[name] = sorted(rows, key=lambda r: tr.METHODS.index(r["method"]))
curve_seconds = time.perf_counter() - t
print(f"learning curves: {curve_seconds:.0f} s")
record("curve_seconds", curve_seconds)

fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
for ax, (name, rows) in zip(axes, curves.items(), strict=True):
    plot_learning_curves(rows, ax, title=name, chance=0.5, metric="accuracy")
handles, labels = axes[0].get_legend_handles_labels()
for ax in axes:
    ax.get_legend().remove()  # one legend for both, below them, off the curves
fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9)
fig.tight_layout(rect=(0, 0.14, 1, 1))
plt.show()


# %%
def table(rows, metric="accuracy"):
    """Method x size: mean ± spread (sample standard deviation over repeats; one run: the
    score alone)."""
    summary = summarise_curves(rows, metric=metric)
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    sizes.sort(key=lambda s: np.inf if s is None else s)
    head = "".join(f"<th>{size_label(s)}</th>" for s in sizes)

    def cell(p):
        spread = f" ± {p['std']:.3f}" if p["n"] > 1 else ""
        return f"<td style='white-space:nowrap'>{p['mean']:.3f}{spread}</td>"

    body = ""
    for method in tr.METHODS:
        by = summary.get(method, {})
        cells = "".join(cell(by[s]) if s in by else "<td>·</td>" for s in sizes)
        body += f"<tr><td>{method}</td>{cells}</tr>"
    return f"<table><tr><th>{metric} (per class →)</th>{head}</tr>{body}</table>"


display(HTML("".join(f"<h4>{name}: test accuracy</h4>{table(rows)}"
                     for name, rows in curves.items())
             + f"<h4>chest X-rays: test ROC AUC</h4>{table(curves['chest X-rays'], 'roc_auc')}"))


def means(rows, metric="accuracy"):
    return {m: {size_label(s): round(p["mean"], 4) for s, p in by.items()}
            for m, by in summarise_curves(rows, metric=metric).items()}


record("curves", {name: means(rows) for name, rows in curves.items()})
record("xray_auc", means(curves["chest X-rays"], "roc_auc"))

# %% [markdown]
# ## 4. Where fine-tuning overtakes the featuriser
#
# `crossover` compares, at each size both were measured at, the best fine-tuning method
# (LP-FT, top blocks, all layers) with the best featuriser (logistic regression or linear
# SVM), and reports the first size from which fine-tuning stays ahead, repeat by repeat
# too. In words, computed from the numbers above:

# %%
crossings = {name: tr.crossover(rows)[name] for name, rows in curves.items()}
for result in crossings.values():
    print(tr.crossover_sentence(result))
record("crossover", {name: {"size": c["size"], "in_range": c["in_range"],
                            "per_repeat": c["per_repeat"]} for name, c in crossings.items()})

# %% [markdown]
# ## 5. When transfer fails
#
# On the X-rays, ImageNet's features are a weaker head start: compare the featuriser with
# the best method trained from scratch at each size, and the pretrained network fine-tuned
# with the same network trained from random weights. A pretrained start that ends *below*
# the random start is **negative transfer**; the random baseline is always on show.

# %%
for name, rows in curves.items():
    s = summarise_curves(rows, metric="accuracy")
    scratch = ("pixels + logistic regression", "HOG + linear SVM", "small CNN from scratch")
    for size in CFG["keras_sizes"]:
        size = size if size < domains[name].smallest_class else None
        feat = max(s[m][size]["mean"] for m in tr.FEATURISED if size in s.get(m, {}))
        base_ = max(s[m][size]["mean"] for m in scratch if size in s.get(m, {}))
        ft = s["fine-tune all layers"][size]["mean"]
        rnd = s["same network, random init"][size]["mean"]
        verdict = "negative transfer" if ft < rnd else "transfer helps"
        print(f"{name}, {size_label(size)}/class: featuriser {feat - base_:+.3f} vs the best from "
              f"scratch; fine-tuned from ImageNet {ft:.3f} vs from random weights {rnd:.3f} "
              f"({verdict})")

# %% [markdown]
# ### The remedy: pretrain on the unlabelled X-rays
#
# The source's remedy for a far domain: pretrain on the abundant *unlabelled* target images
# by learning to reconstruct them (a convolutional autoencoder, layer by layer as the source
# describes, and end to end for comparison), and combine that with the pretrained network
# (ImageNet weights further trained to reconstruct X-rays). `unlabelled_pretraining`
# builds each source from all training X-rays at their native 28 px, without a label, then
# uses each as a featuriser and as the start of fine-tuning at the same labelled sizes,
# next to the random start of the same architecture. Fine-tuning is LP-FT again: the head
# starts as a logistic regression on the start's features, then every layer trains at a
# low rate (a random head at that rate barely moves; at a high rate it wrecks MobileNet).

# %%
from tlwidgets import unlabelled_pretraining as up

xray_native = load_pneumoniamnist("train", rgb=False)  # every image, labels unused here
xray_native_test = load_pneumoniamnist("test", rgb=False, per_class=CFG["xray_test"])
t = time.perf_counter()
encoders = up.pretrain_sources(xray_native.images, profile=profile)
pre_rows = up.compare_pretraining(xray_native.images, xray_native.labels,
                                  xray_native_test.images, xray_native_test.labels,
                                  profile=profile, sources=encoders)
print(f"unlabelled pretraining and its curves: {time.perf_counter() - t:.0f} s")
fig, ax = plt.subplots(figsize=(11, 4.8))
plot_learning_curves(pre_rows, ax, title="chest X-rays: where the start comes from", chance=0.5)
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)  # 13 lines: beside
fig.tight_layout()
plt.show()
for r in up.negative_transfer(pre_rows):
    spread = f"spread ±{r['spread']:.3f}" if r["runs"] > 1 else "one run: no spread measured"
    print(f"{r['method']} at {size_label(r['size'])}/class: {r['mean']:.3f} vs its random "
          f"start {r['baseline_mean']:.3f} ({r['gap']:+.3f}, {spread})"
          + ("  <- negative transfer" if r["negative"] else ""))
training.free_memory()  # the pretraining's models, once scored
record("pretraining_curves", means(pre_rows))
record("negative_transfer", [(r["method"], size_label(r["size"]), r["negative"])
                             for r in up.negative_transfer(pre_rows)])

# %% [markdown]
# ## 6. Predicted before training, measured after
#
# LogME and the kNN score need only the labelled training features, no training: computed
# for every source before any labelled training, next to the accuracy measured with each
# source as a featuriser. Kendall's tau says whether a score ranks the sources as the
# measurements do (1: the same order).

# %%
# 200 labelled images per class (or fewer, in a small profile) are plenty for the scores.
largest = max(np.inf if s is None else s for s in up.settings(profile)["sizes"])
labelled = xray_native.subset(int(min(200, largest)), seed=0)
predicted = up.predicted_transferability({"pixels": None, **encoders}, labelled.images,
                                         labelled.labels)
pvm = up.predicted_vs_measured(predicted, pre_rows)
html = ("<table><tr><th>source</th><th>LogME (before training)</th><th>kNN (before)</th>"
        + "".join(f"<th>measured, {size_label(s)}/class</th>"
                  for s in pvm["table"][-1]["measured"]) + "</tr>")
for row in pvm["table"]:
    html += (f"<tr><td>{row['source']}</td><td>{row['logme']:.3f}</td><td>{row['knn']:.3f}</td>"
             + "".join(f"<td>{v:.3f}</td>" for v in row["measured"].values()) + "</tr>")
display(HTML(html + "</table>"))
for a in pvm["agreement"]:
    print(f"{a['score']} vs measured at {size_label(a['size'])}/class: Kendall tau "
          f"{a['kendall_tau']:+.2f}")
record("predicted", predicted)
record("predicted_vs_measured", pvm["agreement"])

# %% [markdown]
# ## 7. Our numbers next to published ones
#
# Quoted numbers are others', each in its own setting; ours are computed above. They are
# not the same experiment: read the settings before comparing.

# %%
ours = {name: summarise_curves(rows, metric="accuracy") for name, rows in curves.items()}


def ours_at(name, method):
    by = ours[name].get(method, {})
    size = max(by, key=lambda s: np.inf if s is None else s)
    return by[size]["mean"], size_label(size)


auc = summarise_curves(curves["chest X-rays"], metric="roc_auc")
best_auc = max((p["mean"], m) for m, by in auc.items() for p in by.values())
refs = [
    ("TensorFlow tutorial (quoted)", "MobileNetV2, 160 px, 2,000 training images "
     "(cats_and_dogs_filtered)", "frozen base ≈ 0.94–0.95; fine-tuned top ≈ 0.98"),
    ("Keras guide (quoted)", "Xception, cats vs dogs", "frozen 0.971; fine-tuned 0.985"),
    ("MedMNIST v2 (quoted)", "PneumoniaMNIST, trained from scratch on the full 4,708 "
     "images, official unbalanced 624-image test: not our setting",
     "ResNet-18 (28 px) ACC 0.854 AUC 0.944; ResNet-50 (224 px) ACC 0.884 AUC 0.962"),
    ("Kumar et al., ICLR 2022 (quoted)", "fine-tuning vs linear probing, distribution shift",
     "LP-FT beats full fine-tuning out of distribution and matches it in distribution"),
]
for name in domains:
    for method in ("featuriser + logistic regression", "frozen base + new head", "LP-FT",
                   "fine-tune all layers"):
        value, size = ours_at(name, method)
        refs.append((f"ours ({name})", f"MobileNet alpha 0.25, {INPUT[name]} px, {size} per class, "
                     f"balanced test of {len(domains[name].y_test)}", f"{method}: {value:.3f}"))
refs.append(("ours (chest X-rays)", "balanced fixture, AUC", f"best ROC AUC {best_auc[0]:.3f} "
             f"({best_auc[1]})"))
display(HTML("<table><tr><th>who</th><th>setting</th><th>accuracy</th></tr>"
             + "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in refs)
             + "</table>"))
record("best_xray_auc", best_auc[0])

# %% [markdown]
# ## 8. Explore: methods, domains, your own images
#
# Pick a domain and methods, press *Run* for methods not computed yet. *Add folder* takes a
# folder with one sub-folder per class (at least two classes, enough images for the
# smallest size); it is checked before anything is computed.

# %%
from tlwidgets.widgets.curve_explorer import CurveExplorer

SMALLEST = min(CFG["keras_sizes"])


def run_curves(domain, methods):
    return trained_curves(domain, methods, CFG["keras_sizes"], CFG["keras_repeats"])


explorer = CurveExplorer(domains, run_curves, known=curves,
                         prepare=lambda root: tr.prepare_folder(root, featuriser=featuriser,
                                                                smallest_size=SMALLEST))
explorer

# %%
explorer.add_folder("/no/such/folder")
print(f"a folder that is not there: {explorer.error}")
record("widget_error", explorer.error)
record("widget_crossover", explorer.crossover_text)

# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt; check it with the call shown. A
# solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Accuracy is not the only yardstick: on the X-rays, where does fine-tuning
# overtake the featuriser when you compare ROC AUC instead? Check your `crossover` result:
# `check("06-1", result, rows=curves["chest X-rays"])`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
result = tr.crossover(curves["chest X-rays"], metric="roc_auc")["chest X-rays"]
print(tr.crossover_sentence(result))
check("06-1", result, rows=curves["chest X-rays"])

# %% [markdown]
# **2.** Build a classifier on `backbone` whose top 2 blocks and head train while the rest
# of the base, and every BatchNormalization layer, stays frozen (`training.build_classifier`,
# `freezing.unfreeze_top`). Check it: `check("06-2", my_model)`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
from tlwidgets import freezing

my_model = training.build_classifier(backbone, 2)
freezing.unfreeze_top(my_model, 2, train_bn=False)
check("06-2", my_model)

# %%
report_run_cost(T0)

# %% [markdown]
# ## Key points
#
# * Three Keras moves cover the regimes: `base.trainable = False` with a new head; LP-FT as
#   two compiles (probe, then everything at a far lower rate); the top blocks unfrozen with
#   BatchNormalization frozen. Recompile after every change of `trainable`.
# * The "1,000 images per class" rule is a measurable crossover, and it depends on the
#   domain, the network and the budget: the sentences above say where it falls here, with
#   its spread over repeats.
# * Far from the pretraining data, a pretrained start can be little better than a random
#   one, or worse: always measure the random baseline.
# * Published numbers come with their own setting (network, resolution, data, test set);
#   compare settings before numbers.
