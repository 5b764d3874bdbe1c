"""The results store: Parquet tables written atomically by one writer, read by many."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tunelab.errors import StoreError
from tunelab.store import StudyPaths, StudyWriter, list_study_names, read_epochs, read_study, read_trials
from tunelab.store.atomic import write_parquet_atomic
from tunelab.store.reader import read_table
from tunelab.store import epoch_parts
from tunelab.store.epoch_parts import MERGE_FANOUT


@pytest.fixture
def paths(tmp_path: Path) -> StudyPaths:
    return StudyPaths.of(tmp_path, "study")


def epoch_row(trial_id: str, epoch: int, val_loss: float) -> dict[str, Any]:
    return {"trial_id": trial_id, "epoch": epoch, "train_loss": val_loss + 0.1, "val_loss": val_loss}


def flush_epochs(writer: StudyWriter, *rows: dict[str, Any]) -> None:
    for row in rows:
        writer.add_epoch(row)
    writer.flush()


def part_names(paths: StudyPaths) -> list[str]:
    return [part.name for part in paths.epoch_parts()]


def snapshot(folder: Path) -> dict[str, int]:
    """Every file under `folder` with its modification time in nanoseconds."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def val_losses(epochs: pd.DataFrame) -> dict[tuple[str, int], float]:
    return {(row.trial_id, int(row.epoch)): float(row.val_loss) for row in epochs.itertuples()}


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- writing and reading back -----------------------------------------------------------


def test_written_tables_are_read_back(paths: StudyPaths) -> None:
    writer = StudyWriter(paths)
    writer.update_study(name="study", metric="val_loss", mode="min", status="running")
    writer.update_trial("t1", learning_rate=0.01, optimizer="sgd", status="running")
    writer.update_trial("t2", learning_rate=0.001, optimizer="adam", status="running")
    writer.update_trial("t1", status="completed", best_val_loss=0.4)
    flush_epochs(writer, epoch_row("t2", 1, 0.9), epoch_row("t1", 2, 0.4), epoch_row("t1", 1, 0.8))
    writer.update_study(status="finished")

    study = read_study(paths)
    assert study["name"] == "study" and study["status"] == "finished" and study["metric"] == "val_loss"
    trials = read_trials(paths).set_index("trial_id")
    assert sorted(trials.index) == ["t1", "t2"]
    assert trials.loc["t1", "status"] == "completed"
    assert trials.loc["t1", "learning_rate"] == 0.01 and trials.loc["t1", "best_val_loss"] == 0.4
    assert trials.loc["t2", "optimizer"] == "adam" and pd.isna(trials.loc["t2", "best_val_loss"])
    epochs = read_epochs(paths)
    assert list(zip(epochs["trial_id"], epochs["epoch"])) == [("t1", 1), ("t1", 2), ("t2", 1)]
    assert val_losses(epochs) == {("t1", 1): 0.8, ("t1", 2): 0.4, ("t2", 1): 0.9}


def test_tables_of_a_new_study_read_as_empty(paths: StudyPaths) -> None:
    assert read_trials(paths).empty
    assert read_epochs(paths).empty
    with pytest.raises(StoreError, match="table is missing"):
        read_study(paths)


def test_each_flush_with_rows_appends_one_part_and_an_empty_flush_writes_nothing(paths: StudyPaths) -> None:
    writer = StudyWriter(paths)
    writer.update_study(name="study")
    writer.update_trial("t1", status="running")
    flush_epochs(writer, epoch_row("t1", 1, 0.9))
    flush_epochs(writer, epoch_row("t1", 2, 0.8), epoch_row("t1", 3, 0.7))
    assert part_names(paths) == ["part-00000001.parquet", "part-00000002.parquet"]
    before = snapshot(paths.root)

    writer.flush()

    assert snapshot(paths.root) == before
    assert len(read_epochs(paths)) == 3


