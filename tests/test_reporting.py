"""How a trial's epochs reach Ray Tune: short epochs gathered, decisive ones sent at once."""

from __future__ import annotations

from typing import Any

from tunelab.metrics import EPOCH_ROWS, TRIAL_END
from tunelab.training.reporting import REPORT_EVERY_S, EpochReporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def epoch_metrics(epoch: int, **extra: Any) -> dict[str, Any]:
    return {"epoch": epoch, "val_loss": 1.0 / epoch, "train_loss": 2.0 / epoch, "epoch_seconds": 0.1, **extra}


def run_epochs(reporter: EpochReporter, clock: FakeClock, epochs: int, seconds_each: float,
               last: dict[str, Any] | None = None) -> None:
    for epoch in range(1, epochs + 1):
        clock.now += seconds_each
        extra = last if epoch == epochs and last else {}
        reporter(epoch_metrics(epoch, **extra), None)


def test_short_epochs_travel_together_and_every_epoch_arrives_once() -> None:
    clock, sent = FakeClock(), []
    reporter = EpochReporter(lambda metrics, state: sent.append(metrics), rung_epochs=(), clock=clock)
    run_epochs(reporter, clock, epochs=10, seconds_each=REPORT_EVERY_S / 3, last={TRIAL_END: "completed"})

    assert len(sent) < 10, "short epochs should share reports"
    carried = [row["epoch"] for report in sent for row in report[EPOCH_ROWS]]
    assert carried == list(range(1, 11))
    # A report's own metrics are its last epoch's, and its rows hold the epoch metrics.
    for report in sent:
        assert report["epoch"] == report[EPOCH_ROWS][-1]["epoch"]
        assert all(row["val_loss"] == 1.0 / row["epoch"] for row in report[EPOCH_ROWS])
    assert sent[-1][TRIAL_END] == "completed" and sent[-1]["epoch"] == 10


def test_long_epochs_are_reported_one_by_one() -> None:
    clock, sent = FakeClock(), []
    reporter = EpochReporter(lambda metrics, state: sent.append(metrics), rung_epochs=(), clock=clock)
    run_epochs(reporter, clock, epochs=4, seconds_each=REPORT_EVERY_S * 2)
    assert [[row["epoch"] for row in report[EPOCH_ROWS]] for report in sent] == [[1], [2], [3], [4]]


def test_an_epoch_the_scheduler_judges_is_sent_at_once() -> None:
    clock, sent = FakeClock(), []
    reporter = EpochReporter(lambda metrics, state: sent.append(metrics), rung_epochs={3, 9}, clock=clock)
    run_epochs(reporter, clock, epochs=9, seconds_each=0.001)
    assert [report["epoch"] for report in sent] == [3, 9]
    assert [row["epoch"] for row in sent[0][EPOCH_ROWS]] == [1, 2, 3]


def test_an_epoch_with_a_checkpoint_is_sent_at_once_with_it() -> None:
    clock, sent = FakeClock(), []
    reporter = EpochReporter(lambda metrics, state: sent.append((metrics["epoch"], state)), rung_epochs=(), clock=clock)
    reporter(epoch_metrics(1), None)
    reporter(epoch_metrics(2), {"model": "weights"})
    assert sent == [(2, {"model": "weights"})]
