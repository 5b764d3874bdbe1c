"""Models named by import path in test studies (`study_models:FragileMLP`)."""

from __future__ import annotations

import os
import sys

import torch

from tunelab_models import DataSignature, Param, TunableModel


class FragileMLP(TunableModel):
    """A one-hidden-layer MLP whose forward pass raises for one width: an errored trial."""

    name = "fragile_mlp"
    hyperparameters = (Param("width", int, 16, "hidden units", low=1, high=1024),)

    def __init__(self, signature: DataSignature, width: int) -> None:
        super().__init__()
        self.width = width
        self.layers = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(signature.num_features, width), torch.nn.ReLU(),
            torch.nn.Linear(width, signature.num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.width == 13:
            raise RuntimeError("width 13 is unlucky")
        return self.layers(x)


class FlakyMLP(FragileMLP):
    """Fails only when trained with seed 2: one retraining round out of several fails."""

    name = "flaky_mlp"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.initial_seed() == 2:
            raise RuntimeError("seed 2 is unlucky")
        return self.layers(x)


class FailOnceMLP(FragileMLP):
    """Raises once, mid-training, in the first process that trains it; a retry succeeds.

    `marker` is a file: absent means "not failed yet". Created just before raising."""

    name = "fail_once_mlp"
    hyperparameters = (*FragileMLP.hyperparameters, Param("marker", str, "", "file that records the failure"))

    def __init__(self, signature: DataSignature, width: int, marker: str) -> None:
        super().__init__(signature, width)
        self.marker = marker
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.training and self.calls > 40 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("simulated crash in the middle of training")
        return self.layers(x)


class WarningFragileMLP(FragileMLP):
    """FragileMLP that, like many libraries, prints a warning in the trial's process when built."""

    name = "warning_fragile_mlp"

    def __init__(self, signature: DataSignature, width: int) -> None:
        super().__init__(signature, width)
        print(f"UserWarning: a library in the trial process warns about width {width}", file=sys.stderr, flush=True)