def test_a_re_reported_epoch_keeps_the_last_written_row(paths: StudyPaths) -> None:
    writer = StudyWriter(paths)
    flush_epochs(writer, epoch_row("t1", 1, 0.9), epoch_row("t1", 2, 0.8), epoch_row("t2", 1, 0.7))
    # The trial resumed from its epoch-1 checkpoint: epoch 2 is reported again, differently.
    flush_epochs(writer, epoch_row("t1", 2, 0.5), epoch_row("t1", 3, 0.4))
    # Within one part too, the later row wins.
    flush_epochs(writer, epoch_row("t2", 1, 0.6), epoch_row("t2", 1, 0.3))

    epochs = read_epochs(paths)
    assert len(epochs) == 4
    assert val_losses(epochs) == {("t1", 1): 0.9, ("t1", 2): 0.5, ("t1", 3): 0.4, ("t2", 1): 0.3}


# --- compaction ------------------------------------------------------------------------


def test_compaction_merges_parts_into_one_with_the_same_rows(paths: StudyPaths) -> None:
    writer = StudyWriter(paths)
    for epoch in range(1, 5):
        flush_epochs(writer, epoch_row("t1", epoch, 1 / epoch), epoch_row("t2", epoch, 2 / epoch))
    flush_epochs(writer, epoch_row("t1", 4, 0.1))  # a re-reported epoch
    before = read_epochs(paths)
    assert len(part_names(paths)) == 5

    writer.compact_epochs()

    assert part_names(paths) == ["part-00000006.parquet"]
    pd.testing.assert_frame_equal(read_epochs(paths), before)
    assert val_losses(before)[("t1", 4)] == 0.1


