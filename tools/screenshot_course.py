"""Run All in JupyterLab (Chromium), as a learner, and screenshot every widget and figure.

    python -m tools.screenshot_course --profile quick            # every notebook
    python -m tools.screenshot_course --profile workshop 00 03   # some of them

Each notebook is copied to a temporary folder with its parameters cell set to the
profile (the line a learner would add), opened in JupyterLab, run with *Run All*, and
waited on until the kernel is idle. Then every widget and figure is saved as a PNG
under ``tests/browser/screenshots/<profile>/`` (ignored by git): ``NN-run-all-<k>.png``
after Run All, and one ``NN-<widget>-after-<action>.png`` per widget after one
interaction. The page is checked as the browser tests check it (no stderr output area,
no error output, no widget error element); a failed check is printed and the run goes
on, so one broken notebook does not hide the others. Open the PNGs and look at them.

Needs Playwright and Debian's Chromium (``make chromium``), like the browser tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _doctor(lab) -> None:
    widget = lab.page.locator(".tlw-doctor").first
    before = int(lab.eval("doctor.checks"))
    widget.locator(".tlw-doctor-recheck").click()
    lab.page.locator(".tlw-doctor-checks", has_text=f"checks run: {before + 1}").wait_for()
    lab.screenshot(widget, "00-doctor-after-recheck")


def _featurisers(lab) -> None:
    page = lab.page
    widget = page.locator(".tlw-featuriser-explorer").first
    select = widget.locator(".tlw-fx-layer select")
    first = select.locator("option").first.inner_text()
    select.select_option(label=first)
    page.wait_for_function(
        "(l) => document.querySelector('.tlw-fx-summary').innerText.includes('cut at ' + l)",
        arg=first, timeout=120_000)
    lab.wait_idle()
    lab.screenshot(widget, "01-featuriser-explorer-after-shallow-cut")


def _fine_tuning(lab) -> None:
    page = lab.page
    freezer = page.locator(".tlw-layer-freezer").first
    toggles = freezer.locator(".tlw-lf-block .tlw-lf-toggle")
    toggles.nth(toggles.count() - 2).click()  # unfreeze the base's top block
    lab.wait_idle()
    page.wait_for_timeout(500)
    lab.screenshot(freezer, "02-layer-freezer-after-toggle")
    monitor = page.locator(".tlw-training-monitor").first
    monitor.locator(".widget-toggle-buttons button", has_text="batch").click()
    lab.wait_idle()
    page.wait_for_timeout(500)
    lab.screenshot(monitor, "02-training-monitor-after-batch-view")


def _hierarchical(lab) -> None:
    page = lab.page
    explorer = page.locator(".tlw-feature-explorer").first
    explorer.locator(".widget-toggle-buttons button", has_text="Filters").click()
    page.locator(".tlw-fe-status", has_text="steps in").wait_for(timeout=300_000)
    lab.wait_idle()
    lab.screenshot(explorer, "03-feature-explorer-after-filters")
    explorer.locator(".widget-toggle-buttons button", has_text="Grad-CAM").click()
    lab.wait_idle()
    page.wait_for_timeout(1000)
    lab.screenshot(explorer, "03-feature-explorer-after-grad-cam")


def _embeddings(lab) -> None:
    page = lab.page
    explorer = page.locator(".tlw-emb-explorer").first
    word = explorer.locator(".tlw-emb-word input")
    word.fill("function")
    word.press("Enter")
    explorer.locator(".tlw-emb-neighbours").click()
    lab.wait_idle()
    page.wait_for_timeout(500)
    lab.screenshot(explorer, "04-embedding-explorer-after-neighbours")
    oov = page.locator(".tlw-oov").first
    oov.locator(".tlw-oov-choice select").select_option("pasted text")
    oov.locator(".tlw-oov-text textarea").fill("The flarpish zorbs call __init__ twice.")
    oov.locator(".tlw-oov-run").click()
    oov.locator(".tlw-oov-output", has_text="flarpish").wait_for(timeout=120_000)
    lab.wait_idle()
    lab.screenshot(oov, "04-oov-after-paste")


def _multitask(lab) -> None:
    page = lab.page
    widget = page.locator(".tlw-multitask").first
    widget.locator(".tlw-mt-task-lm input[type=checkbox]").check()
    page.wait_for_function("document.querySelectorAll('.tlw-mt-head').length >= 3")
    widget.locator(".tlw-mt-train button, button.tlw-mt-train").first.click()
    page.locator(".tlw-mt-status", has_text="done: run").wait_for(timeout=600_000)
    lab.wait_idle()
    lab.screenshot(widget, "05-multitask-after-train")


def _active(lab) -> None:
    page = lab.page
    widget = page.locator(".tlw-labeller").first
    count = widget.locator(".tlw-lb-count").inner_text()
    widget.locator(".tlw-lb-demo").click()
    page.wait_for_function(
        "(c) => document.querySelector('.tlw-labeller .tlw-lb-count').textContent !== c",
        arg=count, timeout=120_000)
    lab.wait_idle()
    lab.screenshot(widget, "07-labeller-after-label-for-me")


def _regimes(lab) -> None:
    page = lab.page
    widget = page.locator(".tlw-curve-explorer").first
    widget.locator(".tlw-ce-domain select").select_option(label="chest X-rays")
    page.locator(".tlw-ce-text", has_text="chest X-rays").first.wait_for(timeout=60_000)
    lab.wait_idle()
    lab.screenshot(widget, "06-curve-explorer-after-domain")


# One interaction (or two) per widget, after Run All; notebooks without widgets have none.
INTERACTIONS: dict[str, Callable] = {
    "00": _doctor, "01": _featurisers, "02": _fine_tuning, "03": _hierarchical,
    "04_": _embeddings, "05": _multitask, "06": _regimes,
    "07": _active,
}


def _interaction(stem: str) -> Callable | None:
    return next((f for k, f in INTERACTIONS.items() if stem.startswith(k)), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshot_course",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick", "workshop"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per Run All")
    parser.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import (
        CHROMIUM,
        CHROMIUM_ARGS,
        SCREENSHOTS,
        Lab,
        LabServer,
        use_profile,
    )

    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("TLWIDGETS_OFFLINE", "1")
    shared = ROOT.parent / "shared" / "assets"
    if not os.environ.get("TLWIDGETS_DATA") and shared.is_dir():
        os.environ["TLWIDGETS_DATA"] = str(shared)
    notebooks = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb")
                       if not args.notebooks or any(p.stem.startswith(n) for n in args.notebooks))
    shots = SCREENSHOTS / args.profile
    shots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tlwidgets-screens-"))
    root, home = tmp / "root", tmp / "home"
    root.mkdir()
    home.mkdir()
    for nb in notebooks:
        shutil.copy(nb, root / nb.name)
        use_profile(root / nb.name, args.profile)
    server = LabServer(root, home)
    failures = 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for nb in notebooks:
                stem = nb.stem.split("_")[0]
                context = browser.new_context(viewport={"width": 1400, "height": 2000})
                page = context.new_page()
                page.set_default_timeout(120_000)
                lab = Lab(page, server, shots)
                start = time.perf_counter()
                try:
                    lab.open(nb.name)
                    lab.run_all(timeout=args.timeout)
                    ran = time.perf_counter() - start
                    paths = lab.screenshot_outputs(f"{stem}-run-all")
                    problems = []
                    try:
                        lab.assert_clean()
                    except AssertionError as e:
                        problems.append(str(e))
                    action = _interaction(nb.stem)
                    if action:
                        action(lab)
                        try:
                            lab.assert_clean()
                        except AssertionError as e:
                            problems.append(f"after the interaction: {e}")
                    status = "clean" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems)
                    failures += bool(problems)
                    print(f"{nb.stem}: Run All {ran:.0f} s, {len(paths)} screenshots; {status}",
                          flush=True)
                except Exception:
                    failures += 1
                    page.screenshot(path=str(shots / f"{stem}-failure.png"), full_page=True)
                    print(f"{nb.stem}: FAILED after {time.perf_counter() - start:.0f} s\n"
                          f"{traceback.format_exc()}", flush=True)
                finally:
                    context.close()
                    server.shut_down_kernels()
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"screenshots in {shots}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
