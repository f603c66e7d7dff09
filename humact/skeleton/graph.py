"""Skeleton graphs: joint layouts and the adjacency tensors the GCNs convolve with.

Same maths as PYSKL's ``pyskl/utils/graph.py`` (``Graph(layout, mode, max_hop).A``), so a
PYSKL checkpoint's stored ``A`` buffers are reproduced bit for bit for the layouts PYSKL
has (``coco``, ``nturgb+d``, ``openpose``). humact adds layouts PYSKL lacks:

- ``kinect20`` (alias ``nw-ucla``): Kinect v1's 20 joints, in the order of the NW-UCLA
  files and with the edges of CTR-GCN's NW-UCLA graph (``graph/ucla.py``);
- ``jhmdb15``: JHMDB's 15 ground-truth joints (neck, belly, face, r/l shoulder, r/l hip,
  r/l elbow, r/l knee, r/l wrist, r/l ankle);
- any custom layout from an edge list (:func:`custom_layout`).

Functional first: :func:`get_layout` returns a :class:`Layout`; :func:`adjacency` turns a
layout into the ``(K, V, V)`` float array ``A`` (``K`` partitions, ``V`` joints), where
``A[k, v, w]`` is the weight with which joint ``v`` feeds joint ``w`` in partition ``k``.
:class:`Graph` is the thin PYSKL-named wrapper.

Modes:

- ``spatial`` (K = 3): identity, in-degree-normalised inward edges, normalised outward
  edges (the partition ST-GCN++ / 2s-AGCN use);
- ``stgcn_spatial`` (K = 2 * max_hop + 1): ST-GCN's original distance partition,
  "closer to / further from the centre joint" (see :func:`stgcn_spatial`);
- ``binary_adj`` (K = 1): the symmetric 0/1 adjacency without self loops (MS-G3D's input);
- ``random`` (K = ``num_filter``): ``N(init_off, init_std^2)`` noise, not the skeleton at all:
  DG-STGCN's learnable graphs start from it (PYSKL's ``Graph(mode='random')``).

MS-G3D builds its multi-scale graphs from the binary adjacency: :func:`k_adjacency`
(joints exactly ``k`` hops apart), :func:`multiscale_adjacency` (scales ``0 .. K-1``, each
with self loops, column-normalised) and :func:`spatial_temporal_adjacency` (the graph of a
window of ``w`` frames: every joint linked to itself and its neighbours in every frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humact.errors import InputError
from humact.keypoints import HAND21_EDGES

__all__ = [
    "Layout",
    "Graph",
    "LAYOUTS",
    "get_layout",
    "resolve_layout",
    "infer_layout",
    "load_layout_file",
    "layout_to_dict",
    "layout_from_dict",
    "LAYOUT_BY_SHAPE",
    "custom_layout",
    "adjacency",
    "spatial",
    "stgcn_spatial",
    "binary_adj",
    "random_graph",
    "k_adjacency",
    "multiscale_adjacency",
    "spatial_temporal_adjacency",
    "hop_distance",
    "edge2mat",
    "normalize_digraph",
]


@dataclass(frozen=True)
class Layout:
    """A skeleton: joints, the edges between them and a centre joint.

    Attributes:
        name: layout name (``coco``, ``nturgb+d``, ...).
        num_node: number of joints V.
        inward: directed edges ``(child, parent)``, pointing towards ``center``; 0-based.
        center: the joint ST-GCN's distance partition measures from.
        bone_pairs: ``(joint, parent)`` pairs for PYSKL's ``JointToBone``: bone ``v`` is
            ``joint[v] - joint[parent]``; the centre pairs with itself (a zero bone).
        left, right: joint indices swapped by a horizontal flip (same length).
        dims: coordinate dimensions of the data this layout comes with (2 image joints, 3 Kinect
            joints), or None when either is possible (custom layouts). Data with the other number is
            refused by the datasets, naming the layout.
        body_center, body_top: the joints whose mean is the body's centre and top, for the "body"
            normalisation (`humact.skeleton.pipelines.body_normalize`: origin at the centre, unit =
            centre-to-top distance); empty when the layout does not define them.
    """

    name: str
    num_node: int
    inward: tuple[tuple[int, int], ...]
    center: int
    bone_pairs: tuple[tuple[int, int], ...] = field(default=())
    left: tuple[int, ...] = field(default=())
    right: tuple[int, ...] = field(default=())
    dims: int | None = None
    body_center: tuple[int, ...] = field(default=())
    body_top: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        v = self.num_node
        for i, j in self.inward:
            if not (0 <= i < v and 0 <= j < v):
                raise ValueError(f"layout {self.name!r}: edge ({i}, {j}) outside 0..{v - 1}")
        if not 0 <= self.center < v:
            raise ValueError(f"layout {self.name!r}: center {self.center} outside 0..{v - 1}")
        if len(self.left) != len(self.right):
            raise ValueError(f"layout {self.name!r}: left and right have different lengths")
        if self.dims not in (None, 2, 3):
            raise ValueError(f"layout {self.name!r}: dims must be 2, 3 or None, got {self.dims!r}")
        for j in self.body_center + self.body_top:
            if not 0 <= j < v:
                raise ValueError(f"layout {self.name!r}: body joint {j} outside 0..{v - 1}")
        if not self.bone_pairs:
            # Bones follow the graph: each joint minus its parent, the centre a zero bone.
            pairs = dict(self.inward)
            pairs.setdefault(self.center, self.center)
            object.__setattr__(self, "bone_pairs", tuple(sorted(pairs.items())))

    @property
    def outward(self) -> tuple[tuple[int, int], ...]:
        return tuple((j, i) for i, j in self.inward)

    @property
    def self_link(self) -> tuple[tuple[int, int], ...]:
        return tuple((i, i) for i in range(self.num_node))

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation of the joints under a horizontal flip (left <-> right)."""
        perm = list(range(self.num_node))
        for a, b in zip(self.left, self.right):
            perm[a], perm[b] = b, a
        return tuple(perm)


