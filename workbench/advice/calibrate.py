"""Calibrate the similarity threshold: BN divergence of image sets built offline.

`python -m workbench.advice.calibrate [--backbone mobilenet_v2] [--n 64] [--input-size 0]`
prints the divergence of each set; docs/advice-calibration.md records the numbers. The sets use
only images that ship with installed packages (scikit-learn's and matplotlib's sample photos,
the demo's MNIST digits, matplotlib's MRI slice and elevation model) or are drawn here (text,
noise, stripes), so anyone can reproduce the table without a network. matplotlib comes with the
development extras (`pip install -e '.[dev]'`), not with the workbench itself.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from workbench.advice.similarity import BNDivergence, BNStatsCollector
from workbench.errors import UserError

Builder = Callable[[np.random.Generator, int], list[Image.Image]]


def _package(name: str) -> ModuleType:
    """A package the sets take images from; matplotlib is a development extra, not a dependency
    of the workbench, so its absence is said in one line."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UserError(f"the calibration sets need {name}: pip install -e '.[dev]'") from exc


def _sample_dir(package: str, *parts: str) -> Path:
    return Path(_package(package).__file__).parent.joinpath(*parts)


def _photos() -> list[Image.Image]:
    sk = _sample_dir("sklearn", "datasets", "images")
    mpl = _sample_dir("matplotlib", "mpl-data", "sample_data")
    paths = [sk / "china.jpg", sk / "flower.jpg", mpl / "grace_hopper.jpg"]
    images = []
    for path in paths:
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    return images


def _random_crops(sources: list[Image.Image], rng: np.random.Generator, n: int) -> Iterator:
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        side = int(min(w, h) * rng.uniform(0.3, 1.0))
        x, y = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
        crop = src.crop((x, y, x + side, y + side))
        yield ImageOps.mirror(crop) if rng.random() < 0.5 else crop


def photos(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Crops (30-100% of the short side) and flips of three real photographs."""
    return list(_random_crops(_photos(), rng, n))


def photos_gray(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """The same crops in grayscale: natural content, no colour."""
    return [im.convert("L").convert("RGB") for im in photos(rng, n)]


def mnist(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Handwritten digits (the MNIST sample the demo is built from), white on black."""
    from workbench.data.demo import load_digits

    x, _ = load_digits()
    pick = rng.choice(len(x), size=n, replace=False)
    return [Image.fromarray(x[i]).convert("RGB") for i in pick]


def text(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Rendered random words, black on white (document-like)."""
    font = ImageFont.load_default(size=18)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    images = []
    for _ in range(n):
        im = Image.new("RGB", (128, 128), "white")
        draw = ImageDraw.Draw(im)
        for row in range(5):
            words = [
                "".join(rng.choice(letters, rng.integers(2, 7)))
                for _ in range(3)
            ]
            draw.text((4, 4 + row * 24), " ".join(words), fill="black", font=font)
        images.append(im)
    return images


def noise(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Uniform RGB noise."""
    return [Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)) for _ in range(n)]


def stripes(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Spectrogram-like images: horizontal harmonic bands whose energy varies over time."""
    cmap = _package("matplotlib").colormaps["magma"]
    freq = np.linspace(0, 1, 128)[:, None]
    t = np.linspace(0, 1, 128)[None, :]
    images = []
    for _ in range(n):
        f0 = rng.uniform(0.05, 0.2)
        harmonics = [
            np.exp(-((freq - k * f0) ** 2) / 2e-4)
            * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 6) * t))
            for k in range(1, 6)
        ]
        spec = sum(harmonics) + 0.05 * rng.random((128, 128))
        spec = np.log1p(10 * spec) / np.log1p(10 * spec).max()
        images.append(Image.fromarray((cmap(spec[::-1])[..., :3] * 255).astype(np.uint8)))
    return images


def mri(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Crops of a real MRI head slice (matplotlib's s1045.ima), grayscale."""
    with gzip.open(_sample_dir("matplotlib", "mpl-data", "sample_data", "s1045.ima.gz")) as f:
        raw = f.read()
    img = np.frombuffer(raw, np.uint16).reshape(256, 256).astype(np.float64)
    src = Image.fromarray((255 * img / img.max()).astype(np.uint8)).convert("RGB")
    return list(_random_crops([src], rng, n))


def terrain(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """Crops of a real elevation model (matplotlib's jacksboro DEM) rendered as a height map."""
    dem = np.load(_sample_dir("matplotlib", "mpl-data", "sample_data", "jacksboro_fault_dem.npz"))
    z = dem["elevation"].astype(np.float64)
    src = Image.fromarray((255 * (z - z.min()) / np.ptp(z)).astype(np.uint8)).convert("RGB")
    return list(_random_crops([src], rng, n))


# name -> (the side of the matrix it belongs to, builder(rng, n) -> images)
SETS: dict[str, tuple[str, Builder]] = {
    "photos": ("similar", photos),
    "photos_gray": ("similar", photos_gray),
    "mnist": ("dissimilar", mnist),
    "text": ("dissimilar", text),
    "stripes": ("dissimilar", stripes),
    "mri": ("dissimilar", mri),
    "terrain": ("dissimilar", terrain),
    "noise": ("dissimilar", noise),
}


def divergence_of(model: torch.nn.Module, images: list[Image.Image], transform,
                  batch_size: int = 32) -> BNDivergence:
    """BN divergence of a list of PIL images, in eval mode, through `transform`."""
    model.eval()
    with BNStatsCollector(model) as collector, torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.stack([transform(im) for im in images[start:start + batch_size]])
            model(batch)
    return collector.result()


def calibrate(model: torch.nn.Module, transform, n: int = 64, seed: int = 0) -> list[dict]:
    """One row per image set: name, expected side, mean divergence, per-stage profile."""
    rows = []
    for name, (side, build) in SETS.items():
        result = divergence_of(model, build(np.random.default_rng(seed), n), transform)
        rows.append({"set": name, "expected": side, "mean": result.mean,
                     "per_stage": result.per_stage})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the calibration table for a backbone with its cached pretrained weights."""
    from workbench.models.transfer import build_model
    from workbench.models.transforms import build_transform
    from workbench.models.weights import resolve_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=0)
    args = parser.parse_args(argv)
    weights = resolve_weights(args.backbone, "DEFAULT")
    model = build_model(args.backbone, weights="DEFAULT", num_classes=None)
    transform = build_transform(weights, input_size=args.input_size, train=False)
    for row in calibrate(model, transform, n=args.n):
        profile = " ".join("-" if v is None else f"{v:.2f}" for v in row["per_stage"])
        print(f"{row['set']:12s} {row['expected']:10s} mean={row['mean']:.3f}  stages: {profile}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