def test_parts_merge_in_tiers_and_a_merged_part_is_never_rewritten_again(
    paths: StudyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(epoch_parts, "MAX_TIER", 2)  # the top tier after 8 × 8 flushes, not 8 × 8 × 8
    top = MERGE_FANOUT**2
    writer = StudyWriter(paths)
    for epoch in range(1, top + 4):
        flush_epochs(writer, epoch_row("t1", epoch, 1 / epoch))
        # Each flush leaves at most 7 parts of each lower tier, and whole top-tier parts.
        assert len(part_names(paths)) <= (MERGE_FANOUT - 1) * 2 + epoch // top
    # 67 flushes: one part of 64 (where the 64th flush was written), three of one flush each.
    assert part_names(paths) == [f"part-{n:08d}.parquet" for n in (top, top + 1, top + 2, top + 3)]
    first_top = paths.epochs / f"part-{top:08d}.parquet"
    written = first_top.stat().st_mtime_ns

    for epoch in range(top + 4, 2 * top + 1):
        flush_epochs(writer, epoch_row("t1", epoch, 1 / epoch))
    flush_epochs(writer, epoch_row("t1", 5, 0.0))  # a re-reported epoch, after its first row was merged

    assert part_names(paths)[:2] == [first_top.name, f"part-{2 * top:08d}.parquet"]
    assert first_top.stat().st_mtime_ns == written, "a top-tier part is not merged again"
    epochs = read_epochs(paths)
    assert list(epochs["epoch"]) == list(range(1, 2 * top + 1))
    assert val_losses(epochs)[("t1", 5)] == 0.0 and val_losses(epochs)[("t1", 6)] == 1 / 6

    writer.compact_epochs()
    assert len(part_names(paths)) == 1
    pd.testing.assert_frame_equal(read_epochs(paths), epochs)


def test_a_new_writer_continues_an_existing_study(paths: StudyPaths) -> None:
    first = StudyWriter(paths)
    first.update_study(name="study", status="running")
    first.update_trial("t1", status="completed", learning_rate=0.1)
    flush_epochs(first, epoch_row("t1", 1, 0.9))
    flush_epochs(first, epoch_row("t1", 2, 0.8))

    resumed = StudyWriter(paths)
    assert resumed.trial("t1")["status"] == "completed"
    resumed.update_trial("t2", status="running", learning_rate=0.2)
    flush_epochs(resumed, epoch_row("t1", 2, 0.7), epoch_row("t2", 1, 0.6))
    resumed.update_study(status="finished")

    assert part_names(paths) == [f"part-{n:08d}.parquet" for n in (1, 2, 3)]
    trials = read_trials(paths).set_index("trial_id")
    assert trials.to_dict("index") == {
        "t1": {"status": "completed", "learning_rate": 0.1},
        "t2": {"status": "running", "learning_rate": 0.2},
    }
    assert read_study(paths) == {"name": "study", "status": "finished"}
    assert val_losses(read_epochs(paths)) == {("t1", 1): 0.9, ("t1", 2): 0.7, ("t2", 1): 0.6}


def test_a_new_writer_after_compaction_numbers_parts_after_the_merged_one(paths: StudyPaths) -> None:
    first = StudyWriter(paths)
    flush_epochs(first, epoch_row("t1", 1, 0.9))
    flush_epochs(first, epoch_row("t1", 2, 0.8))
    first.compact_epochs()
    assert part_names(paths) == ["part-00000003.parquet"]

    flush_epochs(StudyWriter(paths), epoch_row("t1", 2, 0.5))

    assert part_names(paths) == ["part-00000003.parquet", "part-00000004.parquet"]
    assert val_losses(read_epochs(paths)) == {("t1", 1): 0.9, ("t1", 2): 0.5}


# --- atomic writes -----------------------------------------------------------------------


def versioned_frame(version: int) -> pd.DataFrame:
    """A frame whose size and content depend on `version`, so any mix of two is detectable."""
    rows = 20_000 + (version % 7) * 3_000
    values = np.random.default_rng(version).random(rows)
    return pd.DataFrame({"version": np.full(rows, version), "value": values, "checksum": values * version})


def assert_one_whole_version(frame: pd.DataFrame) -> None:
    version = int(frame["version"].iloc[0])
    assert (frame["version"] == version).all()
    assert len(frame) == 20_000 + (version % 7) * 3_000
    assert np.allclose(frame["checksum"], frame["value"] * version)


def test_atomic_write_leaves_only_the_target_file(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "table.parquet"
    for version in range(3):
        write_parquet_atomic(versioned_frame(version), target)
    assert [path.name for path in target.parent.iterdir()] == ["table.parquet"]
    assert_one_whole_version(pd.read_parquet(target))
    assert int(pd.read_parquet(target)["version"].iloc[0]) == 2


def test_a_reader_never_sees_a_partial_or_mixed_file(paths: StudyPaths) -> None:
    write_parquet_atomic(versioned_frame(0), paths.trials)
    writes = 120
    done = threading.Event()
    failures: list[BaseException] = []

    def keep_rewriting() -> None:
        try:
            for version in range(1, writes + 1):
                write_parquet_atomic(versioned_frame(version), paths.trials)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=keep_rewriting)
    writer.start()
    versions_seen: set[int] = set()
    reads, read_errors = 0, []
    while not done.is_set():
        try:
            frame = read_trials(paths)
        except StoreError as exc:
            read_errors.append(str(exc))
            continue
        assert_one_whole_version(frame)
        versions_seen.add(int(frame["version"].iloc[0]))
        reads += 1
    writer.join(timeout=60)

    assert not failures
    assert read_errors == []
    assert len(versions_seen) > 5, "reads did not overlap the writes"
    assert [path.name for path in paths.root.iterdir()] == ["trials.parquet"]
    assert int(read_trials(paths)["version"].iloc[0]) == writes


def test_mixed_type_columns_are_stored_as_text(paths: StudyPaths) -> None:
    writer = StudyWriter(paths)
    writer.update_trial("t1", batch_size=32, val_loss=0.5)
    writer.update_trial("t2", batch_size="full", val_loss=0.25)
    writer.update_trial("t3", batch_size=None, val_loss=0.75)
    writer.flush()

    trials = read_trials(paths).set_index("trial_id")
    assert trials.loc["t1", "batch_size"] == "32"
    assert trials.loc["t2", "batch_size"] == "full"
    assert trials.loc["t3", "batch_size"] is None or pd.isna(trials.loc["t3", "batch_size"])
    # Columns of one type keep it.
    assert trials["val_loss"].dtype == np.float64
    assert list(trials["val_loss"]) == [0.5, 0.25, 0.75]


# --- damaged tables ----------------------------------------------------------------------


def written_study(paths: StudyPaths) -> StudyWriter:
    writer = StudyWriter(paths)
    writer.update_study(name="study", status="running")
    writer.update_trial("t1", status="completed")
    flush_epochs(writer, *(epoch_row("t1", epoch, 1 / epoch) for epoch in range(1, 200)))
    return writer


@pytest.mark.parametrize(
    ("table", "read"),
    [("trials", read_trials), ("study", read_study)],
)
def test_a_truncated_table_raises_store_error_naming_the_file(paths: StudyPaths, table: str, read: Any) -> None:
    written_study(paths)
    damaged: Path = getattr(paths, table)
    truncate(damaged)
    with pytest.raises(StoreError) as caught:
        read(paths)
    assert str(damaged) in str(caught.value)
    assert "cannot read table" in str(caught.value)


def test_a_corrupt_epoch_part_raises_store_error_naming_the_part(paths: StudyPaths) -> None:
    written_study(paths)
    (part,) = paths.epoch_parts()
    part.write_bytes(b"not parquet at all")
    with pytest.raises(StoreError) as caught:
        read_epochs(paths)
    assert str(part) in str(caught.value)


def test_a_writer_refuses_to_resume_from_a_corrupt_study_table(paths: StudyPaths) -> None:
    written_study(paths)
    truncate(paths.study)
    with pytest.raises(StoreError, match=str(paths.study)):
        StudyWriter(paths)


# --- listing studies ---------------------------------------------------------------------


def test_only_folders_with_a_study_table_are_listed(tmp_path: Path) -> None:
    for name in ("beta", "alpha"):
        StudyWriter(StudyPaths.of(tmp_path, name)).update_study(name=name)
    trials_only = StudyWriter(StudyPaths.of(tmp_path, "trials_only"))
    trials_only.update_trial("t1", status="running")
    trials_only.flush()
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "stray.parquet").write_bytes(b"")

    assert list_study_names(tmp_path) == ["alpha", "beta"]
    assert list_study_names(tmp_path / "no_such_storage") == []


