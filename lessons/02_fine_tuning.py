# %% [markdown]
# # Fine-tuning: which layers to unfreeze, and what goes wrong
#
# **Time:** about 45 minutes on a CPU (a few minutes on a GPU).
#
# **You will:**
# * see a pretrained network as a stack of blocks, and freeze or unfreeze them with the **LayerFreezer**;
# * train a new head on a frozen base, then fine-tune the top blocks with a low learning rate (two phases);
# * compare a featuriser, a frozen base, partial and full fine-tuning, and training from scratch, on ants vs bees;
# * break fine-tuning on purpose: BatchNormalization in training mode, a learning rate that is too high, too few images;
# * use layer-wise learning rates and a learning-rate finder, two things Keras 3 does not have built in.
#
# Notebook 01 used the network as a fixed featuriser. Here its weights move: with
# enough images, the upper layers adapt to the new task while the lower layers
# (edges, textures) stay as they are.

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter) or "smoke" (the tests)

# %%
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from tlwidgets import freezing, lr_finder, training
from tlwidgets.backbones import load_backbone
from tlwidgets.data import load_hymenoptera
from tlwidgets.featurize import Featuriser
from tlwidgets.notebook import check_profile, record
from tlwidgets.widgets.layer_freezer import LayerFreezer
from tlwidgets.widgets.lr_finder import lr_finder_chart
from tlwidgets.widgets.training_monitor import TrainingMonitor

check_profile(profile)
SETTINGS = {
    # smoke (the tests): a handful of images, one epoch, and eager execution (building
    # graphs would take longer than the few batches it runs); quick: 40 images per class
    # and fewer epochs; workshop: the whole data set, in batches of 16 (what each step
    # keeps for backpropagation grows with the batch: 16 keeps this notebook within a
    # small machine's memory). Phase 1 stops by itself once the validation loss stops
    # improving (head_epochs is a cap).
    "smoke":    dict(per_class=4, val_per_class=4, head_epochs=1, epochs=1, batch=8, top=2,
                     scratch_epochs=2, bn_batch=4, bn_epochs=1, finder_steps=6,
                     small_per_class=2, small_epochs=2, eager=True),
    "quick":    dict(per_class=40, val_per_class=40, head_epochs=20, epochs=3, batch=16, top=2,
                     scratch_epochs=10, bn_batch=4, bn_epochs=1, finder_steps=30,
                     small_per_class=5, small_epochs=8, eager=False),
    "workshop": dict(per_class=None, val_per_class=None, head_epochs=60, epochs=8, batch=16, top=3,
                     scratch_epochs=30, bn_batch=8, bn_epochs=3, finder_steps=60,
                     small_per_class=5, small_epochs=15, eager=False),
}[profile]
IMAGE_SIZE = 128
t_start = time.perf_counter()

backbone = load_backbone("auto", input_size=IMAGE_SIZE)
print(backbone.describe())
train = load_hymenoptera("train", image_size=IMAGE_SIZE, per_class=SETTINGS["per_class"])
val = load_hymenoptera("val", image_size=IMAGE_SIZE, per_class=SETTINGS["val_per_class"])
TRAIN, VAL = (train.images, train.labels), (val.images, val.labels)
record("backbone", backbone.name)
record("n_train", len(train))
n_val = record("n_val", len(val))

# %% [markdown]
# ## 1. The network as a stack of blocks
#
# A classifier for our task: the images go through augmentation (random flips,
# rotations, zooms, contrast; only while training), the backbone's
# preprocessing, a **copy** of the pretrained base, global average pooling and a
# new dense layer (the *head*) with one output per class.
#
# The LayerFreezer below draws the model as blocks: the base's blocks, then the
# head. Green blocks train, grey ones are frozen. Try it: unfreeze a
# block, press *freeze up to here* on another, expand a block (▸) to see its
# layers, paths and output shapes. The parameter count updates as you click: the
# widget changes the real Keras model.
#
# Notice the **BN inference** badges: BatchNormalization layers stay frozen even
# in a trainable block, unless you tick the box (section 5 shows why).
#
# First, the same classifier in plain Keras, as the Keras transfer-learning guide
# writes it (without the augmentation, on a copy of the base so that the helpers
# below start from the untouched backbone):

