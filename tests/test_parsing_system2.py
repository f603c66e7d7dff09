"""System 2: part windows, relevance and state heads, the language-prior product, the LSTM action head."""

import numpy as np
import pytest
import torch

from humact.keypoints import PART_NAMES
from humact.parsing.system2 import PartStateNet, System2, _collate, part_windows, system2_loss
from humact.types import PoseTracks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tracks(t=20):
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 200, (1, t, 17, 2)).astype(np.float32)
    return PoseTracks(track_ids=np.array([3]), keypoints=kp, keypoint_scores=np.ones((1, t, 17), np.float32),
                      boxes=np.tile(np.array([100, 100, 200, 200], np.float32), (1, t, 1)),
                      box_scores=np.ones((1, t), np.float32), valid=np.ones((1, t), bool))


def test_part_windows_hold_each_parts_joints():
    from humact.perception.parts import PART_KEYPOINTS, person_scale

    tr = _tracks()
    x = part_windows(tr, 0, 0, window=8)
    assert x.shape == (10, 8, 5, 3)
    s = person_scale(tr)[0, 0]
    # window centred on frame 0, clamped: its first 4 entries repeat frame 0, entry 4 is frame 0 itself
    hip = PART_NAMES.index("hip")
    np.testing.assert_allclose(x[hip, 4, :2, :2], (tr.keypoints[0, 0, list(PART_KEYPOINTS["hip"])] - 150) / s, rtol=1e-5)
    assert (x[hip, :, 2:] == 0).all()             # hip has 2 joints: the rest is padding
    assert (x[PART_NAMES.index("head"), :, :, 2] == 1).all()


def test_heads_and_language_product():
    torch.manual_seed(0)
    s, a = 4, 3
    e = torch.randn(10, s, 384)
    net = PartStateNet(s, a, embeddings=e).eval()
    x = torch.randn(2, 10, 16, 5, 3)
    out = net(x)
    assert out["relevance"].shape == (2, 10) and out["states"].shape == (2, 10, s) and out["action"].shape == (2, a)
    p = torch.rand(2, 10, s)
    f = net.language_prior(p)
    # f_lang of part 7 = sum_s P(s) E[7, s]
    torch.testing.assert_close(f[1, 7], (p[1, 7, :, None] * e[7]).sum(0))
    # the LSTM reads the parts in order: changing only the last part changes the action logits
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(net(x2)["action"], out["action"])
    # without language the branch is absent
    plain = PartStateNet(s, a)
    assert not plain.language and plain.lstm.input_size == 64 and net.lstm.input_size == 128


def test_loss_counts_only_annotated_parts_and_trains():
    torch.manual_seed(0)
    s, a = 3, 2
    net = PartStateNet(s, a)
    rng = np.random.default_rng(1)
    items = []
    for i in range(8):
        rel = np.zeros(10, np.float32)
        rel[:5] = 1
        onehot = np.zeros((10, s), np.float32)
        onehot[:5, 1] = 1
        onehot[5:, 0] = 1
        ann = np.zeros(10, bool)
        ann[:8] = True
        items.append((rng.normal(size=(10, 16, 5, 3)).astype(np.float32) + i % 2, rel, onehot, ann, i % 2))
    batch = _collate(items)
    # changing the targets of unannotated parts (8, 9) does not change the loss
    net.eval()
    l1 = system2_loss(net, batch)
    other = list(batch)
    other[1] = batch[1].clone()
    other[1][:, 8:] = 1 - other[1][:, 8:]
    assert torch.isclose(l1, system2_loss(net, tuple(other)))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    first = system2_loss(net, batch).item()
    for _ in range(30):
        opt.zero_grad()
        loss = system2_loss(net, batch)
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_save_load_and_predict(tmp_path):
    torch.manual_seed(0)
    states = ("bend", "none", "wave")
    net = PartStateNet(3, 2, embeddings=np.random.default_rng(0).normal(size=(10, 3, 384))).eval()
    with torch.no_grad():
        net.relevance[-1].bias.fill_(-50.0)        # nothing relevant -> every part "none"
    sys2 = System2(net, states, ("a", "b"))
    sys2.save(tmp_path / "s2.safetensors")
    again = System2.load(tmp_path / "s2.safetensors")
    tr = _tracks()
    per_frame, act = again.predict_person(tr, 0, [0, 5])
    assert per_frame[0] == {p: "none" for p in PART_NAMES} and act.shape == (2, 2)
    with torch.no_grad():
        again.model.relevance[-1].bias.fill_(50.0)  # everything relevant -> never "none"
    per_frame, _ = again.predict_person(tr, 0, [0])
    assert set(per_frame[0].values()) <= {"bend", "wave"}
    # a part only takes the states its group was annotated with
    limited = System2(again.model, states, ("a", "b"), allowed={p: ["wave"] for p in PART_NAMES})
    limited.save(tmp_path / "s2b.safetensors")
    per_frame, _ = System2.load(tmp_path / "s2b.safetensors").predict_person(tr, 0, [0, 1])
    assert all(set(f.values()) == {"wave"} for f in per_frame)


def test_allowed_states_by_group():
    from humact.parsing.dataset import TpsVideo
    from humact.parsing.system2 import allowed_states

    frames = {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {
        "left_hand": {"box": [0, 0, 1, 1], "verb": "hold"}, "head": {"box": [0, 0, 1, 1], "verb": "nod"}}}]}}
    got = allowed_states([TpsVideo("v", "a", frames)])
    assert got["right_hand"] == ["hold"] and got["head"] == ["nod"] and got["left_foot"] == []
