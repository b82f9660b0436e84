# %% [markdown]
# # Multi-task learning: entity recognition helped by part-of-speech tagging
#
# **Time:** about 40 minutes (the experiment runs for several minutes on a CPU).
# **You will:**
#
# * read a real treebank (UD English-EWT, part-of-speech tags) and the named
#   entities annotated on the same sentences (Universal NER), and align them;
# * build one network for several tasks: a **shared trunk** (word embeddings and a
#   BiLSTM) with one small **head** per task, and see which weights are shared;
# * weigh the tasks' losses by hand, or let the model learn the weights;
# * measure when an auxiliary task (part of speech, next-word prediction) helps
#   named entity recognition (NER), and when it does not.
#
# So far the course transferred knowledge *in sequence*: pretrain, then reuse.
# Multi-task learning transfers it *at the same time*: the tasks train the shared
# layers together, so what part-of-speech tags teach them (this word is a proper
# noun) is there for the entity head to use.

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter) or "smoke" (the tests)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tlwidgets import multitask as mt
from tlwidgets.conll import load_ewt
from tlwidgets.learning_curves import summarise_curves
from tlwidgets.ner_metrics import entity_spans
from tlwidgets.notebook import check_profile, record

check_profile(profile)
# How much data and training the experiments use in each profile: smoke (the tests)
# a few steps on a few hundred sentences; quick fewer sizes, seeds and steps.
SETTINGS = {
    # n_train: sentences of the training pool (None: all); n_test: sentences scored;
    # sizes: NER-labelled sentences (None: all); steps: weight updates per model;
    # aux_size: size for the auxiliary-task comparison; n_extra_pos: POS-only sentences
    # from the UD train split; widget: (pool, test) sentences and epochs of the widget.
    "smoke": dict(n_train=300, n_test=200, sizes=[40, 120], seeds=[0], steps=10, aux_size=40,
                  n_extra_pos=200, widget=(120, 100, 1)),
    "quick": dict(n_train=2000, n_test=500, sizes=[100, 300, 1000], seeds=[0], steps=200,
                  aux_size=300, n_extra_pos=1000, widget=(400, 300, 8)),
    "workshop": dict(n_train=None, n_test=None, sizes=[100, 300, 1000, None], seeds=[0, 1, 2],
                     steps=300, aux_size=300, n_extra_pos=3000, widget=(800, 500, 8)),
}[profile]
N_TRAIN, N_TEST, SIZES, SEEDS = (SETTINGS[k] for k in ("n_train", "n_test", "sizes", "seeds"))
STEPS, AUX_SIZE, N_EXTRA_POS = SETTINGS["steps"], SETTINGS["aux_size"], SETTINGS["n_extra_pos"]
t_start = time.perf_counter()

# %% [markdown]
# ## 1. The data: two annotations of the same sentences
#
# [UD English-EWT](https://universaldependencies.org/treebanks/en_ewt/) tags every
# word of some sixteen thousand sentences of web English (blogs, reviews, e-mails, answers) with
# its universal part of speech (`NOUN`, `PROPN`, `VERB`, ...).
# [Universal NER](https://www.universalner.org/) annotated the same sentences with
# person, location and organisation entities in IOB2 tags: `B-X` begins an
# entity of type `X`, `I-X` continues it, `O` is outside any entity.
#
# The two projects ship separate files, and the sentences are **not in the same
# order**, so `load_ewt` joins them by each sentence's `# sent_id` and checks that
# the tokens agree word for word (it stops with the file and line of the first
# disagreement). The UD *train* split has part-of-speech tags only: no entity
# file comes with it here.
#
# **How we split the data.** The sentences with both annotations are the UD
# *dev* and *test* files. We **train on the dev file** (a random subset of its
# sentences keeps its entity labels, all keep their POS tags) and **score on the
# test file**, which no model sees during training; the cell below prints how
# many sentences each holds in this profile. There is
# no separate validation set: every model trains for the same fixed number of
# steps, so nothing is tuned on the test set.

# %%
pool = load_ewt("dev")[:N_TRAIN]
test = load_ewt("test")[:N_TEST]
pos_only = load_ewt("train")[:N_EXTRA_POS]   # POS tags, no entities

