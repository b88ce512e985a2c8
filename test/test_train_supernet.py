"""Supernet training: the untiled warm-up trains the full width alone, then the tiled passes
join; resuming keeps the step count; invalid settings are refused."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.supernet.detector import DetectorConfig, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor
from neulens_ros.supernet.slim import SlimBatchNorm2d
from neulens_ros.train.data import DetectionSet
from neulens_ros.train.supernet import SupernetTraining, train_supernet

SIZE = (128, 96)  # network input (width, height)


def tiny_set() -> DetectionSet:
    """Four 128 x 96 frames with one bright square object each."""
    images = np.zeros((4, SIZE[1], SIZE[0], 3), np.uint8)
    boxes, classes = [], []
    for i in range(4):
        x0, y0 = 10 + 20 * i, 20 + 10 * i
        images[i, y0:y0 + 16, x0:x0 + 16] = 60 * (i + 1)
        boxes.append(np.array([[x0, y0, x0 + 16, y0 + 16]], np.float64))
        classes.append(np.array([i % 2]))
    return DetectionSet(images, boxes, classes, np.zeros(4, bool))


def tiny_model() -> TileDetector:
    torch.manual_seed(0)
    return TileDetector(DetectorConfig(num_classes=2, input_width=SIZE[0],
                                       input_height=SIZE[1], widths=(8, 8, 8, 8, 8),
                                       neck_width=8))


def narrow_statistics(model: TileDetector) -> list[torch.Tensor]:
    """Running means of every slimmable BatchNorm of the levels above 0 (only the tiled
    mixed pass runs them)."""
    return [bn.running_mean.clone() for m in model.modules() if isinstance(m, SlimBatchNorm2d)
            for bn in m.bn[1:]]


def config(steps: int, untiled: int) -> SupernetTraining:
    return SupernetTraining(steps=steps, batch_size=4, k_options=(2,), untiled_steps=untiled,
                            checkpoint_every=1)


def test_the_warm_up_trains_the_full_width_alone_then_the_tiled_passes_join(
        tmp_path: Path) -> None:
    model, data, ckpt = tiny_model(), tiny_set(), tmp_path / 'supernet.ckpt'
    narrow = narrow_statistics(model)
    stem = model.stem.conv.weight.clone()
    seen: dict[int, list[torch.Tensor]] = {}

    def interrupted_after_the_warm_up(record: dict) -> None:
        seen[record['step']] = narrow_statistics(model)
        if record['step'] == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_supernet(model, data, config(3, 2), ckpt, log=interrupted_after_the_warm_up,
                       progress=False)
    assert not torch.equal(stem, model.stem.conv.weight)
    assert all(torch.equal(a, b) for a, b in zip(narrow, seen[2], strict=True))
    # resumes from the last checkpoint (step 1: the interruption came before step 2's)
    history = train_supernet(model, data, config(3, 2), ckpt, progress=False)
    assert [(r['step'], r['tiled'], r['mixed']) for r in history[:2]] == [(1, None, None),
                                                                         (2, None, None)]
    assert [r['step'] for r in history] == [1, 2, 3]
    assert history[2]['tiled'] > 0 and history[2]['mixed'] > 0
    assert any(not torch.equal(a, b)
               for a, b in zip(narrow, narrow_statistics(model), strict=True))


def test_without_a_warm_up_every_step_trains_the_tiled_passes(tmp_path: Path) -> None:
    history = train_supernet(tiny_model(), tiny_set(), config(2, 0), tmp_path / 'c.ckpt',
                             progress=False)
    assert all(r['tiled'] > 0 and r['mixed'] > 0 for r in history)


@pytest.mark.parametrize('kwargs', [dict(steps=0), dict(batch_size=0), dict(checkpoint_every=0),
                                    dict(untiled_steps=-1), dict(steps=10, untiled_steps=11)])
def test_invalid_supernet_training(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SupernetTraining(**kwargs)


def test_a_checkpoint_of_another_schedule_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / 'supernet.ckpt'
    train_supernet(tiny_model(), tiny_set(), config(1, 1), ckpt, progress=False)
    assert torch.load(ckpt, weights_only=False)['schedule'] == {'steps': 1, 'untiled_steps': 1}
    with pytest.raises(ConfigError, match='was trained with'):
        train_supernet(tiny_model(), tiny_set(), config(3, 2), ckpt, progress=False)
    state = torch.load(ckpt, weights_only=False)  # a checkpoint from before schedules
    del state['schedule']
    torch.save(state, ckpt)
    assert len(train_supernet(tiny_model(), tiny_set(), config(2, 1), ckpt,
                              progress=False)) == 2


@pytest.mark.parametrize('halo', ['paper', '2'])
def test_the_tiled_passes_run_with_the_configured_halo(tmp_path: Path, halo: str,
                                                       monkeypatch) -> None:  # noqa: ANN001
    seen: list[str] = []
    run = MicroFlowExecutor.__call__

    def recording(self, images, levels, k, tile_halo, *args, **kwargs):  # noqa: ANN001
        seen.append(tile_halo)
        return run(self, images, levels, k, tile_halo, *args, **kwargs)
    monkeypatch.setattr(MicroFlowExecutor, '__call__', recording)
    train_supernet(tiny_model(), tiny_set(), replace(config(2, 0), halo=halo),
                   tmp_path / 'c.ckpt', progress=False)
    assert seen == [halo] * 4  # two tiled passes per step


def test_a_checkpoint_of_another_halo_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / 'halo.ckpt'
    train_supernet(tiny_model(), tiny_set(), replace(config(1, 0), halo='02'), ckpt,
                   progress=False)
    assert torch.load(ckpt, weights_only=False)['schedule']['halo'] == '2'
    with pytest.raises(ConfigError, match="'halo': '2'"):
        train_supernet(tiny_model(), tiny_set(), replace(config(2, 0), halo='8'), ckpt,
                       progress=False)


def test_a_bad_halo_is_refused() -> None:
    with pytest.raises(ConfigError, match='halo must be'):
        SupernetTraining(halo='wide')
