"""The stacked layers (`tunelab.fusion.stacked`) give every member the outputs, gradients and
batch-norm statistics that `vmap(functional_call)` gives it, layer kind by layer kind, in
training and in eval mode; a model with a layer they do not know is left to vmap. The recurrent
layers (`tunelab.fusion.stacked_recurrent`), which vmap cannot run, give each member what the
torch layer gives it run member by member, and drop between layers at each member's own rate."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tunelab.fusion.member_dropout import replace_dropout
from tunelab.fusion.stacked import stacked_model
from tunelab_models import build_model, model_signature, resolve_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MEMBERS, BATCH = 3, 5


def members_of(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Three members of `model`'s shapes, each its own random parameters and statistics."""
    generator = torch.Generator().manual_seed(0)

    def stacked(name: str, value: torch.Tensor) -> torch.Tensor:
        if value.dtype == torch.long:  # num_batches_tracked
            return torch.stack([value.clone() for _ in range(MEMBERS)])
        noisy = value + torch.randn((MEMBERS, *value.shape), generator=generator) * 0.3
        return noisy.abs() + 0.5 if "running_var" in name else noisy

    params = {name: stacked(name, value.detach()) for name, value in model.named_parameters()}
    buffers = {name: stacked(name, value) for name, value in model.named_buffers()}
    return params, buffers


def both_ways(model: nn.Module, x: torch.Tensor, training: bool) -> list[tuple[torch.Tensor, ...]]:
    """Outputs, every parameter's gradient and the buffers after one call: vmap's, then the stacked layers'."""
    from torch.func import functional_call, vmap

    params, buffers = members_of(model)
    results = []
    for way in ("vmap", "stacked"):
        skeleton = copy.deepcopy(model)
        skeleton.train(training)
        mine = {name: value.clone().requires_grad_() for name, value in params.items()}
        my_buffers = {name: value.clone() for name, value in buffers.items()}
        if way == "vmap":
            outputs = vmap(lambda p, b, rows: functional_call(skeleton, (p, b), (rows,)))(mine, my_buffers, x)
        else:
            stacked = stacked_model(skeleton)
            assert stacked is not None, "the model is stacked"
            stacked.train(training)
            outputs = stacked(mine, my_buffers, x)
        gradients = torch.autograd.grad((outputs * torch.linspace(-1, 1, outputs.numel()).view_as(outputs)).sum(),
                                        list(mine.values())) if training else ()
        results.append((outputs.detach(), *gradients, *my_buffers.values()))
    return results


def built(name: str, params: dict, input_shape: tuple[int, ...]) -> nn.Module:
    from tunelab_models.registry import get_model

    signature = model_signature(name, input_shape, "classification", 4)
    return build_model(name, resolve_params(get_model(name).hyperparameters, params), signature)


MODELS = {
    "mlp": ("mlp", {"width": 6, "depth": 2}, (1, 3, 3)),
    "mlp, batch norm": ("mlp", {"width": 6, "depth": 2, "batch_norm": True}, (7,)),
    "mlp, maxout": ("mlp", {"width": 6, "depth": 1, "activation": "maxout", "batch_norm": True}, (7,)),
    "cnn 1-d, max pool, batch norm": ("cnn", {"channels": 4, "blocks": 2, "batch_norm": True}, (2, 12)),
    "cnn 1-d, odd length, avg pool": ("cnn", {"channels": 4, "blocks": 2, "pooling": "avg"}, (2, 11)),
    "cnn 2-d": ("cnn", {"channels": 4, "blocks": 2, "kernel_size": 5}, (1, 8, 8)),
    "resnet 2-d, batch norm": ("resnet", {"width": 4, "depth": 2, "batch_norm": True}, (1, 6, 6)),
    "resnet dense": ("resnet", {"width": 5, "depth": 1, "batch_norm": True}, (7,)),
}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", sorted(MODELS))
def test_stacked_layers_equal_vmap(case: str, training: bool) -> None:
    name, params, input_shape = MODELS[case]
    model = built(name, params, input_shape)
    x = torch.randn(MEMBERS, BATCH, *input_shape, generator=torch.Generator().manual_seed(1))
    by_vmap, stacked = both_ways(model, x, training)
    assert len(by_vmap) == len(stacked)
    for index, (expected, mine) in enumerate(zip(by_vmap, stacked)):
        assert mine.shape == expected.shape, index
        # Float tolerance: a bias before batch norm has a gradient of pure rounding noise.
        assert torch.allclose(mine.float(), expected.float(), rtol=1e-4, atol=1e-5), index


