"""Data sets of generated scenes: written to disk (PNG + JSON) and read back.

Layout of a data set folder:
    index.json               {'config': SceneConfig fields, 'seeds': [...], 'classes': [...]}
    000000_rgb.png           colour, 8-bit RGB
    000000_depth.png         depth, 16-bit millimetres (0 = none)
    000000_mask.png          instance ids, 16-bit (0 = background, i + 1 = object i)
    000000.json              camera and objects (SceneObject fields)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from neulens_ros.bridge.image import depth_to_metres, depth_to_millimetres
from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.frame import RGBDFrame
from neulens_ros.data.scenes import (Scene, SceneConfig, SceneObject, class_names,
                                     generate_scene)
from neulens_ros.errors import ConfigError, DataError


def write_scene(folder: Path, index: int, scene: Scene) -> None:
    stem = folder / f'{index:06d}'
    Image.fromarray(scene.rgb).save(f'{stem}_rgb.png', compress_level=1)
    Image.fromarray(depth_to_millimetres(scene.depth)).save(f'{stem}_depth.png',
                                                            compress_level=1)
    Image.fromarray(scene.masks.astype(np.uint16)).save(f'{stem}_mask.png', compress_level=1)
    meta = {'seed': scene.seed, 'camera': asdict(scene.camera), 'up': scene.up,
            'objects': [asdict(o) for o in scene.objects]}
    Path(f'{stem}.json').write_text(json.dumps(meta))


def write_dataset(folder: Path, config: SceneConfig, seeds: Iterable[int],
                  progress: bool = False) -> int:
    """Render the scenes of `seeds` into `folder`; returns the number of frames."""
    from neulens_ros.progress import progress_bar
    folder.mkdir(parents=True, exist_ok=True)
    seeds = list(seeds)
    bar = progress_bar(seeds, desc='rendering', unit='scene', disable=not progress)
    for i, seed in enumerate(bar):
        write_scene(folder, i, generate_scene(config, seed))
    (folder / 'index.json').write_text(json.dumps(
        {'config': asdict(config), 'seeds': seeds, 'classes': list(class_names(config.preset))},
        indent=1))
    return len(seeds)


class SceneDataset:
    """A data set folder written by `write_dataset` / `neulens-gen-data`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        index = self.folder / 'index.json'
        if not index.is_file():
            raise DataError(f'{self.folder} is not a data set (no index.json): create one '
                            'with neulens-gen-data --out FOLDER')
        try:
            meta = json.loads(index.read_text())
            self.seeds = list(meta['seeds'])
            self.config = SceneConfig(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in meta['config'].items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f'{index} is not a valid data set index: {exc}') from exc

    def __len__(self) -> int:
        return len(self.seeds)

    def frame(self, i: int) -> RGBDFrame:
        """Frame i with its ground truth; DataError naming the file when one is missing."""
        stem = self.folder / f'{i:06d}'
        try:
            rgb = np.asarray(Image.open(f'{stem}_rgb.png').convert('RGB'))
            depth = depth_to_metres(np.asarray(Image.open(f'{stem}_depth.png'), np.uint16),
                                    '16UC1')
            meta = json.loads(Path(f'{stem}.json').read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f'frame {i} of {self.folder} cannot be read: {exc}') from exc
        camera = PinholeCamera(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in meta['camera'].items()})
        objects = tuple(SceneObject(**{k: _tuples(v) for k, v in o.items()})
                        for o in meta['objects'])
        return RGBDFrame(rgb, depth, camera, objects)

    def masks(self, i: int) -> np.ndarray:
        """[H, W] int32 instance ids of frame i."""
        return np.asarray(Image.open(self.folder / f'{i:06d}_mask.png'), np.int32)

    def __iter__(self) -> Iterator[RGBDFrame]:
        return (self.frame(i) for i in range(len(self)))


class GeneratedDataset:
    """Scenes rendered on demand for training: item i is the scene of seed `seed + i`, the
    same arrays every time (nothing is stored)."""

    def __init__(self, config: SceneConfig, length: int, seed: int = 0) -> None:
        if length < 0:
            raise ConfigError(f'GeneratedDataset length must be >= 0, got {length}')
        self.config, self.length, self.seed = config, int(length), int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Scene:
        if not -self.length <= i < self.length:
            raise IndexError(f'scene {i} out of range for {self.length} scenes')
        return generate_scene(self.config, self.seed + i % self.length)


def _tuples(value: object) -> object:
    """JSON lists back to the (nested) tuples of the frozen dataclasses."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
