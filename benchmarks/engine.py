"""Engine overhead: the training engine vs a plain hand-written torch loop, side by side.

Same dataset (the digits-lt demo), model, weights, batch size, input size, loader workers, thread
count and (on CUDA) AMP + channels_last. Throughput is images per second over the training
batches after a warm-up, measured the same way for both; the two alternate for a few rounds
and the best round of each counts (robust to other processes on a shared machine). Last line:
`RESULT engine_img_s=... plain_img_s=... ratio=... peak_mem_mb=...` (goal: ratio >= 0.97).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench import devices  # noqa: E402
from workbench.config import RunConfig  # noqa: E402
from workbench.data.demo import build_demo  # noqa: E402
from workbench.data.scan import open_dataset  # noqa: E402
from workbench.data.torch_dataset import ImageDataset  # noqa: E402
from workbench.plan import plan_run  # noqa: E402
from workbench.train import setup  # noqa: E402
from workbench.train.engine import Trainer  # noqa: E402
from workbench.train.events import BatchDone, Failed, RunStarted  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options (defaults keep a 2-core CPU run to about a minute)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=12, help="measured batches (after warm-up)")
    p.add_argument("--warmup", type=int, default=3, help="batches not measured")
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--weights", default="IMAGENET1K_V1")
    p.add_argument("--workers", type=int, default=-1)
    p.add_argument("--rounds", type=int, default=3,
                   help="alternate plain / engine this many times; the best of each counts")
    p.add_argument("--repeat", type=int, default=1,
                   help="list the training images this many times (more batches per epoch)")
    return p.parse_args()


def make_config(args: argparse.Namespace, out: str) -> RunConfig:
    """Full fine-tuning of mobilenet_v2 on the demo, capped at warm-up + measured batches."""
    c = RunConfig()
    c.data.path = str(build_demo())
    c.data.input_size = args.input_size
    c.data.num_workers = args.workers
    c.model.weights = args.weights
    c.train.epochs = 1
    c.train.batch_size = args.batch_size
    c.train.device = args.device
    c.train.limit_train_batches = args.warmup + args.batches
    c.train.out_dir = out
    return c.validate()


def training_only_index(config: RunConfig, repeat: int = 1):  # -> DatasetIndex
    """The demo's training images (repeated), without validation: neither side evaluates."""
    index = open_dataset(config.data.path)
    train = index.indices("train") * repeat
    return dataclasses.replace(index, paths=[index.paths[i] for i in train],
                               labels=[index.labels[i] for i in train],
                               splits=["train"] * len(train))


def throughput(stamps: list[float], sizes: list[int], warmup: int) -> float:
    """Images per second between the end of the warm-up and the last measured batch."""
    return sum(sizes[warmup + 1:]) / max(stamps[-1] - stamps[warmup], 1e-9)


def run_engine(config: RunConfig, index, warmup: int) -> tuple[float, str]:
    """Train with the engine; its BatchDone timestamps give the throughput."""
    stamps, sizes, device = [], [], "?"
    for event in Trainer(config, index=index).run():
        if isinstance(event, RunStarted):
            device = event.device
        elif isinstance(event, BatchDone):
            stamps.append(time.perf_counter())
            sizes.append(config.train.batch_size)
        elif isinstance(event, Failed):
            raise SystemExit(f"engine failed: {event.message}")
    return throughput(stamps, sizes, warmup), device


def run_plain(config: RunConfig, index, warmup: int) -> float:
    """The loop anyone would write: model, loader, SGD, cross-entropy, AMP on CUDA."""
    device = devices.choose_device(config.train.device)
    devices.configure_threads(device)
    torch.manual_seed(0)
    plan = plan_run(config, index)
    model = plan.build_model()
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda else torch.preserve_format
    model.to(device, memory_format=fmt).train()
    transform = plan.transform(train=True)
    loader = setup.make_loader(ImageDataset(index, index.indices("train"), transform),
                               config.train.batch_size, shuffle=True, pin_memory=cuda,
                               workers=devices.choose_num_workers(config.data.num_workers))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=cuda)
    stamps, sizes = [], []
    for i, (images, labels, _) in enumerate(loader):
        if i >= config.train.limit_train_batches:
            break
        images = images.to(device, non_blocking=True, memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.float16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(images), labels.to(device))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        loss.item()  # the engine reports every batch's loss; so does a plain loop's log line
        stamps.append(time.perf_counter())
        sizes.append(len(labels))
    return throughput(stamps, sizes, warmup)


def main() -> None:
    """Warm up, then measure the plain loop and the engine, one after the other."""
    args = parse_args()
    with tempfile.TemporaryDirectory() as out:
        os.environ.setdefault("WORKBENCH_RUNS_DIR", out)
        config = make_config(args, out)
        index = training_only_index(config, args.repeat)
        warm = dataclasses.replace(config, train=dataclasses.replace(
            config.train, limit_train_batches=args.warmup))
        run_plain(warm, index, 0)  # first-touch costs (allocator, cuDNN autotune) go here
        # alternating rounds, best of each: other processes slowing one side do not decide it
        plains, engines = [], []
        for r in range(args.rounds):
            if r % 2:  # swap the order every round: neither side always runs on a warmer cache
                rate, device = run_engine(config, index, args.warmup)
                plains.append(run_plain(config, index, args.warmup))
            else:
                plains.append(run_plain(config, index, args.warmup))
                rate, device = run_engine(config, index, args.warmup)
            engines.append(rate)
    plain, engine = max(plains), max(engines)
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    print(f"device {device}, batch {args.batch_size}, {args.input_size} px, "
          f"{args.batches} measured batches")
    print("plain loop img/s: " + " ".join(f"{r:.1f}" for r in plains))
    print("engine img/s:     " + " ".join(f"{r:.1f}" for r in engines))
    print(f"RESULT engine_img_s={engine:.1f} plain_img_s={plain:.1f} ratio={engine / plain:.3f} "
          f"peak_mem_mb={peak:.0f} device={device}")


if __name__ == "__main__":
    main()
