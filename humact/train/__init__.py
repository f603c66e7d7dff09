"""Training: the shared trainer (SGD, schedules, checkpoints), used by skeleton and video models."""
