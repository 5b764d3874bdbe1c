"""A model named by import path in the audit's test study (`trust_models:SlowStarter`)."""

from __future__ import annotations

import torch

from tunelab_models import DataSignature, Param, TunableModel


class SlowStarter(TunableModel):
    """`slow: false` is logistic regression: quick to its (low, on moons) ceiling. `slow: true`
    is a two-layer MLP that learns nothing for its first `quiet_steps` training steps (its
    output is held at zero) and then learns as any MLP: poor at the first rungs, where a
    scheduler stops it, and the best of the study in the end."""

    name = "slow_starter"
    hyperparameters = (
        Param("slow", bool, False, "a slow-starting MLP instead of logistic regression"),
        Param("width", int, 32, "hidden units of the MLP", low=1, high=1024),
        Param("quiet_steps", int, 60, "training steps before the MLP starts to learn", low=0),
    )

    def __init__(self, signature: DataSignature, slow: bool, width: int, quiet_steps: int) -> None:
        super().__init__()
        inputs, outputs = signature.num_features, signature.num_outputs
        if slow:
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(inputs, width), torch.nn.ReLU(),
                                            torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, outputs))
        else:
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(inputs, outputs))
        self.quiet_steps = quiet_steps if slow else 0
        # A buffer: saved with the weights, so a resumed trial goes on where it was.
        self.register_buffer("steps", torch.tensor(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.steps += 1
        awake = (self.steps > self.quiet_steps).to(x.dtype)
        return self.body(x) * awake
