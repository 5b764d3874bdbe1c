"""What a trial's model costs, which a multi-objective study trades against its accuracy or
loss: its size, and how long one batch takes through it. Plain PyTorch."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Mapping

import torch

from tunelab.metrics import OBJECTIVE_VALUE_PREFIX, Mode, worst_value

# Forward passes not timed (first calls allocate memory and pick kernels), then timed ones.
LATENCY_WARMUP_PASSES = 3
LATENCY_TIMED_PASSES = 15


def count_parameters(model: torch.nn.Module) -> int:
    """Every parameter of the model, trainable or frozen (buffers such as running means aside)."""
    return sum(parameter.numel() for parameter in model.parameters())


@torch.no_grad()
def inference_ms(model: torch.nn.Module, batch: torch.Tensor) -> float:
    """Median milliseconds of one forward pass of `batch` in eval mode, on the batch's device,
    after a few untimed passes. The median: one pass slowed by a busy machine does not count."""
    model.eval()
    for _ in range(LATENCY_WARMUP_PASSES):
        model(batch)
    timings = []
    for _ in range(LATENCY_TIMED_PASSES):
        _wait_for_device(batch.device)
        started = time.perf_counter()
        model(batch)
        _wait_for_device(batch.device)  # a GPU returns before it has finished: wait for it
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings)


def _wait_for_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def objective_values(
    objectives: tuple[tuple[str, Mode], ...], at_best_epoch: Mapping[str, Any], final: Mapping[str, Any] | None,
    diverged: bool,
) -> dict[str, float]:
    """Each objective's value for the trial as a whole, keyed `objective_<metric>`: its value at
    the primary objective's best epoch so far (the weights the trial keeps and is tested with),
    and `inference_ms` measured on those weights when the trial ends (`final`; NaN before).

    Every report carries them (Ray refuses a report without the searcher's metrics), so a
    trial the scheduler stops has the values of its best epoch too. A diverged trial reports
    every objective at its worst, so the searcher learns to avoid it and it is never on the
    Pareto front."""
    values = {}
    for metric, mode in objectives:
        value = (final or {}).get(metric) if metric == "inference_ms" else at_best_epoch.get(metric)
        if diverged:
            value = worst_value(mode)
        values[OBJECTIVE_VALUE_PREFIX + metric] = math.nan if value is None else float(value)
    return values
