"""Video recognition backbones: ResNet3d (SlowOnly, I3D), SlowFast, CSN, RGBPoseConv3D, RoI heads."""
