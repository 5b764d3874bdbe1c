"""Every model × every built-in data set, on real data: it fits one batch, or the
experiment file is refused before anything runs."""

from __future__ import annotations


import pytest
import torch

from tunelab_models import build_model, get_model, model_names, model_signature

from tunelab.datasets import Splits, dataset_names, get_dataset, load_splits, resolve_dataset_params
from tunelab.training.tasks import TASKS
from user_data import small_file_params

SMALL = {
    "digits": {},
    "mnist1d": {"num_samples": 300},
    "moons": {"n_samples": 200},
    "classification": {"n_samples": 200, "n_features": 8, "n_informative": 4},
    "regression": {"n_samples": 200},
    "adding": {"n_samples": 200, "sequence_length": 12},
    **small_file_params(),  # a user's table, arrays and image folder, written by the test
}
SMALL_MODELS = {
    "mlp": {"width": 32},
    "cnn": {"channels": 8},
    "resnet": {"width": 16, "depth": 2},
    "rnn": {"hidden_size": 16},
    "autoencoder": {"width": 32, "bottleneck": 8},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Splits]:
    import os

    os.environ["TUNELAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    return {name: load_splits(name, SMALL[name], 0.2, 0.2, seed=0) for name in dataset_names()}


def test_the_tables_cover_every_registered_model_and_data_set() -> None:
    assert sorted(SMALL) == dataset_names() and sorted(SMALL_MODELS) == model_names()


@pytest.mark.parametrize("dataset", sorted(SMALL))
@pytest.mark.parametrize("model", sorted(SMALL_MODELS))
def test_model_fits_one_real_batch_or_is_refused(model: str, dataset: str, data: dict[str, Splits]) -> None:
    declared_shape = get_dataset(dataset).input_shape(resolve_dataset_params(dataset, SMALL[dataset]))
    declared_shape = declared_shape or data[dataset].input_shape  # a user's files tell theirs once read
    reason = get_model(model).unsupported_reason(declared_shape)
    if reason is not None:
        assert model in reason  # the refusal names the model and what it needs
        return
    split = data[dataset]
    signature = model_signature(model, split.input_shape, split.task, split.num_outputs)
    task = TASKS[signature.task]
    torch.manual_seed(0)
    net = build_model(model, SMALL_MODELS[model], signature)
    x = torch.tensor(split.train_x[:16])
    y = task.targets(x, torch.tensor(split.train_y[:16], dtype=task.target_dtype()))

    outputs = net(x)
    expected = (16, *split.input_shape) if signature.task == "reconstruction" else (16, split.num_outputs)
    assert tuple(outputs.shape) == expected

    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    first = task.loss(net(x), y).item()
    for _ in range(100):
        optimizer.zero_grad()
        loss = task.loss(net(x), y)
        loss.backward()
        optimizer.step()
    net.eval()
    assert task.loss(net(x), y).item() < 0.5 * first
