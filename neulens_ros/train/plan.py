"""The sizes of a neulens-train run (full or smoke) and the scene sets it draws: the training
set and the held-out scenes that validation, the evaluation and the benchmarks share."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.gate.kind_labels import GATE_LABELS
from neulens_ros.models.zoo import checkpoint_preset, detector_config
from neulens_ros.supernet.detector import DetectorConfig
from neulens_ros.supernet.tiling import check_halo
from neulens_ros.models.names import DATASET_PRESET
from neulens_ros.train.data import SetSpec
from neulens_ros.train.supernet import SupernetTraining


GATE_CONTEXT = {'paper': 0, 'kinds': 64}  # the gate's context channels for each labels


@dataclass(frozen=True)
class Plan:
    """Sizes of one training run (full or smoke)."""

    train_scenes: int
    val_scenes: int
    label_scenes: int
    supernet_steps: int
    batch_size: int
    gate_epochs: int
    val_render: tuple[int, int]
    # the gate's calibration scenes (calibration_set; a data set on disk: the training images
    # after the labelled ones, which a gate on tile kinds never fits on in either case)
    calibration_scenes: int
    pretrain_steps: int = 0  # backbone pre-training on object crops (train/pretrain.py)
    untiled_steps: int = 0  # of supernet_steps: untiled full width alone first (warm-up)
    widths: tuple[int, ...] = DetectorConfig.widths  # stem, layer1..layer4 channels
    neck_width: int = DetectorConfig.neck_width
    output_stride: int = DetectorConfig.output_stride
    gate_labels: str = 'paper'  # GATE_LABELS: the paper's (gate/labels.py) or tile kinds
    # the halo the detector runs its tiles with (supernet/tiling.py; its metadata's `halo`):
    # labels, calibration and evaluation use it; the supernet's tiled passes train on 'paper'
    halo: str = 'paper'
    # extra training scenes (the seeds after train_scenes', rendered alike) a gate on tile
    # kinds also fits on; the paper's gate fits on the supernet's labels of label_scenes
    gate_scenes: int = 0
    # walks (of calibration_walk_frames frames each) the gate's operating point must also hold
    # on, beside the calibration scenes (calibration_walk_set; hard preset only: walks are its
    # rooms)
    calibration_walks: int = 0
    calibration_walk_frames: int = 40

    def __post_init__(self) -> None:
        self.supernet_training(seed=0)  # its steps, batch and warm-up, validated there
        object.__setattr__(self, 'halo', check_halo(self.halo))  # '02' is the plan of '2'
        for name in ('gate_scenes', 'calibration_walks'):
            if getattr(self, name) < 0:
                raise ConfigError(f'{name} must be >= 0, got {getattr(self, name)}')
        if self.calibration_walk_frames < 1:
            raise ConfigError(f'calibration_walk_frames must be >= 1, got '
                              f'{self.calibration_walk_frames}')
        if self.gate_labels not in GATE_LABELS:
            raise ConfigError(f'a plan needs gate labels in {GATE_LABELS}, got '
                              f'{self.gate_labels!r}')

    def supernet_training(self, seed: int) -> SupernetTraining:
        """The supernet steps of a run of this plan with `seed` (train/supernet.py)."""
        return SupernetTraining(steps=self.supernet_steps, batch_size=self.batch_size,
                                seed=seed, untiled_steps=self.untiled_steps)

    @property
    def gate_context(self) -> int:
        """Channels of the gate's neighbour context, fixed by its labels (0: the paper's
        gate)."""
        return GATE_CONTEXT[self.gate_labels]

    def detector_config(self, num_classes: int) -> DetectorConfig:
        """The architecture a run of this plan trains from scratch."""
        return DetectorConfig(num_classes=num_classes, widths=self.widths,
                              neck_width=self.neck_width, output_stride=self.output_stride)


FULL = Plan(train_scenes=3000, val_scenes=300, label_scenes=250, supernet_steps=1200,
            batch_size=16, gate_epochs=30, val_render=(640, 480), calibration_scenes=200)
SMOKE = Plan(train_scenes=24, val_scenes=8, label_scenes=6, supernet_steps=4, batch_size=4,
             gate_epochs=2, val_render=(320, 240), calibration_scenes=6, pretrain_steps=2,
             calibration_walks=1, calibration_walk_frames=3)
# The hard preset's 12 texture classes need a wider detector than the easy one (0.58 M
# parameters do not even find the objects, docs/training.md, capacity probe). Its widths sit in
# the front (stem..layer2, about 70% of the MACs) and its heads work at stride 8, so that the
# part NeuLens compresses per tile dominates the frame's cost; at equal steps this detector
# learns faster than the 2.1 M-parameter one with a stride-4 neck that the first hard run
# trained. Its gate learns the tile kinds of every training image outside the first 150
# (held out for its accuracy) and the 120 after them (kept out of its fit as when they were its
# calibration; it now calibrates on 120 scenes of its own, calibration_set), with a context
# input of 64 channels: on held-out frames it keeps more mAP at equal MACs than the paper's gate on
# the paper's labels of 150 scenes (docs/training.md, "A gate on tile kinds"). The first 3500
# of its 5500 supernet steps train the full width alone (the untiled warm-up, at about a
# quarter of a full step's cost): on held-out tuning scenes that lifts the untiled detector
# from 0.533 mAP@0.5 after 3000 full steps to 0.694 at the warm-up's end (docs/training.md,
# "An untiled warm-up and a calibrated kind rule"). Its tiles run with a 2 px halo: the
# cheapest integer halo whose tiled level 0 is within 1 point of the untiled detector on 200
# tuning scenes from seed 500,000 (0.698 against 0.703, for 1.21x the paper halo's MACs; the
# paper halo's tiles never see the pixels between them and lose 8.3 points there;
# docs/training.md, "Tile seams"). Its gate on tile kinds fits on 6000 more scenes than the
# supernet (tile accuracy on the tuning scenes 0.793 -> 0.811; within 1 point of level 0 at
# 63% of its MACs there instead of 70%; docs/training.md, "More scenes for the gate"). Its
# operating point must hold on 4 calibration walks of 40 frames as well as on the calibration
# scenes: the point calibrated on scenes alone lost 5.5 points on the second held-out walks
# (docs/training.md, "Calibrated on walks too").
FULL_HARD = replace(FULL, supernet_steps=5500, untiled_steps=3500, label_scenes=150,
                    calibration_scenes=120, widths=(48, 48, 96, 128, 160), neck_width=64,
                    output_stride=8, gate_labels='kinds', halo='2', gate_scenes=6000,
                    calibration_walks=4)
VAL_SEED = 1_000_000  # validation scenes never overlap the training seeds
# The gate's calibration scenes: a range below the held-out ones that no training, gate,
# validation or evaluation set draws from, rendered as the held-out scenes are
CALIBRATION_SEED = 700_000
CALIBRATION_WALK_SEED = 800_000  # the gate's calibration walks: likewise drawn by no other set
# Held-out walks: two seed ranges no training, validation or calibration set draws from
WALK_SEEDS = (2_000_000, 3_000_000)
TRAIN_RENDER = (320, 240)  # (width, height) the training scenes are rendered at
MIN_TRAINING_IMAGES = 4  # of a data set on disk: 2 labelled (1 fits, 1 held out), 2 calibrate


def with_gate_labels(plan: Plan, labels: str) -> Plan:
    """`plan` with a gate on `labels` (GATE_LABELS) and that gate's context input."""
    if labels not in GATE_LABELS:
        raise ConfigError(f'gate labels {labels!r} are not one of {GATE_LABELS}')
    return replace(plan, gate_labels=labels)


