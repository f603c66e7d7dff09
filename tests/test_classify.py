"""`humact classify`: video-level recognition with an MMAction2-layout checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import shared_file
from humact.cli import main
from humact.video_models.recognizer import slowonly_r50_recognizer


def test_refuses_to_classify_without_a_checkpoint(capsys):
    video = shared_file("data", "media", "archery_320x240.avi")
    assert main(["classify", str(video), "--model", "slowonly_r50_8x8"]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint is required" in err and "model zoo" in err and "URL" in err
    assert err.count("\n") == 1


def test_rejects_a_checkpoint_of_another_architecture(tmp_path, capsys):
    video = shared_file("data", "media", "archery_320x240.avi")
    ckpt = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"cls_head.fc_cls.weight": torch.zeros(3, 10), "cls_head.fc_cls.bias": torch.zeros(3)}},
               ckpt)
    assert main(["classify", str(video), "--model", "slowonly_r50_8x8", "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "wrong.pth" in err and "missing keys" in err


def test_prints_top_actions_decoding_only_the_sampled_frames(tmp_path, capsys, monkeypatch):
    import humact.video as video_mod

    video = shared_file("data", "media", "archery_320x240.avi")
    torch.manual_seed(0)
    model = slowonly_r50_recognizer(num_classes=3)
    ckpt = tmp_path / "slowonly.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, ckpt)
    labels = tmp_path / "labels.txt"
    labels.write_text("archery\nhug\npool cleaning\n")
    asked = []
    real = video_mod.read_frames

    def spy(path, **kw):
        asked.append(sorted(int(i) for i in kw["indices"]))
        return real(path, **kw)

    monkeypatch.setattr(video_mod, "read_frames", spy)
    out = tmp_path / "scores.json"
    rc = main(["classify", str(video), "--model", "slowonly_r50_8x8", "--checkpoint", str(ckpt),
               "--labels", str(labels), "--clips", "1", "--top", "3", "--json", str(out), "--threads", "2"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "1. " in printed and "3. " in printed
    result = json.loads(out.read_text())
    assert sorted(t["label"] for t in result["top"]) == ["archery", "hug", "pool cleaning"]
    assert sum(result["scores"]) == pytest.approx(1.0, abs=1e-5)
    # one clip of 8 frames every 8: exactly those 8 frames were decoded to RGB
    assert len(asked) == 1 and len(asked[0]) == 8 and asked[0][1] - asked[0][0] == 8


def test_uses_the_normalisation_stored_in_an_mmaction2_checkpoint(tmp_path):
    video = shared_file("data", "media", "archery_320x240.avi")
    torch.manual_seed(0)
    sd = {k: v for k, v in slowonly_r50_recognizer(num_classes=2).state_dict().items()}
    scores = []
    for name, extra in (("plain", {}), ("stored", {"data_preprocessor.mean": torch.zeros(3, 1, 1, 1),
                                                   "data_preprocessor.std": torch.full((3, 1, 1, 1), 255.0)})):
        ckpt = tmp_path / f"{name}.pth"
        torch.save({"state_dict": {**sd, **extra}}, ckpt)
        out = tmp_path / f"{name}.json"
        assert main(["classify", str(video), "--model", "slowonly_r50_4x16", "--checkpoint", str(ckpt),
                     "--clips", "1", "--json", str(out)]) == 0
        scores.append(json.loads(out.read_text())["scores"])
    assert scores[0] != pytest.approx(scores[1], abs=1e-6)
