"""Streams of RGB-D frames for the source node and the tools."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

from neulens_ros.data.frame import RGBDFrame
from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.errors import ConfigError

SOURCES = ('generated', 'sample', 'folder')


def frame_stream(kind: str, folder: str = '', seed: int = 0, density: str = 'mixed',
                 width: int = 640, height: int = 480) -> Iterator[RGBDFrame]:
    """Endless frames: generated scenes (seed, seed + 1, ...), the Middlebury sample
    repeated, or the frames of a data set folder written by `neulens-gen-data`, cycled."""
    if kind == 'generated':
        config = SceneConfig(width=width, height=height, density=density)
        for i in itertools.count():
            scene = generate_scene(config, seed + i)
            yield RGBDFrame(scene.rgb, scene.depth, scene.camera, scene.objects)
    elif kind == 'sample':
        from neulens_ros.data.middlebury import load_motorcycle
        rgb, depth, camera = load_motorcycle()
        while True:
            yield RGBDFrame(rgb, depth, camera, None)
    elif kind == 'folder':
        from neulens_ros.data.dataset import SceneDataset
        dataset = SceneDataset(Path(folder))
        for i in itertools.cycle(range(len(dataset))):
            yield dataset.frame(i)
    else:
        raise ConfigError(f'frame source {kind!r} is not one of {SOURCES}')
