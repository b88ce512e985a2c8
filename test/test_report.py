"""neulens-report on bags with known timings: the numbers, partial bags, drops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from neulens_msgs.msg import StageTiming, TileBatch, TileDecision
from rclpy.serialization import serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from neulens_ros.bag.writer import BagWriter
from neulens_ros.nodes.common import ns_to_time
from neulens_ros.tools.report import main as report_main

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000
# Per frame i: gate 0..3 ms after stamp, sent at 3, supernet 5+i .. 25+i, lifting 26+i .. 30+i.


def timing(stamp: int, stage: str, start_ms: float, end_ms: float, dropped: bool = False,
           reason: str = '') -> StageTiming:
    return StageTiming(header=Header(stamp=ns_to_time(stamp), frame_id='cam'), stage=stage,
                       node=f'/{stage}', start=ns_to_time(stamp + int(start_ms * MS)),
                       end=ns_to_time(stamp + int(end_ms * MS)), bytes_in=1, bytes_out=2,
                       dropped=dropped, reason=reason)


def write_bag(path: Path, frames: int, with_batches: bool = True, drop_last: bool = False
              ) -> None:
    with BagWriter(path) as bag:
        bag.add_topic('/t', 'neulens_msgs/msg/StageTiming')
        if with_batches:
            bag.add_topic('/b', 'neulens_msgs/msg/TileBatch')
            bag.add_topic('/d', 'vision_msgs/msg/Detection2DArray')
        for i in range(frames):
            stamp = T0 + i * 100 * MS
            bag.write('/t', stamp, serialize_message(timing(stamp, 'gate', 0, 3)))
            if with_batches:
                decision = TileDecision(header=Header(stamp=ns_to_time(stamp)), k=3,
                                        p_layers=11, levels=[0, 0, 1, 2, 4, 4, 4, 3, 0],
                                        latency_slo_ms=25.0)
                bag.write('/b', stamp, serialize_message(TileBatch(
                    decision=decision, tile_indices=[0, 1, 2, 3, 7, 8], payload_bytes=400,
                    full_frame_bytes=1000, sent=ns_to_time(stamp + 3 * MS))))
            if drop_last and i == frames - 1:
                bag.write('/t', stamp, serialize_message(
                    timing(stamp, 'supernet', 5, 5, dropped=True, reason='stale')))
                continue
            bag.write('/t', stamp, serialize_message(timing(stamp, 'supernet', 5 + i, 25 + i)))
            bag.write('/t', stamp, serialize_message(timing(stamp, 'lifting', 26 + i, 30 + i)))
            if with_batches:
                bag.write('/d', stamp, serialize_message(
                    Detection2DArray(header=Header(stamp=ns_to_time(stamp)))))


def run_report(bag: Path, out: Path) -> dict:
    assert report_main([str(bag), '--out', str(out)]) == 0
    assert (out / 'report.md').is_file()
    return json.loads((out / 'report.json').read_text())


def test_numbers_match_the_recorded_timings(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag', frames=10)
    rep = run_report(tmp_path / 'bag', tmp_path / 'r')
    assert rep['frames'] == 10 and rep['stages'] == ['gate', 'supernet', 'lifting']
    assert rep['stage_latency_ms']['gate']['p50'] == pytest.approx(3.0)
    assert rep['stage_latency_ms']['supernet']['p50'] == pytest.approx(20.0)
    # end to end = 30 + i ms for i = 0..9 -> median 34.5
    assert rep['end_to_end_ms']['p50'] == pytest.approx(34.5)
    assert rep['end_to_end_ms']['jitter'] == pytest.approx(1.0)
    assert rep['transmission_ms']['p50'] == pytest.approx(2.0 + 4.5)
    # SLO span = 25 + i > 25 for i >= 1: 9 misses of 10
    assert rep['slo'] == {'frames_with_slo': 10, 'misses': 9, 'miss_fraction': 0.9}
    assert rep['bytes_per_frame']['saved_fraction'] == pytest.approx(0.6)
    assert rep['level_histogram'] == {'0': 30, '1': 10, '2': 10, '3': 10, '4': 30}
    assert rep['choices'] == {'P11/k3': 10}
    for png in ('stage_latency.png', 'latency.png', 'bytes.png', 'levels.png'):
        assert (tmp_path / 'r' / png).stat().st_size > 1000


def test_drops_and_lost_frames_are_reported(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag', frames=5, drop_last=True)
    rep = run_report(tmp_path / 'bag', tmp_path / 'r')
    assert rep['drops']['supernet'] == {'dropped': 1, 'reasons': {'stale': 1},
                                        'lost_before': 0}
    assert rep['drops']['lifting']['lost_before'] == 0  # dropped upstream, not lost
    assert rep['end_to_end_ms']['count'] == 4


def test_partial_bag_reports_what_is_missing(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag', frames=3, with_batches=False)
    rep = run_report(tmp_path / 'bag', tmp_path / 'r')
    assert 'neulens_msgs/msg/TileBatch' in rep['missing_types']
    assert rep['bytes_per_frame']['payload'] == {'count': 0}
    assert 'Not in this bag' in (tmp_path / 'r' / 'report.md').read_text()


def test_not_a_bag_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report_main([str(tmp_path)]) == 2
    assert 'metadata.yaml' in capsys.readouterr().out
