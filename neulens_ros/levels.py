"""Compression levels and tile grids, shared by every part of the package.

Level l in 0..4 has compression c = l / 4; level 4 is SKIP: the tile is neither computed nor
transmitted and its features are zero (msg/TileDecision.msg carries the same constants).
"""

NUM_LEVELS = 5  # level indices 0..4
LEVEL_SKIP = 4
COMPUTED_LEVELS = (0, 1, 2, 3)
TILE_GRIDS = (2, 3, 4)  # k of the k x k tile grids the gate, the profile and DEMUX support
