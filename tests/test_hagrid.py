"""PYSKL's published HaGRID hand-gesture ST-GCN++ (``shared/models/pyskl_hagrid_stgcnpp.pth``).

The model is ST-GCN++ on the ``handmp`` graph (21 MediaPipe hand joints), 2 input channels
(x, y in MediaPipe's normalised coordinates), 6 stages with the one stride-2 / widening
stage last (64 -> 128 channels), one person, 40 classes. ``stgcnpp_hagrid.pt`` holds PYSKL's
outputs for four clips (each run at batch 1), the raw keypoints three of them came from, the
class names and the graph.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humact.skeleton.graph import Graph, get_layout
from humact.skeleton.pipelines import format_gcn_input, gen_ske_feat, pose_decode, pre_normalize_2d, \
    uniform_sample_indices
from humact.skeleton.stgcn import load_pyskl_checkpoint, stgcnpp
from conftest import shared_file

pytestmark = pytest.mark.shared


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ref():
    return torch.load(shared_file("reference", "pyskl", "stgcnpp_hagrid.pt"), weights_only=True)


def hagrid_model() -> torch.nn.Module:
    """The HaGRID config (``ref['cfg']``) as builder arguments."""
    return stgcnpp(num_classes=40, layout="handmp", in_channels=2, num_person=1, num_stages=6,
                   down_stages=(6,), inflate_stages=(6,))


@pytest.fixture(scope="module")
def model():
    m = hagrid_model()
    load_pyskl_checkpoint(m, shared_file("models", "pyskl_hagrid_stgcnpp.pth"))
    return m.eval()


def test_checkpoint_loads_strictly_with_pyskls_parameter_count(model):
    assert sum(p.numel() for p in model.parameters()) == 197_478
    assert model.backbone.out_channels == 128


@pytest.mark.parametrize("row", range(4))
def test_pyskl_features_logits_and_probabilities_reproduced_on_every_clip(model, ref, row):
    x = ref["input"][row:row + 1]
    with torch.no_grad():
        feat = model.forward_features(x)
        logits = model.forward_head(feat)
        prob = model.predict(x[:, None])
    assert (feat - ref["feat"][row:row + 1]).abs().max() < 1e-5
    assert (logits - ref["logits"][row:row + 1]).abs().max() < 1e-5
    assert (prob - ref["prob"][row:row + 1]).abs().max() < 1e-5


def test_class_names_and_top_classes(model, ref):
    names = ref["class_names"]
    assert len(names) == 40 and names[14] == "Stop Sign" and names[34] == "Peace"
    with torch.no_grad():
        top = model(ref["input"]).argmax(1).tolist()
    # seeded randn -> Peace, the synthetic open palm (10 frames and 6 looped) -> Stop Sign.
    assert [names[i] for i in top[:3]] == ["Peace", "Stop Sign", "Stop Sign"]


def test_handmp_graph_is_the_reference_graph(ref):
    layout = get_layout("handmp")
    assert [list(e) for e in layout.inward] == [list(e) for e in ref["layout"]]
    assert layout.num_node == ref["layout_info"]["num_node"] and layout.center == ref["layout_info"]["center"]
    A = torch.tensor(Graph("handmp", "spatial").A, dtype=torch.float32)
    torch.testing.assert_close(A, ref["layout_info"]["A"].float(), atol=0, rtol=0)


@pytest.mark.parametrize("name", ["synthetic_palm_10f", "synthetic_palm_6f", "demo_empty_zeros"])
def test_test_pipeline_turns_raw_keypoints_into_the_reference_input(ref, name):
    """PreNormalize2D(threshold=0, mode='auto'), GenSkeFeat j, UniformSample 10 (shorter clips
    looped), PoseDecode, FormatGCNInput(num_person=1): the config's test pipeline."""
    raw = ref["raw_keypoint"][name].numpy()
    kp = pre_normalize_2d(raw, (1, 1), threshold=0, mode="auto")
    kp = gen_ske_feat(kp, None, "handmp", ("j",))
    inds = uniform_sample_indices(kp.shape[1], 10, num_clips=1, test_mode=True)
    kp, _ = pose_decode(kp, None, inds)
    x = format_gcn_input(kp, num_person=1, num_clips=1)
    row = ref["input_names"].index(name)
    np.testing.assert_array_equal(x, ref["input"][row:row + 1].numpy())
