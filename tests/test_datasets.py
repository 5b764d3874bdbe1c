"""The offline data-set registry: real data, real splits, real cache files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunelab.datasets import GeneratedData, Splits, dataset_names, get_dataset, load_splits, resolve_dataset_params
from tunelab.datasets.base import make_splits
from tunelab.errors import BadInputError
from tunelab_models.params import Param
from user_data import small_file_params

# Small versions of every built-in data set, so the whole file stays fast.
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "digits": {},
    "mnist1d": {"num_samples": 500},
    "moons": {"n_samples": 300},
    "classification": {"n_samples": 300, "n_features": 8, "n_informative": 4},
    "regression": {"n_samples": 300},
    "adding": {"n_samples": 300, "sequence_length": 12},
}
# A user's files (written by the test): their shape is known only once they are read.
FILE_KINDS = ("arrays", "images", "table")
EXPECTED_INPUT_SHAPES = {
    "digits": (1, 8, 8),
    "mnist1d": (1, 40),
    "moons": (2,),
    "classification": (8,),
    "regression": (1,),
    "adding": (2, 12),
    "table": (5,),  # wingspan, weight, habitat one-hot over 3 values
    "arrays": (2, 10),
    "images": (1, 12, 10),
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TUNELAB_CACHE_DIR", str(cache))
    return cache


def small_params(name: str) -> dict[str, Any]:
    return small_file_params()[name] if name in FILE_KINDS else SMALL_PARAMS[name]


def load_small(
    name: str, seed: int = 0, validation_fraction: float = 0.2, test_fraction: float = 0.2
) -> Splits:
    return load_splits(name, small_params(name), validation_fraction, test_fraction, seed)


def all_x(splits: Splits) -> list[np.ndarray]:
    return [splits.train_x, splits.val_x, splits.test_x]


def test_every_registered_data_set_has_small_test_parameters() -> None:
    assert sorted([*SMALL_PARAMS, *FILE_KINDS]) == dataset_names()


def test_data_set_classes_declare_name_task_and_params_without_loading() -> None:
    for name in dataset_names():
        cls = get_dataset(name)
        assert cls.name == name
        assert cls.task in ("classification", "regression") or (name in FILE_KINDS and name != "images")
        assert isinstance(cls.params, tuple)
        assert all(isinstance(param, Param) for param in cls.params)


@pytest.mark.parametrize("name", sorted([*SMALL_PARAMS, *FILE_KINDS]))
def test_data_set_loads_with_consistent_shapes_and_dtypes(name: str) -> None:
    splits = load_small(name)
    assert splits.name == name
    assert splits.input_shape == EXPECTED_INPUT_SHAPES[name]
    parts = ((splits.train_x, splits.train_y), (splits.val_x, splits.val_y), (splits.test_x, splits.test_y))
    for x, y in parts:
        assert x.dtype == np.float32
        assert x.shape[1:] == splits.input_shape
        assert len(x) == len(y) > 0
        assert np.isfinite(x).all()
        if splits.task == "classification":
            assert y.dtype == np.int64 and y.shape == (len(x),)
            assert 0 <= y.min() and y.max() < splits.num_outputs
        else:
            assert y.dtype == np.float32 and y.shape == (len(x), splits.num_outputs)
    if splits.task == "classification":
        every_label = np.concatenate([splits.train_y, splits.val_y, splits.test_y])
        assert len(np.unique(every_label)) == splits.num_outputs
        if splits.class_names is not None:
            assert len(splits.class_names) == splits.num_outputs
    assert splits.signature.input_shape == splits.input_shape
    assert splits.signature.num_outputs == splits.num_outputs


def test_classification_num_outputs_follows_n_classes() -> None:
    splits = load_splits("classification", {"n_samples": 400, "n_classes": 5}, 0.2, 0.2, 0)
    assert splits.num_outputs == 5
    assert set(np.unique(splits.train_y)) == set(range(5))


@pytest.mark.parametrize("name", ["moons", "regression", "digits", *FILE_KINDS])
def test_split_is_deterministic_for_a_seed_and_changes_with_another(name: str) -> None:
    first, again, other = load_small(name, seed=3), load_small(name, seed=3), load_small(name, seed=4)
    for a, b in zip(all_x(first), all_x(again)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.train_y, again.train_y)
    assert first.sizes() == other.sizes()
    assert not np.array_equal(first.test_x, other.test_x)


def test_generator_seed_draws_new_rows_while_split_seed_keeps_them() -> None:
    def rows(splits: Splits) -> set[bytes]:
        return {row.tobytes() for row in np.concatenate(all_x(splits))}

    base = load_splits("regression", {"n_samples": 200}, 0.2, 0.2, seed=0)
    other_split = load_splits("regression", {"n_samples": 200}, 0.2, 0.2, seed=1)
    other_draw = load_splits("regression", {"n_samples": 200, "generator_seed": 1}, 0.2, 0.2, seed=0)
    # Same population sample, different split: the set of clean targets is identical.
    def targets(splits: Splits) -> np.ndarray:
        return np.sort(np.concatenate([splits.train_y, splits.val_y, splits.test_y]).ravel())

    np.testing.assert_array_equal(targets(base), targets(other_split))
    assert rows(base).isdisjoint(rows(other_draw))


@pytest.mark.parametrize("name", ["moons", "classification", "regression", "mnist1d", "arrays"])
@pytest.mark.parametrize("fractions", [(0.2, 0.2), (0.1, 0.3), (0.35, 0.05)])
def test_splits_are_disjoint_and_sized_by_the_fractions(name: str, fractions: tuple[float, float]) -> None:
    validation_fraction, test_fraction = fractions
    splits = load_small(name, validation_fraction=validation_fraction, test_fraction=test_fraction)
    sizes = splits.sizes()
    total = sum(sizes.values())
    assert abs(sizes["validation"] - validation_fraction * total) <= 1
    assert abs(sizes["test"] - test_fraction * total) <= 1
    # Continuous data has no duplicate rows, so a shared row means a shared sample.
    train, validation, test = ({row.tobytes() for row in x.reshape(len(x), -1)} for x in all_x(splits))
    assert len(train) + len(validation) + len(test) == total
    assert train.isdisjoint(validation) and train.isdisjoint(test) and validation.isdisjoint(test)


@pytest.mark.parametrize("name", ["digits", "classification", *FILE_KINDS])
def test_classification_splits_are_stratified(name: str) -> None:
    splits = load_small(name, seed=7)
    labels = np.concatenate([splits.train_y, splits.val_y, splits.test_y])
    overall = np.bincount(labels, minlength=splits.num_outputs) / len(labels)
    for part in (splits.train_y, splits.val_y, splits.test_y):
        share = np.bincount(part, minlength=splits.num_outputs) / len(part)
        # Stratification rounds each class to whole rows: at most ~1 row off per class.
        np.testing.assert_allclose(share, overall, atol=1.5 / len(part))


@pytest.mark.parametrize("name", ["moons", "classification", "regression", "mnist1d", "digits", *FILE_KINDS])
def test_inputs_are_standardised_with_training_statistics(name: str) -> None:
    splits = load_small(name)
    train = splits.train_x.reshape(len(splits.train_x), -1).astype(np.float64)
    held_out = np.concatenate([x.reshape(len(x), -1) for x in (splits.val_x, splits.test_x)])
    held_out = held_out.astype(np.float64)
    varying = train.std(axis=0) > 1e-6
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0)[varying], 1.0, atol=1e-4)
    # Constant training features (digits' blank border pixels) become 0, not NaN or inf.
    np.testing.assert_array_equal(train[:, ~varying], 0.0)
    # Had all rows been used, the training part would not be exactly centred; with
    # training rows only, the held-out rows are not.
    assert np.abs(held_out.mean(axis=0)[varying]).max() > 1e-3


def test_held_out_rows_never_influence_the_other_splits() -> None:
    rows, seed = 300, 11
    labels = np.arange(rows) % 3
    features = np.random.default_rng(0).normal(size=(rows, 3)).astype(np.float32)

    def split(x: np.ndarray, standardize: bool = True) -> Splits:
        data = GeneratedData(x=x, y=labels, num_outputs=3)
        return make_splits("probe", "classification", data, 0.2, 0.2, seed, standardize)

    # Row ids as unscaled inputs reveal which rows land in each part for this seed.
    ids = split(np.arange(rows, dtype=np.float32)[:, None], standardize=False)
    test_rows = ids.test_x[:, 0].astype(int)
    validation_rows = ids.val_x[:, 0].astype(int)

    clean = split(features)
    poisoned_test = features.copy()
    poisoned_test[test_rows] = poisoned_test[test_rows] * 1000 + 500
    with_poisoned_test = split(poisoned_test)
    np.testing.assert_array_equal(clean.train_x, with_poisoned_test.train_x)
    np.testing.assert_array_equal(clean.val_x, with_poisoned_test.val_x)
    assert not np.allclose(clean.test_x, with_poisoned_test.test_x)

    poisoned_validation = features.copy()
    poisoned_validation[validation_rows] = poisoned_validation[validation_rows] * 1000 + 500
    with_poisoned_validation = split(poisoned_validation)
    np.testing.assert_array_equal(clean.train_x, with_poisoned_validation.train_x)
    np.testing.assert_array_equal(clean.test_x, with_poisoned_validation.test_x)


def test_regression_noise_variance_matches_the_residuals_of_the_clean_targets() -> None:
    noise = 0.3
    splits = load_splits("regression", {"n_samples": 6000, "noise": noise}, 0.1, 0.5, 0)
    assert splits.noise_variance == pytest.approx(noise**2)
    assert splits.test_y_clean is not None
    assert splits.test_y_clean.shape == splits.test_y.shape
    residual_variance = float(np.var(splits.test_y - splits.test_y_clean))
    # 3000 test rows: the sample variance is within ~3% of the truth; 10% leaves margin.
    assert residual_variance == pytest.approx(noise**2, rel=0.1)
    # The clean target is sin(x) for raw x in [-pi, pi], so it stays in the target's units.
    assert np.abs(splits.test_y_clean).max() <= 1.0
    assert splits.test_y_clean.std() > 0.5


def test_regression_without_noise_has_targets_equal_to_the_clean_targets() -> None:
    splits = load_splits("regression", {"n_samples": 200, "noise": 0.0}, 0.2, 0.2, 0)
    assert splits.noise_variance == 0.0
    np.testing.assert_array_equal(splits.test_y, splits.test_y_clean)


def test_classification_sets_have_no_regression_extras() -> None:
    splits = load_small("moons")
    assert splits.noise_variance is None and splits.test_y_clean is None


def test_mnist1d_is_cached_and_read_back_without_regenerating(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mnist1d.data

    first = load_splits("mnist1d", {"num_samples": 500}, 0.2, 0.2, 0)
    cached = list(private_cache.rglob("mnist1d-*.npz"))
    assert len(cached) == 1
    # Only the finished file is left: the temporary one was renamed into place.
    assert [path for path in private_cache.rglob("*") if path.is_file()] == cached

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("make_dataset was called although the arrays are cached")

    monkeypatch.setattr(mnist1d.data, "make_dataset", refuse)
    second = load_splits("mnist1d", {"num_samples": 500}, 0.2, 0.2, 0)
    for a, b in zip(all_x(first), all_x(second)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.test_y, second.test_y)

    # Other generator arguments are another file, so they do need generating.
    with pytest.raises(AssertionError, match="make_dataset was called"):
        load_splits("mnist1d", {"num_samples": 500, "generator_seed": 1}, 0.2, 0.2, 0)


def test_mnist1d_generation_leaves_the_global_random_state_alone() -> None:
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    load_splits("mnist1d", {"num_samples": 200}, 0.2, 0.2, 0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_unknown_name_suggests_the_closest_and_lists_the_known_names() -> None:
    with pytest.raises(BadInputError) as caught:
        load_splits("moon", None, 0.2, 0.2, 0)
    message = str(caught.value)
    assert "did you mean 'moons'?" in message
    assert all(name in message for name in dataset_names())
    assert "\n" not in message
    with pytest.raises(BadInputError, match="unknown data set 'digitz'.*did you mean 'digits'"):
        get_dataset("digitz")


@pytest.mark.parametrize(
    ("name", "params", "mentions"),
    [
        ("moons", {"noise": -1}, "'noise'.*>= 0"),
        ("moons", {"noize": 0.1}, "unknown parameter 'noize'.*accepted: generator_seed, n_samples, noise"),
        ("regression", {"n_samples": "many"}, "'n_samples'.*an integer"),
        ("mnist1d", {"num_samples": 10}, "'num_samples'.*>= 100"),
        ("digits", {"n_samples": 100}, "unknown parameter 'n_samples'"),
        (
            "classification",
            {"n_features": 3, "n_informative": 5},
            r"n_informative \(5\) must be at most n_features \(3\)",
        ),
        (
            "classification",
            {"n_informative": 2, "n_classes": 3},
            r"n_classes \* n_clusters_per_class \(6\).*2\*\*n_informative \(4\)",
        ),
        ("classification", {"flip_y": 1.5}, "'flip_y'.*\\[0, 1\\]"),
    ],
)
def test_bad_parameter_is_a_bad_input_error(name: str, params: dict[str, Any], mentions: str) -> None:
    with pytest.raises(BadInputError, match=mentions):
        load_splits(name, params, 0.2, 0.2, 0)


@pytest.mark.parametrize(
    ("validation_fraction", "test_fraction", "mentions"),
    [
        (0.0, 0.2, "validation_fraction: expected a number in \\(0, 1\\)"),
        (-0.1, 0.2, "validation_fraction"),
        (0.2, 1.0, "test_fraction: expected a number in \\(0, 1\\)"),
        (0.2, "0.2", "test_fraction"),
        (0.5, 0.45, "validation_fraction \\+ test_fraction: expected less than 0.9"),
    ],
)
def test_bad_fractions_are_a_bad_input_error(
    validation_fraction: Any, test_fraction: Any, mentions: str
) -> None:
    with pytest.raises(BadInputError, match=mentions):
        load_splits("moons", {"n_samples": 100}, validation_fraction, test_fraction, 0)


def test_too_few_rows_per_class_for_a_stratified_split_is_a_bad_input_error() -> None:
    params = {"n_samples": 20, "n_classes": 8, "n_informative": 4, "n_clusters_per_class": 1}
    with pytest.raises(BadInputError, match="cannot be split with every class in each part"):
        load_splits("classification", params, 0.1, 0.1, 0)


@pytest.mark.parametrize("name", sorted(SMALL_PARAMS))  # the built-in ones: file kinds declare None
def test_declared_input_shape_matches_the_loaded_arrays(name: str) -> None:
    declared = get_dataset(name).input_shape(resolve_dataset_params(name, SMALL_PARAMS[name]))
    assert declared == load_small(name).input_shape == EXPECTED_INPUT_SHAPES[name]


def test_adding_problem_target_is_the_sum_of_the_two_marked_values() -> None:
    data = load_small("adding")
    values, markers = data.train_x[:, 0, :], data.train_x[:, 1, :]
    assert (markers.sum(axis=1) == 2).all() and set(np.unique(markers)) == {0.0, 1.0}
    assert ((0 <= values) & (values <= 1)).all(), "inputs are not standardised"
    np.testing.assert_allclose((values * markers).sum(axis=1), data.train_y[:, 0], rtol=1e-6)
    # One marker in each half of the sequence: the memory span is long by construction.
    half = data.input_shape[1] // 2
    assert (markers[:, :half].sum(axis=1) == 1).all()


def test_max_train_samples_keeps_a_seeded_subset_of_training_rows_only() -> None:
    full = load_splits("digits", {}, 0.2, 0.2, seed=3)
    capped = load_splits("digits", {}, 0.2, 0.2, seed=3, max_train_samples=100)
    again = load_splits("digits", {}, 0.2, 0.2, seed=3, max_train_samples=100)
    assert capped.sizes() == {"train": 100, "validation": full.sizes()["validation"], "test": full.sizes()["test"]}
    np.testing.assert_array_equal(capped.train_y, again.train_y)
    np.testing.assert_array_equal(capped.test_y, full.test_y)
    # Standardisation follows the rows actually trained on.
    np.testing.assert_allclose(capped.train_x.reshape(100, -1).mean(axis=0), 0, atol=1e-5)
