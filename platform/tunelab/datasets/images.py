"""`images`: a folder of PNG/JPEG files, one sub-folder per class (the ImageFolder layout).

With `train/`, `validation/` and `test/` at the top, each holding class folders, those parts
are the split. Images are decoded once with Pillow and cached (`cache.py`) under a key made of
every file's name, size and modification time, so a second study on an unchanged folder reads
one array file; changing, adding or removing an image decodes the folder again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.datasets import cache
from tunelab.datasets.base import FOLD_NAMES, TRAIN, DataSet, GeneratedData
from tunelab.datasets.files import existing_folder, shown
from tunelab.datasets.registry import register
from tunelab.errors import DataError
from tunelab_models.params import Param

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
COLORS = ("auto", "gray", "rgb")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
# Bump when what the cache holds changes, so old files are not misread.
CACHE_FORMAT = 1


@register
class Images(DataSet):
    """Images in class folders, resized to one size and decoded to gray or RGB."""

    name = "images"
    task = "classification"
    path_params = ("path",)
    params = (
        Param("path", str, None, "a folder with one sub-folder per class (or train/validation/test folders of them)"),
        Param("size", list, None, "[height, width] every image is resized to (default: the size they share)"),
        Param("color", str, "auto", "gray or rgb (auto: gray when every file is)", choices=COLORS),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if not params["path"]:
            raise DataError("path", "data set 'images' needs `path`; expected a folder with one sub-folder per class")
        size = params["size"]
        if size is not None and not (
            len(size) == 2 and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 4096 for s in size)
        ):
            raise DataError("size", f"expected [height, width], two integers in [1, 4096], got {size!r}")

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        folder = existing_folder(params["path"], "path").resolve()
        files = _image_files(folder)
        key = {"format": CACHE_FORMAT, "folder": str(folder), "files": cache.file_listing(folder),
               "size": params["size"], "color": params["color"]}
        path = cache.cache_path("images", key)
        stored = cache.read_arrays(path)
        if stored is None or not {"pixels", "labels", "folds", "class_names"} <= stored.keys():
            stored = _decode_folder(folder, files, params["size"], params["color"])
            cache.write_arrays(path, **stored)
        pixels, folds = stored["pixels"], stored["folds"]
        class_names = tuple(str(name) for name in stored["class_names"])
        fixed = [FOLD_NAMES[part] for part in sorted(set(folds.tolist()) - {TRAIN})]
        return GeneratedData(
            x=pixels.astype(np.float32) / 255.0,
            y=stored["labels"],
            num_outputs=len(class_names),
            class_names=class_names,
            fold=folds if fixed else None,
            input_details={"pixel_scale": 255, "size": [pixels.shape[2], pixels.shape[3]],
                           "color": "gray" if pixels.shape[1] == 1 else "rgb"},
            notes=(
                f"{shown(folder)}: {len(pixels)} images of {pixels.shape[1]}×{pixels.shape[2]}×{pixels.shape[3]} "
                f"(channels × height × width) in {len(class_names)} classes ({', '.join(class_names[:10])}"
                f"{', …' if len(class_names) > 10 else ''})" + (f", fixed parts: {', '.join(fixed)}" if fixed else ""),
            ),
        )


def _image_files(folder: Path) -> list[tuple[Path, str, int]]:
    """(file, class name, fold) of every image, in a fixed order."""
    tops = {entry.name for entry in folder.iterdir() if entry.is_dir()}
    parts = [(folder / name, fold) for fold, name in enumerate(FOLD_NAMES) if name in tops]
    if parts and parts[0][0].name != "train":
        raise DataError("path", f"{shown(folder)} has {', '.join(p.name for p, _ in parts)}/ but no train/; expected train/ beside them")
    if not parts:
        parts = [(folder, TRAIN)]
    files: list[tuple[Path, str, int]] = []
    for part, fold in parts:
        loose = [entry.name for entry in part.iterdir() if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES]
        if loose:
            raise DataError("path", f"{shown(part / loose[0])} is not in a class folder; expected one sub-folder per class in {shown(part)}")
        class_folders = sorted(entry for entry in part.iterdir() if entry.is_dir())
        if not class_folders:
            raise DataError("path", f"{shown(part)} has no class folders; expected one sub-folder of images per class")
        for class_folder in class_folders:
            images = sorted(p for p in class_folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise DataError("path", f"class folder {shown(class_folder)} has no PNG or JPEG images; expected at least one")
            files.extend((image, class_folder.name, fold) for image in images)
    return files


def _decode_folder(folder: Path, files: list[tuple[Path, str, int]], size: list[int] | None, color: str) -> dict[str, np.ndarray]:
    from PIL import Image

    headers = [_header(Image, path) for path, _, _ in files]
    if size is None:
        sizes = Counter(header[0] for header in headers)
        if len(sizes) > 1:
            (common, count), *_ = sizes.most_common()
            listed = ", ".join(f"{h}×{w} ({n} files)" for (h, w), n in sizes.most_common(3))
            raise DataError(
                "size",
                f"images in {shown(folder)} have {len(sizes)} sizes ({listed}{', …' if len(sizes) > 3 else ''}); "
                f"expected `size: [height, width]`, e.g. {list(common)} (the most common)",
            )
        height, width = headers[0][0]
    else:
        height, width = size
    if color == "auto":
        color = "gray" if all(mode in GRAY_MODES for _, mode in headers) else "rgb"
    channels = 1 if color == "gray" else 3
    pixels = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for index, (path, _, _) in enumerate(files):
        decoded = decode_image(Image, path, color, (height, width))
        pixels[index] = decoded[np.newaxis] if channels == 1 else decoded.transpose(2, 0, 1)
    class_names = sorted({name for _, name, _ in files})
    labels = np.array([class_names.index(name) for _, name, _ in files], dtype=np.int64)
    folds = np.array([fold for _, _, fold in files], dtype=np.int8)
    return {"pixels": pixels, "labels": labels, "folds": folds, "class_names": np.array(class_names)}


def _header(image_module: Any, path: Path) -> tuple[tuple[int, int], str]:
    try:
        with image_module.open(path) as image:
            width, height = image.size
            return (height, width), image.mode
    except Exception as exc:  # Pillow raises several kinds for a file that is not an image
        raise DataError("path", f"{shown(path)} is not a readable image ({type(exc).__name__}); expected a PNG or JPEG file") from None


def decode_image(image_module: Any, path: Path, color: str, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 (height, width) for gray or (height, width, 3) for RGB."""
    try:
        with image_module.open(path) as image:
            converted = image.convert("L" if color == "gray" else "RGB")
            if converted.size != (size[1], size[0]):
                converted = converted.resize((size[1], size[0]), image_module.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8)
    except Exception as exc:  # a truncated or corrupt file fails only when its pixels are read
        raise DataError("path", f"{shown(path)} is a corrupt image ({type(exc).__name__}: {exc}); expected a PNG or JPEG file") from None
