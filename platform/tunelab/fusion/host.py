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
from dataclasses import dataclass, field
from typing import Any, Hashable

import torch

from tunelab.datasets import Splits
from tunelab.fusion.cohort import cohort_key
from tunelab.fusion.engine import FusedArchitecture, MemberTraining
from tunelab.fusion.memory import free_memory_bytes, members_that_fit
from tunelab.fusion.messages import EpochAnswer
from tunelab.fusion.solo import SoloTraining
from tunelab.metrics import EPOCH_METRICS, TRIAL_END
from tunelab.training.costs import count_parameters, objective_values
from tunelab.training import loop
from tunelab.training.epoch_end import BestTracker, judge_epoch
from tunelab.training.plan import StudySetup, TrialPlan
from tunelab.training.trial_state import state_bytes, state_from_bytes


@dataclass
class HostedMember:
    """A fused member's training between its epochs, and its bookkeeping as `train_trial` keeps it."""

    plan: TrialPlan
    key: Hashable
    training: MemberTraining
    objective: BestTracker
    patience: BestTracker
    best_weights: dict[str, torch.Tensor]
    epoch: int  # epochs trained
    last_checkpoint: float
    train_seconds: float = 0.0  # its cohort's fused training passes, every epoch it was in them
    at_best_epoch: dict[str, Any] = field(default_factory=dict)  # the best epoch's row: its objectives' values


class FusionHost:
    """Created as a Ray actor by `tunelab.tune.fused_study`; its methods run one at a time."""

    def __init__(self, data: Splits, setup: StudySetup, threads: int, max_members: int, device: str) -> None:
        torch.set_num_threads(threads)
        self.data = data
        self.setup = setup
        self.max_members = max_members
        self.device = device if device == "cpu" or torch.cuda.is_available() else "cpu"
        self.members: dict[str, HostedMember] = {}
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
        member = self._new_member(plan, resume)
        self.members[trial_id] = member
        return self.cohort_limit[member.key]

    def train(self, trial_ids: list[str]) -> list[EpochAnswer]:
        """The next epoch of each member, in that order: one fused epoch for members of one
        cohort, or the epoch of one trial trained alone. A member whose epoch ends it leaves."""
        if len(trial_ids) == 1 and trial_ids[0] in self.solos:
            answers = [self._solo_epoch(trial_ids[0])]
        else:
            members = [self.members[trial_id] for trial_id in trial_ids]
            if len({member.key for member in members}) != 1:
                raise ValueError("a fused epoch's members must share one cohort key")
            answers = self._fused_epoch(members[0].key, members)
        self.leave([trial_id for trial_id, answer in zip(trial_ids, answers) if TRIAL_END in answer.metrics])
        return answers

    def leave(self, trial_ids: list[str]) -> None:
        """Members that train no further (stopped, ended, or joining again): free their state."""
        for trial_id in trial_ids:
            self.members.pop(trial_id, None)
            solo = self.solos.pop(trial_id, None)
            if solo is not None:
                solo.leave()

    def _solo_epoch(self, trial_id: str) -> EpochAnswer:
        metrics, state = self.solos[trial_id].next_epoch()
        best_model = None
        if state is not None and state["trial_end"]:
            best_model = state_bytes({"best_model": state["best_model"], "best_epoch": state["objective"]["best_epoch"]})
        return EpochAnswer(metrics, None if state is None else state_bytes(state), best_model)

    def _new_member(self, plan: TrialPlan, resume: dict[str, Any] | None) -> HostedMember:
        key = cohort_key(plan)
        if key not in self.architectures:
            architecture = FusedArchitecture(plan, self.data)
            parameters = sum(value.numel() for value in architecture.template.parameters())
            self.cohort_limit[key] = members_that_fit(parameters, free_memory_bytes(architecture.device), self.max_members)
            self.architectures[key] = architecture
        training = self.architectures[key].new_member(plan, resume["fused"] if resume is not None else None)
        rules = plan.rules
        member = HostedMember(plan, key, training, BestTracker(rules.objective_mode),
                              BestTracker(rules.monitor_mode, rules.min_delta), training.weights(), 0,
                              loop.checkpoint_clock())
        if resume is not None:
            member.objective.restore(resume["objective"])
            member.patience.restore(resume["patience"])
            member.best_weights = resume["best_model"]
            member.epoch = int(resume["epoch"])
            member.train_seconds = float(resume["train_seconds"])
            member.at_best_epoch = dict(resume["at_best_epoch"])
        return member

    def _fused_epoch(self, key: Hashable, members: list[HostedMember]) -> list[EpochAnswer]:
        architecture = self.architectures[key]
        started = time.perf_counter()
        architecture.train_epoch([member.training for member in members])
        training_seconds = time.perf_counter() - started
        measured = architecture.measure([member.training for member in members])
        # Each member's epoch took the fused epoch's time: what its trial waited for it.
        seconds = time.perf_counter() - started
        return [self._judged(architecture, member, metrics, training_seconds, seconds)
                for member, metrics in zip(members, measured)]

    def _judged(self, architecture: FusedArchitecture, member: HostedMember, measured: dict[str, float],
                training_seconds: float, seconds: float) -> EpochAnswer:
        """The member's epoch report, its end and its state, as train_trial makes them."""
        member.epoch += 1
        member.train_seconds += training_seconds
        rules = member.plan.rules
        metrics: dict[str, Any] = {"epoch": member.epoch, "lr": float(member.plan.knobs["learning_rate"]),
                                   "num_parameters": count_parameters(architecture.template), "train_seconds": member.train_seconds,
                                   **measured}
        verdict = judge_epoch(metrics, member.epoch, rules, member.objective, member.patience)
        if verdict.improved:
            member.best_weights = member.training.weights()
            member.at_best_epoch = {name: metrics[name] for name in EPOCH_METRICS if name in metrics}
        end = verdict.end
        if end and end != "diverged":
            metrics.update(loop.final_evaluation(architecture.template, member.best_weights, self.data,
                                                 architecture.task, architecture.device,
                                                 architecture.train_x[: architecture.batch_size]))
        if rules.objectives:
            metrics.update(objective_values(rules.objectives, member.at_best_epoch, metrics if end else None,
                                            end == "diverged"))
        if end:
            metrics[TRIAL_END] = end
        metrics["epoch_seconds"] = seconds
        state = None
        if end or loop.checkpoint_clock() - member.last_checkpoint >= rules.checkpoint_interval_s:
            member.last_checkpoint = loop.checkpoint_clock()
            state = state_bytes({
                "epoch": member.epoch,
                "fused": member.training.state(),
                "best_model": member.best_weights,
                "objective": member.objective.state(),
                "patience": member.patience.state(),
                "train_seconds": member.train_seconds,
                "at_best_epoch": member.at_best_epoch,
                "trial_end": end,
                "last_metrics": metrics,  # to report the end again if the trial is started again
            })
        best_model = None
        if end:
            best_model = state_bytes({"best_model": member.best_weights, "best_epoch": member.objective.best_epoch})
        return EpochAnswer(metrics, state, best_model)