def test_epoch_rows_of_a_killed_writer_are_recovered_by_the_next_one(tmp_path: Path) -> None:
    """A driver killed between flushes: its logged rows become a part when the study reopens."""
    from tunelab.store import StudyPaths, StudyWriter, read_epochs

    paths = StudyPaths.of(tmp_path, "killed")
    first = StudyWriter(paths)
    first.update_study(name="killed")
    first.add_epoch({"trial_id": "a", "epoch": 1, "val_loss": 0.5})
    first.flush()
    first.add_epoch({"trial_id": "a", "epoch": 2, "val_loss": 0.4})
    first.add_epoch({"trial_id": "a", "epoch": 3, "val_loss": float("inf")})
    with open(paths.epochs_log, "a") as log:  # the kill tore the last line in half
        log.write('{"trial_id": "a", "epo')
    del first  # no flush: the process died
    # Readers (a dashboard on the killed study) see the logged rows already.
    assert list(read_epochs(paths)["epoch"]) == [1, 2, 3]
    assert len(paths.epoch_parts()) == 1

    StudyWriter(paths)
    recovered = read_epochs(paths)
    assert list(recovered["epoch"]) == [1, 2, 3]
    assert recovered["val_loss"].iloc[-1] == float("inf")
    assert not paths.epochs_log.exists() and len(paths.epoch_parts()) == 2


