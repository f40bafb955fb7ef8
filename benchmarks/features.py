"""Feature extraction as the advisor does it vs a plain `torch.no_grad()` loop, side by side.

Both run mobilenet_v2 (offline ImageNet weights) over the same pre-decoded demo images at the
weights' input size, in one process, alternating, best of a few repeats each. "Ours" is the
advisor's single shared pass (`iter_feature_pass`): forward pre-hooks on every BatchNorm layer
accumulating exact input moments, pooled outputs of four stages (GAP and 2x2 grid), and logits;
"plain" only computes the logits, in the default layout (what a notebook's loop runs).
ratio = ours, in the channels-last layout the advisor runs it in
(`models/fusion.inference_layout`), / plain throughput (goal >= 0.95). hooks = ours / the plain
loop, both channels-last (what the BN moments and pooling cost: in that layout the moments
reduce a strided view, 3 times their cost in the default layout). layout_speedup: the plain
loop channels-last against the default layout. fused_speedup: the plain loop with every
BatchNorm folded into its convolution, channels-last (`models/fusion.py`, what the trials' and
the engine's frozen-feature passes run) against the plain loop in the default layout. Then the
wall time of the whole `advise` on the demo (open the dataset, build the model, sample,
extract, probe, report) at the default sample size.

Run: `python benchmarks/features.py [--images 128] [--repeats 3]`; the last line is
`RESULT ratio=... hooks=... layout_speedup=... fused_speedup=... advise_s=...`.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch


def _batches(n: int, batch_size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    from workbench.data.scan import open_dataset
    from workbench.models.transforms import build_transform
    from workbench.models.weights import resolve_weights

    index = open_dataset("demo")
    transform = build_transform(resolve_weights("mobilenet_v2", "DEFAULT"), input_size=0)
    picked = index.indices("train")[:n]
    from workbench.data.images import load_image

    images = torch.stack([transform(load_image(index.paths[i])) for i in picked])
    labels = torch.tensor([index.labels[i] for i in picked])
    return [(images[s:s + batch_size], labels[s:s + batch_size], 0)
            for s in range(0, n, batch_size)]


def _ours(model, batches, device) -> float:
    from workbench.advice.advisor import iter_feature_pass
    from workbench.advice.probe import probe_stages

    start = time.perf_counter()
    for _ in iter_feature_pass(model, batches, device, probe_stages(model.num_stages)):
        pass
    return time.perf_counter() - start


def _plain(model, batches, device) -> float:
    start = time.perf_counter()
    model.eval()
    with torch.no_grad():
        for images, _, _ in batches:
            model(images.to(device)).cpu()
    return time.perf_counter() - start


def _advise_seconds(sample: int) -> float:
    from workbench.advice.advisor import run_advice
    from workbench.config import RunConfig
    from workbench.data.scan import open_dataset

    start = time.perf_counter()
    config = RunConfig()
    config.advice.sample_size = sample
    report = run_advice(open_dataset("demo"), config)
    seconds = time.perf_counter() - start
    print(f"advise on the demo: {report.cell}, BN divergence "
          f"{report.similarity['bn_divergence']:.3f}, {seconds:.1f} s for {sample} images")
    return seconds


def main() -> None:
    """Print both throughputs, the ratio and the advise wall time."""
    from workbench.devices import choose_device
    from workbench.models.fusion import fused_for_inference, inference_layout
    from workbench.models.transfer import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sample", type=int, default=256, help="advise sample size")
    args = parser.parse_args()
    device = choose_device("auto")
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    model = build_model("mobilenet_v2", weights="DEFAULT", num_classes=None).to(device).eval()
    batches = _batches(args.images)
    fused = fused_for_inference(model)
    last = inference_layout(copy.deepcopy(model))
    for net in (model, last, fused):  # warm-up
        _plain(net, batches[:1], device)
    _ours(last, batches[:1], device)
    ours, plain, plain_last, folded = [], [], [], []
    for _ in range(args.repeats):  # alternate, so drifts in machine load hit all four
        plain.append(_plain(model, batches, device))
        plain_last.append(_plain(last, batches, device))
        ours.append(_ours(last, batches, device))
        folded.append(_plain(fused, batches, device))
    plain_ips, last_ips = args.images / min(plain), args.images / min(plain_last)
    ours_ips = args.images / min(ours)
    ratio, hooks, layout = ours_ips / plain_ips, ours_ips / last_ips, last_ips / plain_ips
    speedup = min(plain) / min(folded)
    print(f"device {device}, {args.images} images at 224 px, best of {args.repeats}")
    print(f"plain no_grad loop: {plain_ips:.1f} images/s, channels-last "
          f"{last_ips:.1f}; advisor pass (BN moments + 4 stages pooled + logits, channels-last): "
          f"{ours_ips:.1f} images/s; plain loop with BatchNorm folded, channels-last: "
          f"{args.images / min(folded):.1f} images/s")
    advise_s = _advise_seconds(args.sample)
    print(f"RESULT ratio={ratio:.3f} hooks={hooks:.3f} layout_speedup={layout:.2f} "
          f"fused_speedup={speedup:.2f} advise_s={advise_s:.1f}")


if __name__ == "__main__":
    main()
