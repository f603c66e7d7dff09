"""Spatio-temporal action detection (`humact detect`): who does what, at every keyframe.

`keyframes.py` (keyframes, clip indices, person boxes from tracks or AVA files), `skeleton.py` (the
offline default), `rgb.py` (MMAction2's AVA detectors: sampling, box mapping, TTA, fusion),
`outputs.py` (AVA CSV, annotated video, timeline PNG), `pipeline.py` (the per-input task).
"""
