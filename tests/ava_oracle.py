"""Test oracle: a plain, slow re-statement of the official ActivityNet AVA evaluator.

Written from the semantics of `get_ava_performance.py` and its object_detection utilities
(per_image_evaluation, object_detection_evaluation, metrics, np_box_ops), one keyframe
and one class at a time with Python loops, to check `humact.eval.ava` against on small
inputs. It is deliberately not vectorised and not clever.
"""

from __future__ import annotations

import csv
import heapq
from collections import defaultdict

import numpy as np


def image_key(video, ts, semantics):
    if semantics == "activitynet-2019":
        return "%s,%04d" % (video, int(ts))
    return "%s,%.6f" % (video, float(ts))


def read_labelmap(path):
    ids, names, name = [], {}, ""
    with open(path) as f:
        for line in f:
            if line.strip().startswith("name:"):
                name = line.split('"')[1]
            elif line.strip().startswith("id:") or line.strip().startswith("label_id:"):
                i = int(line.strip().split(" ")[-1])
                ids.append(i)
                names[i] = name
    return ids, names


def read_csv(path, whitelist, capacity, semantics, empty_keys=None):
    entries = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) == 2 and empty_keys is not None:
                empty_keys.append(image_key(row[0], row[1], semantics))
                continue
            assert len(row) in (7, 8), row
            key = image_key(row[0], row[1], semantics)
            x1, y1, x2, y2 = (float(v) for v in row[2:6])
            action = int(row[6])
            if whitelist and action not in whitelist:
                continue
            score = float(row[7]) if len(row) == 8 else 1.0
            if capacity < 1 or len(entries[key]) < capacity:
                heapq.heappush(entries[key], (score, action, y1, x1, y2, x2))
            elif score > entries[key][0][0]:
                heapq.heapreplace(entries[key], (score, action, y1, x1, y2, x2))
    out = {}
    for key in entries:
        out[key] = sorted(entries[key], key=lambda t: -t[0])
    return out


def iou_matrix(d, g):
    """np_box_ops.iou for (N, 4) and (M, 4) boxes [y1, x1, y2, x2]."""
    ih = np.maximum(np.zeros((len(d), len(g))),
                    np.minimum(d[:, 2:3], g[:, 2][None]) - np.maximum(d[:, 0:1], g[:, 0][None]))
    iw = np.maximum(np.zeros((len(d), len(g))),
                    np.minimum(d[:, 3:4], g[:, 3][None]) - np.maximum(d[:, 1:2], g[:, 1][None]))
    inter = ih * iw
    a1 = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    a2 = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    return inter / (a1[:, None] + a2[None, :] - inter)


def evaluate(gt_path, det_path, labelmap_path, exclusions_path=None, semantics="activitynet-2019", cap=50):
    """Per-class AP {id: ap} and mAP, as the official evaluator computes them."""
    ids, _ = read_labelmap(labelmap_path)
    whitelist = set(ids)
    num_class = max(ids)
    excluded = set()
    if exclusions_path:
        with open(exclusions_path, newline="") as f:
            for row in csv.reader(f):
                excluded.add(image_key(row[0], row[1], semantics))
    empty = [] if semantics == "activitynet-head" else None
    gt = read_csv(gt_path, whitelist, 0, semantics, empty)
    gt_images = {}
    num_gt = [0] * num_class
    for key, rows in gt.items():
        if key in excluded:
            continue
        gt_images[key] = rows
        for r in rows:
            num_gt[r[1] - 1] += 1
    for key in empty or []:
        gt_images.setdefault(key, [])
    det = read_csv(det_path, whitelist, 0 if cap is None else cap, semantics)
    scores_per_class = [[] for _ in range(num_class)]
    tp_per_class = [[] for _ in range(num_class)]
    for key, rows in det.items():
        if key in excluded:
            continue
        if semantics == "activitynet-head" and key not in gt_images:
            continue
        rows = [r for r in rows if r[2] < r[4] and r[3] < r[5]]  # invalid boxes removed
        g = gt_images.get(key, [])
        for c in range(1, num_class + 1):
            drows = [r for r in rows if r[1] == c]
            if not drows:
                continue
            grows = [r for r in g if r[1] == c]
            scores = [r[0] for r in drows]
            tp = [False] * len(drows)
            if grows:
                iou = iou_matrix(np.array([r[2:] for r in drows], float), np.array([r[2:] for r in grows], float))
                best = np.argmax(iou, axis=1)
                taken = [False] * len(grows)
                for i in range(len(drows)):
                    j = best[i]
                    if iou[i, j] >= 0.5 and not taken[j]:
                        tp[i] = True
                        taken[j] = True
            scores_per_class[c - 1].append(np.array(scores, float))
            tp_per_class[c - 1].append(np.array(tp, bool))
    ap = np.full(num_class, np.nan)
    for c in range(num_class):
        if num_gt[c] == 0:
            continue
        if scores_per_class[c]:
            s = np.concatenate(scores_per_class[c])
            t = np.concatenate(tp_per_class[c])
        else:
            s, t = np.array([], float), np.array([], bool)
        order = np.argsort(s)[::-1]
        tl = t.astype(int)[order]
        ctp = np.cumsum(tl)
        cfp = np.cumsum(1 - tl)
        precision = ctp.astype(float) / (ctp + cfp)
        recall = ctp.astype(float) / num_gt[c]
        if not precision.size:
            ap[c] = 0.0
            continue
        recall = np.concatenate([[0], recall, [1]])
        precision = np.concatenate([[0], precision, [0]])
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = np.maximum(precision[i], precision[i + 1])
        idx = np.where(recall[1:] != recall[:-1])[0] + 1
        ap[c] = np.sum((recall[idx] - recall[idx - 1]) * precision[idx])
    per_class = {c + 1: float(ap[c]) for c in range(num_class) if not np.isnan(ap[c])}
    return per_class, float(np.nanmean(ap))
