"""Calling a running node's standard services from a short-lived client (the CLI tools).

A request sent right after the service is discovered can lose its response: the server may
answer before DDS has matched its reply writer to the new client's reader, and the middleware
then drops the reply ("failed to send response (timeout)" in the server's log). So an
idempotent call (`resend=True`: the parameter services, where a set of the same values twice
leaves the same values, and the lifecycle node's queries) that has no answer after
`resend_after_s` sends the request again, until `timeout_s`; a lifecycle transition is sent
once, since a repeated one would be refused from the state the first reached.
"""

from __future__ import annotations

import time
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


# a request without an answer this long is sent again: well inside the tools' timeouts (5 s
# and more), so a lost reply costs a second and a half, not the call
RESEND_AFTER_S = 1.5


class NodeServices:
    """Calls services of one target node (`/ns/name`), with a timeout and clear errors."""

    def __init__(self, node: Node, target: str, timeout_s: float,
                 resend_after_s: float = RESEND_AFTER_S) -> None:
        if not (timeout_s > 0 and resend_after_s > 0):
            raise ConfigError(f'service calls need timeout_s > 0 and resend_after_s > 0, got '
                              f'{timeout_s}, {resend_after_s}')
        self.node = node
        self.target = target if target.startswith('/') else '/' + target
        self.timeout_s = timeout_s
        self.resend_after_s = resend_after_s

    def call(self, srv_type: Any, suffix: str, request: Any, resend: bool = True) -> Any:
        """The service's response; an unanswered request is sent again after
        `resend_after_s` if `resend` (only for idempotent services)."""
        client = self.node.create_client(srv_type, f'{self.target}/{suffix}')
        try:
            if not client.wait_for_service(timeout_sec=self.timeout_s):
                raise ConfigError(f'node {self.target} not found (no {suffix} service within '
                                  f'{self.timeout_s:.0f} s): is it running, in this '
                                  'ROS_DOMAIN_ID and namespace?')
            deadline = time.monotonic() + self.timeout_s
            while (left := deadline - time.monotonic()) > 0:
                future = client.call_async(request)
                wait = min(self.resend_after_s, left) if resend else left
                rclpy.spin_until_future_complete(self.node, future, timeout_sec=wait)
                if future.done() and future.result() is not None:
                    return future.result()
                client.remove_pending_request(future)
            raise ConfigError(f'{self.target}/{suffix} did not answer within '
                              f'{self.timeout_s:.0f} s')
        finally:
            self.node.destroy_client(client)
