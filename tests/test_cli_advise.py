"""`workbench advise`: JSON per the contract, readable text, exit 2 on a one-class dataset."""

import json

from PIL import Image

from workbench.cli import main


def test_advise_demo_json(capsys, demo_root):
    code = main(["advise", str(demo_root), "--backbone", "mobilenet_v2", "--sample", "16",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert "\r" not in captured.err  # not a terminal: no progress line redrawn in place
    data = json.loads(captured.out)
    assert data["cell"] in ("similar-small", "similar-large", "dissimilar-small",
                            "dissimilar-large")
    for key in ("images_per_class", "similarity", "strategy", "freeze_stages", "num_stages"):
        assert key in data
    assert 0 <= data["freeze_stages"] <= data["num_stages"]


def test_one_class_dataset_exits_2_with_one_line(tmp_path, capsys):
    folder = tmp_path / "only" / "cat"
    folder.mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i}.png")
    code = main(["advise", str(tmp_path / "only"), "--backbone", "mobilenet_v2"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "class" in err


def test_unknown_backbone_exits_2(demo_root, capsys):
    code = main(["advise", str(demo_root), "--backbone", "no_such_net"])
    assert code == 2 and "no_such_net" in capsys.readouterr().err
