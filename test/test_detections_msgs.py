"""Detections as arrays <-> vision_msgs Detection2DArray / Detection3DArray."""

import numpy as np
import pytest
from std_msgs.msg import Header

from neulens_ros.bridge.detections import (boxes3d_to_detection3d_array,
                                           boxes_to_detection2d_array,
                                           detection2d_array_to_boxes,
                                           detection3d_array_to_boxes)
from neulens_ros.errors import DataError


def test_2d_round_trip() -> None:
    boxes = np.array([[10.0, 20.0, 110.0, 70.0], [0.5, 1.5, 2.5, 9.5]])
    msg = boxes_to_detection2d_array(Header(frame_id='cam'), boxes, [3, 0], [0.9, 0.25])
    assert msg.detections[0].bbox.center.position.x == pytest.approx(60.0)
    assert msg.detections[0].bbox.size_y == pytest.approx(50.0)
    out_boxes, classes, scores = detection2d_array_to_boxes(msg)
    np.testing.assert_allclose(out_boxes, boxes)
    assert classes.tolist() == [3, 0]
    np.testing.assert_allclose(scores, [0.9, 0.25])
    assert [d.id for d in msg.detections] == ['', '']
    tracked = boxes_to_detection2d_array(Header(), boxes, [3, 0], [1.0, 1.0], ids=['7', '12'])
    assert [d.id for d in tracked.detections] == ['7', '12']


def test_3d_round_trip() -> None:
    centres = np.array([[0.1, -0.2, 2.5], [1.0, 0.3, 4.0]])
    sizes = np.array([[0.3, 0.4, 0.5], [1.0, 1.0, 0.2]])
    quats = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.7071068, 0.0, 0.7071068]])
    msg = boxes3d_to_detection3d_array(Header(frame_id='cam'), centres, sizes, quats, [1, 4],
                                       [0.8, 0.6], ids=['0', '1'])
    assert msg.header.frame_id == 'cam' and [d.id for d in msg.detections] == ['0', '1']
    out = detection3d_array_to_boxes(msg)
    np.testing.assert_allclose(out['centres'], centres)
    np.testing.assert_allclose(out['sizes'], sizes)
    np.testing.assert_allclose(out['quaternions'], quats, atol=1e-7)
    assert out['class_ids'].tolist() == [1, 4]
    np.testing.assert_allclose(out['scores'], [0.8, 0.6])


def test_3d_hypothesis_carries_the_box_pose() -> None:
    msg = boxes3d_to_detection3d_array(Header(frame_id='cam'), np.array([[0.1, -0.2, 2.5]]),
                                       np.ones((1, 3)), np.array([[0.0, 0.6, 0.0, 0.8]]), [2],
                                       [0.7])
    (det,) = msg.detections
    (result,) = det.results
    assert result.pose.pose == det.bbox.center
    assert result.pose.pose.position.z == 2.5 and result.pose.pose.orientation.w == 0.8
    assert result.pose.pose is not det.bbox.center


def test_empty_arrays() -> None:
    msg = boxes3d_to_detection3d_array(Header(), np.zeros((0, 3)), np.zeros((0, 3)),
                                       np.zeros((0, 4)), [], [])
    assert detection3d_array_to_boxes(msg)['centres'].shape == (0, 3)
    assert detection2d_array_to_boxes(boxes_to_detection2d_array(Header(), [], [], []))[
        0].shape == (0, 4)


@pytest.mark.parametrize('bad', ['sizes', 'classes', 'ids'])
def test_3d_length_mismatch_is_rejected(bad: str) -> None:
    args = dict(centres=np.zeros((2, 3)), sizes=np.ones((2, 3)),
                quaternions=np.tile([0, 0, 0, 1.0], (2, 1)), class_ids=[0, 1],
                scores=[0.5, 0.5], ids=None)
    if bad == 'sizes':
        args['sizes'] = np.ones((1, 3))
    elif bad == 'classes':
        args['class_ids'] = [0]
    else:
        args['ids'] = ['a']
    with pytest.raises(DataError, match='same length'):
        boxes3d_to_detection3d_array(Header(), **args)


def test_2d_length_mismatch_and_bad_class_id() -> None:
    with pytest.raises(DataError, match='1 boxes, 2 class ids, 1 scores: all must have the same'):
        boxes_to_detection2d_array(Header(), [[0, 0, 1, 1]], [0, 1], [0.5])
    with pytest.raises(DataError, match='1 scores, 2 ids: all must have the same length'):
        boxes_to_detection2d_array(Header(), [[0, 0, 1, 1]], [0], [0.5], ids=['1', '2'])
    msg = boxes_to_detection2d_array(Header(), [[0, 0, 1, 1]], [0], [0.5])
    msg.detections[0].results[0].hypothesis.class_id = 'person'
    with pytest.raises(DataError, match='not an integer'):
        detection2d_array_to_boxes(msg)


def test_markers_cube_and_label_per_box() -> None:
    from visualization_msgs.msg import Marker

    from neulens_ros.bridge.markers import detection_markers
    centres = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 3.0]])
    markers = detection_markers(Header(frame_id='cam'), centres, np.full((2, 3), 0.5),
                                np.tile([0, 0, 0, 1.0], (2, 1)), [1, 7], [0.9, 0.5],
                                class_names=('box', 'cylinder'))
    kinds = [m.type for m in markers.markers]
    assert markers.markers[0].action == Marker.DELETEALL
    assert kinds[1:] == [Marker.CUBE, Marker.TEXT_VIEW_FACING] * 2
    assert markers.markers[2].text == 'cylinder 0.90' and markers.markers[4].text == '7 0.50'
    assert markers.markers[3].pose.position.z == pytest.approx(3.0)
    assert len({m.id for m in markers.markers[1:]}) == 4