# %%
import keras  # after tlwidgets, which keeps TensorFlow's start-up logs quiet

base = keras.models.clone_model(backbone.model)    # the pretrained base, without a classifier
base.set_weights(backbone.model.get_weights())
inputs = keras.Input(backbone.input_shape)
x = backbone.preprocessing_layer()(inputs)         # pixels to [-1, 1]
x = base(x, training=False)                        # the guide's advice; section 5 shows its limit
x = keras.layers.GlobalAveragePooling2D()(x)
outputs = keras.layers.Dense(len(train.class_names))(x)  # the new head: one logit per class
plain = keras.Model(inputs, outputs)

# %% [markdown]
# `training.build_classifier` writes these lines (plus augmentation and dropout, and
# a copy of the base for each experiment), and the LayerFreezer shows the result:

# %% tags=["layer-freezer"]
model = training.build_classifier(backbone, len(train.class_names), augment=training.augmentation())
freezer = LayerFreezer(model)
freezer

# %%
rows = freezing.layer_table(model)
for row in rows[:4] + rows[-4:]:
    print(f"{row.path:45s} {row.type:22s} {str(row.output_shape):22s} {row.params:>9,} "
          f"{'trainable' if row.trainable else 'frozen'}")
print(freezing.param_counts(model))

# %% [markdown]
# ## 2. Baseline: the base as a featuriser
#
# The cheapest transfer: run the frozen base once, average its last feature map
# into one vector per image, and fit a logistic regression. The `Featuriser` of
# notebook 01 does the first two steps as a scikit-learn transformer (notebook 01
# explores it in depth).

# %%
featuriser = make_pipeline(Featuriser(backbone, pooling="avg", progress=False),
                           LogisticRegression(max_iter=2000))
featuriser.fit(train.images, train.labels)
featuriser_acc = record("featuriser_val_accuracy", featuriser.score(val.images, val.labels))

# %% [markdown]
# ## 3. Phase 1: a new head on the frozen base
#
# Only the head trains (the base's parameters are frozen). We stop when the
# validation loss stops improving and keep the best head. The monitor below draws
# the curves as training runs; every later run is added to it, so you can compare
# them side by side (choose runs in the list, switch the x axis to batches).
#
# In plain Keras, phase 1 is: freeze the base, compile, fit. `base.trainable = False`
# freezes every layer of the base (BatchNormalization included, which then runs in
# inference mode):

# %%
base.trainable = False
plain.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
print(f"phase 1 trains {sum(int(np.prod(v.shape)) for v in plain.trainable_weights):,} weights: "
      "the head's")
# plain.fit(train.images, train.labels, validation_data=VAL, epochs=...,
#           callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)])

# %% [markdown]
# `training.fine_tune(..., head_lr=1e-3, epochs=(head_epochs, 0))` runs exactly that fit, with early stopping
# on the validation loss, on the model the freezer shows.
#
# Each run keeps only its numbers (in the monitor and in the `*_run` results).
# The models of finished runs are dropped, and `training.free_memory()` frees what
# they held (compiled graphs, optimizer state), so that the many runs of this
# notebook fit in the memory of a small machine such as Binder's.

# %%
monitor = TrainingMonitor(["loss", "accuracy"])
monitor

# %%
freezer.freeze_up_to(-2)  # everything but the head (the last block: pooling, dropout, dense)
head_run = training.fine_tune(model, TRAIN, VAL, epochs=(SETTINGS["head_epochs"], 0),
                              batch_size=SETTINGS["batch"], run_eagerly=SETTINGS["eager"],
                              callbacks=[monitor.run("frozen base")])
freezer.refresh()
head_acc = record("frozen_head_val_accuracy", head_run.final("val_accuracy"))
record("frozen_head_trainable_params", head_run.head_counts.trainable)
phase1_weights = model.get_weights()
training.release(model)  # the freezer keeps the model; its compiled training graphs can go
training.free_memory()


