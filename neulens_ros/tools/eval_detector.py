"""neulens-eval detector: mAP of the shipped (or a given) detector and gate, side by side
(untiled, tiled per halo / P / k, uniform levels, CGG choice, image-level width), with MACs.

    neulens-eval detector --scenes 300 --out runs/eval_detector
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neulens_ros.eval.detector import evaluate, plot_results
from neulens_ros.models.zoo import DETECTOR, GATE, load_detector, load_gate
from neulens_ros.train.data import load_set
from neulens_ros.train.plan import held_out_set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-eval detector', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--detector', default=DETECTOR)
    parser.add_argument('--gate', default=GATE)
    parser.add_argument('--scenes', type=int, default=300)
    parser.add_argument('--out', type=Path, default=Path('runs/eval_detector'))
    args = parser.parse_args(argv)
    model, _ = load_detector(args.detector)
    gate, _ = load_gate(args.gate)
    size = (model.config.input_width, model.config.input_height)
    data = load_set(held_out_set(args.scenes, size), args.out / 'cache')
    results = evaluate(model, gate, data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'eval.json').write_text(json.dumps(results, indent=1))
    png = plot_results(results, args.out)
    print(json.dumps(results['headline'], indent=1))
    print(f'json: {args.out / "eval.json"}\nplot: {png}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
