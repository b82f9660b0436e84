"""The learning-rate finder's curve: loss against learning rate, the suggestion marked.

    found = training.lr_find(model, x, y)
    lr_finder_chart(found)      # shows itself in a notebook
"""

from __future__ import annotations

import numpy as np

from tlwidgets.training import LRFinderResult
from tlwidgets.widgets.charts import PALETTE, Chart, Line, Mark, Panel


def lr_finder_chart(result: LRFinderResult, *, width: int = 760, height: int = 340) -> Chart:
    """Raw and smoothed loss per learning rate (log x), the lowest loss and the suggestion."""
    lrs = np.asarray(result.lrs, dtype=float)
    smooth = np.asarray(result.losses, dtype=float)
    raw = np.asarray(result.raw_losses, dtype=float)[: len(lrs)]
    if not len(lrs):
        raise ValueError("The LR finder result has no learning rates: run lr_find first.")
    finite = np.where(np.isfinite(smooth), smooth, np.inf)
    best = int(np.argmin(finite))
    # Fit the axis to the useful part: from the lowest loss up to the starting loss,
    # so the final blow-up does not squash the dip the suggestion comes from.
    lo = float(np.nanmin(np.where(np.isfinite(raw), raw, np.nan)).clip(max=finite[best]))
    hi = float(max(np.nanmax(smooth[: best + 1]), smooth[0])) * 1.25
    clipped = bool(np.any(~np.isfinite(raw)) or np.nanmax(np.where(np.isfinite(raw), raw,
                                                                   -np.inf)) > hi)
    lines = [Line(lrs, raw, label="loss of each batch", colour="#b0b0b0", width=1.0),
             Line(lrs, smooth, label="smoothed loss", colour=PALETTE[0], width=2.0),
             Line([lrs[best]], [smooth[best]], label="lowest smoothed loss", colour=PALETTE[3],
                  marker="o", width=0)]
    panel = Panel("Learning-rate finder: loss while the rate grows each batch", lines=lines,
                  xlog=True, ylog=False, clip=False, ylim=(lo - 0.05 * (hi - lo), hi),
                  xlabel="learning rate (log scale)", ylabel="training loss",
                  marks=[Mark(result.suggestion,
                              f"suggested rate {result.suggestion:.2g} (lowest loss / 10)")],
                  note="the loss runs off the top on the right: it diverged" if clipped else "")
    return Chart([panel], width=width, panel_height=height, css_class="tlw-lr-finder")
