"""COCO-format detection data sets: read (with checks) and write.

Layout (what `CocoWriter` writes; `read_coco` takes the folder or the JSON file):
    annotations/instances.json   COCO instances: images, annotations, categories
    images/000000.png            colour images (any size, any format Pillow reads)
    images/000000_depth.png      optional depth, 16-bit PNG millimetres (0 = none)

Image files (`file_name`, `depth_file`) are relative to the image folder: `images/` next to
`annotations/` (or next to the JSON file) when it exists, else the JSON file's folder.
Two optional keys of an image entry, beyond COCO's:
    depth_file   depth image of the same size as the colour image
    camera_K     row-major 3x3 intrinsics (9 numbers, as sensor_msgs/CameraInfo.k)
Category ids may be any integers: the categories sorted by id are the training indices.
Annotations with `iscrowd` 1 mark groups, not objects: they are always skipped and listed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from neulens_ros.bridge.image import depth_to_millimetres
from neulens_ros.data.annotated import (AnnotatedImage, DetectionDataset, Problems,
                                        camera_from_k, checked_box, depth_problem, image_size)
from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import DataError

ANNOTATIONS = Path('annotations') / 'instances.json'
SINGULAR = {'images': 'image', 'annotations': 'annotation', 'categories': 'category'}


def annotation_file(path: Path) -> Path:
    """The instances JSON of a COCO data set given as the file or its folder."""
    if path.is_file():
        return path
    candidates = sorted((path / 'annotations').glob('instances*.json')) if path.is_dir() \
        else []
    if len(candidates) != 1:
        found = ', '.join(c.name for c in candidates) or 'none'
        raise DataError(f'{path}: a COCO data set is an instances JSON file or a folder with '
                        f'exactly one annotations/instances*.json (found {found})')
    return candidates[0]


def image_root(json_path: Path) -> Path:
    """The folder the image entries' file names are relative to."""
    base = json_path.parent.parent if json_path.parent.name == 'annotations' \
        else json_path.parent
    return base / 'images' if (base / 'images').is_dir() else json_path.parent


def _entries(doc: Any, key: str, json_path: Path, fields: dict[str, type]
             ) -> list[dict[str, Any]]:
    """doc[key], checked: a list of objects with `fields` of the given types; ids unique."""
    entries = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise DataError(f'{json_path}: no {key!r} list (is it a COCO instances file?)')
    seen: set[Any] = set()
    for n, entry in enumerate(entries):
        wrong = [f for f, kind in fields.items()
                 if not isinstance(entry, dict) or not isinstance(entry.get(f), kind)
                 or isinstance(entry.get(f), bool)]
        if wrong:
            raise DataError(f'{json_path}: {key}[{n}] lacks or mistypes {", ".join(wrong)} '
                            f'(expected {", ".join(t.__name__ for t in fields.values())})')
        if entry['id'] in seen:
            raise DataError(f'{json_path}: duplicate {SINGULAR[key]} id {entry["id"]} '
                            f'({key}[{n}])')
        seen.add(entry['id'])
    return entries


def read_coco(path: Path, skip_bad: bool = False) -> DetectionDataset:
    """The data set of a COCO instances file (or its folder), checked entry by entry."""
    json_path = annotation_file(Path(path))
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f'{json_path}: cannot be read as JSON ({exc})') from exc
    categories = sorted(_entries(doc, 'categories', json_path, {'id': int, 'name': str}),
                        key=lambda c: c['id'])
    index = {c['id']: i for i, c in enumerate(categories)}
    images = _entries(doc, 'images', json_path,
                      {'id': int, 'file_name': str, 'width': int, 'height': int})
    annotations = _entries(doc, 'annotations', json_path,
                           {'id': int, 'image_id': int, 'category_id': int, 'bbox': list})
    problems = Problems(skip_bad)
    image_ids = {image['id'] for image in images}
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in annotations:
        where = f'{json_path}: annotation id {ann["id"]}'
        if ann['image_id'] not in image_ids:
            problems.bad(f'{where} refers to unknown image id {ann["image_id"]}')
        elif ann['category_id'] not in index:
            problems.bad(f'{where} has unknown category id {ann["category_id"]} (categories: '
                         f'{sorted(index)})')
        elif ann.get('iscrowd', 0):
            problems.skipped.append(f'{where} is a crowd region (iscrowd 1)')
        else:
            by_image[ann['image_id']].append(ann)
    root = image_root(json_path)
    read = [_image(entry, by_image[entry['id']], root, index, json_path, problems)
            for entry in images]
    return DetectionDataset(json_path, 'coco', tuple(c['name'] for c in categories),
                            tuple(c['id'] for c in categories),
                            tuple(image for image in read if image is not None),
                            tuple(problems.skipped))