def test_the_same_inputs_for_every_member_may_be_a_broadcast_view() -> None:
    model = built("cnn", {"channels": 4, "blocks": 1}, (2, 12)).eval()
    params, buffers = members_of(model)
    stacked = stacked_model(model)
    assert stacked is not None
    stacked.train(False)
    rows = torch.randn(BATCH, 2, 12)
    together = stacked(params, buffers, rows.expand(MEMBERS, *rows.shape))
    from torch.func import functional_call

    for member in range(MEMBERS):
        alone = functional_call(model, ({n: v[member] for n, v in params.items()}, {n: v[member] for n, v in buffers.items()}), (rows,))
        assert torch.allclose(together[member], alone, rtol=1e-5, atol=1e-6)


def test_dropout_is_each_members_own_rate() -> None:
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.3))
    (rate_name,) = replace_dropout(model)
    stacked = stacked_model(model)
    assert stacked is not None
    stacked.train(True)
    rates = torch.tensor([0.1, 0.5, 0.8])
    dropped = stacked({}, {rate_name: rates}, torch.ones(3, 20_000))
    for rate, row in zip(rates.tolist(), dropped):
        assert float((row == 0).float().mean()) == pytest.approx(rate, abs=0.02)
        assert float(row[row > 0][0]) == pytest.approx(1 / (1 - rate))
    stacked.train(False)
    assert torch.equal(stacked({}, {rate_name: rates}, torch.ones(3, 10)), torch.ones(3, 10)), "no dropout in eval mode"


class Doubling(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def test_a_model_with_a_layer_it_does_not_know_is_left_to_vmap() -> None:
    assert stacked_model(nn.Sequential(nn.Linear(3, 3), Doubling())) is None
    assert stacked_model(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, momentum=None))) is None, "a cumulative average"
    assert stacked_model(nn.Sequential(nn.Linear(3, 3), nn.ReLU())) is not None


def test_a_flat_row_holds_each_parameter_in_its_own_shape_transposed_or_not() -> None:
    from tunelab.fusion.flat_optimizer import FlatLayout

    params = {"weight": torch.arange(6.0).view(2, 3), "bias": torch.arange(2.0)}
    layout = FlatLayout.of(params, frozenset({"weight"}))
    row = layout.flatten(params)
    assert row.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0, 0.0, 1.0], "the weight stored transposed"
    views = layout.views(torch.stack([row, row * 10]))
    assert torch.equal(views["weight"][1], params["weight"] * 10) and torch.equal(views["bias"][0], params["bias"])
    assert torch.equal(layout.flatten({name: view[1] for name, view in views.items()}), row * 10)


def test_a_model_left_to_vmap_trains_each_member_as_its_trial_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import tunelab.fusion.engine as engine
    from tunelab.datasets import load_splits
    from test_fusion import MODELS as FUSED_MODELS, alone, fused, plan

    monkeypatch.setattr(engine, "stacked_model", lambda model: None)  # as for a layer it does not know
    digits = load_splits("digits", {}, 0.2, 0.2, seed=0)
    trials = [plan("cnn", {**FUSED_MODELS["cnn"], "batch_norm": True}, optimizer="sgd", learning_rate=0.01, **knobs)
              for knobs in (dict(momentum=0.9, l1=1e-4), dict(momentum=0.5, nesterov=True, weight_decay=1e-3))]
    together = fused(trials, digits)
    for member, trial in enumerate(trials):
        expected = alone(trial, digits)
        assert [e["val_loss"] for e in together[member]] == pytest.approx([e["val_loss"] for e in expected], rel=2e-4)


