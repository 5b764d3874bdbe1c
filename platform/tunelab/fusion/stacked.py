"""A cohort's model as directly batched layers: every member in one op per layer, no vmap.

`vmap(functional_call)` runs any model, but on a CPU its per-op batching and dispatch cost
more than the small layers' arithmetic. Here each layer of the model is replaced by its
stacked kind, which takes activations of shape (members, batch, ...) and every member's
parameters stacked along a first dimension:

  Linear           one batched matrix product (`baddbmm`, x·Wᵀ as F.linear: the same rounding)
  Conv1d, Conv2d   one grouped convolution with the members as groups (HFTA's trick:
                   Wang et al., "Horizontally Fused Training Array", MLSys 2021)
  BatchNorm1d/2d   one batch norm over the members' channels side by side: each member's own
                   batch statistics and running statistics
  pools, Flatten, MemberDropout, element-wise activations: member by member in one op
                   (a 1-d max pool of disjoint windows as a max over each: faster on a CPU)
  RNN, LSTM, GRU   the recurrences written out, batched matrix products per time step
                   (`stacked_recurrent`)

A convolution's output stays in its (batch, members × channels, ...) memory layout, seen as
(members, batch, ...): the next convolution, batch norm or pool reads it without a copy.

`stacked_model` returns None for a model it does not know all of (a layer kind missing from
`stacked_kinds`, or a container whose forward may not be layout-agnostic): the engine then
runs it under vmap, as before. tests/test_fused_stacked.py checks each layer kind against vmap
(the recurrent ones, which vmap cannot run, against the torch layer member by member).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from tunelab.fusion.member_dropout import RATE, MemberDropout, dropped

Tensors = Mapping[str, torch.Tensor]


def channels_folded(x: torch.Tensor) -> torch.Tensor:
    """(members, batch, channels, ...) → (batch, members × channels, ...): a copy only when the
    members are not already side by side in memory."""
    members, batch, channels, *rest = x.shape
    return x.transpose(0, 1).reshape(batch, members * channels, *rest)


def channels_unfolded(y: torch.Tensor, members: int) -> torch.Tensor:
    """The inverse of `channels_folded`, as a view."""
    batch, folded, *rest = y.shape
    return y.view(batch, members, folded // members, *rest).transpose(0, 1)


class StackedLayer(nn.Module):
    """One layer of the model for every member: its tensors, by the layer's own names, are bound
    before each call (a member's parameters and buffers stacked on a first dimension)."""

    tensor_names: tuple[str, ...] = ()  # a kind whose names depend on the layer sets its own

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.tensors: dict[str, torch.Tensor | None] = {}

    @classmethod
    def accepts(cls, layer: nn.Module) -> bool:
        return True

    def bind(self, tensors: Tensors, prefix: str) -> None:
        self.tensors = {name: tensors.get(prefix + name) for name in self.tensor_names}

    def transposed_names(self) -> tuple[str, ...]:
        """Its parameters whose gradient autograd computes transposed (`FlatLayout.transposed`):
        the weights it multiplies by as x·Wᵀ."""
        return ()


class StackedLinear(StackedLayer):
    tensor_names = ("weight", "bias")

    def transposed_names(self) -> tuple[str, ...]:
        return ("weight",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.tensors["weight"], self.tensors["bias"]  # (members, out, in), (members, out)
        rows = x.reshape(x.shape[0], -1, x.shape[-1])
        # x·Wᵀ, as F.linear computes it: W·xᵀ would leave the weight's gradient in the weight's
        # own layout (cheaper to step), but rounds differently from the member's trial alone, and
        # a model near a batch-normed knife edge amplifies that to 1e-3 within an epoch.
        transposed = weight.transpose(1, 2)
        out = torch.bmm(rows, transposed) if bias is None else torch.baddbmm(bias.unsqueeze(1), rows, transposed)
        return out.view(*x.shape[:-1], weight.shape[1])


class StackedConv(StackedLayer):
    tensor_names = ("weight", "bias")
    convolutions: ClassVar[dict[type[nn.Module], Callable[..., torch.Tensor]]] = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d}

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.convolution = self.convolutions[type(layer)]
        self.stride, self.padding, self.dilation, self.groups = layer.stride, layer.padding, layer.dilation, layer.groups

    @classmethod
    def accepts(cls, layer: nn.Module) -> bool:
        return layer.padding_mode == "zeros" and not isinstance(layer.padding, str)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.tensors["weight"], self.tensors["bias"]  # (members, out, in / groups, *kernel)
        members = weight.shape[0]
        out = self.convolution(channels_folded(x), weight.flatten(0, 1), None, self.stride, self.padding,
                               self.dilation, self.groups * members)
        if bias is not None:
            # Added apart, as vmap's convolution does: mkldnn's fused bias rounds otherwise, and
            # a chaotic model (a ResNet under Adam) amplifies that to a flipped prediction.
            out = out + bias.flatten().view(-1, *([1] * (out.dim() - 2)))
        return channels_unfolded(out, members)


class StackedBatchNorm(StackedLayer):
    tensor_names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.momentum, self.eps = layer.momentum, layer.eps

    @classmethod
    def accepts(cls, layer: nn.Module) -> bool:
        # A cumulative average (momentum None) weighs by each member's own count: not one op.
        return layer.momentum is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members = x.shape[0]
        mean, var, count = self.tensors["running_mean"], self.tensors["running_var"], self.tensors["num_batches_tracked"]
        tracked = mean is not None
        if self.training and count is not None:
            count.add_(1)
        weight, bias = self.tensors["weight"], self.tensors["bias"]
        out = F.batch_norm(channels_folded(x), mean.view(-1) if tracked else None, var.view(-1) if tracked else None,
                           None if weight is None else weight.flatten(), None if bias is None else bias.flatten(),
                           self.training or not tracked, self.momentum, self.eps)
        return channels_unfolded(out, members)


class StackedPerSample(StackedLayer):
    """A layer without tensors that treats each sample's channels alike (a pool): every member's
    samples as one batch, in whichever layout needs no copy."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, batch = x.shape[:2]
        if x.transpose(0, 1).is_contiguous():  # a convolution's layout
            return channels_unfolded(self.layer(channels_folded(x)), members)
        out = self.layer(x.reshape(members * batch, *x.shape[2:]))
        return out.view(members, batch, *out.shape[1:])


class StackedMaxPool1d(StackedPerSample):
    """Max pooling over disjoint windows (kernel = stride, no padding) as a max over each
    window: the same values, and backward sends each window's gradient to its maximum's index
    as max pooling does. On a CPU `max_pool1d` with gradients goes through a 2-d pooling kernel:
    forward and backward take 1.6 times as long (measured on the MNIST-1D CNN's shapes)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        # Other max pools run as themselves (`StackedPerSample`).
        self.window = _single(layer.kernel_size) if disjoint_windows(layer) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.window is None or not torch.is_grad_enabled():
            return super().forward(x)
        length = x.shape[-1] // self.window * self.window
        return x[..., :length].unflatten(-1, (-1, self.window)).max(dim=-1).values


def disjoint_windows(layer: nn.Module) -> bool:
    """Whether a MaxPool1d's windows tile its input: every one a plain max of its own values."""
    return (_single(layer.kernel_size) == _single(layer.stride) and _single(layer.padding) == 0
            and _single(layer.dilation) == 1 and not layer.ceil_mode and not layer.return_indices)


def _single(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


class StackedFlatten(StackedLayer):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.start, self.end = layer.start_dim, layer.end_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The sample's dimensions move one to the right; negative ones stay where they are.
        return x.flatten(self.start + 1 if self.start >= 0 else self.start, self.end + 1 if self.end >= 0 else self.end)


class StackedDropout(StackedLayer):
    """Each member at its own rate (MemberDropout's buffer), each drawing its own masks."""

    tensor_names = (RATE,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return dropped(x, self.tensors[RATE].view(-1, *([1] * (x.dim() - 1))))


class Unchanged(StackedLayer):
    """An element-wise layer: the members' stacked activations are just a larger input."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


STACKED_LAYERS: dict[type[nn.Module], type[StackedLayer]] = {
    nn.Linear: StackedLinear,
    nn.Conv1d: StackedConv,
    nn.Conv2d: StackedConv,
    nn.BatchNorm1d: StackedBatchNorm,
    nn.BatchNorm2d: StackedBatchNorm,
    nn.MaxPool1d: StackedMaxPool1d,
    nn.MaxPool2d: StackedPerSample,
    nn.AvgPool1d: StackedPerSample,
    nn.AvgPool2d: StackedPerSample,
    nn.AdaptiveAvgPool1d: StackedPerSample,
    nn.AdaptiveAvgPool2d: StackedPerSample,
    nn.Flatten: StackedFlatten,
    MemberDropout: StackedDropout,
    nn.ReLU: Unchanged,
    nn.Tanh: Unchanged,
    nn.Sigmoid: Unchanged,
    nn.LeakyReLU: Unchanged,
    nn.GELU: Unchanged,
    nn.Identity: Unchanged,
}


def stacked_kinds() -> dict[type[nn.Module], type[StackedLayer]]:
    """Every layer's stacked kind: STACKED_LAYERS and the recurrent layers' (`stacked_recurrent`,
    imported here and not at the top: it imports this module)."""
    from tunelab.fusion.stacked_recurrent import RECURRENT_LAYERS

    return {**STACKED_LAYERS, **RECURRENT_LAYERS}


def layout_agnostic_containers() -> tuple[type[nn.Module], ...]:
    """Containers whose own forward only calls their children, adds, reshapes the last
    dimension, and transposes or indexes dimensions counted from the right: they run stacked
    layers unchanged (read before adding one here). The RNN indexes its recurrent layer's h_n
    from the right, which the stacked recurrent layer returns with the members first."""
    from tunelab_models.activations import Maxout
    from tunelab_models.cnn import CNN
    from tunelab_models.mlp import MLP
    from tunelab_models.resnet import ResidualBlock, ResNet
    from tunelab_models.rnn import RNN

    return nn.Sequential, MLP, CNN, ResNet, ResidualBlock, Maxout, RNN


class StackedModel:
    """The model for every member at once: `model(params, buffers, x)` with x of shape
    (members, batch, ...) and each member's tensors stacked, as vmap(functional_call) takes them."""

    def __init__(self, root: nn.Module, layers: dict[str, StackedLayer]) -> None:
        self.root, self.layers = root, layers

    def __call__(self, params: Tensors, buffers: Tensors, x: torch.Tensor) -> torch.Tensor:
        tensors = {**params, **buffers}
        for name, layer in self.layers.items():
            layer.bind(tensors, f"{name}." if name else "")
        return self.root(x)

    def train(self, mode: bool = True) -> None:
        self.root.train(mode)

    def transposed_parameters(self) -> frozenset[str]:
        """Parameters whose gradient autograd computes transposed (`FlatLayout.transposed`)."""
        return frozenset(f"{name}.{tensor}" if name else tensor for name, layer in self.layers.items()
                         for tensor in layer.transposed_names())


def stacked_model(model: nn.Module) -> StackedModel | None:
    """The stacked version of `model` (its copy: the model is left alone), or None when a part of
    it is not known to stack."""
    containers, kinds = layout_agnostic_containers(), stacked_kinds()
    root = copy.deepcopy(model)
    layers: dict[str, StackedLayer] = {}
    for name, module in list(root.named_modules()):
        if any(name.startswith(f"{replaced}.") for replaced in layers):
            continue  # inside a replaced layer (none have children today)
        kind = kinds.get(type(module))
        if kind is None:
            if type(module) in containers:
                continue
            return None
        if not kind.accepts(module):
            return None
        layers[name] = kind(module)
        if not name:
            root = layers[name]
        else:
            parent_name, _, child = name.rpartition(".")
            setattr(root.get_submodule(parent_name) if parent_name else root, child, layers[name])
    return StackedModel(root, layers)
