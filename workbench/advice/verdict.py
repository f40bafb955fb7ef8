"""The textbook cell against the measured trials: what to recommend, and one sentence why.

The evidence decides, but only about what it measured: the pick replaces the textbook cell's
strategy when the cell's own candidate was among the trials (a probe for the frozen cells, the
fine-tuning trial for the others) or when the textbook strategy is itself a frozen probe. A
fine-tuning cell whose own candidate the budget did not try (the quick budget fine-tunes only
the whole network with one LR) stands, and the sentence says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workbench.advice.matrix import Strategy
from workbench.advice.trials import Trial, TrialsReport
from workbench.config import RunConfig


def textbook_trial(strategy: Strategy, trials: TrialsReport, num_stages: int) -> Trial | None:
    """The trial that measured the textbook strategy, if one did."""
    if strategy.freeze_stages >= num_stages:
        stage = strategy.feature_stage % num_stages
        return next((t for t in trials.trials if t.kind == "probe" and t.pooling == "gap"
                     and t.feature_stage == stage and t.input_size == trials.input_size), None)
    kind = "finetune" if strategy.freeze_stages == 0 else "partial"
    return next((t for t in trials.trials if t.kind == kind
                 and (kind != "finetune" or t.lr_decay == strategy.lr_decay)), None)


def _pct(trial: Trial) -> str:
    return f"{100 * (trial.score or 0.0):.0f}% ± {100 * trial.spread:.0f}"


def _same(pick: Trial, strategy: Strategy, num_stages: int) -> bool:
    frozen = strategy.freeze_stages >= num_stages
    if frozen != (pick.kind == "probe"):
        return False
    if frozen:
        return pick.feature_stage == strategy.feature_stage % num_stages
    return (pick.freeze_stages == strategy.freeze_stages
            and (pick.freeze_stages > 0 or pick.lr_decay == strategy.lr_decay))


def _why(pick: Trial, book: Trial) -> str:
    if pick.kind == "probe" and book.kind == "probe":
        return ("earlier-stage features separate these classes better" if
                pick.feature_stage < book.feature_stage else
                "later-stage features separate these classes better")
    if pick.kind == "probe":
        return "fine-tuning did not beat frozen features on this data"
    if book.kind == "probe":
        return "frozen ImageNet features do not fit this data; training them does"
    if pick.freeze_stages != book.freeze_stages:
        return ("the lower stages are better kept as they are" if pick.freeze_stages >
                book.freeze_stages else "the lower stages need to change too")
    return ("the lower stages need to move as fast as the top" if pick.lr_decay > book.lr_decay
            else "the lower stages should move more slowly than the top")


def sentence(strategy: Strategy, trials: TrialsReport, num_stages: int) -> str:
    """One sentence from the numbers: agreement, disagreement and why, or no evidence."""
    pick = trials.pick
    if pick is None:
        return f"{trials.message or 'no evidence'}: the textbook cell's strategy stands."
    if _same(pick, strategy, num_stages):
        return (f"The trials agree with the textbook cell: {pick.name} scored {_pct(pick)} on "
                "held-out training images.")
    book = textbook_trial(strategy, trials, num_stages)
    if book is None:
        return (f"The textbook cell's fine-tuning was not tried with the {trials.budget} budget "
                f"(the best frozen candidate, {pick.name}, scored {_pct(pick)}): the cell "
                "stands; the thorough budget measures it.")
    return (f"The trials overrule the textbook cell: {pick.name} scored {_pct(pick)} on held-out "
            f"training images against {_pct(book)} for the cell's {book.name}; "
            f"{_why(pick, book)}.")


def _textbook_settings(strategy: Strategy, config: RunConfig, input_size: int) -> dict[str, Any]:
    return {"freeze_stages": strategy.freeze_stages, "feature_stage": strategy.feature_stage,
            "head": strategy.head, "norm_policy": strategy.norm_policy,
            "lr": config.train.lr, "lr_decay": strategy.lr_decay, "input_size": input_size,
            "weights": "pretrained", "source": "textbook cell", "name": strategy.title}


def recommend(report: Any, trials: TrialsReport, config: RunConfig) -> Any:
    """The report with the trials, the recommended settings and the verdict sentence."""
    n = report.num_stages
    strategy, pick = report.strategy, trials.pick
    verdict = sentence(strategy, trials, n)
    measured = pick is not None and (strategy.freeze_stages >= n or
                                     textbook_trial(strategy, trials, n) is not None)
    if measured:
        settings = {**pick.settings(), "source": "trials", "name": pick.name}
    else:
        settings = _textbook_settings(strategy, config, trials.input_size)
    if trials.size_hint:
        verdict = f"{verdict} Input size: {trials.size_hint}."
    return dataclasses.replace(report, trials=trials, recommended=settings, verdict=verdict)


def recommended_strategy(textbook: Strategy, trials: TrialsReport | None,
                         recommended: dict[str, Any], verdict: str) -> Strategy:
    """The recommendation as a `Strategy` (the textbook one when no trial decided)."""
    if recommended.get("source") != "trials":
        return textbook
    return Strategy(
        cell=textbook.cell, title=str(recommended["name"]),
        freeze_stages=int(recommended["freeze_stages"]), head=str(recommended["head"]),
        feature_stage=int(recommended["feature_stage"]),
        norm_policy=str(recommended["norm_policy"]), lr_decay=float(recommended["lr_decay"]),
        explanation=verdict)