n_entities = sum(len(entity_spans(s.ner)) for s in pool)
record("n_train_pool", len(pool))
record("n_test", len(test))
record("n_pos_only", len(pos_only))
record("n_train_entities", n_entities)
record("aligned", all(len(s.tokens) == len(s.upos) == len(s.ner) for s in pool + test))

s = next(s for s in pool if len(entity_spans(s.ner)) >= 2 and len(s) <= 14)
print(s.sent_id, "from", s.source)
for token, pos, ner in zip(s.tokens, s.upos, s.ner, strict=True):
    print(f"{token:>14}  {pos:<6} {ner}")

# %% [markdown]
# Entities are rare: most tokens are `O`, and a sentence has few entities if any.
# That is why NER needs many labelled sentences, and why we hope that the cheaper,
# denser part-of-speech labels (every token has one) can help.
#
# ## 2. One trunk, several heads
#
# `build_multitask_model` builds *hard parameter sharing*:
#
# * the **trunk**: a word embedding (lower-cased words) that starts from pretrained
#   GloVe vectors (notebook 04) and stays frozen, a small embedding of each
#   word's capitalisation (`Paris`, `NASA`, `paris`), and a bidirectional LSTM that
#   gives each token a vector that depends on its whole sentence;
# * one **head** per task: a small dense layer and a softmax over that task's labels.
#
# The loss is a weighted sum of the tasks' losses. A token counts in a task's loss
# only if it has a label for that task, so a sentence without entity labels still
# trains the trunk through its POS tags. Padding tokens are masked out of both the
# loss and the right-to-left LSTM pass.
#
# The next-word task (`lm`) reads only the left-to-right half of the BiLSTM: the
# right-to-left half has already *read* the next word, so it would just copy it.

# %%
# Word ids: the words seen twice in the training text, plus every word of the
# training and test text that GloVe has a vector for (no label is read: a
# pretrained embedding covers those words anyway). See the note below.
words, glove, found = mt.pretrained_vocabulary(pool + pos_only, "glove-6b-50d-top20k", also=test)
print(f"{len(words):,} words; GloVe has vectors for {found:.1%} of them")
record("glove_coverage", found)
vocab, tasks, data = mt.prepare(pool, ["ner", "pos"], base=words)

# %% [markdown]
# In plain Keras, such a model is a functional graph with one input and one output per
# task; `compile` takes one loss per output and the weight of each (`loss_weights`):

# %%
import keras

tokens = keras.Input(shape=(None,), dtype="int32")
x = keras.layers.Embedding(len(vocab.words), glove.shape[1], mask_zero=True, trainable=False,
                           embeddings_initializer=keras.initializers.Constant(glove))(tokens)
x = keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True))(x)  # the trunk
heads = {t.name: keras.layers.Dense(t.n_classes, name=t.name)(x) for t in tasks}  # one per task
plain = keras.Model(tokens, heads)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss={t.name: loss for t in tasks},
              loss_weights={"ner": 1.0, "pos": 0.5})
print(f"plain Keras: {plain.count_params():,} weights; outputs: {', '.join(heads)}")
del plain

# %% [markdown]
# `mt.build_multitask_model` builds that graph (plus a capitalisation embedding and a
# small dense layer in each head), and its loss counts a token in a task only where the
# token has a label for that task, which `compile`'s per-output losses cannot express:

# %%
model = mt.build_multitask_model(vocab, tasks, embeddings=glove, train_embeddings=False)
arch = mt.architecture(model)
for name, params in arch["shared"]:
    print(f"shared   {name:<16} {params:>8,} weights")
for task, layers in arch["heads"].items():
    for name, params in layers:
        print(f"{task:<8} {name:<16} {params:>8,} weights")

record("trunk_weights", sum(p for _, p in arch["shared"]))
record("head_weights", {t: sum(p for _, p in layers) for t, layers in arch["heads"].items()})

# %% [markdown]
# Which weights does each task's loss reach? Take one batch, differentiate each
# task's loss on its own, and list the variables that get a gradient:

