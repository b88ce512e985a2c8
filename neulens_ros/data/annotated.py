"""Detection data sets read from disk (COCO or YOLO format, data/coco.py and data/yolo.py):
the type both readers return, the entry checks they share and the train / validation split.

A problem with one entry (a missing image, a bad box, an unknown class, a malformed label
line, a depth image of another size) is an error naming the file and the entry; with
`skip_bad` the entry is skipped instead and its message is listed in `skipped`. Problems
that leave no sensible entry to skip (duplicate ids, an unreadable annotation file, no image
at all) are always errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import ConfigError, DataError, GeometryError
from neulens_ros.models.labels import MAX_CLASS_ID

FORMATS = ('coco', 'yolo')
BOX_TOLERANCE = 1.0  # pixels a box may reach beyond the image (rounding); clipped to it
SKIP_HINT = ' (pass --skip-bad to skip such entries and list them)'


@dataclass(frozen=True)
class AnnotatedImage:
    """One image of a data set with its boxes."""

    path: Path  # the colour image
    size: tuple[int, int]  # width, height in pixels (of the file)
    boxes: np.ndarray  # [M, 4] float64 x0 y0 x1 y1 in the image's pixels
    classes: np.ndarray  # [M] int64 training indices (DetectionDataset.class_names order)
    depth_path: Path | None = None  # 16-bit PNG, millimetres (0 = none), same size
    camera: PinholeCamera | None = None  # intrinsics of the colour (and depth) image


@dataclass(frozen=True)
class DetectionDataset:
    """Images with boxes, and the data set's classes: training index i is class
    `class_names[i]`, whose id in the data set is `class_ids[i]`."""

    source: Path  # the annotation file (COCO) or folder (YOLO)
    format: str  # one of FORMATS
    class_names: tuple[str, ...]
    class_ids: tuple[int, ...]
    images: tuple[AnnotatedImage, ...]
    skipped: tuple[str, ...] = ()  # one message per skipped entry

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f'data set format must be one of {FORMATS}, got {self.format!r}')
        if not self.class_names or len(self.class_names) != len(self.class_ids):
            raise DataError(f'{self.source}: needs at least one class and one id per class '
                            f'name, got {len(self.class_names)} names and '
                            f'{len(self.class_ids)} ids')
        if len(set(self.class_ids)) != len(self.class_ids):
            raise DataError(f'{self.source}: class ids repeat: {list(self.class_ids)}')
        if not all(0 <= i <= MAX_CLASS_ID for i in self.class_ids):
            raise DataError(f'{self.source}: class ids must be in 0..{MAX_CLASS_ID} (the ids '
                            f'the detections carry on the wire), got {list(self.class_ids)}')
        if not self.images:
            skipped = f' ({len(self.skipped)} entries skipped)' if self.skipped else ''
            raise DataError(f'{self.source}: the data set has no images{skipped}')

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int]) -> DetectionDataset:
        """The images `indices`, in that order (same classes; `skipped` is kept)."""
        return replace(self, images=tuple(self.images[int(i)] for i in indices))

    def summary(self) -> str:
        """One line: format, images, boxes, classes, skipped entries."""
        boxes = sum(len(image.classes) for image in self.images)
        return (f'{self.format} data set {self.source}: {len(self)} images, {boxes} boxes, '
                f'{len(self.class_names)} classes, {len(self.skipped)} entries skipped')


def describe_classes(names: Sequence[str], ids: Sequence[int]) -> str:
    """"'cube' (id 1), 'ball' (id 3)": classes for a message."""
    return ', '.join(f'{n!r} (id {i})' for n, i in zip(names, ids, strict=True))


class Problems:
    """Entry problems met while reading one data set: raised at once, or with `skip_bad`
    recorded (the caller then skips the entry)."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[str] = []

    def bad(self, message: str) -> None:
        """An entry cannot be used: DataError (strict) or recorded as skipped."""
        if not self.skip_bad:
            raise DataError(message + SKIP_HINT)
        self.skipped.append(message)


def image_size(path: Path) -> tuple[int, int] | str:
    """(width, height) of an image file (its header only), or what is wrong with it."""
    if not path.is_file():
        return 'not found'
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError) as exc:
        return f'not a readable image ({exc})'


def checked_box(box: Sequence[float], size: tuple[int, int]) -> np.ndarray | str:
    """[4] x0 y0 x1 y1 clipped to the image (it may reach BOX_TOLERANCE px beyond), or what is
    wrong with it: not finite, non-positive size, outside the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    width, height = size
    if not np.all(np.isfinite([x0, y0, x1, y1])):
        return f'has a non-finite coordinate {list(box)}'
    if x1 <= x0 or y1 <= y0:
        return f'has non-positive size {x1 - x0:g} x {y1 - y0:g} (x0 y0 x1 y1 {x0:g} {y0:g} ' \
               f'{x1:g} {y1:g})'
    if x0 < -BOX_TOLERANCE or y0 < -BOX_TOLERANCE or x1 > width + BOX_TOLERANCE \
            or y1 > height + BOX_TOLERANCE:
        return (f'lies outside the {width}x{height} image (x0 y0 x1 y1 {x0:g} {y0:g} {x1:g} '
                f'{y1:g})')
    return np.clip([x0, y0, x1, y1], 0.0, [width, height, width, height])


def depth_problem(depth: Path, size: tuple[int, int]) -> str | None:
    """What is wrong with the depth image of a colour image of `size`, or None."""
    depth_size = image_size(depth)
    if isinstance(depth_size, str):
        return f'depth image {depth} is {depth_size}'
    if depth_size != size:
        return (f'depth image {depth} is {depth_size[0]}x{depth_size[1]}, the colour image '
                f'{size[0]}x{size[1]}')
    return None


def camera_from_k(k: object, size: tuple[int, int]) -> PinholeCamera | str:
    """A camera from a row-major 3x3 K (9 numbers, CameraInfo.k), or what is wrong with K."""
    try:
        values = np.asarray(k, np.float64).reshape(9)
    except (TypeError, ValueError):
        return f'camera_K must be 9 numbers (row-major 3x3), got {k!r}'
    try:
        return PinholeCamera(width=size[0], height=size[1], fx=float(values[0]),
                             fy=float(values[4]), cx=float(values[2]), cy=float(values[5]))
    except GeometryError as exc:
        return f'camera_K {values.tolist()} is not a camera matrix: {exc}'


def split(data: DetectionDataset, val_ratio: float, seed: int
          ) -> tuple[DetectionDataset, DetectionDataset]:
    """(training, validation) parts: round(val_ratio * N) images (at least one, at most N - 1)
    drawn with `seed` validate, the rest train; each part keeps the data set's order."""
    if not 0.0 < val_ratio < 1.0:
        raise ConfigError(f'the validation ratio must be in (0, 1), got {val_ratio}')
    n = len(data)
    if n < 2:
        raise DataError(f'{data.source}: {n} image cannot be split into training and '
                        'validation: give a validation data set instead')
    count = min(n - 1, max(1, round(val_ratio * n)))
    val = np.sort(np.random.default_rng(seed).choice(n, count, replace=False))
    return data.subset(np.setdiff1d(np.arange(n), val)), data.subset(val)
