"""sensor_msgs/Image and CompressedImage <-> numpy, with cv_bridge's semantics.

ROS 2's cv_bridge cannot be installed everywhere (and PyPI's `cv-bridge` is a ROS 1 copy), so
the project converts images itself. Any object with the Image fields works (rclpy messages and
messages deserialised by `rosbags`).

Zero copy: `image_to_numpy` returns a read-only view on the message buffer whenever it can
(native byte order; padded rows are skipped with strides, not copied). It copies when the
data is big-endian on a little-endian host (or the reverse), or when a conversion to another
encoding is asked for. `numpy_to_image` copies once into the message.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image

from neulens_ros.data.resize import box_resize
from neulens_ros.errors import EncodingError


@dataclass(frozen=True)
class EncodingInfo:
    """Pixel layout of one sensor_msgs/Image encoding."""

    dtype: np.dtype
    channels: int


ENCODINGS: dict[str, EncodingInfo] = {
    'rgb8': EncodingInfo(np.dtype(np.uint8), 3),
    'bgr8': EncodingInfo(np.dtype(np.uint8), 3),
    'rgba8': EncodingInfo(np.dtype(np.uint8), 4),
    'bgra8': EncodingInfo(np.dtype(np.uint8), 4),
    'mono8': EncodingInfo(np.dtype(np.uint8), 1),
    'mono16': EncodingInfo(np.dtype(np.uint16), 1),
    '8UC1': EncodingInfo(np.dtype(np.uint8), 1),
    '8UC3': EncodingInfo(np.dtype(np.uint8), 3),
    '16UC1': EncodingInfo(np.dtype(np.uint16), 1),  # depth, millimetres (0 = no depth)
    '32FC1': EncodingInfo(np.dtype(np.float32), 1),  # depth, metres (NaN/inf = no depth)
}

# Colour conversions cv_bridge offers between the 8-bit colour encodings.
_CHANNEL_ORDER = {'rgb8': (0, 1, 2), 'bgr8': (2, 1, 0), 'rgba8': (0, 1, 2, 3),
                  'bgra8': (2, 1, 0, 3)}
DEPTH_ENCODINGS = ('16UC1', '32FC1')


def encoding_info(encoding: str) -> EncodingInfo:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise EncodingError(f'unsupported image encoding {encoding!r}; supported: '
                            + ', '.join(ENCODINGS)) from None


def image_to_numpy(msg: Any, desired_encoding: str = 'passthrough') -> np.ndarray:
    """Image -> array [H, W] (one channel) or [H, W, C].

    `desired_encoding` 'passthrough' keeps the message's encoding; otherwise one of the 8-bit
    colour encodings (rgb8, bgr8, rgba8, bgra8, mono8) to convert colour images to.
    """
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * info.channels * info.dtype.itemsize
    if height < 0 or width < 0:
        raise EncodingError(f'negative image size {width}x{height}')
    if step < row_bytes:
        raise EncodingError(f'{msg.encoding} image {width}x{height}: step {step} is less than '
                            f'width * bytes per pixel = {row_bytes}')
    try:  # any buffer (bytes, array.array from rclpy, numpy from rosbags) without a copy
        flat = np.frombuffer(msg.data, dtype=np.uint8)
    except TypeError:  # a plain list of ints
        flat = np.asarray(msg.data, dtype=np.uint8)
    needed = step * (height - 1) + row_bytes if height else 0
    if flat.size < needed:
        raise EncodingError(f'{msg.encoding} image {width}x{height} with step {step} needs '
                            f'{needed} bytes of data, got {flat.size} (truncated message?)')
    big_endian = bool(msg.is_bigendian)
    dtype = info.dtype.newbyteorder('>' if big_endian else '<')
    item = info.dtype.itemsize
    array = np.ndarray(shape=(height, width, info.channels), dtype=dtype, buffer=flat,
                       strides=(step, info.channels * item, item))
    if item > 1 and big_endian != (sys.byteorder == 'big'):
        array = array.astype(info.dtype)  # byte swap: a copy in native order
    if info.channels == 1:
        array = array[:, :, 0]
    if desired_encoding in ('passthrough', msg.encoding):
        return array
    return convert_colour(array, msg.encoding, desired_encoding)


def image_to_rgb_resized(msg: Any, size: tuple[int, int]) -> np.ndarray:
    """Colour Image -> rgb8 [height, width, 3] resized to `size` (width, height) with the box
    filter (data.resize.box_resize). rgb8 and bgr8 are resized in their own channel order and
    only the small image is reordered: the box filter treats each channel alone, so the pixels
    are those of converting first, without reordering every pixel of the large frame (1280 x
    720 bgr8: about 6 ms of CPU per frame)."""
    if msg.encoding not in ('rgb8', 'bgr8'):
        return box_resize(np.ascontiguousarray(image_to_numpy(msg, 'rgb8')), size)
    small = box_resize(np.ascontiguousarray(image_to_numpy(msg)), size)
    return small if msg.encoding == 'rgb8' else convert_colour(small, 'bgr8', 'rgb8')


def convert_colour(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert between rgb8, bgr8, rgba8, bgra8 and mono8 (a new array)."""
    if source not in _CHANNEL_ORDER and source != 'mono8':
        raise EncodingError(f'cannot convert {source} to {target}: only the 8-bit colour '
                            'encodings rgb8, bgr8, rgba8, bgra8 and mono8 convert')
    if target not in _CHANNEL_ORDER and target != 'mono8':
        raise EncodingError(f'cannot convert to {target!r}: use passthrough or one of '
                            + ', '.join([*_CHANNEL_ORDER, 'mono8']))
    if source == 'mono8':
        rgb = np.repeat(array[:, :, None], 3, axis=2)
    else:
        rgb = array[:, :, list(_CHANNEL_ORDER[source][:3])]
    if target == 'mono8':  # ITU-R BT.601 luma, as cv_bridge/OpenCV
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    order = _CHANNEL_ORDER[target]
    out = rgb[:, :, list(order[:3])]
    if len(order) == 4:
        alpha = array[:, :, 3:4] if source in ('rgba8', 'bgra8') else \
            np.full(out.shape[:2] + (1,), 255, np.uint8)
        out = np.concatenate([out, alpha], axis=2)
    return np.ascontiguousarray(out)