# %%
import tensorflow as tf

x, y, _ = next(mt.batches(data, 32))
reached = {}
for t in tasks:
    with tf.GradientTape() as tape:
        loss = model.task_losses(y, model(x, training=True))[t.name]
    grads = tape.gradient(loss, model.trainable_variables)
    reached[t.name] = {v.path for v, g in zip(model.trainable_variables, grads, strict=True) if g is not None}
    print(f"{t.name} reaches {len(reached[t.name])} variables")
both = reached["ner"] & reached["pos"]
print("reached by both:", sorted(both))
record("heads_share_trunk", both == {v.path for v in model.trunk.trainable_variables})
record("n_shared_variables", len(both))

# %% [markdown]
# Almost all the weights are in the trunk: the heads are tiny. Whatever the trunk
# learns for one task, every other task gets.
#
# **Why GloVe, and why frozen?** With a randomly initialised embedding, a word
# the model never saw in training has a meaningless vector, and with a few hundred
# training sentences many test words are unseen: for those the model can only guess from
# capitalisation. Pretrained vectors place *Seattle* near *Boston* whether or not
# either is in the training set. Freezing them keeps unseen words and seen words
# in the same space (fine-tuning would move only the seen ones), and makes each
# step cheaper. So this is transfer twice over: sequential (GloVe) and
# simultaneous (the shared trunk).
#
# ## 3. Try it: choose tasks, weigh them, train
#
# Tick the tasks, set each loss weight, and press **Train**. The left chart shows
# each task's training loss as batches go by; the right one shows the weight each
# loss gets. Things to try:
#
# * NER alone, then NER + part of speech: which one reaches the better NER F1?
# * Put the POS weight at 0: the POS head is still there but sends no gradient
#   into the trunk, so you get NER alone again.
# * Switch to **learned (uncertainty)** weighting (Kendall, Gal and Cipolla,
#   2018): each task gets a trainable log-variance *s*, and its loss counts
#   exp(-*s*) times, plus *s*/2 so that *s* cannot grow without limit. A task whose
#   loss stays high (next-word prediction!) is weighed down automatically.
#
# The widget trains on a subset of the training pool, so each click takes
# seconds, not minutes.

# %%
from tlwidgets.widgets.multitask import MultiTaskWidget

n_pool, n_test, widget_epochs = SETTINGS["widget"]
mt_widget = MultiTaskWidget(pool[:n_pool], test[:n_test], epochs=widget_epochs)
mt_widget

# %% [markdown]
# ## 4. The experiment: does POS help NER, and when?
#
# One widget run is one sample; differences of a few F1 points between runs can be
# chance (a different initialisation, a different order of batches). So we measure
# properly: for each number of NER-labelled training sentences, and for several
# random seeds, we train
#
# * **NER only**: a single-task model on the NER-labelled sentences;
# * **NER + POS**: the same network with a POS head, trained on the NER-labelled
#   sentences *plus* every other sentence of the pool with its POS tags only.
#
# Both train for the same number of weight updates, and each update sees the same
# number of NER-labelled sentences (one batch); the multi-task model's update also
# sees a batch from the rest of the pool, for their POS tags. (Had we simply mixed
# all sentences, a hundred NER sentences among two thousand would be seen twenty
# times less often than by the single-task model: the comparison would measure
# dilution, not sharing.) The price is computation: a multi-task step processes twice the
# sentences.
# We report the entity-level F1 on the test file (an entity counts only if its
# type and both boundaries are right, as in the CoNLL evaluation).

# %%
configs = {"NER only": ["ner"], "NER + POS": ["ner", "pos"]}

def show(row):
    print(f"{row['method']:<28} n_ner={row['n_train']:>5} seed={row['seed']}  "
          f"NER F1={row['score']:.3f}  ({row['seconds']:.0f} s)")

# One vocabulary (word ids, GloVe vectors) for every run, so models of the same
# shape are reused.
trunk = {"embeddings": glove, "train_embeddings": False}
models = {}
t0 = time.perf_counter()
rows = mt.compare_learning_curves(pool, test, sizes=SIZES, configs=configs, repeats=len(SEEDS),
                                  steps=STEPS, base=words, models=models, progress=show, **trunk)
