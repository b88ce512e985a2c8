"""Tiles + FrameDecision <-> neulens_msgs/TileBatch (what crosses the headset-edge link).

Only the tiles that are not skipped travel: as rgb8 Images ('raw'), as one JPEG/PNG
CompressedImage per tile ('jpeg', 'png'), or as one mosaic ('jpeg_mosaic', 'png_mosaic'): a
single image of the network input holding the carried tiles' pixels and nothing else (blank
elsewhere; in a JPEG the tiles' borders are continued to its block grid), from which the edge
cuts each tile by its rectangle. The mosaic sends overlapping halos once and pays one image
header instead of one per tile, and blank areas cost almost nothing to compress. Unpacking
checks everything the edge relies on: the tile set equals the decision's non-skipped tiles,
each tile has its rectangle's size, the encoding is known.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from builtin_interfaces.msg import Time
from neulens_msgs.msg import TileBatch

from neulens_ros.bridge.image import (compressed_to_numpy, image_to_numpy,
                                      numpy_to_compressed, numpy_to_image)
from neulens_ros.bridge.tile_decision import decision_to_msg, msg_to_decision
from neulens_ros.errors import ConfigError, DataError, EncodingError
from neulens_ros.pipeline.decision import FrameDecision
from neulens_ros.pipeline.tiles import crop_tile, overlap

MOSAIC = '_mosaic'
# pixels: JPEG's DCT block. Continuing the tiles to it gave 5.2% fewer mosaic bytes on 40
# generated scenes, to the 16 px MCU of 4:2:0 chroma 4.9%.
JPEG_BLOCK = 8
TILE_ENCODINGS = ('raw', 'jpeg', 'png', 'jpeg' + MOSAIC, 'png' + MOSAIC)


def image_format(encoding: str) -> str:
    """The image format an encoding compresses with: 'raw', 'jpeg' or 'png'."""
    if encoding not in TILE_ENCODINGS:
        raise EncodingError(f'tile encoding {encoding!r} is not one of {TILE_ENCODINGS}')
    return encoding.removesuffix(MOSAIC)


def encode_tile(tile: np.ndarray, fmt: str, quality: int, header: Any) -> Any:
    """One rgb8 image [h, w, 3] as an Image (`fmt` 'raw') or a CompressedImage ('jpeg' |
    'png'; see image_format)."""
    if fmt == 'raw':
        return numpy_to_image(np.ascontiguousarray(tile), 'rgb8', header=header)
    msg = numpy_to_compressed(np.ascontiguousarray(tile), fmt=fmt, quality=quality)
    msg.header = header
    return msg


def paste_mosaic(decision: FrameDecision, tiles: Mapping[int, np.ndarray],
                 block: int = JPEG_BLOCK) -> np.ndarray:
    """[H_in, W_in, 3] uint8 network-input image holding `tiles` at their rectangles (the
    parts inside the image), zero elsewhere, except that with `block` > 1 each tile is first
    edge-extended to the `block` grid. JPEG codes the image in blocks: a block holding a
    tile's edge and black pays for that sharp edge in every frequency, a block continuing the
    tile's border pixels costs little more than a flat one. The tiles are pasted after all
    extensions, so every carried pixel is the tile's own and the edge cuts out the same
    tiles."""
    if block < 1:
        raise ConfigError(f'mosaic block must be >= 1 pixel, got {block}')
    width, height = decision.input_size
    mosaic = np.zeros((height, width, 3), dtype=np.uint8)
    placed = []
    for index, tile in tiles.items():
        check_tile_size(decision, index, tile)
        in_image, in_tile = overlap(decision.tile_rects[index], width, height)
        rows, cols = in_image
        content = tile[in_tile]
        if block > 1 and content.size:
            grown = (to_block_grid(rows, block, height), to_block_grid(cols, block, width))
            pad = ((rows.start - grown[0].start, grown[0].stop - rows.stop),
                   (cols.start - grown[1].start, grown[1].stop - cols.stop), (0, 0))
            mosaic[grown] = np.pad(content, pad, mode='edge')
        placed.append((in_image, content))
    for in_image, content in placed:
        mosaic[in_image] = content
    return mosaic


def to_block_grid(part: slice, block: int, limit: int) -> slice:
    """`part` (pixels start..stop) widened to whole `block`s, clipped to 0..limit."""
    return slice(part.start // block * block, min(-(-part.stop // block) * block, limit))


def check_tile_size(decision: FrameDecision, index: int, tile: np.ndarray) -> None:
    """DataError unless `tile` [h, w, ...] has the size of the decision's rectangle."""
    width, height = decision.tile_size(index)
    if tile.shape[:2] != (height, width):
        raise DataError(f'tile {index} is {tile.shape[1]}x{tile.shape[0]} but its rectangle '
                        f'is {width}x{height}')