# %% [markdown]
# ## 4. Phase 2: fine-tune the top blocks
#
# Now unfreeze the top blocks and train on with a **low** learning rate, so the
# pretrained features are adjusted rather than overwritten. Each experiment starts
# from the phase-1 head (`from_phase1()`), so the comparison is fair.
#
# In plain Keras: make the base trainable again, freeze all but its top layers, keep
# BatchNormalization frozen (section 5), and **compile again** with a low learning rate:
# a change of `trainable` takes effect only at the next `compile()`.

# %%
base.trainable = True
for layer in base.layers[:-20]:                    # all but the top 20 layers stay frozen
    layer.trainable = False
for layer in base.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False                    # BN stays in inference mode
plain.compile(optimizer=keras.optimizers.Adam(1e-5),  # 100x lower than phase 1
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
print(f"phase 2 trains {sum(int(np.prod(v.shape)) for v in plain.trainable_weights):,} weights")
del plain, base  # the helpers below build their own models

# %% [markdown]
# The helpers below do the same by blocks rather than layers: `freezing.unfreeze_top`
# unfreezes the top blocks (BatchNormalization stays frozen unless `train_bn=True`),
# and `training.fine_tune` recompiles with the learning rate you pass (`base_lr=1e-5`).
# The freezer below shows the top blocks unfrozen. Change the choice if you like:
# the next cell trains exactly what the freezer shows (`unfreeze=None`).

# %%
def from_phase1():
    m = training.build_classifier(backbone, len(train.class_names), augment=training.augmentation())
    m.set_weights(phase1_weights)
    return m

def phase2(name, build=from_phase1, data=TRAIN, **kwargs):
    # Fine-tune the model build() returns, keep the run's numbers, free the rest.
    kwargs = {"epochs": (0, SETTINGS["epochs"]), "batch_size": SETTINGS["batch"], "base_lr": 1e-5,
              "run_eagerly": SETTINGS["eager"], **kwargs}
    m = build()
    try:
        return training.fine_tune(m, data, VAL, callbacks=[monitor.run(name)], **kwargs)
    finally:
        training.release(m)  # drop its compiled graphs (a model that a widget shows stays usable)
        del m
        training.free_memory()

partial = from_phase1()
freezing.unfreeze_top(partial, SETTINGS["top"])
partial_freezer = LayerFreezer(partial)
partial_freezer

# %%
partial_run = phase2("top blocks", lambda: partial, unfreeze=None)
partial_acc = record("partial_val_accuracy", partial_run.final("val_accuracy"))
record("partial_trainable_params", partial_run.fine_tune_counts.trainable)

# %% [markdown]
# ### Full fine-tuning, and layer-wise learning rates
#
# Unfreezing everything gives the most freedom, and the most ways to forget. A
# middle way from fast.ai (*discriminative learning rates*) and d2l.ai: lower
# blocks get smaller learning rates. Keras 3 has no built-in way to do this;
# `training.layerwise_optimizer` scales each layer's step, and `layer_decay=0.5`
# halves the rate per block going down.

# %%
full_run = phase2("all layers", unfreeze="all")
full_acc = record("full_val_accuracy", full_run.final("val_accuracy"))
layerwise_run = phase2("all layers, layer-wise rates", unfreeze="all", layer_decay=0.5)
layerwise_acc = record("layerwise_val_accuracy", layerwise_run.final("val_accuracy"))
record("full_trainable_params", full_run.fine_tune_counts.trainable)

# %% [markdown]
# ### From scratch
#
# The same architecture with random weights, every layer trained (BatchNormalization
# too: without pretrained statistics it has to learn them). Same number of epochs
# as a long phase 1 (`scratch_epochs`).

# %%
def from_scratch():
    random_base = load_backbone(backbone.name, input_size=backbone.input_size, weights="random")
    return training.build_classifier(random_base, len(train.class_names),
                                     augment=training.augmentation())

scratch_run = phase2("from scratch", from_scratch, unfreeze="all", train_bn=True, base_lr=1e-3,
                     epochs=(0, SETTINGS["scratch_epochs"]))
scratch_acc = record("scratch_val_accuracy", scratch_run.final("val_accuracy"))

# %% [markdown]
# ## 5. Breaking it on purpose
#
# **BatchNormalization in training mode.** A BN layer normalises with the mean and
# variance of the current batch while training, and updates its *moving*
# statistics, which it then uses at inference. The pretrained moving statistics
# describe ImageNet features; small batches of ants and bees shift them, and the
# smaller the batch, the noisier its statistics. We compare BN frozen and BN in
# training mode at a small batch size (`bn_batch`), everything else equal. Keras
# runs a BN layer in inference mode when it is frozen (`trainable=False`), which
# is why the freezer keeps them frozen by default.
#
# Careful: the Keras guide's other advice, calling the base as
# `base(x, training=False)`, does not protect the statistics in Keras 3.15 once
# the base is nested in a functional model: `fit` passes `training=True` down to
# every nested call (`tlwidgets.freezing` explains; its tests check it).
#
# **A learning rate that is too high** on unfrozen layers: large steps overwrite
# the pretrained features before the head can use them.

# %%
small_batch = {"batch_size": SETTINGS["bn_batch"], "epochs": (0, SETTINGS["bn_epochs"])}
bn_frozen_run = phase2("all layers, small batch, BN frozen", unfreeze="all", **small_batch)
bn_frozen_acc = record("bn_frozen_small_batch_val_accuracy", bn_frozen_run.final("val_accuracy"))

bn_model = from_phase1()
bn_layers = [layer for layer in freezing.find_base(bn_model).layers if freezing.is_batchnorm(layer)]
moving_before = [layer.moving_mean.numpy().copy() for layer in bn_layers]
bn_run = phase2("all layers, small batch, BN training", lambda: bn_model, unfreeze="all",
                train_bn=True, **small_batch)
drift = np.mean([np.abs(layer.moving_mean.numpy() - before).mean()
                 for layer, before in zip(bn_layers, moving_before, strict=True)])
bn_model = bn_layers = None  # done with them
training.free_memory()
bn_acc = record("bn_training_val_accuracy", bn_run.final("val_accuracy"))
record("bn_moving_mean_drift", float(drift))

high_run = phase2("all layers, lr 1e-2", unfreeze="all", base_lr=1e-2)
high_lr_acc = record("high_lr_val_accuracy", high_run.final("val_accuracy"))
record("high_lr_val_loss", high_run.final("val_loss"))
full_val_loss = record("full_val_loss", full_run.final("val_loss"))

# %% [markdown]
# **Too few images.** Fine-tune everything on a handful of images per class: the
# network memorises them (training accuracy near 100%) while validation accuracy
# stays far lower: overfitting.

# %%
small = train.subset(SETTINGS["small_per_class"], seed=1)
small_run = phase2("all layers, few images", data=(small.images, small.labels), unfreeze="all",
                   base_lr=1e-4, epochs=(0, SETTINGS["small_epochs"]))
small_train_acc = record("small_train_accuracy", small_run.final("accuracy"))
small_val_acc = record("small_val_accuracy", small_run.final("val_accuracy"))
small_n = record("small_n_train", len(small))

# %% [markdown]
# ## 6. Finding a learning rate
#
# The learning-rate finder (fast.ai's `lr_find`; missing from Keras) trains a copy
# of the model for a few dozen batches while the learning rate grows
# exponentially, and records the loss. The loss falls, flattens, then blows up;
# a good rate sits a factor of ten below the lowest point. The model itself is
# not changed.

# %%
finder_model = from_phase1()
freezing.unfreeze_all(finder_model)
found = lr_finder.lr_find(finder_model, *TRAIN, start_lr=1e-6, end_lr=1.0,
                          steps=SETTINGS["finder_steps"], batch_size=SETTINGS["batch"],
                          run_eagerly=SETTINGS["eager"])
del finder_model  # lr_find trained a copy; neither is needed any more
training.free_memory()
print(found)
suggested_lr = record("lr_finder_suggestion", found.suggestion)
lr_finder_chart(found)

# %% [markdown]
# ## 7. All results

# %%
results = {
    "featuriser + logistic regression": featuriser_acc,
    "frozen base + new head": head_acc,
    "fine-tune top blocks": partial_acc,
    "fine-tune all layers": full_acc,
    "all layers, layer-wise rates": layerwise_acc,
    "from scratch": scratch_acc,
    "all layers, small batch, BN frozen": bn_frozen_acc,
    "all layers, small batch, BN training": bn_acc,
    "all layers, learning rate 1e-2": high_lr_acc,
}
for name, acc in results.items():
    print(f"{name:36s} {acc:6.1%}")
best_ft = max(partial_acc, full_acc, layerwise_acc)
record("best_fine_tuned_val_accuracy", best_ft)
record("fine_tuning_beats_frozen_head", best_ft > head_acc)
record("run_seconds", time.perf_counter() - t_start)


# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt. When you have an answer, call the
# self-check shown in the exercise (`check("02-1", ...)`): it says what is right, or what
# to change. A solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Start again from the phase-1 head (`m = from_phase1()`: the base is frozen) and
# unfreeze **only** the lowest block of the base, the stem
# (`freezing.blocks(m, freezing.find_base(m))[0]`). Fine-tune it with
# `phase2("stem only", lambda: m, unfreeze=None)` and compare with the top blocks. What
# does that say about which layers are specific to ImageNet? (Yosinski et al., 2014)
# Check your model: `check("02-1", m)`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
stem_model = from_phase1()
stem = freezing.blocks(stem_model, freezing.find_base(stem_model))[0]
freezing.set_blocks_trainable(stem_model, [stem.key], True)
print(freezing.param_counts(stem_model))
stem_run = phase2("stem only", lambda: stem_model, unfreeze=None)
print(f"stem only {stem_run.final('val_accuracy'):.1%} vs top blocks {partial_acc:.1%}")
check("02-1", stem_model)

# %% [markdown]
# **2.** fast.ai trains BatchNormalization even in frozen layer groups (its `train_bn`),
# the opposite of the Keras advice. Start from the phase-1 head again (`m = from_phase1()`),
# keep the base frozen but let its BatchNormalization layers train: find their paths in
# `freezing.layer_table(m)` (rows whose `bn_mode` is set) and pass them to
# `freezing.set_layers_trainable(m, {path: True, ...}, train_bn=True)`. Train with
# `phase2(name, lambda: m, unfreeze=None, base_lr=1e-4)` and compare with the frozen base's
# accuracy (`head_acc`). Does it help or hurt here, and why might batch size matter?
# Check your model: `check("02-2", m)`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
bn_only = from_phase1()
bn_paths = [row.path for row in freezing.layer_table(bn_only) if row.bn_mode is not None]
print(freezing.set_layers_trainable(bn_only, dict.fromkeys(bn_paths, True), train_bn=True))
bn_only_run = phase2("frozen base, BN training", lambda: bn_only, unfreeze=None, base_lr=1e-4)
print(f"BN training {bn_only_run.final('val_accuracy'):.1%} vs frozen base {head_acc:.1%}")
check("02-2", bn_only)

# %% [markdown]
# **3.** Use the learning-rate finder's suggestion for full fine-tuning. Is it better
# than the `1e-5` we used? Check the rate you used: `check("02-3", lr, finder=found)`.

# %% tags=["attempt"]
# Your attempt at exercise 3

# %% tags=["solution"]
lr = found.suggestion
finder_run = phase2("all layers, finder lr", unfreeze="all", base_lr=lr)
print(f"lr {lr:.2g}: {finder_run.final('val_accuracy'):.1%} vs lr 1e-05: {full_acc:.1%}")
check("02-3", lr, finder=found)

# %% [markdown]
# ## Key points
#
# * Freeze the base, train a new head to convergence, then unfreeze the top blocks with a learning rate 10-100x lower: two phases.
# * Keep BatchNormalization frozen (in inference mode) when fine-tuning; in Keras 3 set `trainable=False` on the BN layers, because `training=False` on a nested base is overridden by `fit`.
# * Changing `trainable` after `compile()` and `fit()` is silently ignored by Keras; compile again (`model.compile(...)`); the freezing helpers warn when that is needed, and `freezing.RecompileCheck()` refuses to start `fit` until you do.
# * A learning rate that suits a new head destroys pretrained features; the learning-rate finder and layer-wise rates help choose.
# * With very few images, fine-tuning memorises: compare training and validation accuracy, and prefer a featuriser or a frozen base.
