"""Fusion hosts as processes of this machine (`tunelab.tune.host_pools.LocalHostPool`): a real
spawned host trains real members; its death is an error on every call it had not answered; hosts
started early are taken by the study's pool, and the ones it did not take are stopped; all of a
study's hosts train on one copy of its data, in memory they share.

No Ray runs here: `ray_is_up` is patched to say so where a Ray started by another test file in
this worker would otherwise make the study choose Ray actors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import yaml

from conftest import small_study
from tunelab.from_spec import load_study_data, study_setup
from tunelab.fusion.shared_payload import SharedValue
from tunelab.metrics import TRIAL_END
from tunelab.spec import Spec, parse_spec
from tunelab.tune import host_pools, local_ray
from tunelab.tune.host_pools import HostDied, LocalHostPool, hosts_started_early

EPOCHS = 3


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(local_ray, "ray_is_up", lambda: False)
    yield


def fused_spec() -> Spec:
    document = small_study(name="pool", train={"max_epochs": EPOCHS, "fuse": 2, "early_stopping": {"patience": None}},
                           resources={"cpu": 1})
    return parse_spec(yaml.safe_dump(document), "pool.yaml")


def pool_for(spec: Spec, tmp_path: Path) -> LocalHostPool:
    return LocalHostPool(spec, load_study_data(spec), study_setup(spec), tmp_path / "hosts.log")


def config(learning_rate: float) -> dict[str, Any]:
    return {"learning_rate": learning_rate, "batch_size": 32}


def test_a_local_host_trains_its_members_epoch_by_epoch_to_their_end(no_ray: None, tmp_path: Path) -> None:
    spec = fused_spec()
    pool = pool_for(spec, tmp_path)
    host = pool.start_host()
    try:
        limits = [pool.answer(pool.call(host, "join", f"t{index}", config(rate), None, False))
                  for index, rate in enumerate((0.01, 0.05))]
        assert limits == [2, 2], "the cohort holds fuse members"
        epochs = [pool.answer(pool.call(host, "train", ["t0", "t1"])) for _ in range(EPOCHS)]
    finally:
        pool.stop(host)
    assert [[answer.metrics["epoch"] for answer in answers] for answers in epochs] == [[1, 1], [2, 2], [3, 3]]
    assert [answer.metrics.get(TRIAL_END) for answer in epochs[-1]] == ["completed", "completed"]
    assert epochs[0][0].metrics["val_loss"] != epochs[0][1].metrics["val_loss"], "each member its own rate"
    assert all(answer.best_model is not None for answer in epochs[-1]), "the last epoch hands back the best weights"


def test_a_local_host_that_dies_fails_every_call_it_had_not_answered(no_ray: None, tmp_path: Path) -> None:
    spec = fused_spec()
    pool = pool_for(spec, tmp_path)
    host = pool.start_host()
    try:
        pool.answer(pool.call(host, "join", "t0", config(0.01), None, False))
        os.kill(host.process.pid, signal.SIGKILL)
        pending = pool.call(host, "train", ["t0"])
        with pytest.raises(HostDied, match=r"process died .*exit code -9"):
            pool.answer(pending)
        with pytest.raises(HostDied):  # and every call after it
            pool.answer(pool.call(host, "leave", ["t0"]))
    finally:
        pool.stop(host)


def mapping_of(pid: int, name: str) -> dict[str, int]:
    """The kB figures (Rss, Pss, ...) of the process's mapping of the file `name`."""
    figures: dict[str, int] = {}
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if not line.split()[0].endswith(":"):  # a mapping's header line: its address range first
            inside = name in line
        elif inside and line.endswith(" kB"):
            field, amount, _ = line.split()
            figures[field.rstrip(":")] = figures.get(field.rstrip(":"), 0) + int(amount)
    return figures


