"""Shared pieces of the thin nodes: QoS from parameters, QoS-mismatch warnings, stage timing,
and the `main()` runner with a clean shutdown."""

from __future__ import annotations

import sys
from typing import Callable

import rclpy
from builtin_interfaces.msg import Time
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.signals import SignalHandlerOptions

from neulens_ros.errors import NeulensError
from neulens_ros.nodes.params import ParamSpec
from neulens_ros.nodes.stop import StopRequest

QOS_PROFILES = ('sensor_data', 'reliable', 'best_effort', 'reliable_transient_local')
SPIN_PERIOD_S = 0.1  # the longest a stop request waits for the executor to notice it
READY = 'ready; SIGINT or SIGTERM stops the node'  # logged once the node is built
STOPPED_STARTING = 'not started'  # printed when a stop signal came before the node was built


def qos_specs(prefix: str = '', default: str = 'sensor_data', depth: int = 5) -> list[ParamSpec]:
    """The QoS parameters of one group of topics (restart needed: QoS is fixed per endpoint)."""
    return [
        ParamSpec(f'{prefix}qos_profile', default,
                  'QoS of the topics: sensor_data = best effort + volatile (cameras); reliable '
                  'waits for acknowledgements; reliable_transient_local also serves late joiners',
                  read_only=True, choices=QOS_PROFILES),
        ParamSpec(f'{prefix}qos_depth', depth, 'History depth (messages kept per topic)',
                  read_only=True, minimum=1, maximum=1000),
    ]


def make_qos(profile: str, depth: int) -> QoSProfile:
    """A QoSProfile from the profile name and history depth parameters."""
    if profile == 'sensor_data':
        qos = QoSProfile(depth=depth)
        qos.reliability = qos_profile_sensor_data.reliability
        qos.durability = qos_profile_sensor_data.durability
        qos.history = QoSHistoryPolicy.KEEP_LAST
        return qos
    reliability = (QoSReliabilityPolicy.BEST_EFFORT if profile == 'best_effort'
                   else QoSReliabilityPolicy.RELIABLE)
    durability = (QoSDurabilityPolicy.TRANSIENT_LOCAL if profile == 'reliable_transient_local'
                  else QoSDurabilityPolicy.VOLATILE)
    return QoSProfile(depth=depth, history=QoSHistoryPolicy.KEEP_LAST, reliability=reliability,
                      durability=durability)


def _qos_hint(policy: object) -> str:
    name = getattr(policy, 'name', str(policy))
    if 'RELIABILITY' in name:
        return ('a RELIABLE subscriber cannot receive from a BEST_EFFORT publisher: set the '
                "subscriber's qos_profile to sensor_data or best_effort, or the publisher's to "
                'reliable')
    if 'DURABILITY' in name:
        return ('a TRANSIENT_LOCAL subscriber needs a TRANSIENT_LOCAL publisher: use '
                'qos_profile reliable on the subscriber')
    return 'make the QoS profiles of both ends compatible (see the qos_profile parameters)'


def _log_incompatible(node: Node, topic: str, problem: str) -> Callable[[object], None]:
    """A QoS-event callback that logs `problem` on `topic` with what to change."""
    def on_incompatible(info: object) -> None:
        policy = getattr(info, 'last_policy_kind', 'unknown')
        node.get_logger().error(
            f'QoS mismatch on {topic}: {problem} (policy {getattr(policy, "name", policy)}). '
            + _qos_hint(policy))
    return on_incompatible


def subscription_events(node: Node, topic: str) -> SubscriptionEventCallbacks:
    """Event callbacks that log an incompatible publisher instead of freezing silently."""
    return SubscriptionEventCallbacks(incompatible_qos=_log_incompatible(
        node, topic, 'a publisher offers QoS this subscription cannot accept; no data will '
        'flow'))


def publisher_events(node: Node, topic: str) -> PublisherEventCallbacks:
    """Event callbacks that log an incompatible subscriber instead of freezing silently."""
    return PublisherEventCallbacks(incompatible_qos=_log_incompatible(
        node, topic, 'a subscriber requests QoS this publisher does not offer; it receives '
        'nothing'))


def ns_to_time(ns: int) -> Time:
    """builtin_interfaces/Time from integer nanoseconds."""
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def time_to_ns(stamp: Time) -> int:
    """Integer nanoseconds from builtin_interfaces/Time (or any object with sec/nanosec)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def spin_until_stopped(node: Node, stop: StopRequest) -> None:
    """Execute the node's callbacks until a stop signal or the context's shutdown."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while stop.signal is None and executor.context.ok():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    finally:
        executor.shutdown()
    if stop.signal is not None:
        node.get_logger().info(f'{stop.name}: shutting down')


def run(node_factory: Callable[[], Node], args: list[str] | None = None,
        stop: StopRequest | None = None) -> int:
    """Init rclpy, build the node, spin until SIGINT, SIGTERM or shutdown, and clean up: the
    node (its timers, subscriptions, lifecycle shutdown) before the context, so no callback
    runs against a shut-down context; exit code 0.

    `stop` is the StopRequest the entry point installed before the node's imports (a new one
    when None); a stop signal that came before rclpy started ends the process at once, with
    exit code 0 and no node built. A NeulensError while building the node (bad parameter,
    missing file) is reported as one clear line and exit code 1 instead of a traceback.
    """
    stop = stop if stop is not None else StopRequest()
    if stop.signal is not None:
        print(f'[neulens_ros] {stop.name} while starting: {STOPPED_STARTING}', file=sys.stderr)
        return 0
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    node: Node | None = None
    code = 0
    try:
        node = node_factory()
        node.get_logger().info(READY)
        spin_until_stopped(node, stop)
    except ExternalShutdownException:
        pass
    except NeulensError as exc:
        print(f'[neulens_ros] fatal: {exc}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
