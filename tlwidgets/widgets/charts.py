"""The one chart component behind every widget's plots: matplotlib panels rendered to a PNG.

    chart = Chart([Panel("loss", lines=[Line(xs, ys, label="run 1")], ylabel="loss")])
    chart.html()      # <figure> with the PNG inline, for an ipywidgets HTML view
    chart             # shows itself in a notebook (``_repr_png_``)

What each chart does for the reader:

* real axis ticks (matplotlib's locators), log scale where the data span orders
  of magnitude (``Panel(ylog=None)`` decides; ``True``/``False`` force it);
* a line far above the others (a diverged run, a NaN loss) does not flatten the
  rest: the axis is fitted to the other lines, the line is clipped at the top
  edge with a ``▲``, and the panel says so in words (``Chart.notes``);
* :data:`PALETTE` has 14 distinguishable colours; the legend sits below the
  panels, in as many rows as it needs, so it never covers a curve;
* vertical marks (``Mark``, e.g. "unfroze 2 blocks") get a number on the plot and
  their text in the legend, so labels never overprint each other.

Rendering happens in the kernel with the Agg backend (no browser code, works
offline and in exported notebooks).
"""

from __future__ import annotations

import base64
import html
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tlwidgets.ticks import count_ticks, readable_log_ticks

# tab10 and four more hues: 14 colours a reader tells apart (neighbours differ in hue).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#e7298a", "#000000")
DIVERGED_RATIO = 10.0  # a line whose median is this many times the others' is "off scale"
LEGEND_WRAP = 44  # characters per legend line
LOG_RATIO = 30.0  # data spanning this ratio (1.5 decades) or more get a log axis


def colour(i: int) -> str:
    """The ``i``-th colour of :data:`PALETTE` (cycling)."""
    return PALETTE[i % len(PALETTE)]


@dataclass
class Line:
    """One curve. Lines that share a ``label`` share one legend entry."""

    x: Sequence[float]
    y: Sequence[float]
    label: str = ""
    colour: str | None = None
    dashed: bool = False
    marker: str | None = None
    width: float = 1.6


@dataclass
class Mark:
    """A vertical line at ``x`` with a short text (shown numbered, text in the legend)."""

    x: float
    text: str


@dataclass
class Points:
    """Labelled points (a scatter with a word beside each point)."""

    x: Sequence[float]
    y: Sequence[float]
    labels: Sequence[str]
    colour: str = PALETTE[0]
    name: str = ""


@dataclass
class Panel:
    """One set of axes."""

    title: str = ""
    lines: list[Line] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    points: list[Points] = field(default_factory=list)
    xlabel: str = ""
    ylabel: str = ""
    xlog: bool = False
    ylog: bool | None = None  # None: log when the data span LOG_RATIO or more
    percent: bool = False  # y values are shares in [0, 1], labelled as %
    ylim: tuple[float, float] | None = None
    clip: bool = True  # fit the axis to the lines that did not diverge
    hide_ticks: bool = False  # for maps whose axes carry no meaning (PCA)
    note: str = ""  # said in the panel's corner (and in Chart.notes)
    empty: str = "no data yet"


@dataclass
class PanelInfo:
    """What was decided while drawing one panel (for tests and captions)."""

    ylog: bool = False
    off_scale: list[str] = field(default_factory=list)
    lines: int = 0
    marks: int = 0


def _finite(y) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return y[np.isfinite(y)]


def _off_scale(lines: Sequence[Line]) -> list[int]:
    """Indices of lines far above the rest (or with no finite value at all)."""
    medians = []
    for line in lines:
        y = np.asarray(line.y, dtype=float)
        good = _finite(y)
        bad = len(good) < len(y)
        medians.append(np.inf if (bad or not len(good)) else float(np.median(np.abs(good))))
    finite = [m for m in medians if math.isfinite(m)]
    if len(lines) < 2 or not finite:
        return [i for i, m in enumerate(medians) if not math.isfinite(m) and lines[i].y]
    ref = float(np.median(finite))
    limit = DIVERGED_RATIO * ref if ref > 0 else np.inf
    out = [i for i, m in enumerate(medians) if m > limit]
    return out if len(out) < len(lines) else []


