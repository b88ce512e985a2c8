"""supernet_node in its own process: bad input is dropped, counted and logged per distinct
problem, never a crash; a missing checkpoint leaves it unconfigured with a clear error."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.models.names import CHECKPOINTS, DEFAULT_PRESET
from neulens_ros.topology import load_topology

pytestmark = pytest.mark.ros


def supernet_entry() -> Any:
    (entry,) = [n for n in load_topology() if n.name == 'supernet']
    return entry


def lifecycle_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'neulens_ros.tools.lifecycle', '--timeout',
                           '30', *args], env=env, capture_output=True, text=True, timeout=90)



def spinner(executor: Any) -> Any:
    """spin(seconds, until): spin `executor` until `until()` holds or `seconds` pass."""
    def spin(seconds: float, until: Any = lambda: False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            executor.spin_once(timeout_sec=0.1)
    return spin

def test_missing_checkpoint_stays_unconfigured(tmp_path: Path, ros_env: dict[str, str]
                                              ) -> None:
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('supernet', node_command(supernet_entry(), 'sn', {
            'checkpoint': str(tmp_path / 'nope.pt')}))
        state = lifecycle_cli(ros_env, 'get', '/sn/supernet')
        assert state.returncode == 0, state.stderr
        assert state.stdout.strip() == 'unconfigured'
        waited = subprocess.run([sys.executable, '-m', 'neulens_ros.tools.lifecycle',
                                 '--timeout', '3', 'wait', '/sn/supernet', 'active'],
                                env=ros_env, capture_output=True, text=True, timeout=60)
        assert waited.returncode == 1 and waited.stdout.strip() == 'unconfigured'
        group.stop()
    log = (tmp_path / 'logs' / 'supernet.log').read_text()
    assert 'configure failed, staying unconfigured' in log and 'nope.pt not found' in log


@functools.lru_cache(maxsize=None)
def preset_frame(preset: str) -> tuple[Any, np.ndarray]:
    """(the detector of `preset`, its generated scene 21 resized to the detector's input
    [H, W, 3] uint8), rendered once per test process."""
    from neulens_ros.data.resize import box_resize
    from neulens_ros.data.scenes import SceneConfig, generate_scene
    from neulens_ros.models.zoo import load_detector
    model, _ = load_detector(CHECKPOINTS[preset][0])
    cfg = model.config
    return model, box_resize(generate_scene(SceneConfig(preset=preset), 21).rgb,
                             (cfg.input_width, cfg.input_height))


def valid_batch(k: int, preset: str = DEFAULT_PRESET) -> Any:
    """A TileBatch of a generated frame of `preset` for that preset's detector, every tile at
    level 0 (k x k, P = layer2)."""
    from std_msgs.msg import Header

    from neulens_ros.bridge.tile_batch import pack_tile_batch
    from neulens_ros.pipeline.decision import FrameDecision
    from neulens_ros.pipeline.tiles import crop_tiles
    from neulens_ros.supernet.tiling import tile_grid, window_chain
    model, image = preset_frame(preset)
    cfg = model.config
    grid = tile_grid(window_chain(model.front('layer2')), cfg.input_width,
                     cfg.input_height, k, 'paper')
    header = Header(frame_id='cam')
    header.stamp.sec = int(time.time())
    decision = FrameDecision(stamp_ns=header.stamp.sec * 1_000_000_000, frame_id='cam',
                             image_size=(640, 480), input_size=(cfg.input_width,
                                                                cfg.input_height),
                             k=k, p_index=2, p_layers=10, halo='paper', levels=(0,) * (k * k),
                             tile_rects=grid.in_rects)
    return pack_tile_batch(decision, header, crop_tiles(image, grid.in_rects), 'jpeg')


def test_bad_batches_are_counted_and_good_ones_answered(tmp_path: Path,
                                                         ros_env: dict[str, str],
                                                         rclpy_context: Any) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from vision_msgs.msg import Detection2DArray

    from neulens_msgs.msg import TileBatch
    from neulens_ros.nodes.common import make_qos
    node = rclpy.create_node('supernet_feeder', context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    pub = node.create_publisher(TileBatch, '/sn/neulens/tile_batch', make_qos('reliable', 10))
    answers: list[Any] = []
    status: list[dict[str, str]] = []
    node.create_subscription(Detection2DArray, '/sn/neulens/detections_2d', answers.append,
                             make_qos('reliable', 10))
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: status.append(
        {kv.key: kv.value for kv in m.status[0].values}), 10)
    spin = spinner(executor)

    bad = []
    empty = valid_batch(2)
    empty.tile_indices, empty.compressed_tiles = [], []
    bad.append(empty)
    wrong_size = valid_batch(2)
    wrong_size.compressed_tiles[0] = valid_batch(3).compressed_tiles[0]
    bad.append(wrong_size)
    wrong_encoding = valid_batch(2)
    wrong_encoding.encoding = 'webp'
    bad.append(wrong_encoding)
    bad.append(valid_batch(4))  # k = 4 is not served by this node
    backwards = valid_batch(2)  # stamped a second before the first: dropped, not processed
    backwards.decision.header.stamp.sec = empty.decision.header.stamp.sec - 1
    bad.append(backwards)
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('supernet', node_command(supernet_entry(), 'sn', {
            'k_options': [2, 3], 'stale_after_ms': 0.0, 'input_qos_profile': 'reliable',
            'input_qos_depth': 10, 'status_period_s': 0.5}))
        spin(90.0, lambda: any(s.get('state') == 'active' for s in status))
        assert any(s.get('state') == 'active' for s in status), \
            (tmp_path / 'logs' / 'supernet.log').read_text()[-2000:]
        spin(1.0)
        for msg in bad:
            pub.publish(msg)
            spin(0.5)
        pub.publish(valid_batch(3))
        spin(30.0, lambda: len(answers) >= 1)
        spin(2.0)
        alive = group.procs['supernet'].poll() is None
        group.stop()
    log = (tmp_path / 'logs' / 'supernet.log').read_text()
    assert alive, log[-2000:]
    assert len(answers) == 1 and answers[0].header.frame_id == 'cam'
    last = status[-1]
    assert int(last['processed']) == 1 and int(last['dropped']) == 5, last
    assert int(last['total_stamp_backwards']) == 1
    assert int(last['total_DataError']) == 2 and int(last['total_EncodingError']) == 1
    assert int(last['total_ConfigError']) == 1 and int(last['recent_DataError']) == 2
    assert last['total_DataError'] == last['recent_DataError']  # all within the window
    # one warning per distinct problem: both DataErrors (empty batch, wrong tile size)
    for reason in ('empty TileBatch', "'webp'", 'k=4 is not served', 'its rectangle is',
                   'ms before the previous one: dropped'):
        assert log.count(reason) == 1, reason
    assert np.isfinite(float(last['mean_ms']))


def test_a_burst_is_answered_latest_first(tmp_path: Path, ros_env: dict[str, str],
                                          rclpy_context: Any) -> None:
    """Batches arriving while the detector works do not queue: the waiting one is replaced
    by the newer (superseded, answered with a dropped StageTiming), the newest is answered."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from vision_msgs.msg import Detection2DArray

    from neulens_msgs.msg import StageTiming, TileBatch
    from neulens_ros.nodes.common import make_qos, time_to_ns
    from neulens_ros.nodes.stage_timing import TIMING_QOS
    node = rclpy.create_node('supernet_burst', context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    pub = node.create_publisher(TileBatch, '/sb/neulens/tile_batch', make_qos('reliable', 20))
    answers: list[Any] = []
    timings: list[Any] = []
    status: list[dict[str, str]] = []
    node.create_subscription(Detection2DArray, '/sb/neulens/detections_2d', answers.append,
                             make_qos('reliable', 20))
    node.create_subscription(StageTiming, '/sb/neulens/stage_timing', timings.append,
                             TIMING_QOS)
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: status.append(
        {kv.key: kv.value for kv in m.status[0].values}), 10)
    spin = spinner(executor)

    burst = [valid_batch(3) for _ in range(8)]
    for i, batch in enumerate(burst):
        batch.decision.header.stamp.sec = burst[0].decision.header.stamp.sec
        batch.decision.header.stamp.nanosec = i * 1000
    stamps = [time_to_ns(b.decision.header.stamp) for b in burst]
    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('supernet', node_command(supernet_entry(), 'sb', {
            'stale_after_ms': 0.0, 'input_qos_profile': 'reliable', 'input_qos_depth': 10,
            'status_period_s': 0.5}))
        spin(90.0, lambda: any(s.get('state') == 'active' for s in status))
        spin(1.0)
        for batch in burst:
            pub.publish(batch)
        spin(30.0, lambda: len([t for t in timings if t.stage == 'supernet']) >= len(burst))
        spin(1.5)
        group.stop()
    log = (tmp_path / 'logs' / 'supernet.log').read_text()
    replies = {time_to_ns(t.header.stamp): t for t in timings if t.stage == 'supernet'}
    assert sorted(replies) == stamps, log[-2000:]  # every batch answered, once
    superseded = [s for s, t in replies.items() if t.dropped]
    assert superseded and all(replies[s].reason.startswith('superseded') for s in superseded)
    answered = [time_to_ns(a.header.stamp) for a in answers]
    assert answered[-1] == stamps[-1] and answered == sorted(answered)
    assert len(answered) + len(superseded) == len(burst)
    assert int(status[-1]['total_superseded']) == len(superseded)
