"""The fusion host: a Ray actor that owns CPUs (or a GPU) and trains the epochs of the member
trials a fused study's driver gives it (issue 21; see `tunelab.tune.fused_study`).

The driver says which members join (with their saved state, when they continue), which train
their next epoch together, and which leave. Members that share a cohort key train one fused
epoch (`engine`); a trial the fusion refuses trains alone (`solo`), an epoch at a time. Each
member's end is decided exactly as `train_trial` decides it (`judge_epoch`, the same final
evaluation), and its state is handed back as its trial alone would save it.
"""

from __future__ import annotations

import time
from typing import Any, Hashable

import torch

from tunelab.datasets import Splits
from tunelab.fusion.cohort import cohort_key
from tunelab.fusion.engine import FusedArchitecture
from tunelab.fusion.member import FusedMember, timed_epoch
from tunelab.fusion.memory import free_memory_bytes, members_that_fit
from tunelab.fusion.messages import EpochAnswer
from tunelab.fusion.solo import SoloTraining
from tunelab.metrics import TRIAL_END
from tunelab.training.plan import StudySetup, TrialPlan
from tunelab.training.trial_state import best_model_of, state_bytes, state_from_bytes


class FusionHost:
    """Created as a Ray actor by `tunelab.tune.fused_study`; its methods run one at a time."""

    def __init__(self, data: Splits, setup: StudySetup, threads: int, max_members: int, device: str) -> None:
        torch.set_num_threads(threads)
        self.data = data
        self.setup = setup
        self.max_members = max_members
        self.device = device if device == "cpu" or torch.cuda.is_available() else "cpu"
        self.members: dict[str, FusedMember] = {}
        self.keys: dict[str, Hashable] = {}  # each member's cohort
        self.solos: dict[str, SoloTraining] = {}
        self.architectures: dict[Hashable, FusedArchitecture] = {}
        self.cohort_limit: dict[Hashable, int] = {}  # members per fused epoch: asked, or what fits in memory

    def placement(self) -> dict[str, str]:
        """Where its members train: the host's node and GPUs."""
        import ray

        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "gpu_ids": ",".join(map(str, ray.get_gpu_ids()))}

    def join(self, trial_id: str, config: dict[str, Any], saved: bytes | None, solo: bool) -> int:
        """A member trial (re)starts, from its saved state when it has one; the most members of
        its cohort one fused epoch may hold (1 for a trial trained alone)."""
        self.leave([trial_id])
        plan = self.setup.plan_for(config, device=self.device)
        resume = state_from_bytes(saved) if saved is not None else None
        if solo:
            self.solos[trial_id] = SoloTraining(plan, self.data, resume)
            return 1
        key = self._architecture_for(plan)
        self.members[trial_id] = FusedMember.start(self.architectures[key], plan, resume)
        self.keys[trial_id] = key
        return self.cohort_limit[key]

    def train(self, trial_ids: list[str]) -> list[EpochAnswer]:
        """The next epoch of each member, in that order: one fused epoch for members of one
        cohort, or the epoch of one trial trained alone. A member whose epoch ends it leaves."""
        if len(trial_ids) == 1 and trial_ids[0] in self.solos:
            answers = [self._solo_epoch(trial_ids[0])]
        else:
            keys = {self.keys[trial_id] for trial_id in trial_ids}
            if len(keys) != 1:
                raise ValueError("a fused epoch's members must share one cohort key")
            answers = self._fused_epoch(keys.pop(), [self.members[trial_id] for trial_id in trial_ids])
        self.leave([trial_id for trial_id, answer in zip(trial_ids, answers) if TRIAL_END in answer.metrics])
        return answers

    def leave(self, trial_ids: list[str]) -> None:
        """Members that train no further (stopped, ended, or joining again): free their state."""
        for trial_id in trial_ids:
            self.members.pop(trial_id, None)
            self.keys.pop(trial_id, None)
            solo = self.solos.pop(trial_id, None)
            if solo is not None:
                solo.leave()

    def _solo_epoch(self, trial_id: str) -> EpochAnswer:
        metrics, state = self.solos[trial_id].next_epoch()
        best_model = None
        if state is not None and state["trial_end"]:
            best_model = state_bytes(best_model_of(state))
        return EpochAnswer(metrics, None if state is None else state_bytes(state), best_model)

    def _architecture_for(self, plan: TrialPlan) -> Hashable:
        """The key of the plan's cohort, whose architecture its first member builds."""
        key = cohort_key(plan)
        if key not in self.architectures:
            architecture = FusedArchitecture(plan, self.data)
            self.cohort_limit[key] = members_that_fit(architecture.num_parameters,
                                                      free_memory_bytes(architecture.device), self.max_members)
            self.architectures[key] = architecture
        return key

    def _fused_epoch(self, key: Hashable, members: list[FusedMember]) -> list[EpochAnswer]:
        architecture = self.architectures[key]
        started = time.perf_counter()
        measured, training_seconds = timed_epoch(architecture, members)
        # Each member's epoch took the fused epoch's time: what its trial waited for it.
        seconds = time.perf_counter() - started
        answers = []
        for member, figures in zip(members, measured):
            report = {**member.judged(architecture, self.data, figures, training_seconds), "epoch_seconds": seconds}
            state = state_bytes(member.state(report)) if member.checkpoint_due(report) else None
            best_model = state_bytes(member.best_model()) if TRIAL_END in report else None
            answers.append(EpochAnswer(report, state, best_model))
        return answers
