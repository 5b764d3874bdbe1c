"""A trial the fusion refuses, trained alone inside a fusion host, one epoch when asked.

`train_trial` runs the whole trial in a loop of its own. Here it runs on a thread that hands
over each epoch's report and then waits to be asked for the next one, so the host can step it
an epoch at a time between its fused epochs, exactly as the trial alone trains.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from tunelab.datasets import Splits
from tunelab.training.loop import train_trial
from tunelab.training.plan import TrialPlan

Report = tuple[dict[str, Any], "dict[str, Any] | None"]  # an epoch's metrics, and its state when one is due


class _Left(Exception):
    """Raised inside the trial's thread to end it when it leaves before its end."""


class SoloTraining:
    def __init__(self, plan: TrialPlan, data: Splits, resume: dict[str, Any] | None) -> None:
        self._reports: queue.Queue[Report | BaseException] = queue.Queue(maxsize=1)
        self._go_on = threading.Semaphore(0)
        self._leaving = False
        self._thread = threading.Thread(target=self._train, args=(plan, data, resume), daemon=True,
                                        name=f"solo-{plan.rules.seed}")

    def next_epoch(self) -> Report:
        """Train the trial's next epoch (its first, on the first call); its report."""
        if self._thread.ident is None:
            self._thread.start()
        else:
            self._go_on.release()
        report = self._reports.get()
        if isinstance(report, BaseException):
            raise report
        return report

    def leave(self) -> None:
        """End the trial's thread (it is stopped, or ended): it trains no further."""
        self._leaving = True
        if self._thread.ident is not None:
            self._go_on.release()

    def _train(self, plan: TrialPlan, data: Splits, resume: dict[str, Any] | None) -> None:
        try:
            train_trial(plan, data, self._report, resume=resume)
        except _Left:
            pass
        except BaseException as error:  # the host raises it to the driver, as the trial's failure
            self._reports.put(error)

    def _report(self, metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        self._reports.put((metrics, state))
        self._go_on.acquire()
        if self._leaving:
            raise _Left
