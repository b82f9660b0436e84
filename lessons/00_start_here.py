# %% [markdown]
# # Start here: transfer learning, hands on
#
# **Time:** about 5 minutes. **You will:** see what the course covers, and check
# that this kernel is ready for it (packages, data, and whether it runs on a GPU).
#
# Transfer learning reuses what a model learned on a task with plenty of labelled
# data (ImageNet photos, billions of words of text) for a task with little. Every
# notebook here lets you *measure* when that works and when it does not.

# %% [markdown]
# ## The course map
#
# | Notebook | What you do | Time (CPU) |
# |---|---|---|
# | `00_start_here` | check the kernel, meet the course | 5 min |
# | `01_featurisers` | cut a pretrained network, train logistic regression / SVM on its features; learning curves vs training from scratch | 30 min |
# | `02_fine_tuning` | freeze and unfreeze layers with the LayerFreezer; two-phase training; the BatchNormalization and learning-rate traps | 45 min |
# | `03_hierarchical_features` | see edges become textures become parts with the FeatureExplorer; Grad-CAM | 30 min |
# | `04_word_embeddings` | pretrained word vectors, the out-of-vocabulary problem in a specialised domain, continuing training | 40 min |
# | `04b_french_legal` | the source's own case: French competition law with French vectors, honest OOV warnings, domain continuation, topic classification with few labels | 30 min |
# | `05_multitask_learning` | shared layers and task heads: entity recognition helped by part-of-speech tagging | 40 min |
# | `06_featurise_or_fine_tune` | the 1,000-images rule measured: ten methods from pixels and HOG to full fine-tuning on cats vs dogs and chest X-rays; unlabelled pretraining when transfer fails | 30 min |
# | `07_active_learning` | active learning on a featuriser: strategies vs random, the cold start, label photos yourself, export one Keras file | 20 min |
#
# Each notebook has a `profile` parameter in its first code cell:
#
# * `workshop` uses the real data sizes (the times above);
# * `quick` is for when you are short of time: less data, fewer sizes and epochs,
#   with results that still make each lesson's point;
# * `smoke` is for the tests (CI) only: it proves that every cell runs, in seconds,
#   and its numbers mean nothing.

# %% tags=["parameters"]
profile = "workshop"  # "workshop", "quick" (shorter) or "smoke" (the tests)

# %% [markdown]
# ## Is this kernel ready?
#
# The doctor below checks the installed versions, the device (GPU or CPU), the
# memory you have, and the data and pretrained weights the course uses. Anything
# missing comes with the command that fixes it. Press **Check again** after
# fixing something.

# %%
from tlwidgets.notebook import check_profile, record
from tlwidgets.widgets.doctor import DoctorWidget

check_profile(profile)
doctor = DoctorWidget()
doctor

# %% [markdown]
# What the doctor found, as values the rest of the course (and its tests) can use:

# %%
report = doctor.report
record("ready", report.ready)
record("has_gpu", report.device.has_gpu)
record("device", report.device.summary)
record("assets_missing", [row.asset.id for row in report.missing])
record("assets_standin", [row.asset.id for row in report.standins])

# %% [markdown]
# ### Reading the result
#
# * **Ready** means every asset is present or has a *stand-in*: a smaller real
#   asset used in its place (for example MobileNet alpha 0.25 instead of
#   MobileNetV2). The notebooks name the stand-in whenever they use one.
# * **GPU**: on a GPU kernel the training notebooks run several times faster. On
#   a CPU (a laptop, Binder) every notebook still runs; if you are short of time,
#   set `profile = "quick"` in a notebook's first code cell (not `smoke`: that one
#   is for the tests, and its results mean nothing).
# * **Missing**: run the command shown, in a terminal, on a machine with network
#   access: `python -m tlwidgets fetch --pack workshop`. Workshop instructors do
#   this once per machine before the session.
#
# ## Key points
#
# * Transfer learning reuses pretrained knowledge; the course measures when it helps.
# * `python -m tlwidgets doctor` tells you the same thing as the widget above, in a terminal.
# * Every number you will see in this course is computed by the notebook in front of you.
