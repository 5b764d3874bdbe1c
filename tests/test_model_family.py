"""The model family (mlp, cnn, resnet, rnn, autoencoder) with real PyTorch: shapes, learning, refusals.

Every model is built through the registry as the trainer builds it, on each kind of input it
accepts, and must overfit one fixed batch; the inputs it cannot take are refused by name.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tunelab_models import (
    DataSignature,
    ParamError,
    UnknownModelError,
    build_model,
    get_model,
    model_names,
    model_signature,
    resolve_model_params,
)
from tunelab_models.initialization import INIT_SCHEMES

BATCH = 16

# One signature per kind of data the platform has: vectors, sequences, images.
SIGNATURES: dict[str, DataSignature] = {
    "vector-classes": DataSignature((2,), "classification", 2),
    "vector-regression": DataSignature((1,), "regression", 1),
    "sequence-classes": DataSignature((1, 40), "classification", 10),
    "sequence-regression": DataSignature((2, 30), "regression", 2),
    "image-classes": DataSignature((1, 8, 8), "classification", 10),
}
# Written out, not read from the models, so a model that starts refusing (or accepting) a rank fails here.
ACCEPTED_RANKS: dict[str, set[int]] = {
    "mlp": {1, 2, 3},
    "cnn": {2, 3},
    "resnet": {1, 2, 3},
    "rnn": {2},
    "autoencoder": {1, 2, 3},
}
# Defaults except for sizes, so the file runs in seconds on two cores.
SMALL: dict[str, dict[str, Any]] = {
    "mlp": {"width": 32},
    "cnn": {"channels": 16},
    "resnet": {"width": 16, "depth": 2},
    "rnn": {"hidden_size": 32},
    "autoencoder": {"width": 32, "bottleneck": 16},
}
DESCRIBED = {
    (2,): "a feature vector of shape (2,)",
    (1,): "a feature vector of shape (1,)",
    (1, 40): "a sequence of shape (1, 40)",
    (2, 30): "a sequence of shape (2, 30)",
    (1, 8, 8): "an image of shape (1, 8, 8)",
}
REFUSALS = {
    "cnn": "cnn needs sequence (channels, steps) or image (channels, height, width) inputs; got {}",
    "rnn": "rnn needs sequence (channels, steps) inputs; got {}",
}

COMBINATIONS = [(model, key) for model in ACCEPTED_RANKS for key in SIGNATURES]
ACCEPTED = [(m, k) for m, k in COMBINATIONS if SIGNATURES[k].rank in ACCEPTED_RANKS[m]]
REFUSED = [(m, k) for m, k in COMBINATIONS if SIGNATURES[k].rank not in ACCEPTED_RANKS[m]]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def signature_for(model: str, signature: DataSignature) -> DataSignature:
    """As the trainer does: an autoencoder is built to reconstruct its inputs."""
    return model_signature(model, signature.input_shape, signature.task, signature.num_outputs)


def fixed_batch(signature: DataSignature, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, *signature.input_shape, generator=generator)
    if signature.task == "classification":
        y = torch.arange(BATCH) % signature.num_outputs  # every class present
    elif signature.task == "regression":
        # A smooth random teacher: random labels on a 1-feature input would need a jagged fit.
        teacher = torch.randn(signature.num_features, signature.num_outputs, generator=generator)
        y = torch.sin(x.flatten(1) @ teacher * (2 / signature.num_features**0.5))
    else:
        y = x
    return x, y


def loss_of(signature: DataSignature, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if signature.task == "classification":
        return F.cross_entropy(outputs, targets)
    return F.mse_loss(outputs, targets)


def fit(
    model: nn.Module, signature: DataSignature, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 1e-2
) -> tuple[float, float]:
    """Adam on one batch; the loss before the first step and after the last."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    first = None
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_of(signature, model(x), y)
        first = loss.item() if first is None else first
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        last = loss_of(signature, model(x), y).item()
    assert first is not None
    return first, last


