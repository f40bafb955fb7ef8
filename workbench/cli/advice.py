"""`workbench advise PATH --backbone NAME [--weights W] [--sample N] [--input-size PX]
[--budget quick|thorough] [--json]`."""

from __future__ import annotations

import argparse
import json

from workbench.advice.matrix import similarity_verdict
from workbench.cli import output
from workbench.config import RunConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `advise` command."""
    p = subparsers.add_parser(
        "advise", help="measure where a dataset sits on the rule-of-thumb matrix",
        description="Measure the dataset's size and its similarity to ImageNet with a pretrained "
        "backbone, and recommend how much of it to freeze or fine-tune.",
    )
    p.add_argument("path", help='a dataset folder, a CSV manifest, or "demo"')
    p.add_argument("--backbone", default="mobilenet_v2", help="torchvision model name")
    p.add_argument("--weights", default="DEFAULT", help="pretrained weights name or .pth file")
    p.add_argument("--sample", type=int, default=None,
                   help="training images to measure (default: advice.sample_size)")
    p.add_argument("--input-size", type=int, default=0, metavar="PX",
                   help="the input size you will train at (default: the weights' own); the "
                   "trials run at it")
    p.add_argument("--budget", choices=("quick", "thorough"), default="quick",
                   help="quick: linear probes on held-out training images and one short "
                   "fine-tuning trial at 64 px (about a minute on a CPU); thorough: every "
                   "fine-tuning candidate at 64 px, the best on every fold (a few minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_advise)


def run_advise(args: argparse.Namespace) -> int:
    """Run the advisor with a progress line on stderr; print the report."""
    from workbench.advice.advisor import run_advice
    from workbench.data.scan import open_configured

    config = RunConfig()
    config.data.path = args.path
    config.model.backbone, config.model.weights = args.backbone, args.weights
    if args.sample is not None:
        config.advice.sample_size = args.sample
    config.data.input_size = args.input_size
    config.validate()
    index = open_configured(config.data)
    progress = output.Progress()  # a tqdm bar per stage on a terminal; nothing in a log
    try:
        report = run_advice(index, config, budget=args.budget, trial_images=args.sample,
                            on_progress=lambda e: progress.show(e.stage, e.total or None, e.done))
    finally:
        progress.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report))
    return 0


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(value, fmt)


def format_report(report) -> str:
    """The report as readable text: numbers, the cell, the strategy and why."""
    ipc, sim, s = report.images_per_class, report.similarity, report.strategy
    th = report.thresholds
    lines = [
        f"backbone          {report.backbone} ({report.num_stages} stages)",
        f"sampled images    {report.sample['images']} from {report.sample['classes']} classes",
        f"images per class  min {ipc['min']:g}, median {ipc['median']:g}, max {ipc['max']:g} "
        f"(small below {th['small_images_per_class']})",
        f"BN divergence     {_num(sim['bn_divergence'], '.3g')} {report.bn_profile.direction}, "
        f"dissimilar above {th['similarity_threshold']:g} (heuristic)"
        + similarity_verdict(sim["bn_divergence"], th["similarity_threshold"], " -> "),
    ]
    if not report.bn_profile.available:
        lines.append(f"                  {report.bn_profile.message}")
    names = report.stage_names or [str(i) for i in range(report.num_stages)]
    profile = ", ".join(f"{name} {'-' if v is None else format(v, '.2f')}"
                        for name, v in zip(names, report.bn_profile.per_stage, strict=False))
    lines += [
        f"  by stage        {profile}",
        f"NCE / LEEP        {_num(sim['nce'])} / {_num(sim['leep'])} (evidence only: they track "
        "the number of classes)",
        "linear probe      " + _probe_line(report.probe, names),
        f"cell              {report.cell} ({report.cell_source})",
        f"strategy          {s.title}: freeze {s.freeze_stages} of {report.num_stages} stages, "
        f"head {s.head}, norm {s.norm_policy}, LR decay {s.lr_decay:g}",
        "",
        s.explanation,
    ]
    return "\n".join(lines + _trial_lines(report))


def _trial_lines(report) -> list[str]:
    """The trials table, the verdict and the settings applied."""
    trials = report.trials
    if trials is None:
        return []
    lines = ["", f"trials ({trials.budget} budget, {trials.images} training images, "
                 f"{trials.folds} folds held out, {trials.input_size} px"
                 + (", cached" if trials.cached else "") + ")"]
    out = [t for t in trials.trials if t.kind != "probe" and not t.pickable]
    for t in sorted(trials.trials, key=lambda t: -(t.score or 0.0)):
        mark = ("*" if trials.pick is not None and t.name == trials.pick.name else
                "x" if t in out else " ")
        value = "n/a" if t.score is None else f"{100 * t.score:5.1f}% ± {100 * t.spread:4.1f}"
        lines.append(f" {mark} {t.name:58s} {value}  {t.seconds:6.1f} s")
    if out:
        lines.append("  x: eliminated on the first fold by the one measured on every fold "
                     "(evidence only)")
    if trials.message:
        lines.append(f"  {trials.message}")
    r = report.recommended
    lines += ["", report.verdict,
              f"recommended       {r.get('name')}: freeze {r.get('freeze_stages')}, head "
              f"{r.get('head')}, feature stage {r.get('feature_stage')}, norm "
              f"{r.get('norm_policy')}, LR {r.get('lr')} (decay {r.get('lr_decay')}), "
              f"{r.get('input_size')} px"]
    return lines


def _probe_line(probe, names: list[str]) -> str:
    if not probe.rows:
        return probe.message or "not run"
    by_stage: dict[int, list[str]] = {}
    for r in probe.rows:
        by_stage.setdefault(r.stage, []).append(f"{r.pooling} {100 * r.accuracy:.0f}%")
    parts = [f"{names[s] if s < len(names) else s}: {', '.join(v)}" for s, v in by_stage.items()]
    best = probe.best
    return (f"{probe.folds}-fold balanced accuracy by stage; " + "; ".join(parts)
            + f" (best {names[best.stage] if best.stage < len(names) else best.stage} "
            f"{best.pooling})")
