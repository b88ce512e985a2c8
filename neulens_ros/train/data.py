"""Training and evaluation sets: generated scenes or a data set read from disk (COCO or
YOLO, data/formats.py), resized to the detector's input; generated sets are cached.

The pipeline resizes each 640 x 480 camera frame to the network input (256 x 192 by default);
the evaluation set is made exactly that way. The training set is rendered at half resolution
(320 x 240, four times cheaper) and resized the same way. A set of walks (`walk_frames` > 0)
holds `count` continuous sequences (data/walk.py) of `walk_frames` frames each, one after the
other. Each set is rendered once and cached as one .npz (uint8 images, boxes, classes) keyed
by its parameters. Images of a data set read from disk are resized the same way, whatever
their size and aspect (boxes scaled with them).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from multiprocessing import get_context
from typing import Any, Iterator

import numpy as np
from PIL import Image

from neulens_ros.data.annotated import DetectionDataset, describe_classes
from neulens_ros.data.resize import box_resize
from neulens_ros.data.scenes import Scene, SceneConfig, generate_scene, is_labelled
from neulens_ros.data.walk import WalkConfig, walk_scenes
from neulens_ros.errors import DataError

PARALLEL_FRAMES = 64  # smaller sets render in this process (a worker pool takes ~1 s to start)
CHUNK_SEEDS = 8  # seeds a worker renders per task (a walk's frames stay in one task)


@dataclass(frozen=True)
class DataSource:
    """A data set on disk a run trains on: its classes and what was read (metadata)."""

    class_names: tuple[str, ...]  # by training index
    class_ids: tuple[int, ...]  # the data set's id of each training index
    description: dict[str, Any]  # format, paths, split, image counts, skipped entries


@dataclass(frozen=True)
class SetSpec:
    """A generated data set: which seeds, rendered at what size, resized to what."""

    first_seed: int
    count: int
    render_size: tuple[int, int]  # width, height
    input_size: tuple[int, int]
    density: str = 'mixed'
    preset: str = 'easy'  # scene preset (data/scenes.py)
    walk_frames: int = 0  # 0: one scene per seed; else frames per walk, one walk per seed

    def key(self) -> str:
        fields = [self.first_seed, self.count, self.render_size, self.input_size,
                  self.density, 40, 0.25]  # is_labelled()'s thresholds
        if self.preset != 'easy':  # easy keys stay those of the caches made before presets
            fields.append(self.preset)
        if self.walk_frames:
            fields.append(f'walk{self.walk_frames}')
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class DetectionSet:
    images: np.ndarray  # [N, H, W, 3] uint8 at the input size
    boxes: list[np.ndarray]  # per image [M, 4] x0 y0 x1 y1 in input pixels
    classes: list[np.ndarray]  # per image [M] int64
    dense: np.ndarray  # [N] bool: dense scene (more than 3 objects)

    def __len__(self) -> int:
        return len(self.images)


def _scenes(spec: SetSpec) -> Iterator[Scene]:
    """The scenes of `spec`: one per seed, or the frames of one walk per seed."""
    config = SceneConfig(width=spec.render_size[0], height=spec.render_size[1],
                         density=spec.density, preset=spec.preset)
    for seed in range(spec.first_seed, spec.first_seed + spec.count):
        if spec.walk_frames:
            yield from walk_scenes(config, seed, WalkConfig(frames=spec.walk_frames))
        else:
            yield generate_scene(config, seed)


Frame = tuple[np.ndarray, np.ndarray, np.ndarray, bool]  # image, boxes, classes, dense


def _frames(spec: SetSpec) -> list[Frame]:
    """Every frame of `spec` at the input size, with its labelled boxes (input pixels)."""
    sx = spec.input_size[0] / spec.render_size[0]
    sy = spec.input_size[1] / spec.render_size[1]
    frames = []
    for scene in _scenes(spec):
        keep = [o for o in scene.objects if is_labelled(o, *spec.render_size)]
        boxes = np.array([o.box2d for o in keep], np.float64).reshape(-1, 4) * [sx, sy, sx, sy]
        frames.append((box_resize(scene.rgb, spec.input_size), boxes,
                       np.array([o.class_id for o in keep], np.int64),
                       len(scene.objects) > 3))
    return frames


def render_workers() -> int:
    """Processes a set renders with by default: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
        os.cpu_count() or 1