def test_every_registered_model_is_covered_here() -> None:
    assert set(model_names()) == set(ACCEPTED_RANKS), "add a new model to ACCEPTED_RANKS and SMALL"


@pytest.mark.parametrize(("model_name", "key"), ACCEPTED)
def test_model_gives_the_task_shape_and_overfits_one_batch(model_name: str, key: str) -> None:
    torch.manual_seed(0)
    signature = signature_for(model_name, SIGNATURES[key])
    model = build_model(model_name, SMALL[model_name], signature)
    x, y = fixed_batch(signature)

    expected = (BATCH, *signature.input_shape) if signature.task == "reconstruction" else (BATCH, signature.num_outputs)
    assert model(x).shape == expected
    first, last = fit(model, signature, x, y, steps=120)
    assert last < 0.3 * first, f"{model_name} on {key}: loss {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize(("model_name", "key"), REFUSED)
def test_model_refuses_inputs_it_cannot_take(model_name: str, key: str) -> None:
    signature = SIGNATURES[key]
    reason = REFUSALS[model_name].format(DESCRIBED[signature.input_shape])
    assert get_model(model_name).unsupported_reason(signature.input_shape) == reason
    with pytest.raises(UnknownModelError) as refused:
        build_model(model_name, {}, signature)
    assert str(refused.value) == f"model {model_name!r} cannot take inputs of shape {signature.input_shape}: {reason}"


@pytest.mark.parametrize("model_name", ["cnn", "resnet", "rnn"])
def test_rank_four_inputs_are_refused_in_words(model_name: str) -> None:
    reason = get_model(model_name).unsupported_reason((1, 2, 4, 4))
    assert reason is not None and reason.startswith(f"{model_name} needs ")
    assert reason.endswith("got a rank-4 input of shape (1, 2, 4, 4)")


# --- cnn -------------------------------------------------------------------------------------


def conv_types(model: nn.Module) -> set[type]:
    return {type(m) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))}


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_cnn_with_four_blocks_pools_digits_only_while_the_size_stays_two(pooling: str) -> None:
    signature = SIGNATURES["image-classes"]
    model = build_model("cnn", {"blocks": 4, "channels": 8, "pooling": pooling}, signature)
    pool_type = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
    assert sum(isinstance(m, pool_type) for m in model.modules()) == 2  # 8 -> 4 -> 2, then no more
    assert conv_types(model) == {nn.Conv2d}
    x, _ = fixed_batch(signature)
    features = model.features(x)
    assert features.shape == (BATCH, 8, 2, 2)
    assert model(x).shape == (BATCH, 10)


def test_cnn_uses_conv1d_on_sequences_and_keeps_the_size_with_odd_kernels() -> None:
    signature = SIGNATURES["sequence-classes"]
    pooled = build_model("cnn", {"blocks": 6, "channels": 4}, signature)
    assert conv_types(pooled) == {nn.Conv1d}
    x, _ = fixed_batch(signature)
    assert pooled.features(x).shape == (BATCH, 4, 2)  # 40 -> 20 -> 10 -> 5 -> 2, then no more
    unpooled = build_model("cnn", {"blocks": 3, "channels": 4, "kernel_size": 7, "pooling": "none"}, signature)
    assert unpooled.features(x).shape == (BATCH, 4, 40)


def test_cnn_channels_are_the_same_in_every_block() -> None:
    model = build_model("cnn", {"blocks": 3, "channels": 12}, SIGNATURES["image-classes"])
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 12), (12, 12), (12, 12)]
    assert model.head[-1].in_features == 12


def test_cnn_kernel_size_must_be_odd() -> None:
    with pytest.raises(ParamError, match="expected one of 1, 3, 5, 7, 9, 11, 13, 15, got 4"):
        resolve_model_params("cnn", {"kernel_size": 4})


# --- resnet ----------------------------------------------------------------------------------

