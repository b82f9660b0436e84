"""Sphinx extension for the course site: notebooks, generated guide pages, launch links.

At ``builder-inited`` it

* copies the notebooks to render (``course_notebooks``: a folder of executed notebooks,
  or the repository's unexecuted ``notebooks/``) into ``docs/notebooks/``;
* writes ``docs/_generated/``: the course table of the home page, the instructor guide's
  per-notebook sections (``tools/course_guide.py``), its schedule
  (``tools/course_schedule.py`` from ``course_results``) and the launch-link table.

Every notebook page then gets a line of launch links (Binder, a JupyterHub through
nbgitpuller) under its title. The GitHub ``org/repo`` of every link is one setting,
``course_repository``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

import nbformat
from docutils import nodes
from sphinx.application import Sphinx

from tlwidgets.notebook import RECORD_MIME
from tools import course_guide, course_schedule

GENERATED = "_generated"


def binder_url(repository: str, stem: str) -> str:
    """Binder launch link that opens one notebook in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repository}/HEAD?labpath=notebooks/{stem}.ipynb"


def nbgitpuller_url(hub: str, repository: str, branch: str, stem: str) -> str:
    """A JupyterHub link that clones (or updates) the course, then opens one notebook."""
    name = repository.rsplit("/", 1)[-1]
    query = urlencode({"repo": f"https://github.com/{repository}", "branch": branch,
                       "urlpath": f"lab/tree/{name}/notebooks/{stem}.ipynb"}, quote_via=quote)
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def _links(config, stem: str) -> list[tuple[str, str]]:
    return [("Binder", binder_url(config.course_repository, stem)),
            ("JupyterHub (nbgitpuller)", nbgitpuller_url(config.course_hub_url,
                                                         config.course_repository,
                                                         config.course_branch, stem))]


def _write(path: Path, text: str) -> None:
    """Write only when the text changed (Sphinx then rereads only what changed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _copy_notebooks(app: Sphinx, stems: list[str]) -> None:
    source = Path(app.config.course_notebooks)
    target = Path(app.srcdir) / "notebooks"
    missing = [s for s in stems if not (source / f"{s}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"course_notebooks={source}: no notebook for {', '.join(missing)}; "
                                "run `python -m tools.run_notebooks --profile quick --out "
                                "build/executed`, or point TLWIDGETS_SITE_NOTEBOOKS at notebooks/")
    target.mkdir(exist_ok=True)
    for old in target.glob("*.ipynb"):
        if old.stem not in stems:
            old.unlink()
    for stem in stems:
        data = _as_learners_see_it(source / f"{stem}.ipynb")
        dest = target / f"{stem}.ipynb"
        if not dest.exists() or dest.read_text() != data:
            dest.write_text(data)


def _as_learners_see_it(path: Path) -> str:
    """The notebook without the values it records for the tests (``tlwidgets.notebook.
    record``: their own MIME type, shown in JupyterLab only as the text of ``show=True``)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIME in data:
                del data[RECORD_MIME]
                if not "".join(data.get("text/plain", "")).strip():
                    continue
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    return nbformat.writes(nb)


def _generate(app: Sphinx) -> None:
    config = app.config
    lessons = course_guide.lessons()
    stems = [lesson.stem for lesson in lessons]
    _copy_notebooks(app, stems)
    out = Path(app.srcdir) / GENERATED

    def launch(stem: str) -> str:
        return " · ".join(f"[{label}]({url})" for label, url in _links(config, stem))

    course = ["| Notebook | Time | Launch |", "|---|---:|---|"]
    course += [f"| [{lesson.title}](/notebooks/{lesson.stem}.ipynb) | "
               f"{lesson.minutes if lesson.minutes is not None else '?'} min | "
               f"{launch(lesson.stem)} |" for lesson in lessons]
    total = sum(lesson.minutes or 0 for lesson in lessons)
    course.append(f"| **The whole course** | **{total // 60} h {total % 60:02d}** | |")
    _write(out / "course_table.md", "\n".join(course) + "\n")
    _write(out / "lessons.md", course_guide.render_lessons(lessons, launch=launch,
                                                       notebook_link="/notebooks/{stem}.ipynb"))
    results = Path(config.course_results)
    _write(out / "schedule.md", course_schedule.render(course_schedule.load(results),
                                                       node_ram_gb=config.course_node_ram_gb))
    links = ["| Notebook | Binder | JupyterHub (nbgitpuller) |", "|---|---|---|"]
    for stem in stems:
        (_, binder), (_, hub) = _links(config, stem)
        links.append(f"| [`{stem}`](/notebooks/{stem}.ipynb) | [launch]({binder}) | [open]({hub}) |")
    _write(out / "launch_links.md", "\n".join(links) + "\n")


def _launch_line(app: Sphinx, doctree: nodes.document) -> None:
    """Under a notebook page's title: where to run it, and that its widgets need a kernel."""
    docname = app.env.docname
    if not docname.startswith("notebooks/"):
        return
    stem = docname.split("/", 1)[1]
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    para = nodes.paragraph(classes=["course-launch"])
    para += nodes.strong(text="Run it: ")
    for i, (label, url) in enumerate(_links(app.config, stem)):
        if i:
            para += nodes.Text(" · ")
        para += nodes.reference(text=label, refuri=url)
    para += nodes.Text(". This page shows the outputs of one run; the widgets work only "
                       "in a running notebook.")
    title = next(iter(section.findall(nodes.title)))
    section.insert(section.index(title) + 1, para)


def _skip_member(app, what, name, obj, skip, options):
    """scikit-learn's generated ``set_*_request`` methods are not the course's API."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app: Sphinx) -> dict:
    # The links change every page's doctree ("env"); the rest reaches the pages through
    # files written at builder-inited, which Sphinx tracks itself ("": no full rebuild).
    app.add_config_value("course_repository", "tlwidgets/tlwidgets", "env", str)
    app.add_config_value("course_branch", "main", "env", str)
    app.add_config_value("course_hub_url", "https://hub.example.org", "env", str)
    app.add_config_value("course_notebooks", str(course_guide.NOTEBOOKS), "", str)
    app.add_config_value("course_results", str(course_schedule.RESULTS), "", str)
    app.add_config_value("course_node_ram_gb", 64, "", (int, float))
    app.connect("builder-inited", _generate)
    app.connect("doctree-read", _launch_line)
    app.connect("autodoc-skip-member", _skip_member)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
