"""The run config round-trips through TOML and rejects bad values with one readable line."""

import pytest

from workbench.config import RunConfig, load_config, save_config
from workbench.errors import UserError


def test_round_trip(tmp_path):
    config = RunConfig()
    config.model.freeze_stages = 3
    config.data.loss_weighting = "effective_number"
    path = save_config(config, tmp_path / "run.toml")
    assert load_config(path) == config


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nepochs = 0\n", "train.epochs"),
        ("[train]\nlr = 'fast'\n", "train.lr"),
        ("[model]\nnorm_policy = 'weird'\n", "model.norm_policy"),
        ("[model]\nfreze_stages = 2\n", "model.freze_stages"),
        ("[colour]\n", "colour"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_bad_values_give_one_readable_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value).strip() or "TOML" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.toml")