def _one_based(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((i - 1, j - 1) for i, j in pairs)


LAYOUTS: dict[str, Layout] = {
    # COCO-17 (HRNet 2D poses); PYSKL's edges and bone pairs.
    "coco": Layout(
        name="coco",
        num_node=17,
        inward=((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5),
                (10, 8), (8, 6), (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)),
        center=0,
        bone_pairs=((0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6),
                    (9, 7), (10, 8), (11, 0), (12, 0), (13, 11), (14, 12), (15, 13), (16, 14)),
        left=(1, 3, 5, 7, 9, 11, 13, 15),
        right=(2, 4, 6, 8, 10, 12, 14, 16),
        dims=2,
        body_center=(11, 12),  # mid-hips
        body_top=(5, 6),  # mid-shoulders
    ),
    # NTU RGB+D's 25 Kinect v2 joints (3D); centre = spine-shoulder (joint 21, 1-based).
    "nturgb+d": Layout(
        name="nturgb+d",
        num_node=25,
        inward=_one_based([(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7),
                           (9, 21), (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14),
                           (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 8), (23, 8),
                           (24, 12), (25, 12)]),
        center=20,
        # PYSKL's JointToBone list, kept verbatim in meaning: hand-tip bones chain
        # 21 -> 22 -> 7 and 23 -> 24 -> 11 (0-based), unlike the graph's edges.
        bone_pairs=((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20),
                    (9, 8), (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0),
                    (17, 16), (18, 17), (19, 18), (21, 22), (20, 20), (22, 7), (23, 24),
                    (24, 11)),
        left=(4, 5, 6, 7, 12, 13, 14, 15, 21, 22),
        right=(8, 9, 10, 11, 16, 17, 18, 19, 23, 24),
        dims=3,
        body_center=(1,),  # spine middle
        body_top=(20,),  # spine-shoulder
    ),
    # OpenPose-18.
    "openpose": Layout(
        name="openpose",
        num_node=18,
        inward=((4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5),
                (8, 2), (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)),
        center=1,
        bone_pairs=((0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2),
                    (9, 8), (10, 9), (11, 5), (12, 11), (13, 12), (14, 0), (15, 0), (16, 14),
                    (17, 15)),
        left=(5, 6, 7, 11, 12, 13, 15, 17),
        right=(2, 3, 4, 8, 9, 10, 14, 16),
        dims=2,
        body_center=(8, 11),  # mid-hips
        body_top=(1,),  # neck
    ),
    # Kinect v1 20 joints as in NW-UCLA's files: 0 hip centre, 1 spine, 2 shoulder centre,
    # 3 head, 4-7 left shoulder/elbow/wrist/hand, 8-11 right arm, 12-15 left
    # hip/knee/ankle/foot, 16-19 right leg. Edges of CTR-GCN's graph/ucla.py.
    "kinect20": Layout(
        name="kinect20",
        num_node=20,
        inward=_one_based([(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3),
                           (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15),
                           (17, 1), (18, 17), (19, 18), (20, 19)]),
        # The shoulder centre, as NTU's spine-shoulder is the centre of `nturgb+d`.
        center=2,
        left=(4, 5, 6, 7, 12, 13, 14, 15),
        right=(8, 9, 10, 11, 16, 17, 18, 19),
        dims=3,
        body_center=(1,),  # spine
        body_top=(2,),  # shoulder centre
    ),
    # JHMDB's 15 joints: 0 neck, 1 belly, 2 face, 3 r-shoulder, 4 l-shoulder, 5 r-hip,
    # 6 l-hip, 7 r-elbow, 8 l-elbow, 9 r-knee, 10 l-knee, 11 r-wrist, 12 l-wrist,
    # 13 r-ankle, 14 l-ankle.
    "jhmdb15": Layout(
        name="jhmdb15",
        num_node=15,
        inward=((1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1), (7, 3), (8, 4), (9, 5),
                (10, 6), (11, 7), (12, 8), (13, 9), (14, 10)),
        center=0,
        left=(4, 6, 8, 10, 12, 14),
        right=(3, 5, 7, 9, 11, 13),
        dims=2,
        body_center=(1,),  # belly
        body_top=(0,),  # neck
    ),
    # MediaPipe Hands' 21 landmarks (`humact.keypoints.HAND21_EDGES`). PYSKL's 'handmp' graph (its
    # HaGRID hand-gesture model): each finger a chain to the wrist. No left/right joints: a
    # horizontal flip turns a right hand into a left one, it does not swap landmarks.
    "handmp": Layout(
        name="handmp",
        num_node=21,
        inward=HAND21_EDGES,
        center=0,
        dims=2,
    ),
}
LAYOUTS["nw-ucla"] = LAYOUTS["kinect20"]


def get_layout(name: str | Layout) -> Layout:
    """The named layout (``coco``, ``nturgb+d``, ``openpose``, ``kinect20``/``nw-ucla``, ``jhmdb15``, ``handmp``);
    a `Layout` is returned as it is."""
    if isinstance(name, Layout):
        return name
    try:
        return LAYOUTS[name]
    except KeyError:
        raise InputError(f"layout: unknown skeleton layout {name!r}; known: {', '.join(sorted(LAYOUTS))}, "
                         f"or a .toml / .json layout file (docs/custom_dataset.md)") from None


#: Built-in layouts by (joints, coordinate dims), for data that does not name its layout.
LAYOUT_BY_SHAPE: dict[tuple[int, int], str] = {
    (17, 2): "coco", (18, 2): "openpose", (15, 2): "jhmdb15", (25, 3): "nturgb+d", (20, 3): "kinect20",
    (21, 2): "handmp",
}


def infer_layout(num_joints: int, dims: int, source: str = "data") -> str:
    """The built-in layout of `num_joints` joints in `dims` D, or InputError asking for `--layout`."""
    name = LAYOUT_BY_SHAPE.get((num_joints, dims))
    if name is None:
        known = ", ".join(f"{n} ({v} joints, {d}D)" for (v, d), n in sorted(LAYOUT_BY_SHAPE.items()))
        raise InputError(f"{source}: keypoint: {num_joints} joints in {dims}D match no built-in layout ({known}); "
                         f"pass --layout NAME, or --layout FILE with the joints and edges "
                         f"(docs/custom_dataset.md)")
    return name


def layout_to_dict(layout: Layout) -> dict:
    """A layout as plain JSON (what a checkpoint saves for a custom layout and `load_layout_file` reads)."""
    return {"name": layout.name, "num_node": layout.num_node, "inward": [list(e) for e in layout.inward],
            "center": layout.center, "left": list(layout.left), "right": list(layout.right), "dims": layout.dims,
            "body_center": list(layout.body_center), "body_top": list(layout.body_top),
            "bone_pairs": [list(e) for e in layout.bone_pairs]}


def layout_from_dict(d: dict, source: str = "layout") -> Layout:
    """A layout from `layout_to_dict`'s form or a layout file's (`edges` in any direction + `center`)."""
    try:
        if "inward" in d:
            return Layout(name=str(d["name"]), num_node=int(d["num_node"]),
                          inward=tuple(tuple(map(int, e)) for e in d["inward"]), center=int(d["center"]),
                          bone_pairs=tuple(tuple(map(int, e)) for e in d.get("bone_pairs", ())),
                          left=tuple(map(int, d.get("left", ()))), right=tuple(map(int, d.get("right", ()))),
                          dims=d.get("dims"), body_center=tuple(map(int, d.get("body_center", ()))),
                          body_top=tuple(map(int, d.get("body_top", ()))))
        num = int(d.get("num_joints", d.get("num_node")))
        if not 1 <= num <= 1000:
            raise InputError(f"{source}: num_joints: expected 1..1000, got {num}")
        lay = custom_layout(num, [tuple(map(int, e)) for e in d["edges"]], center=int(d.get("center", 0)),
                            name=str(d.get("name", Path(source).stem)), left=tuple(map(int, d.get("left", ()))),
                            right=tuple(map(int, d.get("right", ()))))
        dims = d.get("dims")
        return Layout(name=lay.name, num_node=lay.num_node, inward=lay.inward, center=lay.center, left=lay.left,
                      right=lay.right, dims=None if dims is None else int(dims),
                      body_center=tuple(map(int, d.get("body_center", ()))),
                      body_top=tuple(map(int, d.get("body_top", ()))))
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{source}: not a layout ({type(e).__name__}: {e}); expected num_joints, edges "
                         f"[[a, b], ...], center, and optionally left, right, dims, body_center, body_top") from None


