"""Shipped checkpoints, loaded by name, each with a metadata file that guards it.

    <name>.pt     torch state_dict
    <name>.json   {'kind', 'architecture' (config fields), 'sha256' of the .pt, 'metrics', ...}

`load_checkpoint` checks the file exists, its hash matches the metadata (a truncated or
modified file is reported as corrupt), and its tensors match the architecture; every failure
is a CheckpointError naming the file and what differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neulens_ros.errors import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parent / 'weights'


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model: nn.Module) -> str:
    """sha256 of a module's weights (its state_dict's names, shapes, dtypes and values): the
    same for the same weights however they were saved."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():  # tensors (extra state has none here)
        value = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tuple(value.shape)}:{value.dtype};'.encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    return digest.hexdigest()


def resolve(name_or_path: str | Path) -> Path:
    """A shipped name ('neulens_detector') or a path to a .pt file -> the .pt path."""
    path = Path(name_or_path)
    if path.suffix != '.pt':
        path = WEIGHTS_DIR / f'{name_or_path}.pt'
    if not path.is_file():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob('*.pt'))
        raise CheckpointError(f'checkpoint {path} not found; shipped models: '
                              f'{", ".join(shipped) or "none"}')
    return path


def save_checkpoint(path: Path, model: nn.Module, kind: str, architecture: dict[str, Any],
                    **extra: Any) -> dict[str, Any]:
    """Write `path` (.pt, float32 state_dict) and its metadata (.json); returns the metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    meta = {'kind': kind, 'architecture': architecture, 'sha256': sha256_of(path),
            'bytes': path.stat().st_size, **extra}
    path.with_suffix('.json').write_text(json.dumps(meta, indent=1, default=str))
    return meta


def read_metadata(path: Path) -> dict[str, Any]:
    meta_path = path.with_suffix('.json')
    try:
        return json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f'{path}: metadata {meta_path.name} is missing (it records the '
                              'architecture and hash of the weights)') from None
    except ValueError as exc:
        raise CheckpointError(f'{meta_path}: not valid JSON ({exc})') from exc


def load_checkpoint(name_or_path: str | Path, kind: str, model: nn.Module | None = None,
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, metadata) of a checkpoint of `kind`, verified; loaded into `model` too
    when given (strictly: missing or unexpected tensors and shape mismatches are errors)."""
    path = resolve(name_or_path)
    meta = read_metadata(path)
    if meta.get('kind') != kind:
        raise CheckpointError(f'{path}: is a {meta.get("kind")!r} checkpoint, expected {kind!r}')
    digest = sha256_of(path)
    if digest != meta.get('sha256'):
        raise CheckpointError(f'{path}: corrupt (sha256 {digest[:12]}... differs from the '
                              f'{str(meta.get("sha256"))[:12]}... recorded in its metadata)')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on bad files
        raise CheckpointError(f'{path}: cannot be read as a state_dict ({exc})') from exc
    if model is not None:
        load_into(model, state, path)
    return state, meta


def load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f'{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing tensors (e.g. {missing[0]})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})')
        if shapes:
            parts.append(f'{len(shapes)} shape mismatches (e.g. {shapes[0]})')
        raise CheckpointError(f'{path} does not match the architecture: ' + '; '.join(parts))
    model.load_state_dict(state)
