"""Evaluation: AVA frame-mAP, Kinetics-TPS score, recognition metrics and plots."""
