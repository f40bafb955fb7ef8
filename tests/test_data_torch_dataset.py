"""The torch Dataset: RGB tensors and labels, and a corrupt file skipped and counted mid-epoch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from tests import test_data_helpers as make
from workbench.data.scan import index_dataset
from workbench.data.torch_dataset import ImageDataset, collate_skip_bad


def test_corrupt_file_mid_epoch_is_skipped_and_counted(tmp_path: Path) -> None:
    for i in range(5):
        make.noise_png(tmp_path / "a" / f"{i}.png", seed=i, size=32)
        make.noise_png(tmp_path / "b" / f"{i}.png", seed=10 + i, size=32)
    make.truncated_jpeg(tmp_path / "a" / "2b.jpg")
    make.alpha_png(tmp_path / "b" / "alpha.png")
    index = index_dataset(tmp_path, val_fraction=0)
    dataset = ImageDataset(index, range(len(index)))
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_skip_bad)
    seen, skipped = 0, 0
    for images, labels, bad in loader:
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 32, 32)
        assert images.min() >= 0 and images.max() <= 1 and labels.dtype == torch.long
        seen, skipped = seen + len(labels), skipped + bad
    assert (seen, skipped) == (11, 1)
    assert dataset.targets == index.labels


def test_transform_and_all_bad_batch(tmp_path: Path) -> None:
    make.rgb_png(tmp_path / "a" / "big.png", size=40)
    make.write_bytes(tmp_path / "b" / "zero.png", b"")
    index = index_dataset(tmp_path, val_fraction=0)
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                            v2.Resize((8, 8))])
    dataset = ImageDataset(index, [0, 1], transform)
    images, labels, bad = collate_skip_bad([dataset[0], dataset[1]])
    assert images.shape == (1, 3, 8, 8) and labels.tolist() == [0] and bad == 1
    images, labels, bad = collate_skip_bad([dataset[1]])
    assert images.numel() == 0 and labels.numel() == 0 and bad == 1
