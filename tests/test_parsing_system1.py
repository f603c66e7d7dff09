"""System 1: labels per head, weighted fusion of a head's streams, states spread from labels."""

import numpy as np

from humact.parsing.dataset import TpsDataset, TpsVideo
from humact.parsing.system1 import HEADS, System1, head_labels
from humact.types import PoseTracks


class _Fixed:
    """A stand-in recogniser returning fixed probabilities (and recording what it was given)."""

    def __init__(self, classes, probs):
        self.classes, self.probs, self.name, self.seen = tuple(classes), np.asarray(probs, np.float32), "fixed", None

    def predict_keypoints(self, kp, score, img_shape):
        self.seen = (kp.shape, img_shape)
        return self.probs


def test_head_labels():
    frames = {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {
        "left_foot": {"box": [0, 0, 1, 1], "verb": "kick"}, "right_foot": {"box": [0, 0, 1, 1], "verb": "kick"},
        "head": {"box": [0, 0, 1, 1], "verb": "none"}}}]}}
    ds = TpsDataset([TpsVideo("v", "soccer", frames)], ("soccer",))
    labels = head_labels(ds)
    assert set(labels) == set(HEADS) and labels["foot"] == {"v": "soccer_Foot_kick"}
    assert labels["action"] == {"v": "soccer"} and labels["hand"] == {"v": "soccer_Hand_none"}


def test_fusion_weights_decide_and_states_come_from_labels():
    tracks = PoseTracks(track_ids=np.array([0]), keypoints=np.zeros((1, 6, 17, 2), np.float32),
                        keypoint_scores=np.ones((1, 6, 17), np.float32), boxes=np.ones((1, 6, 4), np.float32),
                        box_scores=np.ones((1, 6), np.float32), valid=np.array([[False, True, True, True, True, False]]))
    heads = {}
    for h in HEADS:
        if h == "action":
            classes = ("run", "swim")
        else:
            classes = (f"run_{h.capitalize()}_none", f"swim_{h.capitalize()}_stroke")
        # stream j prefers class 0 a little, stream b prefers class 1 a lot
        heads[h] = [(_Fixed(classes, [0.6, 0.4]), 1.0), (_Fixed(classes, [0.1, 0.9]), 1.0)]
    s1 = System1(heads)
    out = s1.predict(tracks, (240, 320))
    assert out["action"] == "swim" and out["states"] == {h: "stroke" for h in HEADS[:-1]}
    assert heads["head"][0][0].seen == ((1, 4, 17, 2), (240, 320))     # the frames someone was seen in
    # weight stream j 5x: 5 * 0.6 + 0.1 = 3.1 > 5 * 0.4 + 0.9 = 2.9 -> run
    for h in HEADS:
        heads[h] = [(heads[h][0][0], 5.0), heads[h][1]]
    out = System1(heads).predict(tracks, (240, 320))
    assert out["action"] == "run" and out["states"]["foot"] == "none"
    np.testing.assert_allclose(out["action_scores"]["run"], 5 * 0.6 + 0.1, rtol=1e-6)
