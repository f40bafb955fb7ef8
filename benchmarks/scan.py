"""Benchmark: listing a 100,000-file class-per-folder tree, ours against torchvision's ImageFolder.

Both index the same generated tree (tiny files; listing never decodes) in one run, best of a few
alternating repeats after a warm-up, so the page cache treats them alike. `histogram_s` is the
time from starting the scan until the per-class counts (the histogram) are known.
Ends with one line: RESULT scan_s=... imagefolder_s=... ratio=... histogram_s=...
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from torchvision.datasets import ImageFolder

from workbench.data.scan import index_dataset
from workbench.data.stats import dataset_stats

MARKER = ".complete"


def make_tree(root: Path, num_files: int, num_classes: int) -> Path:
    """A class-per-folder tree of `num_files` tiny .jpg files; reused when already complete."""
    marker = root / MARKER
    if marker.exists() and marker.read_text() == f"{num_files} {num_classes}":
        return root
    per_class = num_files // num_classes
    for c in range(num_classes):
        folder = root / f"class_{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            with open(folder / f"img_{i:05d}.jpg", "wb") as fh:
                fh.write(b"\xff\xd8\xff")  # listing never reads the content
    (root / MARKER).write_text(f"{num_files} {num_classes}")
    return root


def time_ours(root: Path) -> tuple[float, float, int]:
    """Seconds to index, seconds until the histogram is known, images found."""
    start = time.perf_counter()
    index = index_dataset(root)
    listed = time.perf_counter()
    stats = dataset_stats(index)
    histogram = time.perf_counter()
    assert sum(stats.class_counts["train"].values()) + sum(stats.class_counts["val"].values()) \
        == len(index)
    return listed - start, histogram - start, len(index)


def time_imagefolder(root: Path) -> tuple[float, int]:
    """Seconds to construct torchvision's ImageFolder, images found."""
    start = time.perf_counter()
    dataset = ImageFolder(str(root))
    return time.perf_counter() - start, len(dataset.samples)


def main() -> None:
    """Generate (or reuse) the tree, time both listings, print the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(),
                                                       "workbench-bench-scan"))
    args = parser.parse_args()
    start = time.perf_counter()
    root = make_tree(Path(args.root) / f"{args.files}-{args.classes}", args.files, args.classes)
    print(f"tree: {root} ({args.files} files, {args.classes} classes; "
          f"{time.perf_counter() - start:.1f} s to make or reuse)")
    time_ours(root)  # warm-up: both then read from a warm page cache
    ours, hist, folder = [], [], []
    for _ in range(args.repeats):
        scan_s, histogram_s, n_ours = time_ours(root)
        imagefolder_s, n_tv = time_imagefolder(root)
        assert n_ours == n_tv == args.files, (n_ours, n_tv)
        ours.append(scan_s)
        hist.append(histogram_s)
        folder.append(imagefolder_s)
    scan_s, histogram_s, imagefolder_s = min(ours), min(hist), min(folder)
    print(f"index_dataset:             {scan_s:.3f} s (best of {args.repeats})")
    print(f"ImageFolder construction:  {imagefolder_s:.3f} s (best of {args.repeats})")
    print(f"histogram known after:     {histogram_s:.3f} s")
    ratio = scan_s / imagefolder_s
    print(f"RESULT scan_s={scan_s:.3f} imagefolder_s={imagefolder_s:.3f} ratio={ratio:.3f} "
          f"histogram_s={histogram_s:.3f}")


if __name__ == "__main__":
    main()
