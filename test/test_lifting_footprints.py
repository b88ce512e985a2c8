"""3D lifting: the 'box' footprint (L-shape search), the floor, the choice of cluster, the
footprint kinds of class names."""

import numpy as np
import pytest

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.room import HARD_CLASSES
from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.data.shapes import CLASSES
from neulens_ros.errors import ConfigError
from neulens_ros.lifting.boxes import (YawBox, fit_yaw_box, gravity_frame, iou_3d,
                                       l_shape_rectangle, min_area_rectangle, rest_on_floor)
from neulens_ros.lifting.floor import find_floor, floor_height
from neulens_ros.lifting.lift import (Box2D, LiftingConfig, footprint_kind, footprints_for,
                                      lift_detections, object_points)


def visible_faces(rng: np.random.Generator, box: YawBox, per_m2: float = 20000.0
                  ) -> np.ndarray:
    """[N, 3] points (gravity frame, camera at the origin) on the faces of `box` that the
    camera sees: the vertical faces turned towards it and the top when it is below the
    camera."""
    r = box.rotation_g()
    half = box.size / 2
    faces = []
    for axis in (0, 1, 2):
        for sign in (1.0, -1.0):
            normal = sign * r[:, axis]
            centre = box.centre + normal * half[axis]
            if axis == 1 and sign < 0 or normal @ -centre <= 0:
                continue  # the bottom rests on the floor; faces turned away are hidden
            u, v = [a for a in (0, 1, 2) if a != axis]
            n = int(per_m2 * box.size[u] * box.size[v])
            uv = rng.uniform(-1, 1, (n, 2)) * half[[u, v]]
            faces.append(centre + uv[:, :1] * r[:, u] + uv[:, 1:] * r[:, v])
    return np.concatenate(faces)


def yaw_error_deg(a: float, b: float) -> float:
    """Difference of two rectangle yaws, modulo the rectangle's 90 degree symmetry."""
    return abs(float(np.rad2deg((a - b + np.pi / 4) % (np.pi / 2) - np.pi / 4)))


@pytest.mark.parametrize('yaw_deg', [30.0, 40.0])
def test_box_seen_at_an_angle_keeps_its_yaw_and_size(yaw_deg: float) -> None:
    rng = np.random.default_rng(3)
    # 0.7 x 0.35 m footprint, 0.5 m tall, standing 1.3 m below the camera, 3 m ahead
    truth = YawBox(np.array([0.3, -1.05, 3.0]), np.array([0.7, 0.5, 0.35]),
                   np.deg2rad(yaw_deg))
    pts = visible_faces(rng, truth)
    fit = fit_yaw_box(pts, True, 'box')
    assert yaw_error_deg(fit.yaw, truth.yaw) < 2.0
    assert sorted(fit.size[[0, 2]]) == pytest.approx(sorted(truth.size[[0, 2]]), abs=0.02)
    assert iou_3d(fit, truth) > 0.9
    # the square completion of round footprints makes the same box far too deep
    assert iou_3d(fit_yaw_box(pts, True, 'round'), truth) < 0.75


def test_box_without_its_top_is_completed_from_its_two_faces() -> None:
    rng = np.random.default_rng(4)
    truth = YawBox(np.array([-0.2, 0.2, 2.5]), np.array([0.6, 3.0, 0.4]), np.deg2rad(35.0))
    pts = visible_faces(rng, truth)  # a tall box: its top is above the camera, unseen
    fit = fit_yaw_box(pts, True, 'box')
    assert yaw_error_deg(fit.yaw, truth.yaw) < 2.0
    assert iou_3d(fit, truth) > 0.9


def test_one_face_of_a_box_is_completed_to_a_square() -> None:
    rng = np.random.default_rng(5)
    truth = YawBox(np.array([0.0, 0.2, 2.5]), np.array([0.6, 3.0, 0.6]), 0.0)
    pts = visible_faces(rng, truth)  # face-on, top above the camera: the front face only
    assert np.ptp(pts[:, 2]) < 1e-9
    fit = fit_yaw_box(pts, True, 'box')
    assert fit.size[[0, 2]] == pytest.approx([0.6, 0.6], abs=0.02)
    assert fit.centre[2] == pytest.approx(2.5, abs=0.02)


def test_l_shape_follows_the_faces_where_the_far_side_is_cut() -> None:
    """The diagnosis: a depth gate cuts a box seen at an angle along a line of constant
    depth; the L-shape search still finds the faces' direction."""
    rng = np.random.default_rng(6)
    truth = YawBox(np.array([0.0, -1.0, 3.0]), np.array([0.8, 0.6, 0.4]), np.deg2rad(30.0))
    pts = visible_faces(rng, truth)
    cut = pts[pts[:, 2] < 2.9][:, [0, 2]]  # everything 10 cm beyond the centre is lost
    assert yaw_error_deg(-l_shape_rectangle(cut)[2], truth.yaw) < 2.0
    # the smallest rectangle turns with the cut
    assert yaw_error_deg(-min_area_rectangle(cut)[2], truth.yaw) > 10.0


