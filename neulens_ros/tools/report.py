"""neulens-report: latency report of a rosbag2 recorded from the pipeline.

    neulens-report BAG [--out DIR]

Reads MCAP or sqlite3 bags (from the recorder node or `ros2 bag record`), joins StageTiming,
TileBatch and detections by frame stamp, and writes report.md, report.json and PNG plots
(default: BAG/../report). A bag with only some of the topics gives a partial report that
names what is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neulens_ros.errors import NeulensError
from neulens_ros.report.frames import load_frames
from neulens_ros.report.render import write_report
from neulens_ros.report.summary import summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-report', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', type=Path, help='rosbag2 folder')
    parser.add_argument('--out', type=Path, default=None, help='output folder')
    args = parser.parse_args(argv)
    try:
        bag = load_frames(args.bag)
    except NeulensError as exc:
        print(f'neulens-report: {exc}')
        return 2
    out = args.out or args.bag.resolve().parent / 'report'
    summary = summarize(bag)
    paths = write_report(summary, bag.frames, args.bag, out)
    e2e = summary['end_to_end_ms']
    print(f"neulens-report: {summary['frames']} frames, stages {summary['stages']}")
    if e2e.get('count'):
        print(f"  end to end p50 {e2e['p50']:.1f} ms, p90 {e2e['p90']:.1f} ms")
    if summary['missing_types']:
        print('  not in the bag: ' + ', '.join(summary['missing_types']))
    print(f"report: {paths['markdown']}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
