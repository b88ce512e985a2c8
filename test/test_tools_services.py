"""Service calls of the CLI tools (tools/services.py): a request whose answer is lost is sent
again, and the timeout still ends a call nobody answers."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rcl_interfaces.srv import ListParameters

from neulens_ros.errors import ConfigError
from neulens_ros.tools.services import NodeServices, client_node

pytestmark = pytest.mark.ros


class FirstRequestHeld:
    """A list_parameters service whose first request is never answered while the test runs
    (as if its reply were lost), served on its own threads."""

    def __init__(self, name: str) -> None:
        self.node = rclpy.create_node(name, start_parameter_services=False)
        self.requests = 0
        self.release = threading.Event()
        self.node.create_service(ListParameters, f'{name}/list_parameters', self.answer,
                                 callback_group=ReentrantCallbackGroup())
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def answer(self, request, response):  # noqa: ANN001, ANN201
        self.requests += 1
        if self.requests == 1:
            self.release.wait(30.0)
        response.result.names = [f'answer_{self.requests}']
        return response

    def close(self) -> None:
        self.release.set()
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()


@pytest.fixture
def client() -> Iterator[rclpy.node.Node]:
    with client_node('services_test') as node:
        yield node


def test_a_lost_answer_is_asked_again(client) -> None:  # noqa: ANN001
    server = FirstRequestHeld('held_server')
    try:
        services = NodeServices(client, '/held_server', timeout_s=20.0, resend_after_s=0.5)
        started = time.monotonic()
        result = services.call(ListParameters, 'list_parameters', ListParameters.Request())
        assert result.result.names == ['answer_2']  # the second request's answer
        assert server.requests == 2 and time.monotonic() - started < 20.0
    finally:
        server.close()


@pytest.mark.parametrize('timeout_s, resend_after_s, resend', [(1.0, 5.0, True),
                                                                (2.0, 0.3, False)])
def test_a_call_nobody_answers_ends_at_the_timeout(client, timeout_s: float,  # noqa: ANN001
                                                   resend_after_s: float, resend: bool) -> None:
    """Sent once (the timeout comes before a resend, or the call may not be repeated), the
    held request is never answered."""
    server = FirstRequestHeld('silent_server')
    try:
        services = NodeServices(client, '/silent_server', timeout_s, resend_after_s)
        started = time.monotonic()
        with pytest.raises(ConfigError, match=f'did not answer within {timeout_s:.0f} s'):
            services.call(ListParameters, 'list_parameters', ListParameters.Request(),
                          resend=resend)
        assert server.requests == 1
        assert time.monotonic() - started < 10.0
    finally:
        server.close()


@pytest.mark.parametrize('timeout_s, resend_after_s', [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)])
def test_service_timing_is_validated(client, timeout_s: float,  # noqa: ANN001
                                     resend_after_s: float) -> None:
    with pytest.raises(ConfigError, match='timeout_s > 0'):
        NodeServices(client, '/x', timeout_s, resend_after_s)