def numpy_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Image:
    """Array [H, W] or [H, W, C] -> Image in `encoding` (dtype and channels must match)."""
    info = encoding_info(encoding)
    array = np.asarray(array)
    channels = 1 if array.ndim == 2 else (array.shape[2] if array.ndim == 3 else -1)
    if channels != info.channels:
        raise EncodingError(f'{encoding} needs {info.channels} channel(s) ([H, W] or '
                            f'[H, W, {info.channels}]), got an array of shape '
                            f'{list(array.shape)}')
    if array.dtype != info.dtype:
        raise EncodingError(f'{encoding} needs dtype {info.dtype}, got {array.dtype}; convert '
                            'first (e.g. depth in metres as float32 for 32FC1, millimetres '
                            'as uint16 for 16UC1)')
    msg = Image(height=int(array.shape[0]), width=int(array.shape[1]), encoding=encoding,
                is_bigendian=sys.byteorder == 'big',
                step=int(array.shape[1]) * info.channels * info.dtype.itemsize)
    if header is not None:
        msg.header = header
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


def numpy_to_compressed(array: np.ndarray, fmt: str = 'jpeg', quality: int = 90,
                        header: Any = None) -> CompressedImage:
    """rgb8 [H, W, 3] / mono8 [H, W] (jpeg or png) or uint16 [H, W] (png) -> CompressedImage.

    `format` is 'jpeg' or 'png' (what image_transport's decoders accept); a uint16 PNG keeps
    depth in millimetres losslessly.
    """
    array = np.asarray(array)
    if fmt not in ('jpeg', 'png'):
        raise EncodingError(f"compressed format must be 'jpeg' or 'png', got {fmt!r}")
    if not 1 <= int(quality) <= 100:
        raise EncodingError(f'JPEG quality must be 1..100, got {quality}')
    if array.dtype == np.uint16 and array.ndim == 2:
        if fmt != 'png':
            raise EncodingError('16-bit images (depth in mm) compress only as png')
        pil = PILImage.fromarray(array.astype('<u2'))  # mode I;16
    elif array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3
                                                            and array.shape[2] == 3)):
        pil = PILImage.fromarray(array)
    else:
        raise EncodingError(f'cannot compress an array of shape {list(array.shape)} and dtype '
                            f'{array.dtype}: use uint8 [H, W, 3] or [H, W], or uint16 [H, W]')
    out = io.BytesIO()
    if fmt == 'jpeg':
        pil.save(out, format='JPEG', quality=int(quality))
    else:
        pil.save(out, format='PNG', compress_level=1)
    msg = CompressedImage(format=fmt)
    if header is not None:
        msg.header = header
    msg.data = out.getvalue()
    return msg


def compressed_to_numpy(msg: Any) -> np.ndarray:
    """CompressedImage (jpeg or png) -> uint8 [H, W, 3] / [H, W] or uint16 [H, W]."""
    data = bytes(msg.data)
    if not data:
        raise EncodingError(f'empty CompressedImage (format {msg.format!r})')
    try:
        with PILImage.open(io.BytesIO(data)) as pil:
            pil.load()
            if pil.mode in ('I;16', 'I;16B', 'I'):
                return np.asarray(pil, dtype=np.uint16)
            if pil.mode not in ('RGB', 'L'):
                pil = pil.convert('RGB')
            return np.asarray(pil)
    except (OSError, ValueError) as exc:
        raise EncodingError(f'cannot decode CompressedImage (format {msg.format!r}): {exc}'
                            ) from exc


def depth_to_metres(array: np.ndarray, encoding: str) -> np.ndarray:
    """Depth image -> float32 metres [H, W], NaN where there is no depth.

    16UC1 is millimetres with 0 = no depth; 32FC1 is metres with NaN, inf or <= 0 = no depth.
    """
    if encoding == '16UC1':
        metres = np.asarray(array, dtype=np.float32) * np.float32(1e-3)
        metres[np.asarray(array) == 0] = np.nan
        return metres
    if encoding == '32FC1':
        metres = np.array(array, dtype=np.float32)
        metres[~np.isfinite(metres) | (metres <= 0)] = np.nan
        return metres
    raise EncodingError(f'depth encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}')


def depth_to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """float32 metres (NaN = none) -> uint16 millimetres (0 = none), saturating at 65.535 m."""
    mm = np.nan_to_num(np.asarray(depth_m, dtype=np.float64) * 1000.0, nan=0.0, posinf=0.0,
                       neginf=0.0)
    return np.clip(np.rint(mm), 0, 65535).astype(np.uint16)
