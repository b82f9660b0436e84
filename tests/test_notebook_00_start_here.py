"""Notebook 00 runs in the smoke profile and reports what the doctor found."""


def test_start_here_reports_readiness(run_notebook, shared_assets):
    _, rec = run_notebook("00_start_here.ipynb")
    # With the fixtures, every workshop asset is present or stood in for.
    assert rec["ready"] is True
    assert rec["assets_missing"] == []
    assert "mobilenet-v2-1.0-224-no-top" in rec["assets_standin"]
    assert isinstance(rec["has_gpu"], bool)
    assert rec["device"].startswith("GPU" if rec["has_gpu"] else "CPU only")
