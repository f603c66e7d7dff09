"""The README's documented paths work as written: the "train your own" commands, and the Python example.

The commands are read from README.md itself (so the test follows the text), run in-process on a
tiny labelled folder of videos with a scripted pose backend (no model files needed), and must
succeed with their defaults, ending with `analyze --model` on the trained model.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np

from humact.cli import main
from humact.perception import pipeline
from humact.types import Detections
from humact.video import VideoWriter

README = Path(__file__).resolve().parents[1] / "README.md"
W, H = 120, 160


class WavingOrSquatting:
    """A person whose motion depends on the frame's brightness: bright = waving, dark = squatting."""

    name = "scripted"

    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray, t: int) -> Detections:
        wave = frame.mean() > 100
        kp = np.array([[60 + 4 * (v % 3), 20 + 7 * v] for v in range(17)], np.float32)
        if wave:
            kp[9:11, 1] -= 40 * abs(np.sin(t / 2))  # wrists up and down
        else:
            kp[:13, 1] += 15 * abs(np.sin(t / 3))  # upper body down and up
        box = [[kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()]]
        return Detections(frame=[t], xyxy=box, score=[0.9], keypoints=kp[None],
                          keypoint_scores=np.full((1, 17), 0.9, np.float32))


def _video(path, level, n=24):
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, width=W, height=H, fps=12) as w:
        for _ in range(n):
            w.write(np.full((H, W, 3), level, np.uint8))
    return path


def _train_your_own_commands() -> list[str]:
    text = README.read_text()
    block = re.search(r"To train your own.*?```bash\n(.*?)```", text, re.S)
    assert block, "README: the 'To train your own' block is missing"
    return [line.strip() for line in block.group(1).splitlines() if line.strip().startswith("humact ")]


def test_readme_train_your_own_path_works_end_to_end_with_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "make_backend", lambda config: WavingOrSquatting())
    monkeypatch.chdir(tmp_path)
    for i in range(4):
        _video(tmp_path / "my_videos" / "wave" / f"w{i}.mp4", 200)
        _video(tmp_path / "my_videos" / "squat" / f"s{i}.mp4", 50)
    _video(tmp_path / "my_video.mp4", 200)
    commands = _train_your_own_commands()
    assert [c.split()[1] for c in commands] == ["extract", "train", "analyze"]
    for command in commands:
        args = shlex.split(command)[1:]
        if args[0] == "train":
            args += ["--epochs", "2", "--quiet"]  # the defaults, shortened for the test's time
        assert main(args + (["--no-progress"] if args[0] != "train" else [])) == 0, command
    doc = json.loads((tmp_path / "out" / "my_video.mp4.json").read_text())
    assert doc["actions"]["labels"] == ["squat", "wave"]
    assert doc["tracks"] and len(doc["tracks"][0]["actions"]) == 2
    assert (tmp_path / "out" / "my_video.mp4.annotated.mp4").is_file()


def test_readme_python_example_runs(tmp_path, monkeypatch):
    import humact

    text = README.read_text()
    code = re.search(r"## Python.*?```python\n(.*?)```", text, re.S).group(1)
    _video(tmp_path / "clip.mp4", 200, n=16)
    monkeypatch.setattr(pipeline, "make_backend", lambda config: WavingOrSquatting())
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    result = humact.read_result_json(tmp_path / "clip.mp4.json")
    assert result.actions is not None and result.actions.labels[0] == "catch"
