"""Classifier re-training (cRT, Kang et al., ICLR 2020): decouple representation and classifier.

Instance-balanced training learns the best features, but its classifier favours the head classes.
cRT keeps the trained backbone frozen, puts a fresh last Linear on it, and trains only that layer
on the frozen pooled features with class-balanced sampling: every class is seen equally often, so
the decision boundary stops leaning towards the frequent classes.
"""

from __future__ import annotations

import threading

import torch

from workbench.config import Sampling, TrainConfig
from workbench.models.transfer import TransferModel
from workbench.train.features import FeatureSet, feature_loader
from workbench.train.samplers import build_sampler


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