def plan_for(preset: str, smoke: bool) -> Plan:
    """The sizes of a run on `preset` (the smoke sizes whatever the preset)."""
    if smoke:
        return SMOKE
    return FULL_HARD if preset == 'hard' else FULL


def training_set(plan: Plan, seed: int, size: tuple[int, int], preset: str = 'easy'
                 ) -> SetSpec:
    """The training scenes of a run: rendered at 320 x 240, resized to the network's `size`
    (width, height)."""
    return SetSpec(seed, plan.train_scenes, TRAIN_RENDER, size, preset=preset)


def gate_set(plan: Plan, seed: int, size: tuple[int, int], preset: str = 'easy'
             ) -> SetSpec | None:
    """The extra scenes a gate on tile kinds fits on (None: none): the `gate_scenes` seeds
    after the training set's, rendered as it is."""
    if not plan.gate_scenes or plan.gate_labels != 'kinds':
        return None
    first = _below_held_out("gate's extra scenes", seed + plan.train_scenes, plan.gate_scenes)
    return SetSpec(first, plan.gate_scenes, TRAIN_RENDER, size, preset=preset)


def calibration_set(plan: Plan, seed: int, size: tuple[int, int], preset: str = 'easy'
                    ) -> SetSpec:
    """The scenes a run calibrates its gate's operating point on: `calibration_scenes` seeds
    from CALIBRATION_SEED + seed, rendered at the validation size (as camera frames and the
    held-out scenes are) and never trained on, neither by the detector nor by the gate."""
    first = _below_held_out('calibration scenes', CALIBRATION_SEED + seed,
                            plan.calibration_scenes)
    return SetSpec(first, plan.calibration_scenes, plan.val_render, size, preset=preset)


