"""The FeaturiserExplorer renders in JupyterLab and a click reaches the kernel."""

from __future__ import annotations

import nbformat

# The cells the widget needs: set-up, backbone, data, the explorer and its code-driven cell.
# (The notebook test runs every cell; here the browser only has to drive the widget.)
_NEEDED = ("check_profile(profile)", 'Featuriser("auto").fit()', "load_hymenoptera(",
           "FeaturiserExplorer(", "explorer.accuracy")


def _smoke_copy(lab_server) -> str:
    """The notebook in the smoke profile, cut to the widget's cells, beside the original."""
    src = lab_server.root / "01_featurisers.ipynb"
    nb = nbformat.read(src, as_version=4)
    cells = []
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = 'profile = "smoke"'
            cells.append(cell)
        elif cell.cell_type == "markdown" or any(k in cell.source for k in _NEEDED):
            cells.append(cell)
    nb.cells = cells
    assert sum("FeaturiserExplorer(" in c.source for c in cells) == 1
    name = "01_featurisers_widget.ipynb"
    nbformat.write(nb, lab_server.root / name)
    return name


def test_featuriser_explorer_round_trip(lab):
    lab.open(_smoke_copy(lab.server))
    lab.run_all()
    page = lab.page
    widget = page.locator(".tlw-featuriser-explorer").first
    widget.wait_for(timeout=60_000)
    # It rendered: controls, a summary with the accuracy, and the figure.
    assert widget.locator(".tlw-fx-layer select").count() == 1
    assert "test accuracy" in widget.locator(".tlw-fx-accuracy").inner_text()
    assert widget.locator(".tlw-fx-figure").first.get_attribute("src").startswith("blob:")
    assert lab.screenshot_outputs("01-run-all")
    lab.assert_clean()
    before = int(lab.eval("explorer.updates"))

    # Pick another classifier in the browser: the kernel refits and the view updates.
    widget.locator(".tlw-fx-classifier select").select_option(label="kNN (k=5)")
    page.wait_for_function(
        "() => document.querySelector('.tlw-fx-accuracy').innerText.includes('kNN')",
        timeout=60_000)
    assert lab.eval("explorer.classifier") == "kNN (k=5)"
    assert int(lab.eval("explorer.updates")) == before + 1

    # Pick a training size with the toggle buttons.
    widget.locator(".tlw-fx-size button", has_text="3").first.click()
    page.wait_for_function(
        "() => document.querySelector('.tlw-fx-accuracy').innerText.includes('with 6 labelled')",
        timeout=60_000)
    assert lab.eval("explorer.per_class") == "3"
    assert lab.eval("explorer.n_train") == "6"

    # A shallower cut: the description follows the choice.
    layer_select = widget.locator(".tlw-fx-layer select")
    first = layer_select.locator("option").first.inner_text()
    layer_select.select_option(label=first)
    page.wait_for_function(
        "(l) => document.querySelector('.tlw-fx-summary').innerText.includes('cut at ' + l)",
        arg=first, timeout=60_000)
    lab.wait_idle()
    page.wait_for_function(
        "() => !document.querySelector('.tlw-featuriser-explorer').innerText.includes('...')",
        timeout=60_000)  # the busy line is gone: the figure is the new one too
    lab.screenshot(widget, "01-after-shallow-cut")
    lab.assert_clean()
