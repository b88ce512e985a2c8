"""neulens-eval lifting: 3D centre error, 3D IoU and timing of the lifting on generated
scenes, from ground-truth 2D boxes (objects at least half visible) or from the shipped (or a
given) detector's boxes (`--boxes detector`: only boxes matching an object in 2D count, the
rest are `unmatched`), and the box lifted from the real Middlebury `stereo_motorcycle` sample
(`summary.motorcycle`). The scenes are of the preset the detector was trained on, rendered at
`--size`. `--compare` lifts every frame three ways one after the other and prints them side by
side (`summary.compare`): every pixel of each box (the path before boxes were sampled), the
default path (the pixel columns of near objects' boxes sampled: samples_per_voxel), and the
default path on depth from a separate RealSense-like 848 x 480 depth camera (5 cm to the right,
1 cm up, pitched 2 degrees less) registered to the colour camera with its extrinsics: time per
frame (wall and CPU), centre error and 3D IoU of each. The separate depth camera is rendered
for easy-preset scenes only: `--compare` needs a detector of the easy preset.

    neulens-eval lifting --scenes 40 --out runs/eval_lifting
    neulens-eval lifting --scenes 40 --boxes detector --out runs/eval_lifting_detector
    neulens-eval lifting --scenes 40 --size 1280x720 --compare --detector neulens_detector \
        --out runs/eval_lifting_hd
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neulens_ros.data.scenes import SceneConfig
from neulens_ros.eval.lifting import (COMPARED, FOREIGN_PRESETS, comparison, detector_boxes,
                                      evaluate_variants, ground_truth_boxes, lift_motorcycle,
                                      lift_registered)
from neulens_ros.models.names import CHECKPOINTS
from neulens_ros.models.zoo import DETECTOR, detector_metadata
from neulens_ros.plots import pyplot, save
from neulens_ros.tools.gen_dataset import parse_size
from neulens_ros.train.plan import scene_preset


def plot(result: dict, out: Path) -> Path:
    plt = pyplot()
    rows = result['objects']
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    dist = [r['distance_m'] for r in rows]
    axes[0].scatter(dist, [100 * r['centre_error_m'] for r in rows], s=10)
    axes[0].set_xlabel('distance (m)')
    axes[0].set_ylabel('centre error (cm)')
    axes[0].grid(alpha=0.3)
    axes[1].hist([r['iou_3d'] for r in rows], bins=np.linspace(0, 1, 21))
    axes[1].axvline(0.5, color='k', ls='--', lw=1)
    axes[1].set_xlabel('3D IoU')
    axes[1].set_ylabel('objects')
    return save(fig, out / 'lifting.png', dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-eval lifting', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenes', type=int, default=40)
    parser.add_argument('--seed', type=int, default=5000)
    parser.add_argument('--out', type=Path, default=Path('runs/eval_lifting'))
    parser.add_argument('--boxes', choices=('truth', 'detector'), default='truth',
                        help="2D boxes to lift: the generator's or the shipped detector's")
    parser.add_argument('--score-threshold', type=float, default=0.3,
                        help='detector score threshold (--boxes detector)')
    parser.add_argument('--detector', default=DETECTOR,
                        help='detector checkpoint: its preset gives the scenes (and, with '
                             '--boxes detector, the boxes)')
    parser.add_argument('--size', type=parse_size, default=(640, 480),
                        help='rendered colour and depth size, WIDTHxHEIGHT')
    parser.add_argument('--compare', action='store_true',
                        help='also lift every pixel of each box, and depth from a separate '
                             'depth camera registered with its extrinsics, side by side')
    args = parser.parse_args(argv)
    preset = scene_preset(detector_metadata(args.detector))
    if args.compare and preset not in FOREIGN_PRESETS:
        parser.error(f'--compare renders the separate depth camera for '
                     f'{"/".join(FOREIGN_PRESETS)}-preset scenes only, and {args.detector} '
                     f'gives {preset!r} scenes: add --detector '
                     f'{CHECKPOINTS[FOREIGN_PRESETS[0]][0]}')
    detect = (ground_truth_boxes if args.boxes == 'truth'
              else detector_boxes(args.score_threshold, args.detector))
    width, height = args.size
    results = evaluate_variants(range(args.seed, args.seed + args.scenes),
                                COMPARED if args.compare else {'sampled': lift_registered},
                                SceneConfig(preset=preset, width=width, height=height), detect)
    result = results['sampled']
    result['summary'].update(boxes=args.boxes, preset=preset, size=f'{width}x{height}')
    if args.compare:
        result['summary']['compare'] = comparison(results)
    result['summary']['motorcycle'] = lift_motorcycle()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'lifting.json').write_text(json.dumps(result, indent=1))
    png = plot(result, args.out)
    print(json.dumps(result['summary'], indent=1))
    print(f'json: {args.out / "lifting.json"}\nplot: {png}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
