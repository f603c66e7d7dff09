"""`humact eval ava` / `humact eval tps` on small files."""

import json

from humact.cli import main
from humact.eval.ava import LabelMap, write_label_map
from humact.eval.tps import write_tps_dir


def test_eval_ava_prints_map_and_writes_json_and_plots(tmp_path, capsys):
    (tmp_path / "gt.csv").write_text("v,0902,0.1,0.1,0.5,0.9,1,0\nv,0902,0.1,0.1,0.5,0.9,2,0\n")
    (tmp_path / "det.csv").write_text("v,0902,0.1,0.1,0.5,0.9,1,0.9\nv,0902,0.6,0.1,0.9,0.9,2,0.8\n")
    write_label_map(tmp_path / "l.pbtxt", LabelMap([1, 2], ["stand", "sit"]))
    rc = main(["eval", "ava", "--gt", str(tmp_path / "gt.csv"), "--pred", str(tmp_path / "det.csv"),
               "--label-map", str(tmp_path / "l.pbtxt"), "--json", str(tmp_path / "r.json"),
               "--plots", str(tmp_path / "plots")])
    assert rc == 0
    assert "0.5000" in capsys.readouterr().out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["mAP"] == 0.5 and [c["ap"] for c in r["per_class"]] == [1.0, 0.0]
    assert (tmp_path / "plots" / "ap_per_class.png").stat().st_size > 0
    assert (tmp_path / "plots" / "pr_curves.png").stat().st_size > 0


def test_eval_ava_bad_row_is_a_user_error_naming_the_line(tmp_path, capsys):
    (tmp_path / "gt.csv").write_text("v,0902,0.1,0.1,0.5,0.9,1,0\n")
    (tmp_path / "det.csv").write_text("v,0902,0.1,0.1,0.5,0.9,1\n")
    write_label_map(tmp_path / "l.pbtxt", LabelMap([1], ["stand"]))
    rc = main(["eval", "ava", "--gt", str(tmp_path / "gt.csv"), "--pred", str(tmp_path / "det.csv"),
               "--label-map", str(tmp_path / "l.pbtxt")])
    assert rc == 2
    assert "det.csv:1" in capsys.readouterr().err


def test_eval_tps_prints_score_and_writes_json(tmp_path, capsys):
    human = {"box": [0, 0, 99, 199], "parts": {"head": {"box": [10, 10, 29, 29], "verb": "look"}}}
    pred = {"box": [0, 0, 99, 199], "parts": {"head": {"box": [[10, 10, 29, 29]], "verb": ["look"]}}}
    write_tps_dir(tmp_path / "gt", "gt", {"a": "run"}, {"a": {"img_00001.json": {"humans": [human]}}})
    write_tps_dir(tmp_path / "pred", "pred", {"a": "run"}, {"a": {"img_00001.json": {"humans": [pred]}}})
    rc = main(["eval", "tps", "--gt-dir", str(tmp_path / "gt"), "--pred-dir", str(tmp_path / "pred")])
    assert rc == 0
    assert "Score (human IoU 0.5, part IoU 0.3): 0.9999" in capsys.readouterr().out
    r = json.loads((tmp_path / "pred" / "tps_eval.json").read_text())
    assert len(r["grid"]) == 25 and r["videos"]["a"] == {"psc": 1.0, "correct": True}


def test_eval_tps_missing_video_is_a_user_error(tmp_path, capsys):
    write_tps_dir(tmp_path / "gt", "gt", {"a": "run"}, {"a": {}})
    write_tps_dir(tmp_path / "pred", "pred", {}, {})
    rc = main(["eval", "tps", "--gt-dir", str(tmp_path / "gt"), "--pred-dir", str(tmp_path / "pred")])
    assert rc == 2 and "'a'" in capsys.readouterr().err
