"""The hard scene preset (a furnished room), its difficulty measures and camera walks."""

import numpy as np
import pytest

from neulens_ros.data.difficulty import (DATA_TARGETS, Target, check, colour_only_accuracy,
                                         data_properties, empty_tiles)
from neulens_ros.data.room import (HARD_CLASSES, SURFACES, Item, Pose, Room, _bounce,
                                   generate_room, pattern, render_room, room_of_seed)
from neulens_ros.data.scenes import SceneConfig, class_names, generate_scene
from neulens_ros.data.shapes import CLASSES, Shape
from neulens_ros.data.walk import WalkConfig, camera_path, walk_scenes
from neulens_ros.errors import ConfigError

HARD = SceneConfig(width=160, height=120, preset='hard')


def test_twelve_classes_of_shape_and_surface() -> None:
    assert class_names('hard') == HARD_CLASSES and len(HARD_CLASSES) >= 12
    assert class_names('easy') == CLASSES
    shapes = {n.split('_')[0] for n in HARD_CLASSES}
    assert len(shapes) * len(SURFACES) == len(HARD_CLASSES)


def test_same_seed_same_frame_and_ground_truth_matches_the_masks() -> None:
    a, b, c = (generate_scene(HARD, s) for s in (11, 11, 12))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert a.objects == b.objects
    assert not np.array_equal(a.rgb, c.rgb)
    for scene in (a, c):
        assert len({o.track_id for o in scene.objects}) == len(scene.objects)
        for i, obj in enumerate(scene.objects):
            ys, xs = np.nonzero(scene.masks == i + 1)
            assert obj.visible_pixels == len(xs) > 0
            assert obj.box2d == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert obj.class_name == HARD_CLASSES[obj.class_id]
        assert scene.masks.max() == len(scene.objects)  # distractors are not in the masks


def test_colour_is_drawn_independently_of_class() -> None:
    colours, labels = [], []
    for seed in range(40):
        room = generate_room(HARD, np.random.default_rng([seed, 0]))
        for item in room.items:
            if item.label >= 0:
                colours.append(item.colour)
                labels.append(item.label)
    accuracy = colour_only_accuracy(np.array(colours), np.array(labels), len(HARD_CLASSES))
    assert accuracy < 1.0 / len(HARD_CLASSES) + 0.05


def empty_room(items: tuple[Item, ...] = ()) -> Room:
    return Room(half=5.0, items=items, posters=(), floor_texture=0, wall_texture=1,
                floor_rgb=(0.5, 0.5, 0.5), wall_rgb=(0.6, 0.6, 0.6), light=(0.0, 1.0, 0.0),
                ambient=0.4, tint=(1.0, 1.0, 1.0))