RESNET_KEYS = ["vector-classes", "sequence-regression", "image-classes"]


def resnet_pair(key: str, **params: Any) -> tuple[nn.Module, nn.Module]:
    """skip: true and skip: false with the same weights (the first's state dict in the second)."""
    torch.manual_seed(0)
    signature = SIGNATURES[key]
    residual = build_model("resnet", {"width": 8, "depth": 3, **params, "skip": True}, signature)
    plain = build_model("resnet", {"width": 8, "depth": 3, **params, "skip": False}, signature)
    plain.load_state_dict(residual.state_dict())  # strict: the same names and shapes
    return residual.eval(), plain.eval()


@pytest.mark.parametrize("key", RESNET_KEYS)
def test_resnet_without_skip_has_exactly_the_same_parameters(key: str) -> None:
    residual, plain = resnet_pair(key)
    shapes = lambda m: [(name, tuple(p.shape)) for name, p in m.named_parameters()]  # noqa: E731
    assert shapes(residual) == shapes(plain)
    assert sum(p.numel() for p in residual.parameters()) == sum(p.numel() for p in plain.parameters())
    assert [type(m) for m in residual.modules()] == [type(m) for m in plain.modules()]


@pytest.mark.parametrize("key", RESNET_KEYS)
def test_resnet_skip_adds_exactly_the_block_input(key: str) -> None:
    residual, plain = resnet_pair(key)
    x, _ = fixed_batch(SIGNATURES[key])
    with torch.no_grad():
        assert not torch.allclose(residual(x), plain(x))
        for model, adds_input in ((residual, True), (plain, False)):
            h = model.stem(x)
            for block in model.blocks:
                branch = block.branch(h)
                out = block(h)
                expected = torch.relu(branch + h) if adds_input else torch.relu(branch)
                torch.testing.assert_close(out, expected)
                h = out


@pytest.mark.parametrize("key", RESNET_KEYS)
def test_resnet_with_zeroed_branches_passes_the_stem_through_only_with_skip(key: str) -> None:
    residual, plain = resnet_pair(key, batch_norm=False)
    for model in (residual, plain):
        with torch.no_grad():
            for parameter in model.blocks.parameters():
                parameter.zero_()
    x, _ = fixed_batch(SIGNATURES[key])
    with torch.no_grad():
        stem = residual.stem(x)
        assert stem.abs().sum() > 0
        # relu(0 + h) = h for h >= 0: every block passes the stem's output on.
        torch.testing.assert_close(residual(x), residual.head(stem))
        # relu(0) = 0: the head sees zeros, so every sample gets the head's bias.
        head_bias = plain.head[-1].bias
        torch.testing.assert_close(plain(x), head_bias.expand(BATCH, -1))


def test_resnet_uses_linear_conv1d_conv2d_by_rank() -> None:
    built = {key: build_model("resnet", {"width": 8, "depth": 1}, SIGNATURES[key]) for key in RESNET_KEYS}
    assert conv_types(built["vector-classes"]) == set()
    assert sum(isinstance(m, nn.Linear) for m in built["vector-classes"].modules()) == 4  # stem, 2 in block, head
    assert conv_types(built["sequence-regression"]) == {nn.Conv1d}
    assert conv_types(built["image-classes"]) == {nn.Conv2d}


# --- rnn -------------------------------------------------------------------------------------


