"""sensor_msgs Image/CompressedImage <-> numpy (cv_bridge semantics)."""

import sys

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from neulens_ros.bridge.image import (ENCODINGS, compressed_to_numpy, depth_to_metres,
                                      depth_to_millimetres, image_to_numpy,
                                      numpy_to_compressed, numpy_to_image)
from neulens_ros.errors import EncodingError

RNG = np.random.default_rng(7)


def sample(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    info = ENCODINGS[encoding]
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype == np.float32:
        return RNG.uniform(0.2, 9.0, shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(info.dtype).max, shape, dtype=info.dtype)


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip(encoding: str) -> None:
    array = sample(encoding)
    msg = numpy_to_image(array, encoding)
    assert msg.step == array.shape[1] * array.itemsize * (array.shape[2] if array.ndim == 3
                                                          else 1)
    back = image_to_numpy(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', '32FC1'])
def test_padded_step_is_honoured_without_copy(encoding: str) -> None:
    array = sample(encoding, 4, 6)
    info = ENCODINGS[encoding]
    row = 6 * info.channels * info.dtype.itemsize
    step = row + 7
    padded = np.full((4, step), 0xAB, np.uint8)
    padded[:, :row] = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8).reshape(4,
                                                                                             row)
    msg = Image(height=4, width=6, encoding=encoding, step=step,
                is_bigendian=sys.byteorder == 'big')
    data = padded.tobytes()
    msg.data = data
    back = image_to_numpy(msg)
    np.testing.assert_array_equal(back, array)
    # a numpy buffer (as rosbags delivers) is viewed, not copied
    raw = np.frombuffer(data, np.uint8).copy()
    msg_like = type('Msg', (), dict(height=4, width=6, encoding=encoding, step=step,
                                    is_bigendian=sys.byteorder == 'big', data=raw))()
    assert np.shares_memory(image_to_numpy(msg_like), raw)


def test_big_endian_16_bit() -> None:
    depth = np.array([[1, 256, 1000], [65535, 0, 4242]], dtype=np.uint16)
    msg = Image(height=2, width=3, encoding='16UC1', step=6, is_bigendian=True)
    msg.data = depth.astype('>u2').tobytes()
    back = image_to_numpy(msg)
    np.testing.assert_array_equal(back, depth)
    assert back.dtype == np.uint16 and back.dtype.isnative


@pytest.mark.parametrize('source,target', [('rgb8', 'bgr8'), ('bgr8', 'rgb8'),
                                           ('rgba8', 'rgb8'), ('rgb8', 'bgra8')])
def test_colour_conversion(source: str, target: str) -> None:
    rgb = sample('rgb8')
    src = {'rgb8': rgb, 'bgr8': rgb[:, :, ::-1],
           'rgba8': np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)])}[source]
    out = image_to_numpy(numpy_to_image(np.ascontiguousarray(src), source), target)
    expected = {'rgb8': rgb, 'bgr8': rgb[:, :, ::-1],
                'bgra8': np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
                }[target]
    np.testing.assert_array_equal(out, expected)


def test_mono8_luma() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    mono = image_to_numpy(numpy_to_image(rgb, 'rgb8'), 'mono8')
    assert mono.tolist() == [[76, 150, 29, 255]]


@pytest.mark.parametrize('mutate,match', [
    (dict(encoding='yuv422_yuy2'), 'unsupported image encoding'),
    (dict(step=20), 'step 20 is less than'),
    (dict(data=b'\x00' * 50), 'truncated'),
])
def test_bad_messages(mutate: dict, match: str) -> None:
    msg = numpy_to_image(sample('rgb8', 4, 7), 'rgb8')
    for key, value in mutate.items():
        setattr(msg, key, value)
    with pytest.raises(EncodingError, match=match):
        image_to_numpy(msg)