def load_layout_file(path: str | Path) -> Layout:
    """A custom layout from a .toml or .json file (docs/custom_dataset.md has the fields and an example)."""
    import json
    import tomllib

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        d = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the layout file ({e})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a table of layout fields")
    return layout_from_dict(d, str(path))


def resolve_layout(spec: str | Layout) -> Layout:
    """A layout from a built-in name, a .toml / .json layout file, or a `Layout`."""
    if isinstance(spec, Layout):
        return spec
    if spec.endswith((".toml", ".json")):
        return load_layout_file(spec)
    return get_layout(spec)


def custom_layout(
    num_node: int,
    edges: list[tuple[int, int]] | tuple[tuple[int, int], ...],
    *,
    center: int = 0,
    name: str = "custom",
    left: tuple[int, ...] = (),
    right: tuple[int, ...] = (),
) -> Layout:
    """A layout from an edge list, oriented towards ``center``.

    The edges may be given in any direction; they are re-oriented ``(child, parent)`` by a
    breadth-first walk from ``center`` so that ``inward`` points to the centre, as the
    ``stgcn_spatial`` partition and the bone features expect. Joints not reachable from the
    centre keep the direction they were given in.
    """
    edges = [tuple(map(int, e)) for e in edges]
    for e in edges:
        if len(e) != 2 or not all(0 <= x < num_node for x in e):
            raise ValueError(f"custom layout {name!r}: bad edge {e} for {num_node} joints")
    nbrs: dict[int, list[int]] = {i: [] for i in range(num_node)}
    for i, j in edges:
        nbrs[i].append(j)
        nbrs[j].append(i)
    depth = {center: 0}
    frontier = [center]
    while frontier:
        nxt = []
        for u in frontier:
            for w in nbrs[u]:
                if w not in depth:
                    depth[w] = depth[u] + 1
                    nxt.append(w)
        frontier = nxt
    inward = []
    for i, j in edges:
        if i in depth and j in depth and depth[i] < depth[j]:
            i, j = j, i
        inward.append((i, j))
    return Layout(name=name, num_node=num_node, inward=tuple(inward), center=center,
                  left=tuple(left), right=tuple(right))


