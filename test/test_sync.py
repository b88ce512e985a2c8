"""Approximate-time matching of detections with depth and CameraInfo."""

from __future__ import annotations

import pytest

from neulens_ros.errors import ConfigError
from neulens_ros.sync import ApproximateTimeMatcher

MS = 1_000_000


def matcher(slop_ms: float = 5.0, size: int = 30) -> ApproximateTimeMatcher:
    return ApproximateTimeMatcher(('det', 'depth', 'info'), int(slop_ms * MS), size)


def test_late_detections_match_their_own_frame() -> None:
    m = matcher()
    for i in range(5):  # depth + info of frames 0..4 arrive first (100 ms apart)
        assert m.add('depth', i * 100 * MS, f'd{i}') == []
        assert m.add('info', i * 100 * MS + 1 * MS, f'i{i}') == []
    out = m.add('det', 200 * MS, 'det2')  # detections of frame 2, late
    assert out == [{'det': 'det2', 'depth': 'd2', 'info': 'i2'}]
    assert m.dropped == {'det': 0, 'depth': 2, 'info': 2}  # frames 0, 1 had no detections
    out = m.add('det', 400 * MS + 3 * MS, 'det4')  # within slop
    assert out == [{'det': 'det4', 'depth': 'd4', 'info': 'i4'}]


def test_detection_waits_for_its_depth() -> None:
    m = matcher()
    assert m.add('det', 100 * MS, 'det1') == []
    assert m.add('depth', 100 * MS, 'd1') == []
    assert m.add('info', 100 * MS, 'i1') == [{'det': 'det1', 'depth': 'd1', 'info': 'i1'}]


def test_unmatchable_detection_is_dropped_not_stuck() -> None:
    m = matcher()
    m.add('det', 100 * MS, 'det_lost')  # its depth never comes
    m.add('depth', 200 * MS, 'd2')
    m.add('info', 200 * MS, 'i2')
    assert m.dropped['det'] == 1
    assert m.add('det', 200 * MS, 'det2') == [{'det': 'det2', 'depth': 'd2', 'info': 'i2'}]


def test_out_of_slop_does_not_match() -> None:
    m = matcher(slop_ms=1.0)
    m.add('depth', 100 * MS, 'd')
    m.add('info', 100 * MS, 'i')
    assert m.add('det', 103 * MS, 'det') == []


def test_queue_is_bounded() -> None:
    m = matcher(size=3)
    for i in range(10):
        m.add('depth', i * MS * 100, i)
    assert len(m.queues['depth'].stamps) == 3 and m.queues['depth'].overflow == 7


@pytest.mark.parametrize('kwargs', [dict(streams=('a',), slop_ns=1),
                                    dict(streams=('a', 'a'), slop_ns=1),
                                    dict(streams=('a', 'b'), slop_ns=-1),
                                    dict(streams=('a', 'b'), slop_ns=1, size=0)])
def test_validation(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        ApproximateTimeMatcher(**kwargs)


def test_unknown_stream() -> None:
    with pytest.raises(ConfigError, match='unknown stream'):
        matcher().add('rgb', 0, None)
