"""Pretrained backbone weights from a torchvision-format state_dict, sliced into the supernet.

The user supplies the file (nothing is downloaded): a `state_dict` saved from torchvision's
ResNet-18/34/50 (conv1, bn1, layer1.0.conv1, ..., downsample.0/1, fc) or MobileNetV2
(features.N...). Every tensor of the supernet that has a torchvision counterpart takes it:
- a convolution takes the FIRST output and input channels of the wider source weight (the
  slimmable layers keep the first channels at every level, slim.py); kernels must agree;
- each level's BatchNorm takes the first channels of the one source BatchNorm (weight, bias,
  running mean and variance), so every level starts from the same statistics;
- source keys with no counterpart (fc, the blocks a deeper ResNet has beyond the supernet's
  two per stage, MobileNetV2's later stages) and source tensors whose shape cannot be sliced
  to the supernet's (another kernel size, fewer channels) are listed as ignored, with why.

Names map both ways with one rule (`torchvision_names`): the detector's stem is torchvision's
conv1/bn1, its stages keep torchvision's block names, a SlimBatchNorm2d's `bn.<level>` is the
plain BatchNorm; mobilenet_front's layer i is torchvision's features.i (expand / depthwise /
project are conv.0 / conv.1 / conv.2-3, and the expand-ratio-1 block has no expand conv).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from neulens_ros.errors import CheckpointError
from neulens_ros.supernet.backbones import InvertedResidual

# own name pieces -> torchvision's, in the detector (ResNet-style) backbone
_RESNET_RENAMES = (('stem.conv.', 'conv1.'), ('stem.bn.', 'bn1.'))
_RESNET_PARTS = re.compile(r'^(conv1|bn1|fc|layer\d+\.\d+\.(conv\d|bn\d|downsample\.[01]))\.')
_LEVEL = re.compile(r'\.bn\.(\d+)\.')
# inverted-residual parts -> torchvision's conv.N index (with and without the expand conv)
_MOBILENET_PARTS = {'expand.0': 'conv.0.0', 'expand.1': 'conv.0.1',
                    'depthwise.0': 'conv.1.0', 'depthwise.1': 'conv.1.1',
                    'project.0': 'conv.2', 'project.1': 'conv.3'}
_MOBILENET_NO_EXPAND = {'depthwise.0': 'conv.0.0', 'depthwise.1': 'conv.0.1',
                        'project.0': 'conv.1', 'project.1': 'conv.2'}


@dataclass(frozen=True)
class LoadReport:
    """What loading a torchvision state_dict did, by source key (and model key)."""

    used: tuple[str, ...]  # source keys copied as they are
    sliced: tuple[str, ...]  # 'source key: (source shape) -> (model shape)' (first channels)
    ignored: tuple[str, ...]  # 'source key: why'
    not_loaded: tuple[str, ...]  # model backbone tensors no source key fed (kept as they were)

    def describe(self) -> str:
        lines = [f'{len(self.used)} source tensors used as they are, {len(self.sliced)} '
                 f'sliced to the supernet, {len(self.ignored)} ignored; '
                 f'{len(self.not_loaded)} backbone tensors kept their initialisation']
        for title, keys in (('sliced', self.sliced), ('ignored', self.ignored),
                            ('not loaded', self.not_loaded)):
            lines += [f'  {title}: {key}' for key in keys]
        return '\n'.join(lines)


def torchvision_names(model: nn.Module) -> dict[str, tuple[str, int | None]]:
    """{model state_dict key: (torchvision key, BatchNorm level or None)} for every backbone
    tensor of `model` (TileDetector / ResNet50 in ResNet names, mobilenet_front in
    MobileNetV2's `features.N` names); tensors outside the backbone are absent."""
    blocks = {name: block for name, block in model.named_modules()
              if isinstance(block, InvertedResidual)}
    names = {}
    for key in model.state_dict():
        level_match = _LEVEL.search(key)
        plain = _LEVEL.sub('.', key)
        level = int(level_match.group(1)) if level_match else None
        source = _mobilenet_name(plain, blocks) if blocks else _resnet_name(plain)
        if source is not None:
            names[key] = (source, level)
    return names


def _resnet_name(key: str) -> str | None:
    for own, theirs in _RESNET_RENAMES:
        if key.startswith(own):
            key = theirs + key[len(own):]
    return key if _RESNET_PARTS.match(key) else None


def _mobilenet_name(key: str, blocks: dict[str, InvertedResidual]) -> str | None:
    index, _, rest = key.partition('.')
    if not index.isdigit():
        return None
    block = blocks.get(index)
    if block is None:  # the stem: conv, BatchNorm (features.0.0 / features.0.1)
        return f'features.{key}'
    conv = block.expand[0]
    parts = _MOBILENET_PARTS if conv.in_channels != conv.out_channels else _MOBILENET_NO_EXPAND
    part, _, leaf = rest.rpartition('.')
    return f'features.{index}.{parts[part]}.{leaf}' if part in parts else None


def to_torchvision(model: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone of `model` as a torchvision-format state_dict (each BatchNorm from level
    0, the full width): the inverse of `load_backbone_weights` on a model of the same size."""
    state = model.state_dict()
    return {source: state[key].clone() for key, (source, level) in
            torchvision_names(model).items() if level in (None, 0)}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict ({name: tensor}) from a torch file, or a CheckpointError saying why not."""
    if not path.is_file():
        raise CheckpointError(f'backbone weights {path} not found (a torchvision state_dict '
                              'saved with torch.save(model.state_dict(), path))')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on bad files
        raise CheckpointError(f'{path}: cannot be read by torch.load ({exc})') from exc
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f'{path}: is not a state_dict (a non-empty dict of name -> '
                              f'tensor), got {type(state).__name__}: save model.state_dict()')
    return state


def _plan(model: nn.Module, state: dict[str, torch.Tensor]
          ) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """({model key: sliced source tensor}, report) of loading `state` into `model`."""
    own = model.state_dict()
    names = torchvision_names(model)
    targets: dict[str, list[str]] = {}
    for key, (source, _) in names.items():
        targets.setdefault(source, []).append(key)
    loaded, used, sliced, ignored = {}, [], [], []
    for source in sorted(state):
        value = state[source]
        keys = targets.get(source)
        if not keys:
            ignored.append(f'{source}: no counterpart in the supernet')
            continue
        bad = [k for k in keys if not _sliceable(value.shape, own[k].shape)]
        if bad:
            ignored.append(f'{source}: {tuple(value.shape)} cannot be sliced to '
                           f'{tuple(own[bad[0]].shape)} ({bad[0]})')
            continue
        for key in keys:
            loaded[key] = value[tuple(slice(0, n) for n in own[key].shape)].clone()
        changed = sorted({tuple(own[k].shape) for k in keys} - {tuple(value.shape)})
        if changed:
            sliced.append(f'{source}: {tuple(value.shape)} -> '
                          + ', '.join(str(s) for s in changed))
        else:
            used.append(source)
    not_loaded = tuple(sorted(set(names) - set(loaded)))
    return loaded, LoadReport(tuple(used), tuple(sliced), tuple(ignored), not_loaded)


def load_backbone_weights(model: nn.Module, state: dict[str, torch.Tensor],
                          origin: str = 'state_dict') -> LoadReport:
    """Copy `state` (torchvision names) into `model`'s backbone, slicing to its widths and
    levels; returns what was used, sliced and ignored. CheckpointError when no key fits."""
    loaded, report = _plan(model, state)
    if not loaded:
        example = next(iter(torchvision_names(model).values()), ('none',))[0]
        raise CheckpointError(f'{origin}: none of its {len(state)} keys (e.g. {next(iter(state))}'
                              f') is a backbone tensor of this {type(model).__name__} under '
                              f'torchvision names (e.g. {example})')
    model.load_state_dict(loaded, strict=False)
    return report


def load_torchvision_resnet(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a complete torchvision state_dict of the same architecture (ResNet50 with its fc):
    every source tensor must find its place and every model tensor a source, else nothing is
    loaded (CheckpointError naming the first of each)."""
    loaded, report = _plan(model, state)
    own = set(model.state_dict())
    if report.ignored or set(loaded) != own:
        missing = sorted(own - set(loaded))
        raise CheckpointError(f'{len(report.ignored)} torchvision tensors have no place in the '
                              f'{type(model).__name__} (e.g. {report.ignored[:1]}), '
                              f'{len(missing)} of its tensors no source (e.g. {missing[:1]})')
    model.load_state_dict(loaded)


def _sliceable(source: torch.Size, target: torch.Size) -> bool:
    """True when `target` is the leading block of `source`: same rank, every dim no larger,
    and the same kernel (the dims after the two channel dims)."""
    return (len(source) == len(target) and tuple(source[2:]) == tuple(target[2:])
            and all(t <= s for s, t in zip(source, target, strict=True)))


def load_backbone_file(model: nn.Module, path: Path) -> LoadReport:
    """`load_backbone_weights` of the state_dict in `path` (neulens-train --backbone-weights)."""
    return load_backbone_weights(model, read_state_dict(path), str(path))
