"""The advisor's validation suite: nine image datasets rebuilt offline, and their ground truth.

`python benchmarks/suite/advisor_suite.py build` writes the datasets (class-per-folder trees with
train/ and val/) under the cache folder; `... truth [--only NAME]` trains every strategy on each
set's train split with the workbench's own engine and records the best validation balanced
accuracy in benchmarks/suite/advisor_ground_truth.json. The protocol is written down in
docs/advice-validation.md. Every image comes from a file that ships with an installed package
(the bundled MNIST digits, scikit-learn's 8x8 digits and sample photos, matplotlib's sample data)
or is drawn here from a seeded generator; the synthetic sets are named as such.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
TRUTH = HERE / "advisor_ground_truth.json"  # at INPUT_SIZE; other sizes: truth_file(size)
SIDE = 64  # every image is written at 64 px; every run trains at INPUT_SIZE (or --size)
INPUT_SIZE = 64
SIZES = (64, 160, 224)  # the sizes a ground truth may exist for
BACKBONE, WEIGHTS = "mobilenet_v2", "IMAGENET1K_V1"

Split = dict[str, list[tuple[Image.Image, str]]]


def truth_file(size: int) -> Path:
    """The ground-truth table of runs at `size` px."""
    return TRUTH if size == INPUT_SIZE else HERE / f"advisor_ground_truth_{size}.json"


def suite_root() -> Path:
    """Where the datasets are written (not in the repository: they are rebuilt on demand)."""
    from workbench import paths

    return paths.cache_dir() / "advisor-suite"


# -- the datasets ---------------------------------------------------------------------------------

def _gray(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a.astype(np.uint8)).convert("RGB").resize((SIDE, SIDE),
                                                                    Image.BILINEAR)


def _mnist_split(train: list[int], val: int, seed: int) -> Split:
    from workbench.data.demo import load_digits

    x, y = load_digits()
    rng = np.random.default_rng(seed)
    out: Split = {"train": [], "val": []}
    for digit, n in enumerate(train):
        members = rng.permutation(np.flatnonzero(y == digit))
        out["train"] += [(_gray(x[i]), str(digit)) for i in members[:n]]
        out["val"] += [(_gray(x[i]), str(digit)) for i in members[n:n + val]]
    return out


def mnist_30(seed: int) -> Split:
    """MNIST handwritten digits (real): 10 classes, 30 training images each."""
    return _mnist_split([30] * 10, 20, seed)


def mnist_lt(seed: int) -> Split:
    """MNIST digits (real), long-tailed: 120 training images for '0' down to 6 for '9'."""
    return _mnist_split([round(120 * 0.05 ** (d / 9)) for d in range(10)], 15, seed)


def sk_digits_5(seed: int) -> Split:
    """scikit-learn's 8x8 handwritten digits (real, UCI): 10 classes, 5 training images each."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    out: Split = {"train": [], "val": []}
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(d.target == digit))
        img = [_gray(d.images[i] * 255 / 16) for i in members[:35]]
        out["train"] += [(im, str(digit)) for im in img[:5]]
        out["val"] += [(im, str(digit)) for im in img[5:35]]
    return out


def _region_split(classes: int, train: int, val: int, frac: float, seed: int) -> Split:
    """Classes are places in three real photographs; images are jittered, rescaled crops."""
    from workbench.advice.calibrate import _photos

    photos = _photos()
    rng = np.random.default_rng(seed)
    out: Split = {"train": [], "val": []}
    for c in range(classes):
        src = photos[c % len(photos)]
        w, h = src.size
        side = int(min(w, h) * frac)
        cx, cy = rng.integers(side, w - side), rng.integers(side, h - side)
        for i in range(train + val):
            s = int(side * rng.uniform(0.8, 1.2))
            x = int(cx + rng.normal(0, side * 0.12) - s / 2)
            y = int(cy + rng.normal(0, side * 0.12) - s / 2)
            crop = src.crop((x, y, x + s, y + s)).resize((SIDE, SIDE), Image.BILINEAR)
            out["train" if i < train else "val"].append((crop, f"place{c:02d}"))
    return out


