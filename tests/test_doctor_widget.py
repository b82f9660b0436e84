"""DoctorWidget driven from Python: traits reflect the report; the button re-checks."""

from tlwidgets.widgets.doctor import DoctorWidget


def test_widget_state_and_recheck(shared_assets):
    w = DoctorWidget()
    assert w.checks == 1
    assert w.ready is True
    assert w.device_summary == w.report.device.summary
    assert "tlw-doctor" in w._dom_classes
    rows = w._table.value.count("<tr data-asset=")
    assert rows == len(w.report.assets)
    assert "data-state='standin'" in w._table.value
    # Columns and sources in words: a stand-in is named by its title, not its asset id.
    assert "<th>Model or data set</th><th>Status</th><th>Found in</th>" in w._table.value
    assert "a smaller stand-in: MobileNet (alpha 0.25)" in w._table.value
    assert "<td>stand-in mobilenet-0.25-224-no-top</td>" not in w._table.value
    assert "white-space:nowrap'>stand-in<" in w._table.value
    if not w.has_gpu:
        assert 'pip install -e ".[gpu]"' in w._status.value
    w._button.click()
    assert w.checks == 2
    assert "checks run: 2" in w._status.value


def test_widget_shows_missing_assets_with_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TLWIDGETS_DATA", str(tmp_path))
    w = DoctorWidget(pack="mini")
    assert w.ready is False
    assert "Not ready" in w._status.value
    assert "python -m tlwidgets fetch hymenoptera" in w._table.value
