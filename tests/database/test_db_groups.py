"""Fingerprints, duplicate groups and energy labels on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from ase_au20.database.groups import duplicate_groups, group_sizes
from ase_au20.database.labels import (
    assign_buckets,
    bucket_edges,
    robust_center_scale,
    robust_outliers,
)
from ase_au20.geometry.fingerprint import distance_fingerprint, fingerprint_matrix, max_deviation
from ase_au20.structures import au20_ground_state


def test_fingerprint_is_invariant_to_rotation_permutation_translation() -> None:
    atoms = au20_ground_state()
    moved = atoms.copy()
    moved.positions = Rotation.from_euler("xyz", [0.3, 1.1, -0.7]).apply(moved.positions) + 5.0
    moved = moved[np.random.default_rng(0).permutation(len(moved))]
    fp_a, fp_b = distance_fingerprint(atoms), distance_fingerprint(moved)
    assert fp_a.shape == (190,)
    assert np.all(np.diff(fp_a) >= 0)
    np.testing.assert_allclose(fp_a, fp_b, atol=1e-10)


def test_max_deviation_is_the_largest_difference_of_any_pair_distance() -> None:
    fp = distance_fingerprint(au20_ground_state())
    shifted = fp.copy()
    shifted[7] += 0.009
    shifted[100] -= 0.004
    np.testing.assert_allclose(max_deviation(fp, np.stack([fp, shifted])), [[0.0, 0.009]])


def test_fingerprint_matrix_rejects_mixed_sizes() -> None:
    with pytest.raises(ValueError, match="same number of atoms"):
        fingerprint_matrix([au20_ground_state(), Atoms("Au2", positions=[[0, 0, 0], [2.8, 0, 0]])])


def _stack(*offsets: float) -> np.ndarray:
    base = distance_fingerprint(au20_ground_state())
    return np.array([base + offset for offset in offsets])


def test_groups_are_decided_by_geometry_alone_and_chain() -> None:
    fps = _stack(0.0, 0.004, 0.5, 0.0, 0.008)
    # 0~1 and 1~4 (0.004 Å apart) chain 0-1-4; 3 is 0's geometry (its label may differ by
    # a convergence error of the labels, as the Td copies 350/351 do by 13 meV); 2 is far away
    labels = duplicate_groups(fps, tol=0.005)
    assert labels.tolist() == [0, 0, 1, 0, 0]
    assert group_sizes(labels) == {0: 4, 1: 1}


def test_groups_keep_existing_labels_and_join_new_rows() -> None:
    fps = _stack(0.0, 0.5, 1.0, 0.001, 0.501, 2.0)
    existing = np.array([7, 3, 9])
    labels = duplicate_groups(fps, tol=0.01, existing=existing)
    assert labels.tolist() == [7, 3, 9, 7, 3, 10]


def test_new_row_bridging_two_existing_groups_takes_smallest_label() -> None:
    fps = _stack(0.0, 0.008, 0.004)
    labels = duplicate_groups(fps, tol=0.005, existing=np.array([5, 2]))
    assert labels.tolist() == [5, 2, 2]


def test_bucket_edges_and_buckets() -> None:
    delta_e = np.arange(9.0)  # quartiles 2 and 6
    edges = bucket_edges(delta_e)
    assert edges == [2.0, 6.0]
    buckets = assign_buckets(delta_e, edges)
    assert buckets.tolist() == ["low"] * 2 + ["mid"] * 5 + ["high"] * 2


def test_robust_outliers_use_median_and_mad() -> None:
    delta_e = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 20.0])
    median, mad = robust_center_scale(delta_e)
    assert (median, mad) == (2.5, 1.5)
    z = 0.6745 * np.abs(delta_e - median) / mad
    assert robust_outliers(delta_e, median, mad).tolist() == (z > 3).tolist()
    assert robust_outliers(delta_e, median, mad).tolist() == [False] * 5 + [True]
    assert not robust_outliers(delta_e, 1.0, 0.0).any()
