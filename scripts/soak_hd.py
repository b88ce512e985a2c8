#!/usr/bin/env python3
"""Soak: an HD RGB-D camera of its own (scripts/hd_camera.py) feeding the pipeline started with
`neulens-pipeline --no-sample-data`, for a given time; prints one JSON report.

    .venv/bin/python scripts/soak_hd.py --duration 60
    .venv/bin/python scripts/soak_hd.py --duration 180 --source walk --out soak.json
    .venv/bin/python scripts/soak_hd.py --pipeline-arg=--set --pipeline-arg=gate.latency_slo_ms=80

Steps: start the pipeline (gate, supernet, lifting) in the namespace --namespace, wait until the
supernet is active and the gate and lifting report on /diagnostics, stream the camera for
--duration seconds, let the last frames drain, stop everything (SIGINT, by PID).

Report (JSON): frames published by the camera, frames the gate took, 2D results answered by
the supernet, 3D results out of lifting, share of 3D among the 2D answered, 3D latency p50/p99
(camera stamp to arrival here, ms) over the run and in its first and last --window seconds
(the trend), frames lost between stages (camera -> gate: frames the gate never took, as its
input keeps only the newest; gate -> 2D; 2D -> 3D) with the drop counters of each node's last
/diagnostics status, and each node's resident memory (see `memory`): when the pipeline was
ready, at the start of streaming, once warmed up (after the first --window seconds, as bounded
queues and caches fill at first), at the end, the peak, the growth from start and from warmed
up (the leak measure) and the slope in MiB per 1000 frames after warm-up, its anonymous and
shared-memory parts, with the raw samples (one per second: seconds, resident, anonymous,
shared MiB), and each node's CPU use while the camera streamed (`cpu`: cores, i.e. CPU
seconds per second, and CPU ms per camera frame, from /proc/PID/stat). The run is
bounded: pipeline start-up by --startup-timeout, streaming by --duration, draining by 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DRAIN_S = 5.0  # after the camera's last frame, results still arriving are counted
NODES = ('gate', 'supernet', 'lifting')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=60.0, help='seconds of streaming')
    parser.add_argument('--rate', type=float, default=30.0, help='camera frames per second')
    parser.add_argument('--source', choices=('generated', 'walk'), default='generated')
    parser.add_argument('--preset', default='', help='scene preset of the camera frames')
    parser.add_argument('--preload', type=int, default=30,
                        help='distinct camera frames, cycled (see hd_camera.py)')
    parser.add_argument('--window', type=float, default=30.0,
                        help='seconds of the first and last windows of the latency trend')
    parser.add_argument('--namespace', default='soak')
    parser.add_argument('--startup-timeout', type=float, default=180.0,
                        help='longest wait for the pipeline to become ready')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help="folder for the nodes' logs (default: a temporary folder)")
    parser.add_argument('--pipeline-arg', action='append', default=[],
                        help='extra argument of neulens-pipeline (repeatable)')
    parser.add_argument('--out', type=Path, default=None, help='also write the JSON here')
    return parser


class PipelineProcess:
    """`neulens-pipeline` as a child process; its 'started NODE (pid N)' lines give the PIDs."""

    def __init__(self, args: argparse.Namespace, log_dir: Path, env: dict[str, str]) -> None:
        cmd = [sys.executable, '-m', 'neulens_ros.tools.pipeline', '--no-sample-data',
               '--namespace', args.namespace, '--log-dir', str(log_dir),
               '--duration', str(args.startup_timeout + args.duration + 120.0),
               *args.pipeline_arg]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip('\n'))

    def pids(self) -> dict[str, int]:
        return {m[1]: int(m[2]) for line in list(self.lines)
                if (m := re.fullmatch(r'started (\w+) \(pid (\d+)\)', line))}

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=60.0)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()


MEMORY_FIELDS = ('VmRSS', 'RssAnon', 'RssShmem')  # resident: all, anonymous, shared memory


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None once it has ended)."""
    try:
        text = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    fields = text[text.rindex(')') + 2:].split()  # after the command name, from field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def cpu_use(samples: dict[str, list[tuple[float, float]]], start: float | None, end: float,
            rate_hz: float) -> dict[str, dict[str, float | None]]:
    """Per node, from samples [(seconds, CPU seconds)] between `start` and `end`: the cores
    used (CPU seconds per second) and the CPU ms per camera frame at `rate_hz`."""
    report: dict[str, dict[str, float | None]] = {}
    for node, points in samples.items():
        inside = [p for p in points if start is not None and start <= p[0] <= end]
        cores = ((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
                 if len(inside) >= 2 and inside[-1][0] > inside[0][0] else None)
        report[node] = {'cores': None if cores is None else round(cores, 3),
                        'ms_per_camera_frame': (round(1e3 * cores / rate_hz, 2)
                                                if cores is not None and rate_hz > 0 else None)}
    return report


def rss_mb(pid: int) -> tuple[float, ...] | None:
    """(resident, of it anonymous, of it shared memory) MiB of a process (None once it has
    ended): anonymous memory is the process's own heap; shared memory includes the Fast DDS
    segments it maps and reads."""
    try:
        text = Path(f'/proc/{pid}/status').read_text()
    except OSError:
        return None
    values = [re.search(rf'{name}:\s+(\d+) kB', text) for name in MEMORY_FIELDS]
    return None if None in values else tuple(int(m[1]) / 1024.0 for m in values)


class Listener:
    """Results and /diagnostics of the pipeline, with arrival times."""

    def __init__(self, namespace: str) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Detection2DArray, Detection3DArray
        rclpy.init()
        self.rclpy = rclpy
        self.node = rclpy.create_node('soak_listener')
        self.arrivals: dict[str, dict[int, int]] = defaultdict(dict)  # topic: stamp -> ns
        self.status: dict[str, dict[str, str]] = {}  # node name -> last values
        self.messages: dict[str, str] = {}
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        for name, kind in (('detections_2d', Detection2DArray),
                           ('detections_3d', Detection3DArray)):
            self.node.create_subscription(kind, f'/{namespace}/neulens/{name}',
                                          self._keeper(name), reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_status, 50)

    def _keeper(self, name: str):  # noqa: ANN202
        def keep(msg: Any) -> None:
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.arrivals[name].setdefault(stamp, time.time_ns())
        return keep

    def _on_status(self, msg: Any) -> None:
        for status in msg.status:
            name = status.name.rsplit('/', 1)[-1]
            self.status[name] = {kv.key: kv.value for kv in status.values}
            self.messages[name] = status.message

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.05)

    def ready(self) -> bool:
        return (self.status.get('supernet', {}).get('state') == 'active'
                and {'gate', 'lifting'} <= set(self.status))

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def latency_report(arrivals: dict[int, int], window_s: float) -> dict[str, Any]:
    """p50/p99 of stamp-to-arrival latency (ms), overall and in the first/last window."""
    stamps = sorted(arrivals)
    if not stamps:
        return {'p50_ms': None, 'p99_ms': None, 'first_window_p50_ms': None,
                'last_window_p50_ms': None}
    latency = {s: (arrivals[s] - s) / 1e6 for s in stamps}
    first = [latency[s] for s in stamps if s < stamps[0] + window_s * 1e9]
    last = [latency[s] for s in stamps if s > stamps[-1] - window_s * 1e9]
    return {'p50_ms': percentile_ms(list(latency.values()), 50),
            'p99_ms': percentile_ms(list(latency.values()), 99),
            'first_window_p50_ms': percentile_ms(first, 50),
            'last_window_p50_ms': percentile_ms(last, 50),
            'first_window_frames': len(first), 'last_window_frames': len(last)}


