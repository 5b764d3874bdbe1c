"""Bias–variance decompositions of a matrix of predictions (rounds × test points).

Plain numpy: the retraining that produces the predictions lives elsewhere, so these
functions are checked against independent references on fixed inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Decomposition:
    """Averages over the test points. Fields a loss does not have are NaN.

    Squared error: expected_loss = bias + variance exactly, where `bias` is the squared bias
    against the observed targets (it contains the noise). Where the data set knows its clean
    targets, `bias_clean` is the squared bias against them and `noise` the noise variance, so
    expected_loss ≈ bias_clean + variance + noise.

    0-1 loss (Domingos 2000): `bias` is the share of points whose main prediction (the most
    frequent one) is wrong; `variance` is the average disagreement with the main prediction,
    split into the part on unbiased points (`variance_unbiased`, it adds to the error) and on
    biased points (`variance_biased`, it can remove error). `net_variance` applies Domingos'
    coefficient: on a biased point variance removes error only when a round guesses the true
    class (c2 = −P(y = ŷ | ŷ ≠ main)), so expected_loss = bias + net_variance exactly, for any
    number of classes (for two classes net_variance = unbiased − biased).
    """

    loss: str
    rounds: int
    points: int
    expected_loss: float
    bias: float
    variance: float
    bias_clean: float = float("nan")
    noise: float = float("nan")
    variance_unbiased: float = float("nan")
    variance_biased: float = float("nan")
    net_variance: float = float("nan")
    cross_entropy: float = float("nan")

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def describe(row: dict[str, object]) -> str:
    """One line with the identity that holds for this decomposition's loss."""
    f = {k: v for k, v in row.items() if isinstance(v, float)}
    if row["loss"] == "zero_one":
        return (f"expected 0-1 loss {f['expected_loss']:.4g} = bias {f['bias']:.4g} + net variance "
                f"{f['net_variance']:.4g} (variance {f['variance']:.4g}: {f['variance_unbiased']:.4g} on unbiased "
                f"points, {f['variance_biased']:.4g} on biased ones); cross-entropy {f['cross_entropy']:.4g}")
    if f.get("noise") == f.get("noise"):  # not NaN: the data set knows its clean targets
        return (f"expected squared error {f['expected_loss']:.4g} ≈ bias² {f['bias_clean']:.4g} + variance "
                f"{f['variance']:.4g} + noise {f['noise']:.4g}")
    return f"expected squared error {f['expected_loss']:.4g} = bias² {f['bias']:.4g} + variance {f['variance']:.4g}"


def squared_error_decomposition(
    predictions: np.ndarray,
    targets: np.ndarray,
    clean_targets: np.ndarray | None = None,
    noise_variance: float | None = None,
) -> Decomposition:
    """`predictions` (rounds, points[, outputs]); `targets` (points[, outputs])."""
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64).reshape(predictions.shape[1:])
    rounds, points = predictions.shape[:2]
    main = predictions.mean(axis=0)
    expected_loss = float(((predictions - targets) ** 2).mean())
    bias = float(((main - targets) ** 2).mean())
    variance = float(((predictions - main) ** 2).mean())
    bias_clean = float("nan")
    if clean_targets is not None:
        clean = np.asarray(clean_targets, dtype=np.float64).reshape(targets.shape)
        bias_clean = float(((main - clean) ** 2).mean())
    return Decomposition(
        loss="squared_error",
        rounds=rounds,
        points=points,
        expected_loss=expected_loss,
        bias=bias,
        variance=variance,
        bias_clean=bias_clean,
        noise=float("nan") if noise_variance is None else float(noise_variance),
    )


def zero_one_decomposition(
    predicted_labels: np.ndarray, labels: np.ndarray, probabilities: np.ndarray | None = None
) -> Decomposition:
    """`predicted_labels` (rounds, points) of ints; `probabilities` (rounds, points, classes)."""
    predicted = np.asarray(predicted_labels, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    rounds, points = predicted.shape
    main = main_prediction(predicted)
    disagreement = (predicted != main).mean(axis=0)  # per point
    biased = main != labels
    # On a biased point the error a round removes is the chance it predicts the true class.
    removed = (predicted == labels).mean(axis=0)
    cross_entropy = float("nan")
    if probabilities is not None:
        picked = np.take_along_axis(np.asarray(probabilities, dtype=np.float64), labels[None, :, None], axis=2)
        cross_entropy = float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
    variance_unbiased = float(disagreement[~biased].sum() / points)
    variance_biased = float(disagreement[biased].sum() / points)
    return Decomposition(
        loss="zero_one",
        rounds=rounds,
        points=points,
        expected_loss=float((predicted != labels).mean()),
        bias=float(biased.mean()),
        variance=float(disagreement.mean()),
        variance_unbiased=variance_unbiased,
        variance_biased=variance_biased,
        net_variance=variance_unbiased - float(removed[biased].sum() / points),
        cross_entropy=cross_entropy,
    )


def main_prediction(predicted: np.ndarray) -> np.ndarray:
    """The most frequent label per point; ties go to the smallest label."""
    num_classes = int(predicted.max()) + 1
    counts = np.zeros((num_classes, predicted.shape[1]), dtype=np.int64)
    for row in predicted:
        counts[row, np.arange(predicted.shape[1])] += 1
    return counts.argmax(axis=0)
