"""Faster lifting at HD: pixel rays computed once per camera, the columns of near objects' boxes
sampled, and the generator's separate depth camera used by `neulens-eval lifting --compare`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifting_scene import lift_hd_scene
from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.errors import ConfigError
from neulens_ros.eval.lifting import foreign_depth
from neulens_ros.lifting.boxes import iou_3d
from neulens_ros.lifting.geometry import back_project, back_project_pixels, ray_grid
from neulens_ros.lifting.lift import LiftingConfig, column_step
from neulens_ros.lifting.registration import register_depth
from neulens_ros.models.names import CHECKPOINTS


@pytest.mark.parametrize('depth_m,samples,step', [
    (1.5, 2.0, 7), (1.5, 1.0, 14), (6.0, 2.0, 1), (3.0, 2.0, 3), (1.5, 0.0, 1)])
def test_column_step_leaves_the_samples_per_voxel_at_the_nearest_depth(
        depth_m: float, samples: float, step: int) -> None:
    """fx 1050 px (1280 x 720): a 2 cm voxel spans 14 columns at 1.5 m, 3.5 at 6 m."""
    patch = np.full((120, 200), 8.0, np.float32)
    patch[40:100, 50:150] = depth_m  # the object, in front of the wall
    patch[:3, :3] = 0.1  # a few pixels nearer than min_depth_m are no depth
    assert column_step(patch, 1050.0, LiftingConfig(samples_per_voxel=samples)) == step
    assert column_step(np.full((8, 8), np.nan), 1050.0, LiftingConfig()) == 1


@pytest.mark.parametrize('field,value', [('samples_per_voxel', -1.0)])
def test_negative_samples_per_voxel_is_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        LiftingConfig(**{field: value})


def test_ray_grid_matches_back_projection_with_distortion() -> None:
    cam = PinholeCamera(width=96, height=64, fx=80.0, fy=81.0, cx=47.0, cy=33.0,
                        distortion=(-0.2, 0.05, 0.001, -0.002, 0.0))
    x, y = ray_grid(cam)
    assert x.shape == (64, 96) and not x.flags.writeable
    rng = np.random.default_rng(0)
    u, v, z = rng.integers(0, 96, 50), rng.integers(0, 64, 50), rng.uniform(1, 5, 50)
    np.testing.assert_allclose(back_project_pixels(cam, u, v, z), back_project(cam, u, v, z),
                               atol=1e-12)


def test_sampled_boxes_lift_where_every_pixel_does() -> None:
    """Objects 1.2-6 m away at 1280 x 720: the near ones' columns are sampled, and their boxes
    stay where lifting every column puts them."""
    lifted = lift_hd_scene(5001, 'samples_per_voxel', (0.0, 2.0))
    every, sampled = lifted[0.0], lifted[2.0]
    assert set(sampled) == set(every)
    errors = [np.linalg.norm(o.centre - every[o.index].centre) for o in sampled.values()]
    assert np.median(errors) < 0.01
    near = [o for o in sampled.values() if o.centre[2] < 2.5]
    assert near and all(iou_3d(o.box_g, every[o.index].box_g) > 0.8 for o in near)


def test_the_generators_depth_camera_registers_onto_its_scene() -> None:
    """The separate depth camera of `--compare` and its extrinsics are right: its depth
    registered to the colour camera is the scene's own depth (away from edges)."""
    config = SceneConfig(width=320, height=240)
    scene = generate_scene(config, 5003)
    depth, camera, to_colour = foreign_depth(config, 5003)
    assert depth.shape == (480, 848) and camera.frame_id != scene.camera.frame_id
    registered = register_depth(depth, camera, scene.camera, to_colour)
    truth = scene.depth
    pad = np.pad(truth, 1, mode='edge')
    spread = np.max([pad[1 + dy:241 + dy, 1 + dx:321 + dx] for dy in (-1, 0, 1)
                     for dx in (-1, 0, 1)], 0) - np.min(
        [pad[1 + dy:241 + dy, 1 + dx:321 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0)
    both = np.isfinite(registered) & np.isfinite(truth) & (spread < 0.05)
    assert np.isfinite(registered).mean() > 0.99 and both.mean() > 0.6
    assert np.median(np.abs(registered - truth)[both]) < 0.005


def test_eval_lifting_compare_prints_the_paths_side_by_side(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from neulens_ros.tools.eval_lifting import main
    assert main(['--scenes', '2', '--size', '320x240', '--compare', '--detector',
                 CHECKPOINTS['easy'][0], '--out', str(tmp_path)]) == 0
    summary = json.loads((tmp_path / 'lifting.json').read_text())['summary']
    compare = summary['compare']
    assert summary['size'] == '320x240'
    for name in ('previous', 'every_pixel', 'sampled', 'foreign_depth_registered',
                 'previous_plumb_bob', 'sampled_plumb_bob'):
        assert compare[name]['median_cpu_ms_per_frame'] > 0
    assert compare['speed_up_plumb_bob']['median_cpu_ms_per_frame'] > 0
    # the same boxes lifted the previous way and every pixel with cached rays agree exactly
    assert compare['previous']['median_iou_3d'] == compare['every_pixel']['median_iou_3d']
    assert compare['foreign_depth_registered']['median_centre_error_m'] < 0.03
    assert '"compare"' in capsys.readouterr().out


def test_eval_lifting_compare_needs_scenes_with_a_separate_depth_camera(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neulens_ros.tools.eval_lifting import main
    with pytest.raises(SystemExit) as exc:
        main(['--scenes', '1', '--compare', '--detector', CHECKPOINTS['hard'][0], '--out',
              str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"gives 'hard' scenes: add --detector {CHECKPOINTS['easy'][0]}" in err
    assert not (tmp_path / 'lifting.json').exists()
