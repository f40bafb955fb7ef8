"""Scaling over several processes: images/s of one process against N processes under torchrun.

The same command both ways (`workbench train --config FILE --run-dir DIR`, once plainly and once
through `torchrun --nproc-per-node N`), the same per-process batch (weak scaling: N processes
train a batch N times larger per step), full fine-tuning of mobilenet_v2 on the digits-lt demo.
Throughput is the median of rank 0's `images_per_s` over the recorded batches after a warm-up
(the engine counts every process's images). On GPUs each process takes one GPU (NCCL); on the
CPU the processes share the cores (gloo), which measures the machinery, not a speed-up.
Last line: `RESULT one_img_s=... n_img_s=... processes=N efficiency=...` (efficiency =
n_img_s / (N * one_img_s); 1.0 is perfect scaling).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.config import RunConfig, save_config  # noqa: E402
from workbench.data.demo import build_demo  # noqa: E402
from workbench.train.launch import torchrun_command  # noqa: E402
from workbench.train.rundir import read_events  # noqa: E402

TRAIN_IMAGES = 1120  # the demo's training split


# defaults on GPUs, and on the CPU (`make bench` on 2 cores: about a minute)
GPU_DEFAULTS = {"batch_size": 64, "input_size": 128, "batches": 30, "warmup": 5, "workers": 4}
CPU_DEFAULTS = {"batch_size": 16, "input_size": 32, "batches": 6, "warmup": 2, "workers": 0}


def parse_args(cuda: bool) -> argparse.Namespace:
    """Command-line options (defaults for a GPU machine, or small ones on the CPU)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--processes", type=int, default=0, help="N (default: every GPU, else 2)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, help="images per process per step")
    p.add_argument("--input-size", type=int)
    p.add_argument("--batches", type=int, help="measured steps (after warm-up)")
    p.add_argument("--warmup", type=int, help="steps not measured")
    p.add_argument("--workers", type=int, help="loader processes per process")
    p.set_defaults(**(GPU_DEFAULTS if cuda else CPU_DEFAULTS))
    return p.parse_args()


def make_config(args: argparse.Namespace, processes: int, out: Path) -> RunConfig:
    """Enough epochs of the demo for warm-up + measured steps at this many processes."""
    c = RunConfig()
    c.data.path = str(build_demo())
    c.data.input_size = args.input_size
    c.data.num_workers = args.workers
    c.model.weights = "IMAGENET1K_V1"
    c.train.batch_size = args.batch_size * processes
    steps_per_epoch = max(1, TRAIN_IMAGES // c.train.batch_size)
    c.train.epochs = math.ceil((args.warmup + args.batches) / steps_per_epoch)
    c.train.limit_train_batches = steps_per_epoch
    c.train.device = args.device
    c.train.out_dir = str(out)
    return c.validate()


def measure(args: argparse.Namespace, processes: int, work: Path) -> float:
    """Median images/s of rank 0's recorded steps after the warm-up."""
    config_file = save_config(make_config(args, processes, work), work / f"n{processes}.toml")
    run_dir = work / f"run-{processes}"
    argv = ["train", "--config", str(config_file), "--run-dir", str(run_dir)]
    command = ([sys.executable, "-m", "workbench", *argv] if processes == 1
               else torchrun_command(argv, processes))
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode:
        sys.exit(f"scaling: {processes} process(es) failed:\n{done.stderr[-3000:]}")
    rates = [e["images_per_s"] for e in read_events(run_dir) if e["event"] == "BatchDone"]
    measured = rates[args.warmup:] or rates
    return statistics.median(measured)


def main() -> int:
    """Run one process, then N, and print the RESULT line."""
    import torch

    args = parse_args(torch.cuda.is_available())
    processes = args.processes or (torch.cuda.device_count() if torch.cuda.is_available()
                                   else 2)
    if processes < 2:
        print("scaling: fewer than 2 processes (one GPU): nothing to scale")
        return 0
    with tempfile.TemporaryDirectory(prefix="workbench-scaling-") as tmp:
        one = measure(args, 1, Path(tmp))
        many = measure(args, processes, Path(tmp))
    print(f"RESULT one_img_s={one:.1f} n_img_s={many:.1f} processes={processes} "
          f"efficiency={many / (processes * one):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
