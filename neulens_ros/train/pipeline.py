"""The stages of neulens-train after the supernet: tile labels, gate, evaluation, export."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.data.scenes import class_names
from neulens_ros.errors import ConfigError
from neulens_ros.eval.detector import (SHIP_HALO, SHIP_K, SHIP_P, evaluate, plot_results,
                                       run_variant)
from neulens_ros.eval.oracle import ORACLE_FAMILY, OracleRule
from neulens_ros.gate.calibration import (CAUTIONS, KIND_CAUTIONS, budget_points,
                                          calibrate_caution)
from neulens_ros.gate.cgg import CompressionGuidingGate, gate_inputs
from neulens_ros.gate.kind_labels import kind_gate_data, kind_rule, rule_field
from neulens_ros.gate.labels import label_frame
from neulens_ros.gate.training import (GateData, GateTraining, frame_gate_accuracy,
                                       frame_tiles, gate_accuracy, train_frame_gate,
                                       train_gate)
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.models.registry import (WEIGHTS_DIR, load_checkpoint, save_checkpoint,
                                         weights_digest)
from neulens_ros.models.names import CHECKPOINTS, naming_preset
from neulens_ros.supernet.detector import P_LAYERS, P_OPTIONS, DetectorConfig, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, normalise
from neulens_ros.supernet.macs import MacTable
from neulens_ros.train.data import DataSource, DetectionSet, load_set
from neulens_ros.train.plan import (Plan, calibration_set, calibration_walk_set, gate_set,
                                    plan_for)
from neulens_ros.plots import pyplot, save

LABEL_P = SHIP_P  # labels at the split point the model ships with (the gate serves every P)
LABEL_K = TILE_GRIDS


def image_tensor(data: DetectionSet, i: int) -> torch.Tensor:
    """[1, 3, H, W] float 0..255 of image i."""
    return torch.from_numpy(np.ascontiguousarray(data.images[i])).permute(2, 0, 1)[None].float()


def compute_labels(model: TileDetector, data: DetectionSet, count: int, path: Path,
                   progress: bool, halo: str = SHIP_HALO) -> dict[str, np.ndarray]:
    """Label the tiles of the first `count` images for every k in LABEL_K, the tiles run
    with `halo` (cached in `path` with the halo)."""
    from neulens_ros.progress import progress_bar
    if path.is_file():
        return load_labels(path, halo)
    executor = MicroFlowExecutor(model, LABEL_P)
    stride = model.config.output_stride
    rows: dict[str, list[Any]] = {'image': [], 'k': [], 'tile': [], 'label': [], 'errors': []}
    for i in progress_bar(range(min(count, len(data))), desc='labelling', unit='image',
                          disable=not progress):
        x = normalise(image_tensor(data, i))
        for k in LABEL_K:
            result = label_frame(executor, x, k, halo, stride)
            for t in range(k * k):
                rows['image'].append(i)
                rows['k'].append(k)
                rows['tile'].append(t)
                rows['label'].append(result.labels[t])
                rows['errors'].append(result.errors[t])
    labels = {key: np.asarray(v) for key, v in rows.items()}
    np.savez(path, halo=np.asarray(halo), **labels)
    return labels


def load_labels(path: Path, halo: str = SHIP_HALO) -> dict[str, np.ndarray]:
    """The labelled tiles `compute_labels` saved: image, k, tile, label [N], errors [N, R];
    ConfigError when they were labelled with another halo than `halo` (files without one
    were labelled with the paper halo)."""
    with np.load(path) as z:
        labels = dict(z)
    labelled = str(labels.pop('halo', SHIP_HALO))
    if labelled != halo:
        raise ConfigError(f'{path} labels tiles run with the {labelled!r} halo, this run uses '
                          f'{halo!r}: delete it to label again')
    return labels


def split_labelled(labels: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images the gate fits, held-out images): a fifth of the labelled images, drawn with
    `seed`, are held out."""
    images = np.unique(labels['image'])
    held_out = np.random.default_rng(seed).choice(images, max(1, len(images) // 5),
                                                  replace=False)
    return np.setdiff1d(images, held_out), held_out


def gate_data(data: DetectionSet, labels: dict[str, np.ndarray], images: np.ndarray
              ) -> GateData:
    """Gate inputs, labels and errors of the labelled tiles of `images`."""
    inputs, keep = [], np.isin(labels['image'], images)
    cache: dict[tuple[int, int], torch.Tensor] = {}
    for i, k, t in zip(labels['image'][keep], labels['k'][keep], labels['tile'][keep],
                       strict=True):
        key = (int(i), int(k))
        if key not in cache:
            cache[key] = gate_inputs(np.ascontiguousarray(data.images[int(i)]), int(k))
        inputs.append(cache[key][int(t)])
    return GateData(torch.stack(inputs), torch.as_tensor(labels['label'][keep]),
                    torch.as_tensor(labels['errors'][keep], dtype=torch.float32))


def level_mac_ratio(model: TileDetector, halo: str = SHIP_HALO) -> np.ndarray:
    """Measured front MAC fraction of each level (k = 3 tiles at LABEL_P with `halo`),
    skip = 0."""
    table = MacTable(model)
    executor = MicroFlowExecutor(model, LABEL_P)
    cfg = model.config
    grid = executor.grid(cfg.input_width, cfg.input_height, 3, halo)
    full = table.frame_front(LABEL_P, grid, np.zeros(9, np.int64))
    return np.array([table.frame_front(LABEL_P, grid, np.full(9, lv)) / full
                     for lv in range(5)])


class RunSets:
    """A run's training and validation sets, each loaded (rendered or read, and cached) when a
    stage first needs it: a run on generated scenes that starts from checkpoints (--detector,
    --gate) and only calibrates and exports loads neither."""

    def __init__(self, load_train: Callable[[], DetectionSet],
                 load_val: Callable[[], DetectionSet]) -> None:
        self._load_train, self._load_val = load_train, load_val

    @cached_property
    def train(self) -> DetectionSet:
        return self._load_train()

    @cached_property
    def val(self) -> DetectionSet:
        return self._load_val()


def run_later_stages(stages: list[str], model: TileDetector, sets: RunSets, plan: Plan,
                     work: Path, args: argparse.Namespace, commands: tuple[str, str],
                     started: float, log: Callable[[dict], None], progress: bool,
                     source: DataSource | None = None) -> int:
    """Run labels, gate, eval and export as asked, each from its cached predecessor (the gate
    from args.gate, a gate checkpoint, when given); `source`: the data set on disk the run
    reads (None: generated scenes of args.preset)."""
    model.eval()
    gate = CompressionGuidingGate(context=plan.gate_context)
    gate_path = work / 'gate.pt'
    summary_path = work / 'gate_summary.json'
    paper = plan.gate_labels == 'paper'
    # the paper's labels are the supernet's: `labels` computes them whatever the plan's gate
    # learns (neulens-eval gate reads them), and a paper gate fits on them
    labels = compute_labels(model, sets.train, plan.label_scenes, work / 'labels.npz', progress,
                            plan.halo) \
        if 'labels' in stages or ('gate' in stages and paper) else None
    adopted = adopt_gate(args.gate, gate, work) if args.gate else None
    if 'gate' in stages:
        summary = fit_paper_gate(model, gate, sets.train, labels, plan, args.seed, progress) \
            if paper and labels is not None else \
            fit_kind_gate(model, gate, sets.train, plan, args.seed, progress,
                          None if source else gate_scenes(plan, sets.train, args, work,
                                                          progress))
        torch.save(gate.state_dict(), gate_path)
        summary_path.write_text(json.dumps(summary, indent=1))
        print(f'neulens-train: gate ({plan.gate_labels} labels) accuracy '
              f'{summary["held_out_accuracy"]:.3f} on {summary["tiles_held_out"]} held-out tiles '
              f'({time.monotonic() - started:.0f} s)')
    elif gate_path.is_file():
        gate.load_state_dict(torch.load(gate_path, weights_only=True))
    gate.eval()
    identity = calibration_identity(model, gate)  # the weights the stages below calibrate
    calibration_path = work / 'calibration.json'
    if adopted is not None and 'calibrate' not in stages:  # the later stages read one
        keep_calibration(calibration_path, adopted.get('calibration') or {}, identity,
                         plan.halo)
    if 'calibrate' in stages:
        size = (model.config.input_width, model.config.input_height)
        calibration = {**calibrate(model, gate, calibration_images(plan, size, sets, args,
                                                                   work, progress, source),
                                   plan.gate_labels, plan.halo, progress),
                       **identity}
        calibration_path.write_text(json.dumps(calibration, indent=1))
        rule = calibration['kind_rule']
        print(f'neulens-train: gate caution {calibration["caution"]}'
              + ('' if rule is None else f', kinds levelled {rule} (centre, touched, empty)')
              + f' ({time.monotonic() - started:.0f} s)')
    results_path = work / 'eval.json'
    if 'eval' in stages:
        calibration = json.loads(calibration_path.read_text()) \
            if calibration_path.is_file() else {}
        caution, rule = calibrated_point(calibration, plan.gate_labels, plan.halo, identity)
        results = evaluate(model, gate, sets.val, caution, progress=progress,
                           gate_labels=plan.gate_labels, rule=rule, halo=plan.halo,
                           budget=budget_points(calibration, plan.gate_labels))
        results_path.write_text(json.dumps(results, indent=1))
        plot_results(results, work / 'plots')
        print(f'neulens-train: evaluation written to {results_path} '
              f'({time.monotonic() - started:.0f} s)')
    if 'export' in stages:
        export(model, gate, work, args.export_dir or WEIGHTS_DIR, commands, args.preset,
               args.seed, plan.halo, identity, source, gate_alone(args, plan))
    return 0


def gate_alone(args: argparse.Namespace, plan: Plan) -> str | None:
    """The name a run exports its gate under without the detector, or None to export both:
    a gate started from a checkpoint (args.gate) keeps that checkpoint's name, and a gate on
    other labels than the preset's plan beside a shipped detector is <gate name>_<labels>; a
    run that trains its own detector exports everything under the usual names."""
    if args.gate:
        return Path(args.gate).stem
    if args.detector and plan.gate_labels != plan_for(args.preset, args.smoke).gate_labels:
        return f'{CHECKPOINTS[naming_preset(args.preset)][1]}_{plan.gate_labels}'
    return None


def adopt_gate(name: str, gate: CompressionGuidingGate, work: Path) -> dict[str, Any]:
    """Load gate checkpoint `name` into `gate` and leave it in `work` as the gate stage does
    (gate.pt, and its metrics as gate_summary.json), for the stages after it; returns the
    checkpoint's metadata."""
    _, meta = load_checkpoint(name, 'gate', gate)
    torch.save(gate.state_dict(), work / 'gate.pt')
    (work / 'gate_summary.json').write_text(json.dumps(
        {**meta.get('metrics', {}), 'labels': meta.get('labels', 'paper')}, indent=1))
    return meta


IDENTITY = ('gate_digest', 'detector_digest')  # what a calibration records it was made for


def calibration_identity(model: TileDetector, gate: CompressionGuidingGate) -> dict[str, str]:
    """The weights a calibration is made for (models/registry.py weights_digest of each)."""
    return dict(zip(IDENTITY, (weights_digest(gate), weights_digest(model)), strict=True))


def keep_calibration(path: Path, shipped: dict[str, Any], identity: dict[str, str],
                     halo: str) -> None:
    """Leave in `path` (a work folder's calibration.json) the calibration the stages after
    an adopted gate read: the one an earlier run's calibrate stage made there for the same
    gate and detector weights (`identity`) and `halo`, else the checkpoint's (`shipped`),
    without the weights it records, which are not this run's to vouch for."""
    try:
        earlier = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        earlier = {}  # unreadable: replaced
    if isinstance(earlier, dict) and all(earlier.get(k) == v for k, v in identity.items()) \
            and earlier.get('halo', SHIP_HALO) == halo:
        print(f'neulens-train: keeping the calibration in {path.parent} (made for these '
              'weights)')
        return
    path.write_text(json.dumps({k: v for k, v in shipped.items() if k not in IDENTITY},
                               indent=1))


def fit_paper_gate(model: TileDetector, gate: CompressionGuidingGate, data: DetectionSet,
                   labels: dict[str, np.ndarray], plan: Plan, seed: int, progress: bool
                   ) -> dict[str, Any]:
    """Train `gate` on the paper's labels of the first labelled images (a fifth of them held
    out); returns its summary."""
    print(f'neulens-train: {len(labels["label"])} labelled tiles, level histogram '
          f'{np.bincount(labels["label"], minlength=5).tolist()}')
    fit_images, held_out = split_labelled(labels, seed)
    fit = gate_data(data, labels, fit_images)
    test = gate_data(data, labels, held_out)
    ratio = level_mac_ratio(model, plan.halo)
    history = train_gate(gate, fit, ratio, GateTraining(epochs=plan.gate_epochs, seed=seed),
                         progress)
    return {'labels': 'paper', 'held_out_accuracy': gate_accuracy(gate, test),
            'train_accuracy': gate_accuracy(gate, fit), 'tiles_fit': len(fit.labels),
            'tiles_held_out': len(test.labels), 'mac_ratio': ratio.tolist(), 'history': history}


def fit_kind_gate(model: TileDetector, gate: CompressionGuidingGate, data: DetectionSet,
                  plan: Plan, seed: int, progress: bool, extra: DetectionSet | None = None
                  ) -> dict[str, Any]:
    """Train `gate` on the tile kinds (gate/kind_labels.py) of every training image after the
    first `label_scenes` (held out for its accuracy) and the `calibration_scenes` after them
    (kept out of the fit: the calibration's images before it had scenes of its own,
    calibration_set), and of every `extra` image (the plan's gate scenes), each also mirrored;
    returns its summary."""
    cfg = model.config
    executor = MicroFlowExecutor(model, LABEL_P)
    grids = {k: executor.grid(cfg.input_width, cfg.input_height, k, plan.halo)
             for k in LABEL_K}
    first_fit = plan.label_scenes + plan.calibration_scenes
    images, boxes = data.images[first_fit:], list(data.boxes[first_fit:])
    if extra is not None:
        images, boxes = np.concatenate([images, extra.images]), boxes + list(extra.boxes)
    fit = kind_gate_data(images, boxes, grids, mirrored=True)
    test = kind_gate_data(data.images[:plan.label_scenes], data.boxes[:plan.label_scenes],
                          grids)
    history = train_frame_gate(gate, fit, GateTraining(epochs=plan.gate_epochs, seed=seed),
                               progress)
    histogram = sum(np.bincount(f.labels.numpy().ravel(), minlength=5) for f in fit.values())
    return {'labels': 'kinds', 'held_out_accuracy': frame_gate_accuracy(gate, test),
            'train_accuracy': frame_gate_accuracy(gate, fit),
            'tiles_fit': frame_tiles(fit),
            'tiles_held_out': frame_tiles(test),
            'label_histogram': histogram.tolist(), 'history': history}


def gate_scenes(plan: Plan, train: DetectionSet, args: argparse.Namespace, work: Path,
                progress: bool) -> DetectionSet | None:
    """The plan's extra scenes for a gate on tile kinds (train/plan.py gate_set; None: none),
    of the run's preset and seed at the training images' size (cached in the work folder)."""
    height, width = train.images.shape[1:3]
    spec = gate_set(plan, args.seed, (width, height), args.preset)
    return None if spec is None else load_set(spec, work / 'cache', progress)


def calibrated_point(calibration: dict[str, Any], gate_labels: str, halo: str = SHIP_HALO,
                     identity: dict[str, str] | None = None
                     ) -> tuple[float, OracleRule | None]:
    """(caution, kind rule or None) of a calibration (calibration.json; {}: none) for a gate
    on `gate_labels` and tiles run with `halo`; ConfigError when it calibrated a gate on
    other labels or tiles with another halo (calibrations that record none: the paper's), or
    other weights than `identity`'s (calibration_identity; one that records none is taken as
    it is)."""
    for key, digest in (identity or {}).items():
        if calibration.get(key, digest) != digest:
            raise ConfigError(f'the calibration in the work folder was made for other '
                              f'{key.removesuffix("_digest")} weights: run the calibrate stage '
                              'again')
    made_for = calibration.get('labels', gate_labels)
    if made_for != gate_labels:
        raise ConfigError(f'the calibration in the work folder is of a gate on {made_for!r} '
                          f'labels, this gate learnt {gate_labels!r}: run the calibrate stage '
                          'again')
    made_with = calibration.get('halo', SHIP_HALO) if calibration else halo
    if made_with != halo:
        raise ConfigError(f'the calibration in the work folder ran tiles with the '
                          f'{made_with!r} halo, this run uses {halo!r}: run the calibrate '
                          'stage again')
    return float(calibration.get('caution', 0.0)), kind_rule(calibration.get('kind_rule'),
                                                              gate_labels)


def calibration_images(plan: Plan, size: tuple[int, int], sets: RunSets,
                       args: argparse.Namespace, work: Path, progress: bool,
                       source: DataSource | None = None
                       ) -> tuple[dict[str, DetectionSet], dict[str, Any]]:
    """({part: images} a run calibrates its gate on, where they come from): generated runs
    render the plan's calibration scenes and, for a preset with walks, its calibration walks
    (train/plan.py calibration_set and calibration_walk_set: seen by neither the detector nor
    the gate, rendered as camera frames are; cached in the work folder); a data set on disk
    has no images to spare and calibrates on the training images after the labelled ones,
    which the gate does not fit on. `size`: the network's input (width, height)."""
    if source is None:
        parts, origin = {}, {}
        for name, spec in (('scenes', calibration_set(plan, args.seed, size, args.preset)),
                           ('walks', calibration_walk_set(plan, args.seed, size,
                                                          args.preset))):
            if spec is not None:
                parts[name] = load_set(spec, work / 'cache', progress)
                origin[name] = {'first_seed': spec.first_seed, 'count': spec.count,
                                'render': list(spec.render_size),
                                **({'frames': spec.walk_frames} if spec.walk_frames else {})}
        return parts, origin
    first, end = plan.label_scenes, plan.label_scenes + plan.calibration_scenes
    train = sets.train
    subset = DetectionSet(train.images[first:end], train.boxes[first:end],
                          train.classes[first:end], train.dense[first:end])
    return {'training images': subset}, {'training images': {'first': first,
                                                             'count': len(subset)}}


def calibrate(model: TileDetector, gate: CompressionGuidingGate,
              images: tuple[dict[str, DetectionSet], dict[str, Any]], gate_labels: str = 'paper',
              halo: str = SHIP_HALO, progress: bool = False) -> dict[str, Any]:
    """Gate caution (and, for a gate on tile kinds, the rule that levels its kinds) on
    `images` (calibration_images: parts the gate was not fitted on, and where they come from),
    at the shipped split point and grid, the tiles run with `halo`."""
    parts, origin = images
    table = MacTable(model)

    def score(part: DetectionSet, levels: Any) -> dict[str, Any]:
        return run_variant(model, part, SHIP_P, SHIP_K, halo, levels, table)
    kinds = gate_labels == 'kinds'
    chosen = calibrate_caution(gate, parts, SHIP_K, score,
                               cautions=KIND_CAUTIONS if kinds else CAUTIONS,
                               rules=ORACLE_FAMILY if kinds else (), progress=progress)
    return {**chosen, 'labels': gate_labels, 'halo': halo, 'images': origin}


def architecture(config: DetectorConfig, preset: str, source: DataSource | None = None
                 ) -> dict:
    """The detector checkpoint's architecture metadata: its config, the scene preset it was
    trained on (DATASET_PRESET for a data set on disk), its classes (names by training index)
    and their ids (the data set's; the training indices for generated scenes), and its split
    points."""
    names = source.class_names if source else class_names(preset)
    ids = source.class_ids if source else tuple(range(len(names)))
    return {**asdict(config), 'preset': preset, 'classes': list(names),
            'class_ids': list(ids), 'p_options': list(P_OPTIONS), 'p_layers': P_LAYERS}


def export(model: TileDetector, gate: CompressionGuidingGate, work: Path, out: Path,
           commands: tuple[str, str], preset: str, seed: int, halo: str,
           identity: dict[str, str], source: DataSource | None = None,
           alone: str | None = None) -> None:
    """Write the checkpoints and metadata under the preset's names (models/names.py; a data
    set on disk, `source`, exports under the easy preset's, whose plan it trains); `commands`
    are (the gate's training command, the detector's: this command, unless the run started
    from a checkpoint, whose own command comes first); `identity`: the weights the work
    folder's calibration must be made for (calibration_identity). With `alone` (gate_alone)
    the gate is exported by itself under that name and the detector is left as it is; when
    that is the preset's gate and this work folder evaluated it, its accuracy table too."""
    detector_name, gate_name, accuracy_file = CHECKPOINTS[naming_preset(preset)]
    results = json.loads((work / 'eval.json').read_text()) if (work / 'eval.json').is_file() \
        else {}
    gate_summary = json.loads((work / 'gate_summary.json').read_text()) \
        if (work / 'gate_summary.json').is_file() else {}
    calibration = json.loads((work / 'calibration.json').read_text()) \
        if (work / 'calibration.json').is_file() else {}
    labels = gate_summary.get('labels', 'paper')
    caution, rule = calibrated_point(calibration, labels, halo, identity)  # this gate's
    common = {'data_seed': seed, 'created': time.strftime('%Y-%m-%d %H:%M:%S'),
              **({'dataset': source.description} if source else {})}
    gate_file = alone or gate_name
    gate_meta = save_checkpoint(out / f'{gate_file}.pt', gate, 'gate',
                                {'num_levels': 5, 'channels': 64, 'input': 28,
                                 'context': gate.context},
                                preset=preset, label_p=LABEL_P, label_k=list(LABEL_K),
                                labels=labels, caution=caution, kind_rule=rule_field(rule),
                                calibration=calibration,
                                metrics={k: v for k, v in gate_summary.items()
                                         if k != 'history'},
                                training_command=commands[0], **common)
    if alone:
        # the accuracy table's gate loss and slope are the shipped gate's: a run that
        # evaluated that gate again refreshes them beside the detector it leaves as it is
        refreshed = alone == gate_name and bool(results)
        if refreshed:
            AccuracyTable.from_evaluation(results).save(out / accuracy_file)
        print(f'neulens-train: exported {gate_file} ({gate_meta["bytes"] / 1e3:.0f} kB, '
              f'{labels} labels)' + (f' and {accuracy_file}' if refreshed else '')
              + f' to {out}')
        return
    det = save_checkpoint(out / f'{detector_name}.pt', model, 'detector',
                          architecture(model.config, preset, source),
                          halo=halo, metrics=results.get('headline', {}),
                          training_command=commands[1], **common)
    if results:
        AccuracyTable.from_evaluation(results).save(out / accuracy_file)
    plot_training(work, work / 'plots')
    print(f'neulens-train: exported {detector_name} ({det["bytes"] / 1e6:.1f} MB), '
          f'{gate_file} ({gate_meta["bytes"] / 1e3:.0f} kB) and {accuracy_file} to {out}')


def plot_training(work: Path, out: Path) -> None:
    """Loss curves of the supernet (full / tiled / mixed) and the gate's training accuracy,
    one panel for each that this work folder recorded (a run started from a detector
    checkpoint has no supernet curves, one started from a gate checkpoint no gate curve)."""
    history_path = work / 'supernet_history.json'
    gate_path = work / 'gate_summary.json'
    gate_history = json.loads(gate_path.read_text()).get('history') \
        if gate_path.is_file() else None
    panels = [path for path, recorded in ((history_path, history_path.is_file()),
                                          (gate_path, gate_history is not None)) if recorded]
    if not panels:
        return
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    fig, grid = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    axes = dict(zip(panels, grid[0], strict=True))
    if history_path in axes:
        ax = axes[history_path]
        history = json.loads(history_path.read_text())
        for key in ('full', 'tiled', 'mixed'):  # tiled, mixed: None in untiled warm-up
            steps = [r['step'] for r in history if r[key] is not None]
            losses = [r[key] for r in history if r[key] is not None]
            values = np.convolve(losses, np.ones(20) / 20, mode='valid') \
                if len(losses) >= 20 else losses
            ax.plot(steps[len(steps) - len(values):], values, label=key)
        ax.set_yscale('log')
        ax.set_xlabel('step')
        ax.set_ylabel('loss (20-step mean)')
        ax.legend()
        ax.set_title('supernet')
    if gate_path in axes:
        ax = axes[gate_path]
        ax.plot([r['epoch'] for r in gate_history], [r['accuracy'] for r in gate_history])
        ax.set_xlabel('epoch')
        ax.set_ylabel('training accuracy')
        ax.set_title('gate')
    for ax in axes.values():
        ax.grid(alpha=0.3)
    save(fig, out / 'training.png', dpi=110)