def _image(entry: dict[str, Any], annotations: list[dict[str, Any]], root: Path,
           index: dict[int, int], json_path: Path, problems: Problems
           ) -> AnnotatedImage | None:
    """One image entry with its annotations; None when skipped (recorded in `problems`)."""
    where = f'{json_path}: image id {entry["id"]} ({entry["file_name"]})'
    dropped = f' (skipped with its {len(annotations)} annotations)' if annotations else ''
    path = root / entry['file_name']
    size = image_size(path)
    if isinstance(size, str):
        problems.bad(f'{where}: image file {path} is {size}{dropped}')
        return None
    if size != (entry['width'], entry['height']):
        problems.bad(f'{where}: the entry says {entry["width"]}x{entry["height"]}, the file '
                     f'is {size[0]}x{size[1]}{dropped}')
        return None
    depth = root / entry['depth_file'] if 'depth_file' in entry else None
    wrong_depth = depth_problem(depth, size) if depth is not None else None
    if wrong_depth:
        problems.bad(f'{where}: {wrong_depth}{dropped}')
        return None
    camera = camera_from_k(entry['camera_K'], size) if 'camera_K' in entry else None
    if isinstance(camera, str):
        problems.bad(f'{where}: {camera}{dropped}')
        return None
    boxes, classes = [], []
    for ann in annotations:
        box = ann['bbox']
        checked = checked_box([box[0], box[1], box[0] + box[2], box[1] + box[3]], size) \
            if len(box) == 4 and all(isinstance(v, (int, float)) for v in box) \
            else f'is not [x, y, width, height]: {box!r}'
        if isinstance(checked, str):
            problems.bad(f'{json_path}: annotation id {ann["id"]} (image id {entry["id"]}): '
                         f'bbox {checked}')
            continue
        boxes.append(checked)
        classes.append(index[ann['category_id']])
    return AnnotatedImage(path, size, np.array(boxes, np.float64).reshape(-1, 4),
                          np.array(classes, np.int64), depth, camera)


class CocoWriter:
    """Writes a COCO data set folder (module docstring), one image at a time."""

    def __init__(self, folder: Path, class_names: tuple[str, ...], class_ids: tuple[int, ...]
                 ) -> None:
        self.folder = Path(folder)
        (self.folder / 'images').mkdir(parents=True, exist_ok=True)
        self.class_ids = class_ids
        self.doc: dict[str, list[dict[str, Any]]] = {
            'images': [], 'annotations': [],
            'categories': [{'id': i, 'name': n, 'supercategory': 'object'}
                           for i, n in zip(class_ids, class_names, strict=True)]}

    def add(self, rgb: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
            depth_m: np.ndarray | None = None, camera: PinholeCamera | None = None) -> None:
        """One image: rgb [H, W, 3] uint8, boxes [M, 4] x0 y0 x1 y1 pixels, classes [M]
        training indices, depth [H, W] float32 metres (NaN = none), its camera."""
        number = len(self.doc['images'])
        entry: dict[str, Any] = {'id': number + 1, 'file_name': f'{number:06d}.png',
                                 'width': rgb.shape[1], 'height': rgb.shape[0]}
        Image.fromarray(rgb).save(self.folder / 'images' / entry['file_name'],
                                  compress_level=1)
        if depth_m is not None:
            entry['depth_file'] = f'{number:06d}_depth.png'
            Image.fromarray(depth_to_millimetres(depth_m)).save(
                self.folder / 'images' / entry['depth_file'], compress_level=1)
        if camera is not None:
            entry['camera_K'] = [camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy,
                                 0.0, 0.0, 1.0]
        self.doc['images'].append(entry)
        for box, cls in zip(boxes, classes, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            self.doc['annotations'].append({
                'id': len(self.doc['annotations']) + 1, 'image_id': entry['id'],
                'category_id': self.class_ids[int(cls)], 'bbox': [x0, y0, x1 - x0, y1 - y0],
                'area': (x1 - x0) * (y1 - y0), 'iscrowd': 0})

    def close(self) -> Path:
        """Write the annotation file; returns its path."""
        path = self.folder / ANNOTATIONS
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.doc))
        return path
