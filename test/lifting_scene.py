"""An analytic RGB-D scene for the registration tests: a block in front of a wall seen by a
1280 x 720 colour camera and by a separate 848 x 480 depth camera (RealSense-like
intrinsics, without align_depth), rendered exactly by ray casting from either camera; and
`lift_hd_scene`, a generated 1280 x 720 scene lifted under several settings."""

from __future__ import annotations

import numpy as np

from dataclasses import replace
from typing import Any

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.scenes import SceneConfig, generate_scene
from neulens_ros.eval.lifting import ground_truth_boxes
from neulens_ros.lifting.extrinsics import RigidTransform, quaternion_to_rotation
from neulens_ros.lifting.geometry import back_project
from neulens_ros.lifting.lift import Box2D, LiftingConfig, lift_detections

COLOUR = PinholeCamera(width=1280, height=720, fx=910.0, fy=908.0, cx=641.0, cy=362.0,
                       distortion=(0.02, -0.01, 0.0005, -0.0003, 0.0),
                       frame_id='camera_color_optical_frame')
DEPTH = PinholeCamera(width=848, height=480, fx=425.0, fy=426.0, cx=423.0, cy=241.0,
                      frame_id='camera_depth_optical_frame')
WALL_Z = 3.0  # a wall facing the colour camera, metres
BLOCK = (np.array([-0.35, -0.1, 1.6]), np.array([0.25, 0.45, 2.2]))  # min, max corners
NEAR = 2.5  # metres: nearer is the block, farther the wall


def quaternion(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """[4] x, y, z, w of a rotation by `degrees` about `axis`."""
    a = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    half = np.deg2rad(degrees) / 2
    return np.append(a * np.sin(half), np.cos(half))


# the depth camera 5 cm left of the colour camera, 1 cm up, turned 3 degrees about y and 2
# about x: far more than a real module's, so a wrong sign or order shows
DEPTH_TO_COLOUR = RigidTransform(
    quaternion_to_rotation(quaternion((0, 1, 0), 3)) @ quaternion_to_rotation(
        quaternion((1, 0, 0), 2)), np.array([-0.05, -0.01, 0.004]))


def render(camera: PinholeCamera, camera_to_colour: RigidTransform) -> np.ndarray:
    """[H, W] depth (metres along the camera's axis) of the wall and the block (given in the
    colour frame) seen by `camera` at pose `camera_to_colour`, by exact ray casting."""
    vs, us = np.mgrid[0:camera.height, 0:camera.width]
    rays = back_project(camera, us.ravel(), vs.ravel(), np.ones(us.size))  # [N, 3], z = 1
    origin = camera_to_colour.translation
    dirs = rays @ camera_to_colour.rotation.T  # [N, 3] in the colour frame
    with np.errstate(divide='ignore', invalid='ignore'):
        hit = (WALL_Z - origin[2]) / dirs[:, 2]  # ray parameter = depth, as rays have z = 1
        t0 = (BLOCK[0] - origin) / dirs
        t1 = (BLOCK[1] - origin) / dirs
    near = np.minimum(t0, t1).max(1)
    far = np.maximum(t0, t1).min(1)
    in_block = (near <= far) & (near > 0)
    hit = np.where(in_block, np.minimum(hit, near), hit)
    return hit.reshape(camera.height, camera.width)


def smooth(depth: np.ndarray, tolerance: float) -> np.ndarray:
    """[H, W] bool: pixels whose 3 x 3 neighbourhood varies less than `tolerance` metres."""
    pad = np.pad(depth, 1, mode='edge')
    shifts = [pad[1 + dy:pad.shape[0] - 1 + dy, 1 + dx:pad.shape[1] - 1 + dx]
              for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return (np.max(shifts, 0) - np.min(shifts, 0)) < tolerance


def block_box(colour_depth: np.ndarray) -> Box2D:
    """The block's 2D box (colour pixels) in the colour camera's depth image [H, W]."""
    vs, us = np.nonzero(colour_depth < NEAR)
    return Box2D(float(us.min()), float(vs.min()), float(us.max() + 1), float(vs.max() + 1),
                 class_id=0)


def lift_hd_scene(seed: int, field: str, values: tuple[float, ...]) -> dict[float, dict[int, Any]]:
    """The generated 1280 x 720 scene `seed` lifted from its ground-truth boxes once per value
    of the LiftingConfig `field`: {value: {box index: lifted object}}."""
    scene = generate_scene(SceneConfig(width=1280, height=720), seed)
    boxes = ground_truth_boxes(scene)
    config = LiftingConfig(up=scene.up)
    return {value: {o.index: o for o in lift_detections(
        boxes, scene.depth, '32FC1', scene.camera, replace(config, **{field: value})).objects}
        for value in values}