def pack_tile_batch(decision: FrameDecision, header: Any, tiles: Mapping[int, np.ndarray],
                    encoding: str, quality: int = 90, full_frame_bytes: int = 0,
                    sent: Time | None = None) -> TileBatch:
    """TileBatch with `decision` and its non-skipped `tiles` ({index: [h, w, 3] uint8})."""
    indices = decision.sent_tiles
    if set(tiles) != set(indices):
        raise DataError(f'tiles {sorted(tiles)} given, but the decision sends {list(indices)}')
    msg = TileBatch(decision=decision_to_msg(decision, header), encoding=encoding,
                    tile_indices=list(indices), full_frame_bytes=int(full_frame_bytes))
    fmt = image_format(encoding)
    if encoding.endswith(MOSAIC):
        block = JPEG_BLOCK if fmt == 'jpeg' else 1  # PNG is lossless: zeros cost least
        encoded = ([encode_tile(paste_mosaic(decision, tiles, block), fmt, quality, header)]
                   if indices else [])
    else:
        encoded = [encode_tile(tiles[i], fmt, quality, header) for i in indices]
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
    fmt = image_format(msg.encoding)
    payload = list(msg.tiles) if fmt == 'raw' else list(msg.compressed_tiles)
    if msg.encoding.endswith(MOSAIC):
        return decision, mosaic_tiles(decision, payload, fmt)
    if len(payload) != len(indices):
        raise DataError(f'{len(indices)} tile indices but {len(payload)} {msg.encoding} tiles')
    tiles = {}
    for index, part in zip(indices, payload, strict=True):
        array = decode_rgb(part, fmt, f'tile {index}')
        check_tile_size(decision, index, array)
        tiles[index] = array
    return decision, tiles


def decode_rgb(part: Any, fmt: str, what: str) -> np.ndarray:
    """[h, w, 3] uint8 from an rgb8 Image ('raw') or a CompressedImage; EncodingError naming
    `what` when it is not 3-channel colour."""
    array = image_to_numpy(part, 'rgb8') if fmt == 'raw' else compressed_to_numpy(part)
    if array.ndim != 3 or array.shape[2] != 3:
        raise EncodingError(f'{what}: expected 3 colour channels, got shape '
                            f'{list(array.shape)}')
    return array


def mosaic_tiles(decision: FrameDecision, payload: list[Any], fmt: str
                 ) -> dict[int, np.ndarray]:
    """{tile index: [h, w, 3] uint8} cut from a mosaic payload (one image, none when every
    tile is skipped)."""
    if len(payload) != (1 if decision.sent_tiles else 0):
        raise DataError(f'a mosaic TileBatch carries one image, got {len(payload)}')
    if not payload:
        return {}
    mosaic = decode_rgb(payload[0], fmt, 'mosaic')
    width, height = decision.input_size
    if mosaic.shape[:2] != (height, width):
        raise DataError(f'mosaic is {mosaic.shape[1]}x{mosaic.shape[0]} but the network input '
                        f'is {width}x{height}')
    return {i: crop_tile(mosaic, decision.tile_rects[i]) for i in decision.sent_tiles}
