"""tools/course_schedule.py (the measured schedule) and tools/course_guide.py (lesson summaries)."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import pytest

from tools import course_guide, course_schedule

FIXTURE = Path(__file__).parent / "fixtures" / "course_sample.json"


def _rows() -> list[dict]:
    return json.loads(FIXTURE.read_text())


def test_absent_results_say_not_measured_and_how(tmp_path):
    assert course_schedule.load(tmp_path / "course.json") is None
    text = course_schedule.render(None)
    assert "has not been measured" in text and "make bench-course" in text
    assert "(learners-per-node)=" in text and "not known" in text


def test_schedule_table_has_each_measured_row_and_totals():
    rows = course_schedule.load(FIXTURE)
    text = course_schedule.render_schedule(rows)
    cpu = text.split("### `workshop` profile, 2 CPU cores, no GPU")[1].split("###")[0]
    workshop = [r for r in rows if r["profile"] == "workshop" and not r["machine"]["gpu"]]
    for row in workshop:
        assert (f"| `{row['notebook']}` | {row['wall_s'] / 60:.1f} | {row['cpu_s'] / 60:.1f} "
                f"| {row['peak_mb']:.0f} |") in cpu
    total = sum(r["wall_s"] for r in workshop) / 60
    assert f"**all {len(workshop)}** | **{total:.1f}**" in cpu
    # CPU machines first, the GPU machine after; workshop before quick on each.
    order = [line for line in text.splitlines() if line.startswith("###")]
    assert order == ["### `workshop` profile, 2 CPU cores, no GPU",
                     "### `quick` profile, 2 CPU cores, no GPU",
                     "### `workshop` profile, 16 CPU cores, GPU NVIDIA H200"]


def test_learners_per_node_from_the_largest_cpu_workshop_peak():
    rows = _rows()
    fit = course_schedule.learners_per_node(rows, 64)
    peak = max(r["peak_mb"] for r in rows if r["profile"] == "workshop" and not r["machine"]["gpu"])
    assert fit["peak_mb"] == peak and fit["notebook"] == "02_fine_tuning"
    request = fit["request_mb"]
    assert request % course_schedule.STEP_MB == 0
    assert peak + course_schedule.LAB_MB <= request < peak + course_schedule.LAB_MB + 256
    usable = (64 - course_schedule.SYSTEM_RESERVE_GB) * 1024
    assert fit["learners"] * request <= usable < (fit["learners"] + 1) * request
    # Twice the node, at least twice the learners; a bigger peak, fewer.
    assert course_schedule.learners_per_node(rows, 124)["learners"] >= 2 * fit["learners"]
    heavier = [{**r, "peak_mb": r["peak_mb"] * 2} for r in rows]
    assert course_schedule.learners_per_node(heavier, 64)["learners"] < fit["learners"]
    text = course_schedule.render(rows, node_ram_gb=64)
    assert f"holds **{fit['learners']} learners**" in text


def test_learners_per_node_rejects_a_node_smaller_than_its_reserve():
    with pytest.raises(ValueError, match="node_ram_gb"):
        course_schedule.learners_per_node(_rows(), 2)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("peak_mb"), "'peak_mb'"),
    (lambda r: r.update(profile="fast"), "profile 'fast'"),
    (lambda r: r.update(wall_s="12"), "'wall_s'"),
    (lambda r: r.update(machine={"gpu": None}), "machine.cpus"),
    (lambda r: r.update(measured="yesterday"), "yesterday"),
])
def test_bad_results_say_which_row_and_field(tmp_path, change, message):
    rows = _rows()
    change(rows[1])
    path = tmp_path / "course.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=message):
        course_schedule.load(path)


def test_results_that_are_not_json_name_the_fix(tmp_path):
    path = tmp_path / "course.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="make bench-course"):
        course_schedule.load(path)


def test_every_lesson_has_objectives_key_points_and_prerequisites():
    lessons = course_guide.lessons()
    assert [lesson.stem for lesson in lessons] == [s.stem for s in course_guide.lesson_sources()]
    for lesson in lessons:
        assert lesson.objectives and lesson.key_points, lesson.stem
        assert lesson.minutes and lesson.teaching_minutes >= 0, lesson.stem
        assert course_guide.PREREQUISITES.get(lesson.stem), f"no prerequisites for {lesson.stem}"
    assert set(course_guide.PREREQUISITES) == {lesson.stem for lesson in lessons}


def test_objectives_and_key_points_are_the_lessons_own_words():
    for source in course_guide.lesson_sources():
        lesson = course_guide.read_lesson(source)
        cells = jupytext.read(source, fmt="py:percent").cells
        opening = " ".join(cells[0].source.split()) if cells[0].cell_type == "markdown" else ""
        text = " ".join(" ".join(c.source.split()) for c in cells if c.cell_type == "markdown")
        for item in lesson.objectives:
            assert item in opening, f"{source.name}: {item!r} is not in the opening cell"
        for item in lesson.key_points:
            assert item in text, f"{source.name}: {item!r} is not in the lesson"
        attempts = sum("attempt" in c.metadata.get("tags", []) for c in cells)
        assert lesson.exercises == attempts
        assert lesson.exercise_minutes == attempts * course_guide.EXERCISE_MINUTES


def test_a_lesson_without_key_points_is_refused(tmp_path):
    source = tmp_path / "09_broken.py"
    source.write_text('# %% [markdown]\n# # Broken\n#\n# **You will:**\n#\n# * fail\n\n'
                      '# %%\nprint(1)\n')
    with pytest.raises(ValueError, match="Key points"):
        course_guide.read_lesson(source)
    rendered = course_guide.render_lessons([course_guide.read_lesson(
        course_guide.lesson_sources()[0])])
    assert rendered.startswith("(lesson-")