def test_rnn_cells_are_different_modules() -> None:
    signature = SIGNATURES["sequence-regression"]
    types = {
        cell: type(build_model("rnn", {"cell": cell, "hidden_size": 8}, signature).recurrent)
        for cell in ("rnn", "lstm", "gru")
    }
    assert types == {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def test_rnn_reads_channels_as_features_of_each_step() -> None:
    model = build_model("rnn", {"hidden_size": 8}, SIGNATURES["sequence-regression"])
    assert model.recurrent.input_size == 2 and model.recurrent.batch_first


def test_rnn_bidirectional_head_sees_last_forward_and_first_backward_state() -> None:
    signature = SIGNATURES["sequence-regression"]
    one_way = build_model("rnn", {"cell": "gru", "hidden_size": 8, "num_layers": 2}, signature)
    two_way = build_model("rnn", {"cell": "gru", "hidden_size": 8, "num_layers": 2, "bidirectional": True}, signature)
    assert (one_way.head.in_features, two_way.head.in_features) == (8, 16)
    x, _ = fixed_batch(signature)
    with torch.no_grad():
        steps, _ = two_way.recurrent(x.transpose(1, 2))  # top layer's outputs, (N, steps, 2 * hidden)
        expected = two_way.head(torch.cat([steps[:, -1, :8], steps[:, 0, 8:]], dim=1))
        torch.testing.assert_close(two_way(x), expected)
        steps, _ = one_way.recurrent(x.transpose(1, 2))
        torch.testing.assert_close(one_way(x), one_way.head(steps[:, -1]))


def test_rnn_dropout_only_between_layers_and_without_warning() -> None:
    signature = SIGNATURES["sequence-regression"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = build_model("rnn", {"num_layers": 1, "dropout": 0.3, "hidden_size": 8}, signature)
    stacked = build_model("rnn", {"num_layers": 2, "dropout": 0.3, "hidden_size": 8}, signature)
    assert (single.recurrent.dropout, stacked.recurrent.dropout) == (0.0, 0.3)


def test_lstm_learns_a_label_set_by_the_first_step_only() -> None:
    torch.manual_seed(0)
    signature = DataSignature((1, 12), "classification", 2)
    generator = torch.Generator().manual_seed(1)
    # Every sequence has the same steps 1..11; only step 0 differs, and its sign is the label,
    # so the model must carry step 0 through 11 more steps to the final hidden state.
    x = torch.randn(1, 1, 12, generator=generator).repeat(BATCH, 1, 1)
    y = torch.arange(BATCH) % 2
    x[:, 0, 0] = (2 * y - 1) * (1 + torch.rand(BATCH, generator=generator))
    model = build_model("rnn", {"cell": "lstm", "hidden_size": 16}, signature)
    first, last = fit(model, signature, x, y, steps=150)
    assert last < 0.3 * first
    assert (model(x).argmax(dim=1) == y).all()


# --- autoencoder -----------------------------------------------------------------------------


def test_autoencoder_learns_its_inputs() -> None:
    cls = get_model("autoencoder")
    assert cls.learns_inputs is True and cls.tasks == frozenset({"reconstruction"})
    assert model_signature("autoencoder", (1, 8, 8), "classification", 10) == DataSignature((1, 8, 8), "reconstruction", 64)
    assert model_signature("mlp", (1, 8, 8), "classification", 10) == DataSignature((1, 8, 8), "classification", 10)
    with pytest.raises(UnknownModelError, match="model 'autoencoder' does not support classification data"):
        build_model("autoencoder", {}, SIGNATURES["image-classes"])


@pytest.mark.parametrize("depth", [0, 2])
def test_autoencoder_encodes_to_the_bottleneck_and_decodes_to_the_input_shape(depth: int) -> None:
    signature = signature_for("autoencoder", SIGNATURES["image-classes"])
    model = build_model("autoencoder", {"depth": depth, "width": 24, "bottleneck": 5}, signature)
    x, _ = fixed_batch(signature)
    assert model.encode(x).shape == (BATCH, 5)
    assert model(x).shape == (BATCH, 1, 8, 8)
    widths = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    mirrored = {0: [(64, 5), (5, 64)], 2: [(64, 24), (24, 24), (24, 5), (5, 24), (24, 24), (24, 64)]}
    assert widths == mirrored[depth]


def test_autoencoder_takes_maxout_like_the_mlp() -> None:
    signature = signature_for("autoencoder", SIGNATURES["vector-classes"])
    model = build_model("autoencoder", {"activation": "maxout", "maxout_pieces": 3, "width": 4, "bottleneck": 2}, signature)
    assert model(fixed_batch(signature)[0]).shape == (BATCH, 2)


# --- init ------------------------------------------------------------------------------------

# For each model: a signature, sizes, and the module whose output holds one layer's hidden units
# (on dimension 1 for dense and conv layers, the last one for a recurrent layer's outputs).
HIDDEN_LAYERS: dict[str, tuple[str, dict[str, Any], Callable[[nn.Module], nn.Module], int]] = {
    "mlp": ("vector-classes", {"width": 8, "activation": "sigmoid"}, lambda m: m.layers[2], 1),
    "cnn": ("sequence-classes", {"channels": 6, "activation": "sigmoid"}, lambda m: m.features[1], 1),
    # Without batch norm: normalising units that are all equal divides float rounding by
    # ~sqrt(eps), and Adam makes full steps of the tiny gradients that follow.
    "resnet": (
        "image-classes", {"width": 6, "depth": 1, "activation": "sigmoid", "batch_norm": False}, lambda m: m.blocks[0], 1
    ),
    "rnn": ("sequence-regression", {"hidden_size": 6}, lambda m: m.recurrent, -1),
    "autoencoder": ("vector-regression", {"width": 8, "activation": "sigmoid"}, lambda m: m.encoder[2], 1),
}


def test_every_model_declares_init() -> None:
    assert set(HIDDEN_LAYERS) == set(model_names())
    for name in model_names():
        declared = {p.name: p for p in get_model(name).hyperparameters}
        assert declared["init"].choices == INIT_SCHEMES and declared["init"].default == "default"
        assert declared["init_std"].kind is float


def hidden_unit_spread(model_name: str, init: str) -> float:
    """After a few training steps: how far apart the units of one hidden layer are (max - min)."""
    key, params, layer_of, unit_dim = HIDDEN_LAYERS[model_name]
    torch.manual_seed(0)
    signature = signature_for(model_name, SIGNATURES[key])
    model = build_model(model_name, {**params, "init": init}, signature)
    x, y = fixed_batch(signature)
    fit(model, signature, x, y, steps=5)
    seen: list[torch.Tensor] = []
    layer_of(model).register_forward_hook(lambda module, args, out: seen.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        model(x)
    units = seen[0]
    return (units.amax(dim=unit_dim) - units.amin(dim=unit_dim)).abs().max().item()


@pytest.mark.parametrize("model_name", sorted(HIDDEN_LAYERS))
def test_zeros_init_keeps_every_hidden_unit_of_a_layer_identical(model_name: str) -> None:
    assert hidden_unit_spread(model_name, "zeros") < 1e-6
    assert hidden_unit_spread(model_name, "default") > 1e-3  # the check can tell


@pytest.mark.parametrize("model_name", ["cnn", "resnet", "rnn", "autoencoder"])
@pytest.mark.parametrize("init", ["normal", "xavier", "he"])
def test_init_schemes_reset_every_weight_matrix(model_name: str, init: str) -> None:
    key, params, _, _ = HIDDEN_LAYERS[model_name]
    torch.manual_seed(0)
    model = build_model(model_name, {**params, "init": init, "init_std": 0.5}, signature_for(model_name, SIGNATURES[key]))
    named = dict(model.named_parameters())
    biases = [p for name, p in named.items() if "bias" in name and not _is_norm(model, name)]
    assert biases and all((p == 0).all() for p in biases)
    if init == "normal":
        weights = [p for name, p in named.items() if p.dim() > 1]
        assert all(0.3 < p.std().item() < 0.7 for p in weights if p.numel() >= 30)


def _is_norm(model: nn.Module, parameter_name: str) -> bool:
    module = model.get_submodule(parameter_name.rsplit(".", 1)[0])
    return isinstance(module, nn.modules.batchnorm._BatchNorm)
