"""The course site builds, offline, with every page there and every internal link resolving.

Builds a copy of ``docs/`` (so the checkout stays as it is) from the stored notebooks,
unexecuted (``make site`` renders executed ones; the pages and links are the same),
with a small measured ``course.json`` fixture. The page for an unmeasured course goes
through Sphinx too, in a one-page project (seconds, not a second site build).
"""

from __future__ import annotations

import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import tlwidgets
from tools import course_guide, course_schedule

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "course_sample.json"
REPO = "example-org/example-course"  # not the default: proves the links follow the setting
GENERATED = ("_build", "_generated", "api", "notebooks")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.links.append((tag, key, attrs[key]))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


_SMART = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "--", "\u2014": "---"})


def _words(text: str) -> str:
    """Text without markup or smart quotes, to compare a lesson's markdown with a page."""
    return re.sub(r"\s+", " ", re.sub(r"[*`_]", "", text.translate(_SMART))).strip()


def _build(src: Path, out: Path, results: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TLWIDGETS_SITE_ROOT": str(ROOT), "TLWIDGETS_SITE_REPO": REPO,
           "TLWIDGETS_SITE_NOTEBOOKS": str(ROOT / "notebooks"),
           "TLWIDGETS_COURSE_RESULTS": str(results)}
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                           "html", "-d", str(out.parent / "doctrees"), str(src), str(out)],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(source copy, html folder) of the site, built with the measured fixture."""
    base = tmp_path_factory.mktemp("site")
    src = base / "docs"
    shutil.copytree(ROOT / "docs", src, ignore=lambda d, names: [
        n for n in names if Path(d) == ROOT / "docs" and n in GENERATED])
    out = base / "html"
    done = _build(src, out, FIXTURE)
    assert done.returncode == 0, f"sphinx-build -W failed:\n{done.stdout}\n{done.stderr}"
    return src, out


def _public_modules() -> list[str]:
    names = ["tlwidgets"]
    for info in pkgutil.walk_packages(tlwidgets.__path__, "tlwidgets."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def test_every_expected_page_exists(site):
    _, out = site
    stems = [s.stem for s in course_guide.lesson_sources()]
    guides = [p.stem for p in (ROOT / "docs" / "guide").glob("*.md")]
    expected = (["index", "launch", "api", "genindex", "search"]
                + [f"notebooks/{s}" for s in stems]
                + [f"instructor/{p}" for p in ("index", "lessons", "schedule", "preparation",
                                               "stumbles", "running")]
                + [f"guide/{g}" for g in guides]
                + [f"api/{m}" for m in _public_modules()])
    missing = [p for p in expected if not (out / f"{p}.html").is_file()]
    assert not missing, f"pages not built: {missing}"
    assert guides, "docs/guide/ has no page (the toctree globs guide/*)"
    # The home page links every notebook page, the guide and the API reference.
    home = {v for _, _, v in _parse(out / "index.html").links}
    for page in [f"notebooks/{s}.html" for s in stems] + ["instructor/index.html", "api.html"]:
        assert page in home, f"the home page does not link {page}"


def test_every_internal_link_and_anchor_resolves(site):
    _, out = site
    pages = {p: _parse(p) for p in out.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for tag, attr, value in page.links:
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or value.startswith(("mailto:", "data:", "javascript:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(out)}: <{tag} {attr}={value!r}> (no file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(out)}: {value!r} (no anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])


def test_the_site_reads_offline(site):
    """Scripts, styles, images and fonts are all local: nothing comes from a CDN."""
    _, out = site
    remote = []
    for path in out.rglob("*.html"):
        for tag, attr, value in _parse(path).links:
            external = urlsplit(value).scheme in ("http", "https") or value.startswith("//")
            if external and (attr == "src" or tag == "link"):
                remote.append(f"{path.relative_to(out)}: <{tag} {attr}={value}>")
    assert not remote, "resources fetched from the network:\n" + "\n".join(remote[:20])


def test_notebook_pages_carry_launch_links_from_the_one_setting(site):
    _, out = site
    for stem in (s.stem for s in course_guide.lesson_sources()):
        hrefs = [v for _, _, v in _parse(out / "notebooks" / f"{stem}.html").links]
        binder = f"https://mybinder.org/v2/gh/{REPO}/HEAD?labpath=notebooks/{stem}.ipynb"
        assert binder in hrefs, f"{stem}: no Binder link {binder}"
        puller = [h for h in hrefs if "/hub/user-redirect/git-pull?" in h]
        assert puller and "example-org%2Fexample-course" in puller[0], f"{stem}: {puller}"
        assert f"notebooks%2F{stem}.ipynb" in puller[0]
    launch = (out / "launch.html").read_text()
    assert "tlwidgets/tlwidgets" not in launch, "a launch link ignores course_repository"


def test_guide_shows_each_lessons_objectives_and_key_points(site):
    _, out = site
    text = _words("".join(_parse(out / "instructor" / "lessons.html").text))
    for lesson in course_guide.lessons():
        assert lesson.objectives and lesson.key_points, lesson.stem
        for item in lesson.objectives + lesson.key_points:
            assert _words(item) in text, f"{lesson.stem}: not in the guide: {item!r}"


def test_schedule_renders_the_measurements(site):
    _, out = site
    text = _words("".join(_parse(out / "instructor" / "schedule.html").text))
    assert "has not been measured" not in text
    rows = json.loads(FIXTURE.read_text())
    fit = course_schedule.learners_per_node(rows, 64)
    assert f"holds {fit['learners']} learners" in text
    assert f"each learner needs {fit['request_mb']} MB" in text
    for row in rows:
        assert f"| {row['peak_mb']:.0f} |" not in text  # a table, not markdown left as text
        assert f"{row['peak_mb']:.0f}" in text
    assert "workshop profile, 2 CPU cores, no GPU" in text and "GPU NVIDIA H200" in text
    running = _parse(out / "instructor" / "running.html")
    assert any(v.endswith("schedule.html#learners-per-node") for _, _, v in running.links)


def test_unmeasured_schedule_builds_and_says_how_to_measure(tmp_path):
    """The same markdown the site includes, through Sphinx with the site's MyST settings."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["myst_parser"]\n'
                                 'myst_enable_extensions = ["colon_fence", "deflist"]\n')
    (src / "index.md").write_text("# Schedule\n\n" + course_schedule.render(None)
                                  + "\nSee [the sentence](#learners-per-node).\n")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src),
                           str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    page = _parse(tmp_path / "html" / "index.html")
    text = _words("".join(page.text))
    assert "Not measured yet" in text and "The schedule has not been measured" in text
    assert "make bench-course # writes benchmarks/results/course.json" in text
    assert "Learners per node: not known until the course has been measured" in text
    assert "learners-per-node" in page.ids
