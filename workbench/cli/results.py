"""`workbench evaluate RUN_DIR`: a finished run measured on its val or test split.

Prints balanced accuracy, the shot bands, per-class metrics, calibration and the top losses (or,
with `--json`, one object: see `Evaluation.to_json`). `--tau` applies post-hoc logit adjustment
to the stored logits; `--tau auto` picks the tau with the best balanced accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `evaluate` to the CLI."""
    p = subparsers.add_parser("evaluate", help="measure a finished run on its val or test split")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `workbench train`")
    p.add_argument("--split", choices=("val", "test"), default="val")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--tau", default=None, metavar="TAU",
                   help="post-hoc logit adjustment: logits - TAU * log prior ('auto': best on "
                        "these predictions)")
    p.add_argument("--recompute", action="store_true",
                   help="classify the images again instead of reading the stored predictions")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from workbench.results.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, args.split, args.checkpoint, recompute=args.recompute)
    out = result.to_json()
    if args.tau is not None:
        out["logit_adjustment"] = _adjustment(result.predictions, args.tau)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_report(out)
    return 0


def _adjustment(preds: Any, tau_arg: str) -> dict[str, Any]:
    from workbench.errors import UserError
    from workbench.results.logit_adjust import TAU_RANGE, adjusted_metrics, best_tau

    if tau_arg == "auto":
        tau, _ = best_tau(preds)
    else:
        try:
            tau = float(tau_arg)
        except ValueError:
            raise UserError(f"--tau must be a number or 'auto', not {tau_arg!r}") from None
        if not TAU_RANGE[0] <= tau <= TAU_RANGE[1]:
            raise UserError(f"--tau = {tau} is out of range {list(TAU_RANGE)}")
    m = adjusted_metrics(preds, tau)
    return {"tau": tau, "top1": m.top1, "balanced_accuracy": m.balanced_acc,
            "shot_accuracy": m.shot_acc, "per_class_accuracy": m.per_class_acc}


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def _print_report(out: dict[str, Any]) -> None:
    shots = out["shot_accuracy"]
    print(f"{out['split']} split, {out['checkpoint']} checkpoint: {out['num_images']} images")
    print(f"balanced accuracy {_pct(out['balanced_accuracy'])} %   top-1 {_pct(out['top1'])} %   "
          f"loss {out['loss']:.4f}   ECE {100 * out['calibration']['ece']:.1f} %")
    print("shot bands: " + "   ".join(f"{b} {_pct(shots[b])} %" for b in shots))
    print(f"{'class':<20} {'train':>6} {'band':>6} {'prec':>6} {'recall':>6} {'f1':>6} "
          f"{'images':>6}")
    for row in out["per_class"]:
        print(f"{row['class'][:20]:<20} {row['train_count']:>6} {row['band'] or '':>6} "
              f"{_pct(row['precision']):>6} {_pct(row['recall']):>6} {_pct(row['f1']):>6} "
              f"{row['support']:>6}")
    if "logit_adjustment" in out:
        la = out["logit_adjustment"]
        print(f"logit adjustment tau {la['tau']:g}: balanced accuracy "
              f"{_pct(la['balanced_accuracy'])} %, " + ", ".join(
                  f"{b} {_pct(v)} %" for b, v in la["shot_accuracy"].items()))
    print("top losses:")
    for row in out["top_losses"][:10]:
        print(f"  {row['loss']:7.3f}  {row['true']} -> {row['predicted']} "
              f"({100 * row['prob']:.0f} %)  {row['path']}")
    for note in out["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(out["predictions_file"])
