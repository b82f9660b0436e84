"""The FeatureExplorer in JupyterLab: dragging the layer slider redraws the grid in the kernel."""

from tests.browser.notebook_copies import notebook_up_to

NOTEBOOK = "03_hierarchical_features.ipynb"
# lab.eval prints its argument with sep="", so join the values ourselves.
STATE = "' '.join(map(str, (explorer.layer_index, explorer.updates, explorer.grid_digest)))"
TRIMMED = "03_browser_check.ipynb"


def test_layer_slider_redraws_the_grid(lab):
    lab.open(notebook_up_to(lab.server.root, NOTEBOOK, "FeatureExplorer(", TRIMMED))
    lab.run_all()
    page = lab.page
    grid = page.locator("img.tlw-fe-grid").first
    grid.wait_for()
    assert lab.screenshot_outputs("03-explorer-run-all")
    lab.assert_clean()
    before_src = grid.get_attribute("src")
    index0, updates0, digest0 = lab.eval(STATE).split()
    assert index0 == "0"

    handle = page.locator(".tlw-fe-layer .noUi-handle").first
    box = handle.bounding_box()
    track = page.locator(".tlw-fe-layer .noUi-target").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.6, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()

    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).getAttribute('src') !== old",
        arg=["img.tlw-fe-grid", before_src], timeout=60_000,
    )
    lab.wait_idle()
    index1, updates1, digest1 = lab.eval(STATE).split()
    assert int(index1) > 0, "the slider's new value did not reach the kernel"
    assert int(updates1) > int(updates0)
    assert digest1 != digest0, "the kernel drew the same grid for a different layer"
    info = page.locator(".tlw-fe-info").first.inner_text()
    assert f"{int(index1) + 1}/" in info and "receptive field" in info
    explorer = page.locator(".tlw-feature-explorer").first
    lab.screenshot(explorer, "03-explorer-after-slider")
    height = explorer.bounding_box()["height"]

    # Filters: seconds of work, a busy line, then the result in the same box; back to the
    # maps, the filters' timing is gone.
    explorer.locator(".widget-toggle-buttons button", has_text="Filters").click()
    page.locator(".tlw-fe-status", has_text="steps in").wait_for(timeout=180_000)
    lab.wait_idle()
    lab.screenshot(explorer, "03-explorer-filters")
    assert abs(explorer.bounding_box()["height"] - height) < 40, "the widget jumped in size"
    explorer.locator(".widget-toggle-buttons button", has_text="Activation maps").click()
    page.wait_for_function(
        "() => !document.querySelector('.tlw-fe-status').innerText.includes('steps in')",
        timeout=60_000)
    assert abs(explorer.bounding_box()["height"] - height) < 40, "the widget jumped in size"
    lab.assert_clean()
