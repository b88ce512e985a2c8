"""The emulated link between two network namespaces (root only; skipped otherwise)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neulens_ros.link.netns import TwoHostLink, available

pytestmark = pytest.mark.netns
OK, REASON = available()
needs_netns = pytest.mark.skipif(not OK, reason=REASON or 'network namespaces available')

RECEIVER = '''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 47001)); s.settimeout(3.0)
got, first, last = 0, None, None
try:
    while True:
        data = s.recv(2048); now = time.monotonic()
        first = first or now; last = now; got += len(data)
except socket.timeout:
    pass
print(got, (last - first) if first else 0.0)
'''
SENDER = '''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = bytes(1400)
end = time.monotonic() + 2.0
while time.monotonic() < end:
    s.sendto(payload, (sys.argv[1], 47001)); time.sleep(0.0002)
'''


def ping_rtt(link: TwoHostLink) -> float:
    """The smallest of 10 round trips: the link's delay shows in every one, a busy machine's
    scheduling delay (the emulator is a user-space process) only in some."""
    out = subprocess.run(link.exec_prefix('a') + ['ping', '-c', '10', '-i', '0.2', link.ip_b],
                         capture_output=True, text=True, timeout=30).stdout
    return float(re.search(r'= ([\d.]+)/[\d.]+/', out).group(1))


@needs_netns
def test_rtt_follows_the_configured_delay(tmp_path: Path) -> None:
    if subprocess.run(['which', 'ping'], capture_output=True).returncode:
        pytest.skip('ping (iputils-ping) is not installed')
    with TwoHostLink('good', delay_ms=15.0, rate_mbps=50.0) as link:
        rtt = ping_rtt(link)
    assert 28.0 <= rtt <= 40.0  # 2 x 15 ms + jitter up to 2 x 1 ms + forwarding


@needs_netns
def test_throughput_follows_the_configured_rate(tmp_path: Path) -> None:
    with TwoHostLink('good', rate_mbps=10.0, delay_ms=2.0, loss=0.0,
                     stats_path=tmp_path / 's.json') as link:
        receiver = subprocess.Popen(link.exec_prefix('b') + [sys.executable, '-c', RECEIVER],
                                    stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        subprocess.run(link.exec_prefix('a') + [sys.executable, '-c', SENDER, link.ip_b],
                       timeout=30, check=True)
        got, seconds = receiver.communicate(timeout=30)[0].split()
    mbps = 8 * int(got) / float(seconds) / 1e6
    assert 8.5 <= mbps <= 10.5
    assert link.stats()['a>b']['queue_drops'] > 0  # the sender offered far more


@needs_netns
def test_cleanup_even_when_the_body_raises() -> None:
    link = TwoHostLink('poor')
    with pytest.raises(RuntimeError), link:
        raise RuntimeError('boom')
    names = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True).stdout
    assert link.ns['a'] not in names and link.ns['b'] not in names
    assert link.bridge is not None and link.bridge.poll() is not None


LISTENER = '''
import sys, time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('link_listener')
count = [0]
node.create_subscription(Image, '/camera/color/image_raw',
                         lambda m: count.__setitem__(0, count[0] + 1), qos_profile_sensor_data)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and count[0] < int(sys.argv[2]):
    rclpy.spin_once(node, timeout_sec=0.1)
print(count[0], flush=True)
'''


@needs_netns
@pytest.mark.slow
def test_images_cross_the_average_link_with_the_flow_controller(
        tmp_path: Path, ros_env: dict[str, str]) -> None:
    from neulens_ros.launching import ProcessGroup, node_command
    from neulens_ros.topology import load_topology
    (source,) = [n for n in load_topology() if n.name == 'source']
    with TwoHostLink('average') as link:
        env_b = {**ros_env, **link.env_for('b')}
        listener = subprocess.Popen(link.exec_prefix('b') + [sys.executable, '-c', LISTENER,
                                                              '40', '50'],
                                    env=env_b, stdout=subprocess.PIPE, text=True)
        with ProcessGroup(env={**ros_env, **link.env_for('a')},
                          log_dir=tmp_path / 'logs') as group:
            cmd = node_command(source, '', {'width': 320, 'height': 240, 'rate_hz': 5.0,
                                            'num_frames': 50, 'preload_frames': 5,
                                            'start_delay_s': 5.0, 'depth_encoding': '16UC1'})
            group.start('source', link.exec_prefix('a') + cmd)
            received = int(listener.communicate(timeout=90)[0].strip() or 0)
            group.stop()
    assert received >= 45, (tmp_path / 'logs' / 'source.log').read_text()[-2000:]
