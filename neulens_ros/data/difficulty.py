"""How hard a scene preset is, measured on its frames before any gate result is looked at.

Data properties (this file) and the detector's own properties (uniform level 0 and the
narrowest level, `tools/eval_difficulty.py`) fix the benchmark's difficulty. Definitions:
- coverage: share of a frame's pixels that show a labelled object (its visible mask);
- empty tile: a cell of the k x k grid (frame split evenly) that no labelled object's box
  touches;
- small: a labelled object whose box is under 32 x 32 pixels at 640 x 480 (COCO's 'small',
  scaled with the frame area);
- colour-only accuracy: a nearest-centroid classifier on each object's mean visible
  chromaticity (r, g, b over their sum: colour without brightness, which the surface pattern
  and the light set), fitted on the first half of the objects and scored on the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from neulens_ros.data.room import Room, render_room_owners, room_of_seed
from neulens_ros.data.scene_types import Scene, SceneConfig, is_labelled
from neulens_ros.data.scenes import class_names, generate_scene
from neulens_ros.errors import ConfigError

SMALL_SIDE = 32  # pixels at 640 x 480


@dataclass(frozen=True)
class Target:
    """One difficulty requirement on a measured property."""

    key: str
    minimum: float = -np.inf
    maximum: float = np.inf
    text: str = ''

    def met(self, value: float) -> bool:
        return bool(self.minimum <= value <= self.maximum)


# The hard preset's requirements (the tracker's "as hard as real detection").
DATA_TARGETS = (
    Target('classes', 12, text='at least 12 classes'),
    Target('colour_only_accuracy_over_chance', maximum=0.05,
           text='colour alone classifies at most 5 points above chance'),
    Target('distractors_per_frame', 1.0, text='distractor objects in view'),
    Target('clutter_share', 0.05, text='furniture and posters cover part of the frame'),
    Target('distance_share_1_8m', 0.9, text='labelled objects at 1-8 m'),
    Target('small_share', 0.10, text='at least 10% of the objects are small'),
    Target('coverage', 0.05, 0.25, text='objects cover 5-25% of the frame'),
    Target('empty_tile_share', 0.35, text='at least 35% of k = 3 tiles contain no object'),
)
DETECTOR_TARGETS = (
    Target('map50_level0', 0.70, text='uniform level 0 mAP@0.5 >= 0.70'),
    Target('level3_loss_points', 12.0, text='the narrowest level loses >= 12 points'),
)


def empty_tiles(boxes: Iterable[tuple[int, int, int, int]], width: int, height: int,
                k: int) -> np.ndarray:
    """[k, k] bool: which cells of the evenly split frame no box (x0, y0, x1, y1; x1, y1
    exclusive, pixels) touches."""
    if k < 1:
        raise ConfigError(f'k must be >= 1, got {k}')
    xs = np.linspace(0, width, k + 1)
    ys = np.linspace(0, height, k + 1)
    empty = np.ones((k, k), bool)
    for x0, y0, x1, y1 in boxes:
        if x1 <= x0 or y1 <= y0:
            continue
        cols = (xs[1:] > x0) & (xs[:-1] < x1)
        rows = (ys[1:] > y0) & (ys[:-1] < y1)
        empty[np.ix_(rows, cols)] = False
    return empty


def colour_only_accuracy(colours: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Nearest-centroid accuracy of the chromaticity of mean colours [N, 3] (the first half
    fits, the second scores)."""
    colours = colours / np.maximum(colours.sum(axis=1, keepdims=True), 1e-9)
    half = len(labels) // 2
    fit, test = slice(0, half), slice(half, None)
    centroids = np.full((classes, 3), np.inf)
    for c in range(classes):
        members = colours[fit][labels[fit] == c]
        if len(members):
            centroids[c] = members.mean(axis=0)
    dist = np.linalg.norm(colours[test][:, None, :] - centroids[None], axis=2)
    return float(np.mean(dist.argmin(axis=1) == labels[test])) if len(dist) else 0.0


