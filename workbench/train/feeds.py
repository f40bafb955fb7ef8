"""How batches reach the model: the loaders of a run (`Feed`), built once by the engine.

Images go through the whole network; on the fast path (a frozen backbone, no augmentation) the
pooled features are computed once, cached, and batches of features go through the head alone.
"""

from __future__ import annotations

import math
from collections.abc import Generator

from workbench.data.torch_dataset import ImageDataset
from workbench.devices import choose_num_workers
from workbench.train import distributed, setup
from workbench.train import features as fx
from workbench.train.augment import batch_collate
from workbench.train.control import RunControl
from workbench.train.events import Event
from workbench.train.samplers import build_sampler
from workbench.train.state import Feed, RunSetup


def estimated_steps(s: RunSetup) -> int:
    """Optimisation steps per epoch: each process reads its share of the epoch, a share of the
    batch at a time (capped by `train.limit_train_batches`)."""
    share = math.ceil(len(s.train_idx) / s.plan.processes)
    steps = math.ceil(share / s.plan.process_batch_size)
    limit = s.plan.config.train.limit_train_batches
    return min(steps, limit) if limit else steps


def build_feed(s: RunSetup, control: RunControl) -> Generator[Event, None, Feed | None]:
    """The run's loaders (None: stopped while features were being computed)."""
    if s.plan.fast_path:
        return (yield from _feature_feed(s, control))
    return _image_feed(s, control)


def _image_feed(s: RunSetup, control: RunControl) -> Feed:
    c, plan, world = s.plan.config, s.plan, control.world
    workers = choose_num_workers(c.data.num_workers)
    pin = s.device.type == "cuda"
    labels = [s.index.labels[i] for i in s.train_idx]
    train_set = ImageDataset(s.index, s.train_idx, plan.transform(train=True))
    if control.spread:
        sampler = distributed.train_sampler(train_set, labels, c.data.sampling, world,
                                            distributed.shared_seed(c.train.seed))
    else:
        sampler = build_sampler(labels, c.data.sampling, s.generator)
    train_loader = setup.make_loader(
        train_set, plan.process_batch_size, shuffle=True, sampler=sampler,
        workers=workers, pin_memory=pin, generator=s.generator,
        collate_fn=batch_collate(c, len(plan.class_names)))
    val_loader = None
    if s.val_idx:
        val_set = ImageDataset(s.index, s.val_idx, plan.transform())
        val_loader = setup.make_loader(
            val_set, plan.process_batch_size, workers=workers, pin_memory=pin,
            sampler=distributed.ShardSampler(len(val_set), world.size, world.rank)
            if control.spread else None)
    forward = distributed.wrap_model(s.model, s.device) if control.spread else s.model
    return Feed(forward, s.model, train_loader, val_loader, estimated_steps(s))


def _feature_feed(s: RunSetup, control: RunControl) -> Generator[Event, None, Feed | None]:
    c, plan = s.plan.config, s.plan
    transform = plan.transform()
    workers = choose_num_workers(c.data.num_workers)
    sets = {}
    for split, idx in (("train", s.train_idx), ("val", s.val_idx)):
        if not idx:
            continue
        loader = setup.make_loader(ImageDataset(s.index, idx, transform), plan.batch_size,
                                   workers=workers, pin_memory=s.device.type == "cuda")
        key = fx.feature_key(s.index, idx, plan, transform)
        sets[split] = yield from control.pausable(fx.iter_features(
            s.model, loader, key, split=split, stage=plan.feature_stage, device=s.device,
            stop=control.stop_event))
        if sets[split] is None:
            return None
    train = sets["train"]
    train_loader = fx.feature_loader(
        train, plan.batch_size, shuffle=True, generator=s.generator,
        sampler=build_sampler(train.labels.tolist(), c.data.sampling, s.generator))
    val_loader = fx.feature_loader(sets["val"], plan.batch_size) if "val" in sets else None
    return Feed(s.model.forward_head, s.model.head, train_loader, val_loader,
                estimated_steps(s), train)