def photo_places_50(seed: int) -> Split:
    """Crops of three real photos (scikit-learn's china and flower, matplotlib's Grace Hopper):
    50 classes (a place in a photo each), 6 training images per class."""
    return _region_split(50, 6, 4, 0.2, seed)


def photo_places_2shot(seed: int) -> Split:
    """The same photos: 12 places, 2 training images per class (few-shot)."""
    return _region_split(12, 2, 6, 0.3, seed)


def _texture(kind: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    f = rng.uniform(4, 9)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 0:
        v = np.sin(2 * np.pi * f * yy + phase)
    elif kind == 1:
        v = np.sin(2 * np.pi * f * xx + phase)
    elif kind == 2:
        v = np.sin(2 * np.pi * f * (xx + yy) / np.sqrt(2) + phase)
    elif kind == 3:
        v = np.sign(np.sin(2 * np.pi * f * xx + phase) * np.sin(2 * np.pi * f * yy))
    elif kind == 4:
        v = np.cos(2 * np.pi * f * xx) * np.cos(2 * np.pi * f * yy) > 0.6
        v = v.astype(float)
    else:
        v = np.array(Image.fromarray(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8))
                     .filter(ImageFilter.GaussianBlur(2)), dtype=float) / 128 - 1
    v = v + rng.normal(0, 0.6, v.shape)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (np.clip(v, -1.5, 1.5) + 1.5) / 3
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def textures_6(seed: int) -> Split:
    """Synthetic textures drawn here (not real photos): horizontal, vertical and diagonal
    stripes, checks, dots and blurred noise in random colours with strong noise; 40 per class."""
    rng = np.random.default_rng(seed)
    names = ["horizontal", "vertical", "diagonal", "checks", "dots", "blobs"]
    out: Split = {"train": [], "val": []}
    for kind, name in enumerate(names):
        for i in range(60):
            im = Image.fromarray(_texture(kind, rng).astype(np.uint8))
            out["train" if i < 40 else "val"].append((im, name))
    return out


def _spectrogram(f0: float, rng: np.random.Generator) -> Image.Image:
    from matplotlib import colormaps

    freq = np.linspace(0, 1, SIDE)[:, None]
    t = np.linspace(0, 1, SIDE)[None, :]
    spec = sum(np.exp(-((freq - k * f0) ** 2) / 2e-4)
               * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 6) * t + rng.uniform(0, 6)))
               for k in range(1, 6)) + 0.3 * rng.random((SIDE, SIDE))
    spec = np.log1p(10 * spec) / np.log1p(10 * spec).max()
    return Image.fromarray((colormaps["magma"](spec[::-1])[..., :3] * 255).astype(np.uint8))


def spectrograms_5(seed: int) -> Split:
    """Synthetic spectrogram-like images drawn here: the class is the band of the fundamental
    frequency (5 bands, overlapping noise); 40 training images per class."""
    rng = np.random.default_rng(seed)
    out: Split = {"train": [], "val": []}
    for c in range(5):
        for i in range(60):
            f0 = rng.uniform(0.06 + 0.025 * c, 0.08 + 0.025 * c)
            out["train" if i < 40 else "val"].append((_spectrogram(f0, rng), f"band{c}"))
    return out


