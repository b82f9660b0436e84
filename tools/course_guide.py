"""What each lesson says about itself, read from its source for the instructor guide.

Every lesson (``lessons/NN_name.py``) opens with a markdown cell giving its title, an
estimated **Time** and the bullets after **You will:**, and ends with a ``## Key points``
heading; its exercises are the code cells tagged ``attempt``. The guide is rendered from
these, so it cannot drift from the notebooks::

    python -m tools.course_guide            # print the guide's per-notebook sections

Prerequisites are not in the lessons; :data:`PREREQUISITES` holds them, one entry per
lesson (a test checks that every lesson has one).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext

from tools.build_notebooks import NOTEBOOKS, lesson_sources

__all__ = ["EXERCISE_MINUTES", "NOTEBOOKS", "PREREQUISITES", "Lesson", "lessons", "read_lesson",
           "render_lessons"]

#: Minutes to allow per exercise (learners try, then the instructor shows a solution).
EXERCISE_MINUTES = 5

#: What a learner should have done or know before each notebook.
PREREQUISITES: dict[str, list[str]] = {
    "00_start_here": ["Python basics: running a cell, reading a traceback",
                      "a working kernel (laptop, Binder or the hub)"],
    "01_featurisers": ["notebook 00", "scikit-learn's `fit` / `predict` and a `Pipeline`",
                       "what a convolutional network's layers are (one sentence is enough)"],
    "02_fine_tuning": ["notebook 01 (a network cut at a layer as a featuriser)",
                       "Keras `compile` / `fit`, what a learning rate is"],
    "03_hierarchical_features": ["notebook 01", "notebook 02 helps (it fine-tunes the weights "
                                 "this notebook compares with ImageNet's)"],
    "04_word_embeddings": ["notebook 00", "tokens and vocabularies; cosine similarity",
                           "notebook 01's idea of a featuriser"],
    "04b_french_legal": ["notebook 04 (coverage, out-of-vocabulary words, continuation)",
                         "reading French helps but is not needed"],
    "05_multitask_learning": ["notebook 04 (word vectors)",
                              "what part-of-speech tags and named entities are"],
    "06_featurise_or_fine_tune": ["notebooks 01 (featurisers, learning curves) and 02 "
                                  "(freezing, fine-tuning, the BatchNormalization trap)",
                                  "mean and spread over repeated random subsets"],
    "07_active_learning": ["notebook 01 (features from a pretrained network)",
                           "scikit-learn classifiers and accuracy"],
}

_TIME = re.compile(r"\*\*Time:\*\*\s*about\s+(\d+)\s+minutes", re.IGNORECASE)
_YOU_WILL = re.compile(r"\*\*You will:\*\*", re.IGNORECASE)


@dataclass(frozen=True)
class Lesson:
    """One lesson as the guide shows it."""

    stem: str
    title: str
    minutes: int | None
    objectives: list[str]
    key_points: list[str]
    exercises: int

    @property
    def exercise_minutes(self) -> int:
        return self.exercises * EXERCISE_MINUTES

    @property
    def teaching_minutes(self) -> int | None:
        """The lesson's own estimate, less the time allowed for its exercises."""
        return None if self.minutes is None else max(self.minutes - self.exercise_minutes, 0)


def _bullets(text: str) -> list[str]:
    """The markdown bullets in ``text``, continuation lines joined."""
    items: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"^[*-]\s+", stripped):
            items.append(re.sub(r"^[*-]\s+", "", stripped))
        elif items and stripped and line.startswith((" ", "\t")):
            items[-1] += " " + stripped
        elif items and not stripped:
            continue
        elif items:
            break
    return items


def read_lesson(source: str | Path) -> Lesson:
    """Title, time, objectives, key points and exercise count of one lesson source."""
    source = Path(source)
    cells = jupytext.read(source, fmt="py:percent").cells
    markdown = [c.source for c in cells if c.cell_type == "markdown"]
    if not markdown or not markdown[0].lstrip().startswith("# "):
        raise ValueError(f"{source.name}: the first markdown cell must start with '# <title>'")
    opening = markdown[0]
    title = opening.lstrip().splitlines()[0][2:].strip()
    time = _TIME.search(opening)
    you_will = _YOU_WILL.search(opening)
    if you_will is None:
        raise ValueError(f"{source.name}: the opening cell has no '**You will:**' objectives")
    after = opening[you_will.end():]
    objectives = _bullets(after) or [after.strip().split("\n\n")[0].replace("\n", " ")]
    key_cells = [m[k.end():] for m in markdown
                 if (k := re.search(r"^## Key points\s*$", m, re.MULTILINE | re.IGNORECASE))]
    if not key_cells:
        raise ValueError(f"{source.name}: no '## Key points' heading in a markdown cell")
    exercises = sum("attempt" in c.metadata.get("tags", []) for c in cells)
    return Lesson(stem=source.stem, title=title, minutes=int(time.group(1)) if time else None,
                  objectives=objectives, key_points=_bullets(key_cells[-1]), exercises=exercises)


def lessons() -> list[Lesson]:
    """Every lesson, in course order."""
    return [read_lesson(s) for s in lesson_sources()]


def render_lessons(items: list[Lesson] | None = None, *, notebook_link: str = "../notebooks/{stem}.ipynb",
                   launch=None) -> str:
    """Markdown: one section per lesson (objectives, prerequisites, minutes, key points).

    ``notebook_link`` formats each lesson's page link; ``launch(stem)`` may return
    markdown with launch links for it.
    """
    items = lessons() if items is None else items
    out = []
    for lesson in items:
        prereq = PREREQUISITES.get(lesson.stem)
        if prereq is None:
            raise KeyError(f"tools/course_guide.py: PREREQUISITES has no entry for {lesson.stem}")
        minutes = (f"teaching {lesson.teaching_minutes} min, exercises "
                   f"{lesson.exercise_minutes} min ({lesson.exercises} × {EXERCISE_MINUTES})"
                   if lesson.minutes is not None else "no estimate in the lesson")
        out += [f"(lesson-{lesson.stem})=", f"## `{lesson.stem}`: {lesson.title}", "",
                f"**Notebook:** [{lesson.stem}]({notebook_link.format(stem=lesson.stem)})  ",
                f"**Time:** {minutes}  "]
        if launch is not None:
            out.append(f"**Launch:** {launch(lesson.stem)}")
        out += ["", "**Prerequisites:**", "", *[f"* {p}" for p in prereq], "",
                "**Learning objectives** (from the lesson's opening cell): learners will", "",
                *[f"* {o}" for o in lesson.objectives], "",
                "**Key points** (from the lesson's last cell):", "",
                *[f"* {k}" for k in lesson.key_points], ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course_guide",
                                     description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    print(render_lessons())
    return 0


if __name__ == "__main__":
    sys.exit(main())
