"""Declarative ROS parameters: one table of ParamSpec per node, validated live.

Every knob is declared with a ParameterDescriptor (description, range, read-only) from its spec,
and one on-set callback validates a whole batch of changes against the specs and the node's own
cross-field check before anything is applied, so `ros2 param set` (or `neulens-param set`) gets
a reason back when a value is rejected and nothing changes.

An integer for a float knob (`ros2 param set /gate latency_slo_ms 60`, `rate_hz: 10` in a
parameter file, `-p rate_hz:=10`) is taken as that number as a double: a pre-set callback
converts it before rclpy checks the declared type and the range, and start values are converted
before they are declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from neulens_ros.errors import ConfigError

@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: its default, documentation and constraints."""

    name: str
    default: Any
    description: str
    read_only: bool = False  # True: a change needs a restart (declared read-only)
    minimum: float | None = None  # inclusive, numbers only
    maximum: float | None = None  # inclusive, numbers only
    choices: tuple[Any, ...] = ()  # allowed values (strings or list items)
    item_type: type | None = None  # element type for list parameters
    units: str = ''

    def __post_init__(self) -> None:
        if isinstance(self.default, list) and (self.item_type is None or not self.default):
            raise ConfigError(f'parameter {self.name}: list parameters need item_type and a '
                              'non-empty default (ROS infers the array type from it)')
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ConfigError(f'parameter {self.name}: minimum > maximum')
        if not isinstance(self.default, list):
            problem = self.check(self.default)
            if problem:
                raise ConfigError(f'parameter {self.name}: default is invalid: {problem}')

    @property
    def kind(self) -> type:
        """The type of the value, or of each item of a list parameter."""
        return self.item_type or type(self.default)

    def descriptor(self) -> ParameterDescriptor:
        """The ROS descriptor: description, read-only flag and the range (shown by
        `ros2 param describe`; rclpy enforces it on single numbers, `check` on lists too)."""
        text = self.description + (f' [{self.units}]' if self.units else '')
        if self.choices:
            text += ' (one of: ' + ', '.join(str(c) for c in self.choices) + ')'
        desc = ParameterDescriptor(description=text, read_only=self.read_only)
        if self.minimum is None or self.maximum is None:
            return desc
        if self.kind is int:
            desc.integer_range = [IntegerRange(from_value=int(self.minimum),
                                               to_value=int(self.maximum), step=0)]
        elif self.kind is float:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(self.minimum), to_value=float(self.maximum), step=0.0)]
        return desc

    def as_declared(self, param: Parameter) -> Parameter:
        """`param` with an integer (array) value turned into a double (array) when this spec
        holds floats; any other parameter unchanged (rclpy then rejects a wrong type)."""
        if self.kind is not float:
            return param
        if param.type_ == Parameter.Type.INTEGER:
            return Parameter(param.name, Parameter.Type.DOUBLE, float(param.value))
        if param.type_ == Parameter.Type.INTEGER_ARRAY:
            return Parameter(param.name, Parameter.Type.DOUBLE_ARRAY,
                             [float(v) for v in param.value])
        return param

    def check(self, value: Any) -> str:
        """Return '' when `value` is acceptable, else the reason (shown to the user)."""
        items = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(self.default, list):
            if not isinstance(value, (list, tuple)) or not value:
                return f'{self.name} must be a non-empty list'
        elif isinstance(value, (list, tuple)):
            return f'{self.name} must be a single value, got a list'
        expected = self.item_type or type(self.default)
        for item in items:
            if expected is float and isinstance(item, int) and not isinstance(item, bool):
                item = float(item)
            if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
                return f'{self.name} must be of type {expected.__name__}, got {item!r}'
            if self.minimum is not None and item < self.minimum:
                return f'{self.name}={item} is below the minimum {self.minimum}{self.units}'
            if self.maximum is not None and item > self.maximum:
                return f'{self.name}={item} is above the maximum {self.maximum}{self.units}'
            if self.choices and item not in self.choices:
                return (f'{self.name}={item!r} is not one of '
                        + ', '.join(repr(c) for c in self.choices))
        return ''


Validator = Callable[[Mapping[str, Any]], str]
Applier = Callable[[Mapping[str, Any]], None]


@dataclass
class LiveParameters:
    """The node's current parameter values, changed atomically through the on-set callback.

    `validate(values)` checks cross-field rules on the would-be values and returns a reason or
    ''; `apply(values)` receives the complete new set after acceptance (the node swaps its
    frozen config there, so a frame in flight keeps the config it started with).
    """

    specs: Sequence[ParamSpec]
    values: dict[str, Any] = field(default_factory=dict)
    validate: Validator | None = None
    apply: Applier | None = None

    def spec(self, name: str) -> ParamSpec | None:
        return next((s for s in self.specs if s.name == name), None)

    def as_declared(self, param: Parameter) -> Parameter:
        spec = self.spec(param.name)
        return param if spec is None else spec.as_declared(param)

    def pre_set(self, params: list[Parameter]) -> list[Parameter]:
        """rclpy's pre-set callback: runs before the type and range checks of the
        descriptors, so an integer reaches a float knob as a double."""
        return [self.as_declared(param) for param in params]

    def on_set(self, params: list[Parameter]) -> SetParametersResult:
        proposed = dict(self.values)
        for param in params:
            spec = self.spec(param.name)
            if spec is None:  # a parameter another part of rclpy owns (e.g. use_sim_time)
                continue
            value = param.value
            if isinstance(value, tuple) or (hasattr(value, 'tolist') and isinstance(
                    spec.default, list)):
                value = list(value)
            problem = spec.check(value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            proposed[param.name] = value
        if self.validate is not None:
            problem = self.validate(proposed)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        self.values = proposed
        if self.apply is not None:
            self.apply(proposed)
        return SetParametersResult(successful=True, reason='')


def declare_parameters(node: Node, specs: Sequence[ParamSpec],
                       validate: Validator | None = None,
                       apply: Applier | None = None) -> LiveParameters:
    """Declare `specs` on `node` (values from YAML/--ros-args override defaults), check the
    initial values and register the live on-set callback. Raises ConfigError on a bad start
    value, naming the parameter and what is wrong."""
    live = LiveParameters(specs=specs, validate=validate, apply=apply)
    # rclpy keeps the start values (--ros-args, parameter files) here, with no public
    # accessor, and declare_parameter rejects an integer one for a double parameter.
    overrides = node._parameter_overrides
    overrides.update({name: live.as_declared(p) for name, p in overrides.items()})
    for spec in specs:
        try:
            declared = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        except ParameterException as exc:
            raise ConfigError(f'{node.get_name()}: {exc}') from exc
        value = declared.value
        if isinstance(spec.default, list):
            value = list(value) if value is not None else []
        problem = spec.check(value)
        if problem:
            raise ConfigError(f'{node.get_name()}: {problem}')
        live.values[spec.name] = value
    if validate is not None:
        problem = validate(live.values)
        if problem:
            raise ConfigError(f'{node.get_name()}: {problem}')
    if apply is not None:
        apply(live.values)
    node.add_pre_set_parameters_callback(live.pre_set)
    node.add_on_set_parameters_callback(live.on_set)
    return live
