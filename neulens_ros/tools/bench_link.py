"""neulens-bench link: the headset-to-edge experiment over the emulated Wi-Fi link (root).

    neulens-bench link --preset average --frames 40 --out runs/link
    neulens-bench link --detector neulens_detector_hard --gate neulens_cgg_hard   # on walks

The headset side (source, gate, lifting, recorder) runs in one network namespace, the edge
(supernet) in another; DDS crosses only the emulated link (UDP, flow-controlled). The same
frames run three times:
- neulens:     the CGG's choice per tile (policy cs), only the kept tiles sent;
- full_frame:  full-frame offloading of the same detector: every tile at full width
               (2 x 2 tiles covering the frame, one JPEG of the whole input);
- image_width: one width for the whole image (every tile at level 2, c = 0.5).
The graph runs the given detector and gate (the source renders the detector's preset, the
lifting names its classes). A preset with walks (hard) streams a walk through its rooms by
default, rendered for WALK_FPS and played at --rate, as a moving camera would see it;
`--source generated` streams independent scenes instead. Each run records a bag; the
comparison (end-to-end latency, transmission time, bytes per frame, frames dropped, mAP@0.5
by COCOeval over the detector's class ids (its metadata's) against the generator's ground
truth) goes to JSON, Markdown and a PNG. Namespaces and processes are cleaned up (by PID) even
when interrupted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from neulens_ros.bag.reader import read_messages
from neulens_ros.bridge.detections import detection2d_array_to_boxes
from neulens_ros.data.sequence import WALK_PRESETS, require_walks
from neulens_ros.data.walk import WalkConfig
from neulens_ros.errors import ConfigError
from neulens_ros.eval.coco_eval import coco_map
from neulens_ros.launching import ProcessGroup, dds_environment, node_command
from neulens_ros.link.netns import TwoHostLink, available
from neulens_ros.link.scheduler import PRESETS
from neulens_ros.models.labels import ClassLabels
from neulens_ros.models.zoo import DETECTOR, GATE, checkpoint_labels, detector_metadata
from neulens_ros.report.frames import load_frames
from neulens_ros.report.summary import summarize
from neulens_ros.topology import load_topology
from neulens_ros.train.plan import scene_preset
from neulens_ros.plots import pyplot, save

VARIANTS = {
    'neulens': {'policy': 'cs'},
    'full_frame': {'policy': 'fixed', 'fixed_level': 0, 'k_options': [2],
                   'p_options': ['layer2']},
    'image_width': {'policy': 'fixed', 'fixed_level': 2, 'k_options': [2],
                    'p_options': ['layer2']},
}
HEADSET = ('source', 'gate', 'lifting', 'recorder')
WALK_FPS = WalkConfig.fps  # a walk moves as it would at its own frame rate, played at --rate


def source_for(preset: str, source: str | None) -> dict[str, Any]:
    """The source's parameters for scenes of `preset`: `source` 'walk' or 'generated', None
    for a walk where the preset has them (WALK_PRESETS), else generated scenes."""
    source = source or ('walk' if preset in WALK_PRESETS else 'generated')
    if source == 'walk':
        require_walks(preset)
    walk = {'walk_fps': WALK_FPS} if source == 'walk' else {}
    return {'preset': preset, 'source': source, **walk}


def checkpoint_overrides(detector: str, gate: str, source: str | None = None
                         ) -> dict[str, dict[str, Any]]:
    """Node parameters that run `detector` and `gate`: the edge and the headset load them,
    the source streams the detector's preset (source_for) and the lifting names its classes
    (by the class ids the detections carry)."""
    meta = detector_metadata(detector)
    return {'source': source_for(scene_preset(meta), source),
            'gate': {'gate_checkpoint': gate, 'detector_checkpoint': detector},
            'supernet': {'checkpoint': detector},
            'lifting': {'class_names': checkpoint_labels(meta).names_by_id()}}


def run_variant(name: str, link: TwoHostLink, frames: int, rate: float, out: Path,
                checkpoints: dict[str, dict[str, Any]]) -> Path:
    """Run the graph once across `link` with the nodes' `checkpoints` parameters
    (checkpoint_overrides); returns the bag folder."""
    nodes = {n.name: n for n in load_topology()}
    own = {
        'source': {'num_frames': frames, 'preload_frames': frames, 'rate_hz': rate,
                   'start_delay_s': 8.0, 'seed': 500},
        'gate': {'tile_encoding': 'jpeg_mosaic', **VARIANTS[name]},
        'supernet': {'stale_after_ms': 2000.0},
        'recorder': {'output_dir': str(out), 'bag_name': name},
    }
    overrides = {node: {**checkpoints.get(node, {}), **own.get(node, {})}
                 for node in (*HEADSET, 'supernet')}
    base = dds_environment(None)
    logs = out / 'logs' / name
    with ProcessGroup(env={**base, **link.env_for('b')}, log_dir=logs) as edge, \
            ProcessGroup(env={**base, **link.env_for('a', headset=True)},
                         log_dir=logs) as headset:
        edge.start('supernet', link.exec_prefix('b') + node_command(
            nodes['supernet'], '', overrides['supernet']))
        for node in HEADSET:
            headset.start(node, link.exec_prefix('a') + node_command(nodes[node], '',
                                                                     overrides[node]))
        headset.wait('source', timeout=120 + 3 * frames / rate)
        time.sleep(6.0)  # the last frames cross the link and land in the bag
        headset.stop()
        edge.stop()
    return out / name


def detection_map(bag: Path, labels: ClassLabels) -> float:
    """mAP@0.5 (COCOeval) of the pipeline's 2D detections against the source's ground truth
    over the detector's class ids."""
    truth, found = {}, {}
    for m in read_messages(bag, ['/ground_truth/detections_2d', '/neulens/detections_2d']):
        stamp = m.msg.header.stamp.sec * 1_000_000_000 + m.msg.header.stamp.nanosec
        (truth if 'ground_truth' in m.topic else found)[stamp] = detection2d_array_to_boxes(
            m.msg)
    stamps = sorted(set(truth) & set(found))
    if not stamps:
        return float('nan')
    return coco_map([truth[s][0] for s in stamps], [truth[s][1] for s in stamps],
                    [found[s][0] for s in stamps], [found[s][2] for s in stamps],
                    [found[s][1] for s in stamps], labels.ids)['map50']


