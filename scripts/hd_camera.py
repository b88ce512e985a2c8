#!/usr/bin/env python3
"""A stand-in for a user's RGB-D camera driver: an rclpy program of its own (not the package's
source node) that publishes what a driver such as realsense2_camera publishes, at HD.

    .venv/bin/python scripts/hd_camera.py --duration 60            # 1280x720 at 30 Hz
    .venv/bin/python scripts/hd_camera.py --source walk --preset hard --duration 180

Per frame, one stamp on all four messages:
    camera/color/image_raw     sensor_msgs/Image bgr8 (1280x720 by default)
    camera/color/camera_info   sensor_msgs/CameraInfo, plumb_bob
    camera/depth/image_raw     sensor_msgs/Image 16UC1 millimetres, registered to colour
                               (same optical frame and K; 0 = no depth)
    camera/depth/camera_info   the same CameraInfo
all with the sensor-data QoS (best effort, volatile, depth 5). Frames come from the package's
generated scenes or walks (neulens_ros.data); `--preload` distinct frames are rendered first
and cycled, so rendering never slows the stream. The messages are filled by hand, as a driver
fills them, without the package's converters.

Fast DDS: whole HD frames need the package's profile (shared memory with a large segment);
this program points Fast DDS at config/fastdds_local.xml (through the variable the installed
Fast DDS reads: topology.fastdds_profile_variable) before rclpy starts unless the environment
already chooses a profile or builtin transports
(FASTDDS_DEFAULT_PROFILES_FILE, FASTRTPS_DEFAULT_PROFILES_FILE, FASTDDS_BUILTIN_TRANSPORTS);
`--fastdds-defaults` leaves Fast DDS at its defaults (to measure what they lose).

At the end it prints one JSON line: {"published": N, "duration_s": ..., "rate_hz": ...,
"skipped_ticks": N, ...} (skipped_ticks: ticks left out because publishing fell a whole
period behind, as a camera drops frames rather than sending a burst).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                     'FASTDDS_BUILTIN_TRANSPORTS')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=60.0, help='seconds of streaming')
    parser.add_argument('--rate', type=float, default=30.0, help='frames per second')
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--source', choices=('generated', 'walk'), default='generated')
    parser.add_argument('--preset', default='', help="scene preset ('' = the package's "
                        "default; walks need 'hard')")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--preload', type=int, default=30,
                        help='distinct frames rendered before streaming, then cycled')
    parser.add_argument('--namespace', default='', help='ROS namespace of the camera topics')
    parser.add_argument('--wait-for-subscribers', type=int, default=0, metavar='N',
                        help='wait (up to 120 s) until the colour topic has N subscribers')
    parser.add_argument('--fastdds-defaults', action='store_true',
                        help="do not select the package's Fast DDS profile")
    return parser


def choose_fastdds_profile(defaults: bool) -> str:
    """Select the package's Fast DDS profile for this process (before rclpy starts)."""
    if defaults:
        for name in PROFILE_VARIABLES:
            os.environ.pop(name, None)
        return 'Fast DDS defaults'
    chosen = [f'{n}={os.environ[n]}' for n in PROFILE_VARIABLES if os.environ.get(n)]
    if chosen:
        return ', '.join(chosen)
    from neulens_ros.topology import config_dir, fastdds_profile_variable
    profile, variable = config_dir() / 'fastdds_local.xml', fastdds_profile_variable()
    os.environ[variable] = str(profile)
    return f'{variable}={profile}'


def render_frames(args: argparse.Namespace) -> list:
    """The first `--preload` frames of the chosen scenes or walk."""
    from neulens_ros.data.sequence import frame_stream
    from neulens_ros.models.names import DEFAULT_PRESET
    preset = args.preset or ('hard' if args.source == 'walk' else DEFAULT_PRESET)
    stream = frame_stream(args.source, seed=args.seed, width=args.width, height=args.height,
                          preset=preset, walk_fps=args.rate)
    return list(itertools.islice(stream, args.preload))


