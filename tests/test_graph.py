"""Skeleton graphs: layouts and the PYSKL adjacency partitions."""

from __future__ import annotations

import numpy as np
import pytest

from humact.skeleton.graph import (
    LAYOUTS, Graph, adjacency, custom_layout, get_layout, hop_distance, stgcn_spatial,
)


def _is_tree_towards_center(layout) -> bool:
    parent = dict(layout.inward)
    for v in range(layout.num_node):
        seen = set()
        while v != layout.center:
            if v in seen or v not in parent:
                return False
            seen.add(v)
            v = parent[v]
    return True


@pytest.mark.parametrize("name,num_node", [("coco", 17), ("nturgb+d", 25), ("openpose", 18),
                                           ("kinect20", 20), ("nw-ucla", 20), ("jhmdb15", 15)])
def test_every_builtin_layout_is_a_tree_pointing_to_its_center(name, num_node):
    layout = get_layout(name)
    assert layout.num_node == num_node
    assert len(layout.inward) == num_node - 1
    assert _is_tree_towards_center(layout)


def test_spatial_mode_is_identity_then_column_normalised_inward_and_outward():
    A = adjacency("coco", "spatial")
    assert A.shape == (3, 17, 17)
    np.testing.assert_array_equal(A[0], np.eye(17))
    for k in (1, 2):
        col = A[k].sum(0)
        assert np.all((np.isclose(col, 1)) | (col == 0))
    # COCO inward edge (1, 0): left eye -> nose is stored at A[1][0, 1] (PYSKL's A[j, i]).
    assert A[1][0, 1] == 1.0 and A[2][1, 0] == 0.25  # the nose has 4 children


def test_stgcn_spatial_partitions_add_up_to_the_normalised_one_hop_neighbourhood():
    layout = get_layout("nturgb+d")
    A = stgcn_spatial(layout)
    assert A.shape == (3, 25, 25)
    hop = hop_distance(25, layout.inward, 1)
    adj = (hop <= 1).astype(float)
    np.testing.assert_allclose(A.sum(0), adj / adj.sum(0, keepdims=True))
    np.testing.assert_allclose(np.diag(A[0]), 1 / adj.sum(0))  # hop 0 is all "close"


def test_kinect20_matches_ctrgcn_nw_ucla_edges():
    # CTR-GCN's graph/ucla.py, 1-based.
    ucla = [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
            (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]
    assert get_layout("kinect20").inward == tuple((i - 1, j - 1) for i, j in ucla)
    assert get_layout("nw-ucla") is get_layout("kinect20")


def test_derived_bone_pairs_map_each_joint_to_its_parent_and_center_to_itself():
    layout = get_layout("jhmdb15")
    pairs = dict(layout.bone_pairs)
    assert len(pairs) == 15
    assert pairs[0] == 0 and pairs[11] == 7 and pairs[14] == 10  # neck; r-wrist->r-elbow; l-ankle->l-knee


def test_flip_index_swaps_left_and_right_and_is_an_involution():
    for layout in LAYOUTS.values():
        perm = np.array(layout.flip_index)
        np.testing.assert_array_equal(perm[perm], np.arange(layout.num_node))
        for a, b in zip(layout.left, layout.right):
            assert perm[a] == b and perm[b] == a


def test_custom_layout_orients_edges_towards_the_center():
    layout = custom_layout(4, [(0, 1), (1, 2), (3, 2)], center=0)
    assert set(layout.inward) == {(1, 0), (2, 1), (3, 2)}
    assert dict(layout.bone_pairs) == {0: 0, 1: 0, 2: 1, 3: 2}


def test_graph_accepts_a_custom_edge_list_dict():
    g = Graph({"num_node": 3, "edges": [[0, 1], [1, 2]], "center": 1}, mode="spatial")
    assert g.A.shape == (3, 3, 3)
    assert g.layout.center == 1


def test_unknown_layout_and_mode_are_rejected_with_the_known_names():
    with pytest.raises(ValueError, match="known"):
        get_layout("kinect99")
    with pytest.raises(ValueError, match="known"):
        adjacency("coco", "temporal")
    with pytest.raises(ValueError, match="edge"):
        custom_layout(3, [(0, 5)])
