"""Skeleton graphs: layouts and the PYSKL adjacency partitions."""

from __future__ import annotations

import numpy as np
import pytest

from humact.skeleton.graph import (
    LAYOUTS, Graph, adjacency, custom_layout, get_layout, hop_distance, k_adjacency, multiscale_adjacency,
    spatial_temporal_adjacency, stgcn_spatial,
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
                                           ("kinect20", 20), ("nw-ucla", 20), ("jhmdb15", 15),
                                           ("handmp", 21)])
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


def test_handmp_is_pyskls_mediapipe_hand_graph_five_finger_chains_to_the_wrist():
    layout = get_layout("handmp")
    assert layout.center == 0 and layout.left == () and layout.right == ()
    fingers = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]]
    expected = {(f[0], 0) for f in fingers} | {(b, a) for f in fingers for a, b in zip(f, f[1:])}
    assert set(layout.inward) == expected


def test_random_mode_draws_num_filter_noisy_graphs_reproducibly_from_its_seed():
    g = Graph("coco", "random", num_filter=8, init_std=0.02, init_off=0.04, seed=3)
    assert g.A.shape == (8, 17, 17)
    assert abs(g.A.mean() - 0.04) < 0.005 and abs(g.A.std() - 0.02) < 0.005
    np.testing.assert_array_equal(g.A, Graph("coco", "random", num_filter=8, seed=3).A)
    assert not np.array_equal(g.A, Graph("coco", "random", num_filter=8, seed=4).A)


def test_k_adjacency_marks_joints_exactly_k_hops_apart():
    # A path 0 - 1 - 2 - 3.
    A = np.zeros((4, 4))
    for i in range(3):
        A[i, i + 1] = A[i + 1, i] = 1
    np.testing.assert_array_equal(k_adjacency(A, 0), np.eye(4))
    two = k_adjacency(A, 2)
    assert two[0, 2] == 1 and two[1, 3] == 1 and two[0, 1] == 0 and two[0, 3] == 0 and two[0, 0] == 0
    np.testing.assert_array_equal(k_adjacency(A, 2, with_self=True), two + np.eye(4))
    np.testing.assert_array_equal(k_adjacency(A, 5), np.zeros((4, 4)))   # beyond the diameter


def test_multiscale_adjacency_columns_sum_to_one_and_far_scales_are_self_loops():
    binary = adjacency("coco", "binary_adj")[0]
    ms = multiscale_adjacency(binary, 13)
    assert ms.shape == (13, 17, 17)
    np.testing.assert_allclose(ms.sum(1), 1.0)
    np.testing.assert_array_equal(ms[0], np.eye(17))
    np.testing.assert_allclose(ms[1], (binary + np.eye(17)) / (binary + np.eye(17)).sum(0))
    np.testing.assert_array_equal(ms[12], np.eye(17))   # COCO's diameter is 8 hops


def test_spatial_temporal_adjacency_links_each_joint_to_its_neighbourhood_in_every_window_frame():
    A = adjacency("coco", "binary_adj")[0]
    st = spatial_temporal_adjacency(A, 3)
    assert st.shape == (51, 51)
    block = A + np.eye(17)
    for f in range(3):
        for g in range(3):
            np.testing.assert_array_equal(st[f * 17:(f + 1) * 17, g * 17:(g + 1) * 17], block)
