"""A similarity right at the threshold is shown with enough digits and called borderline."""

from __future__ import annotations

import pytest

from workbench.advice.advisor import AdviceReport
from workbench.advice.matrix import is_borderline, similarity_verdict, strategy_for
from workbench.advice.probe import ProbeResult
from workbench.advice.similarity import BNDivergence
from workbench.cli.advice import format_report


@pytest.mark.parametrize(("value", "expected"), [
    (0.1245, True), (0.12, True), (0.109, True), (0.131, True),
    (0.107, False), (0.133, False), (0.75, False), (0.01, False),
])
def test_is_borderline_within_ten_percent_of_the_threshold(value: float, expected: bool) -> None:
    assert is_borderline(value, 0.12) is expected


def test_verdict_names_the_side_and_says_borderline() -> None:
    assert similarity_verdict(0.1245, 0.12) == " → dissimilar, borderline (within 10% of 0.12)"
    assert similarity_verdict(0.75, 0.12) == " → dissimilar"
    assert similarity_verdict(0.02, 0.12) == " → similar"
    assert similarity_verdict(None, 0.12) == ""


def test_text_report_shows_three_digits_and_borderline() -> None:
    """The journey's case: 0.1245 against 0.12 printed as "0.12 → dissimilar"."""
    profile = BNDivergence(per_stage=[0.05, 0.1245], mean=0.1245)
    report = AdviceReport(
        backbone="resnet18", images_per_class={"min": 30, "median": 40, "max": 50},
        similarity={"bn_divergence": 0.1245, "nce": None, "leep": None},
        bn_profile=profile, probe=ProbeResult(message="not run"), cell="dissimilar-small",
        cell_source="measured", strategy=strategy_for("dissimilar-small", 5), num_stages=5,
        thresholds={"small_images_per_class": 100, "similarity_threshold": 0.12},
        sample={"images": 64, "classes": 4})
    line = next(ln for ln in format_report(report).splitlines() if ln.startswith("BN divergence"))
    assert "0.124" in line or "0.125" in line
    assert "dissimilar, borderline" in line
