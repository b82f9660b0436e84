"""One channel for notices: stand-ins, conversions, resizes, skipped files.

A notice tells the learner what they are looking at ("a stand-in asset is used",
"grey images were converted to RGB"). It is said once, in words:

- in a Jupyter kernel, as a small styled note in the cell's output (no stderr box);
- elsewhere (scripts, tests), as a :class:`Notice` warning, which is a
  ``UserWarning`` so ``pytest.warns`` and ``warnings`` filters see it.

The same text is said once per process: repeating a cell does not repeat it.
Call :func:`notice`; never print *and* warn.
"""

from __future__ import annotations

import html
import sys
import warnings

__all__ = ["Notice", "notice", "reset"]

_said: set[str] = set()


class Notice(UserWarning):
    """A notice from tlwidgets: informative, not an error."""


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


def notice(message: str, *, key: str | None = None, stacklevel: int = 2) -> bool:
    """Say ``message`` once; return whether it was said now (False: said before).

    ``key`` groups messages that should be said only once even if their text
    differs (for example one notice per image folder).
    """
    key = key or message
    if key in _said:
        return False
    _said.add(key)
    if _in_kernel():
        from IPython.display import HTML, display

        display(HTML(
            '<div class="tlw-notice" style="border-left:3px solid #4a7bd0;'
            'background:#f2f6fc;padding:4px 8px;margin:2px 0;font-size:0.9em">'
            f"<b>Note:</b> {html.escape(message)}</div>"
        ))
    else:
        warnings.warn(message, Notice, stacklevel=stacklevel + 1)
    return True


def reset() -> None:
    """Forget which notices were said (tests, or a fresh run in the same kernel)."""
    _said.clear()
