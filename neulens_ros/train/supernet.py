"""Supernet training (paper 4.3, IEB-like), resumable and seeded.

Every step trains, on one batch:
1. the full-width untiled detector on the ground truth (the teacher);
2. the tiled level-0 network (random P and k, the configured halo) on the ground truth, so
   that tiled and untiled agree;
3. a tiled network with a random level per tile (0..3, and some skipped tiles) on the
   teacher's detached outputs (soft targets) plus half the ground-truth loss, so the back
   layers learn on stitched features of mixed levels.
Gradients of the three are summed; per-level BatchNorm keeps the statistics apart.
The first `untiled_steps` steps (a warm-up) train pass 1 alone: an untiled step costs about a
quarter of a full one, so a run learns the full-width detector on more images in the same time
before the tiled passes join; the learning-rate schedule spans all steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.supernet.centernet import (Targets, build_targets, detection_loss,
                                           distillation_loss)
from neulens_ros.supernet.detector import P_OPTIONS, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, normalise
from neulens_ros.supernet.slim import LEVEL_SKIP
from neulens_ros.supernet.tiling import check_halo
from neulens_ros.train.data import DetectionSet


@dataclass(frozen=True)
class SupernetTraining:
    steps: int = 1500
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    halo: str = 'paper'
    k_options: tuple[int, ...] = TILE_GRIDS
    skip_probability: float = 0.1  # chance a tile is skipped in the mixed pass
    seed: int = 0
    checkpoint_every: int = 100
    untiled_steps: int = 0  # the first steps train the untiled full width alone (warm-up)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ConfigError(f'supernet training needs steps, batch size and checkpoint '
                              f'interval >= 1, got {self.steps}, {self.batch_size}, '
                              f'{self.checkpoint_every}')
        if not 0 <= self.untiled_steps <= self.steps:
            raise ConfigError(f'untiled warm-up steps must be within 0..{self.steps} (the '
                              f'run\'s steps), got {self.untiled_steps}')
        object.__setattr__(self, 'halo', check_halo(self.halo))


def sample_batch(data: DetectionSet, rng: np.random.Generator, size: int
                 ) -> tuple[torch.Tensor, list[np.ndarray], list[np.ndarray]]:
    """A random batch with horizontal flips: images [B, 3, H, W] normalised, boxes, classes."""
    idx = rng.integers(0, len(data), size)
    flips = rng.random(size) < 0.5
    width = data.images.shape[2]
    images, boxes = [], []
    for i, flip in zip(idx, flips, strict=True):
        img, b = data.images[i], data.boxes[i].copy()
        if flip:
            img = img[:, ::-1]
            b[:, [0, 2]] = width - b[:, [2, 0]]
        images.append(np.ascontiguousarray(img))
        boxes.append(b)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return normalise(x), boxes, [data.classes[i] for i in idx]


def tiled_passes(executors: dict[str, MicroFlowExecutor], images: torch.Tensor,
                 targets: Targets, teacher: dict[str, torch.Tensor], rng: np.random.Generator,
                 cfg: SupernetTraining) -> tuple[float, float]:
    """Passes 2 and 3 of a step on `images` [B, 3, H, W], gradients accumulated: the tiled
    level-0 network on the ground truth, then random levels per tile on the full width's
    detached outputs `teacher` plus half the ground truth. Returns their two losses."""
    batch = images.shape[0]
    ex = executors[P_OPTIONS[rng.integers(len(P_OPTIONS))]]
    k = int(rng.choice(cfg.k_options))
    tiled0 = ex(images, np.zeros((batch, k * k), np.int64), k, cfg.halo)
    loss_tiled = detection_loss(tiled0, targets)
    loss_tiled.backward()
    ex = executors[P_OPTIONS[rng.integers(len(P_OPTIONS))]]
    k = int(rng.choice(cfg.k_options))
    levels = rng.integers(0, LEVEL_SKIP, (batch, k * k))
    levels[rng.random(levels.shape) < cfg.skip_probability] = LEVEL_SKIP
    mixed = ex(images, levels, k, cfg.halo)
    teacher_out = {key: v.detach() for key, v in teacher.items()}
    loss_mixed = distillation_loss(mixed, teacher_out, targets) + 0.5 * detection_loss(
        mixed, targets)
    loss_mixed.backward()
    return loss_tiled.item(), loss_mixed.item()


def train_supernet(model: TileDetector, data: DetectionSet, cfg: SupernetTraining,
                   checkpoint: Path, log: Callable[[dict], None] | None = None,
                   progress: bool = True) -> list[dict]:
    """Train `model` in place for cfg.steps, resuming from `checkpoint` when it exists.

    Returns the loss history (one record per step). The checkpoint (model, optimiser, RNG
    state, history) is written every cfg.checkpoint_every steps and at the end.
    """
    from neulens_ros.progress import progress_bar
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    history: list[dict] = []
    start = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location='cpu', weights_only=False)
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        sched.load_state_dict(state['scheduler'])
        rng.bit_generator.state = state['rng']
        torch.set_rng_state(state['torch_rng'])
        history, start = state['history'], state['step']
        check_schedule(state.get('schedule'), cfg, checkpoint)
    executors = {p: MicroFlowExecutor(model, p) for p in P_OPTIONS}
    cfg_model = model.config
    out_h, out_w = (cfg_model.input_height // cfg_model.output_stride,
                    cfg_model.input_width // cfg_model.output_stride)
    model.train()
    bar = progress_bar(range(start, cfg.steps), initial=start, total=cfg.steps, desc='supernet',
                       unit='step', disable=not progress)
    for step in bar:
        t0 = time.monotonic()
        images, boxes, classes = sample_batch(data, rng, cfg.batch_size)
        targets = build_targets(boxes, classes, cfg_model.num_classes, out_h, out_w,
                                cfg_model.output_stride)
        opt.zero_grad(set_to_none=True)
        teacher = model(images)
        loss_full = detection_loss(teacher, targets)
        loss_full.backward()
        tiled = (tiled_passes(executors, images, targets, teacher, rng, cfg)
                 if step >= cfg.untiled_steps else None)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        record = {'step': step + 1, 'full': loss_full.item(),
                  'tiled': None if tiled is None else tiled[0],
                  'mixed': None if tiled is None else tiled[1],
                  'lr': sched.get_last_lr()[0], 'seconds': time.monotonic() - t0}
        history.append(record)
        bar.set_postfix(full=f'{record["full"]:.2f}',
                        mixed='-' if tiled is None else f'{tiled[1]:.2f}')
        if log is not None:
            log(record)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(checkpoint, model, opt, sched, rng, history, step + 1,
                                schedule(cfg))
    model.eval()
    return history


def schedule(cfg: SupernetTraining) -> dict[str, int | str]:
    """What a checkpoint must share with the run that resumes it: the steps the learning rate
    decays over, the untiled warm-up and the halo of the tiled passes (recorded when it is not
    the paper's, so checkpoints from before halos resume as they are)."""
    steps: dict[str, int | str] = {'steps': cfg.steps, 'untiled_steps': cfg.untiled_steps}
    return steps if cfg.halo == 'paper' else {**steps, 'halo': cfg.halo}


def check_schedule(saved: dict[str, int | str] | None, cfg: SupernetTraining, path: Path
                   ) -> None:
    """ConfigError when checkpoint `path` was trained on another schedule than `cfg`'s (None:
    a checkpoint from before schedules were recorded, taken as it is)."""
    if saved is not None and saved != schedule(cfg):
        raise ConfigError(f'{path} was trained with {saved}, this run has {schedule(cfg)}: '
                          'resume it with the plan that started it, or start in a new --work')


def save_training_state(path: Path, model: TileDetector, opt: torch.optim.Optimizer,
                        sched: object, rng: np.random.Generator, history: list[dict],
                        step: int, steps: dict[str, int | str]) -> None:
    """Write the resumable state atomically; `steps`: the run's schedule (schedule())."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp')
    torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(),
                'scheduler': sched.state_dict(), 'rng': rng.bit_generator.state,
                'torch_rng': torch.get_rng_state(), 'history': history, 'step': step,
                'schedule': steps}, tmp)
    tmp.replace(path)