def test_a_members_weights_are_its_models_own_tensors_after_fused_training() -> None:
    from tunelab.datasets import load_splits
    from tunelab.fusion.engine import FusedArchitecture
    from test_fusion import plan

    data = load_splits("moons", {"n_samples": 200}, 0.2, 0.2, 0)
    trials = [plan("mlp", {"width": 8}, optimizer="sgd", learning_rate=lr, momentum=0.9) for lr in (0.1, 0.01)]
    architecture = FusedArchitecture(trials[0], data)
    members = [architecture.new_member(trial) for trial in trials]
    architecture.train_epoch(members)
    weights = members[1].weights()
    model = copy.deepcopy(architecture.template)
    model.load_state_dict(weights)
    # Contiguous, as a model's own are (stored in the cohort they were views, some transposed).
    assert all(value.is_contiguous() for value in weights.values())
    assert all(value.view(-1).numel() == value.numel() for value in weights.values())
    state = members[1].state()
    resumed = architecture.new_member(trials[1], resume=state)
    assert all(torch.equal(resumed.params[name], weights[name]) for name in resumed.params)


RECURRENT = {
    "rnn tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
}
STEPS = 6


def flat(result: torch.Tensor | tuple) -> list[torch.Tensor]:
    """A module's result as a list of tensors: an LSTM's (output, (h_n, c_n)) as three."""
    if isinstance(result, torch.Tensor):
        return [result]
    return [tensor for part in result for tensor in flat(part)]


def member_by_member(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                     x: torch.Tensor) -> list[torch.Tensor]:
    """Each member's outputs from the torch module itself (`flat`), stacked over the members:
    what a stacked kind must return."""
    from torch.func import functional_call

    each = [flat(functional_call(model, ({n: v[m] for n, v in params.items()}, {n: v[m] for n, v in buffers.items()}),
                                 (x[m],)))
            for m in range(x.shape[0])]
    return [torch.stack(parts) for parts in zip(*each)]


