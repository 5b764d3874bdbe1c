"""How a trial's epochs reach Ray Tune: gathered when epochs are short, at once when it matters.

Each `tune.report` blocks the trial until the driver asks for the next result. With
sub-second epochs that round trip, once per epoch, cost more than the epochs themselves
(bench/overhead.py), so short epochs travel together, at most REPORT_EVERY_S apart. An epoch
a scheduler judges, one whose training state is saved, and the last one are sent at once: the
scheduler decides on exactly the epochs it would see if every epoch were reported, the trial
waits for that decision before it trains on, and a state is saved only once the driver holds
every epoch before it (see `trial_state`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Collection

from tunelab.metrics import EPOCH_ROWS, TRIAL_END, epoch_row

REPORT_EVERY_S = 0.25

Send = Callable[[dict[str, Any], "dict[str, Any] | None"], None]


class EpochReporter:
    """The training loop's `on_epoch`: passes epochs on to `send` in batches."""

    def __init__(self, send: Send, rung_epochs: Collection[int], clock: Callable[[], float] = time.monotonic,
                 every_s: float = REPORT_EVERY_S) -> None:
        self.send = send
        self.every_s = every_s
        self.rung_epochs = frozenset(rung_epochs)
        self.clock = clock
        self.rows: list[dict[str, Any]] = []
        self.last_sent = clock()

    def __call__(self, metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.rows.append(epoch_row(metrics))
        urgent = state is not None or TRIAL_END in metrics or metrics["epoch"] in self.rung_epochs
        if not urgent and self.clock() - self.last_sent < self.every_s:
            return
        self.send({**metrics, EPOCH_ROWS: self.rows}, state)
        self.rows = []
        self.last_sent = self.clock()
