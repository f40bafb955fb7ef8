"""Does training stall the GUI? A 10 ms heartbeat in the GUI thread while the engine trains.

The real Train panel (offscreen, 1280x800) trains the demo dataset in its worker thread, with its
live plots redrawing; a precise 10 ms QTimer in the GUI thread records the time between its
ticks. A gap much longer than 10 ms is a moment the window could not repaint or take input.

Prints the gap percentiles; the last line is `RESULT p99_ms=... max_ms=...` (goal: p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.config import RunConfig  # noqa: E402
from workbench.data.scan import open_dataset  # noqa: E402
from workbench_ui.state import AppState  # noqa: E402
from workbench_ui.train_panel import TrainPanel  # noqa: E402

HEARTBEAT_MS = 10


def parse_args() -> argparse.Namespace:
    """Command-line options: the size of the run the heartbeat watches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=30, help="training batches per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--weights", default="IMAGENET1K_V1",
                        help='mobilenet_v2 weights: a weights name or "random"')
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    return parser.parse_args()


def demo_config(args: argparse.Namespace, out_dir: str) -> RunConfig:
    """A short fine-tuning run of mobilenet_v2 on the demo digits, recorded under `out_dir`."""
    config = RunConfig()
    config.train.out_dir = out_dir
    config.data.path = "demo"
    config.data.input_size = args.input_size
    config.model.weights = args.weights
    config.train.epochs = args.epochs
    config.train.batch_size = args.batch_size
    config.train.limit_train_batches = args.batches
    return config.validate()


class Heartbeat:
    """Records the time between ticks of a precise timer in the GUI thread."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        self.gaps_ms: list[float] = []
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        """Start ticking; gaps are recorded from the second tick on."""
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now


def run(args: argparse.Namespace, out_dir: str) -> tuple[Heartbeat, TrainPanel, float]:
    """Train in the panel's worker while the heartbeat ticks; returns when the run has ended."""
    app = QApplication.instance() or QApplication([])
    state = AppState(demo_config(args, out_dir))
    state.set_dataset(open_dataset("demo"), source="demo")
    panel = TrainPanel(state)
    panel.resize(1280, 800)
    panel.show()
    heartbeat = Heartbeat()
    timed_out = []
    panel.run_finished.connect(app.quit)
    QTimer.singleShot(int(args.timeout * 1000), lambda: (timed_out.append(True), app.quit()))
    app.processEvents()  # the window's first paint is start-up, not training: before the clock
    started = time.perf_counter()
    heartbeat.start()
    panel.start()
    app.exec()
    heartbeat.stop()
    elapsed = time.perf_counter() - started
    if timed_out:
        panel.shutdown(5.0)
        raise SystemExit(f"the run did not end within {args.timeout:.0f} s")
    return heartbeat, panel, elapsed


def main() -> int:
    """Run the benchmark and print the gap statistics."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="gui-stall-") as out_dir:
        heartbeat, panel, elapsed = run(args, out_dir)
    if panel.notice.kind == "error":
        print(f"training failed: {panel.notice.text()}", file=sys.stderr)
        return 1
    gaps = np.asarray(heartbeat.gaps_ms)
    p50, p99 = np.percentile(gaps, [50, 99])
    print(f"run: {elapsed:.1f} s, {args.epochs} epochs x {args.batches} batches of "
          f"{args.batch_size} at {args.input_size} px ({args.weights}) on "
          f"{panel.device or 'the default device'}")
    print(f"heartbeat every {HEARTBEAT_MS} ms: {len(gaps)} ticks, p50 {p50:.1f} ms, "
          f"gaps over 50 ms: {int((gaps > 50).sum())}")
    print(f"RESULT p99_ms={p99:.1f} max_ms={gaps.max():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
