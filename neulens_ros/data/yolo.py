"""YOLO-format detection data sets: read (with checks) and write.

Layout:
    data.yaml          names: [cube, ball, cone]   (a list, or a mapping index -> name)
    classes.txt        one class name per line, read when there is no data.yaml
    images/000000.png  colour images (.png, .jpg, .jpeg, .bmp; sub-folders allowed)
    labels/000000.txt  one line per box: `class cx cy width height`, normalised to 0..1

The label file of images/<path>/<stem>.<ext> is labels/<path>/<stem>.txt. An image without a
label file has no objects (YOLO's convention); a label file without an image is a bad entry.
Class ids are the class indices 0..n-1. YOLO has no depth or intrinsics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from neulens_ros.data.annotated import (AnnotatedImage, DetectionDataset, Problems,
                                        checked_box, image_size)
from neulens_ros.errors import DataError

SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')


def class_names(folder: Path) -> tuple[str, ...]:
    """The class names of a YOLO folder, from data.yaml's `names` or classes.txt."""
    data_yaml, classes_txt = folder / 'data.yaml', folder / 'classes.txt'
    if data_yaml.is_file():
        try:
            names = (yaml.safe_load(data_yaml.read_text()) or {}).get('names')
        except (yaml.YAMLError, AttributeError) as exc:
            raise DataError(f'{data_yaml}: not a YAML mapping ({exc})') from exc
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            names = [names[i] for i in range(len(names))]
        if not isinstance(names, list) or not names:
            raise DataError(f'{data_yaml}: `names` must be a non-empty list of class names or '
                            f'a mapping 0..n-1 -> name, got {names!r}')
        return tuple(str(n) for n in names)
    if classes_txt.is_file():
        names = [line.strip() for line in classes_txt.read_text().splitlines()]
        if not names or not all(names):
            raise DataError(f'{classes_txt}: needs one non-empty class name per line')
        return tuple(names)
    raise DataError(f'{folder}: a YOLO data set names its classes in data.yaml (names: [...]) '
                    'or classes.txt (one per line); neither is there')


def parse_line(line: str, classes: int, size: tuple[int, int]) -> tuple[int, np.ndarray] | str:
    """(class, [4] x0 y0 x1 y1 pixels) of one label line, or what is wrong with it."""
    fields = line.split()
    if len(fields) != 5:
        return f'has {len(fields)} fields, expected 5 (class cx cy width height)'
    try:
        cls = int(fields[0])
        cx, cy, w, h = (float(v) for v in fields[1:])
    except ValueError:
        return 'is not an integer class and four numbers'
    if not 0 <= cls < classes:
        return f'has class {cls}, not one of the {classes} classes 0..{classes - 1}'
    width, height = size
    box = checked_box([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                       (cy + h / 2) * height], size)
    return f'box {box}' if isinstance(box, str) else (cls, box)


def read_yolo(folder: Path, skip_bad: bool = False) -> DetectionDataset:
    """The data set of a YOLO folder, checked line by line."""
    folder = Path(folder)
    images_dir, labels_dir = folder / 'images', folder / 'labels'
    if not images_dir.is_dir():
        raise DataError(f'{folder}: a YOLO data set has an images/ folder (and labels/)')
    names = class_names(folder)
    problems = Problems(skip_bad)
    paths = sorted(p for p in images_dir.rglob('*') if p.suffix.lower() in SUFFIXES)
    labels: dict[Path, Path] = {}
    for path in paths:
        label = labels_dir / path.relative_to(images_dir).with_suffix('.txt')
        if label in labels:
            raise DataError(f'{folder}: images {labels[label].name} and {path.name} share the '
                            f'label file {label}: duplicate image name')
        labels[label] = path
    if labels_dir.is_dir():
        for orphan in sorted(set(labels_dir.rglob('*.txt')) - set(labels)):
            problems.bad(f'{orphan}: label file without an image in {images_dir}')
    read = [_image(path, label, len(names), problems) for label, path in labels.items()]
    return DetectionDataset(folder, 'yolo', names, tuple(range(len(names))),
                            tuple(image for image in read if image is not None),
                            tuple(problems.skipped))


def _image(path: Path, label: Path, classes: int, problems: Problems
           ) -> AnnotatedImage | None:
    """One image with its label file; None when skipped (recorded in `problems`)."""
    size = image_size(path)
    if isinstance(size, str):
        problems.bad(f'{path}: image is {size}')
        return None
    lines = label.read_text().splitlines() if label.is_file() else []
    boxes, labels = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parsed = parse_line(line, classes, size)
        if isinstance(parsed, str):
            problems.bad(f'{label}:{number}: {line.strip()!r} {parsed}')
            continue
        labels.append(parsed[0])
        boxes.append(parsed[1])
    return AnnotatedImage(path, size, np.array(boxes, np.float64).reshape(-1, 4),
                          np.array(labels, np.int64))


class YoloWriter:
    """Writes a YOLO data set folder (module docstring), one image at a time."""

    def __init__(self, folder: Path, class_names: tuple[str, ...], class_ids: tuple[int, ...]
                 ) -> None:
        if tuple(class_ids) != tuple(range(len(class_names))):
            raise DataError(f'YOLO class ids are the indices 0..{len(class_names) - 1}, got '
                            f'{list(class_ids)}')
        self.folder = Path(folder)
        for sub in ('images', 'labels'):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.names = class_names
        self.count = 0

    def add(self, rgb: np.ndarray, boxes: np.ndarray, classes: np.ndarray, **_: Any) -> None:
        """One image: rgb [H, W, 3] uint8, boxes [M, 4] x0 y0 x1 y1 pixels, classes [M]
        (depth and camera are not part of the format)."""
        stem = f'{self.count:06d}'
        Image.fromarray(rgb).save(self.folder / 'images' / f'{stem}.png', compress_level=1)
        height, width = rgb.shape[:2]
        lines = [f'{int(c)} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} '
                 f'{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}'
                 for (x0, y0, x1, y1), c in zip(boxes, classes, strict=True)]
        (self.folder / 'labels' / f'{stem}.txt').write_text(''.join(f'{s}\n' for s in lines))
        self.count += 1

    def close(self) -> Path:
        """Write data.yaml; returns the folder."""
        (self.folder / 'data.yaml').write_text(yaml.safe_dump(
            {'path': '.', 'train': 'images', 'val': 'images', 'nc': len(self.names),
             'names': list(self.names)}, sort_keys=False))
        return self.folder
