"""3D lifting: geometry, box fitting, IoU, the whole lift on generated and real data."""

import numpy as np
import pytest

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.errors import ConfigError, GeometryError, LiftingError
from neulens_ros.lifting.boxes import YawBox, fit_yaw_box, gravity_frame, iou_3d
from neulens_ros.lifting.geometry import back_project, distort_normalised
from neulens_ros.lifting.lift import (Box2D, LiftingConfig, lift_detections,
                                      rotation_to_quaternion)

CAM = PinholeCamera(width=64, height=48, fx=60.0, fy=60.0, cx=31.5, cy=23.5)


def test_back_projection_inverts_projection_with_distortion() -> None:
    cam = PinholeCamera(width=640, height=480, fx=500.0, fy=510.0, cx=320.0, cy=240.0,
                        distortion=(-0.2, 0.05, 0.001, -0.002, 0.0))
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-1, 1, 50), rng.uniform(-0.7, 0.7, 50),
                           rng.uniform(1, 5, 50)])
    xd, yd = distort_normalised(pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2], cam.distortion)
    u, v = xd * cam.fx + cam.cx, yd * cam.fy + cam.cy
    np.testing.assert_allclose(back_project(cam, u, v, pts[:, 2]), pts, atol=1e-6)


def test_iou_of_identical_shifted_and_rotated_boxes() -> None:
    a = YawBox(np.array([0.0, 0.5, 3.0]), np.array([1.0, 1.0, 1.0]), 0.0)
    assert iou_3d(a, a) == pytest.approx(1.0)
    b = YawBox(np.array([0.5, 0.5, 3.0]), np.array([1.0, 1.0, 1.0]), 0.0)
    assert iou_3d(a, b) == pytest.approx(0.5 / 1.5)
    c = YawBox(np.array([0.0, 0.5, 3.0]), np.array([1.0, 1.0, 1.0]), np.pi / 4)
    # a unit square and the same square turned 45 degrees overlap in an octagon: 2(sqrt2-1)
    inter = 2 * (np.sqrt(2) - 1)
    assert iou_3d(a, c) == pytest.approx(inter / (2 - inter), rel=1e-6)
    far = YawBox(np.array([5.0, 0.5, 3.0]), np.ones(3), 0.3)
    assert iou_3d(a, far) == 0.0


def test_fit_yaw_box_recovers_a_rotated_box_from_its_surface() -> None:
    rng = np.random.default_rng(1)
    truth = YawBox(np.array([0.3, 0.4, 3.0]), np.array([0.8, 0.8, 0.5]), 0.4)
    local = rng.uniform(-0.5, 0.5, (4000, 3)) * truth.size
    # keep the two faces that look at the camera (it sits at the origin)
    pts = local @ truth.rotation_g().T + truth.centre
    fit = fit_yaw_box(pts, complete_depth=False)
    assert iou_3d(fit, truth) > 0.9
    assert np.linalg.norm(fit.centre - truth.centre) < 0.03


def pyramid_front(rng: np.random.Generator, centre: np.ndarray, half: tuple[float, float],
                  height: float) -> np.ndarray:
    """[N, 3] points on the camera-facing half of a pyramid with a rectangular base (gravity
    frame: y up, camera at the origin looking along +z), base centre `centre` on the floor."""
    u = rng.uniform(-1, 1, (6000, 2)) * half  # footprint offsets (x, z)
    u = u[u[:, 1] <= 0]  # the near half: what a camera at the origin sees
    y = height * (1 - np.abs(u / half).max(axis=1))  # the side faces
    return np.column_stack([centre[0] + u[:, 0], centre[1] + y, centre[2] + u[:, 1]])


@pytest.mark.parametrize('footprint,ok', [('apex', True), ('round', False), ('none', False)])
def test_apex_completion_mirrors_the_near_half(footprint: str, ok: bool) -> None:
    rng = np.random.default_rng(2)
    base = np.array([0.2, 0.0, 3.0])
    pts = pyramid_front(rng, base, (0.3, 0.15), 0.5)  # 0.6 m wide, 0.3 m deep
    truth = YawBox(base + [0, 0.25, 0], np.array([0.6, 0.5, 0.3]), 0.0)
    fit = fit_yaw_box(pts, True, footprint)
    assert (iou_3d(fit, truth) > 0.8) == ok
    if ok:
        assert abs(fit.centre[2] - 3.0) < 0.03 and abs(fit.size[2] - 0.3) < 0.04
    with pytest.raises(GeometryError):
        fit_yaw_box(pts, True, 'blob')


