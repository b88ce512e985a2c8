"""Depth registered to the colour camera, the image the 2D boxes live in.

A depth image from a camera of its own (a RealSense without align_depth: 848 x 480, its own
K, frame camera_depth_optical_frame) is reprojected into the colour camera: each depth pixel
is back-projected with the depth camera's K and D, moved by the depth-to-colour extrinsics,
projected with the colour camera's K and D onto the nearest colour pixel, and where several
land on one pixel the nearest depth wins (z-buffer). A depth pixel seen from the colour
camera spans about fx_colour / fx_depth colour pixels (2.1 for a RealSense's 848 x 480 depth
and 1280 x 720 colour), so each one is splatted onto the odd square of colour pixels that
covers that, again nearest first (a minimum filter of the z-buffer): the registered image has
no holes between the depth pixels, and a background point the depth camera sees beside a
foreground edge that hides it from the colour camera loses to the foreground around it
instead of showing through. Foreground edges grow by half a splat (1 colour pixel for a
RealSense). Colour pixels the depth camera did not see have no depth (NaN).

Depth already registered (the same frame id as the colour camera) is used as it is, when its
size and K agree with the colour camera's up to a resampling; anything else is refused with
a LiftingError naming both frames and sizes: 3D boxes from mismatched depth would be wrong
without a sign.
"""

from __future__ import annotations

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import LiftingError
from neulens_ros.lifting.extrinsics import RigidTransform
from neulens_ros.lifting.geometry import distort_normalised, ray_grid

# registered depth may be resampled: its K scaled to the colour size must agree this well
FOCAL_TOLERANCE = 0.01  # relative
CENTRE_TOLERANCE = 0.01  # of the image's width / height


def _describe(camera: PinholeCamera) -> str:
    return f'{camera.frame_id!r} ({camera.width}x{camera.height})'


def intrinsics_mismatch(depth_camera: PinholeCamera, colour_camera: PinholeCamera) -> str:
    """Why depth in the colour camera's frame is not registered to it ('' when it is): the
    aspect ratios differ, or its K resampled to the colour size is another camera's."""
    sx = colour_camera.width / depth_camera.width
    sy = colour_camera.height / depth_camera.height
    if abs(sx - sy) > 0.01 * max(sx, sy):
        return 'their aspect ratios differ'
    scaled = depth_camera.scaled(colour_camera.width, colour_camera.height)
    focal = max(abs(scaled.fx - colour_camera.fx) / colour_camera.fx,
                abs(scaled.fy - colour_camera.fy) / colour_camera.fy)
    centre = max(abs(scaled.cx - colour_camera.cx) / colour_camera.width,
                 abs(scaled.cy - colour_camera.cy) / colour_camera.height)
    if focal > FOCAL_TOLERANCE or centre > CENTRE_TOLERANCE:
        return (f'their intrinsics differ (depth K scaled to the colour size: fx {scaled.fx:.1f}'
                f' cx {scaled.cx:.1f} cy {scaled.cy:.1f}; colour: fx {colour_camera.fx:.1f} cx '
                f'{colour_camera.cx:.1f} cy {colour_camera.cy:.1f})')
    return ''


def splat_size(depth_camera: PinholeCamera, colour_camera: PinholeCamera) -> int:
    """Odd side (colour pixels) of the square each depth pixel is splatted onto: at least the
    colour pixels one depth pixel spans at equal distance, 1 when it spans at most one."""
    span = max(colour_camera.fx / depth_camera.fx, colour_camera.fy / depth_camera.fy)
    return 1 if span <= 1 else 2 * int(np.ceil((span - 1) / 2)) + 1


def square_minimum(image: np.ndarray, size: int) -> np.ndarray:
    """[H, W] minimum of `image` [H, W] over the odd size x size square around each pixel
    (outside = inf), separably: along rows, then along columns."""
    if size <= 1:
        return image
    r = size // 2
    h, w = image.shape
    padded = np.pad(image, r, mode='constant', constant_values=np.inf)
    rows = padded[:, :w].copy()
    for dx in range(1, size):
        np.minimum(rows, padded[:, dx:dx + w], out=rows)
    out = rows[:h].copy()
    for dy in range(1, size):
        np.minimum(out, rows[dy:dy + h], out=out)
    return out