def calibration_walk_set(plan: Plan, seed: int, size: tuple[int, int], preset: str = 'easy'
                         ) -> SetSpec | None:
    """The walks a run also calibrates its gate's operating point on (None: none, or a preset
    without walks): `calibration_walks` walks of `calibration_walk_frames` frames from
    CALIBRATION_WALK_SEED + seed, rendered as the held-out walks and never trained on."""
    if not plan.calibration_walks or preset != 'hard':
        return None
    first = _below_held_out('calibration walks', CALIBRATION_WALK_SEED + seed,
                            plan.calibration_walks)
    return SetSpec(first, plan.calibration_walks, plan.val_render, size, preset=preset,
                   walk_frames=plan.calibration_walk_frames)


def _below_held_out(what: str, first: int, count: int) -> int:
    """`first`, the first seed of `count` seeds of `what`; ConfigError when they would reach
    the held-out seeds."""
    if first + count > VAL_SEED:
        raise ConfigError(f'the {what} (seeds up to {first + count - 1}) would reach the '
                          f'held-out seeds from {VAL_SEED}: use a smaller --seed')
    return first


def validation_set(plan: Plan, seed: int, size: tuple[int, int], preset: str = 'easy'
                   ) -> SetSpec:
    """The validation scenes of a run (from VAL_SEED + seed: never trained on)."""
    return SetSpec(VAL_SEED + seed, plan.val_scenes, plan.val_render, size, preset=preset)


def held_out_set(count: int, size: tuple[int, int], preset: str = 'easy',
                 first_seed: int = VAL_SEED) -> SetSpec:
    """`count` held-out scenes (seeds from `first_seed`, by default VAL_SEED; never trained
    on) rendered at 640 x 480 as the full run's validation set is, resized to the network's
    `size` (width, height)."""
    return SetSpec(first_seed, count, FULL.val_render, size, preset=preset)


def held_out_walks(count: int, frames: int, size: tuple[int, int],
                   first_seed: int = WALK_SEEDS[0], render: tuple[int, int] = FULL.val_render
                   ) -> SetSpec:
    """`count` held-out walks through hard-preset rooms (seeds from `first_seed`, one of
    WALK_SEEDS by default: never trained on) of `frames` frames each, rendered at `render`
    (width, height; 640 x 480 as the held-out scenes) and resized to the network's `size`."""
    return SetSpec(first_seed, count, render, size, preset='hard', walk_frames=frames)


def scene_preset(meta: dict[str, Any]) -> str:
    """The scene preset whose generated scenes evaluate the detector checkpoint of metadata
    `meta`; DataError for a detector trained on a data set on disk, which only its data set
    (`--data`) evaluates."""
    preset = checkpoint_preset(meta)
    if preset == DATASET_PRESET:
        data = meta.get('dataset', {}).get('data', '?')
        raise DataError(f'the detector was trained on a data set on disk ({data}), not on '
                        'generated scenes: evaluate it on its data set with neulens-eval '
                        'detector --data; the generated-scene tools (benchmarks, gate, lifting '
                        'and stream evaluation) need a detector trained on a preset')
    return preset


def detector_held_out_set(meta: dict[str, Any], count: int, first_seed: int = VAL_SEED
                          ) -> SetSpec:
    """`count` held-out scenes for the detector checkpoint of metadata `meta`: of the preset
    it was trained on, resized to its input."""
    config = detector_config(meta)
    return held_out_set(count, (config.input_width, config.input_height),
                        scene_preset(meta), first_seed)


def detector_training_set(meta: dict[str, Any], seed: int, smoke: bool) -> tuple[Plan, SetSpec]:
    """(the plan, the training scenes) of the neulens-train run (`seed`, `smoke`) that trained
    or labelled for the detector checkpoint of metadata `meta`, on its preset."""
    config = detector_config(meta)
    preset = scene_preset(meta)
    plan = plan_for(preset, smoke)
    return plan, training_set(plan, seed, (config.input_width, config.input_height), preset)


def fit_to_images(plan: Plan, images: int) -> Plan:
    """`plan` for a training set of `images` images (a data set on disk). A gate on the
    paper's labels labels at most half of them and its caution is calibrated on (at most its
    share of) the rest; a gate on tile kinds holds out and calibrates on at most a fifth each
    (at least one image) and fits on the rest."""
    if images < MIN_TRAINING_IMAGES:
        raise DataError(f'training needs at least {MIN_TRAINING_IMAGES} images (the gate '
                        f'is fitted, held out and calibrated on separate ones), got {images}')
    if plan.gate_labels == 'paper':
        label = min(plan.label_scenes, images // 2)
        return replace(plan, label_scenes=label,
                       calibration_scenes=min(plan.calibration_scenes, images - label))
    share = max(1, images // 5)
    return replace(plan, label_scenes=min(plan.label_scenes, share),
                   calibration_scenes=min(plan.calibration_scenes, share))
