"""`humact gesture VIDEO_OR_FOLDER` / `humact gesture --camera N` / `humact gesture URL`: hand gestures.

Hands come from MediaPipe's palm detector and hand landmark model (fetched by `humact setup`), are
tracked, and PYSKL's published HaGRID ST-GCN++ labels each hand track on a sliding window of its
last 10 frames (40 gestures: "Like", "Stop Sign", "Swiping Left", ...). For each input REL it writes
to --out (atomically): REL.gestures.json (schema humact.gestures v1: every hand's landmarks and
track, every prediction) and REL.gestures.mp4, the video with hands, labels and the processing
frame rate drawn (default for a single input or a live source; --video / --no-video). A live source
(--camera N, /dev/videoN, rtsp://, http(s)://, udp://, ...) is processed as frames arrive, the
oldest waiting frame dropped when processing falls behind (--no-drop waits), until it ends,
--max-frames, or Ctrl-C.

The model: `humact setup --gestures` downloads PYSKL's demo/hagrid.pth into the model directory;
--model PATH takes a copy anywhere.
"""

from __future__ import annotations

import argparse

HELP = "label hand gestures in a video, a folder or a live camera/stream (MediaPipe hands + PYSKL HaGRID)"


def add_parser(subparsers) -> None:
    from humact.commands import positive_int

    p = subparsers.add_parser("gesture", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VIDEO_OR_FOLDER", nargs="?", default=None,
                   help="a video, a folder searched recursively, or a live source (stream URL, /dev/videoN)")
    p.add_argument("--camera", type=int, metavar="N", default=None, help="read webcam N (/dev/videoN) live")
    p.add_argument("--out", default="humact_out", help="output folder (default: %(default)s)")
    p.add_argument("--model", metavar="PATH", default=None,
                   help="the HaGRID checkpoint (default: the one `humact setup --gestures` fetched)")
    p.add_argument("--max-hands", type=positive_int, default=2,
                   help="hands followed at most (MediaPipe's num_hands; default: %(default)s)")
    p.add_argument("--every", type=positive_int, default=2, metavar="N",
                   help="classify every N-th frame (default: %(default)s, as PYSKL's demo)")
    p.add_argument("--person-search", choices=("auto", "on", "off"), default="auto",
                   help="also look for palms near the wrists of MoveNet's people (auto: on frames with a "
                        "side of 960 px or more, where MediaPipe's whole-frame search misses small hands)")
    p.add_argument("--threads", type=positive_int, default=2, help="threads for the models (default: %(default)s)")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=None,
                   help="write REL.gestures.mp4 (default: yes for a single input or a live source)")
    p.add_argument("--force", action="store_true", help="redo inputs whose outputs already exist")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--no-drop", dest="drop", action="store_false",
                   help="live sources: wait for processing instead of dropping frames (a recorded stream)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from humact.errors import UsageError
    from humact.gestures import GestureOptions, gesture, gesture_live

    if (args.input is None) == (args.camera is None):
        raise UsageError("humact gesture: give either VIDEO_OR_FOLDER (or a stream URL) or --camera N")
    options = GestureOptions(model=args.model, max_hands=args.max_hands, threads=args.threads, every=args.every,
                             person_search=args.person_search, video=args.video, force=args.force,
                             progress=not args.no_progress)
    if args.camera is not None:
        gesture_live(f"/dev/video{args.camera}", args.out, options, max_frames=args.max_frames, drop=args.drop)
        return 0
    from humact.tasks import is_live_source

    if is_live_source(args.input):
        gesture_live(args.input, args.out, options, max_frames=args.max_frames, drop=args.drop)
        return 0
    summary = gesture(args.input, args.out, options, max_frames=args.max_frames)
    if len(summary.done) + len(summary.failed) != 1 or summary.skipped:
        print(summary.line(args.out))
    return 1 if summary.failed else 0
