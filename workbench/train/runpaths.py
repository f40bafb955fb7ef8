"""The layout of a run folder, named once: every reader and writer of a run goes through here.

Layout::

    <runs>/<YYYYmmdd-HHMMSS>-<backbone>/
        config.toml            the RunConfig that produced the run
        metrics.jsonl          one JSON object per engine event, flushed as it happens
        metrics.csv            one row per epoch (`EPOCH_COLUMNS`), for spreadsheets and pandas
        events.out.tfevents.*  TensorBoard scalars (training and validation on one step axis)
        checkpoints/best.pt    the best epoch by validation balanced accuracy (weights only)
        checkpoints/last.pt    the latest epoch, with the optimizer state (what a resume reads)
        predictions/<split>-<checkpoint>.npz, .json   per-image logits (`train.predictions`)

No torch import: the GUI lists runs before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.errors import UserError

CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.jsonl"
METRICS_CSV_NAME = "metrics.csv"
CHECKPOINTS_DIR = "checkpoints"
PREDICTIONS_DIR = "predictions"
CHECKPOINTS = ("best", "last")  # the checkpoints a run keeps, by name


@dataclass(frozen=True)
class RunPaths:
    """Where each file of one run folder lives (whether or not it exists yet)."""

    root: Path

    @classmethod
    def of(cls, run_dir: str | Path) -> RunPaths:
        """The layout of the run folder `run_dir` (`~` expanded)."""
        return cls(Path(run_dir).expanduser())

    @property
    def config(self) -> Path:
        """`config.toml`: the config that produced the run."""
        return self.root / CONFIG_NAME

    @property
    def metrics(self) -> Path:
        """`metrics.jsonl`: every engine event."""
        return self.root / METRICS_NAME

    @property
    def metrics_csv(self) -> Path:
        """`metrics.csv`: one row per epoch."""
        return self.root / METRICS_CSV_NAME

    @property
    def checkpoints(self) -> Path:
        """The folder of `best.pt` and `last.pt`."""
        return self.root / CHECKPOINTS_DIR

    @property
    def best(self) -> Path:
        """`checkpoints/best.pt`."""
        return self.checkpoint("best")

    @property
    def last(self) -> Path:
        """`checkpoints/last.pt` (the only one with the optimizer state: resume reads it)."""
        return self.checkpoint("last")

    def checkpoint(self, which: str) -> Path:
        """`checkpoints/<which>.pt` for `which` in `CHECKPOINTS`."""
        if which not in CHECKPOINTS:
            raise UserError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, not {which!r}")
        return self.checkpoints / f"{which}.pt"

    @property
    def predictions(self) -> Path:
        """The folder of the stored per-image predictions."""
        return self.root / PREDICTIONS_DIR

    def prediction(self, split: str, checkpoint: str) -> Path:
        """The logits file of `split` under `checkpoint` (`<split>-<checkpoint>.npz`)."""
        return self.predictions / f"{split}-{checkpoint}.npz"

    def is_run(self) -> bool:
        """True for a real folder (not a link) holding `config.toml` and `metrics.jsonl`."""
        return (self.root.is_dir() and not self.root.is_symlink() and self.config.is_file()
                and self.metrics.is_file())
