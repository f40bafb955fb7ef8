"""`workbench advise --budget ... --json`: the trials and the recommendation in the contract;
bad input gives a usable answer or one line; `train --demo` follows the recommendation."""

import json

import pytest

from tests.test_advice_trials import _write_set
from workbench.cli import main

CONTRACT = ("name", "freeze_stages", "feature_stage", "head", "input_size", "score", "spread",
            "seconds")


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    return _write_set(tmp_path_factory.mktemp("cli") / "stripes", [6, 6, 6])


def _advise(capsys, *args):
    code = main(["advise", *map(str, args), "--backbone", "mobilenet_v2", "--weights",
                 "IMAGENET1K_V1", "--sample", "16", "--json"])
    captured = capsys.readouterr()
    return code, captured


def test_json_keeps_every_key_and_adds_trials_and_the_recommendation(capsys, stripes):
    code, out = _advise(capsys, stripes, "--input-size", "32", "--budget", "quick")
    assert code == 0, out.err
    data = json.loads(out.out)
    for key in ("images_per_class", "similarity", "cell", "strategy", "strategy_detail",
                "freeze_stages", "num_stages", "trials", "recommended"):
        assert key in data
    assert len(data["trials"]) == 11  # 5 stages x (average, 2x2), fine-tuning at low fidelity
    for trial in data["trials"]:
        assert set(CONTRACT) <= set(trial) and trial["input_size"] == 32
    rec, detail = data["recommended"], data["strategy_detail"]
    assert rec["source"] == "trials"
    assert data["freeze_stages"] == rec["freeze_stages"] == detail["freeze_stages"]
    for key in ("feature_stage", "head", "input_size"):
        assert detail[key] == rec[key]
    assert data["strategy"] == rec["name"]
    assert data["verdict"].startswith("The trials")


def test_a_set_too_small_for_trials_answers_with_the_textbook_cell(capsys, tmp_path):
    root = _write_set(tmp_path / "tiny", [1, 1, 1])
    code, out = _advise(capsys, root, "--input-size", "32")
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["trials"] == [] and data["recommended"]["source"] == "textbook cell"
    assert data["verdict"].startswith("no evidence: textbook cell")
    assert data["freeze_stages"] == data["textbook"]["freeze_stages"]


def test_an_unknown_budget_exits_2(capsys, stripes):
    with pytest.raises(SystemExit) as exc:
        main(["advise", str(stripes), "--budget", "huge"])
    assert exc.value.code == 2


def test_text_report_lists_the_trials_and_the_recommendation(capsys, stripes):
    code = main(["advise", str(stripes), "--backbone", "mobilenet_v2", "--weights",
                 "IMAGENET1K_V1", "--sample", "16", "--input-size", "32"])
    out = capsys.readouterr().out
    assert code == 0
    assert "trials (quick budget" in out and "recommended" in out and " * probe" in out


def test_train_demo_follows_the_recommendation(demo_root):
    from workbench.advice.demo import demo_config
    from workbench.advice.trials import TrialsReport, iter_trials

    config, index = demo_config()
    # the same trials again come from the cache: their pick is what the demo trains
    report = [e for e in iter_trials(index, config) if isinstance(e, TrialsReport)][-1]
    assert report.cached and report.pick is not None
    pick = report.pick.settings()
    m = config.model
    assert (m.freeze_stages, m.head, m.feature_stage, m.norm_policy) == (
        pick["freeze_stages"], pick["head"], pick["feature_stage"], pick["norm_policy"])
    assert config.data.input_size == pick["input_size"] == 64


def test_the_text_table_marks_the_pick_and_the_candidates_the_halving_eliminated():
    from types import SimpleNamespace

    from workbench.advice.trials import Trial, TrialsReport
    from workbench.advice.trials.fidelity import eliminated
    from workbench.cli.advice import _trial_lines

    probe = Trial("probe block3 (average)", "probe", 5, 3, "logreg", 160, 0.8, 0.02, 1.0)
    ft = Trial("fine-tune all, one LR", "finetune", 0, 4, "linear", 160, 0.9, 0.03, 9.0)
    lpft = eliminated(Trial("LP-FT (probe, then fine-tune all)", "lpft", 0, 4, "linear", 160,
                            0.85, 0.05, 9.0), ft.name)
    report = SimpleNamespace(trials=TrialsReport("thorough", (probe, ft, lpft), ft, 3, 90, 160),
                             recommended={"name": ft.name}, verdict="The trials ...")
    lines = _trial_lines(report)
    assert [line[:3] for line in lines[2:5]] == [" * ", " x ", "   "]
    assert "eliminated on the first fold" in lines[5]
    ft_only = SimpleNamespace(**{**vars(report), "trials": TrialsReport(
        "quick", (probe, ft), ft, 3, 90, 160)})
    assert not any("eliminated" in line for line in _trial_lines(ft_only))