def test_quaternion_of_rotation() -> None:
    c, s = np.cos(0.7), np.sin(0.7)
    r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(rotation_to_quaternion(r), [0, 0, np.sin(0.35), np.cos(0.35)],
                               atol=1e-9)


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
def test_lift_on_generated_scenes_meets_accuracy(encoding: str) -> None:
    from neulens_ros.bridge.image import depth_to_millimetres
    from neulens_ros.eval.lifting import truth_box
    errors, ious = [], []
    for seed in (100, 102, 103):
        scene = generate_scene(SceneConfig(), seed)
        g = gravity_frame(np.asarray(scene.up))
        index = [i for i, o in enumerate(scene.objects)
                 if o.visibility >= 0.5 and o.visible_pixels >= 200]
        objs = [scene.objects[i] for i in index]
        dets = [Box2D(*o.box2d, class_id=o.class_id, score=0.9) for o in objs]
        depth = scene.depth if encoding == '32FC1' else depth_to_millimetres(scene.depth)
        result = lift_detections(dets, depth, encoding, scene.camera,
                                 LiftingConfig(up=scene.up))
        assert len(result.objects) == len(dets)
        for obj in result.objects:
            truth = objs[obj.index]
            errors.append(np.linalg.norm(obj.centre - np.asarray(truth.centre)))
            ious.append(iou_3d(obj.box_g, truth_box(scene, index[obj.index], g)))
            np.testing.assert_allclose(obj.rotation @ obj.rotation.T, np.eye(3), atol=1e-9)
    # 16 objects; measured: median centre error 0.6 cm, every IoU >= 0.5
    assert np.median(errors) < 0.03
    assert np.mean(np.asarray(ious) >= 0.5) >= 0.85


def test_truth_box_holds_the_generated_surface() -> None:
    """The generator's box-to-camera matrix is a reflection (its world frame is left-handed
    seen from the optical frame): the truth yaw must still put every visible surface point of
    a box or pyramid inside the truth footprint."""
    from matplotlib.path import Path

    from neulens_ros.eval.lifting import truth_box
    scene = generate_scene(SceneConfig(), 5001)
    g = gravity_frame(np.asarray(scene.up))
    checked = 0
    for i, obj in enumerate(scene.objects):
        if obj.class_name not in ('box', 'pyramid') or obj.visible_pixels < 200:
            continue
        vs, us = np.nonzero(scene.masks == i + 1)
        flat = (back_project(scene.camera, us, vs, scene.depth[vs, us]) @ g.T)[:, [0, 2]]
        footprint = Path(truth_box(scene, i, g).footprint())
        assert footprint.contains_points(flat, radius=0.005).mean() > 0.99
        checked += 1
    assert checked >= 3


def test_the_real_motorcycle_lifts_to_a_motorcycle_sized_box() -> None:
    from neulens_ros.eval.lifting import lift_motorcycle
    bike = lift_motorcycle()
    across, height, along = bike['size_m']
    assert 1.5 < across < 2.4  # seen from the side: its length (the image cuts the wheels)
    assert 0.6 < height < 1.4 and 0.2 < along < 1.0
    assert abs(bike['yaw_deg']) < 15 and 2.0 < bike['distance_m'] < 3.5


def test_points_agree_with_open3d_on_the_real_sample() -> None:
    import open3d as o3d

    from neulens_ros.data.middlebury import load_motorcycle
    rgb, depth, camera = load_motorcycle()
    intr = o3d.camera.PinholeCameraIntrinsic(camera.width, camera.height, camera.fx,
                                             camera.fy, camera.cx, camera.cy)
    depth_img = o3d.geometry.Image(np.nan_to_num(depth, nan=0.0).astype(np.float32))
    ref = np.asarray(o3d.geometry.PointCloud.create_from_depth_image(
        depth_img, intr, depth_scale=1.0, depth_trunc=100.0, stride=1).points)
    vs, us = np.nonzero(np.isfinite(depth) & (depth > 0))
    ours = back_project(camera, us, vs, depth[vs, us])
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
        o3d.geometry.Image(np.ascontiguousarray(rgb)), depth_img, depth_scale=1.0,
        depth_trunc=100.0, convert_rgb_to_intensity=False)
    ref_rgbd = np.asarray(o3d.geometry.PointCloud.create_from_rgbd_image(rgbd, intr).points)
    np.testing.assert_allclose(ours, ref_rgbd, atol=1e-3)


def test_bad_inputs() -> None:
    depth = np.full((48, 64), 2.0, np.float32)
    cfg = LiftingConfig(min_points=5)
    with pytest.raises(LiftingError, match='not a depth encoding'):
        lift_detections([], depth, 'rgb8', CAM, cfg)
    with pytest.raises(LiftingError, match='aspect'):
        lift_detections([], depth, '32FC1', CAM, cfg, colour_size=(100, 100))
    with pytest.raises(GeometryError, match='CameraInfo is'):
        lift_detections([], depth[:40], '32FC1', CAM, cfg)
    with pytest.raises(GeometryError, match='positive focal'):
        PinholeCamera(width=4, height=4, fx=0.0, fy=0.0, cx=0, cy=0)  # a zero CameraInfo K
    with pytest.raises(LiftingError, match='non-finite'):
        Box2D(0, 0, float('nan'), 4)
    nan_depth = depth.copy()
    nan_depth[10:30, 10:30] = np.nan
    result = lift_detections([Box2D(10, 10, 30, 30), Box2D(100, 100, 120, 120)], nan_depth,
                             '32FC1', CAM, cfg)
    assert result.objects == [] and result.skipped == {'no_depth': 1, 'outside_image': 1}


