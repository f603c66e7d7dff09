"""Recognition with a trained or imported model: `skeleton.Recognizer` (skeleton and heatmap models of
`humact.zoo`, per-track inference for `analyze`) and `video.VideoRecognizer` (RGB clip models from
MMAction2 checkpoints, for `classify`). Above the model packages, below the commands and the trainer."""
