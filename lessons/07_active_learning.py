# %% [markdown]
# # Active learning on a featuriser: the model asks, you label
#
# **Time:** about 20 minutes (CPU). **You will:**
#
# * write the active-learning loop in a few lines of scikit-learn, on features that a
#   pretrained network computed once;
# * compare strategies that choose what to label next (random, uncertainty, diversity,
#   typicality, a hybrid) on cats vs dogs and on chest X-rays, with the spread over repeats;
# * measure how many labels each strategy needs to come within 95% and 98% of the accuracy
#   that *all* the labels give, and see the *cold start*: why uncertainty can be worse than
#   random for the first labels;
# * label photos yourself in a widget while the model asks, then export what you taught it
#   as one Keras file.
#
# Transfer learning makes labelling cheap to *use*: with a featuriser, a few labels already
# train a good classifier. Active learning makes labels cheap to *get*: the model tells you
# which images would teach it most. Together they are the course's last design method.

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter, still makes the point) or "smoke" (CI)

# %%
import numpy as np

from tlwidgets.notebook import check_profile, record

check_profile(profile)
CFG = {
    "smoke": dict(per_class=20, test_per_class=20, xray_per_class=30, repeats=1,
                  budgets=(4, 8, 16, 30), widget_batch=4),
    "quick": dict(per_class=300, test_per_class=300, xray_per_class=400, repeats=3,
                  budgets=(10, 20, 30, 40, 60, 80, 100, 150, 200), widget_batch=8),
    "workshop": dict(per_class=None, test_per_class=None, xray_per_class=None, repeats=5,
                     budgets=(10, 20, 30, 40, 60, 80, 100, 150, 200, 300, 500), widget_batch=8),
}[profile]

# %% [markdown]
# ## Features once
#
# The pool is every training photo of cats vs dogs, unlabelled as far as the learner knows;
# the test photos are held out to measure accuracy. A pretrained MobileNet turns each image
# into a vector once (cached on disk, so running this again is instant). From here on, a
# round of active learning is only a logistic regression on a few hundred vectors.

# %%
from tlwidgets.data import cats_vs_dogs_files, load_pneumoniamnist
from tlwidgets.featurize import Featuriser

featuriser = Featuriser("auto", input_size=160)
pool_files = cats_vs_dogs_files("train", per_class=CFG["per_class"])
test_files = cats_vs_dogs_files("test", per_class=CFG["test_per_class"])
X_pool, y_pool = featuriser.transform(pool_files.paths), pool_files.labels
X_test, y_test = featuriser.transform(test_files.paths), test_files.labels
classes = pool_files.class_names
record("pool_size", len(y_pool))
record("test_size", len(y_test))
print(f"pool: {len(y_pool):,} photos, test: {len(y_test):,}, {X_pool.shape[1]} features each")

# %% [markdown]
# ## The loop, in plain scikit-learn
#
# Start from a few random labels; then, round after round, fit the model, ask for the items
# it is least sure about (the smallest *margin* between its two likeliest classes), label
# them, and fit again. Here the labels come from the data set, playing the human.

# %%
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
labelled = list(rng.choice(len(y_pool), size=10, replace=False))  # a random start
for _ in range(5):
    model = LogisticRegression(max_iter=2000).fit(X_pool[labelled], y_pool[labelled])
    print(f"{len(labelled)} labels: test accuracy {model.score(X_test, y_test):.3f}")
    p = np.sort(model.predict_proba(X_pool), axis=1)
    margin = p[:, -1] - p[:, -2]
    margin[labelled] = np.inf  # never ask twice
    labelled += list(np.argsort(margin)[:10])  # "please label these ten"

# %% [markdown]
# `tlwidgets.active` holds the same loop (`ActiveLearner`: `query`, `teach`, `fit`) and the
# strategies, each a function `strategy(pool, n, rng) -> positions`:
#
# * **random**: the baseline every active-learning curve must show;
# * **margin** (uncertainty): the loop above. *Least confidence* and *entropy* are the other
#   classic uncertainty scores; with two classes all three rank the items the same way
#   (checked below), so this notebook runs margin only;
# * **k-center** (diversity, the core-set greedy): the item farthest from everything labelled;
# * **typical** (TypiClust, Hacohen et al. 2022): cluster the pool, take the most typical
#   point of each cluster that holds no label yet;
# * **typical + margin**, a hybrid: typical points until the model exists, then the most
#   uncertain item of each of *n* clusters of uncertain items (no batch spent on near-copies).