def compare(bags: dict[str, Path], labels: ClassLabels) -> dict[str, Any]:
    rows = {}
    for name, bag in bags.items():
        summary = summarize(load_frames(bag))
        rows[name] = {
            'frames': summary['frames'],
            'end_to_end_ms_p50': summary['end_to_end_ms'].get('p50'),
            'transmission_ms_p50': summary['transmission_ms'].get('p50'),
            'payload_kb_mean': (summary['bytes_per_frame']['payload'].get('mean') or 0) / 1e3,
            'frames_with_3d': summary['end_to_end_ms'].get('count', 0),
            'drops': summary['drops'],
            'map50': detection_map(bag, labels),
        }
    base = rows.get('full_frame')
    if base:
        for row in rows.values():
            row['bytes_vs_full_frame'] = row['payload_kb_mean'] / base['payload_kb_mean'] - 1
            row['latency_vs_full_frame'] = (row['end_to_end_ms_p50'] / base['end_to_end_ms_p50']
                                            - 1) if base['end_to_end_ms_p50'] else None
            row['map50_points_vs_full_frame'] = 100 * (row['map50'] - base['map50'])
    return rows


def plot(rows: dict[str, Any], out: Path) -> Path:
    plt = pyplot()
    names = list(rows)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, label in zip(axes, ('payload_kb_mean', 'end_to_end_ms_p50', 'map50'),
                              ('kB sent per frame', 'end-to-end latency p50 (ms)', 'mAP@0.5'),
                              strict=True):
        ax.bar(names, [rows[n][key] or 0 for n in names], color=['C0', 'C1', 'C2'][:len(names)])
        ax.set_title(label)
        ax.tick_params(axis='x', labelsize=8)
    return save(fig, out / 'link_comparison.png', dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-bench link', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(PRESETS), default='average')
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--rate', type=float, default=2.0, help='camera rate, Hz')
    parser.add_argument('--variants', default=','.join(VARIANTS))
    parser.add_argument('--out', type=Path, default=Path('runs/link'))
    parser.add_argument('--detector', default=DETECTOR, help='detector checkpoint')
    parser.add_argument('--gate', default=GATE, help='gate checkpoint')
    parser.add_argument('--source', choices=('walk', 'generated'), default=None,
                        help='walks or independent scenes (default: walks where the '
                        "detector's preset has them)")
    args = parser.parse_args(argv)
    try:
        checkpoints = checkpoint_overrides(args.detector, args.gate, args.source)
    except ConfigError as exc:
        parser.error(f'{exc}: use --source generated')
    ok, reason = available()
    if not ok:
        print(f'neulens-bench link: cannot run here: {reason}')
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    bags = {}
    for name in args.variants.split(','):
        print(f'neulens-bench link: {name} over the {args.preset} link ...', flush=True)
        with TwoHostLink(args.preset, stats_path=args.out / f'{name}_link.json') as link:
            bags[name] = run_variant(name, link, args.frames, args.rate, args.out,
                                     checkpoints)
    rows = compare(bags, checkpoint_labels(detector_metadata(args.detector)))
    result = {'preset': args.preset, 'link': PRESETS[args.preset].__dict__,
              'frames': args.frames, 'rate_hz': args.rate, 'detector': args.detector,
              'gate': args.gate, 'scene_preset': checkpoints['source']['preset'],
              'source': checkpoints['source']['source'],
              'variants': rows}
    (args.out / 'link.json').write_text(json.dumps(result, indent=1, default=float))
    png = plot(rows, args.out)
    for name, row in rows.items():
        print(f"  {name:12s} {row['payload_kb_mean']:7.1f} kB/frame  e2e p50 "
              f"{row['end_to_end_ms_p50'] or float('nan'):7.1f} ms  mAP@0.5 "
              f"{row['map50']:.3f}  3D frames {row['frames_with_3d']}/{row['frames']}")
    print(f'json: {args.out / "link.json"}\nplot: {png}')
    return 0 if all(np.isfinite(r['map50']) for r in rows.values()) else 1


if __name__ == '__main__':
    raise SystemExit(main())