curve = summarise_curves(rows)  # {config: {size: {"mean", "std", "n", "n_train"}}}
record("curve_seconds", round(time.perf_counter() - t0, 1))
record("curve", curve)

# %%
from tlwidgets.ticks import count_ticks

fig, ax = plt.subplots(figsize=(6, 3.5))
sizes = []
for name, by_n in curve.items():
    ns = [s["n_train"] for s in by_n.values()]  # None (all): its number of sentences
    sizes += ns
    ax.errorbar(ns, [s["mean"] for s in by_n.values()], yerr=[s["std"] for s in by_n.values()],
                marker="o", capsize=4, label=name)
ax.set_xscale("log")
count_ticks(ax.xaxis, sizes)  # a tick at each size measured, as plain numbers
ax.set_xlabel("NER-labelled training sentences")
ax.set_ylabel("test entity F1")
ax.set_title(f"mean and standard deviation over {len(SEEDS)} seed(s)")
ax.legend()
plt.show()

gain = {n: curve["NER + POS"][n]["mean"] - curve["NER only"][n]["mean"] for n in curve["NER only"]}
print("n_ner   NER only          NER + POS         difference")
for n, d in gain.items():
    a, b = curve["NER only"][n], curve["NER + POS"][n]
    noise = max(a["std"], b["std"])
    verdict = "within the seed-to-seed spread" if abs(d) <= noise else (
        "multi-task better" if d > 0 else "multi-task worse")
    print(f"{a['n_train']:>5}   {a['mean']:.3f} ± {a['std']:.3f}   {b['mean']:.3f} ± {b['std']:.3f}   "
          f"{d:+.3f}  ({verdict})")
record("multitask_gain", gain)

spread = {n: max(curve["NER only"][n]["std"], curve["NER + POS"][n]["std"]) for n in gain}
better = [n for n, d in gain.items() if d > spread[n]]
worse = [n for n, d in gain.items() if d < -spread[n]]
if not better and not worse:
    summary = "no size shows a difference larger than the seed-to-seed spread"
else:
    summary = (f"multi-task better at {better or 'no size'}, worse at {worse or 'no size'}; "
               "every other size within the spread")
print("Verdict over these seeds:", summary)
record("multitask_verdict", {"better": better, "worse": worse})

# %% [markdown]
# ### Reading the curve
#
# Look at the difference column and at the spread before you conclude anything.
# What the literature leads us to expect (and what you should check against your
# own numbers, not take on trust):
#
# * sharing helps most when the end task has **few labels** and the auxiliary task
#   has **many** on related inputs: POS tags say "proper noun" on exactly the
#   words that tend to be entities;
# * as the NER labels grow, the trunk learns what it needs from NER itself, and
#   the gain shrinks or vanishes;
# * sharing can **hurt** (*negative transfer*): the trunk has a fixed capacity,
#   and the auxiliary loss pulls it towards what POS needs (telling verbs from
#   auxiliaries, say), which NER does not care about. With equal weights and far
#   more POS tokens than entity tokens, POS dominates the gradient.
#
# **Why might POS add little here?** The trunk starts from GloVe vectors, which
# already group words by how they are used: proper nouns near proper nouns,
# verbs near verbs. Much of what POS tags would teach the shared layers is
# already in the embedding, together with the capitalisation feature. (In
# exercise 2 you train without GloVe, where the trunk starts from nothing.) And
# with equal loss weights and a POS label on every token, POS dominates the
# gradient of the shared LSTM. Whatever the verdict printed above, it is about
# this trunk, this budget and these seeds; a difference inside the spread is no
# evidence either way.
#
# One caveat of this protocol: every model gets the same budget of `STEPS`
# updates, so with more labelled sentences each one is seen fewer times. If F1
# does not rise with the number of NER sentences, the models are under-trained
# at the larger sizes: raise `STEPS` (and wait longer) before drawing conclusions
# there.
#
# ## 5. More auxiliary signal: POS-only sentences, next-word prediction, learned weights
#
# Three variations, at one size of NER data, with the same seeds:
#
# * **+ POS-only sentences** from the UD train split, which has no entity labels
#   at all: do POS labels on *other* sentences still help NER through the trunk?
# * **+ next word**: a language-model head that predicts each next word (from the
#   left-to-right LSTM states), a task that needs no labels at all;
# * **learned weights**: NER + POS with uncertainty weighting instead of 1 and 1.

