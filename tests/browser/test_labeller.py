"""In JupyterLab, the Labeller's class buttons and keys reach the kernel's ActiveLearner."""

from pathlib import Path

import nbformat

SETUP = """\
import numpy as np
from pathlib import Path
from tlwidgets.active import ActiveLearner
from tlwidgets.widgets.labeller import Labeller

root = Path(os.environ["TLWIDGETS_DATA"]) / "images" / "cats_vs_dogs" / "train"
files = sorted((root / "cats").glob("*.jpg"))[:20] + sorted((root / "dogs").glob("*.jpg"))[:20]
truth = ["cat"] * 20 + ["dog"] * 20
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 8)) + np.r_[np.zeros(20), np.ones(20)][:, None] * 2
learner = ActiveLearner(X, ["cat", "dog"], items=[str(f) for f in files], strategy="random")
w = Labeller(learner, files, true_labels=truth, held_out=(X, truth), batch_size=4)
w
"""


def test_labeller_clicks_and_keys_reach_the_learner(lab, lab_server):
    # the course's kernelspec, so JupyterLab asks for no kernel
    course = nbformat.read(Path(lab_server.root) / "02_fine_tuning.ipynb", as_version=4)
    nb = nbformat.v4.new_notebook(metadata=course.metadata)
    nb.cells = [nbformat.v4.new_code_cell("import os"), nbformat.v4.new_code_cell(SETUP)]
    nbformat.write(nb, Path(lab_server.root) / "labeller_only.ipynb")
    lab.open("labeller_only.ipynb")
    lab.run_all()
    page = lab.page
    cards = page.locator(".tlw-labeller .tlw-lb-card")
    cards.first.wait_for(state="attached", timeout=60_000)
    cards.first.scroll_into_view_if_needed()
    assert cards.count() == 4
    assert page.locator(".tlw-labeller img.tlw-lb-thumb").first.get_attribute("src") \
        .startswith("data:image/jpeg;base64,")
    cards.nth(0).locator("button[data-label='dog']").click()
    page.wait_for_selector(".tlw-lb-card:nth-child(1) .tlw-lb-chosen[data-label='dog']")
    assert lab.eval("w.choices[0]") == "dog"
    # keys: the cursor moved to the second image; "1" labels it cat, and so on
    page.locator(".tlw-labeller .tlw-lb-thumb").nth(1).click()
    for key in ("1", "2", "1"):
        page.keyboard.press(key)
    page.wait_for_function("() => document.querySelector('.tlw-labeller .tlw-lb-count')"
                           ".textContent.startsWith('4 / 40')", timeout=30_000)
    labels = lab.eval("sorted(w.learner.classes[c] for c in w.learner.labels.values())")
    assert labels == "['cat', 'cat', 'dog', 'dog']"
    assert lab.eval("(len(w.history), len(w.batch))") == "(1, 4)"
    page.locator(".tlw-labeller .tlw-lb-demo").click()  # "label for me": the true labels
    page.wait_for_function("() => document.querySelector('.tlw-labeller .tlw-lb-count')"
                           ".textContent.startsWith('8 / 40')", timeout=30_000)
    # the accuracy chart is the course's shared Chart (a PNG drawn in the kernel), two points
    page.wait_for_selector(".tlw-labeller .tlw-lb-chart figure.tlw-chart img", timeout=30_000)
    assert lab.eval("[h['labels'] for h in w.history]") == "[4, 8]"
    assert lab.eval("(w.n_labelled, all(w.learner.classes[c] == truth[p] for p, c in "
                    "list(w.learner.labels.items())[4:]))") == "(8, True)"
    shot = lab.screenshot(page.locator(".tlw-labeller"), "labeller-after-label-for-me")
    assert shot.stat().st_size > 2000
    lab.assert_clean()
