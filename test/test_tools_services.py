"""Service calls of the CLI tools (tools/services.py): a request whose answer is lost is sent
again, and the timeout still ends a call nobody answers."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from lifecycle_msgs.msg import Transition, TransitionDescription
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions
from rcl_interfaces.srv import ListParameters

from neulens_ros.errors import ConfigError
from neulens_ros.tools.lifecycle import LifecycleClient
from neulens_ros.tools.services import NodeServices, client_node

pytestmark = pytest.mark.ros


def list_answer(response, count: int):  # noqa: ANN001, ANN201
    response.result.names = [f'answer_{count}']
    return response


class FirstRequestHeld:
    """A service `name/suffix` whose first request is never answered while the test runs (as
    if its reply were lost), served on its own threads; `fill(response, count)` answers the
    count-th request. By default a list_parameters service."""

    def __init__(self, name: str, srv_type: Any = ListParameters,
                 suffix: str = 'list_parameters', fill: Callable = list_answer) -> None:
        self.node = rclpy.create_node(name, start_parameter_services=False)
        self.requests = 0
        self.fill = fill
        self.release = threading.Event()
        self.node.create_service(srv_type, f'{name}/{suffix}', self.answer,
                                 callback_group=ReentrantCallbackGroup())
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def answer(self, request, response):  # noqa: ANN001, ANN201
        self.requests += 1
        if self.requests == 1:
            self.release.wait(30.0)
        return self.fill(response, self.requests)

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


def test_a_lifecycle_transition_is_sent_once(client) -> None:  # noqa: ANN001
    """A repeated transition would be refused from the state the first one reached: the held
    change_state request is not sent again, though the client resends idempotent calls."""
    def activate_only(response, count: int):  # noqa: ANN001, ANN201, ARG001
        response.available_transitions = [TransitionDescription(
            transition=Transition(id=Transition.TRANSITION_ACTIVATE, label='activate'))]
        return response

    server = FirstRequestHeld('held_lifecycle', ChangeState, 'change_state')
    listing = server.node.create_service(GetAvailableTransitions,
                                         'held_lifecycle/get_available_transitions',
                                         lambda request, response: activate_only(response, 0))
    try:
        lifecycle = LifecycleClient(client, '/held_lifecycle', timeout_s=2.0,
                                    resend_after_s=0.3)
        with pytest.raises(ConfigError, match='change_state did not answer within 2 s'):
            lifecycle.change('activate')
        assert server.requests == 1
    finally:
        server.node.destroy_service(listing)
        server.close()
