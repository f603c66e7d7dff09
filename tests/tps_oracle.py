"""Test oracle: a plain re-statement of the Kinetics-TPS challenge's evaluation, pair by pair.

Follows the official evaluation code's structure (scalar IoU on np.float32 boxes filled into
a float32 matrix, square padding with float64 zeros, scipy's Hungarian on 1 - IoU, pairs
kept if IoU > threshold, per-part credit, frame and video averages, the 1..9999 threshold
sum), with the issue's rule for proposals: credit 1/N for N proposals. Slow and literal on
purpose, to check `humact.eval.tps` against.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize


def bbox_iou(a, b):
    xa, ya = max(a[0], b[0]), max(a[1], b[1])
    xb, yb = min(a[2], b[2]), min(a[3], b[3])
    w = xb - xa + 1
    h = yb - ya + 1
    if w <= 0 or h <= 0:
        return -1.0
    inter = w * h
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / float(area_a + area_b - inter)


def match(gt_boxes, pred_boxes, thr):
    n_true, n_pred = gt_boxes.shape[0], pred_boxes.shape[0]
    m = np.zeros((n_true, n_pred), dtype=np.float32)
    for i in range(n_true):
        for j in range(n_pred):
            m[i, j] = bbox_iou(gt_boxes[i, :], pred_boxes[j, :])
    if n_pred > n_true:
        m = np.concatenate((m, np.full((n_pred - n_true, n_pred), 0.0)), axis=0)
    if n_true > n_pred:
        m = np.concatenate((m, np.full((n_true, n_true - n_pred), 0.0)), axis=1)
    rows, cols = scipy.optimize.linear_sum_assignment(1 - m)
    sel = cols < n_pred
    rows, cols = rows[sel], cols[sel]
    ious = m[rows, cols]
    ok = ious > thr
    return {int(r): (int(c), ious_k) for r, c, ious_k in zip(rows[ok], cols[ok], ious[ok])}


def video_psc(gt_frames, pred_frames, human_thr=0.5, part_thr=0.3):
    total = len(gt_frames)
    acc = 0
    for frame in gt_frames:
        gt_humans = gt_frames[frame]["humans"]
        if len(gt_humans) == 0:
            total -= 1
            continue
        if frame not in pred_frames:
            continue
        pred_humans = pred_frames[frame]["humans"]
        matched = match(np.float32([h["box"] for h in gt_humans]),
                        np.float32([h["box"] for h in pred_humans]).reshape(-1, 4), human_thr)
        counts, frame_sum = 0, 0
        for i, gh in enumerate(gt_humans):
            counts += len(gh["parts"])
            human_sum = 0
            if i in matched:
                j, iou = matched[i]
                pred = pred_humans[j]
                for name, gp in gh["parts"].items():
                    correct, num = 0, 0
                    if name in pred["parts"] and iou >= human_thr:
                        verbs = pred["parts"][name]["verb"]
                        boxes = pred["parts"][name]["box"]
                        num = len(verbs)
                        for b, v in zip(boxes, verbs):
                            if bbox_iou(gp["box"], b) >= part_thr and v == gp["verb"]:
                                correct = 1
                                break
                    human_sum += 1.0 * correct / num if num > 0 else 0
            frame_sum += human_sum
        if counts == 0:
            total -= 1
        else:
            acc += 1.0 * frame_sum / counts
    return 1.0 if total == 0 else 1.0 * acc / total


def score(gt_vid, gt_part, pred_vid, pred_part, human_thr=0.5, part_thr=0.3):
    rows = [(video_psc(gt_part[v], pred_part[v], human_thr, part_thr), gt_vid[v] == pred_vid[v]) for v in gt_vid]
    area = 0
    for t in range(1, 10000):
        t = t / 10000
        area += 1.0 / 10000 * (sum(1 for p, c in rows if p >= t and c) / len(rows))
    return area, [p for p, _ in rows]