# %%
from tlwidgets.active import STRATEGIES, ActiveLearner, Pool

probe = ActiveLearner(X_pool, classes, seed=0)
start = probe.query(min(40, len(y_pool) // 2))
probe.teach(start, y_pool[start])
probe.fit()
unlabelled_proba = probe.model.predict_proba(probe.X[np.setdiff1d(np.arange(len(y_pool)), start)])
pool = Pool(probe.X, probe.labelled, unlabelled_proba)
n_check = min(10, len(pool.unlabelled))
same = {name: sorted(STRATEGIES[name](pool, n_check, np.random.default_rng(0)).tolist())
        for name in ("least confidence", "margin", "entropy")}
uncertainty_agree = same["least confidence"] == same["margin"] == same["entropy"]
record("uncertainty_scores_agree", uncertainty_agree)
print("least confidence, margin and entropy pick the same items:", uncertainty_agree)

# %% [markdown]
# ## The experiment: accuracy against labels
#
# `simulate` replays the loop for each strategy, with the data set's labels as the oracle,
# and scores the model on the test photos after each budget. Every strategy starts from
# nothing; the repeats differ in their seed.

# %%
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from tlwidgets.active import labels_to_reach, simulate
from tlwidgets.learning_curves import summarise_curves

RUN = ("random", "margin", "k-center", "typical", "typical + margin")


def experiment(X, y, Xt, yt, name):
    """Curves of every strategy, the all-labels accuracy, and the labels each needs."""
    budgets = [b for b in CFG["budgets"] if b <= len(y)]
    rows = simulate(X, y, Xt, yt, strategies=RUN, budgets=budgets, repeats=CFG["repeats"],
                    domain=name)
    everyone = ActiveLearner(X, sorted(set(y.tolist())), seed=0)
    everyone.teach(np.arange(len(y)), y)
    everyone.fit()
    full = everyone.score(Xt, yt)
    summary = summarise_curves(rows)
    need = {f: labels_to_reach(summary, f * full) for f in (0.95, 0.98)}
    return rows, summary, full, need, len(y)


def table(result, name):
    _, summary, full, need, n_labels = result
    budgets = list(next(iter(summary.values())))
    head = "".join(f"<th>{b}</th>" for b in budgets)
    body = "".join(
        f"<tr><td>{m}</td>" + "".join(f"<td>{p['mean']:.3f} ± {p['std']:.3f}</td>"
                                      for p in by.values())
        + "".join(f"<td>{need[f][m] if need[f][m] is not None else '&gt;' + str(budgets[-1])}</td>"
                  for f in (0.95, 0.98)) + "</tr>"
        for m, by in summary.items())
    return (f"<b>{name}</b>: test accuracy (mean ± spread over repeats) by number of labels; "
            f"all {n_labels:,} labels give "
            f"{full:.3f}<table><tr><th>strategy</th>{head}<th>labels to 95%</th>"
            f"<th>labels to 98%</th></tr>{body}</table>")


def plot(ax, summary, full, name):
    for m, by in summary.items():
        x = list(by)
        mean = np.array([p["mean"] for p in by.values()])
        std = np.array([p["std"] for p in by.values()])
        ax.plot(x, mean, marker="o", ls="--" if m == "random" else "-", label=m,
                color="#555" if m == "random" else None)
        ax.fill_between(x, mean - std, mean + std, alpha=0.15,
                        color="#555" if m == "random" else None)
    ax.axhline(0.95 * full, color="#999", lw=0.8, ls=":")
    ax.text(x[0], 0.95 * full, " 95% of all labels", va="bottom", fontsize=8, color="#666")
    ax.set_xscale("log")
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy")
    ax.set_title(name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


cats = experiment(X_pool, y_pool, X_test, y_test, "cats vs dogs")
display(HTML(table(cats, "cats vs dogs")))

# %% [markdown]
# The same on the far domain, chest X-rays (PneumoniaMNIST: normal vs pneumonia), where the
# ImageNet features are weaker (notebook 01 measured how much).

# %%
xray_train = load_pneumoniamnist("train", per_class=CFG["xray_per_class"])
xray_test = load_pneumoniamnist("test", per_class=CFG["test_per_class"])
X_xray, y_xray = featuriser.transform(xray_train.images), xray_train.labels
X_xray_test = featuriser.transform(xray_test.images)
xrays = experiment(X_xray, y_xray, X_xray_test, xray_test.labels, "chest X-rays")
display(HTML(table(xrays, "chest X-rays")))

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
plot(axes[0], cats[1], cats[2], "cats vs dogs")
plot(axes[1], xrays[1], xrays[2], "chest X-rays")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the numbers say
#
# The verdict below is computed from the tables: for each domain, the labels the best
# strategy needs to come within 95% (and 98%) of the all-labels accuracy, against random
# sampling's; and the cold start: each strategy minus random at the first budgets, marked
# worse or better where the gap exceeds twice its standard error over the repeats.

# %%
def verdict(summary, need, name):
    sentences = []
    for f in (0.95, 0.98):
        rand = need[f]["random"]
        got = {m: n for m, n in need[f].items() if n is not None and m != "random"}
        best = min(got, key=got.get) if got else None
        if best is None:
            sentences.append(f"{name}: no strategy reaches {f:.0%} of the all-labels accuracy "
                             "within these budgets" + ("" if rand is None else
                                                       f"; random does with {rand} labels") + ".")
        elif rand is None:
            sentences.append(f"{name}: {best} reaches {f:.0%} of the all-labels accuracy with "
                             f"{got[best]} labels; random sampling does not within the budgets.")
        elif got[best] >= rand:
            sentences.append(f"{name}: to reach {f:.0%} of the all-labels accuracy no strategy "
                             f"needs fewer labels than random ({rand}).")
        else:
            sentences.append(f"{name}: to reach {f:.0%} of the all-labels accuracy, {best} needs "
                             f"{got[best]} labels and random {rand} ({got[best] / rand:.2f}x).")
    # The cold start: each strategy against random over the first budgets, where a gap
    # counts when it exceeds twice the standard error of the difference of the means.
    first = list(next(iter(summary.values())))[:3]
    for m, by in summary.items():
        if m == "random":
            continue
        notes = []
        for b in first:
            a, r = by[b], summary["random"][b]
            gap = a["mean"] - r["mean"]
            se = np.sqrt(a["std"] ** 2 / a["n"] + r["std"] ** 2 / r["n"])
            notes.append(f"{b}: {gap:+.3f}" + (" (worse)" if gap < -2 * se else
                                                " (better)" if gap > 2 * se else ""))
        sentences.append(f"{m} minus random at the first budgets: " + ", ".join(notes) + ".")
    return sentences


for name, result in (("cats vs dogs", cats), ("chest X-rays", xrays)):
    for sentence in verdict(result[1], result[3], name):
        print(sentence)
    record(f"{name} labels to 95%", result[3][0.95])
    record(f"{name} labels to 98%", result[3][0.98])
    record(f"{name} all-labels accuracy", round(result[2], 4))
    record(f"{name} curves", {m: {str(b): round(p["mean"], 4) for b, p in by.items()}
                              for m, by in result[1].items()})

# %% [markdown]
# **Reading it.** Uncertainty sampling needs a model, and a model trained on a handful of
# labels is a poor judge of what it does not know: its first questions can be worse than
# random ones (the *cold start*, reported by Chen et al. 2022/2023 on medical images; Munjal
# et al., CVPR 2022, found little advantage for active learning under strong
# regularisation, which is why the random curve is always drawn). Typical points cover the
# pool's clusters before any model exists, which is how the hybrid starts.

# %% [markdown]
# ## Label them yourself
#
# The widget shows the batch the strategy picks. Click a class under each photo (or press
# 1 and 2, arrows to move); when the batch is complete the model refits, shows its test
# accuracy, and asks again. **Label for me** fills in the true labels, one batch per click.
# `labeller.save("labels.csv")` keeps your labels; `labeller.load(...)` brings them back.

# %%
from tlwidgets.widgets.labeller import Labeller

learner = ActiveLearner(X_pool, classes, strategy="typical + margin", seed=0)
labeller = Labeller(learner, pool_files.paths, true_labels=[classes[i] for i in y_pool],
                    held_out=(X_test, [classes[i] for i in y_test]),
                    batch_size=CFG["widget_batch"])
labeller

# %% [markdown]
# The next cell plays the learner for two batches (more if those held only one class), so
# that there is a model to export even if you have not labelled anything yet.

# %%
for batch in range(10):
    if batch >= 2 and learner.model is not None:
        break
    labeller.label_for_me()
record("widget_labels", len(learner.labels))
print(f"{len(learner.labels)} labels; test accuracy {learner.score(X_test, y_test):.3f}")

# %% [markdown]
# ## Take it with you
#
# `export_classifier` puts the featuriser (its preprocessing, the cut network, the pooling)
# and the head you trained into one Keras file, with the class names beside it. It loads in
# any Keras 3 with `safe_mode=True`, as Teachable Machine's exports do for its users.

# %%
import tempfile
from pathlib import Path

import keras

from tlwidgets.export import LOADING_SNIPPET, export_classifier

out = Path(tempfile.mkdtemp()) / "cats_vs_dogs.keras"
export_classifier(featuriser, learner, out)
print(LOADING_SNIPPET.format(model=out, labels=f"{out}.labels.json",
                             size=featuriser.input_size_))
reloaded = keras.models.load_model(out, safe_mode=True)
sample = np.stack([keras.utils.img_to_array(keras.utils.load_img(
    p, target_size=(featuriser.input_size_,) * 2)) for p in test_files.paths[:8]])
ours = learner.model.predict_proba(learner.transform(featuriser.transform(sample)))
theirs = reloaded.predict(sample, verbose=0)
record("export_matches", bool(np.allclose(ours, theirs, atol=1e-4)))
print("the reloaded file gives the same probabilities:", np.allclose(ours, theirs, atol=1e-4))

# %% [markdown]
# ## Exercises

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Write your own strategy: a function `(pool, n, rng)` that returns `n` positions
# from `pool.unlabelled`. Try "the most uncertain item of each half of the pool, by
# distance to the labelled set", or anything you like, then run it in `simulate` next to
# random. Check it: `check("07-1", my_strategy, pool=pool)`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
def my_strategy(pool, n, rng):
    # uncertain AND far: the margin, plus a bonus for distance to the nearest labelled item
    p = np.sort(pool.proba, axis=1) if pool.proba is not None else None
    if p is None:
        return rng.choice(pool.unlabelled, n, replace=False)
    labelled = pool.X[pool.labelled]
    far = np.min(((pool.X[pool.unlabelled][:, None, :] - labelled[None]) ** 2).sum(-1), axis=1)
    score = -(p[:, -1] - p[:, -2]) + 0.1 * far / far.max()
    return pool.unlabelled[np.argsort(-score)[:n]]


mine = simulate(X_pool, y_pool, X_test, y_test, strategies={"mine": my_strategy,
                                                            "random": STRATEGIES["random"]},
                budgets=[b for b in CFG["budgets"] if b <= len(y_pool)][:4], repeats=1)
print({m: {b: round(p["mean"], 3) for b, p in by.items()} for m, by in summarise_curves(mine).items()})
check("07-1", my_strategy, pool=pool)

# %% [markdown]
# ## Key points
#
# * With a featuriser, one round of active learning is a linear fit on cached vectors: fast
#   enough to keep a person labelling, not waiting.
# * Always draw random sampling beside any strategy: it is the baseline that matters, and
#   at the first labels uncertainty can lose to it (the cold start).
# * Typical points (clusters of the features) give a good first batch; uncertainty helps
#   once a model exists; a hybrid takes both.
# * What you taught the model leaves with you as one Keras file and its labels.
