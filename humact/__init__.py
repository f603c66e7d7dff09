"""humact: human-centric video action understanding.

The handful of names a script needs, imported on first use (so `import humact` and `humact --help`
stay fast)::

    import humact

    result = humact.extract_video("clip.mp4")                 # people, poses, tracks, part boxes
    rec = humact.Recognizer.from_checkpoint(humact.DEFAULT_MODEL)
    result.actions = rec.recognize_tracks(result.tracks, frame_shape=(result.meta.height, result.meta.width))
    humact.write_result_json(result, "clip.mp4.json")

Start at ARCHITECTURE.md for the map from a video to a result.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # the stage types
    "VideoMeta": "humact.types", "Detections": "humact.types", "PoseTracks": "humact.types",
    "PartBoxes": "humact.types", "ActionScores": "humact.types", "VideoResult": "humact.types",
    # perception
    "ExtractConfig": "humact.perception.pipeline", "extract_video": "humact.perception.pipeline",
    "make_backend": "humact.perception.pipeline",
    # recognition
    "Recognizer": "humact.recognize.skeleton", "DEFAULT_MODEL": "humact.recognize.skeleton",
    "VideoRecognizer": "humact.recognize.video",
    # training
    "TrainConfig": "humact.config", "load_config": "humact.config", "train_model": "humact.train.run",
    # results and errors
    "read_result_json": "humact.io.results", "write_result_json": "humact.io.results",
    "HumactError": "humact.errors",
    # batch jobs
    "extract": "humact.tasks", "analyze": "humact.tasks",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'humact' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
