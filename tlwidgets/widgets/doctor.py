"""DoctorWidget: is this kernel ready for the course, and does it have a GPU?"""

from __future__ import annotations

import html

import ipywidgets as widgets
import traitlets

from tlwidgets.doctor import Report, diagnose, source_words

_COLOURS = {"present": "#1a7f37", "package": "#1a7f37", "standin": "#9a6700", "missing": "#cf222e"}
_LABELS = {"present": "present", "package": "present (package)", "standin": "stand-in",
           "missing": "missing"}
GPU_HINT = ('To use an NVIDIA GPU: on a machine with its driver installed, run '
            '<code>pip install -e ".[gpu]"</code> in the course folder (TensorFlow with CUDA), '
            'then restart the kernel and press "Check again".')


class DoctorWidget(widgets.VBox):
    """Shows device, memory and assets; "Check again" re-runs the diagnosis in the kernel."""

    ready = traitlets.Bool(False).tag(sync=True)
    has_gpu = traitlets.Bool(False).tag(sync=True)
    device_summary = traitlets.Unicode("").tag(sync=True)
    checks = traitlets.Int(0).tag(sync=True)

    def __init__(self, *, pack: str = "workshop", **kwargs):
        self.pack = pack
        self.report: Report | None = None
        self._status = widgets.HTML()
        self._table = widgets.HTML()
        self._button = widgets.Button(description="Check again", icon="refresh",
                                      tooltip="Re-run the checks in the kernel")
        self._button.add_class("tlw-doctor-recheck")
        self._button.on_click(lambda _: self.refresh())
        super().__init__([self._status, self._table, self._button], **kwargs)
        self.add_class("tlw-doctor")
        self.refresh()

    def refresh(self) -> Report:
        self.report = report = diagnose(pack=self.pack)
        self.checks += 1
        self.ready = report.ready
        self.has_gpu = report.device.has_gpu
        self.device_summary = report.device.summary
        self._status.value = self._status_html(report)
        self._table.value = self._table_html(report)
        return report

    def _status_html(self, r: Report) -> str:
        d = r.device
        if r.ready and not r.standins:
            verdict, colour = "Ready: everything the workshop needs is here.", "#1a7f37"
        elif r.ready:
            verdict, colour = "Ready, with stand-ins for some assets (see below).", "#9a6700"
        else:
            verdict, colour = "Not ready: see the fixes below.", "#cf222e"
        gpu = ("<b>runs on the GPU</b>" if d.has_gpu
               else "runs on the CPU (no GPU found: every notebook still works, more slowly)")
        hint = "" if d.has_gpu else (
            f"<div class='tlw-doctor-gpu-hint' style='color:#555'>{GPU_HINT}</div>")
        mem = f"{d.ram_available_bytes / 2**30:.1f} GiB free"
        if d.ram_limit_bytes:
            mem += f", limit {d.ram_limit_bytes / 2**30:.1f} GiB"
        versions = ", ".join(f"{k} {v}" for k, v in d.versions.items() if v)
        parts = [
            f"<div class='tlw-doctor-verdict' style='font-size:1.2em;color:{colour}'>{verdict}</div>",
            f"<div class='tlw-doctor-device'>Device: {html.escape(d.summary)}: this kernel {gpu}.</div>",
            hint,
            f"<div>Memory: {mem}. Python {d.python}.</div>",
            f"<div style='color:#666;font-size:0.9em'>{html.escape(versions)}</div>",
            f"<div class='tlw-doctor-checks' style='color:#666;font-size:0.9em'>checks run: {self.checks}</div>",
        ]
        if r.memory_warning:
            parts.append(f"<div style='color:#9a6700'>{html.escape(r.memory_warning)}</div>")
        if d.tensorflow_error:
            parts.append(f"<div style='color:#cf222e'>TensorFlow: {html.escape(d.tensorflow_error)}</div>")
        for fix in r.fixes:
            parts.append(f"<div>Fix: <code>{html.escape(fix)}</code></div>")
        return "".join(parts)

    @staticmethod
    def _table_html(r: Report) -> str:
        rows = []
        for row in r.assets:
            colour = _COLOURS[row.state]
            detail = html.escape(source_words(row))
            fix = f"<code style='white-space:nowrap'>{html.escape(row.fix)}</code>" if row.fix else ""
            rows.append(
                f"<tr data-asset='{row.asset.id}' data-state='{row.state}'>"
                f"<td>{html.escape(row.asset.title)}</td>"
                f"<td style='color:{colour};white-space:nowrap'>{_LABELS[row.state]}</td>"
                f"<td>{detail}</td><td>{fix}</td></tr>"
            )
        return ("<table class='tlw-doctor-assets'><thead><tr><th>Model or data set</th>"
                "<th>Status</th><th>Found in</th><th>To get the real one</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>")