class Chart:
    """Panels side by side (``ncols`` per row), one shared legend below them."""

    def __init__(self, panels: Sequence[Panel], *, width: int = 1000, panel_height: int = 300,
                 ncols: int | None = None, legend: Sequence[Line] = (), dpi: int = 100,
                 css_class: str = ""):
        if not panels:
            raise ValueError("A chart needs at least one Panel.")
        self.panels = list(panels)
        self.width, self.panel_height, self.dpi = width, panel_height, dpi
        self.ncols = ncols or min(len(self.panels), 2)
        self.extra_legend = list(legend)
        self.css_class = css_class
        self.info: list[PanelInfo] = []
        self.notes: list[str] = []
        self._in_corner: list[str] = []  # notes drawn in full in a panel: not captioned again
        self._png: bytes | None = None

    # ------------------------------------------------------------------ output
    @property
    def png(self) -> bytes:
        if self._png is None:
            self._png = self._render()
        return self._png

    def html(self, *, alt: str = "chart") -> str:
        """A ``<figure>`` with the PNG inline and, as a caption, the notes the picture
        shortens (a panel's own note is drawn in full in its corner)."""
        data = base64.b64encode(self.png).decode("ascii")
        attrs = " ".join(
            f"data-panel{i}='{'log' if p.ylog else 'linear'}'" for i, p in enumerate(self.info))
        caption = "".join(f"<div>{html.escape(n)}</div>" for n in self.notes
                          if n not in self._in_corner)
        caption = (f"<figcaption class='tlw-chart-notes' style='color:#9a6700;font-size:0.9em'>"
                   f"{caption}</figcaption>") if caption else ""
        return (f"<figure class='tlw-chart {self.css_class}' {attrs} "
                f"data-lines='{sum(p.lines for p in self.info)}' style='margin:4px 0'>"
                f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt)}' "
                f"style='max-width:100%;height:auto'/>{caption}</figure>")

    def _repr_png_(self) -> bytes:
        return self.png

    # ------------------------------------------------------------------ drawing
    def _legend_entries(self):
        from matplotlib.lines import Line2D

        seen, handles = {}, []
        for line in [ln for p in self.panels for ln in p.lines] + self.extra_legend:
            if line.label and line.label not in seen:
                seen[line.label] = True
                handles.append(Line2D([], [], color=line.colour or "#333",
                                      linestyle="--" if line.dashed else "-",
                                      marker=line.marker, linewidth=line.width,
                                      label=line.label))
        for p in self.panels:
            for pts in p.points:
                if pts.name and pts.name not in seen:
                    seen[pts.name] = True
                    handles.append(Line2D([], [], color=pts.colour, marker="o", linestyle="none",
                                          label=pts.name))
        return handles

    def _render(self) -> bytes:
        from matplotlib.figure import Figure

        handles = self._legend_entries()
        mark_texts = self._mark_numbers()
        for h in handles:  # long labels wrap, so the legend never runs off the figure
            h.set_label(textwrap.fill(h.get_label(), LEGEND_WRAP))
        labels = [h.get_label() for h in handles] + [
            textwrap.fill(f"{k}: {t}", LEGEND_WRAP) for t, k in mark_texts.items()]
        longest = max((len(line) for s in labels for line in s.split("\n")), default=0)
        per_row = max(1, min(len(labels), (self.width - 20) // max(90, 7 * longest + 45)))
        legend_rows = math.ceil(len(labels) / per_row) if labels else 0
        rows = math.ceil(len(self.panels) / self.ncols)
        # The legend fills its columns top to bottom (the first ones one longer, as
        # matplotlib splits them); a row is as tall as its longest entry.
        ncols = min(per_row, len(labels)) or 1
        short, long_cols = divmod(len(labels), ncols)
        heights = [short + 1] * long_cols + [short] * (ncols - long_cols)
        starts = np.cumsum([0] + heights[:-1])
        row_lines = [max(labels[s + r].count("\n") + 1 for s, h in zip(starts, heights, strict=True)
                         if r < h) for r in range(legend_rows)]
        legend_px = (sum(n * 15 + 5 for n in row_lines) + 8) if legend_rows else 0
        height_px = rows * self.panel_height + legend_px
        # Fixed margins in pixels (constrained layout would cost a third of the drawing time).
        fig = Figure(figsize=(self.width / self.dpi, height_px / self.dpi), dpi=self.dpi)
        fig.subplots_adjust(left=70 / self.width, right=1 - 15 / self.width,
                            top=1 - 26 / height_px, bottom=(legend_px + 48) / height_px,
                            wspace=95 / (self.width / self.ncols),
                            hspace=74 / self.panel_height)
        axes = fig.subplots(rows, self.ncols, squeeze=False).ravel()
        self.info, self.notes, self._in_corner = [], [], []
        for ax, panel in zip(axes, self.panels, strict=False):
            self.info.append(self._draw_panel(ax, panel, mark_texts))
        for ax in axes[len(self.panels):]:
            ax.set_visible(False)
        if labels:
            from matplotlib.lines import Line2D

            mark_handles = [Line2D([], [], color="#666", linestyle=":",
                                   label=textwrap.fill(f"{k}: {t}", LEGEND_WRAP))
                            for t, k in mark_texts.items()]
            fig.legend(handles=handles + mark_handles, loc="lower center", ncols=per_row,
                       bbox_to_anchor=(0.5, 2 / height_px), fontsize=9, frameon=False,
                       handlelength=2.2, columnspacing=1.2)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi, pil_kwargs={"compress_level": 1})
        return buf.getvalue()

    def _mark_numbers(self) -> dict[str, int]:
        numbers: dict[str, int] = {}
        for p in self.panels:
            for m in sorted(p.marks, key=lambda m: m.x):
                numbers.setdefault(m.text, len(numbers) + 1)
        return numbers

    def _draw_panel(self, ax, panel: Panel, mark_numbers: dict[str, int]) -> PanelInfo:
        from matplotlib.ticker import PercentFormatter

        info = PanelInfo(lines=len(panel.lines), marks=len(panel.marks))
        ax.set_title(panel.title, fontsize=11, loc="left")
        ax.set_xlabel(panel.xlabel, fontsize=10)
        ax.set_ylabel(panel.ylabel, fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.25)
        lines = [ln for ln in panel.lines if len(ln.y)]
        if not lines and not panel.points:
            ax.text(0.5, 0.5, panel.empty, ha="center", va="center", color="#888",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            return info
        off = _off_scale(lines) if panel.clip else []
        kept = [ln for i, ln in enumerate(lines) if i not in off] or lines
        values = np.concatenate([_finite(ln.y) for ln in kept] or [np.zeros(0)])
        for pts in panel.points:
            values = np.concatenate([values, _finite(pts.y)])
        ylog = panel.ylog
        if ylog is None:
            ylog = bool(len(values) and values.min() > 0
                        and values.max() / values.min() >= LOG_RATIO and not panel.percent)
        info.ylog = bool(ylog)
        for line in lines:
            x = np.asarray(line.x, dtype=float)[: len(line.y)]
            y = np.asarray(line.y, dtype=float)[: len(x)]
            # A line of one or two points would be invisible or look like a slope: mark them.
            ax.plot(x, y, color=line.colour or "#333", linestyle="--" if line.dashed else "-",
                    marker=line.marker or ("o" if len(x) <= 2 else None), markersize=4,
                    linewidth=line.width)
        if panel.points:
            ax.margins(x=0.22, y=0.1)  # room for the words beside the points at the edges
        for pts in panel.points:
            ax.scatter(pts.x, pts.y, s=22, color=pts.colour, zorder=3)
            for label, x, y in zip(pts.labels, pts.x, pts.y, strict=True):
                ax.annotate(label, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=9,
                            color=pts.colour)
        if ylog:
            ax.set_yscale("log")
        if panel.xlog:
            ax.set_xscale("log")
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        elif off and len(values):
            lo, hi = float(values.min()), float(values.max())
            if ylog:
                ax.set_ylim(lo / 1.15, hi * 1.6)
            else:
                pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
                ax.set_ylim(lo - pad, hi + pad)
        if off:
            top = ax.get_ylim()[1]
            for i in off:
                line = lines[i]
                x = np.asarray(line.x, dtype=float)[: len(line.y)]
                y = np.asarray(line.y, dtype=float)[: len(x)]
                above = ~np.isfinite(y) | (y > top)
                ax.plot(x[above], np.full(above.sum(), top), linestyle="none", marker="^",
                        color=line.colour or "#333", markersize=4, clip_on=False)
            names = list(dict.fromkeys(lines[i].label for i in off if lines[i].label)) or [
                f"{len(off)} line(s)"]
            peak = max((float(_finite(lines[i].y).max()) for i in off if len(_finite(lines[i].y))),
                       default=float("nan"))
            peak_text = f"up to {peak:.3g}" if math.isfinite(peak) else "not a number"
            text = f"▲ off scale ({peak_text}): {', '.join(names)}"
            info.off_scale = names
            self.notes.append(f"{panel.title}: {text}; the axis shows the other lines.")
            # Above the axes, right of the title: it covers no curve and no mark.
            ax.set_title(textwrap.shorten(text, 70, placeholder="…"), loc="right", fontsize=8,
                         color="#9a6700")
        if ylog:
            readable_log_ticks(ax.yaxis)
        if panel.xlog:
            readable_log_ticks(ax.xaxis)
        if not panel.points:
            count_ticks(ax.xaxis, np.concatenate(
                [np.asarray(ln.x, dtype=float)[: len(ln.y)] for ln in lines]))
        if panel.note:
            self.notes.append(f"{panel.title}: {panel.note}")
            self._in_corner.append(self.notes[-1])
            ax.text(0.01, 0.02, panel.note, transform=ax.transAxes, ha="left", va="bottom",
                    fontsize=8, color="#555")
        if panel.percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        if panel.hide_ticks:
            ax.set_xticks([])
            ax.set_yticks([])
        self._draw_marks(ax, panel.marks, mark_numbers)
        return info

    @staticmethod
    def _draw_marks(ax, marks: Sequence[Mark], numbers: dict[str, int]) -> None:
        if not marks:
            return
        from matplotlib.transforms import blended_transform_factory

        trans = blended_transform_factory(ax.transData, ax.transAxes)
        x0, x1 = ax.get_xlim()
        placed: list[tuple[float, int]] = []
        for at in sorted({m.x for m in marks}):
            ax.axvline(at, color="#666", linestyle=":", linewidth=1)
        for m in sorted(marks, key=lambda m: (m.x, numbers[m.text])):
            # Numbers at the same spot stack downwards instead of overprinting.
            near = sum(1 for x, _ in placed if abs(x - m.x) < 0.04 * (x1 - x0))
            if any(x == m.x and k == numbers[m.text] for x, k in placed):
                continue
            placed.append((m.x, numbers[m.text]))
            ax.text(m.x, 0.97 - 0.09 * near, str(numbers[m.text]), transform=trans, ha="center",
                    va="top", fontsize=8, color="#333",
                    bbox={"facecolor": "#f6f8fa", "edgecolor": "#999", "boxstyle": "round,pad=0.15"})
