"""Benchmark: start-up time of `workbench --help` and of the window, from a fresh process.

`help_s`: wall time of `python -m workbench --help` (the parser imports no torch).
`window_s`: from launching `python -m workbench gui DEMO` until the window's first paint (the
Dataset tab works from then on); `ready_s`: until the Model and Train tabs are built too (they
need torch, imported in the background); `stall_s`: the longest the GUI thread's event loop was
held up in between (a 10 ms heartbeat). The GUI runs offscreen, with its settings and data in a
temporary folder, and reports through `workbench_ui.app`'s start-up probe. Median of a few
runs each.
Goals on 2 cores: help_s under 0.5 and window_s under 2.
Ends with one line: RESULT help_s=... window_s=... ready_s=... stall_s=...
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# workbench_ui.app.STARTUP_PROBE_ENV (not imported: no Qt here)
PROBE_ENV = "WORKBENCH_STARTUP_PROBE"


def isolated_env(folder: Path) -> dict[str, str]:
    """The environment of a child: offscreen Qt, settings and data kept in `folder`."""
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(folder / "config"),
               WORKBENCH_DATA_DIR=str(folder / "data"), PYTHONPATH=str(ROOT))
    return env


def time_help(env: dict[str, str]) -> float:
    """Seconds for `python -m workbench --help` to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench", "--help"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_window(env: dict[str, str], dataset: str, timeout: float) -> tuple[float, float, float]:
    """Seconds from launch until the window is shown and until every tab is built; the longest
    stall of the GUI thread in between."""
    env = {**env, PROBE_ENV: "1"}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "workbench", "gui", dataset], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    moments: dict[str, float] = {}
    stall = float("nan")
    try:
        for line in child.stdout:  # type: ignore[union-attr]
            if line.startswith("startup: "):
                words = line.split()
                moments[words[1]] = time.perf_counter() - start
                stall = float(words[2]) if words[1] == "ready" else stall
            if "ready" in moments or time.perf_counter() - start > timeout:
                break
    finally:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if set(moments) != {"shown", "ready"}:
        raise SystemExit(f"the window never reported {sorted({'shown', 'ready'} - set(moments))}")
    return moments["shown"], moments["ready"], stall


def main() -> None:
    """Build the demo (untimed), time `--help` and the window, print the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per window run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-startup-") as tmp:
        env = isolated_env(Path(tmp))
        built = subprocess.run([sys.executable, "-m", "workbench", "demo-data"], env=env,
                               check=True, capture_output=True, text=True)
        dataset = built.stdout.strip().splitlines()[-1]
        time_help(env)  # warm-up: the page cache then holds the interpreter and our modules
        helps = [time_help(env) for _ in range(max(args.repeats, 5))]
        shown, ready, stall = zip(*(time_window(env, dataset, args.timeout)
                                    for _ in range(args.repeats)), strict=True)
    print(f"--help: {_seconds(helps)}; window shown: {_seconds(shown)}; all tabs: "
          f"{_seconds(ready)}; longest stall: {_seconds(stall)} ({os.cpu_count()} cores)")
    print(f"RESULT help_s={statistics.median(helps):.3f} window_s={statistics.median(shown):.3f} "
          f"ready_s={statistics.median(ready):.3f} stall_s={statistics.median(stall):.3f}")


def _seconds(values: tuple[float, ...] | list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"


if __name__ == "__main__":
    main()