def test_colour_boxes_scale_into_a_smaller_depth_image() -> None:
    depth = np.full((48, 64), 3.0, np.float32)
    depth[12:36, 16:48] = 1.5  # a flat object in front of a wall
    result = lift_detections([Box2D(32, 24, 96, 72)], depth, '32FC1', CAM,
                             LiftingConfig(min_points=5, voxel_size_m=0.0,
                                           complete_depth=False),
                             colour_size=(128, 96))
    assert len(result.objects) == 1
    assert result.objects[0].centre[2] == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize('kwargs', [dict(min_depth_m=5.0, max_depth_m=1.0),
                                    dict(min_points=2), dict(core_shrink=0.6),
                                    dict(up=(0.0, 0.0, 0.0)), dict(dbscan_eps_m=0.0),
                                    dict(depth_band_widths=-1.0),
                                    dict(footprints=('round', 'torus'))])
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        LiftingConfig(**kwargs)


def test_lifting_evaluation_with_the_detectors_boxes() -> None:
    """The shipped easy detector's boxes lift about as well as the generator's on easy scenes:
    only boxes that match an object in 2D count; the rest are reported, not scored."""
    from neulens_ros.eval.lifting import MATCH_IOU_2D, detector_boxes, evaluate_lifting
    from neulens_ros.models.names import CHECKPOINTS
    result = evaluate_lifting([100, 102, 103], detect=detector_boxes(
        checkpoint=CHECKPOINTS['easy'][0]), progress=False)
    rows, summary = result['objects'], result['summary']
    assert len(rows) >= 10  # of the 16 objects at least half visible
    assert all(r['iou_2d'] >= MATCH_IOU_2D for r in rows)
    assert summary['iou_at_least_0.5_fraction'] >= 0.75
    assert summary['unmatched'] == sum(f['lifted'] for f in result['frames']) - len(rows)
    assert len({(r['seed'], r['distance_m']) for r in rows}) == len(rows)  # one box per object
    assert summary['missed'] == summary['truth_objects'] - len(rows) >= 0


def test_warm_up_lifts_its_synthetic_block() -> None:
    """The node's start-up lift goes through the whole path (open3d included), so the first
    real frame does not pay for it."""
    import sys

    from neulens_ros.lifting.lift import warm_up
    assert warm_up(LiftingConfig()) == 1
    assert 'open3d' in sys.modules


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
def test_metres_view_converts_only_what_is_read_and_lifts_the_same(encoding: str) -> None:
    from neulens_ros.bridge.image import depth_to_millimetres
    from neulens_ros.lifting.lift import METRES, MetresView, depth_in_metres
    scene = generate_scene(SceneConfig(), 100)
    depth = scene.depth if encoding == '32FC1' else depth_to_millimetres(scene.depth)
    whole = depth_in_metres(depth, encoding)  # [H, W] float32 metres
    view = MetresView(depth, encoding)
    assert view.shape == whole.shape
    for index in (np.s_[::8, ::8], np.s_[10:90, 40:200], np.s_[5:50, [3, 9, 27]]):
        np.testing.assert_array_equal(view[index], whole[index])
    np.testing.assert_array_equal(np.asarray(view), whole)
    assert np.asarray(view, np.float64).dtype == np.float64
    dets = [Box2D(*o.box2d, class_id=o.class_id) for o in scene.objects]
    config = LiftingConfig(up=scene.up)
    lifted = [lift_detections(dets, d, e, scene.camera, config).objects
              for d, e in ((whole, METRES), (view, METRES), (depth, encoding))]
    assert len(lifted[0]) > 0
    for other in lifted[1:]:
        assert [o.index for o in other] == [o.index for o in lifted[0]]
        for a, b in zip(lifted[0], other, strict=True):
            np.testing.assert_array_equal(a.centre, b.centre)
            np.testing.assert_array_equal(a.size, b.size)


def test_metres_view_refuses_what_is_not_depth() -> None:
    from neulens_ros.lifting.lift import MetresView
    with pytest.raises(LiftingError, match='not a depth encoding'):
        MetresView(np.zeros((4, 4), np.uint8), 'mono8')
    with pytest.raises(LiftingError, match=r'must be \[H, W\]'):
        MetresView(np.zeros((4, 4, 1), np.uint16), '16UC1')
