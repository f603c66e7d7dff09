"""Keypoint conventions shared by every stage.

humact's 2D pose format is COCO-17 (the format of PYSKL's 2D annotations and of
the HRNet poses most skeleton models are trained on). BlazePose produces 33
landmarks; `BLAZEPOSE_TO_COCO17` picks the 17 that correspond.
"""

from __future__ import annotations

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

#: Bones drawn for a COCO-17 skeleton (and PYSKL's `coco` layout inward edges).
COCO17_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),
    (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16),
)

#: MediaPipe Hands' 21 landmarks as (child, parent) bones: 0 wrist, 1-4 thumb (CMC, MCP, IP, tip),
#: 5-8 index (MCP, PIP, DIP, tip), 9-12 middle, 13-16 ring, 17-20 pinky, each finger a chain to the
#: wrist (PYSKL's `handmp` graph, its inward edges; also what `humact.draw.draw_hands` draws).
HAND21_EDGES: tuple[tuple[int, int], ...] = (
    (1, 0), (2, 1), (3, 2), (4, 3), (5, 0), (6, 5), (7, 6), (8, 7), (9, 0), (10, 9),
    (11, 10), (12, 11), (13, 0), (14, 13), (15, 14), (16, 15), (17, 0), (18, 17), (19, 18), (20, 19),
)

#: Left/right swap used by horizontal flips (PYSKL's left_kp / right_kp for COCO).
COCO17_LEFT: tuple[int, ...] = (1, 3, 5, 7, 9, 11, 13, 15)
COCO17_RIGHT: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16)
COCO17_FLIP_INDEX: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

#: MediaPipe/BlazePose landmark indices, in COCO-17 order.
BLAZEPOSE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

BLAZEPOSE33_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner",
    "right_eye", "right_eye_outer", "left_ear", "right_ear", "mouth_left",
    "mouth_right", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index",
    "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)

#: The 10 body parts of Kinetics-TPS, in humact's order (see `humact.perception.parts`).
PART_NAMES: tuple[str, ...] = (
    "head",
    "hip",
    "left_arm",
    "right_arm",
    "left_hand",
    "right_hand",
    "left_leg",
    "right_leg",
    "left_foot",
    "right_foot",
)
