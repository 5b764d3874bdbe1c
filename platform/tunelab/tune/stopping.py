"""Study-level stopping: what ends a whole study before its trial budget is spent."""

from __future__ import annotations

from typing import Any

from ray.tune import Stopper

from tunelab.metrics import TRIAL_END


class GoalStopper(Stopper):
    """Ends the study once a trial has reached the objective's goal.

    The training loop ends that trial itself, with its test evaluation, so its last report says
    "reached_goal". Ray is told to stop that trial from here rather than left to see it return:
    a trial stopped by `stop_all` gets no completion callback and would be recorded as
    interrupted. `stop_all` then keeps new trials from starting and stops the running ones.
    """

    def __init__(self) -> None:
        self.reached = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        ended_at_goal = result.get(TRIAL_END) == "reached_goal"
        self.reached = self.reached or ended_at_goal
        return ended_at_goal

    def stop_all(self) -> bool:
        return self.reached
