"""A user's own data: tables, arrays, image folders and loaders, on real files the tests write.

The first part reads and splits the files (no Ray); the last part runs real studies on each
kind and looks at the results the way a user would (the store, `tunelab biasvar`, the
dashboard).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli, small_study
from tunelab.datasets import Preprocessing, load_splits
from tunelab.datasets import images as image_data
from tunelab.errors import DataError, SpecError
from tunelab.spec import load_spec
from user_data import SPECIES, write_arrays, write_images, write_table

# Every study here: a small MLP, a few epochs, no searcher start-up to wait for.
SEARCH = {"learning_rate": {"type": "loguniform", "low": 0.01, "high": 0.05}}


def experiment(dataset: dict[str, Any], **changes: Any) -> dict[str, Any]:
    document = small_study(name=changes.pop("name", "own"), objective=changes.pop("objective", {"metric": "val_loss"}),
                           **changes)
    document["dataset"] = dataset  # whole sections: small_study would merge them into digits' own
    document["search_space"] = SEARCH
    return document


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TUNELAB_CACHE_DIR", str(cache))
    return cache


def splits_of(dataset: dict[str, Any], seed: int = 0) -> Any:
    params = {key: value for key, value in dataset.items() if key != "name"}
    return load_splits(dataset["name"], params, 0.2, 0.2, seed)


# --- tables -------------------------------------------------------------------------------


def test_a_csv_with_a_text_target_keeps_its_class_names_and_one_hot_encodes_text_columns(tmp_path: Path) -> None:
    path = write_table(tmp_path)
    splits = splits_of({"name": "table", "path": str(path), "target": "species", "features": ["wingspan", "habitat", "weight"]})

    assert splits.task == "classification"
    assert splits.class_names == SPECIES  # sorted names, in class-index order
    # wingspan, weight, then habitat one-hot over the categories the training rows hold
    assert splits.input_shape == (5,)
    assert splits.preprocessing.table["categorical"] == {"habitat": ["field", "marsh", "river"]}
    assert splits.preprocessing.table["numeric"] == ["wingspan", "weight"]
    assert any("text values" in note for note in splits.notes)
    raw = pd.read_csv(path)
    counts = raw["species"].value_counts()
    labels = np.concatenate([splits.train_y, splits.val_y, splits.test_y])
    assert {name: int((labels == index).sum()) for index, name in enumerate(SPECIES)} == counts.to_dict()


def test_task_is_inferred_from_the_target_and_can_be_overridden(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["price"] = frame["a"] * 1000 + 5000.5  # floats: regression
    frame["rating"] = rng.integers(1, 6, size=200)  # five distinct integers: classes
    frame["count"] = rng.integers(0, 500, size=200)  # many integers: regression
    frame["ok"] = frame["a"] > 0  # true/false: classes
    path = tmp_path / "shop.parquet"
    frame.to_parquet(path)

    def task(target: str, **options: Any) -> tuple[str, Any]:
        features = ["a", "b"]
        splits = splits_of({"name": "table", "path": str(path), "target": target, "features": features, **options})
        return splits.task, splits.class_names

    assert task("price") == ("regression", None)
    assert task("rating") == ("classification", ("1", "2", "3", "4", "5"))
    assert task("count")[0] == "regression"
    assert task("ok") == ("classification", ("False", "True"))
    assert task("rating", task="regression") == ("regression", None)


def test_regression_targets_are_scaled_with_training_rows_and_kept_for_new_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=300)})
    frame["price"] = 250_000 + 40_000 * frame["a"] + rng.normal(0, 1000, 300)
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    splits = splits_of({"name": "table", "path": str(path), "target": "price"})

    assert abs(float(splits.train_y.mean())) < 1e-4 and abs(float(splits.train_y.std()) - 1) < 1e-3
    targets = splits.preprocessing.targets
    restored = targets.invert(splits.train_y).ravel()
    assert np.all(np.isin(np.round(restored), np.round(frame["price"].to_numpy(np.float32))))


def test_training_statistics_never_see_validation_or_test_rows(tmp_path: Path) -> None:
    """A column whose test rows are shifted by 1000, a category only test rows have, and
    missing values: scaling, one-hot categories and imputed means come from training rows."""
    rows = 300
    rng = np.random.default_rng(2)
    fold = np.array(["train"] * 200 + ["validation"] * 50 + ["test"] * 50)
    level = rng.normal(size=rows)
    level[fold == "test"] += 1000.0
    colour = rng.choice(["red", "blue"], size=rows).astype(object)
    colour[fold == "test"] = "green"
    level_with_gaps = level.copy()
    level_with_gaps[[3, 210, 260]] = np.nan  # one training, one validation, one test row
    frame = pd.DataFrame({"level": level_with_gaps, "colour": colour, "fold": fold,
                          "label": np.where(level + rng.normal(0, 0.1, rows) > 0, "up", "down")})
    frame.loc[frame["fold"] == "test", "label"] = rng.choice(["up", "down"], size=50)
    path = tmp_path / "shifted.csv"
    frame.to_csv(path, index=False)

    splits = splits_of({"name": "table", "path": str(path), "target": "label", "missing": "mean", "split": {"column": "fold"}})

    train_level = level_with_gaps[fold == "train"]
    table = splits.preprocessing.table
    assert table["impute"]["level"] == pytest.approx(np.nanmean(train_level))
    assert table["categorical"] == {"colour": ["blue", "red"]}  # never 'green'
    filled = np.where(np.isnan(train_level), np.nanmean(train_level), train_level)
    assert splits.preprocessing.inputs.mean[0] == pytest.approx(filled.mean(), abs=1e-5)
    assert splits.preprocessing.inputs.scale[0] == pytest.approx(filled.std(), rel=1e-4)
    assert splits.train_x[:, 0].mean() == pytest.approx(0.0, abs=1e-5)
    assert splits.test_x[:, 0].mean() > 100  # the shift is still there: nothing was fitted on it
    raw_colour_columns = splits.test_x[:, 1:] * splits.preprocessing.inputs.scale[1:] + splits.preprocessing.inputs.mean[1:]
    np.testing.assert_allclose(raw_colour_columns, 0.0, atol=1e-6)  # an unseen category is all zeros


def test_a_split_column_is_honoured_exactly(tmp_path: Path) -> None:
    path = write_table(tmp_path, rows=240)
    frame = pd.read_csv(path)
    frame["part"] = np.where(frame["id"] % 6 == 0, "test", np.where(frame["id"] % 6 == 1, "validation", "train"))
    frame.to_csv(path, index=False)
    splits = splits_of({"name": "table", "path": str(path), "target": "species", "split": {"column": "part"}})

    def ids(x: np.ndarray) -> set[int]:
        # `id` is the first feature: undo its scaling to read the row ids back
        return set(np.rint(x[:, 0] * splits.preprocessing.inputs.scale[0] + splits.preprocessing.inputs.mean[0]).astype(int))

    assert ids(splits.test_x) == set(frame.loc[frame["part"] == "test", "id"])
    assert ids(splits.val_x) == set(frame.loc[frame["part"] == "validation", "id"])
    assert ids(splits.train_x) == set(frame.loc[frame["part"] == "train", "id"])


def test_with_only_a_fixed_test_part_validation_is_drawn_from_the_training_rows(tmp_path: Path) -> None:
    path = write_table(tmp_path, rows=300)
    frame = pd.read_csv(path)
    frame["part"] = np.where(frame["id"] < 60, "test", "train")
    frame.to_csv(path, index=False)
    splits = splits_of({"name": "table", "path": str(path), "target": "species", "features": ["id", "wingspan"],
                        "split": {"column": "part"}})
    assert splits.sizes() == {"train": 192, "validation": 48, "test": 60}  # 20 % of the 240 training rows


# --- arrays and images ----------------------------------------------------------------------


def test_npz_fixed_validation_and_test_parts_are_honoured_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x_val, x_test = rng.normal(size=(30, 2, 10)).astype(np.float32), rng.normal(size=(40, 2, 10)).astype(np.float32)
    path = write_arrays(tmp_path, x_val=x_val, y_val=np.arange(30) % 2, x_test=x_test, y_test=np.arange(40) % 2)
    splits = splits_of({"name": "arrays", "path": str(path)})

    assert splits.sizes() == {"train": 240, "validation": 30, "test": 40}
    scale = splits.preprocessing.inputs
    np.testing.assert_allclose(scale.invert(splits.test_x), x_test, atol=1e-5)
    np.testing.assert_allclose(scale.invert(splits.val_x), x_val, atol=1e-5)
    np.testing.assert_array_equal(splits.test_y, np.arange(40) % 2)


def test_npy_pair_with_text_labels(tmp_path: Path) -> None:
    x = np.random.default_rng(4).normal(size=(90, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array(["ok", "faulty", "ok"] * 30))
    splits = splits_of({"name": "arrays", "path": str(tmp_path / "x.npy"), "targets": str(tmp_path / "y.npy")})
    assert splits.input_shape == (3, 4, 4)  # images (channels, height, width)
    assert splits.class_names == ("faulty", "ok")


def test_image_folders_with_train_validation_test_parts_are_honoured(tmp_path: Path) -> None:
    for part, count in (("train", 20), ("validation", 5), ("test", 7)):
        write_images(tmp_path / "photos" / part, per_class=count, seed=len(part))
    splits = splits_of({"name": "images", "path": str(tmp_path / "photos")})
    assert splits.sizes() == {"train": 40, "validation": 10, "test": 14}
    assert splits.class_names == ("bright_top", "dark_top")
    assert splits.input_shape == (1, 12, 10)


def test_rgb_and_resized_images(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "photos", per_class=10)
    splits = splits_of({"name": "images", "path": str(folder), "size": [6, 5], "color": "rgb"})
    assert splits.input_shape == (3, 6, 5)


def test_decoded_images_are_cached_and_decoded_again_when_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_images(tmp_path / "photos", per_class=10)
    decoded: list[int] = []
    real = image_data._decode_folder

    def counting(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        decoded.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(image_data, "_decode_folder", counting)
    dataset = {"name": "images", "path": str(folder)}
    first = splits_of(dataset)
    again = splits_of(dataset, seed=1)  # another split of the same folder: read from the cache
    assert len(decoded) == 1

    def pixels(splits: Any) -> list[bytes]:  # the raw images, whatever split scaled them
        every = np.concatenate([splits.train_x, splits.val_x, splits.test_x])
        rows = np.rint(splits.preprocessing.inputs.invert(every) * 255).astype(np.uint8).reshape(len(every), -1)
        return sorted(row.tobytes() for row in rows)

    assert pixels(first) == pixels(again)

    changed = folder / "dark_top" / "000.png"
    from PIL import Image

    Image.fromarray(np.full((12, 10), 255, dtype=np.uint8)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    splits_of(dataset, seed=1)
    assert len(decoded) == 2


# --- a user's loader -------------------------------------------------------------------------


def test_a_users_loader_takes_its_declared_parameters(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(write_spec(experiment({"name": "user_datasets:Spirals", "n_samples": 300, "turns": 1.5})))
    assert spec.dataset.options() == {"n_samples": 300, "turns": 1.5}
    splits = splits_of({"name": "user_datasets:Spirals", "n_samples": 300})
    assert splits.class_names == ("inner", "outer") and splits.sizes()["train"] == 180
    with pytest.raises(SpecError, match=r"dataset\.turns: .*expected a number in \[0.25, 4\]"):
        load_spec(write_spec(experiment({"name": "user_datasets:Spirals", "turns": 9})))


# --- paths, validate, the preprocessing record ----------------------------------------------


def test_paths_are_relative_to_the_experiment_file_and_stored_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    write_table(project / "data")
    spec_file = project / "study.yaml"
    spec_file.write_text(yaml.safe_dump(experiment({"name": "table", "path": "data/birds.csv", "target": "species"})))
    monkeypatch.chdir(tmp_path)  # elsewhere
    spec = load_spec(spec_file)
    assert spec.dataset.options()["path"] == str(project / "data" / "birds.csv")


def test_validate_prints_what_it_found_in_the_data(write_spec: Callable[..., Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_table(tmp_path)
    path = write_spec(experiment({"name": "table", "path": "birds.csv", "target": "species"}))
    code, out, err = run_cli(["validate", str(path)], capsys)
    assert code == 0, err
    assert "birds.csv: 300 rows, 3 numeric and 1 categorical feature columns (one-hot: habitat)" in out
    assert "target column 'species' of " in out and "classification (text values" in out and "3 classes" in out
    assert "split: 180 train, 60 validation, 60 test; model inputs of shape (6,)" in out


def test_preprocessing_survives_a_json_round_trip(tmp_path: Path) -> None:
    splits = splits_of({"name": "table", "path": str(write_table(tmp_path)), "target": "species"})
    again = Preprocessing.from_json(splits.preprocessing.to_json())
    assert again.class_names == splits.class_names and again.table == splits.preprocessing.table
    np.testing.assert_array_equal(again.inputs.mean, splits.preprocessing.inputs.mean)
    assert again.input_shape == splits.input_shape and again.task == "classification"


# --- bad input: one line naming the file and the field, exit 2, nothing written --------------


def _bad_table(folder: Path) -> dict[str, Any]:
    return {"name": "table", "path": str(write_table(folder)), "target": "species"}


def _table_from(folder: Path, frame: pd.DataFrame, name: str = "bad.csv") -> str:
    frame.to_csv(folder / name, index=False)
    return str(folder / name)


def _one_class(folder: Path) -> dict[str, Any]:
    return {"name": "table", "target": "y", "path": _table_from(folder, pd.DataFrame({"a": range(30), "y": ["same"] * 30}))}


def _rare_class(folder: Path) -> dict[str, Any]:
    frame = pd.DataFrame({"a": range(60), "y": ["common"] * 58 + ["rare"] * 2})
    return {"name": "table", "target": "y", "path": _table_from(folder, frame)}


def _text_feature(folder: Path) -> dict[str, Any]:
    frame = pd.DataFrame({"a": range(60), "town": ["x", "y"] * 30, "y": [0, 1] * 30})
    return {"name": "table", "target": "y", "categorical": ["a"], "path": _table_from(folder, frame)}


def _nan_features(folder: Path) -> dict[str, Any]:
    frame = pd.DataFrame({"a": [1.0, np.nan, np.inf] + [0.5] * 57, "y": [0, 1] * 30})
    return {"name": "table", "target": "y", "path": _table_from(folder, frame)}


def _mixed_sizes(folder: Path) -> dict[str, Any]:
    write_images(folder / "photos", per_class=5)
    write_images(folder / "photos" / "extra", per_class=1, size=(20, 20))
    return {"name": "images", "path": str(folder / "photos")}


def _corrupt_image(folder: Path) -> dict[str, Any]:
    write_images(folder / "photos", per_class=5)
    (folder / "photos" / "dark_top" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return {"name": "images", "path": str(folder / "photos")}


def _empty_class(folder: Path) -> dict[str, Any]:
    write_images(folder / "photos", per_class=5)
    (folder / "photos" / "nothing_here").mkdir()
    return {"name": "images", "path": str(folder / "photos")}


def _length_mismatch(folder: Path) -> dict[str, Any]:
    np.savez(folder / "bad.npz", x=np.zeros((10, 3)), y=np.zeros(9))
    return {"name": "arrays", "path": str(folder / "bad.npz")}


def _empty_file(folder: Path) -> dict[str, Any]:
    (folder / "empty.csv").write_text("")
    return {"name": "table", "target": "y", "path": str(folder / "empty.csv")}


def _header_only(folder: Path) -> dict[str, Any]:
    (folder / "header.csv").write_text("a,y\n")
    return {"name": "table", "target": "y", "path": str(folder / "header.csv")}


def _unreadable_parquet(folder: Path) -> dict[str, Any]:
    (folder / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    return {"name": "table", "target": "y", "path": str(folder / "broken.parquet")}


# (case id, the dataset section made from a scratch folder, field named, words in the message)
BAD_DATA: list[tuple[str, Callable[[Path], dict[str, Any]], str, str]] = [
    ("missing file", lambda f: {"name": "table", "path": str(f / "nope.csv"), "target": "y"}, "dataset.path", "no such file"),
    ("empty file", _empty_file, "dataset.path", "is empty"),
    ("header without rows", _header_only, "dataset.path", "has no rows"),
    ("unreadable file", _unreadable_parquet, "dataset.path", "cannot read"),
    ("not a table file", lambda f: {"name": "table", "path": str(write_arrays(f)), "target": "y"}, "dataset.path", "expected a .csv or .parquet"),
    ("target misspelt", lambda f: {**_bad_table(f), "target": "specis"}, "dataset.target", "did you mean 'species'"),
    ("target missing", lambda f: {"name": "table", "path": str(write_table(f))}, "dataset.target", "needs `target`"),
    ("one class", _one_class, "dataset.target", "has 1 class ('same'); expected at least 2"),
    ("a class too rare to split", _rare_class, "dataset", "class 'rare' has 2 training rows; expected at least 3"),
    ("text column not declared categorical", _text_feature, "dataset.categorical", "column 'town'"),
    ("NaN and inf in features", _nan_features, "dataset.missing", "missing or infinite values in a (2 rows)"),
    ("unknown split value", lambda f: {**_bad_table(f), "split": {"column": "habitat"}}, "dataset.split", "expected one of train, validation, test"),
    ("regression on text", lambda f: {**_bad_table(f), "task": "regression"}, "dataset.task", "expected numbers for regression"),
    ("images of mixed sizes", _mixed_sizes, "dataset.size", "e.g. [12, 10] (the most common)"),
    ("corrupt image", _corrupt_image, "dataset.path", "broken.png is not a readable image"),
    ("empty class folder", _empty_class, "dataset.path", "class folder"),
    ("x and y lengths differ", _length_mismatch, "dataset.path", "x has 10 examples but y has 9"),
    ("loader raises", lambda f: {"name": "user_datasets:DatabaseDown"}, "dataset.name", "raised ConnectionError: could not connect to the warehouse at db:5432"),
    ("loader is not a data set", lambda f: {"name": "user_datasets:NotADataSet"}, "dataset.name", "is not a data set"),
    ("loader cannot be imported", lambda f: {"name": "no_such_module:Loader"}, "dataset.name", "cannot import data set"),
]


@pytest.mark.parametrize("make,field,words", [case[1:] for case in BAD_DATA], ids=[case[0] for case in BAD_DATA])
def test_bad_data_is_one_line_naming_the_file_and_field_exit_2_and_nothing_written(
    make: Callable[[Path], dict[str, Any]], field: str, words: str, write_spec: Callable[..., Path],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    scratch = tmp_path / "data"
    scratch.mkdir()
    path = write_spec(experiment(make(scratch)))
    storage = tmp_path / "store"
    code, out, err = run_cli(["run", str(path), "--storage", str(storage)], capsys)

    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tunelab: error: {path}: {field}: "), lines[0]
    assert words in lines[0]
    assert "Traceback" not in out + err
    assert not storage.exists()


# --- a cluster job: small data travels with it, large data is refused -------------------------


def test_small_data_travels_with_a_cluster_job_and_large_data_is_refused(tmp_path: Path) -> None:
    from tunelab.cluster.submit import MAX_SHIPPED_DATA_BYTES, stage_experiment

    write_table(tmp_path)
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(experiment({"name": "table", "path": "birds.csv", "target": "species"})))
    spec = load_spec(spec_file)
    staging = tmp_path / "staging"
    staging.mkdir()
    stage_experiment(spec_file, spec, staging, data_shared=False)
    shipped = yaml.safe_load((staging / "study.yaml").read_text())
    assert shipped["dataset"]["path"] == "data/path/birds.csv"
    assert (staging / "data" / "path" / "birds.csv").read_bytes() == (tmp_path / "birds.csv").read_bytes()
    assert load_spec(staging / "study.yaml").dataset.options()["path"] == str(staging / "data" / "path" / "birds.csv")

    shared = tmp_path / "shared"
    shared.mkdir()
    stage_experiment(spec_file, spec, shared, data_shared=True)
    assert yaml.safe_load((shared / "study.yaml").read_text())["dataset"]["path"] == str(tmp_path / "birds.csv")

    with open(tmp_path / "birds.csv", "ab") as grow:  # sparse: no disk is used for the hole
        grow.truncate(MAX_SHIPPED_DATA_BYTES + 1)
    with pytest.raises(SpecError, match=r"dataset\.path: .*birds\.csv is 100 MiB; data over 100 MiB does not travel with the job.*--data-shared"):
        stage_experiment(spec_file, spec, tmp_path / "staging2", data_shared=False)


def test_submit_with_shared_data_does_not_need_the_files_here(
    write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_spec(experiment({"name": "table", "path": "/mnt/cluster-only/birds.csv", "target": "species"}))
    # Nothing listens on port 1: getting that far means the data was not required here.
    code, _, err = run_cli(["submit", str(path), "--address", "http://127.0.0.1:1", "--storage", "/tmp/x",
                            "--data-shared"], capsys)
    assert code == 2 and "cannot reach the Ray Jobs API" in err
    code, _, err = run_cli(["submit", str(path), "--address", "http://127.0.0.1:1", "--storage", "/tmp/x"], capsys)
    assert code == 2 and "dataset.path: no such file /mnt/cluster-only/birds.csv" in err


def test_data_error_keeps_the_option_it_is_about() -> None:
    error = DataError("target", "no column 'x'")
    assert error.option == "target" and str(error) == "no column 'x'"


# --- real studies on each kind --------------------------------------------------------------


def study_on(dataset: dict[str, Any], storage: Path, name: str, **changes: Any) -> pd.DataFrame:
    """A real Ray Tune study (4 trials, 12 epochs, TPE + ASHA) on `dataset`; its trials table."""
    from tunelab.spec import parse_spec
    from tunelab.store import StudyPaths, read_trials
    from tunelab.study import run_study

    document = experiment(dataset, name=name, objective={"metric": "val_acc"},
                          train={"max_epochs": 12, "optimizer": "adam", "early_stopping": {"patience": 4}},
                          budget={"num_samples": 4, "max_concurrent": 2}, **changes)
    run_study(parse_spec(yaml.safe_dump(document), f"{name}.yaml"), storage, echo=lambda line: None)
    return read_trials(StudyPaths.of(storage, name))


@pytest.fixture(scope="module")
def table_study(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("birds")
    storage = folder / "store"
    study_on({"name": "table", "path": str(write_table(folder)), "target": "species"}, storage, "birds")
    return storage


@pytest.mark.ray
def test_a_study_on_a_users_table_learns_and_keeps_its_class_names_and_preprocessing(table_study: Path) -> None:
    from tunelab.store import StudyPaths, read_study, read_trials

    paths = StudyPaths.of(table_study, "birds")
    trials = read_trials(paths)
    assert trials["objective"].max() > 0.85  # chance is 1/3
    study = read_study(paths)
    assert study["task"] == "classification" and yaml.safe_load(study["class_names"]) == list(SPECIES)
    stored = Preprocessing.from_json(paths.preprocessing.read_text())
    assert stored.class_names == SPECIES and stored.table["categorical"] == {"habitat": ["field", "marsh", "river"]}
    best = trials.loc[trials["objective"].idxmax()]
    assert np.array(yaml.safe_load(best["test_confusion"])).shape == (3, 3)


@pytest.mark.ray
def test_biasvar_decomposes_a_study_of_a_users_table(table_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["biasvar", "birds", "--storage", str(table_study), "--top", "1", "--rounds", "3",
                              "--no-learning-curve"], capsys)
    assert code == 0, err
    table = pd.read_parquet(table_study / "birds" / "biasvar.parquet")
    assert len(table) == 1 and table["loss"].iloc[0] == "zero_one"
    assert 0 <= table["bias"].iloc[0] <= 1


@pytest.mark.ray
def test_the_dashboard_labels_a_users_classes_by_name(table_study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_dashboard_apptest import figures, open_app, show

    app = show(open_app(table_study, monkeypatch), "compare")
    confusions = [figure for figure in figures(app) if figure.data and figure.data[0].type == "heatmap"]
    assert confusions, "a confusion matrix for the best trials"
    assert list(confusions[0].data[0].x) == list(SPECIES) and list(confusions[0].data[0].y) == list(SPECIES)


@pytest.mark.ray
@pytest.mark.parametrize(
    "kind,make,sane",
    [
        ("arrays", lambda folder: {"name": "arrays", "path": str(write_arrays(folder))}, 0.8),
        ("images", lambda folder: {"name": "images", "path": str(write_images(folder / "photos"))}, 0.9),
        ("loader", lambda folder: {"name": "user_datasets:Spirals", "n_samples": 600, "turns": 0.5}, 0.75),
    ],
)
def test_a_study_on_each_kind_of_user_data_learns(
    kind: str, make: Callable[[Path], dict[str, Any]], sane: float, ray_runtime: None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trials = study_on(make(tmp_path), tmp_path / "store", f"own-{kind}", model={"name": "mlp", "width": 32, "depth": 2})
    assert len(trials) == 4
    assert trials["objective"].max() > sane
    if kind == "loader":
        return
    # The tuned model predicts files of the same kind: a folder of images, a .npz of x.
    source = tmp_path / "photos" if kind == "images" else tmp_path / "signals.npz"
    code, out, err = run_cli(["predict", f"own-{kind}", str(source), "-o", str(tmp_path / "predicted.csv"),
                              "--storage", str(tmp_path / "store")], capsys)
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "predicted.csv")
    if kind == "images":
        truth = predicted["file"].str.split("/").str[0]  # the class folder
        assert set(predicted.columns) >= {"file", "prediction", "probability_bright_top", "probability_dark_top"}
    else:
        truth = pd.Series(np.load(source)["y"]).astype(str)
        assert list(predicted["row"]) == list(range(len(truth)))
    assert len(predicted) == len(truth) and (predicted["prediction"].astype(str) == truth).mean() > sane - 0.05
