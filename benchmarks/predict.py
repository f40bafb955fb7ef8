"""Prediction throughput: `workbench predict` against a plain torch loop, and onnxruntime
against torch on the CPU, side by side.

A run is trained on the digits-lt demo (mobilenet_v2 from ImageNet weights, the last two stages
fine-tuned for a few batches) unless `--run` names one. Both predict paths classify the demo's
validation split (1000 files) with the same model: the workbench through `iter_predict` (what
`workbench predict` runs: safe decoding, the run's transform, batches, top-k), the plain loop with
PIL, the same transform, `torch.stack` and softmax/top-k. Then the run is exported to ONNX and
onnxruntime and torch classify the same preprocessed batches (inference only). The two sides
alternate for a few rounds and the best round of each counts (robust to a shared machine).
Last line: `RESULT predict_img_s=... plain_img_s=... ratio=... ort_img_s=... torch_img_s=...
ort_ratio=... max_logit_diff=... top1_agree=...` (goals: ratio >= 0.95, top1_agree = 1.0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.config import RunConfig  # noqa: E402
from workbench.data.demo import build_demo  # noqa: E402
from workbench.deploy.export import NormalizedClassifier, export_model, preprocessing  # noqa: E402
from workbench.deploy.predict import collect_images, iter_predict  # noqa: E402
from workbench.train.engine import Trainer  # noqa: E402
from workbench.train.events import Finished  # noqa: E402
from workbench.train.trained import load_trained  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options (defaults keep a 2-core CPU run to a few minutes)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", default=None, help="a finished run folder (default: train one)")
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--images", type=int, default=1000, help="validation images classified")
    p.add_argument("--rounds", type=int, default=3)
    return p.parse_args()


def train_run(input_size: int, out: str) -> Path:
    """A quick fine-tuned run on the demo (the model's accuracy does not matter here)."""
    c = RunConfig()
    c.data.path = str(build_demo())
    c.data.input_size = input_size
    c.data.num_workers = 0
    c.model.weights = "IMAGENET1K_V1"
    c.model.freeze_stages = 3
    c.train.epochs = 1
    c.train.limit_train_batches = 3
    c.train.device = "cpu"
    c.train.out_dir = out
    last = list(Trainer(c.validate()).run())[-1]
    if not isinstance(last, Finished):
        raise SystemExit(f"training failed: {last}")
    return Path(last.run_dir)


def workbench_loop(trained, files: list[str], batch_size: int) -> tuple[float, list[str]]:
    """Seconds and top-1 labels through the workbench's predict generator."""
    start = time.perf_counter()
    labels = [p.label for batch in iter_predict(trained, files, batch_size=batch_size)
              for p in batch.predictions]
    return time.perf_counter() - start, labels


def plain_loop(trained, files: list[str], batch_size: int) -> tuple[float, list[str]]:
    """Seconds and top-1 labels through a hand-written loop with the same model and transform."""
    transform, model, names = trained.transform(), trained.classifier, trained.class_names
    start = time.perf_counter()
    labels: list[str] = []
    for i in range(0, len(files), batch_size):
        batch = torch.stack([transform(Image.open(f).convert("RGB"))
                             for f in files[i:i + batch_size]])
        with torch.inference_mode():
            probs = torch.softmax(model(batch), dim=1)
        _, top = probs.topk(5, dim=1)
        labels.extend(names[j] for j in top[:, 0].tolist())
    return time.perf_counter() - start, labels


def pixel_batches(trained, files: list[str], batch_size: int) -> list[torch.Tensor]:
    """The files as exported models take them: cropped, in [0, 1], not normalized."""
    info = preprocessing(trained)
    mean = torch.tensor(info["mean"]).view(3, 1, 1)
    std = torch.tensor(info["std"]).view(3, 1, 1)
    transform = trained.transform()
    images = [transform(Image.open(f).convert("RGB")) * std + mean for f in files]
    return [torch.stack(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]


def compare_onnx(trained, onnx_path: Path, batches: list[torch.Tensor],
                 rounds: int) -> tuple[float, float, float, float]:
    """Best images/s of onnxruntime and torch, the largest logit difference, top-1 agreement."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    info = preprocessing(trained)
    model = NormalizedClassifier(trained.classifier, info["mean"], info["std"]).eval()
    total = sum(len(b) for b in batches)
    ort_best = torch_best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        ort_out = [session.run(None, {"image": b.numpy()})[0] for b in batches]
        ort_best = max(ort_best, total / (time.perf_counter() - start))
        start = time.perf_counter()
        with torch.inference_mode():
            torch_out = [model(b).numpy() for b in batches]
        torch_best = max(torch_best, total / (time.perf_counter() - start))
    got, expected = np.concatenate(ort_out), np.concatenate(torch_out)
    agree = float((got.argmax(1) == expected.argmax(1)).mean())
    return ort_best, torch_best, float(np.abs(got - expected).max()), agree


def main() -> None:
    """Train (or take) a run, time both predict paths and both runtimes, print RESULT."""
    args = parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else train_run(args.input_size, tmp)
        trained = load_trained(run)
        files, _ = collect_images([build_demo() / "val"])
        files = files[: args.images]
        ours = plain = 0.0
        for _ in range(args.rounds):
            seconds, labels = workbench_loop(trained, files, args.batch_size)
            ours = max(ours, len(files) / seconds)
            seconds, plain_labels = plain_loop(trained, files, args.batch_size)
            plain = max(plain, len(files) / seconds)
        assert labels == plain_labels, "the two predict paths disagree"
        print(f"predict: workbench {ours:.1f} img/s, plain torch {plain:.1f} img/s "
              f"({len(files)} files, batch {args.batch_size})")
        onnx_path = export_model(trained, "onnx", Path(tmp) / "model.onnx")
        batches = pixel_batches(trained, files, args.batch_size)
        ort, ref, diff, agree = compare_onnx(trained, onnx_path, batches, args.rounds)
        print(f"inference: onnxruntime {ort:.1f} img/s, torch {ref:.1f} img/s, "
              f"max logit difference {diff:.2e}, top-1 agreement {agree:.3f}")
    print(f"RESULT predict_img_s={ours:.1f} plain_img_s={plain:.1f} ratio={ours / plain:.3f} "
          f"ort_img_s={ort:.1f} torch_img_s={ref:.1f} ort_ratio={ort / ref:.3f} "
          f"max_logit_diff={diff:.2e} top1_agree={agree:.3f}")


if __name__ == "__main__":
    main()
