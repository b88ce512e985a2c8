"""Depth registration to the colour camera against analytic ground truth, and the transforms
it needs (quaternions, a static transform tree)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import minimum_filter

from lifting_scene import (BLOCK, COLOUR, DEPTH, DEPTH_TO_COLOUR, NEAR, block_box, quaternion,
                           render, smooth)

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import GeometryError, LiftingError
from neulens_ros.lifting.extrinsics import RigidTransform, StaticTransforms
from neulens_ros.lifting.lift import LiftingConfig, lift_detections
from neulens_ros.lifting.registration import (depth_for_colour, intrinsics_mismatch,
                                              register_depth, square_minimum)

def test_registered_depth_matches_the_colour_cameras_own_depth() -> None:
    truth = render(COLOUR, RigidTransform.identity())
    registered = register_depth(render(DEPTH, DEPTH_TO_COLOUR), DEPTH, COLOUR, DEPTH_TO_COLOUR)
    assert registered.shape == (720, 1280) and registered.dtype == np.float32
    both = np.isfinite(registered) & smooth(truth, 0.02)
    # the splats leave no holes where the two views overlap (the depth camera sees wider)
    assert both.mean() > 0.9
    error = np.abs(registered - truth)[both]
    assert np.percentile(error, 99) < 0.01 and np.median(error) < 0.002
    # the block stands in front of the wall in the registered image where the colour camera
    # sees it
    block = (truth < NEAR) & both
    assert block.sum() > 5000 and np.all(registered[block] < NEAR)


def test_without_registration_the_depth_is_wrong() -> None:
    """The check above can fail: the depth camera's image taken as the colour camera's (only
    resampled, as an unregistered stream was lifted before) puts the block elsewhere."""
    depth = render(DEPTH, DEPTH_TO_COLOUR)
    vs, us = np.mgrid[0:720, 0:1280]
    resampled = depth[(vs * 480 // 720), (us * 848 // 1280)]
    truth = render(COLOUR, RigidTransform.identity())
    assert np.mean(np.abs(resampled - truth) > 0.1) > 0.05


def test_the_z_buffer_keeps_the_nearest_depth() -> None:
    """Depth pixels of the wall hidden behind the block from the colour camera's viewpoint
    land on the block's pixels too: the block's depth must win there."""
    truth = render(COLOUR, RigidTransform.identity())
    shifted = RigidTransform(DEPTH_TO_COLOUR.rotation, np.array([-0.3, 0.0, 0.0]))
    registered = register_depth(render(DEPTH, shifted), DEPTH, COLOUR, shifted)
    block = (truth < NEAR) & smooth(truth, 0.02) & np.isfinite(registered)
    assert np.all(registered[block] < NEAR)


def test_lifting_registered_depth_finds_the_block_where_colour_depth_does() -> None:
    truth = render(COLOUR, RigidTransform.identity())
    config = LiftingConfig(up=(0.0, -1.0, 0.0), floor_tolerance_m=0.0, footprints=('box',))
    box = [block_box(truth)]
    direct = lift_detections(box, truth.astype(np.float32), '32FC1', COLOUR, config)
    depth, camera = depth_for_colour(render(DEPTH, DEPTH_TO_COLOUR), DEPTH, COLOUR,
                                     DEPTH_TO_COLOUR)
    registered = lift_detections(box, depth, '32FC1', camera, config)
    block_centre = (BLOCK[0] + BLOCK[1]) / 2
    assert np.linalg.norm(direct.objects[0].centre - block_centre) < 0.03
    assert np.linalg.norm(registered.objects[0].centre - direct.objects[0].centre) < 0.02


def test_depth_in_the_colour_frame_is_kept_when_it_is_a_resampling() -> None:
    depth = np.full((360, 640), 2.0, np.float32)
    half = COLOUR.scaled(640, 360)
    out, camera = depth_for_colour(depth, half, COLOUR, None)
    assert out is depth and camera == half
    assert intrinsics_mismatch(half, COLOUR) == ''


@pytest.mark.parametrize('depth_camera,words', [
    (DEPTH, ['camera_depth_optical_frame', '848x480', 'camera_color_optical_frame',
             '1280x720', 'transform between the two frames is unknown']),
    (PinholeCamera(width=848, height=480, fx=425.0, fy=426.0, cx=423.0, cy=241.0,
                   frame_id=COLOUR.frame_id), ['848x480', '1280x720', 'intrinsics differ']),
    (PinholeCamera(width=640, height=480, fx=455.0, fy=454.0, cx=320.0, cy=240.0,
                   frame_id=COLOUR.frame_id), ['640x480', 'aspect ratios differ']),
    (PinholeCamera(width=640, height=360, fx=300.0, fy=300.0, cx=320.0, cy=180.0,
                   frame_id=COLOUR.frame_id), ['640x360', 'intrinsics differ']),
])
def test_unregistered_depth_without_extrinsics_is_refused(depth_camera: PinholeCamera,
                                                          words: list[str]) -> None:
    depth = np.full((depth_camera.height, depth_camera.width), 2.0, np.float32)
    with pytest.raises(LiftingError) as err:
        depth_for_colour(depth, depth_camera, COLOUR, None)
    for word in words:
        assert word in str(err.value)


def test_a_depth_image_not_of_its_camera_info_is_refused() -> None:
    with pytest.raises(LiftingError, match='does not match'):
        register_depth(np.ones((480, 640), np.float32), DEPTH, COLOUR, DEPTH_TO_COLOUR)


def test_static_tree_chains_through_the_common_ancestor() -> None:
    """camera_link -> depth / colour frames -> optical frames, as a RealSense driver publishes:
    the chain between the optical frames equals the transform composed by hand."""
    optical = RigidTransform.from_quaternion([0, 0, 0], [-0.5, 0.5, -0.5, 0.5])
    link_to_depth = RigidTransform.from_quaternion([0.0, 0.0, 0.0], [0, 0, 0, 1])
    link_to_colour = RigidTransform.from_quaternion([0.0, 0.015, 0.0001],
                                                    quaternion((0, 0, 1), 1.0))
    tree = StaticTransforms()
    tree.add('camera_link', 'camera_depth_frame', link_to_depth)
    tree.add('camera_depth_frame', 'camera_depth_optical_frame', optical)
    tree.add('camera_link', 'camera_color_frame', link_to_colour)
    tree.add('camera_color_frame', 'camera_color_optical_frame', optical)
    found = tree.lookup('camera_color_optical_frame', 'camera_depth_optical_frame')
    points = np.random.default_rng(0).uniform(-2, 2, (20, 3))
    in_link = link_to_depth.apply(optical.apply(points))
    expected = optical.inverse().apply(link_to_colour.inverse().apply(in_link))
    np.testing.assert_allclose(found.apply(points), expected, atol=1e-9)
    assert tree.lookup('camera_color_optical_frame', 'imu_frame') is None
    np.testing.assert_allclose(tree.lookup('camera_link', 'camera_link').rotation, np.eye(3))


@pytest.mark.parametrize('translation,rotation', [
    ([0.0, 0.0], [0, 0, 0, 1]), ([0, 0, 0], [0, 0, 1]), ([0, 0, 0], [0, 0, 0, 2]),
    ([0, 0, float('nan')], [0, 0, 0, 1]), ([0, 0, 0], [0, 0, 0, float('inf')])])
def test_bad_extrinsics_are_refused(translation: list[float], rotation: list[float]) -> None:
    with pytest.raises(GeometryError):
        RigidTransform.from_quaternion(translation, rotation)


def test_bad_static_transforms_are_refused() -> None:
    with pytest.raises(GeometryError, match='two different frame ids'):
        StaticTransforms().add('a', 'a', RigidTransform.identity())
    with pytest.raises(GeometryError, match='orthonormal'):
        RigidTransform(np.diag([1.0, 1.0, -1.0]), np.zeros(3))


@pytest.mark.parametrize('size', [1, 3, 5])
def test_square_minimum_is_the_minimum_over_the_square(size: int) -> None:
    image = np.random.default_rng(size).uniform(1, 5, (17, 23)).astype(np.float32)
    image[3, 4] = np.inf
    np.testing.assert_array_equal(square_minimum(image, size), minimum_filter(
        image, size=size, mode='constant', cval=np.inf))
