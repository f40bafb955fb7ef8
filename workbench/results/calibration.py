"""Calibration: does a 90 % confident prediction come true 90 % of the time?

The reliability diagram bins predictions by their confidence (the top probability) and plots
each bin's accuracy against its mean confidence; the expected calibration error (ECE, Guo et al.
2017) is the gap between the two, averaged over the bins weighted by how many predictions fall
in each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_BINS = 15  # Guo et al.'s choice


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin `[edges[b], edges[b + 1])`: mean confidence, accuracy and count."""

    edges: list[float]
    confidence: list[float | None]  # None for an empty bin
    accuracy: list[float | None]
    count: list[int]
    ece: float

    def to_json(self) -> dict:
        """The JSON form: `ece` and one object per bin."""
        bins = [{"low": lo, "high": hi, "confidence": c, "accuracy": a, "count": n}
                for lo, hi, c, a, n in zip(self.edges[:-1], self.edges[1:], self.confidence,
                                            self.accuracy, self.count, strict=True)]
        return {"ece": self.ece, "bins": bins}


def reliability(probs: np.ndarray, labels: np.ndarray, num_bins: int = NUM_BINS) -> Reliability:
    """The reliability diagram and ECE of probabilities `[N, K]` against true labels `[N]`."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == labels) if len(probs) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # a confidence of exactly 1.0 belongs to the last bin
    which = np.minimum(np.digitize(conf, edges[1:-1], right=False), num_bins - 1)
    counts = np.bincount(which, minlength=num_bins)
    conf_sum = np.bincount(which, weights=conf, minlength=num_bins)
    hit_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=num_bins)
    mean_conf = [float(c / n) if n else None for c, n in zip(conf_sum, counts, strict=True)]
    acc = [float(h / n) if n else None for h, n in zip(hit_sum, counts, strict=True)]
    ece = float(np.abs(hit_sum - conf_sum).sum() / max(1, len(conf)))
    return Reliability([float(e) for e in edges], mean_conf, acc, [int(n) for n in counts], ece)
