"""Axis ticks a reader can read: plain numbers on log axes, whole numbers for counts.

Used by the course's matplotlib figures (``learning_curves``) and its chart component
(``tlwidgets.widgets.charts``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["count_ticks", "plain_number", "readable_log_ticks"]


def plain_number(v: float) -> str:
    """0.2, 5, 1,000, 100,000: whole numbers from 1,000 with thousands separators."""
    return f"{v:,.0f}" if abs(v) >= 1000 and v == round(v) else f"{v:g}"


def readable_log_ticks(axis) -> None:
    """Log ticks labelled as plain numbers (0.2, 0.5, 1, 2), with 2 and 5 between decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 99
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: plain_number(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 1.0))
    axis.set_minor_formatter(NullFormatter())


def count_ticks(axis, values) -> bool:
    """Ticks at whole numbers when ``values`` (epochs, batches, training sizes) are counts.

    A few distinct counts (a smoke run's one epoch, the sizes 5, 10, 20 of a learning
    curve) get a tick each, so a single point is never labelled 0.96, 0.98, 1.00;
    more of them get integer ticks. Returns whether the ticks were set.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    v = np.asarray([x for x in np.ravel(np.asarray(values, dtype=float)) if math.isfinite(x)])
    if not len(v) or not np.allclose(v, np.round(v)):
        return False
    distinct = np.unique(np.round(v))
    if len(distinct) <= 8:
        axis.set_major_locator(FixedLocator(distinct))
        axis.set_minor_locator(NullLocator())
    elif axis.get_scale() == "linear":
        axis.set_major_locator(MaxNLocator(integer=True))
    else:
        return False
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    return True
