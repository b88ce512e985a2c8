"""Streams of RGB-D frames for the source node and the tools."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

from neulens_ros.data.frame import RGBDFrame
from neulens_ros.data.scenes import Scene, SceneConfig, generate_scene
from neulens_ros.data.walk import WalkConfig, walk_scenes
from neulens_ros.errors import ConfigError

SOURCES = ('generated', 'walk', 'sample', 'folder')
WALK_PRESETS = ('hard',)  # walks move through the hard preset's rooms (data/room.py)


def frame_stream(kind: str, folder: str = '', seed: int = 0, density: str = 'mixed',
                 width: int = 640, height: int = 480, preset: str = 'easy',
                 walk_fps: float = WalkConfig.fps, walk_frames: int = WalkConfig.frames
                 ) -> Iterator[RGBDFrame]:
    """Endless frames of the scene `preset`: generated scenes (seed, seed + 1, ...), walks
    (the `walk_frames` frames of walk seed, then those of walk seed + 1, ..., rendered for
    `walk_fps` frames per second), the Middlebury sample repeated, or the frames of a data set
    folder written by `neulens-gen-data`, cycled. A bad kind, preset or walk raises ConfigError
    here, before the first frame."""
    if kind not in SOURCES:
        raise ConfigError(f'frame source {kind!r} is not one of {SOURCES}')
    config = SceneConfig(width=width, height=height, density=density, preset=preset)
    if kind == 'walk':
        require_walks(preset)
        return _walks(config, seed, WalkConfig(fps=walk_fps, frames=walk_frames))
    if kind == 'generated':
        return (_frame(generate_scene(config, seed + i)) for i in itertools.count())
    return _sample() if kind == 'sample' else _folder(Path(folder))


def require_walks(preset: str) -> None:
    """ConfigError unless scenes of `preset` come as walks (WALK_PRESETS)."""
    if preset not in WALK_PRESETS:
        raise ConfigError(f'walks move through the rooms of the {", ".join(WALK_PRESETS)} '
                          f'preset, not {preset!r}')


def _frame(scene: Scene) -> RGBDFrame:
    return RGBDFrame(scene.rgb, scene.depth, scene.camera, scene.objects)


def _walks(config: SceneConfig, seed: int, walk: WalkConfig) -> Iterator[RGBDFrame]:
    for i in itertools.count():
        yield from map(_frame, walk_scenes(config, seed + i, walk))


def _sample() -> Iterator[RGBDFrame]:
    from neulens_ros.data.middlebury import load_motorcycle
    rgb, depth, camera = load_motorcycle()
    return itertools.repeat(RGBDFrame(rgb, depth, camera, None))


def _folder(folder: Path) -> Iterator[RGBDFrame]:
    from neulens_ros.data.dataset import SceneDataset
    dataset = SceneDataset(folder)
    return (dataset.frame(i) for i in itertools.cycle(range(len(dataset))))