def register_depth(depth_m: np.ndarray, depth_camera: PinholeCamera,
                   colour_camera: PinholeCamera, depth_to_colour: RigidTransform
                   ) -> np.ndarray:
    """[Hc, Wc] float32 depth (metres along the colour camera's optical axis, NaN = none) of
    depth image `depth_m` [Hd, Wd] (metres; 0 / NaN / inf = none) reprojected into the colour
    camera; `depth_to_colour` takes depth-frame points to the colour frame."""
    if depth_m.shape != (depth_camera.height, depth_camera.width):
        raise LiftingError(f'depth CameraInfo of {_describe(depth_camera)} does not match its '
                           f'{depth_m.shape[1]}x{depth_m.shape[0]} image')
    x, y = ray_grid(depth_camera)
    z = depth_m.reshape(-1)
    ok = np.isfinite(z) & (z > 0)
    z = z[ok]
    # [N] coordinates of the depth pixels' points, moved to the colour frame
    xc, yc, zc = depth_to_colour.apply_xyz(x.reshape(-1)[ok] * z, y.reshape(-1)[ok] * z, z)
    front = zc > 1e-6
    xc, yc, zc = xc[front] / zc[front], yc[front] / zc[front], zc[front]
    if colour_camera.has_distortion:
        xc, yc = distort_normalised(xc, yc, colour_camera.distortion)
    u = np.rint(xc * colour_camera.fx + colour_camera.cx).astype(np.int64)
    v = np.rint(yc * colour_camera.fy + colour_camera.cy).astype(np.int64)
    inside = (u >= 0) & (u < colour_camera.width) & (v >= 0) & (v < colour_camera.height)
    out = np.full(colour_camera.height * colour_camera.width, np.inf, np.float32)
    np.minimum.at(out, v[inside] * colour_camera.width + u[inside],
                  zc[inside].astype(np.float32))  # z-buffer
    out = out.reshape(colour_camera.height, colour_camera.width)
    out = square_minimum(out, splat_size(depth_camera, colour_camera))
    out[np.isinf(out)] = np.nan
    return out


def depth_for_colour(depth_m: np.ndarray, depth_camera: PinholeCamera,
                     colour_camera: PinholeCamera, depth_to_colour: RigidTransform | None
                     ) -> tuple[np.ndarray, PinholeCamera]:
    """(depth [H, W] metres registered to the colour camera, the camera of its pixels).
    `depth_m` is an array or a lift.MetresView (returned as it is when registered already).

    Depth in the colour camera's frame is returned as it is (its pixels may be a resampling
    of the colour pixels); depth in another frame is registered with `depth_to_colour`.
    LiftingError when the depth's frame is the colour's but its size or K are not, or when it
    is another frame and `depth_to_colour` is unknown (None)."""
    if depth_camera.frame_id == colour_camera.frame_id:
        problem = intrinsics_mismatch(depth_camera, colour_camera)
        if problem:
            raise LiftingError(
                f'depth {_describe(depth_camera)} and colour {_describe(colour_camera)} share '
                f'a frame id but {problem}: the depth is not registered to the colour image; '
                'publish registered depth (e.g. align_depth) or give the depth its own frame id '
                'and the depth-to-colour extrinsics')
        return depth_m, depth_camera
    if depth_to_colour is None:
        raise LiftingError(
            f'depth {_describe(depth_camera)} is not registered to colour '
            f'{_describe(colour_camera)} and the transform between the two frames is unknown: '
            'publish it on /tf_static, set depth_to_colour_translation and '
            'depth_to_colour_rotation, or publish registered depth (e.g. align_depth)')
    return (register_depth(np.asarray(depth_m), depth_camera, colour_camera, depth_to_colour),
            colour_camera)
