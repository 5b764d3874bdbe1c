"""The shared model package: declared parameters, the registry, and the MLP's knobs."""

from __future__ import annotations

import math
from typing import Any, Iterator

import pytest
import torch
from torch import nn

from tunelab_models import (
    DataSignature,
    Param,
    ParamError,
    UnknownModelError,
    build_model,
    get_model,
    model_names,
    resolve_model_params,
    resolve_params,
)
from tunelab_models.activations import ACTIVATIONS, Maxout
from tunelab_models.builtin import ACTIVATION_NAMES, BUILT_IN_MODELS, ELEMENTWISE_ACTIVATION_NAMES
from tunelab_models.mlp import MLP

CLASSIFICATION = DataSignature(input_shape=(10,), task="classification", num_outputs=3)
REGRESSION = DataSignature(input_shape=(10,), task="regression", num_outputs=2)
IMAGES = DataSignature(input_shape=(1, 8, 8), task="classification", num_outputs=10)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """These tensors are tiny: extra intra-op threads only add waiting on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mlp(signature: DataSignature = CLASSIFICATION, **params: Any) -> nn.Module:
    return build_model("mlp", params, signature)


def batch(signature: DataSignature, size: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, *signature.input_shape, generator=generator)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def check_error(param: Param, value: Any) -> str:
    """The message of the ParamError `param.check(value)` raises."""
    with pytest.raises(ParamError) as caught:
        param.check(value)
    assert caught.value.name == param.name
    return str(caught.value)


# --- Param.check -----------------------------------------------------------------------

DEPTH = Param("depth", int, 2, "hidden layers", low=0, high=8)
RATE = Param("rate", float, 0.1, "a rate", low=0.0, high=1.0)
DROPOUT = Param("dropout", float, 0.0, "drop probability", low=0.0, high=1.0, high_exclusive=True)
FLAG = Param("batch_norm", bool, False, "a switch")
COLOUR = Param("colour", str, "red", "a colour", choices=("red", "green"))
BATCH_SIZE = Param("batch_size", int, 32, "rows per step", low=1, high=4096, also=("full",))


def test_int_param_accepts_ints_and_whole_floats_as_int() -> None:
    assert DEPTH.check(3) == 3
    converted = DEPTH.check(4.0)
    assert converted == 4 and type(converted) is int


@pytest.mark.parametrize("value", [2.5, True, "3", None, float("inf")])
def test_int_param_rejects_non_integers_and_says_it_wants_an_integer(value: Any) -> None:
    message = check_error(DEPTH, value)
    assert "expected an integer in [0, 8]" in message
    assert repr(value) in message


def test_float_param_converts_ints_to_float() -> None:
    converted = RATE.check(1)
    assert converted == 1.0 and type(converted) is float


@pytest.mark.parametrize("value", [True, False, "0.5", float("nan"), [0.5]])
def test_float_param_rejects_bools_strings_and_nan(value: Any) -> None:
    assert "expected a number in [0, 1]" in check_error(RATE, value)


def test_float_param_rejects_an_integer_too_large_for_a_float() -> None:
    unbounded = Param("scale", float, 1.0)
    assert "expected a number" in check_error(unbounded, 10**400)


def test_bool_param_accepts_only_true_or_false() -> None:
    assert FLAG.check(True) is True
    for value in (1, 0, "true", None):
        assert "expected true or false" in check_error(FLAG, value)


def test_bounds_are_inclusive_unless_high_exclusive() -> None:
    assert RATE.check(0.0) == 0.0
    assert RATE.check(1.0) == 1.0
    assert "[0, 1]" in check_error(RATE, 1.5)
    assert "[0, 1]" in check_error(RATE, -0.01)
    assert DEPTH.check(0) == 0 and DEPTH.check(8) == 8
    assert "[0, 8]" in check_error(DEPTH, 9)
    assert DROPOUT.check(0.999) == 0.999
    message = check_error(DROPOUT, 1.0)
    assert "in [0, 1)" in message and "got 1.0" in message


def test_one_sided_bounds_are_described() -> None:
    at_least_one = Param("n", int, 1, low=1)
    at_most_ten = Param("m", float, 1.0, high=10)
    assert "expected an integer >= 1" in check_error(at_least_one, 0)
    assert "expected a number <= 10" in check_error(at_most_ten, 11)


def test_choices_accept_listed_values_and_name_them_otherwise() -> None:
    assert COLOUR.check("green") == "green"
    message = check_error(COLOUR, "blue")
    assert "expected one of 'red', 'green'" in message and "'blue'" in message
    assert "one of" in check_error(COLOUR, 1)


def test_extra_literal_values_are_accepted_besides_the_range() -> None:
    assert BATCH_SIZE.check("full") == "full"
    assert BATCH_SIZE.check(64) == 64
    message = check_error(BATCH_SIZE, "half")
    assert "an integer in [1, 4096] or 'full'" in message


# --- resolve_params ----------------------------------------------------------------------


def test_resolve_params_fills_defaults_and_checks_given_values() -> None:
    resolved = resolve_params((DEPTH, RATE, FLAG), {"rate": 1})
    assert resolved == {"depth": 2, "rate": 1.0, "batch_norm": False}
    assert type(resolved["rate"]) is float
    with pytest.raises(ParamError, match=r"expected an integer in \[0, 8\], got 99"):
        resolve_params((DEPTH, RATE), {"depth": 99})


def test_resolve_params_names_an_unknown_parameter_and_the_accepted_ones() -> None:
    with pytest.raises(ParamError) as caught:
        resolve_params((DEPTH, RATE), {"dpeth": 3})
    assert caught.value.name == "dpeth"
    assert "unknown parameter 'dpeth'" in str(caught.value)
    assert "accepted: depth, rate" in str(caught.value)


def test_mlp_declared_defaults_resolve() -> None:
    resolved = resolve_model_params("mlp", {"width": 8})
    assert resolved["width"] == 8
    assert resolved["depth"] == 2 and resolved["activation"] == "relu"
    with pytest.raises(ParamError, match="expected one of 'relu', .*'maxout', got 'swish'") as caught:
        resolve_model_params("mlp", {"activation": "swish"})
    assert caught.value.name == "activation"


# --- registry ------------------------------------------------------------------------------


def test_registered_model_is_found_by_name() -> None:
    assert "mlp" in model_names()
    assert get_model("mlp").network_class() is MLP


@pytest.mark.parametrize("declared", BUILT_IN_MODELS, ids=lambda declared: declared.name)
def test_every_built_in_network_is_its_declaration(declared) -> None:  # type: ignore[no-untyped-def]
    network = declared.network_class()
    assert (network.name, network.hyperparameters, network.tasks) == (declared.name, declared.hyperparameters, declared.tasks)
    assert network.unsupported_reason((5,)) == declared.unsupported_reason((5,))


def test_the_declared_activation_names_are_the_ones_the_networks_build() -> None:
    assert tuple(ACTIVATIONS) == ELEMENTWISE_ACTIVATION_NAMES
    assert ACTIVATION_NAMES == (*ELEMENTWISE_ACTIVATION_NAMES, "maxout")


def test_a_typo_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_model("mpl")
    message = str(caught.value)
    assert "unknown model 'mpl'" in message
    assert "did you mean 'mlp'?" in message
    assert "package.module:Class" in message


def test_a_users_model_is_found_by_import_path_and_builds() -> None:
    from user_models import TinyNet

    assert get_model("user_models:TinyNet").network_class() is TinyNet
    assert resolve_model_params("user_models:TinyNet", {}) == {"scale": 1.0, "bias": True}
    model = build_model("user_models:TinyNet", {"scale": 2.0, "bias": False}, CLASSIFICATION)
    inputs = batch(CLASSIFICATION)
    outputs = model(inputs)
    assert outputs.shape == (16, 3)
    (layer,) = linear_layers(model)
    assert layer.bias is None
    assert torch.allclose(outputs, 2.0 * inputs @ layer.weight.T)


def test_a_users_model_params_are_checked_against_its_declaration() -> None:
    with pytest.raises(ParamError, match=r"expected a number in \[0, 10\], got 11"):
        build_model("user_models:TinyNet", {"scale": 11}, CLASSIFICATION)


@pytest.mark.parametrize("path", ["user_models:not_a_model", "user_models:NOT_A_CLASS", "user_models:PlainModule"])
def test_an_import_path_to_something_else_is_not_a_model(path: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_model(path)
    message = str(caught.value)
    assert f"{path!r} is not a model" in message
    assert "TunableModel" in message and "hyperparameters" in message


@pytest.mark.parametrize(
    ("path", "missing"), [("no_such_package_xyz.models:Net", "no_such_package_xyz"), ("user_models:Missing", "Missing")]
)
def test_an_import_path_that_does_not_resolve_says_so(path: str, missing: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_model(path)
    assert f"cannot import model {path!r}" in str(caught.value)
    assert missing in str(caught.value)


# --- MLP shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "expected"), [(CLASSIFICATION, (16, 3)), (REGRESSION, (16, 2)), (IMAGES, (16, 10))]
)
def test_mlp_output_shape_follows_the_signature(signature: DataSignature, expected: tuple[int, int]) -> None:
    model = mlp(signature, depth=2, width=12)
    assert model(batch(signature)).shape == expected


def test_image_inputs_are_flattened_into_the_first_layer() -> None:
    first = linear_layers(mlp(IMAGES, depth=1, width=12))[0]
    assert first.in_features == 64


def test_depth_zero_is_a_single_linear_layer() -> None:
    model = mlp(IMAGES, depth=0, width=12, activation="tanh", dropout=0.5, batch_norm=True)
    (layer,) = linear_layers(model)
    assert (layer.in_features, layer.out_features) == (64, 10)
    assert parameter_count(model) == 64 * 10 + 10
    kinds = {type(module) for module in model.modules()}
    assert not kinds & {nn.Tanh, nn.Dropout, nn.BatchNorm1d}


def test_depth_and_width_set_the_hidden_layers() -> None:
    layers = linear_layers(mlp(CLASSIFICATION, depth=3, width=7))
    assert [(layer.in_features, layer.out_features) for layer in layers] == [(10, 7), (7, 7), (7, 7), (7, 3)]


# --- activations and batch norm ------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_every_activation_builds_runs_and_backpropagates(activation: str, batch_norm: bool) -> None:
    torch.manual_seed(0)
    model = mlp(CLASSIFICATION, depth=2, width=16, activation=activation, batch_norm=batch_norm)
    has_norm = any(isinstance(module, nn.BatchNorm1d) for module in model.modules())
    assert has_norm == batch_norm
    outputs = model(batch(CLASSIFICATION))
    assert outputs.shape == (16, 3)
    nn.functional.cross_entropy(outputs, torch.arange(16) % 3).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    first_layer_grad = linear_layers(model)[0].weight.grad
    assert first_layer_grad is not None and first_layer_grad.abs().sum() > 0


@pytest.mark.parametrize("pieces", [2, 3, 5])
def test_maxout_has_k_linear_pieces_per_unit(pieces: int) -> None:
    width, features, classes = 6, 10, 3
    model = mlp(CLASSIFICATION, depth=1, width=width, activation="maxout", maxout_pieces=pieces)
    hidden = features * width * pieces + width * pieces
    output = width * classes + classes
    assert parameter_count(model) == hidden + output


def test_maxout_unit_is_the_max_over_its_pieces() -> None:
    torch.manual_seed(0)
    unit = Maxout(in_features=5, out_features=4, pieces=3)
    inputs = torch.randn(8, 5)
    pieces = (inputs @ unit.linear.weight.T + unit.linear.bias).view(8, 4, 3)
    assert torch.allclose(unit(inputs), pieces.max(dim=-1).values)


# --- dropout ---------------------------------------------------------------------------------


def test_dropout_is_active_only_in_train_mode() -> None:
    torch.manual_seed(0)
    model = mlp(CLASSIFICATION, depth=2, width=64, dropout=0.5)
    inputs = batch(CLASSIFICATION, size=32)
    model.eval()
    with torch.no_grad():
        first_eval, second_eval = model(inputs), model(inputs)
    assert torch.equal(first_eval, second_eval)
    model.train()
    with torch.no_grad():
        first_train, second_train = model(inputs), model(inputs)
    assert not torch.allclose(first_train, second_train)
    assert not torch.allclose(first_train, first_eval)


def test_without_dropout_train_mode_is_deterministic() -> None:
    model = mlp(CLASSIFICATION, depth=2, width=64, dropout=0.0)
    model.train()
    inputs = batch(CLASSIFICATION)
    with torch.no_grad():
        assert torch.equal(model(inputs), model(inputs))


# --- initialisation --------------------------------------------------------------------------


def hidden_weights(model: nn.Module) -> list[torch.Tensor]:
    return [layer.weight for layer in linear_layers(model)[:-1]]


def train_steps(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int, lr: float) -> list[float]:
    """Plain SGD on cross-entropy; the loss before each step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_zeros_init_keeps_every_hidden_unit_identical_even_after_training() -> None:
    inputs = batch(CLASSIFICATION, size=64)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0).long()
    symmetric = mlp(CLASSIFICATION, depth=2, width=8, activation="sigmoid", init="zeros")
    train_steps(symmetric, inputs, labels, steps=30, lr=0.5)
    for weight in hidden_weights(symmetric):
        assert weight.abs().sum() > 0, "the hidden layers learned nothing at all"
        assert torch.allclose(weight, weight[0].expand_as(weight)), "hidden units diverged"
    torch.manual_seed(0)
    broken = mlp(CLASSIFICATION, depth=2, width=8, activation="sigmoid", init="xavier")
    train_steps(broken, inputs, labels, steps=30, lr=0.5)
    for weight in hidden_weights(broken):
        assert not torch.allclose(weight, weight[0].expand_as(weight))


