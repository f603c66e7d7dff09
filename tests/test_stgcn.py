"""ST-GCN / ST-GCN++: architecture, checkpoint loading and parity with PYSKL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humact.skeleton.graph import Graph
from humact.skeleton.stgcn import (
    UnitGCN, build_model, checkpoint_filter_fn, load_pyskl_checkpoint, stgcn, stgcnpp,
)
from conftest import shared_file


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The machine is shared: one intra-op thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_pyskl():
    # PYSKL's counts (shared/reference/pyskl/results.json) for 60 classes.
    assert _n_params(stgcn(num_classes=60, layout="coco")) == 3_088_704
    assert _n_params(stgcnpp(num_classes=60, layout="coco")) == 1_393_016
    assert _n_params(stgcnpp(num_classes=60, layout="nturgb+d")) == 1_403_144


@pytest.mark.parametrize("adaptive", [None, "init", "importance", "offset"])
@pytest.mark.parametrize("conv_pos", ["pre", "post"])
def test_unit_gcn_equals_the_einsum_definition(adaptive, conv_pos):
    torch.manual_seed(0)
    A = torch.tensor(Graph("coco", "spatial").A, dtype=torch.float32)
    unit = UnitGCN(5, 8, A, adaptive=adaptive, conv_pos=conv_pos, with_res=True).eval()
    if hasattr(unit, "PA"):
        unit.PA.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 5, 6, 17)
    graph = unit.graph()
    if conv_pos == "pre":
        y = unit.conv(x).view(2, 3, 8, 6, 17)
        y = torch.einsum("nkctv,kvw->nctw", y, graph)
    else:
        y = torch.einsum("nctv,kvw->nkctw", x, graph).reshape(2, 15, 6, 17)
        y = unit.conv(y)
    expected = torch.relu(unit.bn(y) + unit.down(x))
    torch.testing.assert_close(unit(x), expected, atol=1e-5, rtol=1e-5)


def test_importance_graph_is_the_fixed_graph_times_a_learnable_mask():
    A = torch.tensor(Graph("coco", "stgcn_spatial").A, dtype=torch.float32)
    unit = UnitGCN(3, 4, A, adaptive="importance")
    assert not isinstance(unit.A, torch.nn.Parameter) and isinstance(unit.PA, torch.nn.Parameter)
    unit(torch.randn(1, 3, 4, 17)).sum().backward()
    assert unit.PA.grad is not None and unit.PA.grad.abs().sum() > 0


def test_forward_and_backward_give_features_logits_and_gradients_everywhere():
    model = stgcnpp(num_classes=10, layout="kinect20")
    x = torch.randn(2, 1, 20, 20, 3)
    feat = model.forward_features(x)
    assert feat.shape == (2, 1, 256, 5, 20)
    logits = model.forward_head(feat)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_predict_averages_softmax_over_clips():
    model = stgcn(num_classes=5, layout="jhmdb15").eval()
    x = torch.randn(1, 3, 1, 8, 15, 3)
    with torch.no_grad():
        per_clip = torch.softmax(model(x[0]), dim=1)
    torch.testing.assert_close(model.predict(x), per_clip.mean(0, keepdim=True))


def test_loader_strips_module_prefix_and_renames_mmaction2_head():
    model = stgcnpp(num_classes=4, layout="coco")
    sd = {("module." + k): v for k, v in model.state_dict().items()}
    sd["module.cls_head.fc.weight"] = sd.pop("module.cls_head.fc_cls.weight")
    sd["module.cls_head.fc.bias"] = sd.pop("module.cls_head.fc_cls.bias")
    converted = checkpoint_filter_fn({"state_dict": sd})
    assert set(converted) == set(model.state_dict())
    load_pyskl_checkpoint(stgcnpp(num_classes=4, layout="coco"), {"state_dict": sd})


def test_loader_is_strict_and_names_the_offending_keys():
    sd = stgcn(num_classes=4, layout="coco").state_dict()
    wrong = stgcnpp(num_classes=4, layout="coco")
    with pytest.raises(ValueError, match="PA"):
        load_pyskl_checkpoint(wrong, sd)
    sd2 = stgcn(num_classes=4, layout="coco").state_dict()
    sd2["backbone.data_bn.weight"] = torch.ones(3)
    with pytest.raises(ValueError, match="data_bn.weight"):
        load_pyskl_checkpoint(stgcn(num_classes=4, layout="coco"), sd2)


PARITY = [
    ("stgcn_ntu60_hrnet", "stgcn", "coco"),
    ("stgcnpp_ntu60_hrnet", "stgcnpp", "coco"),
    ("stgcnpp_ntu60_3dkp", "stgcnpp", "nturgb+d"),
]


@pytest.mark.parametrize("name,variant,layout", PARITY)
def test_pyskl_reference_features_and_logits_reproduced(name, variant, layout):
    ref = torch.load(shared_file("reference", "pyskl", f"{name}.pt"), weights_only=True)
    model = build_model(variant, num_classes=60, layout=layout)
    load_pyskl_checkpoint(model, ref)
    model.eval()
    with torch.no_grad():
        feat = model.forward_features(ref["input"])
        logits = model.forward_head(feat)
        prob = model.predict(ref["input"][:, None])
    assert (feat - ref["feat"]).abs().max() < 1e-5
    assert (logits - ref["logits"]).abs().max() < 1e-5
    assert (prob - ref["prob"]).abs().max() < 1e-5


@pytest.mark.parametrize("name,variant,layout", PARITY)
def test_pyskl_reference_graph_buffers_equal_our_graph(name, variant, layout):
    ref = torch.load(shared_file("reference", "pyskl", f"{name}.pt"), weights_only=True)
    ours = build_model(variant, num_classes=60, layout=layout).state_dict()["backbone.gcn.0.gcn.A"]
    torch.testing.assert_close(ours, ref["state_dict"]["backbone.gcn.0.gcn.A"])


# ---------------------------------------------------------------- multi-stream ensemble

def test_fuse_scores_is_the_weighted_sum():
    from humact.skeleton.ensemble import fuse_scores

    a, b = np.array([[0.9, 0.1]]), np.array([[0.2, 0.8]])
    np.testing.assert_allclose(fuse_scores({"j": a, "b": b}, {"j": 1.0, "b": 2.0}), a + 2 * b)
    with pytest.raises(ValueError, match="weights"):
        fuse_scores([a, b], [1.0])


def test_search_weights_prefers_the_stream_that_is_right():
    from humact.skeleton.ensemble import search_weights

    labels = np.array([0, 1, 1, 0])
    good = np.eye(2)[labels] * 0.6 + 0.2
    bad = np.eye(2)[1 - labels] * 0.9 + 0.05
    w = search_weights({"j": good, "b": bad}, labels)
    assert w["j"] == 1.0 and w["b"] < 0.6


def test_stream_weights_share_a_streams_weight_among_its_models():
    from humact.skeleton.ensemble import stream_weights

    assert stream_weights(["j", "b", "jm", "bm"]) == [0.6, 0.6, 0.4, 0.4]
    assert stream_weights(["bm", "j", "j", "b"]) == [0.4, 0.3, 0.3, 0.6]
    with pytest.raises(ValueError, match="'x'"):
        stream_weights(["j", "x"])


def test_stream_inputs_are_bones_and_motions_of_the_joint_clips():
    from humact.skeleton.ensemble import stream_input

    x = torch.randn(2, 3, 1, 6, 20, 3)
    b = stream_input(x, "kinect20", "b")
    torch.testing.assert_close(b[..., 5, :], x[..., 5, :] - x[..., 4, :])  # left elbow - shoulder
    jm = stream_input(x, "kinect20", "jm")
    torch.testing.assert_close(jm[..., :5, :, :], x[..., 1:, :, :] - x[..., :5, :, :])
    assert stream_input(x, "kinect20", "bm").shape == x.shape


def test_ensemble_fuses_the_streams_probabilities():
    from humact.skeleton.ensemble import MultiStreamEnsemble, stream_input

    torch.manual_seed(0)
    models = {s: stgcnpp(num_classes=3, layout="kinect20").eval() for s in ("j", "b")}
    ens = MultiStreamEnsemble(models, "kinect20", {"j": 1.0, "b": 0.5})
    x = torch.randn(2, 2, 1, 8, 20, 3)
    expected = models["j"].predict(x).numpy() + 0.5 * models["b"].predict(stream_input(x, "kinect20", "b")).numpy()
    np.testing.assert_allclose(ens.predict(x), expected, rtol=1e-6)


# ---------------------------------------------------------------- fused inference twin

def _randomised(model):
    """Non-trivial BN statistics and adaptive graphs, then eval mode."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        if isinstance(m, UnitGCN) and hasattr(m, "PA"):
            m.PA.data.uniform_(0.5, 1.5)
    return model.eval()


