"""DBSCAN on a coarser grid (lift.cluster_labels): the grid's cells, the core count scaled
to the cell size, the same clusters as on the voxel points, and the same boxes on generated
HD scenes."""

from __future__ import annotations

import numpy as np
import pytest

from lifting_scene import lift_hd_scene
from neulens_ros.errors import ConfigError
from neulens_ros.lifting.boxes import iou_3d
from neulens_ros.lifting.lift import (DBSCAN_MIN_POINTS, LiftingConfig, cluster_labels,
                                      cluster_min_points, grid_cells)


def test_grid_cells_are_the_centroids_of_the_occupied_cells() -> None:
    points = np.array([[0.01, 0.01, 1.01], [0.03, 0.01, 1.01], [0.05, 0.0, 1.0],
                       [-0.01, 0.0, 1.0]])
    centroids, cell = grid_cells(points, 0.04)
    assert len(centroids) == 3 and cell.shape == (4,)
    assert cell[0] == cell[1] and len({cell[0], cell[2], cell[3]}) == 3
    np.testing.assert_allclose(centroids[cell[0]], [0.02, 0.01, 1.01])
    np.testing.assert_allclose(centroids[cell[2]], points[2])


@pytest.mark.parametrize('voxel_m, cluster_m, expected', [
    (0.02, 0.0, DBSCAN_MIN_POINTS), (0.02, 0.04, 3), (0.02, 0.03, 4), (0.0, 0.04,
                                                                          DBSCAN_MIN_POINTS),
    (0.02, 0.059, 2)])
def test_core_count_scales_with_the_cell_size(voxel_m: float, cluster_m: float,
                                              expected: int) -> None:
    config = LiftingConfig(voxel_size_m=voxel_m, cluster_voxel_m=cluster_m)
    assert cluster_min_points(config) == expected


def surfaces(rng: np.random.Generator) -> np.ndarray:
    """[N, 3] a 2 cm grid over two 30 cm squares 20 cm apart, one thin row 10 cm behind, and
    three stray points: two objects, a sampled row and noise."""
    g = np.arange(0.0, 0.3, 0.02)
    square = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    left = np.column_stack([square, np.full(len(square), 2.0)])
    right = left + [0.5, 0.0, 0.0]
    row = np.column_stack([g, np.full(len(g), 0.5), np.full(len(g), 2.1)])
    stray = np.array([[2.0, 2.0, 3.0], [-2.0, 1.0, 4.0], [1.0, -2.0, 5.0]])
    return np.vstack([left, right, row, stray]) + rng.normal(0, 0.002, (1, 3))


@pytest.mark.parametrize('cluster_m', [0.0, 0.02, 0.04])
def test_the_coarse_grid_finds_the_clusters_of_the_voxel_points(cluster_m: float) -> None:
    points = surfaces(np.random.default_rng(0))
    labels = cluster_labels(points, LiftingConfig(cluster_voxel_m=cluster_m))
    n = 15 * 15
    left, right, row, stray = labels[:n], labels[n:2 * n], labels[2 * n:-3], labels[-3:]
    for part in (left, right, row):
        assert len(set(part)) == 1 and part[0] >= 0
    assert len({left[0], right[0], row[0]}) == 3  # 20 cm and 10 cm gaps: three clusters
    assert (stray == -1).all()


def test_cluster_voxel_must_be_below_the_dbscan_eps() -> None:
    for value in (-0.01, 0.06, 0.1):
        with pytest.raises(ConfigError, match='cluster_voxel_m'):
            LiftingConfig(cluster_voxel_m=value)


def test_coarse_clustering_lifts_the_boxes_of_the_voxel_points() -> None:
    """A generated 1280 x 720 scene: the same objects lifted, the boxes where clustering the
    voxel points puts them."""
    lifted = lift_hd_scene(5003, 'cluster_voxel_m', (0.0, 0.04))
    fine, coarse = lifted[0.0], lifted[0.04]
    assert len(fine) >= 3 and set(coarse) == set(fine)
    assert all(iou_3d(o.box_g, fine[o.index].box_g) > 0.9 for o in coarse.values())