def test_trial_rows_of_a_killed_writer_are_recovered_by_the_next_one(tmp_path: Path) -> None:
    """A trial logged as finished survives a kill before the next flush, types and all."""
    from datetime import datetime, timezone

    from tunelab.store import StudyPaths, StudyWriter, read_trials

    paths = StudyPaths.of(tmp_path, "killed")
    first = StudyWriter(paths)
    first.update_study(name="killed")
    started = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=timezone.utc)
    first.update_trial("a", trial_number=1, status="running", started_at=started, param_batch_size=32)
    first.flush()
    first.update_trial("a", status="completed", finished_at=datetime(2026, 11, 23, 12, 0, 5, tzinfo=timezone.utc),
                       objective=0.25, epochs=7)
    first.log_trial("a")
    first.update_trial("b", trial_number=2, status="running", started_at=started)  # not logged: Ray restarts it
    with open(paths.trials_log, "a") as log:  # the kill tore the last line in half
        log.write('{"trial_id": "a", "stat')
    del first  # no flush: the process died

    def check(trials: pd.DataFrame) -> None:
        assert list(trials["trial_id"]) == ["a"]
        trial = trials.iloc[0]
        assert trial["status"] == "completed" and trial["objective"] == 0.25 and trial["epochs"] == 7
        assert trial["started_at"] == pd.Timestamp(started) and trial["param_batch_size"] == 32
        assert (trial["finished_at"] - trial["started_at"]).total_seconds() == 4.75

    check(read_trials(paths))  # readers see the logged row already
    assert read_table(paths.trials).iloc[0]["status"] == "running", "the table itself is not rewritten"
    StudyWriter(paths)
    check(read_table(paths.trials))
    assert not paths.trials_log.exists()


def test_the_results_callback_reopens_a_table_with_a_trial_that_has_no_epoch_yet(tmp_path: Path) -> None:
    """Resuming unpickles the callback, which reads the table back: a trial that had started but
    not reported (its epochs NaN there) must not stop the resume."""
    import pickle

    from tunelab.store import StudyPaths, StudyWriter
    from tunelab.tune.store_callback import StoreCallback

    paths = StudyPaths.of(tmp_path, "reopen")
    writer = StudyWriter(paths)
    writer.update_study(name="reopen")
    writer.update_trial("a", trial_number=1, status="completed", epochs=5, rerun_epochs=2)
    writer.update_trial("b", trial_number=2, status="running")
    writer.flush()

    callback = pickle.loads(pickle.dumps(StoreCallback(paths, objective="val_loss", scheduler_name="asha")))
    assert callback.trial_number("a") == 1 and callback.trial_number("b") == 2
    assert callback.trial_number("c") == 3, "new trials number on after the stored ones"
    assert callback._highest_epoch == {"a": 5, "b": 0}


def test_one_driver_per_study_and_a_killed_driver_leaves_no_lock(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tunelab.errors import BadInputError
    from tunelab.store.driver_lock import driver_lock

    folder = tmp_path / "store" / "study"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom tunelab.store.driver_lock import driver_lock\n"
         f"with driver_lock(Path({str(folder)!r}), 'study'):\n    print('held', flush=True)\n    time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(BadInputError) as refused:
            with driver_lock(folder, "study"):
                pytest.fail("a second driver got the lock")
        assert str(refused.value) == (
            f"study 'study' in {folder.parent} is running now (driver pid {holder.pid} on {os.uname().nodename}); "
            "wait for that driver to end or stop it, then `tunelab resume` continues the study"
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The lock went with the killed process: no stale lock to break by hand.
    with driver_lock(folder, "study"):
        with pytest.raises(BadInputError, match=f"driver pid {os.getpid()} "):
            with driver_lock(folder, "study"):
                pytest.fail("the same study locked twice in one process")
    with driver_lock(folder, "study"):
        pass
