"""Benchmark: regret of the advice on the validation suite (docs/advice-validation.md).

The ground truth (benchmarks/suite/advisor_ground_truth.json) holds, for each dataset of the
suite, the best validation balanced accuracy of full training runs of every strategy at 64 px.
This script rebuilds the datasets if needed, asks the advisor (quick, and thorough unless
`--quick`) on each set's training split, maps its recommendation onto a strategy of the table,
and prints the regret (points below the best strategy) of the textbook cell, of each constant
strategy and of the advisor at each budget: mean and worst over the sets.
Ends with one line: RESULT advisor_quick_mean=... advisor_quick_worst=... [advisor_thorough_...]
textbook_mean=... textbook_worst=... best_constant=NAME best_constant_mean=...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "suite"))

from advisor_suite import BACKBONE, INPUT_SIZE, TRUTH, WEIGHTS, build  # noqa: E402


def strategy_key(settings: dict, num_stages: int) -> str:
    """The ground-truth row a recommendation (or a textbook strategy) stands for."""
    freeze, head = int(settings["freeze_stages"]), str(settings["head"])
    if settings.get("weights") == "random":
        return "scratch"
    if freeze >= num_stages:
        if head == "linear":
            return "linear-frozen"
        return f"probe-{int(settings['feature_stage']) % num_stages}"
    if freeze == 0:
        return "finetune-uniform" if float(settings["lr_decay"]) >= 1.0 else "finetune"
    return "partial"


def advise(path: Path, budgets: list[str]) -> dict[str, dict]:
    """The advisor's textbook strategy and recommendation per budget on one set (the similarity
    pass is shared; the thorough trials are asked for after the quick report)."""
    import torch

    from workbench.advice.advisor import run_advice
    from workbench.advice.trials import TrialsReport, iter_trials
    from workbench.advice.verdict import recommend
    from workbench.config import RunConfig
    from workbench.data.scan import open_dataset

    torch.set_num_threads(1)
    config = RunConfig()
    config.data.path, config.data.input_size = str(path), INPUT_SIZE
    config.model.backbone, config.model.weights = BACKBONE, WEIGHTS
    config.train.device = "cpu"
    index = open_dataset(str(path), min_class_count=0)
    started = time.perf_counter()
    report = run_advice(index, config, budget="quick")
    out = {"textbook": {**report.strategy.to_dict(), "cell": report.cell},
           "quick": {**report.recommended, "seconds": time.perf_counter() - started,
                     "verdict": report.verdict}}
    if "thorough" in budgets:
        started = time.perf_counter()
        trials = [e for e in iter_trials(index, config, "thorough",
                                         median_per_class=report.images_per_class["median"])
                  if isinstance(e, TrialsReport)][-1]
        deep = recommend(report, trials, config)
        out["thorough"] = {**deep.recommended, "seconds": time.perf_counter() - started,
                           "verdict": deep.verdict}
    return out


def regrets(truth: dict, picks: dict[str, dict], num_stages: int) -> dict[str, dict[str, float]]:
    """Regret (points) per policy and set: textbook, advisor per budget, each constant."""
    table: dict[str, dict[str, float]] = {}
    for name, row in truth["sets"].items():
        scores = {k: v["score"] for k, v in row.items() if v.get("score") is not None}
        best = max(scores.values())
        for key, value in scores.items():
            table.setdefault(f"always {key}", {})[name] = best - value
        if name not in picks:
            continue
        for policy, settings in picks[name].items():
            key = strategy_key(settings, num_stages)
            if key in scores:
                table.setdefault(policy, {})[name] = best - scores[key]
    return table


def main(argv: list[str] | None = None) -> int:
    """Print the per-set picks, the regret table and the RESULT line."""
    from workbench.plan import backbone_stages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick budget only")
    parser.add_argument("--only", nargs="*", default=None, help="dataset names")
    args = parser.parse_args(argv)
    truth = json.loads(TRUTH.read_text())
    num_stages = len(backbone_stages(BACKBONE))
    budgets = ["quick"] if args.quick else ["quick", "thorough"]
    picks = {}
    for name in args.only or list(truth["sets"]):
        advice = advise(build(name), budgets)
        picks[name] = {"textbook": advice["textbook"],
                       **{f"advisor {b}": advice[b] for b in budgets}}
        row = truth["sets"][name]
        best = max((v["score"], k) for k, v in row.items() if v.get("score") is not None)
        said = ", ".join(f"{b}: {strategy_key(advice[b], num_stages)} "
                         f"({advice[b]['seconds']:.0f} s)" for b in budgets)
        print(f"{name:20s} best {best[1]} {best[0]:.1f}; textbook {advice['textbook']['cell']} "
              f"-> {strategy_key(advice['textbook'], num_stages)}; {said}", flush=True)
    table = regrets(truth, picks, num_stages)
    print(f"\n{'policy':28s} {'mean':>6s} {'worst':>6s}  sets")
    summary = {}
    for policy, per_set in sorted(table.items(), key=lambda kv: sum(kv[1].values())
                                  / max(1, len(kv[1]))):
        mean, worst = sum(per_set.values()) / len(per_set), max(per_set.values())
        summary[policy] = (mean, worst)
        print(f"{policy:28s} {mean:6.2f} {worst:6.2f}  {len(per_set)}")
    constants = {k: v for k, v in summary.items() if k.startswith("always ")}
    best_const = min(constants, key=lambda k: constants[k][0])
    parts = [f"advisor_{b}_mean={summary[f'advisor {b}'][0]:.2f} "
             f"advisor_{b}_worst={summary[f'advisor {b}'][1]:.2f}" for b in budgets]
    print("RESULT " + " ".join(parts)
          + f" textbook_mean={summary['textbook'][0]:.2f} "
          f"textbook_worst={summary['textbook'][1]:.2f} "
          f"best_constant={best_const.removeprefix('always ')} "
          f"best_constant_mean={constants[best_const][0]:.2f} sets={len(picks)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
