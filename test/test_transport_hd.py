"""Camera transport at HD: a 1280x720 bgr8 + 16UC1 stream at 30 Hz from a camera process of its
own (scripts/hd_camera.py) reaches a subscriber in another process when the camera process
uses the package's Fast DDS profile (config/fastdds_local.xml: shared memory with a segment
large enough for whole frames). With Fast DDS defaults, or Fast DDS's LARGE_DATA builtin
transports in the camera process, most HD frames are lost; those fractions are printed for
comparison, not asserted (they depend on the machine's load)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ros

CAMERA = Path(__file__).resolve().parent.parent / 'scripts' / 'hd_camera.py'
SECONDS = 4.0
RATE_HZ = 30.0
PRESET = 'easy'  # the quickest scenes to render at HD: what the frames show is not under test
CONFIGURED_FRACTION = 0.8  # measured 1.0 with the profile; 0.31-0.44 without it


def stream(context: Any, env: dict[str, str], namespace: str, *camera_args: str
           ) -> tuple[int, int, dict]:
    """Run the camera for SECONDS; (colour frames received here, published, camera JSON)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    node = rclpy.create_node(f'hd_listener_{namespace}', context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received: dict[int, tuple[int, int, str]] = {}

    def keep(msg: Image) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        received[stamp] = (msg.width, msg.height, msg.encoding)
    node.create_subscription(Image, f'/{namespace}/camera/color/image_raw', keep,
                             qos_profile_sensor_data)
    camera = subprocess.Popen(
        [sys.executable, str(CAMERA), '--duration', str(SECONDS), '--rate', str(RATE_HZ),
         '--preset', PRESET, '--preload', '3', '--namespace', namespace,
         '--wait-for-subscribers', '1', *camera_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 150.0
        while camera.poll() is None and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        drain = time.monotonic() + 1.0
        while time.monotonic() < drain:
            executor.spin_once(timeout_sec=0.05)
    finally:
        if camera.poll() is None:
            camera.kill()
        output = camera.communicate(timeout=30)[0]
        node.destroy_node()
    assert camera.returncode == 0, output
    report = json.loads(output.strip().splitlines()[-1])
    assert set(received.values()) <= {(1280, 720, 'bgr8')}, received
    return len(received), report['published'], report


def test_hd_stream_reaches_another_process_with_the_package_profile(
        ros_env: dict[str, str], rclpy_context: Any) -> None:
    got, published, report = stream(rclpy_context, ros_env, 'hdprofile')
    fraction = got / published
    print(f'package profile: {got}/{published} = {fraction:.2f}')
    assert 'fastdds_local.xml' in report['transport']
    assert published >= 0.8 * SECONDS * RATE_HZ, report  # the camera kept its rate
    assert fraction >= CONFIGURED_FRACTION, (got, published, report)


@pytest.mark.parametrize('setting,variables', [
    ('Fast DDS defaults', {}),
    ('FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA', {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}),
])
def test_hd_stream_without_the_profile_is_measured(ros_env: dict[str, str],
                                                   rclpy_context: Any, setting: str,
                                                   variables: dict[str, str]) -> None:
    """The camera process without the package's profile (the subscriber keeps it, as the
    pipeline's nodes do): the fraction is printed for the README's numbers."""
    env = {k: v for k, v in ros_env.items() if k != 'FASTDDS_DEFAULT_PROFILES_FILE'}
    env.update(variables)
    args = () if variables else ('--fastdds-defaults',)
    namespace = 'hdlarge' if variables else 'hddefaults'
    got, published, report = stream(rclpy_context, env, namespace, *args)
    print(f'{setting}: {got}/{published} = {got / published:.2f}')
    assert report['transport'] == setting
    assert published > 0