def _twin(model):
    """``fuse(model)``, which must be the GCN twin (not the model itself, which would pass any parity test)."""
    from humact.deploy import fuse
    from humact.deploy.stgcn import FusedRecognizerGCN

    fused = fuse(model)
    assert isinstance(fused, FusedRecognizerGCN)
    return fused


# Every combination the twin handles: both variants (9x1 unit_tcn / multi-branch mstcn), both
# conv positions, every adaptive-graph mode, data BN 'VC' / 'MVC' / none, GCN residual on/off,
# a custom MSTCN config (a dilation 2 branch and a 5x1 kernel among others) and mid_channels.
FUSED_CASES = [
    ("stgcn", "coco", {}),
    ("stgcn", "nturgb+d", {"gcn_adaptive": None, "data_bn_type": None}),
    ("stgcnpp", "coco", {}),
    ("stgcnpp", "nturgb+d", {}),
    ("stgcnpp", "jhmdb15", {"gcn_conv_pos": "post", "data_bn_type": "MVC", "gcn_adaptive": "offset"}),
    ("stgcnpp", "coco", {"gcn_adaptive": "importance", "gcn_with_res": False}),
    ("stgcnpp", "coco", {"gcn_adaptive": None, "tcn_mid_channels": 0.25,
                         "tcn_ms_cfg": ((3, 2), (5, 1), ("max", 3), (3, 3), "1x1")}),
    ("stgcnpp", "kinect20", {"tcn_ms_cfg": ((3, 1), (3, 2), (3, 4))}),   # no 1x1 branch
]