def test_depth_is_the_analytic_sphere_hit_from_a_turned_camera() -> None:
    pose = Pose(x=1.0, z=-1.0, yaw=np.pi / 2, pitch_deg=10.0, height=1.2)  # looks along +x
    sphere = Shape(CLASSES.index('sphere'), 4.0, -1.0, (0.6,) * 3, 0.0)
    scene = render_room(HARD, empty_room((Item(sphere, 0, 'dots', (0.8, 0.2, 0.2), 0.2),)),
                        pose)
    obj, = scene.objects
    c, r = np.array(obj.centre), 0.3
    assert c[2] == pytest.approx(3.0 * np.cos(np.deg2rad(10.0)) + 0.9 * np.sin(
        np.deg2rad(10.0)), abs=1e-6)  # straight ahead, the camera 0.9 m above its centre
    ys, xs = np.nonzero(scene.masks == 1)
    for k in range(0, len(xs), max(1, len(xs) // 20)):
        ray = scene.camera.rays(xs[k], ys[k])
        b = -2 * ray @ c
        t = (-b - np.sqrt(b * b - 4 * (ray @ ray) * (c @ c - r * r))) / (2 * (ray @ ray))
        assert scene.depth[ys[k], xs[k]] == pytest.approx(t, abs=1e-4)


def test_yaw_zero_pose_is_the_easy_camera() -> None:
    easy = SceneConfig(pitch_deg=15.0)
    np.testing.assert_allclose(Pose(0.0, 0.0, 0.0, 15.0, 1.3).camera_to_world(),
                               easy.camera_to_world(), atol=1e-12)


@pytest.mark.parametrize('surface', SURFACES)
def test_patterns_have_light_and_dark_parts(surface: str) -> None:
    p = np.random.default_rng(0).uniform(-1, 1, (2000, 3))
    value = pattern(surface, p, 0.3)
    assert 0.1 < value.mean() < 0.95
    assert set(np.unique(value)) == {0.0, 1.0}
    assert (pattern('plain', p, 0.3) == 1.0).all()


@pytest.mark.parametrize('value', [-7.3, -2.0, 0.0, 1.9, 2.0, 5.5, 13.0])
def test_bounce_stays_inside_and_reflects(value: float) -> None:
    assert -2.0 <= _bounce(value, 2.0) <= 2.0
    assert _bounce(2.5, 2.0) == pytest.approx(1.5)
    assert _bounce(-2.5, 2.0) == pytest.approx(-1.5)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_empty_tiles(k: int) -> None:
    assert empty_tiles([], 120, 120, k).all()
    grid = empty_tiles([(0, 0, 1, 1)], 120, 120, k)  # one pixel in the top-left cell
    assert not grid[0, 0] and grid.sum() == k * k - 1
    grid = empty_tiles([(0, 59, 120, 61)], 120, 120, k)  # a band across the middle
    rows_touched = 1 if k % 2 else 2
    assert (~grid).sum() == rows_touched * k
    with pytest.raises(ConfigError):
        empty_tiles([], 10, 10, 0)


def test_colour_only_accuracy_is_perfect_when_colour_is_the_class() -> None:
    rng = np.random.default_rng(1)
    palette = rng.uniform(0.1, 1.0, (4, 3))
    labels = rng.integers(0, 4, 200)
    assert colour_only_accuracy(palette[labels], labels, 4) == 1.0
    assert colour_only_accuracy(rng.uniform(0.1, 1, (200, 3)), labels, 4) < 0.45


def test_targets_and_check() -> None:
    target = Target('x', 0.1, 0.2)
    assert target.met(0.15) and not target.met(0.3) and not target.met(0.05)
    rows = check({'coverage': 0.5, 'classes': 12}, DATA_TARGETS)
    assert {r['key']: r['met'] for r in rows} == {'classes': True, 'coverage': False}


def test_data_properties_of_a_few_frames() -> None:
    values = data_properties(HARD, range(6), progress=False)
    assert values['classes'] == 12 and values['frames'] == 6
    assert 0.0 <= values['coverage'] <= 1.0 and 0.0 <= values['empty_tile_share'] <= 1.0
    assert values['clutter_share'] > 0.0  # furniture and distractors are in view
    easy = data_properties(SceneConfig(width=160, height=120), range(6), progress=False)
    assert easy['classes'] == 5 and easy['clutter_share'] == 0.0
    with pytest.raises(ConfigError, match='no labelled object'):
        data_properties(HARD, [], progress=False)


def test_room_of_seed_is_the_frame_of_that_seed() -> None:
    room, pose = room_of_seed(HARD, 5)
    np.testing.assert_array_equal(render_room(HARD, room, pose, 5).rgb,
                                  generate_scene(HARD, 5).rgb)


def test_walk_turns_and_moves_at_human_rates() -> None:
    walk = WalkConfig(fps=10.0, frames=60)
    rng = np.random.default_rng([3, 3])
    room = generate_room(HARD, rng)
    poses = camera_path(room, walk, rng)
    yaw_rate = np.abs(np.diff(np.unwrap([p.yaw for p in poses]))) * walk.fps
    assert yaw_rate.max() <= np.deg2rad(walk.max_turn_deg_s) + 1e-9
    steps = np.hypot(np.diff([p.x for p in poses]), np.diff([p.z for p in poses]))
    assert steps.max() * walk.fps <= walk.speed[1] + 1e-9 and steps.sum() > 0.5
    assert all(max(abs(p.x), abs(p.z)) <= room.half - 1.2 for p in poses)


def test_walk_frames_keep_track_ids_and_some_objects_move() -> None:
    frames = list(walk_scenes(HARD, 4, WalkConfig(frames=12)))
    assert len(frames) == 12
    classes: dict[int, int] = {}
    for scene in frames:
        for obj in scene.objects:
            assert classes.setdefault(obj.track_id, obj.class_id) == obj.class_id
    room = generate_room(HARD, np.random.default_rng([4, 3]))
    moved = [a.shape.x != b.shape.x for a, b in zip(room.items, room.at(1.0), strict=True)]
    assert any(moved) and not all(moved)


@pytest.mark.parametrize('kwargs', [dict(fps=0.1), dict(frames=0), dict(speed=(2.0, 1.0)),
                                    dict(max_turn_deg_s=0.0), dict(robot_share=1.5)])
def test_invalid_walk(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        WalkConfig(**kwargs)


def test_invalid_preset() -> None:
    with pytest.raises(ConfigError, match='preset'):
        SceneConfig(preset='medium')