def test_every_local_host_trains_on_one_shared_copy_of_the_data(no_ray: None, tmp_path: Path) -> None:
    spec = fused_spec()
    data = load_study_data(spec)
    rows = np.arange(len(data.train_y)).repeat(8)  # ~3 MB of inputs: clearly above a page or two
    data = replace(data, train_x=data.train_x[rows], train_y=data.train_y[rows])
    pool = LocalHostPool(spec, data, study_setup(spec), tmp_path / "hosts.log")
    hosts = [pool.start_host(), pool.start_host()]
    try:
        for host in hosts:  # an epoch reads every training row
            pool.answer(pool.call(host, "join", "t0", config(0.01), None, False))
            pool.answer(pool.call(host, "train", ["t0"]))
        mapped = [mapping_of(host.process.pid, "memfd:tunelab-study-data") for host in hosts]
    finally:
        for host in hosts:
            pool.stop(host)
        pool.close()
    data_kb = data.train_x.nbytes // 1024
    assert all(figures.get("Rss", 0) >= data_kb for figures in mapped), \
        f"each host reads its training rows from the shared file: {mapped}"
    total_kb = pool.shared.payload.size // 1024 + 4
    assert sum(figures["Pss"] for figures in mapped) <= total_kb, f"the hosts share its pages, not copies: {mapped}"
    assert not Path(pool.shared.payload.path).exists(), "closing the pool lets go of the shared file"


def test_without_a_memfd_each_host_gets_the_value_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "memfd_create")
    value = {"inputs": np.arange(12, dtype=np.float32).reshape(3, 4), "name": "digits"}
    payload = SharedValue(value).payload
    assert payload.path is None
    loaded = payload.load()
    assert loaded["name"] == "digits" and np.array_equal(loaded["inputs"], value["inputs"])


def test_an_error_in_a_hosts_method_is_that_calls_error_and_the_host_goes_on(no_ray: None, tmp_path: Path) -> None:
    spec = fused_spec()
    pool = pool_for(spec, tmp_path)
    host = pool.start_host()
    try:
        with pytest.raises(KeyError, match="nobody"):
            pool.answer(pool.call(host, "train", ["nobody"]))
        assert pool.answer(pool.call(host, "join", "t0", config(0.01), None, False)) == 2
    finally:
        pool.stop(host)


def test_hosts_started_early_are_the_pools_and_the_ones_it_did_not_take_are_stopped(no_ray: None,
                                                                                   tmp_path: Path) -> None:
    spec = fused_spec()
    layout_hosts = host_pools.local_host_layout(spec).hosts
    with hosts_started_early(spec):
        early = list(host_pools._WARM)
        assert len(early) == layout_hosts and all(host.process.poll() is None for host in early)
        pool = pool_for(spec, tmp_path)
        taken = pool.start_host()
        assert taken in early, "the pool took a host that was already up"
    try:
        left = [host for host in early if host is not taken]
        assert all(host.process.poll() is not None for host in left), "hosts the pool did not take were stopped"
        assert taken.process.poll() is None
        assert pool.answer(pool.call(taken, "join", "t0", config(0.01), None, False)) == 2
    finally:
        pool.stop(taken)


def test_a_study_that_needs_ray_starts_no_host_early(tmp_path: Path) -> None:
    unfused = parse_spec(yaml.safe_dump(small_study(name="plain")), "plain.yaml")
    with hosts_started_early(unfused):
        assert host_pools._WARM == []


def test_a_users_script_without_a_main_guard_runs_once_however_many_hosts_it_fuses_on(tmp_path: Path) -> None:
    """`python my_study.py` calling `tunelab.run` at its top level: a multiprocessing child would
    import that script again in every host, running the study again there."""
    document = small_study(name="script", train={"max_epochs": 2, "fuse": 2}, budget={"num_samples": 4})
    (tmp_path / "my_study.py").write_text(
        "import tunelab\n"
        "print('the script ran', flush=True)\n"
        f"study = tunelab.run({document!r}, storage='store', quiet=True)\n"
        "print('fused trials', int((study.trials['fusion'] == 'fused').sum()), flush=True)\n")
    finished = subprocess.run([sys.executable, "my_study.py"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    assert finished.stdout.count("the script ran") == 1
    assert "fused trials 4" in finished.stdout