# %%
aux_configs = {
    "NER + POS + POS-only sents": {"tasks": ["ner", "pos"], "extra": pos_only},
    "NER + POS + next word": ["ner", "pos", "lm"],
    "NER + POS, learned weights": {"tasks": ["ner", "pos"], "weighting": "uncertainty"},
}
t0 = time.perf_counter()
aux_rows = mt.compare_learning_curves(pool, test, sizes=[AUX_SIZE], configs=aux_configs,
                                      repeats=len(SEEDS), steps=STEPS, base=words, models=models,
                                      progress=show, **trunk)
aux = {name: by_n[AUX_SIZE] for name, by_n in summarise_curves(aux_rows).items()}
aux.update({name: curve[name][AUX_SIZE] for name in configs})
record("aux_seconds", round(time.perf_counter() - t0, 1))
record("aux", aux)
for name, s in sorted(aux.items(), key=lambda kv: -kv[1]["mean"]):
    print(f"{name:<28} NER F1 {s['mean']:.3f} ± {s['std']:.3f}  (n_ner={AUX_SIZE})")

# %% [markdown]
# Again, compare differences with the spread. The cost side is certain, though:
# each extra task adds computation to every step (the next-word head computes a
# softmax over thousands of words for every token), and the POS-only sentences
# dilute the NER labels in each batch. An auxiliary task earns its place only if
# its benefit to the end task is larger than the noise, on data like yours.

# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt. When you have an answer, call the
# self-check shown in the exercise (`check("05-1", ...)`): it says what is right, or what
# to change. A solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** In the widget, train NER + POS with the POS weight at 2, then at 0.2. Which
# task's loss falls faster in each case, and what happens to NER F1? Check your reading:
# `check("05-1", {2: "pos" or "ner", 0.2: "pos" or "ner"})`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
# In the widget: tick NER and POS, set the POS slider, press Train, read the charts and
# the NER F1 under them. A large POS weight makes the trunk serve POS first; a small one
# brings you back towards NER alone.
check("05-1", {2: "pos", 0.2: "ner"})

# %% [markdown]
# **2.** Train NER only at 300 labelled sentences with a *randomly initialised* word
# embedding instead of GloVe (`mt.prepare(sents, ["ner"])` builds a vocabulary of the
# training words only) and compare its test F1 with the curve above. How much of the
# score came from the pretrained vectors? Check the scores:
# `check("05-2", mt.evaluate(model, test_data), vocab=vocab)`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
sents = mt.subsample_labels(pool, "ner", min(300, len(pool)), seed=0)
vocab, tasks, data = mt.prepare(sents, ["ner"])   # training words only, random vectors
model = mt.build_multitask_model(vocab, tasks)
mt.train(model, data, steps=STEPS)
test_data = mt.encode(test, vocab, tasks, require_labels=False)
unknown = np.mean(np.concatenate(test_data.words) == mt.UNK)
print(f"{unknown:.0%} of test tokens are unknown words to this model")
check("05-2", mt.evaluate(model, test_data), vocab=vocab)

# %%
record("notebook_seconds", round(time.perf_counter() - t_start, 1))

# %% [markdown]
# ## Key points
#
# * Hard parameter sharing: one trunk, one small head per task; the heads share
#   the trunk's variables themselves, so every task's gradient trains them.
# * A task's loss only counts tokens labelled for that task; sentences labelled
#   for one task only still train the trunk.
# * Loss weights decide which task the trunk serves; weight 0 switches a task off.
#   Uncertainty weighting learns the weights, weighing down tasks with high loss.
# * Whether an auxiliary task helps is an empirical question: measure over several
#   seeds and labelled-data sizes, and read differences against the spread.
#   Sharing can hurt (negative transfer) as well as help.
