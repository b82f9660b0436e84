"""Notebook 07 in JupyterLab: the Labeller on the real pool renders clean and "Label for me"
reaches the kernel's ActiveLearner.

The browser opens a copy of the notebook in the smoke profile with the cells the widget
needs (set-up, features, the active-learning imports, the widget); the simulation
between them is the notebook test's.
"""

from __future__ import annotations

import nbformat

from tests.conftest import NOTEBOOKS

NAME = "07_labeller_only.ipynb"
_NEEDED = ("check_profile(profile)", "Featuriser(", "import STRATEGIES, ActiveLearner",
           "Labeller(")


def _widget_copy(root) -> None:
    nb = nbformat.read(NOTEBOOKS / "07_active_learning.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = 'profile = "smoke"'
            cells.append(cell)
        elif cell.cell_type == "code" and any(k in cell.source for k in _NEEDED):
            cells.append(cell)
            if "Labeller(" in cell.source:
                break
    assert "Labeller(" in cells[-1].source and len(cells) == 1 + len(_NEEDED)
    nb.cells = cells
    nbformat.write(nb, root / NAME)


def test_labeller_on_the_pool_renders_clean_and_labels(lab, lab_server):
    _widget_copy(lab_server.root)
    lab.open(NAME)
    lab.run_all()
    page = lab.page
    widget = page.locator(".tlw-labeller").first
    widget.locator(".tlw-lb-card").first.wait_for(state="attached", timeout=60_000)
    assert lab.screenshot_outputs("07-run-all")
    lab.assert_clean()
    batch = widget.locator(".tlw-lb-card").count()
    assert batch == 4  # the smoke profile's batch
    assert widget.locator(".tlw-lb-count").inner_text().startswith("0 /")
    widget.locator(".tlw-lb-demo").click()  # "Label for me": one batch of true labels
    page.wait_for_function("(n) => document.querySelector('.tlw-labeller .tlw-lb-count')"
                           ".textContent.startsWith(n + ' /')", arg=batch, timeout=60_000)
    lab.wait_idle()  # the count is the kernel's: len(learner.labels) of the real pool
    lab.screenshot(widget, "07-labeller-after-label-for-me")
    lab.assert_clean()