def edge2mat(link, num_node: int) -> np.ndarray:
    """``(V, V)`` 0/1 matrix with ``A[j, i] = 1`` for every edge ``(i, j)`` (PYSKL's convention)."""
    A = np.zeros((num_node, num_node))
    for i, j in link:
        A[j, i] = 1
    return A


def normalize_digraph(A: np.ndarray, dim: int = 0) -> np.ndarray:
    """Divide each column of ``A`` by its sum (columns summing to 0 stay 0)."""
    deg = A.sum(dim)
    inv = np.zeros_like(deg, dtype=np.float64)
    nz = deg > 0
    inv[nz] = deg[nz] ** -1.0
    return A @ np.diag(inv)


def hop_distance(num_node: int, edges, max_hop: int = 1) -> np.ndarray:
    """``(V, V)`` shortest-path length between joints, ``inf`` beyond ``max_hop``."""
    A = np.eye(num_node)
    for i, j in edges:
        A[i, j] = 1
        A[j, i] = 1
    dist = np.full((num_node, num_node), np.inf)
    reach = np.stack([np.linalg.matrix_power(A, d) for d in range(max_hop + 1)]) > 0
    for d in range(max_hop, -1, -1):
        dist[reach[d]] = d
    return dist


def spatial(layout: Layout) -> np.ndarray:
    """``(3, V, V)``: self links, normalised inward edges, normalised outward edges."""
    v = layout.num_node
    return np.stack((
        edge2mat(layout.self_link, v),
        normalize_digraph(edge2mat(layout.inward, v)),
        normalize_digraph(edge2mat(layout.outward, v)),
    ))


