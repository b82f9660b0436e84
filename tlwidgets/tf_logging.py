"""Keep TensorFlow's start-up logging out of the learner's notebook.

TensorFlow writes C++ log lines straight to file descriptor 2 (absl's "All log
messages before absl::InitializeLog() ...", "Could not find cuda drivers", oneDNN
notices, and on a machine without a GPU "failed call to cuInit"); a Jupyter kernel
shows them as a pink block. ``TF_CPP_MIN_LOG_LEVEL`` filters only some of them
(tensorflow/tensorflow#100442, checked with TensorFlow 2.19), and only when it is
set before TensorFlow is imported.

``tlwidgets/__init__.py`` imports this module first. Unless ``TLWIDGETS_TF_LOG=1``:

* ``TF_CPP_MIN_LOG_LEVEL`` is set to 2 (INFO and WARNING lines off) unless already set;
* the first ``import tensorflow`` (by Keras or anything else) and its device
  discovery run with file descriptor 2 captured; captured lines that are
  TensorFlow log lines are dropped, any other line is written back to stderr;
* TensorFlow's Python logger is set to ERROR.

The doctor (``python -m tlwidgets doctor``) remains the place that says which
device runs. With ``TLWIDGETS_TF_LOG=1`` nothing is changed.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["ENV_VAR", "enabled", "install", "is_log_line", "quiet_fd2"]

ENV_VAR = "TLWIDGETS_TF_LOG"

_LOG_LINE = re.compile(
    r"^(?:"
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"  # absl: I0000 00:00:1796.8 14963 x.cc:31]
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "  # tsl: 2025-09-17 14:44:05.157831: I ...
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow"  # cpu_feature_guard, line 2
    r")"
)


def enabled() -> bool:
    """Whether the user asked to see TensorFlow's logs (``TLWIDGETS_TF_LOG=1``)."""
    return os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def is_log_line(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's (C++ or absl) log lines."""
    return bool(_LOG_LINE.match(line))


@contextlib.contextmanager
def quiet_fd2() -> Iterator[None]:
    """Capture file descriptor 2; afterwards write back the lines that are not TF logs."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): do nothing
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not is_log_line(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with quiet_fd2():
            self._loader.exec_module(module)
            _after_import(module)


def _after_import(tf) -> None:
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Device discovery is where a machine without a GPU logs cuInit's failure.
    with contextlib.suppress(Exception):
        tf.config.list_physical_devices()


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the normal finders locate TensorFlow
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet TensorFlow's start-up logs (see the module docstring); idempotent."""
    if enabled():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:  # too late to capture its import; the level still helps
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


install()
