"""Notebook 00 in a real JupyterLab: the doctor widget renders and its button reaches the kernel."""


def test_doctor_widget_renders_and_rechecks(lab):
    lab.open("00_start_here.ipynb")
    lab.run_all()
    widget = lab.page.locator(".tlw-doctor").first
    widget.wait_for()
    assert lab.screenshot_outputs("00-run-all")
    lab.assert_clean()
    assert "Device:" in widget.inner_text()
    assert lab.page.locator(".tlw-doctor-assets tr[data-asset]").count() >= 5
    header = lab.page.locator(".tlw-doctor-assets th").all_inner_texts()
    assert header[:3] == ["Model or data set", "Status", "Found in"]
    before = int(lab.eval("doctor.checks"))
    lab.page.locator(".tlw-doctor-recheck").first.click()
    # The click runs the diagnosis again in the kernel, which redraws the count.
    lab.page.locator(".tlw-doctor-checks", has_text=f"checks run: {before + 1}").wait_for()
    assert int(lab.eval("doctor.checks")) == before + 1
    lab.screenshot(widget, "00-after-recheck")
    lab.assert_clean()