WIDE = DataSignature(input_shape=(1024,), task="regression", num_outputs=1)


@pytest.mark.parametrize(
    ("scheme", "expected_std"),
    [
        ("xavier", math.sqrt(2.0 / (1024 + 512))),  # Glorot: sqrt(2 / (fan_in + fan_out))
        ("he", math.sqrt(2.0 / 1024)),  # He: sqrt(2 / fan_in)
        ("normal", 0.05),  # init_std
    ],
)
def test_init_scheme_gives_the_theoretical_weight_std(scheme: str, expected_std: float) -> None:
    torch.manual_seed(0)
    model = mlp(WIDE, depth=1, width=512, init=scheme, init_std=0.05)
    first = linear_layers(model)[0]
    assert first.weight.shape == (512, 1024)
    assert first.weight.std().item() == pytest.approx(expected_std, rel=0.02)
    assert first.weight.mean().item() == pytest.approx(0.0, abs=expected_std * 0.01)
    assert torch.count_nonzero(first.bias) == 0


def test_default_init_is_left_to_pytorch() -> None:
    torch.manual_seed(0)
    first = linear_layers(mlp(WIDE, depth=1, width=512))[0]
    # PyTorch's own Linear init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), std = 1/sqrt(3 fan_in).
    assert first.weight.std().item() == pytest.approx(1 / math.sqrt(3 * 1024), rel=0.02)
    assert torch.count_nonzero(first.bias) > 0


# --- real training ---------------------------------------------------------------------------


def separable_blobs(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs four standard deviations apart in 10 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    centres = torch.zeros(2, 10)
    centres[1, :2] = 4.0
    inputs = centres[labels] + torch.randn(count, 10, generator=generator)
    return inputs, labels


@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_training_a_few_steps_fits_a_separable_problem(activation: str) -> None:
    torch.manual_seed(0)
    signature = DataSignature(input_shape=(10,), task="classification", num_outputs=2)
    model = mlp(signature, depth=1, width=16, activation=activation)
    inputs, labels = separable_blobs(128, seed=1)
    losses = train_steps(model, inputs, labels, steps=60, lr=0.2)
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    with torch.no_grad():
        accuracy = (model(inputs).argmax(dim=1) == labels).float().mean().item()
    assert accuracy > 0.95
