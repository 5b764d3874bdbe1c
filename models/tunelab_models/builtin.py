"""The built-in models' declarations, and the words their hyperparameters share.

Light on purpose: the registry, the experiment-file checks and `tunelab validate` read these
without loading PyTorch. Each network module (mlp.py, cnn.py, ...) builds from its declaration.
"""

from __future__ import annotations

from tunelab_models.declaration import ModelDeclaration
from tunelab_models.params import Param

ELEMENTWISE_ACTIVATION_NAMES: tuple[str, ...] = ("relu", "tanh", "sigmoid", "leaky_relu", "gelu")
# maxout is not an elementwise function: a maxout unit takes the max over k linear pieces, so it
# replaces the Linear + activation pair. Layers whose units are not plain vectors (conv
# channels, residual sums) have no natural maxout form: they take the elementwise ones only.
ACTIVATION_NAMES: tuple[str, ...] = (*ELEMENTWISE_ACTIVATION_NAMES, "maxout")
INIT_SCHEMES: tuple[str, ...] = ("default", "zeros", "normal", "xavier", "he")
RECURRENT_CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
# Per-sample input ranks with a convolution: 2 sequences (channels, steps), 3 images (channels, h, w).
SPATIAL_RANKS: frozenset[int] = frozenset({2, 3})

# Every model declares these two, so init is tunable the same way everywhere.
INIT_PARAMS: tuple[Param, ...] = (
    Param("init", str, "default", "weight initialisation scheme (recurrent matrices included)", choices=INIT_SCHEMES),
    Param("init_std", float, 0.01, "standard deviation for init: normal", low=0.0, high=10.0),
)

_INPUT_KINDS = {1: "a feature vector", 2: "a sequence", 3: "an image"}


def describe_input(input_shape: tuple[int, ...]) -> str:
    """A per-sample shape in words, for messages: 'a feature vector of shape (2,)'."""
    kind = _INPUT_KINDS.get(len(input_shape), f"a rank-{len(input_shape)} input")
    return f"{kind} of shape {tuple(input_shape)}"


def _spatial_inputs(name: str):  # type: ignore[no-untyped-def]
    def problem(input_shape: tuple[int, ...]) -> str | None:
        if len(input_shape) in SPATIAL_RANKS:
            return None
        return (f"{name} needs sequence (channels, steps) or image (channels, height, width) inputs; "
                f"got {describe_input(input_shape)}")

    return problem


def _resnet_inputs(input_shape: tuple[int, ...]) -> str | None:
    if len(input_shape) == 1 or len(input_shape) in SPATIAL_RANKS:
        return None
    return ("resnet needs feature vector (features,), sequence (channels, steps) or image "
            f"(channels, height, width) inputs; got {describe_input(input_shape)}")


def _sequence_inputs(input_shape: tuple[int, ...]) -> str | None:
    if len(input_shape) == 2:
        return None
    return f"rnn needs sequence (channels, steps) inputs; got {describe_input(input_shape)}"


MLP = ModelDeclaration(
    name="mlp",
    network="tunelab_models.mlp:MLP",
    hyperparameters=(
        Param("depth", int, 2, "number of hidden layers", low=0, high=64),
        Param("width", int, 128, "units per hidden layer", low=1, high=65536),
        Param("activation", str, "relu", "hidden-layer nonlinearity", choices=ACTIVATION_NAMES),
        Param("maxout_pieces", int, 2, "linear pieces per maxout unit", low=2, high=16),
        Param("dropout", float, 0.0, "drop probability after each hidden layer", low=0.0, high=1.0, high_exclusive=True),
        Param("batch_norm", bool, False, "batch normalisation before each activation"),
        *INIT_PARAMS,
    ),
)

AUTOENCODER = ModelDeclaration(
    name="autoencoder",
    network="tunelab_models.autoencoder:Autoencoder",
    tasks=frozenset({"reconstruction"}),
    learns_inputs=True,
    hyperparameters=(
        Param("depth", int, 1, "hidden layers of the encoder (the decoder has as many)", low=0, high=8),
        Param("width", int, 128, "units per hidden layer", low=1, high=65536),
        Param("bottleneck", int, 16, "size of the code", low=1, high=65536),
        Param("activation", str, "relu", "hidden-layer nonlinearity", choices=ACTIVATION_NAMES),
        Param("maxout_pieces", int, 2, "linear pieces per maxout unit", low=2, high=16),
        Param("batch_norm", bool, False, "batch normalisation before each hidden activation"),
        *INIT_PARAMS,
    ),
)

CNN = ModelDeclaration(
    name="cnn",
    network="tunelab_models.cnn:CNN",
    input_problem=_spatial_inputs("cnn"),
    hyperparameters=(
        Param("blocks", int, 2, "number of conv blocks", low=1, high=8),
        Param("channels", int, 32, "channels of every conv block (constant across blocks)", low=1, high=1024),
        Param("kernel_size", int, 3, "odd kernel size; 'same' padding keeps the size", choices=tuple(range(1, 16, 2))),
        Param(
            "pooling", str, "max", "downsampling by 2 after each block while the size stays >= 2",
            choices=("max", "avg", "none"),
        ),
        Param("batch_norm", bool, False, "batch normalisation between each conv and its activation"),
        Param("dropout", float, 0.0, "drop probability (elementwise) after each block", low=0.0, high=1.0,
              high_exclusive=True),
        Param("activation", str, "relu", "nonlinearity after each conv", choices=ELEMENTWISE_ACTIVATION_NAMES),
        *INIT_PARAMS,
    ),
)

RESNET = ModelDeclaration(
    name="resnet",
    network="tunelab_models.resnet:ResNet",
    input_problem=_resnet_inputs,
    hyperparameters=(
        Param("depth", int, 4, "number of residual blocks (two layers each)", low=1, high=64),
        Param("width", int, 32, "units (vectors) or channels (sequences, images) of every block", low=1, high=4096),
        Param("skip", bool, True, "identity paths; false gives the same network without them (a plain net)"),
        Param("batch_norm", bool, True, "batch normalisation after each layer, before the activation and the sum"),
        Param("activation", str, "relu", "nonlinearity in the stem and blocks", choices=ELEMENTWISE_ACTIVATION_NAMES),
        *INIT_PARAMS,
    ),
)

RNN = ModelDeclaration(
    name="rnn",
    network="tunelab_models.rnn:RNN",
    input_problem=_sequence_inputs,
    hyperparameters=(
        Param("cell", str, "lstm", "recurrent cell: rnn (Elman, tanh), lstm or gru", choices=RECURRENT_CELLS),
        Param("hidden_size", int, 64, "hidden units per layer and direction", low=1, high=4096),
        Param("num_layers", int, 1, "stacked recurrent layers", low=1, high=8),
        Param("dropout", float, 0.0, "drop probability between stacked layers (none when num_layers is 1)",
              low=0.0, high=1.0, high_exclusive=True),
        Param("bidirectional", bool, False, "also read each sequence backwards; the head sees both directions"),
        *INIT_PARAMS,
    ),
)

BUILT_IN_MODELS: tuple[ModelDeclaration, ...] = (MLP, AUTOENCODER, CNN, RESNET, RNN)