def stgcn_spatial(layout: Layout, max_hop: int = 1) -> np.ndarray:
    """ST-GCN's distance partition: ``(2 * max_hop + 1, V, V)``.

    For each hop distance ``h``, joint ``i`` feeding joint ``j`` at distance ``h`` goes to
    the "close" subset when ``j`` is at least as far from the centre as ``i`` and to the
    "further" subset otherwise (hop 0 has only "close"). Weights come from the
    column-normalised ``max_hop`` neighbourhood.
    """
    v = layout.num_node
    hop = hop_distance(v, layout.inward, max_hop)
    adj = (hop <= max_hop).astype(np.float64)
    norm = normalize_digraph(adj)
    to_center = hop[:, layout.center]
    # closer[j, i]: j is no nearer the centre than i (PYSKL's hop_dis[j, c] >= hop_dis[i, c]).
    closer = to_center[:, None] >= to_center[None, :]
    out = []
    for h in range(max_hop + 1):
        at_h = hop == h
        out.append(np.where(at_h & closer, norm, 0.0))
        if h > 0:
            out.append(np.where(at_h & ~closer, norm, 0.0))
    return np.stack(out)


def binary_adj(layout: Layout) -> np.ndarray:
    """``(1, V, V)`` symmetric 0/1 adjacency (no self loops)."""
    return edge2mat(layout.inward + layout.outward, layout.num_node)[None]


def random_graph(layout: Layout, num_filter: int = 3, init_std: float = 0.02, init_off: float = 0.04,
                 seed: int | None = None) -> np.ndarray:
    """``(num_filter, V, V)`` float64 drawn from ``N(init_off, init_std^2)`` (PYSKL's ``random`` mode).

    PYSKL draws from numpy's global generator; here ``seed`` seeds a generator of its own
    (``None``: fresh entropy), so building a model never touches global random state.
    """
    if num_filter < 1:
        raise ValueError(f"random graph: num_filter must be >= 1, got {num_filter}")
    rng = np.random.default_rng(seed)
    v = layout.num_node
    return rng.standard_normal((num_filter, v, v)) * init_std + init_off


