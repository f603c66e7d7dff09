"""Skeleton action recognition: graphs, ST-GCN / ST-GCN++, PoseConv3D, PYSKL-style pipelines, datasets."""
