"""The message packages: importable, documented constants, and bag definitions that hash
exactly like the generated type support (so bags and live DDS peers agree on the types)."""

from __future__ import annotations

import json

import pytest

from neulens_ros.bag.typestore import make_typestore
from neulens_ros.resources import package_share

NEULENS_TYPES = ['TileDecision', 'TileBatch', 'StageTiming']
VISION_TYPES = ['Detection2DArray', 'Detection3DArray', 'Detection2D', 'Detection3D',
                'BoundingBox2D', 'BoundingBox3D', 'ObjectHypothesisWithPose', 'Pose2D',
                'Point2D', 'LabelInfo']


def test_imports_work_in_the_environment() -> None:
    from neulens_msgs.msg import StageTiming, TileBatch, TileDecision
    from vision_msgs.msg import Detection2DArray, Detection3DArray
    assert TileDecision.LEVEL_SKIP == 4 and TileDecision.NUM_LEVELS == 5
    batch = TileBatch()
    assert isinstance(batch.decision, TileDecision)
    assert hasattr(StageTiming(), 'bytes_out')
    det = Detection2DArray()
    assert det.detections == [] and Detection3DArray().detections == []


@pytest.mark.parametrize('package,name', [('neulens_msgs', n) for n in NEULENS_TYPES]
                         + [('vision_msgs', n) for n in VISION_TYPES])
def test_bag_definitions_hash_like_rosidl(package: str, name: str) -> None:
    msgtype = f'{package}/msg/{name}'
    generated = json.loads((package_share(package) / 'msg' / f'{name}.json').read_text())
    expected = {h['type_name']: h['hash_string'] for h in generated['type_hashes']}[msgtype]
    assert make_typestore([msgtype]).hash_rihs01(msgtype) == expected


def test_vision_msgs_wire_layout_matches_4x() -> None:
    """Field names and order of vision_msgs 4.x (a silent change would break peers)."""
    from vision_msgs.msg import BoundingBox2D, Detection2D, ObjectHypothesis
    assert list(Detection2D.get_fields_and_field_types()) == ['header', 'results', 'bbox', 'id']
    assert list(BoundingBox2D.get_fields_and_field_types()) == ['center', 'size_x', 'size_y']
    assert ObjectHypothesis.get_fields_and_field_types() == {'class_id': 'string',
                                                             'score': 'double'}


def test_compat_vision_msgs_is_marked() -> None:
    """Our own vision_msgs build says so in its package.xml (setup never shadows a real one)."""
    xml = (package_share('vision_msgs') / 'package.xml').read_text()
    if 'neulens_ros-compat' not in xml:
        pytest.skip('a real vision_msgs is installed; nothing of ours to check')
    assert '<name>vision_msgs</name>' in xml
