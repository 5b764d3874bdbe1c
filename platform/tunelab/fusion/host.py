"""The fusion host: one Ray actor per fused study that owns its CPUs (or GPU) and trains the
epochs of every member trial, fused (issue 21).

A member trial asks for one epoch at a time (`epoch`). The host gathers the requests of members
that share a cohort key (until every active member of that key has asked, or GATHER_WAIT_S
passed), trains one fused epoch over them (`engine`), and decides each member's end exactly as
`train_trial` does (`judge_epoch`, the same final evaluation). Members join and leave between
epochs; one that is stopped or diverges leaves without disturbing the others.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Hashable

import torch

from tunelab.datasets import Splits
from tunelab.fusion.cohort import cohort_key, fusion_refusal
from tunelab.fusion.engine import FusedArchitecture, MemberTraining
from tunelab.fusion.memory import free_memory_bytes, members_that_fit
from tunelab.fusion.messages import EpochAnswer, Joined
from tunelab.metrics import TRIAL_END
from tunelab.training import loop
from tunelab.training.epoch_end import BestTracker, judge_epoch
from tunelab.training.plan import StudySetup, TrialPlan
from tunelab.training.trial_state import state_bytes, state_from_bytes

# How long the first request of a fused epoch waits for the rest of its cohort. Members spend
# the time between their epochs in `tune.report`, a round trip to the driver of milliseconds.
GATHER_WAIT_S = 0.05
# A member that has not asked for an epoch this long is not waited for (it may be reporting at
# a rung while the scheduler decides, or have been stopped without a word).
ACTIVE_S = 2.0
# A member silent this long is forgotten: a trial the scheduler stopped may never say goodbye
# (Ray ends it inside `tune.report`). Should it come back, it rejoins from its state file.
FORGET_S = 300.0


@dataclass
class HostedMember:
    """A member's training between its epochs, and its bookkeeping as `train_trial` keeps it."""

    plan: TrialPlan
    key: Hashable
    training: MemberTraining
    objective: BestTracker
    patience: BestTracker
    best_weights: dict[str, torch.Tensor]
    epoch: int  # epochs trained
    last_checkpoint: float
    last_seen: float