def _frame(config: SceneConfig, seed: int) -> tuple[Scene, float, int]:
    """(scene, share of pixels on furniture/posters/distractors, distractors in view)."""
    if config.preset != 'hard':
        return generate_scene(config, seed), 0.0, 0
    room, pose = room_of_seed(config, seed)
    scene, owners = render_room_owners(config, room, pose, seed)
    return scene, _clutter_share(room, owners), _distractors(room, owners)


def _clutter_share(room: Room, owners: np.ndarray) -> float:
    """Share of pixels showing furniture or distractors (posters are part of the wall)."""
    clutter = [i + 1 for i, item in enumerate(room.items) if item.label < 0]
    return float(np.isin(owners, clutter).mean())


def _distractors(room: Room, owners: np.ndarray) -> int:
    """Object-sized items of no class with a visible pixel."""
    return sum(1 for i in np.unique(owners) if i > 0 and room.items[i - 1].label < 0
               and not room.items[i - 1].furniture)


def data_properties(config: SceneConfig, seeds: Iterable[int], k: int = 3,
                    progress: bool = True) -> dict[str, Any]:
    """Every data property of the module docstring over the frames of `seeds`."""
    from neulens_ros.progress import progress_bar
    names = class_names(config.preset)
    small = SMALL_SIDE ** 2 * config.width * config.height / (640 * 480)
    coverage, empty, clutter, distractors, brightness = [], [], [], [], []
    distances, areas, colours, labels = [], [], [], []
    for seed in progress_bar(list(seeds), desc='measuring', unit='frame', disable=not progress):
        scene, clutter_share, n_distractors = _frame(config, seed)
        labelled = [(i, o) for i, o in enumerate(scene.objects)
                    if is_labelled(o, config.width, config.height)]
        coverage.append(np.isin(scene.masks, [i + 1 for i, _ in labelled]).mean())
        empty.append(empty_tiles([o.box2d for _, o in labelled], config.width,
                                 config.height, k).mean())
        clutter.append(clutter_share)
        distractors.append(n_distractors)
        brightness.append(scene.rgb.mean())
        for i, o in labelled:
            distances.append(float(np.linalg.norm(o.centre)))
            x0, y0, x1, y1 = o.box2d
            areas.append((x1 - x0) * (y1 - y0))
            colours.append(scene.rgb[scene.masks == i + 1].mean(axis=0))
            labels.append(o.class_id)
    if not labels:
        raise ConfigError('no labelled object in the measured frames: measure more frames')
    distances_a = np.array(distances)
    accuracy = colour_only_accuracy(np.array(colours), np.array(labels), len(names))
    return {
        'preset': config.preset, 'frames': len(coverage), 'size': [config.width, config.height],
        'classes': len(names), 'class_names': list(names),
        'labelled_objects_per_frame': len(labels) / len(coverage),
        'colour_only_accuracy': accuracy, 'chance_accuracy': 1.0 / len(names),
        'colour_only_accuracy_over_chance': accuracy - 1.0 / len(names),
        'distractors_per_frame': float(np.mean(distractors)),
        'clutter_share': float(np.mean(clutter)),
        'distance_m_p10_p50_p90': np.percentile(distances_a, [10, 50, 90]).tolist(),
        'distance_share_1_8m': float(np.mean((distances_a >= 1.0) & (distances_a <= 8.0))),
        'small_share': float(np.mean(np.array(areas) < small)),
        'brightness_std_between_frames': float(np.std(brightness)),
        'coverage': float(np.mean(coverage)), 'empty_tile_share': float(np.mean(empty)),
        'k': k,
    }


def check(values: dict[str, Any], targets: Iterable[Target]) -> list[dict[str, Any]]:
    """One row per target: key, requirement, measured value, met."""
    return [{'key': t.key, 'requirement': t.text, 'value': float(values[t.key]),
             'met': t.met(float(values[t.key]))} for t in targets if t.key in values]
