"""`humact parse` / `humact parse-train` on bad input: one line on stderr naming the file, exit code 2."""

import json

import pytest

from humact.cli import main


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_parse_without_a_trained_model(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    code, err = _run(["parse", str(video), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err) == 1 and "parse.json" in err[0] and "parse-train" in err[0]


def test_parse_with_a_foreign_manifest(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "parse.json").write_text(json.dumps({"schema": "other"}))
    code, err = _run(["parse", str(tmp_path), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err) == 1 and "field schema" in err[0]


def test_parse_asks_for_a_system_that_was_not_trained(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "baseline.json").write_text(json.dumps({"a": {"head": "none"}}))
    (tmp_path / "run" / "parse.json").write_text(json.dumps({"schema": "humact.parse-model v1", "actions": ["a"],
                                                              "baseline": "baseline.json"}))
    code, err = _run(["parse", str(tmp_path), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "o"),
                      "--states", "system2"], capsys)
    assert code == 2 and len(err) == 1 and "no system2" in err[0]


@pytest.mark.parametrize("content, match", [
    (None, "no Kinetics-TPS videos"),
    ({"v": {"img_00001.json": {"humans": [{"box": [0, 0, 1], "parts": {}}]}}}, "field box"),
])
def test_parse_train_bad_data(tmp_path, capsys, content, match):
    data = tmp_path / "tps"
    data.mkdir()
    if content is not None:
        (data / "gt_vid_result.json").write_text(json.dumps({"v": "a"}))
        (data / "gt_part_result.json").write_text(json.dumps(content))
    code, err = _run(["parse-train", "--data", str(data), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err) == 1 and match in err[0]


def test_parse_baseline_without_an_action_source(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "baseline.json").write_text(json.dumps({"a": {"head": "none"}}))
    (tmp_path / "run" / "parse.json").write_text(json.dumps({"schema": "humact.parse-model v1", "actions": ["a"],
                                                              "baseline": "baseline.json"}))
    # the baseline predicts states once an action is predicted: with neither system trained, refused
    code, err = _run(["parse", str(tmp_path), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "o"),
                      "--states", "baseline"], capsys)
    assert code == 2 and len(err) == 1 and "--action" in err[0]


def test_parse_train_unknown_part_names(tmp_path, capsys):
    data = tmp_path / "tps"
    data.mkdir()
    (data / "gt_vid_result.json").write_text(json.dumps({"v": "a"}))
    human = {"box": [0, 0, 9, 9], "parts": {"torso": {"box": [0, 0, 1, 1], "verb": "none"}}}
    (data / "gt_part_result.json").write_text(json.dumps({"v": {"img_00001.json": {"humans": [human]}}}))
    code, err = _run(["parse-train", "--data", str(data), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err) == 1 and "'torso'" in err[0] and "field parts" in err[0]


def test_parse_train_unknown_recognizer(tmp_path, capsys):
    code, err = _run(["parse-train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--recognizer", "nope"],
                     capsys)
    assert code == 2 and len(err) == 1 and "--recognizer" in err[0] and "ircsn_r50" in err[0]