class FusionHost:
    """Created as a Ray async actor by `tunelab.tune.fusion_wiring`."""

    def __init__(self, data: Splits, setup: StudySetup, threads: int, max_members: int, device: str) -> None:
        torch.set_num_threads(threads)
        self.data = data
        self.setup = setup
        self.max_members = max_members
        self.device = device if device == "cpu" or torch.cuda.is_available() else "cpu"
        self.members: dict[str, HostedMember] = {}
        self.architectures: dict[Hashable, FusedArchitecture] = {}
        self.cohort_limit: dict[Hashable, int] = {}  # members per fused epoch: asked, or what fits in memory
        self.requests: dict[str, asyncio.Future[EpochAnswer]] = {}  # oldest first
        # One thread trains: the fused epochs, and the model building that seeds torch's generator.
        self.trainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusion")
        self.placement: dict[str, str] = {}
        self.wake: asyncio.Event | None = None
        self.runner: asyncio.Task[None] | None = None

    async def join(self, trial_id: str, config: dict[str, Any], saved: bytes | None) -> Joined:
        """A member trial (re)starts: from its saved state when it has one."""
        self._start()
        self._drop(trial_id)
        plan = self.setup.plan_for(config, device=self.device)
        refusal = fusion_refusal(plan)
        resume = state_from_bytes(saved) if saved is not None else None
        if refusal is None and resume is not None and "fused" not in resume:
            refusal = "its saved state is an unfused trial's: it continues unfused"
        if refusal is not None:
            return Joined(refusal=refusal)
        if resume is not None and resume["trial_end"]:
            return Joined(ended=resume["last_metrics"], placement=self.placement)
        member = await asyncio.get_running_loop().run_in_executor(self.trainer, self._new_member, plan, resume)
        self.members[trial_id] = member
        return Joined(placement=self.placement)

    async def epoch(self, trial_id: str) -> EpochAnswer:
        """Train the member's next epoch, fused with whichever members of its cohort ask too."""
        if trial_id not in self.members:  # the trial fails, and Ray starts it again from its state file
            raise RuntimeError(f"trial {trial_id} asked for an epoch without having joined its fusion host "
                               f"(or after {FORGET_S:.0f} s of silence)")
        self.members[trial_id].last_seen = time.monotonic()
        answer: asyncio.Future[EpochAnswer] = asyncio.get_running_loop().create_future()
        self.requests[trial_id] = answer
        assert self.wake is not None
        self.wake.set()
        return await answer

    async def leave(self, trial_id: str) -> None:
        self._drop(trial_id)

    def _drop(self, trial_id: str) -> None:
        self.members.pop(trial_id, None)
        pending = self.requests.pop(trial_id, None)
        if pending is not None and not pending.done():
            pending.cancel()

    def _start(self) -> None:
        if self.runner is None:
            import ray

            context = ray.get_runtime_context()
            self.placement = {"node_id": context.get_node_id(), "gpu_ids": ",".join(map(str, ray.get_gpu_ids()))}
            self.wake = asyncio.Event()
            self.runner = asyncio.get_running_loop().create_task(self._train_forever())

    async def _train_forever(self) -> None:
        assert self.wake is not None
        while True:
            if not self.requests:
                self.wake.clear()
                await self.wake.wait()
                continue
            self._forget_silent_members()
            key = self.members[next(iter(self.requests))].key
            await self._gather(key)
            batch = [trial_id for trial_id in self.requests if self.members[trial_id].key == key][: self.cohort_limit[key]]
            waiting = {trial_id: self.requests.pop(trial_id) for trial_id in batch}
            members = [self.members[trial_id] for trial_id in batch]
            try:
                answers = await asyncio.get_running_loop().run_in_executor(self.trainer, self._fused_epoch, key, members)
            except Exception as error:  # every member of the epoch fails with it; Ray retries them
                for answer in waiting.values():
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for (trial_id, answer), member, result in zip(waiting.items(), members, answers):
                if TRIAL_END in result.metrics and self.members.get(trial_id) is member:
                    del self.members[trial_id]  # it ended: the cohort goes on without it (unless it rejoined meanwhile)
                if not answer.done():
                    answer.set_result(result)

    def _forget_silent_members(self) -> None:
        now = time.monotonic()
        for trial_id in [t for t, member in self.members.items() if now - member.last_seen > FORGET_S]:
            self._drop(trial_id)

    async def _gather(self, key: Hashable) -> None:
        """Wait until every active member of the cohort asked (or the cohort is full), at most GATHER_WAIT_S."""
        assert self.wake is not None
        deadline = time.monotonic() + GATHER_WAIT_S
        while True:
            now = time.monotonic()
            cohort = [member for member in self.members.values() if member.key == key]
            active = sum(1 for member in cohort if now - member.last_seen < ACTIVE_S)
            asking = sum(1 for trial_id in self.requests if self.members[trial_id].key == key)
            if asking >= min(active, self.cohort_limit[key]) or now >= deadline:
                return
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), deadline - now)
            except asyncio.TimeoutError:
                return

    # ---- on the training thread ----

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
                              loop.checkpoint_clock(), time.monotonic())
        if resume is not None:
            member.objective.restore(resume["objective"])
            member.patience.restore(resume["patience"])
            member.best_weights = resume["best_model"]
            member.epoch = int(resume["epoch"])
        return member

    def _fused_epoch(self, key: Hashable, members: list[HostedMember]) -> list[EpochAnswer]:
        architecture = self.architectures[key]
        started = time.perf_counter()
        architecture.train_epoch([member.training for member in members])
        measured = architecture.measure([member.training for member in members])
        # Each member's epoch took the fused epoch's time: what its trial waited for it.
        seconds = time.perf_counter() - started
        return [self._judged(architecture, member, metrics, seconds) for member, metrics in zip(members, measured)]

    def _judged(self, architecture: FusedArchitecture, member: HostedMember, measured: dict[str, float],
                seconds: float) -> EpochAnswer:
        """The member's epoch report, its end and its state, as train_trial makes them."""
        member.epoch += 1
        rules = member.plan.rules
        metrics: dict[str, Any] = {"epoch": member.epoch, "lr": float(member.plan.knobs["learning_rate"]), **measured}
        verdict = judge_epoch(metrics, member.epoch, rules, member.objective, member.patience)
        if verdict.improved:
            member.best_weights = member.training.weights()
        end = verdict.end
        if end and end != "diverged":
            metrics.update(loop.final_evaluation(architecture.template, member.best_weights, self.data,
                                                 architecture.task, architecture.device))
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
                "trial_end": end,
                "last_metrics": metrics,  # to report the end again if the trial is started again
            })
        best_model = None
        if end:
            best_model = state_bytes({"best_model": member.best_weights, "best_epoch": member.objective.best_epoch})
        return EpochAnswer(metrics, state, best_model)