@pytest.mark.parametrize('array,encoding,match', [
    (np.zeros((4, 4), np.uint8), 'rgb8', 'channel'),
    (np.zeros((4, 4, 3), np.float32), 'rgb8', 'dtype'),
    (np.zeros((4, 4), np.float64), '32FC1', 'dtype'),
    (np.zeros((4,), np.uint16), '16UC1', 'channel'),
    (np.zeros((4, 4), np.uint8), 'nv12', 'unsupported'),
])
def test_bad_arrays(array: np.ndarray, encoding: str, match: str) -> None:
    with pytest.raises(EncodingError, match=match):
        numpy_to_image(array, encoding)


def test_cannot_convert_depth_to_colour() -> None:
    with pytest.raises(EncodingError, match='cannot convert'):
        image_to_numpy(numpy_to_image(sample('16UC1'), '16UC1'), 'rgb8')


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def smooth_image() -> np.ndarray:
    y, x = np.mgrid[0:96, 0:128]
    return np.dstack([(x * 2) % 256, (y * 2) % 256, (x + y) % 256]).astype(np.uint8)


def test_compressed_round_trips() -> None:
    rgb = smooth_image()
    png = numpy_to_compressed(rgb, 'png')
    assert png.format == 'png'
    np.testing.assert_array_equal(compressed_to_numpy(png), rgb)
    jpeg = numpy_to_compressed(rgb, 'jpeg', quality=90)
    assert len(jpeg.data) < rgb.nbytes / 4
    assert psnr(compressed_to_numpy(jpeg), rgb) > 30.0
    depth_mm = RNG.integers(0, 65535, (30, 40), dtype=np.uint16)
    np.testing.assert_array_equal(compressed_to_numpy(numpy_to_compressed(depth_mm, 'png')),
                                  depth_mm)


def test_bad_compressed() -> None:
    with pytest.raises(EncodingError, match='cannot decode'):
        compressed_to_numpy(CompressedImage(format='jpeg', data=b'not a jpeg at all'))
    with pytest.raises(EncodingError, match='empty'):
        compressed_to_numpy(CompressedImage(format='png'))
    with pytest.raises(EncodingError, match='only as png'):
        numpy_to_compressed(np.zeros((4, 4), np.uint16), 'jpeg')
    with pytest.raises(EncodingError, match="'jpeg' or 'png'"):
        numpy_to_compressed(np.zeros((4, 4, 3), np.uint8), 'webp')
    with pytest.raises(EncodingError, match='cannot compress'):
        numpy_to_compressed(np.zeros((4, 4, 4), np.uint8), 'png')


def test_depth_conversions() -> None:
    mm = np.array([[0, 1000, 2500]], np.uint16)
    metres = depth_to_metres(mm, '16UC1')
    assert np.isnan(metres[0, 0]) and metres[0, 1] == pytest.approx(1.0)
    f = np.array([[np.nan, np.inf, -1.0, 0.0, 1.25]], np.float32)
    m = depth_to_metres(f, '32FC1')
    assert np.isnan(m[0, :4]).all() and m[0, 4] == pytest.approx(1.25)
    np.testing.assert_array_equal(depth_to_millimetres(np.array([[np.nan, 1.0, 70.0]])),
                                  [[0, 1000, 65535]])
    with pytest.raises(EncodingError, match='depth encoding'):
        depth_to_metres(mm, 'mono16')


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
@pytest.mark.parametrize('size', [(16, 12), (40, 30)])
def test_rgb_resized_equals_converting_then_resizing(encoding: str,
                                                     size: tuple[int, int]) -> None:
    from neulens_ros.bridge.image import image_to_rgb_resized
    from neulens_ros.data.resize import box_resize
    msg = numpy_to_image(sample(encoding, 30, 40), encoding)
    expected = box_resize(np.ascontiguousarray(image_to_numpy(msg, 'rgb8')), size)
    got = image_to_rgb_resized(msg, size)
    assert got.shape == (size[1], size[0], 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


def test_rgb_resized_refuses_depth() -> None:
    from neulens_ros.bridge.image import image_to_rgb_resized
    with pytest.raises(EncodingError, match='cannot convert 16UC1'):
        image_to_rgb_resized(numpy_to_image(sample('16UC1'), '16UC1'), (4, 3))
