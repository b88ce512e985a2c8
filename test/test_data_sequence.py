"""Frame streams: generated scenes of a preset, continuous walks through one room after
another, and the errors a bad stream raises before its first frame; the source node offers
them all."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neulens_ros.data.room import HARD_CLASSES
from neulens_ros.data.scene_types import PRESETS, SceneConfig
from neulens_ros.data.scenes import generate_scene
from neulens_ros.data.sequence import SOURCES, frame_stream
from neulens_ros.data.walk import WalkConfig, walk_scenes
from neulens_ros.errors import ConfigError

SIZE = {'width': 160, 'height': 120}
HARD = SceneConfig(**SIZE, preset='hard')


def test_walk_stream_is_one_walk_after_another() -> None:
    frames = list(itertools.islice(frame_stream('walk', seed=2, **SIZE, preset='hard',
                                                walk_fps=5.0, walk_frames=3), 5))
    walk = WalkConfig(fps=5.0, frames=3)
    expected = [*walk_scenes(HARD, 2, walk), *itertools.islice(walk_scenes(HARD, 3, walk), 2)]
    for frame, scene in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(frame.rgb, scene.rgb)
        assert frame.objects == scene.objects
    first, second = ({o.track_id for o in f.objects} for f in frames[:2])
    assert first & second and min(first | second) >= 0  # the same objects, tracked
    assert not np.array_equal(frames[0].depth_m, frames[1].depth_m)  # the camera moved


def test_generated_stream_of_a_preset() -> None:
    (frame,) = itertools.islice(frame_stream('generated', seed=3, **SIZE, preset='hard'), 1)
    np.testing.assert_array_equal(frame.rgb, generate_scene(HARD, 3).rgb)
    assert frame.objects and all(o.class_name in HARD_CLASSES for o in frame.objects)


@pytest.mark.parametrize('kwargs,fragment', [
    ({'kind': 'video'}, "frame source 'video' is not one of"),
    ({'kind': 'generated', 'preset': 'medium'}, "preset 'medium' is not one of"),
    ({'kind': 'walk'}, "walks move through the rooms of the hard preset, not 'easy'"),
    ({'kind': 'walk', 'preset': 'hard', 'walk_fps': 0.1}, 'fps 0.1 is outside'),
    ({'kind': 'walk', 'preset': 'hard', 'walk_frames': 0}, 'frames 0 must be >= 1'),
])
def test_bad_streams_fail_before_the_first_frame(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        frame_stream(**kwargs)


def test_source_node_offers_every_stream_and_preset() -> None:
    from neulens_ros.models.names import DEFAULT_PRESET
    from neulens_ros.nodes.source_node import PARAMS
    specs = {spec.name: spec for spec in PARAMS}
    assert specs['source'].choices == SOURCES and specs['source'].check('walk') == ''
    assert 'not one of' in specs['source'].check('video')
    assert specs['preset'].choices == PRESETS and specs['preset'].default == DEFAULT_PRESET
    assert specs['preset'].read_only and specs['walk_fps'].check(0.0) == ''
