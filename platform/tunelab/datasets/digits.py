"""sklearn's bundled 8x8 handwritten digits: small, real, and offline."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.datasets.base import DataSet, GeneratedData
from tunelab.datasets.registry import register

DIGIT_CLASSES = 10


@register
class Digits(DataSet):
    """1797 grey-scale 8x8 images of the digits 0-9, shaped (1, 8, 8) for conv nets."""

    name = "digits"
    task = "classification"
    params = ()

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        return (1, 8, 8)

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        from sklearn.datasets import load_digits  # only where data is generated

        bunch = load_digits()
        images = bunch.images.astype(np.float32)[:, np.newaxis, :, :]
        return GeneratedData(
            x=images,
            y=bunch.target.astype(np.int64),
            num_outputs=DIGIT_CLASSES,
            class_names=tuple(str(digit) for digit in range(DIGIT_CLASSES)),
        )
