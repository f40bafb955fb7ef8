"""Classifier re-training (cRT, Kang et al., ICLR 2020): decouple representation and classifier.

Instance-balanced training learns the best features, but its classifier favours the head classes.
cRT keeps the trained backbone frozen, puts a fresh last Linear on it, and trains only that layer
on the frozen pooled features with class-balanced sampling: every class is seen equally often, so
the decision boundary stops leaning towards the frequent classes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from workbench.config import Sampling, TrainConfig
from workbench.data.torch_dataset import ImageDataset
from workbench.models.transfer import TransferModel
from workbench.train.callbacks import Callback
from workbench.train.events import EvalDone, Event
from workbench.train.features import FeatureSet, feature_loader, iter_features
from workbench.train.samplers import build_sampler
from workbench.train.setup import make_loader

if TYPE_CHECKING:
    from workbench.train.checkpointer import Checkpointer
    from workbench.train.loop import Loop


def retrain_classifier(model: TransferModel, features: FeatureSet, num_classes: int,
                       train: TrainConfig, device: torch.device,
                       generator: torch.Generator | None = None,
                       stop: threading.Event | None = None) -> bool:
    """Re-initialise `model`'s last Linear and train its head for `train.crt_epochs` epochs on
    `features` (pooled outputs of the last stage), class-balanced; False when stopped."""
    model.reset_classifier(num_classes)
    head = model.head.to(device)
    head.train()
    sampler = build_sampler(features.labels.tolist(), Sampling.CLASS_BALANCED, generator)
    loader = feature_loader(features, train.batch_size, sampler=sampler, generator=generator)
    optimizer = torch.optim.SGD(head.parameters(), lr=train.lr, momentum=train.momentum,
                                weight_decay=train.weight_decay)
    steps = max(1, train.crt_epochs * len(loader))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(train.crt_epochs):
        for x, y, _ in loader:
            if stop is not None and stop.is_set():
                return False
            loss = torch.nn.functional.cross_entropy(head(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    head.eval()
    return True


class ClassifierRetraining(Callback):
    """cRT at the end of a run: the classifier re-trained class-balanced on the trained
    backbone's features, then evaluated and saved (one process only: see the plan's warning)."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        self.checkpointer = checkpointer

    def on_train_end(self, loop: Loop) -> Iterator[Event]:
        """Re-train, evaluate and save (nothing when no epoch trained or when stopped)."""
        s, config = loop.setup, loop.config
        if not loop.progress.epoch:
            return
        features = loop.feed.train_features
        if features is None:  # the backbone was fine-tuned: its features change, never cached
            loader = make_loader(ImageDataset(s.index, s.train_idx, s.plan.transform()),
                                 s.plan.batch_size)
            features = yield from loop.control.pausable(iter_features(
                s.model, loader, None, split="train", stage=s.model.num_stages - 1,
                device=s.device, stop=loop.control.stop_event))
        if features is None or not retrain_classifier(
                s.model, features, len(s.class_names), config.train, s.device, s.generator,
                loop.control.stop_event):
            return
        metrics = loop.evaluate(s.model.forward_head if s.plan.fast_path else s.model)
        if metrics is not None:
            yield EvalDone(loop.progress.epoch, metrics)
        yield self.checkpointer.save(loop, metrics)
