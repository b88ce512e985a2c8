"""Calling a running node's standard services from a short-lived client (the CLI tools)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import rclpy
from rclpy.node import Node

from neulens_ros.errors import ConfigError


@contextmanager
def client_node(name: str) -> Iterator[Node]:
    """An rclpy context with one service-client node, shut down on exit."""
    rclpy.init(args=[])
    node = rclpy.create_node(name, start_parameter_services=False)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


class NodeServices:
    """Calls services of one target node (`/ns/name`), with a timeout and clear errors."""

    def __init__(self, node: Node, target: str, timeout_s: float) -> None:
        self.node = node
        self.target = target if target.startswith('/') else '/' + target
        self.timeout_s = timeout_s

    def call(self, srv_type: Any, suffix: str, request: Any) -> Any:
        client = self.node.create_client(srv_type, f'{self.target}/{suffix}')
        try:
            if not client.wait_for_service(timeout_sec=self.timeout_s):
                raise ConfigError(f'node {self.target} not found (no {suffix} service within '
                                  f'{self.timeout_s:.0f} s): is it running, in this '
                                  'ROS_DOMAIN_ID and namespace?')
            future = client.call_async(request)
            rclpy.spin_until_future_complete(self.node, future, timeout_sec=self.timeout_s)
            if not future.done() or future.result() is None:
                raise ConfigError(f'{self.target}/{suffix} did not answer within '
                                  f'{self.timeout_s:.0f} s')
            return future.result()
        finally:
            self.node.destroy_client(client)
