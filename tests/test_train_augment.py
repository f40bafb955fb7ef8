"""Augmentation presets, MixUp / CutMix batches, soft-target losses and the plan's fast path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from workbench.config import Augment, RunConfig
from workbench.data.scan import open_dataset
from workbench.errors import UserError
from workbench.models.transforms import ERASE_P, LIGHT_SCALE, STANDARD_SCALE, build_transform
from workbench.plan import plan_run
from workbench.train.augment import BatchMixer, batch_collate, describe, iter_batch_preview
from workbench.train.losses import LDAMLoss, LogitAdjustedLoss, build_loss


def _steps(preset: str) -> list[type]:
    return [type(t) for t in build_transform("mobilenet_v2", 64, train=True,
                                             augment=preset).transforms]


def test_presets_hold_what_their_names_promise():
    common = [v2.ToImage, v2.RandomResizedCrop, v2.RandomHorizontalFlip]
    tail = [v2.ToDtype, v2.Normalize]
    assert _steps("none") == [v2.ToImage, v2.Resize, v2.CenterCrop, *tail]
    assert _steps("light") == common + tail
    assert _steps("standard") == common + tail
    assert _steps("strong") == [*common, v2.TrivialAugmentWide, *tail, v2.RandomErasing]
    scales = {p: build_transform("mobilenet_v2", 64, train=True, augment=p).transforms[1].scale
              for p in ("light", "standard")}
    assert scales == {"light": LIGHT_SCALE, "standard": STANDARD_SCALE} == {
        "light": (0.35, 1.0), "standard": (0.08, 1.0)}
    erase = build_transform("mobilenet_v2", 64, train=True, augment="strong").transforms[-1]
    assert erase.p == ERASE_P == 0.25


def test_evaluation_never_augments_and_every_preset_gives_the_input_size():
    image = Image.new("RGB", (90, 70), (10, 200, 30))
    for preset in Augment:
        assert build_transform("mobilenet_v2", 64, train=True, augment=preset)(image).shape == (
            3, 64, 64)
        evaluation = build_transform("mobilenet_v2", 64, train=False, augment=preset)
        assert [type(t) for t in evaluation.transforms] == _steps("none")


def test_old_configs_on_off_switch_loads_as_a_preset():
    assert RunConfig.from_dict({"data": {"augment": True}}).data.augment == "standard"
    assert RunConfig.from_dict({"data": {"augment": False}}).data.augment == "none"
    assert RunConfig.from_dict({"data": {"augment": "strong"}}).data.augment == "strong"
    with pytest.raises(UserError, match="data.augment = 'wild' is not one of none, light"):
        RunConfig.from_dict({"data": {"augment": "wild"}})
    with pytest.raises(UserError, match="data.augment must be a str, not 1"):
        RunConfig.from_dict({"data": {"augment": 1}})
    with pytest.raises(UserError, match=r"data.mixup = -0.5 is out of range"):
        RunConfig.from_dict({"data": {"mixup": -0.5}})


def test_mixup_makes_soft_targets_that_sum_to_one_and_keeps_the_skip_count():
    torch.manual_seed(0)
    mixer = BatchMixer(num_classes=4, mixup=0.4)
    batch = [(torch.rand(3, 8, 8), 1), None, (torch.rand(3, 8, 8), 3), (torch.rand(3, 8, 8), 0)]
    images, labels, skipped = mixer(batch)
    assert images.shape == (3, 3, 8, 8) and skipped == 1
    assert labels.shape == (3, 4) and labels.dtype == torch.float32
    assert torch.allclose(labels.sum(1), torch.ones(3))
    assert labels[:, 2].abs().sum() == 0  # no image of class 2: no share of it anywhere
    empty_images, empty_labels, skipped = mixer([None, None])
    assert len(empty_labels) == 0 and skipped == 2


def test_batch_collate_follows_the_config():
    config = RunConfig()
    assert batch_collate(config, 10) is None
    config.data.mixup, config.data.cutmix = 0.2, 1.0
    both = batch_collate(config, 10)
    assert isinstance(both.mix, v2.RandomChoice)
    assert [type(t) for t in both.mix.transforms] == [v2.MixUp, v2.CutMix]
    config.train.label_smoothing = 0.1
    config.data.augment = "strong"
    assert describe(config) == "strong, MixUp 0.2, CutMix 1, label smoothing 0.1"
    assert describe(RunConfig()) == "no augmentation"


def test_losses_take_soft_targets_and_equal_hard_ones_on_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    hard = torch.tensor([0, 2, 1, 1, 0])
    one_hot = torch.nn.functional.one_hot(hard, 3).float()
    counts = [50, 10, 2]
    # unweighted: with class weights torch divides a hard batch by its weights' sum and a soft
    # one by its size, so only the unweighted losses can be equal
    for loss in (build_loss(None, 0.1), LogitAdjustedLoss(counts, 1.0, None, 0.1),
                 LDAMLoss(counts, 0.5, 0.8)):
        assert torch.allclose(loss(logits, hard), loss(logits, one_hot), atol=1e-6)
    # a half-half target: LDAM shares out the two classes' margins in proportion
    ldam = LDAMLoss(counts, 0.5, 0.8)
    soft = torch.tensor([[0.5, 0.0, 0.5]])
    m = ldam.margins
    expected = torch.nn.functional.cross_entropy(
        logits[:1] - torch.tensor([[0.5 * m[0], 0.0, 0.5 * m[2]]]), soft)
    assert torch.allclose(ldam(logits[:1], soft), expected)


@pytest.fixture(scope="module")
def index(demo_root):
    return open_dataset(demo_root)


def _frozen(demo_root, **data) -> RunConfig:
    config = RunConfig()
    config.data.path, config.data.input_size = str(demo_root), 32
    config.model.freeze_stages = 64
    config.train.device = "cpu"
    for key, value in data.items():
        setattr(config.data, key, value)
    return config


def test_augmentation_turns_off_the_feature_cache_and_the_plan_says_so(demo_root, index):
    assert plan_run(_frozen(demo_root), index, fix=True).fast_path
    for change in ({"augment": "light"}, {"mixup": 0.2}, {"cutmix": 1.0}):
        plan = plan_run(_frozen(demo_root, **change), index, fix=True)
        assert not plan.fast_path and plan.augments
        assert any("turns off the cached-features fast path" in n for n in plan.notes)
    config = _frozen(demo_root, augment="strong")
    config.model.head = "logreg"
    plan = plan_run(config, index, fix=True)
    assert plan.fast_path and "augmentation is not used" in " ".join(plan.warnings)


def test_batch_preview_shows_augmented_images_with_mixed_labels(demo_root, index):
    config = _frozen(demo_root, augment="strong", mixup=0.4)
    plan = plan_run(config, index, fix=True)
    preview = next(iter_batch_preview(plan, index, count=6, seed=1))
    assert preview.images.shape == (6, 32, 32, 3) and preview.images.dtype == np.uint8
    assert len(preview.captions) == 6 and preview.recipe == "strong, MixUp 0.4"
    names = set(index.class_names)
    for caption in preview.captions:  # "3 (60%) · 7 (40%)" or one class name
        assert {part.split(" (")[0] for part in caption.split(" · ")} <= names
    state = torch.random.get_rng_state()
    again = next(iter_batch_preview(plan, index, count=6, seed=1))
    assert torch.equal(state, torch.random.get_rng_state())  # the run's stream is untouched
    assert np.array_equal(again.images, preview.images) and again.captions == preview.captions


def test_a_run_trains_on_mixed_batches_of_the_strong_preset(demo_root, tmp_path):
    from workbench.train.engine import Trainer
    from workbench.train.events import BatchDone, Finished

    config = _frozen(demo_root, augment="strong", mixup=0.2, cutmix=1.0, num_workers=0)
    config.model.weights, config.model.freeze_stages = "random", 0
    config.train.loss, config.train.label_smoothing = "ldam_drw", 0.1
    config.train.epochs, config.train.batch_size, config.train.limit_train_batches = 1, 8, 2
    config.train.out_dir = str(tmp_path)
    events = list(Trainer(config.validate()).run())
    losses = [e.loss for e in events if isinstance(e, BatchDone)]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert isinstance(events[-1], Finished), events[-1]


def test_train_takes_an_augmentation_preset_on_the_command_line(capsys):
    from workbench.cli import main

    assert main(["train", "demo", "--augment", "strong", "--set", "data.mixup=0.2",
                 "--print-config"]) == 0
    out = capsys.readouterr().out
    assert 'augment = "strong"' in out and "mixup = 0.2" in out
    with pytest.raises(SystemExit) as exited:
        main(["train", "demo", "--augment", "wild"])
    assert exited.value.code == 2
    assert "invalid choice: 'wild' (choose from 'none', 'light'" in capsys.readouterr().err