def _rendered(chunks: list[SetSpec], workers: int) -> Iterator[list[Frame]]:
    """The frames of each chunk in order, rendered by `workers` processes."""
    if workers == 1:
        yield from map(_frames, chunks)
        return
    # spawn: the parent may hold torch's threads, which a fork would copy half-alive
    with get_context('spawn').Pool(min(workers, len(chunks))) as pool:
        yield from pool.imap(_frames, chunks)


def render_set(spec: SetSpec, progress: bool = True, workers: int = 0) -> DetectionSet:
    """Render `spec`: with `workers` processes (0: render_workers()) when it has at least
    PARALLEL_FRAMES frames, each taking CHUNK_SEEDS seeds at a time; every scene comes from its
    own seed, so the set is the same whatever the number of workers."""
    from neulens_ros.progress import progress_bar
    if workers < 0:
        raise DataError(f'render workers must be >= 0, got {workers}')
    workers = workers or render_workers()
    total = spec.count * max(1, spec.walk_frames)
    chunks = [replace(spec, first_seed=first,
                      count=min(CHUNK_SEEDS, spec.first_seed + spec.count - first))
              for first in range(spec.first_seed, spec.first_seed + spec.count, CHUNK_SEEDS)]
    frames: list[Frame] = []
    with progress_bar(total=total, desc='rendering', unit='frame', disable=not progress,
                      leave=False) as bar:
        for part in _rendered(chunks, 1 if total < PARALLEL_FRAMES else workers):
            frames.extend(part)
            bar.update(len(part))
    images, boxes, classes, dense = zip(*frames, strict=True)
    return DetectionSet(np.stack(images), list(boxes), list(classes), np.array(dense))


def load_set(spec: SetSpec, cache_dir: Path, progress: bool = True) -> DetectionSet:
    """The set of `spec`, from the cache or rendered (and cached)."""
    path = cache_dir / f'scenes_{spec.key()}.npz'
    if path.is_file():
        try:
            with np.load(path) as z:
                splits = np.cumsum(z['counts'])[:-1]
                return DetectionSet(z['images'], np.split(z['boxes'], splits),
                                    np.split(z['classes'], splits), z['dense'])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f'cached data set {path} is unreadable ({exc}): delete it to '
                            're-render') from exc
    data = render_set(spec, progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp.npz')
    np.savez(tmp, images=data.images, boxes=np.concatenate(data.boxes),
             classes=np.concatenate(data.classes),
             counts=np.array([len(b) for b in data.boxes]), dense=data.dense)
    tmp.replace(path)
    return data


def dataset_set(data: DetectionDataset, input_size: tuple[int, int], progress: bool = True
                ) -> DetectionSet:
    """The images of `data` resized to `input_size` (width, height) as camera frames are,
    with their boxes scaled to it; `dense`: more than 3 boxes."""
    from neulens_ros.progress import progress_bar
    images, boxes = [], []
    for image in progress_bar(data.images, desc='reading', unit='image', disable=not progress,
                              leave=False):
        try:
            with Image.open(image.path) as file:
                rgb = np.asarray(file.convert('RGB'))
        except OSError as exc:
            raise DataError(f'{image.path} cannot be read ({exc})') from exc
        images.append(box_resize(rgb, input_size))
        sx, sy = input_size[0] / image.size[0], input_size[1] / image.size[1]
        boxes.append(image.boxes * [sx, sy, sx, sy])
    classes = [image.classes for image in data.images]
    return DetectionSet(np.stack(images), boxes, classes,
                        np.array([len(c) > 3 for c in classes]))


def to_checkpoint_classes(data: DetectionDataset, names: tuple[str, ...],
                          ids: tuple[int, ...]) -> DetectionDataset:
    """`data` with its class indices turned into those of a checkpoint's classes (`names`,
    `ids`: by training index); every class of `data` must be one of the checkpoint's, under
    the same id and name."""
    index = {class_id: i for i, class_id in enumerate(ids)}
    wrong = [f'{name!r} (id {class_id})' for name, class_id in
             zip(data.class_names, data.class_ids, strict=True)
             if class_id not in index or names[index[class_id]] != name]
    if wrong:
        raise DataError(f'{data.source}: classes {", ".join(wrong)} are not classes of the '
                        f'detector ({describe_classes(names, ids)})')
    lookup = np.array([index[class_id] for class_id in data.class_ids], np.int64)
    images = tuple(replace(image, classes=lookup[image.classes]) for image in data.images)
    return replace(data, class_names=names, class_ids=ids, images=images)

