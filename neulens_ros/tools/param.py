"""neulens-param: list, get, describe and set parameters of running nodes.

The pip-only stand-in for `ros2 param`: it calls the same standard parameter services
(rcl_interfaces ListParameters / GetParameters / SetParameters / DescribeParameters), so
the README's tuning examples work on both kinds of install:

    neulens-param list /gate
    neulens-param get /gate latency_slo_ms
    neulens-param set /gate latency_slo_ms 60
    neulens-param describe /gate policy

A rejected value prints the node's reason and exits with code 1, as `ros2 param set` does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import (DescribeParameters, GetParameters, ListParameters,
                               SetParameters)
from neulens_ros.errors import ConfigError
from neulens_ros.tools.services import NodeServices, client_node

_TYPE_NAMES = {v: k for k, v in vars(ParameterType).items()
               if k.startswith('PARAMETER_') and isinstance(v, int)}


def to_parameter_value(value: Any) -> ParameterValue:
    """A Python value (as parsed from YAML) -> rcl_interfaces/ParameterValue."""
    pv = ParameterValue()
    if isinstance(value, bool):
        pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
    elif isinstance(value, int):
        pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
    elif isinstance(value, float):
        pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
    elif isinstance(value, str):
        pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
    elif isinstance(value, list) and value and all(isinstance(v, bool) for v in value):
        pv.type, pv.bool_array_value = ParameterType.PARAMETER_BOOL_ARRAY, value
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        pv.type, pv.integer_array_value = ParameterType.PARAMETER_INTEGER_ARRAY, value
    elif isinstance(value, list) and value and all(isinstance(v, (int, float))
                                                   for v in value):
        pv.type = ParameterType.PARAMETER_DOUBLE_ARRAY
        pv.double_array_value = [float(v) for v in value]
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        pv.type, pv.string_array_value = ParameterType.PARAMETER_STRING_ARRAY, value
    else:
        raise ConfigError(f'cannot send {value!r} as a parameter: use a number, true/false, '
                          'text, or a non-empty [list] of one of those')
    return pv


def from_parameter_value(pv: ParameterValue) -> Any:
    """rcl_interfaces/ParameterValue -> Python value (None when not set)."""
    field = {
        ParameterType.PARAMETER_BOOL: 'bool_value',
        ParameterType.PARAMETER_INTEGER: 'integer_value',
        ParameterType.PARAMETER_DOUBLE: 'double_value',
        ParameterType.PARAMETER_STRING: 'string_value',
        ParameterType.PARAMETER_BYTE_ARRAY: 'byte_array_value',
        ParameterType.PARAMETER_BOOL_ARRAY: 'bool_array_value',
        ParameterType.PARAMETER_INTEGER_ARRAY: 'integer_array_value',
        ParameterType.PARAMETER_DOUBLE_ARRAY: 'double_array_value',
        ParameterType.PARAMETER_STRING_ARRAY: 'string_array_value',
    }.get(pv.type)
    if field is None:
        return None
    value = getattr(pv, field)
    return list(value) if 'array' in field else value


class ParamClient(NodeServices):
    """Calls one node's parameter services."""

    def list(self) -> list[str]:
        return sorted(self.call(ListParameters, 'list_parameters',
                                ListParameters.Request()).result.names)

    def get(self, names: list[str]) -> list[Any]:
        res = self.call(GetParameters, 'get_parameters', GetParameters.Request(names=names))
        return [from_parameter_value(v) for v in res.values]

    def describe(self, names: list[str]) -> list[Any]:
        return list(self.call(DescribeParameters, 'describe_parameters',
                              DescribeParameters.Request(names=names)).descriptors)

    def set(self, name: str, value: Any) -> tuple[bool, str]:
        request = SetParameters.Request(
            parameters=[ParameterMsg(name=name, value=to_parameter_value(value))])
        result = self.call(SetParameters, 'set_parameters', request).results[0]
        return bool(result.successful), result.reason


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-param', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--timeout', type=float, default=5.0, help='seconds to wait')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='names of all parameters').add_argument('node')
    for name in ('get', 'describe'):
        p = sub.add_parser(name, help=f'{name} one parameter')
        p.add_argument('node')
        p.add_argument('name')
    p = sub.add_parser('set', help='set one parameter (value parsed as YAML)')
    p.add_argument('node')
    p.add_argument('name')
    p.add_argument('value')
    return parser


def run_command(client: ParamClient, args: argparse.Namespace) -> int:
    if args.command == 'list':
        for name in client.list():
            print(f'  {name}')
    elif args.command == 'get':
        (value,) = client.get([args.name])
        if value is None:
            print(f'parameter {args.name} is not set on {client.target}')
            return 1
        print(f'{args.name}: {value}')
    elif args.command == 'describe':
        (desc,) = client.describe([args.name])
        print(f'{desc.name} ({_TYPE_NAMES.get(desc.type, desc.type)})'
              f'{" read-only" if desc.read_only else ""}\n  {desc.description}')
        for r in list(desc.integer_range) + list(desc.floating_point_range):
            print(f'  range: {r.from_value} .. {r.to_value}')
    else:
        # Sent as typed, as `ros2 param set` does: the node takes `60` for a float as 60.0.
        ok, reason = client.set(args.name, yaml.safe_load(args.value))
        print('Set parameter successful' if ok else f'Setting parameter failed: {reason}')
        return 0 if ok else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with client_node('neulens_param_client') as node:
        try:
            return run_command(ParamClient(node, args.node, args.timeout), args)
        except ConfigError as exc:
            print(f'neulens-param: {exc}', file=sys.stderr)
            return 2


if __name__ == '__main__':
    raise SystemExit(main())