@pytest.mark.parametrize("variant,layout,kw", FUSED_CASES)
@pytest.mark.parametrize("persons,frames", [(2, 16), (1, 15), (2, 13)])
def test_fused_model_gives_the_same_features_and_logits(variant, layout, kw, persons, frames):
    """Odd frame counts exercise the stride-2 blocks' boundary frames (the MSTCN rows computed
    on the subsampled input, the dilated taps' zero padding)."""
    torch.manual_seed(0)
    model = _randomised(build_model(variant, num_classes=7, layout=layout, base_channels=16,
                                    num_person=persons, **kw))
    fused = _twin(model)
    x = torch.randn(2, persons, frames, model.backbone.num_node, 3)
    with torch.no_grad():
        torch.testing.assert_close(fused.forward_features(x), model.forward_features(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-5)


def test_fused_model_recorded_passes_follow_new_inputs_and_shapes():
    """The second pass for a shape replays the recorded ops on the new input; a new shape
    records again; results handed out are never overwritten by later passes."""
    torch.manual_seed(0)
    model = _randomised(stgcnpp(num_classes=5, layout="coco", base_channels=16))
    fused = _twin(model)
    xs = [torch.randn(1, 2, 12, 17, 3), torch.randn(1, 2, 12, 17, 3), torch.randn(3, 2, 9, 17, 3)]
    with torch.inference_mode():
        first = fused.forward_features(xs[0])
        kept = first.clone()
    with torch.no_grad():   # buffers made under inference_mode are used outside it
        for x in xs + xs[::-1]:
            torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(fused.forward_features(x), model.forward_features(x), atol=1e-5, rtol=1e-5)
    assert torch.equal(first, kept)


def test_fused_model_runs_big_batches_in_chunks_with_the_same_outputs(monkeypatch):
    from humact.deploy import stgcn as module

    torch.manual_seed(0)
    model = _randomised(stgcnpp(num_classes=5, layout="coco", base_channels=16))
    fused = _twin(model)
    x = torch.randn(7, 2, 12, 17, 3)
    monkeypatch.setattr(module, "WORKSPACE_BYTES", 1_300_000)   # 2 samples a chunk (~0.6 MB each)
    with torch.no_grad():
        for _ in range(2):   # recorded, then replayed (a chunk and the last, smaller one)
            torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(fused.forward_features(x), model.forward_features(x), atol=1e-5, rtol=1e-5)
    spaces = module._WORKSPACES.table[fused]
    assert len(spaces) == 2 and all(k[0][0] < 7 for k in spaces)


def test_fused_model_is_safe_to_call_from_several_threads():
    import threading

    torch.manual_seed(0)
    model = _randomised(stgcnpp(num_classes=5, layout="coco", base_channels=16))
    fused = _twin(model)
    xs = [torch.randn(1, 2, 12, 17, 3) for _ in range(4)]
    with torch.no_grad():
        want = [model(x) for x in xs]
    got, errors = {}, []

    def work(i):
        try:
            for _ in range(5):
                got[i] = fused(xs[i])
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        torch.testing.assert_close(got[i], want[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["copy", "mul", "select", "select_mul", "mm"])
def test_sparse_graph_partitions_are_computed_exactly(kind):
    from humact.deploy.stgcn import _sparse_plan

    g = torch.Generator().manual_seed(0)
    v = 17
    eye = torch.eye(v)
    parent = torch.tensor([0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14])
    inward = torch.zeros(v, v)
    inward[parent[1:], torch.arange(1, v)] = 1.0            # joint w <- its parent: <= 1 per column, root empty
    A = {"copy": 0.5 * eye, "mul": torch.diag(torch.rand(v, generator=g) + 0.5),
         "select": 0.25 * inward, "select_mul": inward * (torch.rand(v, v, generator=g) + 0.5),
         "mm": inward.T.clone()}[kind]                      # a parent with several children: mm
    scale, got_kind, index, values, empty = _sparse_plan(A)
    assert got_kind == kind
    x = torch.randn(50, v, generator=g)
    if kind == "copy":
        z = scale * x
    elif kind == "mul":
        z = x * values
    elif kind == "mm":
        z = x @ A
    else:
        z = x[:, index] * (values if kind == "select_mul" else scale)
        for col in empty or []:
            z[:, col] = 0
    torch.testing.assert_close(z, x @ A, atol=0, rtol=0)


def test_a_gcn_on_a_subclassed_backbone_gets_no_twin_of_the_base_class():
    from humact.deploy import fuse
    from humact.skeleton.stgcn import GCNHead, RecognizerGCN, STGCN

    class Shifted(STGCN):   # a subclass that changes what the network computes
        def forward(self, x):
            return super().forward(x) + 1.0

    model = RecognizerGCN(Shifted(Graph("coco", "spatial"), base_channels=16), GCNHead(3, 64)).eval()
    assert fuse(model) is model


def test_fusing_a_model_in_training_mode_is_refused():
    from humact.deploy import fuse

    with pytest.raises(ValueError, match="eval"):
        fuse(stgcn(num_classes=3))


@pytest.mark.parametrize("name,variant,layout", PARITY)
def test_fused_model_reproduces_the_pyskl_reference(name, variant, layout):
    ref = torch.load(shared_file("reference", "pyskl", f"{name}.pt"), weights_only=True)
    model = build_model(variant, num_classes=60, layout=layout)
    load_pyskl_checkpoint(model, ref)
    fused = _twin(model.eval())
    feat = fused.forward_features(ref["input"])
    assert (feat - ref["feat"]).abs().max() < 1e-5
    assert (fused.forward_head(feat) - ref["logits"]).abs().max() < 1e-5


def test_fusing_leaves_the_source_model_unchanged():
    torch.manual_seed(0)
    model = stgcnpp(num_classes=5, layout="coco").eval()
    for m in model.modules():  # a transform BN that is not the identity, to be folded
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _twin(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
