"""Browser-test harness: JupyterLab on 127.0.0.1 with a token, driven by Debian's Chromium.

Use the ``lab`` fixture::

    def test_widget(lab):
        lab.open("01_featurisers.ipynb")
        lab.run_all()
        lab.page.locator(".my-widget").first.click()
        assert lab.eval("some_kernel_value") == "42"

Notebooks are copied to a temporary folder first, so the browser never saves
outputs into the repository, and their parameters cell is set to the smoke profile.

What the learner sees is checked too: ``lab.screenshot_outputs("02-run-all")`` saves
every widget and figure under ``tests/browser/screenshots/smoke/`` (ignored by git) for
review (``tools/screenshot_course.py`` fills ``screenshots/quick/`` and ``workshop/``), and ``lab.assert_clean()`` fails on any stderr output, error output or
widget error element in the page.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
# Error outputs, ipywidgets' "Error displaying widget" box, the course widgets' error lines.
WIDGET_ERRORS = (".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'], "
                 ".jupyter-widgets-error-widget, .tlw-lf-error, .tlw-oov-error")
# Outputs a learner looks at: widgets, images (figures) and HTML holding a chart.
SHOWN = (".jp-OutputArea-output.lm-Panel, "  # a widget view (ipywidgets or anywidget)
         ".jp-OutputArea-output[data-mime-type^='image/'], "
         ".jp-OutputArea-output[data-mime-type='text/html']:has(figure, img, table)")
CHROMIUM = os.environ.get("TLWIDGETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    def __init__(self, root: Path, home: Path):
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.root = root
        self.url = f"http://127.0.0.1:{self.port}"
        import matplotlib

        # The fresh HOME would make matplotlib rebuild its font cache in the first kernel,
        # which prints to stderr; share this user's cache (Binder's postBuild builds it).
        env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
                   JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   MPLCONFIGDIR=os.environ.get("MPLCONFIGDIR", matplotlib.get_cachedir()))
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
            f"--port={self.port}", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}", "--allow-root",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.disable_check_xsrf=False",
        ]
        # No news/update toasts: they cover the page and their buttons open new tabs.
        labconfig = home / ".jupyter" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {
            "@jupyterlab/apputils-extension:announcements": True,
        }}))
        # Render every cell, not only those in view, so the DOM checks see the whole page.
        tracker = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        self.log = (home / "lab.log").open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: see {home / 'lab.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("JupyterLab did not answer within 90 s")

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every notebook session, so one test's kernel never slows the next."""
        for session in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{session['id']}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def use_profile(path: Path, profile: str = "smoke") -> None:
    """Set the notebook's profile, as a learner would: a line added to its parameters cell.

    Browser tests run the same code in the smoke profile, as the notebook tests do."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            cell["source"] = source.rstrip("\n") + f'\nprofile = "{profile}"  # set by the browser tests\n'
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium).")
    home = tmp_path_factory.mktemp("lab-home")
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(ROOT / "notebooks", root, dirs_exist_ok=True)
    for notebook in root.glob("*.ipynb"):
        use_profile(notebook)
    server = LabServer(root, home)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Lab:
    """A JupyterLab page with the few actions the course's browser tests need."""

    def __init__(self, page, server: LabServer, shots: Path = SCREENSHOTS / "smoke"):
        self.page = page
        self.server = server
        self.shots = shots  # where screenshots go: one folder per profile

    def open(self, notebook: str, *, timeout: float = 120) -> None:
        page = self.page
        # A fresh workspace per page: JupyterLab would otherwise restore the notebooks
        # earlier tests opened, in background tabs.
        workspace = f"t{secrets.token_hex(4)}"
        page.goto(f"{self.server.url}/lab/workspaces/{workspace}/tree/{notebook}"
                  f"?reset&token={self.server.token}")
        page.wait_for_selector(".jp-Notebook", timeout=timeout * 1000)
        self.wait_idle(timeout=timeout)

    def wait_idle(self, *, timeout: float = 300) -> None:
        """Wait until the kernel is idle and no cell shows a pending ``[*]`` prompt."""
        self.page.wait_for_function(
            """() => {
                const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
                const idle = ind && ind.getAttribute('data-status') === 'idle';
                const busy = [...document.querySelectorAll('.jp-InputPrompt')]
                    .some(p => p.textContent.includes('[*]'));
                return idle && !busy;
            }""",
            timeout=timeout * 1000,
            polling=250,
        )

    def run_all(self, *, timeout: float = 600) -> None:
        """Run every cell and wait for the kernel to settle."""
        page = self.page
        # Focus the notebook so that the Run menu acts on it.
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Escape")
        item = page.locator("li.lm-Menu-item[data-command='runmenu:run-all']:not(.lm-mod-disabled)")
        executed = """() => [...document.querySelectorAll('.jp-InputPrompt')]
            .filter(p => /\\[\\d+\\]/.test(p.textContent)).length"""
        before = page.evaluate(executed)
        started = f"""(before) => document.querySelector('.jp-InputPrompt') &&
            ([...document.querySelectorAll('.jp-InputPrompt')]
                .some(p => p.textContent.includes('[*]')) || ({executed})() > before)"""
        # Wait for the run to start (a queued [*] cell, or more numbered prompts) before
        # waiting for idle: on a loaded machine the click can take seconds to land, and
        # the kernel looks idle until it does. A click lost while the kernel was still
        # starting is repeated.
        for attempt in range(3):
            for _ in range(20):
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                if item.count():
                    break
                page.keyboard.press("Escape")
                page.wait_for_timeout(500)
            item.first.click()
            try:
                page.wait_for_function(started, arg=before, timeout=40_000, polling=100)
                break
            except Exception:
                if attempt == 2:
                    raise
        self.wait_idle(timeout=timeout)
        errors = self.page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
        tracebacks += self.page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()
        assert not tracebacks, f"A cell failed in the browser:\n{tracebacks[0][:2000]}"

    def diagnose(self, name: str) -> str:
        """What the page shows, for a failed test's report: the kernel's status, each
        cell's prompt and the start of its outputs; a full-page screenshot beside them."""
        page = self.page
        lines = []
        try:
            self.shots.mkdir(parents=True, exist_ok=True)
            path = self.shots / f"FAILED-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            lines.append(f"screenshot: {path}")
            status = page.evaluate("""() => {
                const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
                return ind ? ind.getAttribute('data-status') : 'no execution indicator';
            }""")
            lines.append(f"kernel: {status}")
            cells = page.locator(".jp-Notebook .jp-Cell")
            for i in range(cells.count()):
                cell = cells.nth(i)
                prompt = cell.locator(".jp-InputPrompt").first.inner_text(timeout=2_000).strip()
                outputs = cell.locator(".jp-OutputArea-output")
                shown = []
                for j in range(outputs.count()):
                    out = outputs.nth(j)
                    kind = out.get_attribute("data-mime-type", timeout=2_000) or "widget"
                    text = " ".join(out.inner_text(timeout=2_000).split())[:300]
                    shown.append(f"    [{kind}] {text}")
                if prompt or shown:
                    lines.append(f"cell {i} {prompt}")
                    lines.extend(shown)
        except Exception as exc:  # the report must never hide the test's own failure
            lines.append(f"(diagnosis stopped: {exc!r})")
        return "\n".join(lines)

    def assert_clean(self) -> None:
        """No stderr output (log lines, warnings), no error output, no widget error shown."""
        stderr = self.page.locator(STDERR).all_inner_texts()
        assert not stderr, "stderr shown in the notebook:\n" + "\n---\n".join(
            t[:600] for t in stderr[:3])
        errors = self.page.locator(WIDGET_ERRORS)
        assert not errors.count(), "error shown in the notebook:\n" + "\n---\n".join(
            t[:600] for t in errors.all_inner_texts()[:3])
        broken = self.page.get_by_text("Error displaying widget")
        assert not broken.count(), "a widget failed to render"

    def screenshot_outputs(self, name: str, *, selector: str = SHOWN) -> list[Path]:
        """Save a PNG of every widget and figure shown (``selector``) for review:
        ``tests/browser/screenshots/<profile>/<name>-<n>.png``; returns the paths."""
        self.shots.mkdir(parents=True, exist_ok=True)
        for old in self.shots.glob(f"{name}-[0-9][0-9].png"):
            old.unlink()
        shots = self.page.locator(selector)
        paths = []
        for i in range(shots.count()):
            shot = shots.nth(i)
            if not shot.is_visible():
                continue
            shot.scroll_into_view_if_needed()
            path = self.shots / f"{name}-{i + 1:02d}.png"
            shot.screenshot(path=str(path), animations="disabled")
            paths.append(path)
        return paths

    def screenshot(self, locator, name: str) -> Path:
        """Save a PNG of one element (e.g. a widget after an interaction) for review."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(path), animations="disabled")
        return path

    def eval(self, code: str, *, timeout: float = 120) -> str:
        """Append a cell running ``print(<code>)``, execute it, return its printed text.

        Pass one expression; for several values use a tuple or f-string
        (``lab.eval("(a, b)")``), since the values would otherwise run together.
        """
        page = self.page
        marker = secrets.token_hex(4)
        page.locator(".jp-Notebook .jp-Cell").last.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        page.keyboard.press("Enter")
        page.keyboard.type(f"print('{marker}', {code}, sep='')")
        page.keyboard.press("Shift+Enter")
        out = page.locator(".jp-OutputArea-output", has_text=marker).last
        out.wait_for(timeout=timeout * 1000)
        self.wait_idle(timeout=timeout)
        return out.inner_text().strip()[len(marker):]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test's report says what the page showed (``Lab.diagnose``)."""
    report = yield
    lab = getattr(item, "funcargs", {}).get("lab")
    if report.when == "call" and report.failed and isinstance(lab, Lab):
        report.sections.append(("what the page showed", lab.diagnose(item.name)))
    return report


@pytest.fixture
def lab(lab_server, _browser):
    # Tall enough that a whole widget fits in one screenshot (the notebook scrolls inside).
    context = _browser.new_context(viewport={"width": 1400, "height": 2000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield Lab(page, lab_server)
    context.close()
    lab_server.shut_down_kernels()