def k_adjacency(A: np.ndarray, k: int, *, with_self: bool = False, self_factor: float = 1.0) -> np.ndarray:
    """``(V, V)`` 0/1: the joints exactly ``k`` hops apart in the graph ``A`` (PYSKL's ``k_adjacency``).

    ``k = 0`` is the identity; ``with_self`` adds ``self_factor`` on the diagonal.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"k_adjacency: A must be a square (V, V) matrix, got {A.shape}")
    eye = np.eye(len(A), dtype=A.dtype)
    if k == 0:
        return eye
    reach = lambda n: np.minimum(np.linalg.matrix_power(A + eye, n), 1)
    out = reach(k) - reach(k - 1)
    if with_self:
        out = out + self_factor * eye
    return out


def multiscale_adjacency(A: np.ndarray, num_scales: int) -> np.ndarray:
    """``(num_scales, V, V)``: for ``k = 0 .. num_scales - 1`` the ``k``-hop graph of ``A`` plus
    self loops, column-normalised (MS-G3D's disentangled multi-scale aggregation)."""
    A = np.asarray(A, dtype=np.float64)
    eye = np.eye(len(A))
    step = A + eye
    # reach_k (0/1: within k hops) grown one product at a time; the same exact 0/1 values as
    # k_adjacency's matrix powers, without recomputing them for every scale.
    out, reach_prev, reach = [eye], eye, np.minimum(step, 1)
    for _ in range(1, num_scales):
        out.append(normalize_digraph(reach - reach_prev + eye))
        reach_prev, reach = reach, np.minimum(reach @ step, 1)
    return np.stack(out)


def spatial_temporal_adjacency(A: np.ndarray, window_size: int) -> np.ndarray:
    """``(w V, w V)``: the graph of a window of ``w`` frames (MS-G3D's ``build_st_graph``).

    Joint ``v`` of every frame is linked to ``v`` and its neighbours in every frame of the
    window: ``A + I`` tiled ``w x w``. Node ``f * V + v`` is joint ``v`` of window frame ``f``.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"spatial_temporal_adjacency: A must be a square (V, V) matrix, got {A.shape}")
    return np.tile(A + np.eye(len(A)), (window_size, window_size))


_MODES = {"spatial", "stgcn_spatial", "binary_adj", "random"}


def adjacency(layout: Layout | str, mode: str = "spatial", max_hop: int = 1, *, num_filter: int = 3,
              init_std: float = 0.02, init_off: float = 0.04, seed: int | None = None) -> np.ndarray:
    """The ``(K, V, V)`` float64 adjacency of ``layout`` in partition ``mode``.

    ``num_filter``, ``init_std``, ``init_off`` and ``seed`` only apply to ``mode='random'``.
    """
    if isinstance(layout, str):
        layout = get_layout(layout)
    if mode == "spatial":
        return spatial(layout)
    if mode == "stgcn_spatial":
        return stgcn_spatial(layout, max_hop)
    if mode == "binary_adj":
        return binary_adj(layout)
    if mode == "random":
        return random_graph(layout, num_filter, init_std, init_off, seed)
    raise ValueError(f"unknown graph mode {mode!r}; known: {sorted(_MODES)}")


class Graph:
    """PYSKL-named wrapper: ``Graph(layout='coco', mode='spatial').A`` is ``(K, V, V)``.

    ``layout`` is a layout name, a :class:`Layout`, or a dict
    ``{"num_node": V, "edges": [[i, j], ...], "center": c}`` for a custom skeleton (the form
    a config file can hold). ``num_filter``, ``init_std``, ``init_off`` (PYSKL's names) and
    ``seed`` shape ``mode='random'`` (DG-STGCN: ``num_filter=8``).
    """

    def __init__(self, layout: str | Layout | dict = "coco", mode: str = "spatial",
                 max_hop: int = 1, *, num_filter: int = 3, init_std: float = 0.02,
                 init_off: float = 0.04, seed: int | None = None) -> None:
        if isinstance(layout, dict):
            missing = {"num_node", "edges"} - set(layout)
            if missing:
                raise ValueError(f"custom graph layout: missing field(s) {sorted(missing)}")
            layout = custom_layout(
                int(layout["num_node"]), [tuple(e) for e in layout["edges"]],
                center=int(layout.get("center", 0)), name=str(layout.get("name", "custom")),
                left=tuple(layout.get("left", ())), right=tuple(layout.get("right", ())))
        elif isinstance(layout, str):
            layout = resolve_layout(layout)
        self.layout: Layout = layout
        self.mode = mode
        self.max_hop = max_hop
        self.num_node = layout.num_node
        self.A: np.ndarray = adjacency(layout, mode, max_hop, num_filter=num_filter, init_std=init_std,
                                       init_off=init_off, seed=seed)

    def __repr__(self) -> str:
        return f"Graph(layout={self.layout.name!r}, mode={self.mode!r}, A={tuple(self.A.shape)})"
