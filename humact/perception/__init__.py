"""Perception: person detection, 2D pose, tracking, pose-refined boxes and body parts."""
