"""README command (1)'s main job, small: the demo runs the graph over real DDS, records a bag,
writes the report, and the report's stage latencies agree with what the nodes logged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neulens_ros.report.frames import FrameRecord, StageRecord
from neulens_ros.report.node_logs import agreement, read_timing_logs, timing_line


def frame(stamp: int, ms: float, dropped: bool = False) -> FrameRecord:
    return FrameRecord(stamp, {'gate': StageRecord(0, int(ms * 1e6), 0, 0, dropped, '')})


def test_timing_lines_round_trip_and_disagreement_is_caught(tmp_path: Path) -> None:
    (tmp_path / 'gate.log').write_text(
        f'[INFO] [1.0] [gate]: {timing_line("gate", 10, 4.0, False)}\n'
        f'[INFO] [1.1] [gate]: {timing_line("gate", 20, 8.0, False)}\n'
        f'[INFO] [1.2] [gate]: {timing_line("gate", 30, 1.0, True)}\n'
        '[INFO] [1.3] [gate]: something else\n')
    logged = read_timing_logs(tmp_path)
    assert logged == {'gate': {10: 4.0, 20: 8.0}}  # the dropped frame is left out
    ok = agreement([frame(10, 4.0), frame(20, 8.0)], logged)
    assert ok['agree'] and ok['stages']['gate']['frames'] == 2
    bad = agreement([frame(10, 4.0), frame(20, 8.9)], logged)  # one frame 11% off
    assert not bad['agree']
    assert bad['stages']['gate']['max_relative_diff'] == pytest.approx(0.1125, abs=1e-3)
    missing = agreement([frame(10, 4.0), frame(40, 3.0)], logged)
    assert missing['stages']['gate']['only_in_logs'] == 1
    assert missing['stages']['gate']['only_in_bag'] == 1
    assert not agreement([], {})['agree']  # nothing compared is not agreement


def test_demo_walks_are_rendered_whole_in_a_preset_with_walks() -> None:
    from neulens_ros.data.sequence import WALK_PRESETS
    from neulens_ros.tools.demo import build_parser, source_overrides
    walk = source_overrides(build_parser().parse_args(['--source', 'walk', '--frames', '12']))
    assert walk['source'] == 'walk' and walk['preset'] in WALK_PRESETS
    assert walk['preload_frames'] == walk['num_frames'] == 12  # continuous, never cycled
    generated = source_overrides(build_parser().parse_args([]))
    assert generated['source'] == 'generated' and 'preset' not in generated  # config/source.yaml


@pytest.mark.ros
@pytest.mark.parametrize('source, prior', [('generated', False), ('walk', True),
                                          ('sample', True)])
def test_the_demo_gate_follows_only_streams(source: str, prior: bool) -> None:
    from neulens_ros.tools.demo import build_parser, gate_overrides
    values = gate_overrides(build_parser().parse_args(['--source', source]))
    assert values == {'log_timing': True, 'temporal_prior': prior}


def test_demo_report_agrees_with_node_logs(tmp_path: Path, ros_env: dict[str, str]) -> None:
    run = subprocess.run([sys.executable, '-m', 'neulens_ros.tools.demo', '--frames', '8',
                          '--rate', '4', '--out', str(tmp_path)], env=ros_env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert 'report vs node logs: agree' in run.stdout, run.stdout
    (check_path,) = tmp_path.glob('*/report/log_check.json')
    check = json.loads(check_path.read_text())
    assert check['agree']
    assert set(check['stages']) == {'source', 'gate', 'supernet', 'lifting'}
    stages = check['stages']
    assert stages['source']['frames'] == 8, check
    # the first frames can arrive before a node has loaded its model (see the README)
    assert all(s['frames'] >= 3 for s in stages.values()), check


@pytest.mark.ros
def test_demo_refuses_a_domain_where_its_nodes_already_run(tmp_path: Path, ros_env: dict[str, str],
                                                           rclpy_context) -> None:
    import rclpy
    stray = rclpy.create_node('gate', context=rclpy_context)  # another pipeline's gate
    try:
        run = subprocess.run([sys.executable, '-m', 'neulens_ros.tools.demo', '--frames', '2',
                              '--out', str(tmp_path)], env=ros_env, capture_output=True,
                             text=True, timeout=120)
    finally:
        stray.destroy_node()
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert 'already has /gate' in run.stderr and '--domain-id' in run.stderr, run.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


@pytest.mark.ros
def test_graph_check_lists_only_the_nodes_that_run(ros_env: dict[str, str],
                                                   rclpy_context) -> None:
    import rclpy
    node = rclpy.create_node('lifting', namespace='robot1', context=rclpy_context)
    try:
        run = subprocess.run([sys.executable, '-m', 'neulens_ros.tools.graph_check',
                              '/robot1/lifting', '/lifting', '/robot1/gate'], env=ros_env,
                             capture_output=True, text=True, timeout=120)
    finally:
        node.destroy_node()
    assert run.returncode == 0 and run.stdout.split() == ['/robot1/lifting'], run.stderr
