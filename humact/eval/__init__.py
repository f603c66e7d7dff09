"""Evaluation: AVA frame-mAP, Kinetics-TPS score, recognition metrics and plots.

- `humact.eval.recognition`: top-k accuracy, mean class accuracy, confusion matrix.
- `humact.eval.ava`: AVA CSV / label map / exclusions / proposals readers and writers, and
  the official ActivityNet frame-mAP (activitynet-2019 and activitynet-head), exact and fast.
- `humact.eval.tps`: Kinetics-TPS JSON readers / writers and the official task score.
- `humact.eval.plots`: confusion matrix, per-class AP and precision-recall PNGs.
"""
