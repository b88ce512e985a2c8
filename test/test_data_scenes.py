"""Procedural RGB-D scenes: geometry, occlusion, ground truth, determinism; the real sample."""

import numpy as np
import pytest

from neulens_ros.data.middlebury import load_motorcycle
from neulens_ros.data.scenes import SceneConfig, generate_scene, render, sample_shapes
from neulens_ros.data.shapes import CLASSES, Shape
from neulens_ros.errors import ConfigError, DataError

SMALL = SceneConfig(width=160, height=120)


def test_same_seed_same_scene_different_seed_differs() -> None:
    a, b, c = (generate_scene(SMALL, s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert a.objects == b.objects
    assert not np.array_equal(a.rgb, c.rgb)


@pytest.mark.parametrize('seed', range(4))
def test_boxes_are_the_visible_masks_bounding_boxes(seed: int) -> None:
    scene = generate_scene(SceneConfig(width=160, height=120, density='dense'), seed)
    assert scene.objects
    for i, obj in enumerate(scene.objects):
        ys, xs = np.nonzero(scene.masks == i + 1)
        assert obj.visible_pixels == len(xs)
        if len(xs):
            assert obj.box2d == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert 0.0 < obj.visibility <= 1.0
        x0, y0, x1, y1 = obj.box2d
        inside = x0 > 0 and y0 > 0 and x1 < 160 and y1 < 120  # not cut by the image border
        if obj.visibility > 0.6 and obj.visible_pixels > 50 and inside:
            u, v = scene.camera.project(np.array([obj.centre]))[0]
            assert x0 - 1 <= u <= x1 + 1 and y0 - 1 <= v <= y1 + 1


def test_visibility_counts_every_pixel_the_shape_covers() -> None:
    """The renderer casts rays only near each object; a full-frame cast must agree."""
    config = SceneConfig(width=160, height=120, density='dense')
    shapes = sample_shapes(config, np.random.default_rng([2, 0]))
    scene = render(config, shapes, seed=2)
    cam, rot = scene.camera, config.camera_to_world()
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    dirs = cam.rays(u, v).reshape(-1, 3) @ rot.T
    origin = np.array([0.0, config.camera_height, 0.0])
    background = render(config, [], seed=2).depth.reshape(-1)  # optical z = ray t
    for shape, obj in zip(shapes, scene.objects, strict=True):
        t, _ = shape.hit(origin, dirs)
        unoccluded = int((t < background).sum())
        assert obj.visibility == pytest.approx(obj.visible_pixels / unoccluded, abs=1e-9)


def sphere_scene(centres: list[tuple[float, float]], diameter: float = 0.6):
    shapes = [Shape(CLASSES.index('sphere'), x, z, (diameter,) * 3, 0.0) for x, z in centres]
    return render(SMALL, shapes, seed=0)


def test_depth_equals_the_analytic_ray_sphere_hit() -> None:
    scene = sphere_scene([(0.0, 3.0)])
    obj = scene.objects[0]
    c, r = np.array(obj.centre), obj.size[0] / 2.0
    ys, xs = np.nonzero(scene.masks == 1)
    assert len(xs) > 100
    for k in range(0, len(xs), max(1, len(xs) // 25)):
        ray = scene.camera.rays(xs[k], ys[k])  # optical frame, z = 1
        b = -2 * ray @ c
        disc = b * b - 4 * (ray @ ray) * (c @ c - r * r)
        t = (-b - np.sqrt(disc)) / (2 * (ray @ ray))
        assert scene.depth[ys[k], xs[k]] == pytest.approx(t, abs=1e-4)


def test_near_object_hides_the_one_behind() -> None:
    sphere = Shape(CLASSES.index('sphere'), 0.0, 5.0, (0.6,) * 3, 0.0)
    wall = Shape(CLASSES.index('box'), 0.25, 2.5, (0.6, 1.8, 0.2), 0.0)  # hides its left half
    alone = render(SMALL, [sphere], seed=0)
    both = render(SMALL, [sphere, wall], seed=0)
    far, near = both.objects
    assert near.visibility == 1.0
    assert far.visible_pixels < alone.objects[0].visible_pixels
    assert far.visibility == pytest.approx(far.visible_pixels
                                           / alone.objects[0].visible_pixels, abs=1e-6)
    assert np.nanmax(both.depth[both.masks == 2]) < np.nanmin(alone.depth[alone.masks == 1])


def test_every_class_renders() -> None:
    shapes = [Shape(i, -1.6 + 0.8 * i, 3.5, (0.5, 0.6, 0.5), 0.3) for i in range(len(CLASSES))]
    scene = render(SceneConfig(width=320, height=240), shapes, seed=1)
    assert [o.class_name for o in scene.objects] == list(CLASSES)
    assert all(o.visible_pixels > 200 for o in scene.objects)
    # the floor is below the camera: optical y of object centres is positive (down)
    assert all(o.centre[1] > 0 for o in scene.objects)
    assert np.isfinite(scene.depth).all()


def test_densities() -> None:
    dense = [len(generate_scene(SceneConfig(64, 48, density='dense'), s).objects)
             for s in range(5)]
    sparse = [len(generate_scene(SceneConfig(64, 48, density='sparse'), s).objects)
              for s in range(5)]
    assert min(dense) >= 6 and max(sparse) <= 3


@pytest.mark.parametrize('kwargs', [dict(width=8), dict(density='crowded'),
                                    dict(distance_range=(5.0, 2.0)),
                                    dict(dense_range=(5, 2)), dict(pitch_deg=95.0)])
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SceneConfig(**kwargs)


def test_motorcycle_sample() -> None:
    rgb, depth, camera = load_motorcycle()
    assert rgb.shape == (500, 741, 3) and depth.shape == (500, 741)
    np.testing.assert_allclose(camera.k, [[994.978, 0, 311.193], [0, 994.978, 254.877],
                                          [0, 0, 1]])
    valid = np.isfinite(depth)
    assert 0.5 < valid.mean() < 1.0  # the data set marks occluded pixels unknown
    p5, p50, p95 = np.percentile(depth[valid], [5, 50, 95])
    assert 1.0 < p5 < p50 < p95 < 6.0  # a motorcycle a few metres in front of the camera


def test_dataset_round_trip_and_bad_folder(tmp_path) -> None:
    from neulens_ros.data.dataset import SceneDataset, write_dataset
    from neulens_ros.data.sequence import frame_stream
    write_dataset(tmp_path / 'ds', SMALL, [5, 6])
    data = SceneDataset(tmp_path / 'ds')
    scene = generate_scene(SMALL, 6)
    frame = data.frame(1)
    np.testing.assert_array_equal(frame.rgb, scene.rgb)
    np.testing.assert_allclose(frame.depth_m, scene.depth, atol=6e-4)  # mm quantisation
    np.testing.assert_array_equal(data.masks(1), scene.masks)
    assert frame.objects == scene.objects
    assert [f.rgb.shape for f, _ in zip(frame_stream('folder', str(tmp_path / 'ds')),
                                         range(3), strict=False)] == [(120, 160, 3)] * 3
    with pytest.raises(DataError, match='neulens-gen-data'):
        SceneDataset(tmp_path / 'missing')
    with pytest.raises(ConfigError):
        next(frame_stream('camera'))


def test_dataset_of_the_hard_preset_lists_its_classes(tmp_path) -> None:
    import json

    from neulens_ros.data.dataset import SceneDataset
    from neulens_ros.data.room import HARD_CLASSES
    from neulens_ros.tools.gen_dataset import main
    assert main(['--out', str(tmp_path), '--num', '1', '--size', '160x120',
                 '--preset', 'hard']) == 0
    assert json.loads((tmp_path / 'index.json').read_text())['classes'] == list(HARD_CLASSES)
    assert all(o.class_name in HARD_CLASSES for o in SceneDataset(tmp_path).frame(0).objects)


def test_generated_dataset_renders_seed_plus_index() -> None:
    from neulens_ros.data.dataset import GeneratedDataset
    data = GeneratedDataset(SMALL, 3, seed=40)
    assert len(data) == 3
    np.testing.assert_array_equal(data[1].rgb, generate_scene(SMALL, 41).rgb)
    assert data[-1].seed == 42 and data[2].objects == GeneratedDataset(SMALL, 3, 40)[2].objects
    with pytest.raises(IndexError):
        data[3]
    with pytest.raises(ConfigError):
        GeneratedDataset(SMALL, -1)
