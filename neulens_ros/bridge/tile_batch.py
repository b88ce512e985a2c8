"""Tiles + FrameDecision <-> neulens_msgs/TileBatch (what crosses the headset-edge link).

Only the tiles that are not skipped travel, as rgb8 Images ('raw') or JPEG/PNG
CompressedImages. Unpacking checks everything the edge relies on: the tile set equals the
decision's non-skipped tiles, each tile has its rectangle's size, the encoding is known.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from builtin_interfaces.msg import Time
from neulens_msgs.msg import TileBatch

from neulens_ros.bridge.image import (compressed_to_numpy, image_to_numpy,
                                      numpy_to_compressed, numpy_to_image)
from neulens_ros.bridge.tile_decision import decision_to_msg, msg_to_decision
from neulens_ros.errors import DataError, EncodingError
from neulens_ros.pipeline.decision import FrameDecision

TILE_ENCODINGS = ('raw', 'jpeg', 'png')


def encode_tile(tile: np.ndarray, encoding: str, quality: int, header: Any) -> Any:
    """One rgb8 tile [h, w, 3] as an Image ('raw') or CompressedImage ('jpeg' | 'png')."""
    if encoding == 'raw':
        return numpy_to_image(np.ascontiguousarray(tile), 'rgb8', header=header)
    if encoding in ('jpeg', 'png'):
        msg = numpy_to_compressed(tile, fmt=encoding, quality=quality)
        msg.header = header
        return msg
    raise EncodingError(f'tile encoding {encoding!r} is not one of {TILE_ENCODINGS}')


def pack_tile_batch(decision: FrameDecision, header: Any, tiles: Mapping[int, np.ndarray],
                    encoding: str, quality: int = 90, full_frame_bytes: int = 0,
                    sent: Time | None = None) -> TileBatch:
    """TileBatch with `decision` and its non-skipped `tiles` ({index: [h, w, 3] uint8})."""
    indices = decision.sent_tiles
    if set(tiles) != set(indices):
        raise DataError(f'tiles {sorted(tiles)} given, but the decision sends {list(indices)}')
    msg = TileBatch(decision=decision_to_msg(decision, header), encoding=encoding,
                    tile_indices=list(indices), full_frame_bytes=int(full_frame_bytes))
    encoded = [encode_tile(tiles[i], encoding, quality, header) for i in indices]
    if encoding == 'raw':
        msg.tiles = encoded
    else:
        msg.compressed_tiles = encoded
    msg.payload_bytes = sum(len(e.data) for e in encoded)
    if sent is not None:
        msg.sent = sent
    return msg


def unpack_tile_batch(msg: Any) -> tuple[FrameDecision, dict[int, np.ndarray]]:
    """(decision, {tile index: [h, w, 3] uint8}) from a TileBatch; DataError or EncodingError
    saying what is wrong when the batch is inconsistent."""
    decision = msg_to_decision(msg.decision)
    indices = tuple(int(i) for i in msg.tile_indices)
    if not indices and decision.sent_tiles:
        raise DataError(f'empty TileBatch: the decision sends tiles {list(decision.sent_tiles)}'
                        ' but none are attached')
    if indices != decision.sent_tiles:
        raise DataError(f'tile indices {list(indices)} differ from the non-skipped tiles '
                        f'{list(decision.sent_tiles)} of the decision')
    if msg.encoding == 'raw':
        payload = list(msg.tiles)
    elif msg.encoding in ('jpeg', 'png'):
        payload = list(msg.compressed_tiles)
    else:
        raise EncodingError(f'tile encoding {msg.encoding!r} is not one of {TILE_ENCODINGS}')
    if len(payload) != len(indices):
        raise DataError(f'{len(indices)} tile indices but {len(payload)} {msg.encoding} tiles')
    tiles = {}
    for index, part in zip(indices, payload, strict=True):
        array = (image_to_numpy(part, 'rgb8') if msg.encoding == 'raw'
                 else compressed_to_numpy(part))
        if array.ndim != 3 or array.shape[2] != 3:
            raise EncodingError(f'tile {index}: expected 3 colour channels, got shape '
                                f'{list(array.shape)}')
        width, height = decision.tile_size(index)
        if array.shape[:2] != (height, width):
            raise DataError(f'tile {index} is {array.shape[1]}x{array.shape[0]} but its '
                            f'rectangle is {width}x{height}')
        tiles[index] = array
    return decision, tiles
