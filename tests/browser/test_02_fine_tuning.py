"""In JupyterLab, a click on a LayerFreezer block changes the kernel-side Keras model."""

from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_fine_tuning.ipynb"


def _up_to_freezer(dst: Path) -> None:
    """Notebook 02 up to its LayerFreezer cell, in the smoke profile (no training needed)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            cell.source = 'profile = "smoke"'
        cells.append(cell)
        if "layer-freezer" in tags:
            break
    nb.cells = cells
    nbformat.write(nb, dst)


def test_layer_freezer_toggle_reaches_the_model(lab, lab_server):
    _up_to_freezer(Path(lab_server.root) / "02_freezer_only.ipynb")
    lab.open("02_freezer_only.ipynb")
    lab.run_all()
    page = lab.page
    block = page.locator(".tlw-layer-freezer .tlw-lf-block[data-key$='/block_13']")
    # JupyterLab 4 skips painting cells outside the viewport: wait for the node, then scroll.
    block.wait_for(state="attached", timeout=120_000)
    block.scroll_into_view_if_needed()
    assert block.get_attribute("data-state") == "frozen"
    assert lab.screenshot_outputs("02-freezer-run-all")
    lab.assert_clean()  # in particular no "Expected ... block states" error on opening
    before = lab.eval("freezing.param_counts(model).trainable")
    block.locator(".tlw-lf-toggle").click()
    page.wait_for_selector(
        ".tlw-layer-freezer .tlw-lf-block[data-key$='/block_13'][data-state='trainable']",
        timeout=30_000)
    assert lab.eval("freezing.find_base(model).get_layer('conv_pw_13').trainable") == "True"
    after = lab.eval("freezing.param_counts(model).trainable")
    assert int(after) - int(before) == 2_304 + 65_536  # block 13 of MobileNet 0.25, BN frozen
    count = page.locator(".tlw-layer-freezer .tlw-lf-count").inner_text()
    assert f"{int(after):,} trainable" in count
    lab.screenshot(page.locator(".tlw-layer-freezer").first, "02-freezer-after-toggle")
    lab.assert_clean()


def test_fine_tuning_notebook_monitor_and_figures(lab):
    """The whole notebook: every widget and figure screenshotted, the monitor's view switched."""
    lab.open("02_fine_tuning.ipynb")
    lab.run_all(timeout=900)
    page = lab.page
    assert lab.screenshot_outputs("02-run-all")
    lab.assert_clean()
    monitor = page.locator(".tlw-training-monitor").first
    assert monitor.locator("figure.tlw-tm-chart img").count() == 1
    # Every run is listed without scrolling, and the summary is a table.
    runs = int(lab.eval("len(monitor.run_names)"))
    assert int(monitor.locator("select").get_attribute("size")) >= min(runs, 12)
    assert monitor.locator("table.tlw-tm-summary tr").count() == runs + 1
    before = int(lab.eval("monitor.updates"))
    monitor.locator(".widget-toggle-buttons button", has_text="batch").click()
    lab.wait_idle()
    assert int(lab.eval("monitor.updates")) > before and lab.eval("monitor.view") == "batch"
    lab.screenshot(monitor, "02-monitor-batch-view")
    lab.assert_clean()
