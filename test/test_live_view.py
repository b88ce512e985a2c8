"""neulens-top: rolling statistics, and the tool over real DDS against a publisher."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from neulens_ros.report.live import LiveStats, plain


def test_rows_and_headline() -> None:
    stats = LiveStats(window=3)
    for i, ms in enumerate([10.0, 20.0, 30.0, 40.0]):  # window 3: the first falls out
        stats.add_timing('gate', ms, 1000 * (i + 1), now_s=100.0 + i * 0.5)
    stats.add_timing('gate', 5.0, 0, now_s=102.0, dropped=True)
    stats.add_timing('supernet', 8.0, 0, now_s=101.0)
    rows = stats.rows(now_s=102.0)
    assert [r[0] for r in rows] == ['gate', 'supernet']  # pipeline order
    name, fps, p50, p90, kb, dropped = rows[0]
    assert (p50, kb, dropped) == ('30.0', '3.0', '1/5')
    assert float(fps) == pytest.approx(3 / 5.0)
    assert stats.headline() == 'no TileDecision yet'
    stats.add_decision(k=3, p_layers=10, levels=[0, 0, 4, 2, 0, 0, 4, 4, 1], policy='cs',
                       latency_slo_ms=40.0, predicted_latency_ms=35.0, fits_slo=False,
                       bandwidth_mbps=20.0, rtt_ms=21.0)
    head = stats.headline()
    assert 'P10/k3' in head and 'levels 4/1/1/0/3' in head and 'SLO 40 ms' in head
    assert 'flagged 1/1' in head
    assert 'supernet' in plain(stats, 102.0)


@pytest.mark.ros
def test_top_shows_what_is_published(ros_env: dict[str, str], rclpy_context: Any) -> None:
    import rclpy
    from builtin_interfaces.msg import Time

    from neulens_msgs.msg import StageTiming, TileDecision
    from neulens_ros.nodes.stage_timing import TIMING_QOS

    node = rclpy.create_node('fake_pipeline', context=rclpy_context)
    timing = node.create_publisher(StageTiming, '/lv/neulens/stage_timing', TIMING_QOS)
    decision = node.create_publisher(TileDecision, '/lv/neulens/tile_decision',
                                     rclpy.qos.qos_profile_sensor_data)
    top = subprocess.Popen([sys.executable, '-m', 'neulens_ros.tools.top', '--namespace', 'lv',
                            '--duration', '8', '--plain'], env=ros_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 7.0
        i = 0
        while time.monotonic() < deadline:  # bounded: stops by itself
            msg = StageTiming(stage='gate', start=Time(sec=i, nanosec=0),
                              end=Time(sec=i, nanosec=12_000_000), bytes_out=8500)
            timing.publish(msg)
            decision.publish(TileDecision(k=3, p_layers=10, levels=[0] * 9, policy='cs',
                                          latency_slo_ms=60.0))
            i += 1
            time.sleep(0.1)
        out, err = top.communicate(timeout=30)
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
        node.destroy_node()
    assert top.returncode == 0, err[-2000:]
    final = out.strip().split('\n\n')[-1]
    gate = next(line for line in final.splitlines() if line.strip().startswith('gate'))
    assert gate.split()[2:5] == ['12.0', '12.0', '8.5'], final
    assert 'P10/k3' in final and 'SLO 60 ms' in final