def outputs_and_gradients(outputs: list[torch.Tensor], params: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The outputs, then every parameter's gradient of a weighted sum of all of them."""
    total = sum((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() for out in outputs)
    return [out.detach() for out in outputs] + list(torch.autograd.grad(total, list(params.values())))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one way", "bidirectional"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_stacked_recurrent_layers_equal_the_layer_member_by_member(kind: str, num_layers: int, bidirectional: bool) -> None:
    """Outputs, final states (h_n, an LSTM's c_n) and gradients of nn.RNN (tanh, relu), nn.LSTM and
    nn.GRU, written out for every member at once, as torch's own layer gives each member's."""
    layer_class, options = RECURRENT[kind]
    layer = layer_class(3, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **options)
    params, _ = members_of(layer)
    x = torch.randn(MEMBERS, BATCH, STEPS, 3, generator=torch.Generator().manual_seed(1))
    stacked = stacked_model(layer)
    assert stacked is not None, "the layer is stacked"
    stacked.train(True)
    mine = {name: value.clone().requires_grad_() for name, value in params.items()}
    theirs = {name: value.clone().requires_grad_() for name, value in params.items()}
    together = outputs_and_gradients(flat(stacked(mine, {}, x)), mine)
    expected = outputs_and_gradients(member_by_member(layer, theirs, {}, x), theirs)
    assert len(together) == len(expected) == (3 if kind == "lstm" else 2) + len(params)
    for index, (value, reference) in enumerate(zip(together, expected)):
        assert value.shape == reference.shape, index
        assert torch.allclose(value, reference, rtol=1e-4, atol=1e-5), (index, float((value - reference).abs().max()))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_stacked_rnn_model_equals_the_model_member_by_member(cell: str, training: bool) -> None:
    """The RNN model's own forward (transposing its input, picking the top layer's final states)
    runs the stacked recurrent layer and head unchanged."""
    model = built("rnn", {"cell": cell, "hidden_size": 5, "num_layers": 2, "bidirectional": True}, (2, STEPS))
    model.train(training)
    params, buffers = members_of(model)
    x = torch.randn(MEMBERS, BATCH, 2, STEPS, generator=torch.Generator().manual_seed(1))
    stacked = stacked_model(model)
    assert stacked is not None, "the model is stacked"
    stacked.train(training)
    mine = {name: value.clone().requires_grad_() for name, value in params.items()}
    theirs = {name: value.clone().requires_grad_() for name, value in params.items()}
    together = outputs_and_gradients([stacked(mine, buffers, x)], mine)
    expected = outputs_and_gradients(member_by_member(model, theirs, buffers, x), theirs)
    assert together[0].shape == (MEMBERS, BATCH, 4)
    for index, (value, reference) in enumerate(zip(together, expected)):
        assert torch.allclose(value, reference, rtol=1e-4, atol=1e-5), index
    assert {f"recurrent.{name}" for name in ("weight_ih_l1_reverse", "weight_hh_l0")} <= stacked.transposed_parameters()


def test_a_recurrent_layer_the_stacked_kind_does_not_write_out_is_left_to_vmap() -> None:
    assert stacked_model(nn.LSTM(3, 4, batch_first=True)) is not None
    assert stacked_model(nn.LSTM(3, 4)) is None, "time-major inputs"
    assert stacked_model(nn.GRU(3, 4, batch_first=True, bias=False)) is None
    assert stacked_model(nn.LSTM(3, 4, batch_first=True, proj_size=2)) is None


def relaying_rnn(hidden: int, rate: float) -> nn.RNN:
    """Two relu layers that show what drops between them: the first outputs 1 everywhere (its
    bias alone), the second passes its input through (identity weights): the top layer's output
    is the dropout mask, scaled."""
    layer = nn.RNN(1, hidden, num_layers=2, nonlinearity="relu", dropout=rate, batch_first=True)
    with torch.no_grad():
        for name, value in layer.named_parameters():
            value.zero_()
        layer.bias_ih_l0.fill_(1.0)
        layer.weight_ih_l1.copy_(torch.eye(hidden))
    return layer


def test_between_layers_each_member_drops_at_its_own_rate_with_its_own_masks() -> None:
    from tunelab.fusion.member_dropout import RATE, dropout_rates

    rates = [0.0, 0.3, 0.7, 0.7]
    layer = relaying_rnn(hidden=50, rate=0.5)
    assert dropout_rates(layer) == {RATE: 0.5}
    skeleton = copy.deepcopy(layer)
    assert replace_dropout(skeleton) == [RATE]
    stacked = stacked_model(skeleton)
    assert stacked is not None
    params = {name: value.detach().expand(len(rates), *value.shape) for name, value in layer.named_parameters()}
    x = torch.zeros(len(rates), 40, 50, 1)
    stacked.train(True)
    output, _ = stacked(params, {RATE: torch.tensor(rates)}, x)
    for rate, member in zip(rates, output):
        assert float((member == 0).float().mean()) == pytest.approx(rate, abs=0.02)
        assert float(member[member > 0][0]) == pytest.approx(1 / (1 - rate))  # survivors scaled, as torch's dropout does
    assert torch.equal(output[0], torch.ones_like(output[0])), "at rate 0 nothing drops"
    assert not torch.equal(output[2], output[3]), "two members at one rate draw their own masks"
    stacked.train(False)
    output, _ = stacked(params, {RATE: torch.tensor(rates)}, x)
    assert torch.equal(output, torch.ones_like(output)), "no dropout in eval mode"


def test_a_member_at_dropout_rate_0_equals_its_layer_without_dropout() -> None:
    from tunelab.fusion.member_dropout import RATE

    layer = nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True)
    skeleton = copy.deepcopy(layer)
    replace_dropout(skeleton)
    stacked = stacked_model(skeleton)
    assert stacked is not None
    stacked.train(True)
    params, _ = members_of(layer)
    x = torch.randn(MEMBERS, BATCH, STEPS, 3, generator=torch.Generator().manual_seed(1))
    output, (h_n, _) = stacked(params, {RATE: torch.tensor([0.0, 0.5, 0.0])}, x)
    without = copy.deepcopy(layer)
    without.dropout = 0.0
    expected_output, expected_h_n, _ = member_by_member(without, params, {}, x)
    for member in (0, 2):
        assert torch.allclose(output[member], expected_output[member], rtol=1e-4, atol=1e-5)
        assert torch.allclose(h_n[member], expected_h_n[member], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(output[1], expected_output[1], rtol=1e-2), "the member at 0.5 drops"
