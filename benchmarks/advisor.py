"""Benchmark: regret of the advice on the validation suite (docs/advice-validation.md).

The ground truth (benchmarks/suite/advisor_ground_truth*.json) holds, for each dataset of the
suite, the best validation balanced accuracy of full training runs of each strategy at 64 px
(every strategy) and at 160 / 224 px (probe-1..4 and finetune-uniform, every set).
This script rebuilds the datasets if needed, asks the advisor (quick, and thorough unless
`--quick`) on each set's training split at each `--size` that has a ground truth, maps its
recommendation onto a strategy of the table, and prints the regret (points below the best
strategy) of the textbook cell, of each constant strategy and of the advisor at each budget:
mean and worst over the sets, and the advisor's seconds per set.
Ends with one line per size: RESULT size=... advisor_quick_mean=... advisor_quick_worst=...
advisor_quick_max_s=... [advisor_thorough_...] textbook_mean=... textbook_worst=...
best_constant=NAME best_constant_mean=... sets=...
Where a strategy was also run with other seeds (rows STRATEGY@seedN, `advisor_suite.py truth
--seed N`), the regret table is printed a second time with each score averaged over its seeds,
each such score's range over the seeds, and a second RESULT line (`truth=seed_mean`).
The rows "advisor BUDGET, within spread" (and `advisor_BUDGET_spread_mean`) score the same
trials' pick under the cautious rule the advisor does not follow: a cheaper candidate within the
best one's spread wins (what that caution would cost or save on each budget).
Constants are scored on the sets the advisor was asked on (`--only`).
`--dump DIR` writes each set's trial reports (every candidate's score and spread) as JSON, to
weigh another pick rule on the same trials.
`--trial-seeds N ...` asks once per seed of the fine-tuning trials (the advisor's is 0) and
adds a RESULT line per seed and one with each set's regret averaged over the seeds
(`trial_seeds=...`); `--trial-warmup` and `--quick-images` switch the trials' recipe (experiments:
docs/advice-validation.md). `--demo` prints the quick pick `train --demo` follows, per seed.
`--timing` instead times a cold quick (and thorough) ask on the demo's 1000 training images.
`--low-size PX` runs the fine-tuning trials at another input size than the advisor's 64 px (an
experiment: docs/advice-validation.md, "Tried, and not kept").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "suite"))

from advisor_suite import BACKBONE, SIZES, WEIGHTS, build, truth_file  # noqa: E402


def strategy_key(settings: dict, num_stages: int) -> str:
    """The ground-truth row a recommendation (or a textbook strategy) stands for."""
    freeze, head = int(settings["freeze_stages"]), str(settings["head"])
    if settings.get("weights") == "random":
        return "scratch"
    if settings.get("unfreeze_after_epochs"):
        return "lpft"  # no ground truth: a set where it is picked is left out and said so
    if freeze >= num_stages:
        if head == "linear":
            return "linear-frozen"
        return f"probe-{int(settings['feature_stage']) % num_stages}"
    if freeze == 0:
        return "finetune-uniform" if float(settings["lr_decay"]) >= 1.0 else "finetune"
    return "partial"


def predicted_gain(trials) -> float | None:
    """Points the trials predict fine-tuning everything with one LR gains over the best probe
    (the quick budget's one fine-tuning trial; the thorough budget runs it too)."""
    from workbench.advice.trials import choose
    from workbench.advice.trials.finetune import QUICK_CANDIDATE

    probe = choose([t for t in trials.trials if t.kind == "probe"])
    tuned = next((t for t in trials.trials if t.name == QUICK_CANDIDATE), None)
    if probe is None or tuned is None or probe.score is None or tuned.score is None:
        return None
    return 100 * (tuned.score - probe.score)


def spread_pick(trials) -> dict | None:
    """The settings the cautious rule would choose (`choose(within_spread=True)`: the cheapest
    candidate within the best one's spread): the advisor picks by the scores alone, and this
    row measures what the caution would cost in regret (or save)."""
    from workbench.advice.trials import choose

    pick = choose(trials.trials, within_spread=True)
    return None if pick is None else pick.settings()


def protocol_rows(row: dict) -> dict:
    """A set's rows of the protocol's seed 0 (rows named STRATEGY@seedN are the same strategy
    run with another seed: they measure how far a score moves with the seed)."""
    return {k: v for k, v in row.items() if "@seed" not in k}


def seed_mean_truth(truth: dict) -> dict | None:
    """The ground truth with each strategy's score the mean over every seed it was run with;
    None when no strategy was run with another seed."""
    if not any("@seed" in k for row in truth["sets"].values() for k in row):
        return None
    sets = {}
    for name, row in truth["sets"].items():
        runs: dict[str, list[float]] = {}
        for key, value in row.items():
            if value.get("score") is not None:
                runs.setdefault(key.split("@seed")[0], []).append(value["score"])
        sets[name] = {k: {"score": sum(v) / len(v), "seeds": v} for k, v in runs.items()}
    return {**truth, "sets": sets}


def seed_report(truth: dict) -> str:
    """Per set, each strategy run with several seeds: its scores and their range."""
    lines, ranges = [], []
    for name, row in truth["sets"].items():
        for key, value in row.items():
            if len(value.get("seeds", [])) > 1:
                seeds = value["seeds"]
                ranges.append(max(seeds) - min(seeds))
                lines.append(f"{name:20s} {key}: {', '.join(f'{x:.1f}' for x in seeds)} "
                             f"(range {ranges[-1]:.1f})")
    mean = sum(ranges) / len(ranges) if ranges else 0.0
    return "\n".join(lines + [f"mean range over seeds: {mean:.2f} points"])


def true_gain(row: dict) -> float | None:
    """Points fine-tuning everything with one LR gains over the best probe in a ground truth."""
    probes = [v["score"] for k, v in row.items() if k.startswith("probe-") and v.get("score")]
    tuned = row.get("finetune-uniform", {}).get("score")
    return None if tuned is None or not probes else tuned - max(probes)


def advise(path: Path, budgets: list[str], size: int) -> dict[str, dict]:
    """The advisor's textbook strategy and recommendation per budget on one set (the similarity
    pass is shared; the thorough trials are asked for after the quick report), with each
    budget's predicted gain of fine-tuning over the best probe."""
    import torch

    from workbench.advice.advisor import run_advice
    from workbench.advice.trials import TrialsReport, iter_trials
    from workbench.advice.verdict import recommend
    from workbench.config import RunConfig
    from workbench.data.scan import open_dataset

    torch.set_num_threads(THREADS)
    config = RunConfig()
    config.data.path, config.data.input_size = str(path), size
    config.model.backbone, config.model.weights = BACKBONE, WEIGHTS
    config.train.device = "cpu"
    index = open_dataset(str(path), min_class_count=0)
    started = time.perf_counter()
    report = run_advice(index, config, budget="quick")
    reports = {"quick": report.trials.to_dict()}
    out = {"textbook": {**report.strategy.to_dict(), "cell": report.cell},
           "quick": {**report.recommended, "seconds": time.perf_counter() - started,
                     "verdict": report.verdict, "gain": predicted_gain(report.trials)},
           "quick, within spread": spread_pick(report.trials)}
    if "thorough" in budgets:
        started = time.perf_counter()
        trials = [e for e in iter_trials(index, config, "thorough",
                                         median_per_class=report.images_per_class["median"])
                  if isinstance(e, TrialsReport)][-1]
        deep = recommend(report, trials, config)
        out["thorough"] = {**deep.recommended, "seconds": time.perf_counter() - started,
                           "verdict": deep.verdict, "gain": predicted_gain(trials)}
        out["thorough, within spread"] = spread_pick(trials)
        reports["thorough"] = trials.to_dict()
    out["reports"] = reports
    return out


def regrets(truth: dict, picks: dict[str, dict], num_stages: int) -> dict[str, dict[str, float]]:
    """Regret (points) per policy and set: textbook, advisor per budget, each constant."""
    table: dict[str, dict[str, float]] = {}
    for name, row in truth["sets"].items():
        if name not in picks:  # constants are compared on the sets the advisor was asked on
            continue
        scores = {k: v["score"] for k, v in protocol_rows(row).items()
                  if v.get("score") is not None}
        best = max(scores.values())
        for key, value in scores.items():
            table.setdefault(f"always {key}", {})[name] = best - value
        for policy, settings in picks[name].items():
            if settings is None:  # no trial to pick from
                continue
            key = strategy_key(settings, num_stages)
            if key in scores:
                table.setdefault(policy, {})[name] = best - scores[key]
            else:
                print(f"  {name}: {policy} -> {key}, not in this size's ground truth (left out)")
    return table


# the rows a set's ground truth needs before its regret means anything (best probes and the
# fine-tuning that wins where they fall short)
COMPLETE = {"probe-2", "probe-3", "probe-4", "finetune-uniform"}
THREADS = 1  # the suite's protocol; --timing uses the two cores the goal is stated for


def one_size(size: int, budgets: list[str], only: list[str] | None,
             dump: Path | None = None, low_size: int | None = None,
             seeds: tuple[int, ...] = (0,), tag: str = "") -> str:
    """Picks, regret table and RESULT line at one input size (the sets with ground truth);
    with `dump`, each set's trial reports go to DUMP/SIZE/SET.json; `low_size`: the trials'
    size of a `--low-size` experiment, said on its RESULT lines; with several trial `seeds`,
    a RESULT line per seed and one of the regret averaged over them (`tag` follows the size
    on every line)."""
    from workbench.advice.trials import finetune
    from workbench.plan import backbone_stages

    truth = json.loads(truth_file(size).read_text())
    num_stages = len(backbone_stages(BACKBONE))
    picks: dict[int, dict] = {seed: {} for seed in seeds}
    seconds: dict[str, list[float]] = {b: [] for b in budgets}
    print(f"\n== {size} px ==")
    for name in [n for n in (only or list(truth["sets"])) if n in truth["sets"]]:
        lacks = sorted(COMPLETE - set(truth["sets"][name]))
        if lacks:
            print(f"{name:20s} left out: its ground truth lacks {', '.join(lacks)}")
            continue
        for seed in seeds:
            finetune.TRIAL_SEED = seed
            advice = advise(build(name), budgets, size)
            if dump is not None:
                folder = dump / str(size) / ("" if len(seeds) == 1 else f"seed{seed}")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.json").write_text(json.dumps(advice["reports"], indent=1))
            picks[seed][name] = {"textbook": advice["textbook"],
                                 **{f"advisor {b}": advice[b] for b in budgets},
                                 **{f"advisor {b}, within spread": advice[f"{b}, within spread"]
                                    for b in budgets}}
            for b in budgets:
                seconds[b].append(advice[b]["seconds"])
            _print_set(name, truth["sets"][name], advice, budgets, num_stages,
                       "" if len(seeds) == 1 else f" [trial seed {seed}]")
    finetune.TRIAL_SEED = 0
    sets = len(picks[seeds[0]])
    if not sets:
        return f"RESULT size={size} sets=0 (no set with a complete ground truth at this size)"
    tag += f" trials_at={min(size, low_size)}" if low_size else ""
    averaged = seed_mean_truth(truth)
    lines = []
    for label, ground in [("", truth)] + ([(" truth=seed_mean", averaged)] if averaged else []):
        if label:
            print(f"\n-- {size} px, scores averaged over the seeds each strategy ran with --")
            print(seed_report(averaged))
        tables = [regrets(ground, picks[seed], num_stages) for seed in seeds]
        if len(seeds) > 1:
            for seed, table in zip(seeds, tables, strict=True):
                print(f"\n-- {size} px, trial seed {seed}{label} --")
                lines.append(result_line(size, table, budgets, seconds, sets,
                                         f"{tag} trial_seed={seed}{label}"))
            print(f"\n-- {size} px, regret averaged over trial seeds "
                  f"{', '.join(map(str, seeds))}{label} --")
            seeds_tag = ",".join(map(str, seeds))
            lines.append(result_line(size, mean_table(tables), budgets, seconds, sets,
                                     f"{tag} trial_seeds={seeds_tag}{label}"))
        else:
            lines.append(result_line(size, tables[0], budgets, seconds, sets, tag + label))
    return "\n".join(lines)


def _print_set(name: str, row: dict, advice: dict, budgets: list[str], num_stages: int,
               said_seed: str) -> None:
    row = protocol_rows(row)
    best = max((v["score"], k) for k, v in row.items() if v.get("score") is not None)
    said = ", ".join(f"{b}: {strategy_key(advice[b], num_stages)} "
                     f"({advice[b]['seconds']:.0f} s, gain {_points(advice[b]['gain'])})"
                     for b in budgets)
    print(f"{name:20s} best {best[1]} {best[0]:.1f}; fine-tuning's gain over the best probe "
          f"{_points(true_gain(row))}; textbook {advice['textbook']['cell']} "
          f"-> {strategy_key(advice['textbook'], num_stages)}; {said}{said_seed}", flush=True)


def mean_table(tables: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each policy's regret per set averaged over the tables (of trial seeds) that have it."""
    found: dict[str, dict[str, list[float]]] = {}
    for table in tables:
        for policy, per_set in table.items():
            for name, value in per_set.items():
                found.setdefault(policy, {}).setdefault(name, []).append(value)
    return {p: {n: sum(v) / len(v) for n, v in per_set.items()} for p, per_set in found.items()}


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _spread_part(summary: dict[str, tuple[float, float]], budget: str) -> str:
    found = summary.get(f"advisor {budget}, within spread")
    return "" if found is None else f" advisor_{budget}_spread_mean={found[0]:.2f}"


def result_line(size: int, table: dict[str, dict[str, float]], budgets: list[str],
                seconds: dict[str, list[float]], sets: int, label: str = "") -> str:
    """Print the regret table; the RESULT line of one size (`label` follows the size)."""
    print(f"\n{'policy':28s} {'mean':>6s} {'worst':>6s}  sets")
    summary = {}
    for policy, per_set in sorted(table.items(), key=lambda kv: sum(kv[1].values())
                                  / max(1, len(kv[1]))):
        mean, worst = sum(per_set.values()) / len(per_set), max(per_set.values())
        summary[policy] = (mean, worst)
        print(f"{policy:28s} {mean:6.2f} {worst:6.2f}  {len(per_set)}")
    # a constant measured on fewer sets (a strategy a budget picked once) is no rival
    constants = {k: v for k, v in summary.items()
                 if k.startswith("always ") and len(table[k]) == sets}
    best_const = min(constants, key=lambda k: constants[k][0])
    parts = [f"advisor_{b}_mean={summary[f'advisor {b}'][0]:.2f} "
             f"advisor_{b}_worst={summary[f'advisor {b}'][1]:.2f} "
             f"advisor_{b}_mean_s={sum(seconds[b]) / len(seconds[b]):.0f} "
             f"advisor_{b}_max_s={max(seconds[b]):.0f}"
             + _spread_part(summary, b) for b in budgets]
    return (f"RESULT size={size}{label} " + " ".join(parts)
            + f" textbook_mean={summary['textbook'][0]:.2f} "
            f"textbook_worst={summary['textbook'][1]:.2f} "
            f"best_constant={best_const.removeprefix('always ')} "
            f"best_constant_mean={constants[best_const][0]:.2f} sets={sets}")


def timing(sizes: list[int], budgets: list[str]) -> None:
    """A cold ask (empty cache) on the demo's training images, per size and budget: wall and
    CPU seconds, two threads."""
    from workbench.advice.advisor import run_advice
    from workbench.config import RunConfig
    from workbench.data.demo import build_demo
    from workbench.data.scan import open_dataset

    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="advice-timing-")
    import torch

    torch.set_num_threads(2)
    root = build_demo()
    index = open_dataset(str(root), min_class_count=0)
    for size in sizes:
        for budget in budgets:
            config = RunConfig()
            config.data.path, config.data.input_size = str(root), size
            config.train.device = "cpu"
            wall, cpu = time.perf_counter(), time.process_time()
            report = run_advice(index, config, budget=budget)
            print(f"RESULT timing size={size} budget={budget} "
                  f"wall_s={time.perf_counter() - wall:.0f} cpu_s={time.process_time() - cpu:.0f} "
                  f"images={report.trials.images} pick={report.trials.pick.name!r}", flush=True)


def demo_picks(seeds: list[int], tag: str) -> None:
    """The quick pick `train --demo` would follow (its config, the advisor's threads) per trial
    seed, with the quick trial's predicted gain of fine-tuning over the best probe."""
    import torch

    from workbench.advice.advisor import run_advice
    from workbench.advice.demo import demo_setup
    from workbench.advice.trials import finetune

    torch.set_num_threads(THREADS)
    config, index = demo_setup()
    config.train.device = "cpu"
    for seed in seeds:
        finetune.TRIAL_SEED = seed
        report = run_advice(index, config, budget="quick")
        print(f"RESULT demo{tag} trial_seed={seed} pick={report.recommended['name']!r} "
              f"gain={_points(predicted_gain(report.trials))} "
              f"seconds={report.trials.seconds:.0f}", flush=True)
    finetune.TRIAL_SEED = 0


def main(argv: list[str] | None = None) -> int:
    """Per size: the per-set picks, the regret table and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick budget only")
    parser.add_argument("--only", nargs="*", default=None, help="dataset names")
    parser.add_argument("--size", nargs="*", type=int, default=None, choices=SIZES,
                        help="input sizes (default: every size with a ground truth)")
    parser.add_argument("--timing", action="store_true",
                        help="time cold asks on the demo's 1000 images instead")
    parser.add_argument("--low-size", type=int, default=None,
                        help="the fine-tuning trials' input size (default: the advisor's)")
    parser.add_argument("--dump", type=Path, default=None,
                        help="write each set's trial reports to DUMP/SIZE/SET.json")
    parser.add_argument("--demo", action="store_true",
                        help="the quick pick train --demo follows, per trial seed, instead")
    parser.add_argument("--trial-seeds", nargs="+", type=int, default=[0],
                        help="the fine-tuning trials' seeds (default: the advisor's 0)")
    parser.add_argument("--trial-warmup", choices=["tenth", "run"], default=None,
                        help="the trials' LR warm-up (an experiment; default: the advisor's)")
    parser.add_argument("--quick-images", type=int, default=None,
                        help="images the quick trial fine-tunes on (an experiment)")
    args = parser.parse_args(argv)
    import workbench.advice.trials.fidelity as fidelity
    from workbench.advice.trials import finetune

    tag = ""
    if args.low_size:
        fidelity.LOW_SIZE = args.low_size
    if args.trial_warmup:
        finetune.WARMUP = args.trial_warmup
        tag += f" trial_warmup={args.trial_warmup}"
    if args.quick_images:
        fidelity.QUICK_IMAGES = args.quick_images
        tag += f" quick_images={args.quick_images}"
    budgets = ["quick"] if args.quick else ["quick", "thorough"]
    sizes = args.size or [s for s in SIZES if truth_file(s).is_file()]
    if args.timing:
        timing(args.size or [160, 224], budgets)
        return 0
    if args.demo:
        demo_picks(args.trial_seeds, tag)
        return 0
    lines = [one_size(size, budgets, args.only, args.dump, args.low_size,
                      tuple(args.trial_seeds), tag) for size in sizes]
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