def camera_info(frame, header):  # noqa: ANN001, ANN201 - message types come from rclpy
    """A plumb_bob CameraInfo of the frame's pinhole camera."""
    from sensor_msgs.msg import CameraInfo
    cam = frame.camera
    distortion = list(cam.distortion) or [0.0] * 5
    return CameraInfo(header=header, width=cam.width, height=cam.height,
                      distortion_model='plumb_bob', d=[float(v) for v in distortion],
                      k=[cam.fx, 0.0, cam.cx, 0.0, cam.fy, cam.cy, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[cam.fx, 0.0, cam.cx, 0.0, 0.0, cam.fy, cam.cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def image(array: np.ndarray, encoding: str, header):  # noqa: ANN001, ANN201
    """A sensor_msgs/Image of a contiguous [H, W(, C)] array, row-major, little endian."""
    from sensor_msgs.msg import Image
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding=encoding,
                is_bigendian=0, step=array.strides[0])
    msg.data = array.tobytes()
    return msg


def messages(frame) -> tuple:  # noqa: ANN001
    """(bgr8 array, 16UC1 millimetre array) of one frame, made once per preloaded frame."""
    bgr = frame.rgb[:, :, ::-1]
    depth_mm = np.nan_to_num(frame.depth_m * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(bgr), np.clip(np.rint(depth_mm), 0, 65535).astype('<u2')


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    transport = choose_fastdds_profile(args.fastdds_defaults)
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from std_msgs.msg import Header
    from sensor_msgs.msg import CameraInfo, Image

    started = time.monotonic()
    frames = render_frames(args)
    arrays = [messages(f) for f in frames]
    print(f'hd_camera: {len(frames)} frames of {args.width}x{args.height} rendered in '
          f'{time.monotonic() - started:.1f} s; transport: {transport}', flush=True)
    rclpy.init()
    node = rclpy.create_node('hd_camera', namespace=args.namespace)
    qos = QoSProfile(depth=5, reliability=qos_profile_sensor_data.reliability,
                     durability=qos_profile_sensor_data.durability)
    pubs = {name: node.create_publisher(kind, f'camera/{name}', qos) for name, kind in (
        ('color/image_raw', Image), ('color/camera_info', CameraInfo),
        ('depth/image_raw', Image), ('depth/camera_info', CameraInfo))}
    stop = {'now': False}
    for sig in (signal.SIGINT, signal.SIGTERM):  # also where SIGINT was ignored at start
        signal.signal(sig, lambda *_: stop.update(now=True))
    wait_end = time.monotonic() + 120.0
    while (pubs['color/image_raw'].get_subscription_count() < args.wait_for_subscribers
           and time.monotonic() < wait_end and not stop['now']):
        time.sleep(0.1)
    period = 1.0 / args.rate
    published = skipped = 0
    begin = time.monotonic()
    i = 0  # tick number: frame i of a walk belongs to time i * period
    while not stop['now'] and i * period < args.duration:
        tick = begin + i * period
        now = time.monotonic()
        if now < tick:
            time.sleep(tick - now)
        elif now - tick >= period:  # a whole period late: skip ticks, as a camera drops
            missed = int((now - tick) // period)
            skipped += missed
            i += missed
            continue
        frame, (bgr, depth) = frames[i % len(frames)], arrays[i % len(frames)]
        header = Header(stamp=node.get_clock().now().to_msg(),
                        frame_id=frame.camera.frame_id)
        info = camera_info(frame, header)
        pubs['color/image_raw'].publish(image(bgr, 'bgr8', header))
        pubs['color/camera_info'].publish(info)
        pubs['depth/image_raw'].publish(image(depth, '16UC1', header))
        pubs['depth/camera_info'].publish(info)
        published += 1
        i += 1
    elapsed = time.monotonic() - begin
    print(json.dumps({'published': published, 'duration_s': round(elapsed, 2),
                      'rate_hz': round(published / elapsed, 2) if elapsed else 0.0,
                      'skipped_ticks': skipped, 'transport': transport}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