def terrain_quadrants(seed: int) -> Split:
    """Crops of a real elevation model (matplotlib's jacksboro DEM, as a height map): the class
    is the quadrant a crop comes from; 4 classes, 25 training images each."""
    from workbench.advice.calibrate import _sample_dir

    dem = np.load(_sample_dir("matplotlib", "mpl-data", "sample_data", "jacksboro_fault_dem.npz"))
    z = dem["elevation"].astype(np.float64)
    z = (255 * (z - z.min()) / np.ptp(z)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    h, w = z.shape
    out: Split = {"train": [], "val": []}
    for q in range(4):
        y0, x0 = (q // 2) * h // 2, (q % 2) * w // 2
        for i in range(40):
            s = int(rng.uniform(0.2, 0.35) * min(h, w))
            y = rng.integers(y0, y0 + h // 2 - s + 1)
            x = rng.integers(x0, x0 + w // 2 - s + 1)
            out["train" if i < 25 else "val"].append((_gray(z[y:y + s, x:x + s]), f"q{q}"))
    return out


def noise_slopes_1000(seed: int) -> Split:
    """Synthetic 1/f^a noise drawn here: 2 classes (a = 1.5 or 2.0), random contrast; 1000
    training images per class."""
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(SIDE), np.fft.fftfreq(SIDE), indexing="ij")
    radius = np.maximum(np.hypot(fy, fx), 1 / SIDE)
    out: Split = {"train": [], "val": []}
    for a in (1.5, 2.0):
        for i in range(1200):
            spectrum = (rng.normal(size=(SIDE, SIDE)) + 1j * rng.normal(size=(SIDE, SIDE)))
            v = np.real(np.fft.ifft2(spectrum / radius ** (a / 1)))
            v = (v - v.mean()) / (v.std() + 1e-9) * rng.uniform(30, 70) + 128
            im = Image.fromarray(np.clip(v, 0, 255).astype(np.uint8)).convert("RGB")
            out["train" if i < 1000 else "val"].append((im, f"slope{a:g}"))
    return out


SETS: dict[str, Callable[[int], Split]] = {
    "mnist-30": mnist_30, "mnist-lt": mnist_lt, "sk-digits-5": sk_digits_5,
    "photo-places-50": photo_places_50, "photo-places-2shot": photo_places_2shot,
    "textures-6": textures_6, "spectrograms-5": spectrograms_5,
    "terrain-quadrants": terrain_quadrants, "noise-slopes-1000": noise_slopes_1000,
}


def build(name: str, root: Path | None = None) -> Path:
    """Write one dataset (train/ and val/ class folders of PNGs) once; return its folder."""
    root = (root or suite_root()) / name
    if (root / ".complete").is_file():
        return root
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root.parent if root.parent.exists()
                                else _mk(root.parent)))
    for split, items in SETS[name](seed=0).items():
        for i, (im, label) in enumerate(items):
            folder = tmp / split / label
            folder.mkdir(parents=True, exist_ok=True)
            im.save(folder / f"{i:05d}.png")
    (tmp / ".complete").write_text("ok\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- ground truth ---------------------------------------------------------------------------------

def strategies(num_stages: int) -> dict[str, dict]:
    """Every strategy the ground truth trains, as model/train settings."""
    found = {f"probe-{s}": {"freeze_stages": num_stages, "head": "logreg", "feature_stage": s,
                            "norm_policy": "frozen_bn", "lr_decay": 0.3846}
             for s in range(num_stages)}
    found["linear-frozen"] = {"freeze_stages": num_stages, "head": "linear",
                              "feature_stage": -1, "norm_policy": "frozen_bn",
                              "lr_decay": 0.3846, "epochs": 30}
    found["finetune"] = {"freeze_stages": 0, "head": "linear", "feature_stage": -1,
                         "norm_policy": "train_bn", "lr_decay": 0.3846}
    found["finetune-uniform"] = {"freeze_stages": 0, "head": "linear", "feature_stage": -1,
                                 "norm_policy": "train_bn", "lr_decay": 1.0}
    found["partial"] = {"freeze_stages": max(1, num_stages // 2), "head": "linear",
                        "feature_stage": -1, "norm_policy": "train_bn", "lr_decay": 0.3846}
    return found


def finetune_epochs(train_images: int) -> int:
    """Full-run epochs: about 1,600 image-steps, 2 to 30 epochs (2 CPU cores, shared)."""
    return int(min(30, max(2, round(1600 / max(1, train_images)))))


def config_for(path: Path, settings: dict, train_images: int, size: int = INPUT_SIZE,
               seed: int = 0):
    """The run config of one strategy on one set, at `size` px, with the run's `seed`."""
    from workbench.config import RunConfig

    c = RunConfig()
    c.data.path, c.data.input_size = str(path), size
    c.model.backbone, c.model.weights = BACKBONE, WEIGHTS
    for key in ("freeze_stages", "head", "feature_stage", "norm_policy", "lr_decay"):
        setattr(c.model, key, settings[key])
    c.train.epochs = settings.get("epochs", finetune_epochs(train_images))
    c.train.device, c.train.seed = "cpu", seed
    return c.validate()


def seeded(key: str, seed: int) -> str:
    """A strategy's row name for a run with another seed than the protocol's 0 (the regret is
    computed on seed 0; the other seeds measure how far a run's score moves with the seed)."""
    return key if seed == 0 else f"{key}@seed{seed}"


def run_strategy(path: Path, settings: dict, size: int = INPUT_SIZE, seed: int = 0) -> dict:
    """Train one strategy with the engine; its best validation balanced accuracy and time."""
    from workbench.data.scan import open_dataset
    from workbench.train.engine import Trainer
    from workbench.train.events import Failed, Finished

    index = open_dataset(str(path), min_class_count=0)
    train_images = len(index.indices("train"))
    config = config_for(path, settings, train_images, size, seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for event in Trainer(config, index, run_dir=Path(tmp) / "run").run():
            if isinstance(event, Failed):
                return {"score": None, "error": event.message, "seconds": 0}
            if isinstance(event, Finished):
                return {"score": round(100 * event.best_metric, 2),
                        "seconds": round(time.perf_counter() - started, 1),
                        "epochs": config.train.epochs}
    return {"score": None, "error": "no result", "seconds": 0}


def truth(only: list[str] | None = None, out: Path | None = None, size: int = INPUT_SIZE,
          keys: list[str] | None = None, seed: int = 0) -> dict:
    """Ground truth of every set and strategy (or `keys` only) at `size` px into `out` (default:
    `truth_file(size)`; kept rows are reused: a table builds in parts, several processes can each
    write a part and `merge` joins them). Another `seed` than 0 writes rows named
    `<strategy>@seed<N>`."""
    import torch

    from workbench.plan import backbone_stages

    torch.set_num_threads(1)
    out = out or truth_file(size)
    table = json.loads(out.read_text()) if out.is_file() else {}
    table.setdefault("protocol", {"backbone": BACKBONE, "weights": WEIGHTS,
                                  "input_size": size, "metric": "val balanced accuracy, %",
                                  "device": "cpu, one thread"})
    sets = table.setdefault("sets", {})
    for name in only or list(SETS):
        path = build(name)
        row = sets.setdefault(name, {})
        for key, settings in strategies(len(backbone_stages(BACKBONE))).items():
            name_seed = seeded(key, seed)
            if ((keys and key not in keys)
                    or name_seed in row and row[name_seed].get("score") is not None):
                continue
            row[name_seed] = run_strategy(path, settings, size, seed)
            print(name, name_seed, row[name_seed], flush=True)
            out.write_text(json.dumps(table, indent=1) + "\n")
    return table


def merge(parts: list[Path], size: int = INPUT_SIZE) -> None:
    """Join ground-truth parts into the size's table (later parts win per set and strategy)."""
    out = truth_file(size)
    table = json.loads(out.read_text()) if out.is_file() else {"sets": {}}
    for part in parts:
        found = json.loads(part.read_text())
        if found.get("protocol", {}).get("input_size", size) != size:
            raise SystemExit(f"{part} is a table at another input size than {size} px")
        table.setdefault("protocol", found.get("protocol"))
        for name, row in found.get("sets", {}).items():
            table["sets"].setdefault(name, {}).update(row)
    out.write_text(json.dumps(table, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """`build` the datasets or compute the `truth` table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("build", "truth", "merge"))
    parser.add_argument("--only", nargs="*", default=None, help="dataset names")
    parser.add_argument("--out", type=Path, default=None,
                        help="truth: the table to write (default: the size's own)")
    parser.add_argument("--size", type=int, default=INPUT_SIZE, choices=SIZES,
                        help="truth: the input size of every run; merge: of the table")
    parser.add_argument("--strategies", nargs="*", default=None,
                        help="truth: only these strategies (e.g. probe-3 finetune-uniform)")
    parser.add_argument("--seed", type=int, default=0,
                        help="truth: the runs' seed (rows of another seed than 0 are named "
                             "STRATEGY@seedN: how far a score moves with the seed)")
    parser.add_argument("parts", nargs="*", type=Path, help="merge: the parts to join")
    args = parser.parse_intermixed_args(argv)
    if args.what == "build":
        for name in args.only or list(SETS):
            print(build(name))
    elif args.what == "truth":
        truth(args.only, args.out, args.size, args.strategies, args.seed)
    else:
        merge(args.parts, args.size)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    raise SystemExit(main())
