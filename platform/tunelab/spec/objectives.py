"""The rules of `objective:`, one mapping or a list of them (a multi-objective study).

A list trades a task metric (the primary, which the scheduler judges and which picks each
trial's best epoch) against other metrics, task metrics or what a trial costs
(`TRADE_OFF_METRICS`). Searchers and schedulers declare whether they take several objectives.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from tunelab.errors import SpecError
from tunelab.metrics import TRADE_OFF_METRICS, Mode, goal_problem
from tunelab.search.schedulers import SCHEDULERS
from tunelab.search.searchers import SEARCHERS
from tunelab.spec.schema import Objective, Spec

Fail = Callable[[str, str], SpecError]


def resolved_objective(
    spec: Spec, task: str | None, task_metrics: Mapping[str, Mode], searcher: Any, scheduler: Any, fail: Fail
) -> Objective | list[Objective]:
    """`spec.objective` with each mode filled in; raise for the first problem. A list of one is
    the single objective it holds."""
    given = spec.objective
    if isinstance(given, list) and len(given) == 1:
        given = given[0]
    if not isinstance(given, list):
        return _resolved(given, "objective", task_metrics, str(task), fail)

    if not given:
        raise fail("objective", "expected an objective (a mapping) or a list of at least two")
    _check_strategies(searcher, scheduler, fail)
    known = {**task_metrics, **TRADE_OFF_METRICS}
    seen: dict[str, int] = {}
    resolved = []
    for index, objective in enumerate(given):
        field = f"objective.{index}"
        if objective.metric in seen:
            raise fail(f"{field}.metric", f"{objective.metric} is already objective {seen[objective.metric]}; "
                                          "expected each metric once")
        if objective.goal is not None:
            raise fail(f"{field}.goal", "a goal ends the study when one objective reaches it, which has no meaning "
                                        "for a Pareto front of several; expected no goal with several objectives")
        seen[objective.metric] = index
        resolved.append(_resolved(objective, field, known, f"{task}, or a trial's cost", fail))
    _check_primary(given, task_metrics, fail)
    return resolved


def _check_strategies(searcher: Any, scheduler: Any, fail: Fail) -> None:
    """The searcher must model several objectives; the scheduler must judge by the primary alone."""
    if not searcher.multi_objective:
        takes = ", ".join(name for name, entry in SEARCHERS.items() if entry.multi_objective)
        raise fail("searcher.name", f"the {searcher.name} searcher optimises one objective; with several "
                                    f"objectives expected one of {takes}")
    if not scheduler.judges_a_primary_objective:
        takes = ", ".join(name for name, entry in SCHEDULERS.items() if entry.judges_a_primary_objective)
        raise fail("scheduler.name", f"the {scheduler.name} scheduler cannot judge trials by one of several "
                                     f"objectives; with several objectives expected one of {takes}")


def _check_primary(given: list[Objective], task_metrics: Mapping[str, Mode], fail: Fail) -> None:
    """One primary at most, and a task metric: it picks each trial's best epoch every epoch."""
    primaries = [index for index, objective in enumerate(given) if objective.primary]
    if len(primaries) > 1:
        raise fail(f"objective.{primaries[1]}.primary", f"objective {primaries[0]} is primary already; expected one primary")
    primary = primaries[0] if primaries else 0
    if given[primary].metric not in task_metrics:
        raise fail(
            f"objective.{primary}.metric",
            f"{given[primary].metric} cannot be the primary objective (the scheduler judges it every epoch and it "
            f"chooses each trial's best epoch); expected one of {', '.join(task_metrics)} first, or `primary: true` on one",
        )


def _resolved(objective: Objective, field: str, known: Mapping[str, Mode], task: str, fail: Fail) -> Objective:
    from tunelab.spec.checks import did_you_mean  # checks imports this module

    metric = objective.metric
    if metric not in known:
        raise fail(f"{field}.metric", f"unknown metric {metric!r} for {task}{did_you_mean(metric, known)}; "
                                      f"expected one of {', '.join(known)}")
    better = known[metric]
    if objective.mode is not None and objective.mode != better:
        raise fail(f"{field}.mode", f"{metric} is better when {'lower' if better == 'min' else 'higher'}; expected {better!r}")
    if objective.goal is not None and (problem := goal_problem(metric, objective.goal)):
        raise fail(f"{field}.goal", problem)
    return objective.model_copy(update={"mode": better})
