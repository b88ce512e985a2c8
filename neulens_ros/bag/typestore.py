"""A rosbags typestore that knows every message type the pipeline records.

Standard types come from rosbags' built-in ROS 2 store; other types (neulens_msgs,
vision_msgs) are registered from the .msg files their installed packages ship in
share/<package>/msg, found through the ament index, so the bag carries the real definitions.
"""

from __future__ import annotations

from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from neulens_ros.errors import DataError
from neulens_ros.resources import package_share


def _msg_file(msgtype: str) -> Path:
    package, _, name = msgtype.split('/')
    path = package_share(package) / 'msg' / f'{name}.msg'
    if not path.is_file():
        raise DataError(f'{path} not found: {package} does not define {name}')
    return path


def _field_types(fielddef: tuple) -> list[str]:
    """Message type names referenced by one rosbags field definition."""
    kind, detail = fielddef
    names: list[str] = []
    if kind.name == 'NAME':
        names.append(detail)
    elif kind.name in ('ARRAY', 'SEQUENCE'):
        names.extend(_field_types(detail[0]))
    return names


def register_types(store: Typestore, msgtypes: list[str]) -> None:
    """Register `msgtypes` (e.g. 'neulens_msgs/msg/TileBatch') and their dependencies."""
    pending = [t for t in msgtypes if t not in store.fielddefs]
    found: dict[str, tuple] = {}
    while pending:
        msgtype = pending.pop()
        if msgtype in found or msgtype in store.fielddefs:
            continue
        types = get_types_from_msg(_msg_file(msgtype).read_text(), msgtype)
        found.update(types)
        for _consts, fields in types.values():
            for _name, fielddef in fields:
                pending.extend(_field_types(fielddef))
    if found:
        store.register(found)


def make_typestore(msgtypes: list[str]) -> Typestore:
    """ROS 2 Kilted typestore extended with `msgtypes` and everything they reference."""
    store = get_typestore(Stores.ROS2_KILTED)
    register_types(store, msgtypes)
    return store