def drops(status: dict[str, dict[str, str]], published: int, answered_2d: int,
          out_3d: int) -> dict[str, Any]:
    """Frames lost between stages (camera -> gate -> supernet -> lifting), and per node the
    counters of its last /diagnostics status that count what it did not carry on."""
    gate_frames = int(status.get('gate', {}).get('frames', 0))
    counters = {node: {k: int(v) for k, v in values.items()
                       if k.startswith(('dropped', 'count_', 'unmatched', 'total_'))}
                for node, values in sorted(status.items())}
    return {'camera_to_gate': published - gate_frames, 'gate_to_2d': gate_frames - answered_2d,
            '2d_to_3d': answered_2d - out_3d, 'node_counters': counters}


def memory(samples: dict[str, list[tuple[float, ...]]], stream_start: float | None,
           end: dict[str, tuple[float, ...] | None], window_s: float, frames_per_s: float
           ) -> dict[str, dict[str, Any]]:
    """Per node, resident MiB from `samples` ([(seconds since the pipeline was ready, resident,
    anonymous, shared MiB)]): when ready, at the start of streaming (`stream_start`, the first
    2D result), once warmed up (the first `window_s` seconds of streaming fill the bounded
    queues and caches), at the end (after draining) and the peak; `leak`: the growth from
    warmed up to the end; `slope`: the least-squares slope over the warmed-up part of the
    stream, in MiB per 1000 camera frames (seconds x the camera's frame rate); `anon` and
    `shmem`: the anonymous and shared parts at start, warmed up and end."""
    def mib(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    def at(points: list[tuple[float, ...]], t: float | None) -> tuple[float, ...] | None:
        return next((p[1:] for p in points if t is not None and p[0] >= t), None)
    warm_at = stream_start + window_s if stream_start is not None else None
    report = {}
    for node, points in samples.items():
        start, warm, last = at(points, stream_start), at(points, warm_at), end.get(node)
        tail = [p for p in points if warm_at is not None and p[0] >= warm_at]
        slope = (float(np.polyfit([p[0] * frames_per_s / 1e3 for p in tail],
                                  [p[1] for p in tail], 1)[0])
                 if len(tail) >= 3 and frames_per_s > 0 else None)
        report[node] = {
            'ready': mib(points[0][1] if points else None),
            **{name: mib(v[0] if v else None)
               for name, v in (('start', start), ('warm', warm), ('end', last))},
            'peak': mib(max((p[1] for p in points), default=None)),
            'growth': mib(last[0] - start[0] if last and start else None),
            'leak': mib(last[0] - warm[0] if last and warm else None),
            'leak_share': round((last[0] - warm[0]) / warm[0], 4) if last and warm else None,
            'slope_mib_per_1000_frames': round(slope, 2) if slope is not None else None,
            **{part: {name: mib(v[i] if v else None)
                      for name, v in (('start', start), ('warm', warm), ('end', last))}
               for i, part in ((1, 'anon'), (2, 'shmem'))}}
    return report


def sample_rss(pids: dict[str, int], t: float,
               samples: dict[str, list[tuple[float, ...]]],
               cpu: dict[str, list[tuple[float, float]]]) -> None:
    """Append (t, resident, anonymous, shared MiB) of each node still running to `samples`,
    and (t, CPU seconds) to `cpu`."""
    for name, pid in pids.items():
        now, used = rss_mb(pid), cpu_seconds(pid)
        if now is not None:
            samples[name].append((round(t, 2), *(round(v, 1) for v in now)))
        if used is not None:
            cpu[name].append((round(t, 2), used))


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from neulens_ros.launching import dds_environment
    env = dds_environment()  # the pipeline's Fast DDS profile and discovery range
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), env.get('PYTHONPATH')) if p)
    os.environ.update(env)  # this process's listener uses them too
    listener = Listener(args.namespace)
    pipeline = PipelineProcess(args, log_dir, env)
    camera = None
    try:
        deadline = time.monotonic() + args.startup_timeout
        while not listener.ready():
            if time.monotonic() > deadline or pipeline.proc.poll() is not None:
                raise SystemExit(f'soak: the pipeline did not become ready in '
                                 f'{args.startup_timeout:.0f} s: {listener.messages}; '
                                 f'{pipeline.lines[-10:]}; logs in {log_dir}')
            listener.spin_for(0.5)
        pids = {n: p for n, p in pipeline.pids().items() if n in NODES}
        ready = time.monotonic()
        samples: dict[str, list[tuple[float, ...]]] = {n: [] for n in pids}
        cpu: dict[str, list[tuple[float, float]]] = {n: [] for n in pids}
        sample_rss(pids, 0.0, samples, cpu)
        camera_cmd = [sys.executable, str(ROOT / 'scripts' / 'hd_camera.py'),
                      '--duration', str(args.duration), '--rate', str(args.rate),
                      '--source', args.source, '--preset', args.preset,
                      '--preload', str(args.preload), '--namespace', args.namespace,
                      '--wait-for-subscribers', '1']
        camera = subprocess.Popen(camera_cmd, env=env, stdout=subprocess.PIPE, text=True)
        while camera.poll() is None:
            listener.spin_for(1.0)
            sample_rss(pids, time.monotonic() - ready, samples, cpu)
        stream_end = time.monotonic() - ready
        listener.spin_for(DRAIN_S)
        rss_end = {n: rss_mb(p) for n, p in pids.items()}
        first_2d = min(listener.arrivals['detections_2d'].values(), default=None)
        # the first 2D result, on the samples' clock (seconds since ready)
        stream_start = (None if first_2d is None else
                        (first_2d - time.time_ns()) / 1e9 + time.monotonic() - ready)
        camera_out = camera.stdout.read().strip().splitlines()
    finally:
        if camera is not None and camera.poll() is None:
            camera.send_signal(signal.SIGINT)
            camera.wait(timeout=30)
        pipeline.stop()
        listener.close()
    published = json.loads(camera_out[-1]) if camera_out else {}
    camera_hz = published.get('rate_hz') or args.rate  # as measured by the camera
    answered_2d = len(listener.arrivals['detections_2d'])
    out_3d = len(listener.arrivals['detections_3d'])
    return {
        'duration_s': args.duration, 'rate_hz': args.rate, 'source': args.source,
        'frames_published': published.get('published'),
        'camera': published,
        'gate_frames': int(listener.status.get('gate', {}).get('frames', 0)),
        'answered_2d': answered_2d,
        'out_3d': out_3d,
        'share_3d_of_2d': round(out_3d / answered_2d, 3) if answered_2d else None,
        'latency_3d': latency_report(listener.arrivals['detections_3d'], args.window),
        'latency_2d': latency_report(listener.arrivals['detections_2d'], args.window),
        'drops': drops(listener.status, published.get('published', 0), answered_2d, out_3d),
        'diagnostics': dict(sorted(listener.status.items())),
        'rss_mb': memory(samples, stream_start, rss_end, args.window, camera_hz),
        'rss_samples': {n: [list(p) for p in points] for n, points in samples.items()},
        'cpu': cpu_use(cpu, stream_start, stream_end, camera_hz),
        'restarts': [line for line in pipeline.lines if line.startswith('respawn:')],
        'log_dir': str(log_dir),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log_dir is None:
        args.log_dir = Path(tempfile.mkdtemp(prefix='neulens-soak-'))
    report = run(args, args.log_dir)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
