"""Small files of each kind a user brings (a CSV table, a .npz of arrays, a PNG folder),
written by the tests themselves, each with a learnable signal."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SPECIES = ("heron", "ibis", "stork")


def write_table(folder: Path, rows: int = 300, seed: int = 0, name: str = "birds.csv") -> Path:
    """Three species told apart by wingspan and colour; a categorical `habitat`, a numeric
    `weight` that carries little, and an `id` column (left out of the features by tests that
    need to find rows again)."""
    rng = np.random.default_rng(seed)
    species = rng.choice(SPECIES, size=rows)
    centre = {"heron": 1.0, "ibis": 0.0, "stork": -1.0}
    table = pd.DataFrame(
        {
            "id": np.arange(rows),
            "wingspan": np.array([centre[s] for s in species]) * 2.0 + rng.normal(0, 0.5, rows),
            "habitat": np.where(species == "stork", "field", rng.choice(["marsh", "river"], size=rows)),
            "weight": rng.normal(3.0, 1.0, rows),
            "species": species,
        }
    )
    path = folder / name
    table.to_csv(path, index=False)
    return path


def write_arrays(folder: Path, rows: int = 240, seed: int = 0, name: str = "signals.npz", **extra: np.ndarray) -> Path:
    """Sequences (n, 2 channels, 10 steps) whose class is the sign of the first channel's mean."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2, 10)).astype(np.float32)
    y = (x[:, 0].mean(axis=1) > 0).astype(np.int64)
    x[:, 0] += np.where(y == 1, 0.5, -0.5)[:, None]
    path = folder / name
    np.savez(path, x=x, y=y, **extra)
    return path


def write_images(folder: Path, per_class: int = 30, seed: int = 0, size: tuple[int, int] = (12, 10)) -> Path:
    """Grey PNGs in class folders: `bright_top` images are light in their upper half."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in ("bright_top", "dark_top"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 120, size=size).astype(np.uint8)
            if label == "bright_top":
                pixels[: size[0] // 2] += 120
            Image.fromarray(pixels).save(folder / label / f"{index:03d}.png")
    return folder


_FOLDER: tempfile.TemporaryDirectory[str] | None = None


def small_file_params() -> dict[str, dict[str, Any]]:
    """Parameters of one small data set of each file kind, written once per test process."""
    global _FOLDER
    if _FOLDER is None:
        _FOLDER = tempfile.TemporaryDirectory(prefix="tunelab-user-data-")
        root = Path(_FOLDER.name)
        write_table(root)
        write_arrays(root)
        write_images(root / "images")
    root = Path(_FOLDER.name)
    return {
        "table": {"path": str(root / "birds.csv"), "target": "species", "features": ["wingspan", "habitat", "weight"]},
        "arrays": {"path": str(root / "signals.npz")},
        "images": {"path": str(root / "images")},
    }
