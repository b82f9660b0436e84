"""Chart update time: one TrainingMonitor redraw of 12 runs x 100 epochs, two panels.

Target (issue 11): a redraw stays well under a second on a laptop CPU, so a redraw
per epoch costs little beside the epoch itself (the monitor also throttles batch
redraws to a fifth of the time spent drawing).

    python benchmarks/run.py charts          # full
    python benchmarks/run.py charts --quick  # fewer repeats
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _monitor(runs: int = 12, epochs: int = 100):
    import numpy as np

    from tlwidgets.training import RunLog
    from tlwidgets.widgets.training_monitor import TrainingMonitor

    monitor = TrainingMonitor(["loss", "accuracy"])
    for r in range(runs):
        log = RunLog(f"run {r}")
        for e in range(epochs):
            loss = 33.0 if r in (3, 7) else 2 * np.exp(-e / (5 + 3 * r)) + 0.05
            log.on_epoch_end(e, {"loss": loss, "val_loss": loss * 1.1,
                                 "accuracy": 1 - min(loss, 1) / 2,
                                 "val_accuracy": 1 - min(loss, 1) / 2 - 0.03})
        log.mark("unfroze 2 blocks", at=epochs // 2)
        monitor.add(log)
    return monitor


def main(quick: bool = False) -> list[dict]:
    monitor = _monitor()
    times = []
    for _ in range(3 if quick else 10):
        t0 = time.perf_counter()
        monitor.draw()
        times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    return [{"metric": "TrainingMonitor redraw, 12 runs x 100 epochs x 2 panels", "value": ms,
             "unit": "ms", "target": "< 1000", "ok": ms < 1000}]


if __name__ == "__main__":
    for row in main(quick="--quick" in sys.argv):
        print(row)
