"""A checkpoint's own classes on the wire: the supernet node publishes its data-set class ids
in the detections and the class map as a transient-local vision_msgs/LabelInfo."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neulens_ros.errors import CheckpointError
from neulens_ros.launching import ProcessGroup, node_command
from neulens_ros.models.labels import ClassLabels
from neulens_ros.models.registry import resolve
from neulens_ros.models.zoo import checkpoint_labels, detector_metadata
from neulens_ros.models.names import CHECKPOINTS

EASY_DETECTOR = CHECKPOINTS['easy'][0]  # five classes, no class ids in its metadata
NAMES = ['person', 'bicycle', 'car', 'dog', 'chair']
IDS = [1, 2, 3, 18, 62]  # COCO's category ids of those names
BY_ID = ClassLabels(tuple(IDS), tuple(NAMES)).names_by_id()  # the lifting node's class_names


def relabelled_checkpoint(folder: Path) -> Path:
    """The shipped easy detector under new class names and data-set ids (metadata edited
    only)."""
    source = resolve(EASY_DETECTOR)
    target = folder / 'relabelled.pt'
    shutil.copyfile(source, target)
    meta = detector_metadata(EASY_DETECTOR)
    meta.update(class_names=NAMES, class_ids=IDS)
    target.with_suffix('.json').write_text(json.dumps(meta))
    return target


def test_metadata_labels_and_defaults() -> None:
    shipped = checkpoint_labels(detector_metadata(EASY_DETECTOR))
    assert shipped.ids == (0, 1, 2, 3, 4)  # no class_ids in older metadata: 0..n-1
    assert shipped.names == tuple(detector_metadata(EASY_DETECTOR)['architecture']['classes'])
    meta = {**detector_metadata(EASY_DETECTOR), 'class_names': NAMES, 'class_ids': IDS}
    labels = checkpoint_labels(meta)
    assert labels == ClassLabels(tuple(IDS), tuple(NAMES))
    assert labels.dataset_ids(np.array([4, 0, 3])).tolist() == [62, 1, 18]
    by_id = labels.names_by_id()
    assert len(by_id) == 63 and by_id[18] == 'dog' and by_id[0] == ''
    nested = {'architecture': {'num_classes': 2, 'class_names': ['a', 'b'],
                               'class_ids': [7, 9]}}
    assert checkpoint_labels(nested) == ClassLabels((7, 9), ('a', 'b'))


@pytest.mark.parametrize('meta,match', [
    ({'class_names': NAMES, 'class_ids': IDS[:4]}, 'one id per name'),
    ({'class_names': NAMES, 'class_ids': [1, 1, 2, 3, 4]}, 'repeat'),
    ({'class_names': NAMES, 'class_ids': [1, 2, 3, 4, 70000]}, 'integers in 0..65535'),
    ({'class_names': NAMES, 'class_ids': [1, 2, 3, 4, 'x']}, 'integers'),
    ({'class_names': NAMES[:3]}, 'names 3 classes but the network has 5'),
])
def test_bad_labels_are_rejected(meta: dict, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        checkpoint_labels({**detector_metadata(EASY_DETECTOR), **meta})
    with pytest.raises(CheckpointError, match='beyond the 5 classes'):
        checkpoint_labels(detector_metadata(EASY_DETECTOR)).dataset_ids(np.array([5]))


@pytest.mark.ros
def class_names_of(node: Any, executor: Any, target: str, seconds: float) -> list[str] | None:
    """The `class_names` parameter of node `target` through its get_parameters service (what
    `ros2 param get` calls); None when it does not answer within `seconds`."""
    from rcl_interfaces.srv import GetParameters
    client = node.create_client(GetParameters, f'{target}/get_parameters')
    try:
        if not client.wait_for_service(timeout_sec=seconds):
            return None
        future = client.call_async(GetParameters.Request(names=['class_names']))
        end = time.monotonic() + seconds
        while time.monotonic() < end and not future.done():
            executor.spin_once(timeout_sec=0.1)
        return list(future.result().values[0].string_array_value) if future.done() else None
    finally:
        node.destroy_client(client)


def test_detections_carry_dataset_ids_and_late_joiners_get_label_info(
        tmp_path: Path, ros_env: dict[str, str], rclpy_context: Any) -> None:
    import rclpy
    from vision_msgs.msg import Detection2DArray, LabelInfo

    from neulens_msgs.msg import TileBatch
    from neulens_ros.bridge.detections import detection2d_array_to_boxes, label_info_classes
    from neulens_ros.bridge.tile_batch import unpack_tile_batch
    from neulens_ros.nodes.common import make_qos
    from neulens_ros.pipeline.edge import EdgeConfig, EdgeDetector
    from test_nodes_lifting import lifting_entry
    from test_nodes_supernet import supernet_entry, valid_batch
    checkpoint = relabelled_checkpoint(tmp_path)
    batch = valid_batch(3, 'easy')  # scenes the relabelled detector knows
    direct = EdgeDetector.load(EdgeConfig(checkpoint=str(checkpoint), backend='torch',
                                          k_options=(3,))).run(*unpack_tile_batch(batch))
    assert len(direct.class_ids) >= 2
    node = rclpy.create_node('labelinfo_probe', context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    pub = node.create_publisher(TileBatch, '/ln/neulens/tile_batch', make_qos('reliable', 10))
    answers: list[Any] = []
    node.create_subscription(Detection2DArray, '/ln/neulens/detections_2d', answers.append,
                             make_qos('reliable', 10))

    def spin(seconds: float, until: Any) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            executor.spin_once(timeout_sec=0.1)

    with ProcessGroup(env=ros_env, log_dir=tmp_path / 'logs') as group:
        group.start('supernet', node_command(supernet_entry(), 'ln', {
            'checkpoint': str(checkpoint), 'backend': 'torch', 'k_options': [3],
            'stale_after_ms': 0.0, 'input_qos_profile': 'reliable', 'input_qos_depth': 10}))
        group.start('lifting', node_command(lifting_entry(), 'ln', {}))
        # publish until the node is active and answers (bounded)
        end = time.monotonic() + 120.0
        while time.monotonic() < end and not answers:
            pub.publish(batch)
            spin(2.0, lambda: bool(answers))
        # a subscriber that joins after the node published its LabelInfo
        infos: list[Any] = []
        node.create_subscription(LabelInfo, '/ln/neulens/label_info', infos.append,
                                 make_qos('reliable_transient_local', 1))
        spin(20.0, lambda: bool(infos))
        # the lifting node took its class names from the LabelInfo (names by class id)
        lifting_names = None
        end = time.monotonic() + 120.0
        while time.monotonic() < end and lifting_names != BY_ID:
            lifting_names = class_names_of(node, executor, '/ln/lifting', 10.0)
            spin(1.0, lambda: False)
        group.stop()
    log = (tmp_path / 'logs' / 'supernet.log').read_text()
    assert answers, log[-2000:]
    _, class_ids, _ = detection2d_array_to_boxes(answers[0])
    expected = np.asarray(IDS)[direct.class_ids]
    assert sorted(class_ids.tolist()) == sorted(expected.tolist())
    assert set(class_ids.tolist()) <= set(IDS) and max(class_ids) > 4  # ids, not indices
    assert len(infos) == 1, 'the late subscriber got no LabelInfo'
    assert label_info_classes(infos[0]) == dict(zip(IDS, NAMES, strict=True))
    assert infos[0].threshold == pytest.approx(0.3)
    assert lifting_names == BY_ID, (tmp_path / 'logs' / 'lifting.log').read_text()[-2000:]
    assert 'class names from the detector' in (tmp_path / 'logs' / 'lifting.log').read_text()


def test_link_bench_uses_the_checkpoints_ids(tmp_path: Path) -> None:
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from neulens_ros.bag.writer import BagWriter
    from neulens_ros.bridge.detections import boxes_to_detection2d_array
    from neulens_ros.tools.bench_link import checkpoint_overrides, detection_map
    checkpoint = relabelled_checkpoint(tmp_path)
    lifting = checkpoint_overrides(str(checkpoint), 'neulens_cgg')['lifting']['class_names']
    assert lifting[62] == 'chair' and lifting[1] == 'person'  # indexed by the id on the wire
    boxes = np.array([[10, 10, 50, 50], [60, 60, 90, 90]], float)
    with BagWriter(tmp_path / 'bag') as bag:
        for topic in ('/ground_truth/detections_2d', '/neulens/detections_2d'):
            bag.add_topic(topic, 'vision_msgs/msg/Detection2DArray')
            bag.write(topic, 1, serialize_message(boxes_to_detection2d_array(
                Header(), boxes, [62, 18], [0.9, 0.8])))
    labels = checkpoint_labels(detector_metadata(checkpoint))
    assert detection_map(tmp_path / 'bag', labels) == pytest.approx(1.0)
