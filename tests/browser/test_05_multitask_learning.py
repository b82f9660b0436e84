"""MultiTaskWidget in JupyterLab: it renders, a task checkbox and Train reach the kernel.

The browser cannot pass papermill parameters, and the full notebook runs minutes
of experiments; so the test opens a copy of notebook 05 cut after the widget
cell, with ``profile = "smoke"``.
"""

from __future__ import annotations

from tests.browser.notebook_copies import notebook_up_to

NAME = "05_multitask_widget_only.ipynb"


def test_multitask_widget_round_trip(lab, lab_server):
    notebook_up_to(lab_server.root, "05_multitask_learning.ipynb", "MultiTaskWidget(", NAME)
    lab.open(NAME)
    lab.run_all(timeout=300)
    page = lab.page
    widget = page.locator(".tlw-multitask")
    widget.wait_for()
    assert page.locator(".tlw-mt-head").count() == 2
    assert lab.screenshot_outputs("05-widget-run-all")
    lab.assert_clean()

    # Ticking the next-word task reaches the kernel and adds a head to the diagram.
    page.locator(".tlw-mt-task-lm input[type=checkbox]").check()
    page.wait_for_function("document.querySelectorAll('.tlw-mt-head').length === 3")
    assert lab.eval("mt_widget.tasks") == "['ner', 'pos', 'lm']"
    page.locator(".tlw-mt-task-lm input[type=checkbox]").uncheck()
    page.wait_for_function("document.querySelectorAll('.tlw-mt-head').length === 2")

    # Train: the kernel trains, the monitor draws each task's loss, scores appear.
    page.locator(".tlw-mt-train button, button.tlw-mt-train").first.click()
    page.locator(".tlw-mt-status", has_text="done: run 1").wait_for(timeout=240_000)
    assert page.locator(".tlw-mt-monitor figure.tlw-mt-chart img").count() == 1
    assert page.locator(".tlw-mt-score").count() >= 2
    assert lab.eval("mt_widget.runs") == "1"
    assert float(lab.eval("mt_widget.scores['pos_accuracy']")) > 0
    lab.screenshot(widget, "05-widget-after-train")
    lab.assert_clean()