def test_cut_boxes_fall_back_to_the_round_completion() -> None:
    config = LiftingConfig()
    assert footprint_kind(config, 0, cut=False) == 'box'
    assert footprint_kind(config, 0, cut=True) == 'round'
    assert footprint_kind(config, 3, cut=True) == 'apex'
    assert footprint_kind(config, 99, cut=False) == 'round'


def test_footprint_kinds_from_class_names() -> None:
    assert footprints_for(CLASSES) == LiftingConfig().footprints == (
        'box', 'round', 'round', 'apex', 'apex')
    by_shape = {'box': 'box', 'cylinder': 'round', 'sphere': 'round', 'cone': 'apex'}
    assert footprints_for(HARD_CLASSES) == tuple(by_shape[n.split('_')[0]] for n in HARD_CLASSES)
    assert footprints_for(['motorcycle', 'Tall-Pyramid', 'dots_cylinder', '']) == (
        'round', 'apex', 'round', 'round')


def test_floor_height_of_a_dominant_lowest_plane() -> None:
    rng = np.random.default_rng(7)
    walls = rng.uniform(-1.3, 1.0, 6000)
    floor = rng.normal(-1.3, 0.003, 4000)
    assert floor_height(np.concatenate([walls, floor]), 0.02, 0.1) == pytest.approx(-1.3,
                                                                                     abs=0.005)
    assert floor_height(walls, 0.02, 0.1) is None  # no plane holds a tenth of the points
    # a plane with much below it (a table top over a visible floor area) is no floor
    table = rng.normal(-0.5, 0.003, 4000)
    assert floor_height(np.concatenate([walls, table]), 0.02, 0.1) is None
    assert floor_height(np.zeros(0), 0.02, 0.1) is None


def test_floor_points_are_removed_and_boxes_stand_on_the_floor() -> None:
    scene = generate_scene(SceneConfig(), 103)
    g = gravity_frame(np.asarray(scene.up))
    floor = find_floor(scene.depth, scene.camera, g[1], 8, 0.02, 0.1, (0.2, 10.0))
    assert floor is not None
    assert floor.height == pytest.approx(-SceneConfig().camera_height, abs=0.01)
    config = LiftingConfig(up=scene.up)
    dets = [Box2D(*o.box2d, class_id=o.class_id) for o in scene.objects
            if o.visibility >= 0.5 and o.visible_pixels >= 200]
    near_floor = []
    for det in dets:
        points, _ = object_points(det, scene.depth, scene.camera, config, (1.0, 1.0), floor)
        assert (points @ g[1]).min() > floor.height + config.floor_tolerance_m
        kept, _ = object_points(det, scene.depth, scene.camera,
                                LiftingConfig(up=scene.up, floor_tolerance_m=0.0), (1.0, 1.0))
        near_floor.append(((kept @ g[1]) < floor.height + 0.01).sum())
    assert sum(near_floor) > 100  # without the floor removal, floor points come along
    result = lift_detections(dets, scene.depth, '32FC1', scene.camera, config)
    assert len(result.objects) == len(dets)
    for obj in result.objects:
        bottom = obj.box_g.centre[1] - obj.box_g.size[1] / 2
        assert bottom == pytest.approx(floor.height, abs=1e-9)


def test_rest_on_floor_only_closes_small_gaps() -> None:
    box = YawBox(np.array([0.0, -1.0, 3.0]), np.array([0.5, 0.54, 0.5]), 0.3)  # bottom -1.27
    on = rest_on_floor(box, -1.3, 0.05)
    assert on.centre[1] - on.size[1] / 2 == pytest.approx(-1.3)
    assert on.centre[1] + on.size[1] / 2 == pytest.approx(-0.73)
    assert rest_on_floor(box, -1.5, 0.05) is box


def test_the_object_is_the_cluster_covering_most_of_the_box() -> None:
    """A wall far behind fills more voxels than a near object covering more pixels."""
    cam = PinholeCamera(width=200, height=160, fx=500.0, fy=500.0, cx=99.5, cy=79.5)
    depth = np.full((160, 200), 9.0, np.float32)  # a wall 9 m away
    depth[30:130, 50:150] = 1.0  # a flat object 1 m away, 0.2 x 0.2 m: about 100 voxels
    # the object covers 62% of the box; the wall the rest, in about 5000 voxels
    box = Box2D(20, 30, 180, 130)
    config = LiftingConfig(min_band_m=10.0, floor_tolerance_m=0.0, complete_depth=False)
    result = lift_detections([box], depth, '32FC1', cam, config)
    assert len(result.objects) == 1
    assert result.objects[0].centre[2] == pytest.approx(1.0, abs=0.02)
    assert result.objects[0].size[0] == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize('kwargs', [dict(floor_min_fraction=0.0), dict(floor_stride=0),
                                    dict(floor_tolerance_m=-0.01), dict(floor_gap_m=-1.0),
                                    dict(box_face_m=-0.1), dict(outlier_neighbours=-1),
                                    dict(outlier_std=0.0)])
def test_invalid_floor_and_cluster_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        LiftingConfig(**kwargs)
