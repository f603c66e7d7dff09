"""AAGCN, MS-G3D, CTR-GCN, DG-STGCN: PYSKL parity, parameter counts, strict loading, training.

The parity references (``shared/reference/pyskl/{model}_ntu60_hrnet.pt``) were made by PYSKL's
own model code in float32. Logits are compared at 1e-5. Features are compared at a bound
set by the reference's own float32 rounding: our float64 run (the exact function, to ~1e-12)
differs from the reference features by 3.3e-5 (CTR-GCN) to 2.0e-4 (DG-STGCN), so no float32
implementation can meet 1e-5 on them. That float64 run also reproduces, to 1e-9, the gap
between PYSKL's own float64 and float32 logits that the reference recorded
(``meta['logits64_max_abs_gap']``): the functions are the same, not merely close.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from humact.errors import CheckpointError
from humact.skeleton import aagcn, ctrgcn, dgstgcn, msg3d
from humact.skeleton.graph import Graph
from conftest import shared_file

FAMILIES = {"aagcn": aagcn, "msg3d": msg3d, "ctrgcn": ctrgcn, "dgstgcn": dgstgcn}
NAMES = list(FAMILIES)

#: PYSKL's parameter counts with GCNHead(60) on COCO-17 (shared/README.md).
PYSKL_PARAMS = {"aagcn": 3_760_228, "msg3d": 2_975_763, "ctrgcn": 1_436_496, "dgstgcn": 1_674_244}

#: Feature bounds: ~2.5x the reference's own float32 error (see the module docstring).
FEAT_ATOL = {"aagcn": 1e-4, "msg3d": 1e-4, "ctrgcn": 1e-4, "dgstgcn": 5e-4}

#: Small widths for the unit tests (MS-G3D's stages are 1x, 2x, 4x base).
SMALL = {"aagcn": 16, "msg3d": 12, "ctrgcn": 16, "dgstgcn": 16}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The machine is shared, and the references were made at one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _build(name, **kw):
    return getattr(FAMILIES[name], name)(**kw)


def _small(name, num_classes=5, layout="coco", **kw):
    torch.manual_seed(0)
    return _build(name, num_classes=num_classes, layout=layout, base_channels=SMALL[name], **kw)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _open_gates(model):
    """Non-zero adaptive-graph gates (PYSKL initialises them to 0, which zeroes their inputs'
    gradients) and non-trivial BN statistics."""
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[-1] in ("alpha", "beta", "add_coeff"):
            p.data.fill_(0.5)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _reference(name):
    return torch.load(shared_file("reference", "pyskl", f"{name}_ntu60_hrnet.pt"), weights_only=True)


def _reference_model(name, ref):
    model = _build(name, num_classes=60, layout="coco")
    FAMILIES[name].load_pyskl_checkpoint(model, ref)
    return model.eval()


# ---------------------------------------------------------------- parity with PYSKL


@pytest.mark.shared
@pytest.mark.parametrize("name", NAMES)
def test_pyskl_reference_logits_and_probabilities_reproduced(name):
    ref = _reference(name)
    model = _reference_model(name, ref)
    with torch.no_grad():
        feat = model.forward_features(ref["input"])
        logits = model.forward_head(feat)
        prob = model.predict(ref["input"][:, None])
    assert feat.shape == ref["feat"].shape
    assert (logits - ref["logits"]).abs().max() < 1e-5
    assert (prob - ref["prob"]).abs().max() < 1e-5
    assert (feat - ref["feat"]).abs().max() < FEAT_ATOL[name]


@pytest.mark.shared
@pytest.mark.parametrize("name", NAMES)
def test_float64_run_is_pyskls_function_to_rounding(name):
    ref = _reference(name)
    model = _reference_model(name, ref).double()
    with torch.no_grad():
        feat = model.forward_features(ref["input"].double())
        logits = model.forward_head(feat)
    gap = (logits - ref["logits"].double()).abs().max().item()
    assert gap == pytest.approx(ref["meta"]["logits64_max_abs_gap"], abs=1e-9)
    assert (feat - ref["feat"].double()).abs().max() < FEAT_ATOL[name]


@pytest.mark.shared
@pytest.mark.parametrize("name", NAMES)
def test_fixed_graph_buffers_are_built_exactly_as_pyskl_builds_them(name):
    """The checkpoint's non-learnable graphs (MS-G3D's multi-scale and window graphs, the
    backbones' ``A``) equal ours bit for bit, so our graph maths is PYSKL's."""
    sd = _reference(name)["state_dict"]
    model = _build(name, num_classes=60)
    params = {k for k, _ in model.named_parameters()}
    graphs = {k: v for k, v in model.state_dict().items()
              if k not in params and k.rsplit(".", 1)[-1] == "A"}
    assert len(graphs) == {"aagcn": 1, "msg3d": 10, "ctrgcn": 1, "dgstgcn": 0}[name]
    for k, v in graphs.items():
        assert torch.equal(v, sd[k]), k


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_match_pyskl_and_the_variant_table(name):
    model = _build(name, num_classes=60, layout="coco")
    assert _n_params(model) == PYSKL_PARAMS[name] == FAMILIES[name].VARIANTS[name]["num_params"]


@pytest.mark.parametrize("name", NAMES)
def test_base_channels_scales_every_stage(name):
    wide, narrow = _build(name, num_classes=3), _small(name, num_classes=3)
    factor = 96 if name == "msg3d" else 64
    assert wide.backbone.out_channels == 4 * factor
    assert narrow.backbone.out_channels == 4 * SMALL[name]
    assert _n_params(narrow) < _n_params(wide) / 10


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", NAMES)
def test_loader_strips_module_prefix_and_renames_the_mmaction2_head(name):
    model = _small(name)
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    sd["module.cls_head.fc.weight"] = sd.pop("module.cls_head.fc_cls.weight")
    sd["module.cls_head.fc.bias"] = sd.pop("module.cls_head.fc_cls.bias")
    assert set(FAMILIES[name].checkpoint_filter_fn({"state_dict": sd})) == set(model.state_dict())
    fresh = _small(name)
    FAMILIES[name].load_pyskl_checkpoint(fresh, {"state_dict": sd})
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in fresh.state_dict().items())


@pytest.mark.parametrize("name", NAMES)
def test_loader_is_strict_and_names_missing_unexpected_and_misshaped_keys(name):
    model = _small(name)
    sd = model.state_dict()
    key = [k for k in sd if k.endswith(".weight") and sd[k].ndim > 1][3]
    load = FAMILIES[name].load_pyskl_checkpoint
    with pytest.raises(CheckpointError, match="missing keys.*" + key.replace(".", r"\.")):
        load(_small(name), {k: v for k, v in sd.items() if k != key})
    with pytest.raises(CheckpointError, match=r"unexpected keys.*backbone\.extra"):
        load(_small(name), dict(sd, **{"backbone.extra": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="shape mismatch " + key.replace(".", r"\.")):
        load(_small(name), dict(sd, **{key: torch.zeros(2, 2)}))
    with pytest.raises(CheckpointError, match="shape mismatch cls_head"):
        load(_small(name, num_classes=7), sd)


@pytest.mark.shared
@pytest.mark.parametrize("name", NAMES)
def test_reference_checkpoint_does_not_load_into_another_family(name):
    other = NAMES[(NAMES.index(name) + 1) % len(NAMES)]
    with pytest.raises(CheckpointError, match="missing keys"):
        FAMILIES[other].load_pyskl_checkpoint(_build(other, num_classes=60), _reference(name))


# ---------------------------------------------------------------- training and inference


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_reach_every_parameter_from_a_random_batch(name):
    model = _open_gates(_small(name, num_classes=4, layout="nturgb+d")).train()
    x = torch.randn(2, 2, 16, 25, 3)
    feat = model.forward_features(x)
    assert feat.shape == (2, 2, model.backbone.out_channels, 4, 25)
    logits = model.forward_head(feat)
    assert logits.shape == (2, 4)
    F.cross_entropy(logits, torch.tensor([0, 3])).backward()
    assert [k for k, p in model.named_parameters() if p.grad is None] == []
    # Biases of convs that feed a training-mode BN get ~0 by design (the BN removes the mean).
    zero = [k for k, p in model.named_parameters()
            if (p.ndim > 1 or k.rsplit(".", 1)[-1] in ("alpha", "beta", "add_coeff")) and not p.grad.abs().sum() > 0]
    assert zero == []
    assert model.backbone.data_bn.weight.grad.abs().sum() > 0   # the first layer


@pytest.mark.parametrize("name", NAMES)
def test_every_block_is_on_the_path_to_the_logits(name):
    """Perturbing any one block's weights changes the logits: a skipped or mis-wired block fails."""
    model = _open_gates(_small(name)).eval()
    bb = model.backbone
    blocks = (list(bb.gcn) if name in ("aagcn", "dgstgcn") else list(bb.net) if name == "ctrgcn" else
              [getattr(bb, f"{kind}{i}") for i in (1, 2, 3) for kind in ("gcn3d", "sgcn", "tcn")])
    x = torch.randn(1, 2, 12, 17, 3)
    with torch.no_grad():
        before = model(x)
        for i, block in enumerate(blocks):
            saved = [p.detach().clone() for p in block.parameters()]
            for p in block.parameters():
                p.add_(0.2 * torch.randn_like(p))
            assert (model(x) - before).abs().max() > 1e-4, f"block {i} does not reach the logits"
            for p, s in zip(block.parameters(), saved):
                p.copy_(s)
        torch.testing.assert_close(model(x), before)


@pytest.mark.parametrize("name", NAMES)
def test_predict_averages_softmax_over_clips(name):
    model = _open_gates(_small(name, layout="jhmdb15", num_person=1)).eval()
    x = torch.randn(2, 3, 1, 8, 15, 3)
    with torch.no_grad():
        per_clip = torch.softmax(model(x.flatten(0, 1)), dim=1).view(2, 3, -1)
    torch.testing.assert_close(model.predict(x), per_clip.mean(1))


@pytest.mark.parametrize("name", NAMES)
def test_input_with_the_wrong_number_of_joints_is_refused(name):
    with pytest.raises(ValueError, match="joints"):
        _small(name)(torch.randn(1, 2, 8, 25, 3))


@pytest.mark.parametrize("name", NAMES)
def test_two_channel_input_builds_and_runs(name):
    model = _small(name, in_channels=2, layout="handmp", num_person=1).eval()
    assert model(torch.randn(2, 1, 10, 21, 2)).shape == (2, 5)


# ---------------------------------------------------------------- units against their definitions


def test_aagcn_fixed_graph_unit_is_the_sum_of_subset_convolutions():
    torch.manual_seed(0)
    A = torch.tensor(Graph("coco", "spatial").A, dtype=torch.float32)
    unit = aagcn.UnitAAGCN(5, 8, A, adaptive=False, attention=False).eval()
    x = torch.randn(2, 5, 6, 17)
    y = sum(unit.conv_d[k](torch.einsum("nctv,vw->nctw", x, A[k])) for k in range(3))
    torch.testing.assert_close(unit(x), torch.relu(unit.bn(y) + unit.down(x)), atol=1e-5, rtol=1e-5)


def test_ctrgc_aggregates_each_channel_with_its_own_refined_graph():
    torch.manual_seed(0)
    unit = ctrgcn.CTRGC(6, 10).eval()
    x, A = torch.randn(2, 6, 5, 17), torch.rand(17, 17)
    rel = torch.tanh(unit.conv1(x).mean(-2)[..., :, None] - unit.conv2(x).mean(-2)[..., None, :])
    graph = unit.conv4(rel) * 0.7 + A
    expected = torch.einsum("ncuv,nctu->nctv", graph, unit.conv3(x))
    torch.testing.assert_close(unit(x, A, 0.7), expected, atol=1e-5, rtol=1e-5)


def test_msgcn_aggregates_every_scale_then_mixes_channels():
    torch.manual_seed(0)
    A = Graph("coco", "binary_adj").A[0]
    unit = msg3d.MSGCN(4, 3, 8, A).eval()
    x = torch.randn(2, 3, 5, 17)
    support = torch.einsum("kvu,nctv->nkctu", unit.A + unit.PA, x).reshape(2, 12, 5, 17)
    torch.testing.assert_close(unit(x), unit.mlp(support), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("size,stride,dilation", [(3, 1, 1), (5, 2, 1), (3, 2, 2)])
def test_temporal_windows_equal_pyskls_unfold(size, stride, dilation):
    x = torch.randn(2, 4, 11, 17)
    unit = msg3d.UnfoldTemporalWindows(size, stride, dilation)
    pad = unit.padding
    u = torch.nn.Unfold((size, 1), dilation=(dilation, 1), stride=(stride, 1), padding=(pad, 0))(x)
    expected = u.reshape(2, 4, size, -1, 17).permute(0, 1, 3, 2, 4).reshape(2, 4, -1, size * 17)
    assert torch.equal(unit(x), expected)


def _dggcn_definition(unit, x):
    """PYSKL's dggcn forward restated with its einsums."""
    n, c, t, v = x.shape
    k, mid = unit.num_subsets, unit.mid_channels
    A = unit.A[None, :, None, None]
    pre_x = unit.pre(x).reshape(n, k, mid, t, v)
    if unit.ctr is not None or unit.ada is not None:
        tmp = x if "NA" in (unit.ctr, unit.ada) else x.mean(-2, keepdim=True)
        x1 = unit.conv1(tmp).reshape(n, k, mid, -1, v)
        x2 = unit.conv2(tmp).reshape(n, k, mid, -1, v)
    scale = lambda g, p: torch.einsum("nkctuv,k->nkctuv", g, p) if unit.subset_wise else g * p[0]
    if unit.ctr is not None:
        A = scale(dgstgcn._ACTS[unit.ctr_act](x1.unsqueeze(-1) - x2.unsqueeze(-2)), unit.alpha) + A
    if unit.ada is not None:
        sim = torch.einsum("nkctv,nkctw->nktvw", x1, x2)[:, :, None]
        A = scale(dgstgcn._ACTS[unit.ada_act](sim), unit.beta) + A
    A = A.expand(n, k, mid, t, v, v)
    y = torch.einsum("nkctv,nkctvw->nkctw", pre_x, A).reshape(n, -1, t, v)
    return torch.relu(unit.bn(unit.post(y)) + (unit.down(x) if unit.down is not None else x))


@pytest.mark.parametrize("ctr,ada,subset_wise,acts", [
    ("T", "T", False, ("softmax", "tanh")),
    (None, "T", True, ("sigmoid", "tanh")),
    ("NA", None, False, ("softmax", "relu")),
    ("T", "NA", True, ("tanh", "sigmoid")),
    (None, None, False, ("softmax", "tanh")),
])
def test_dggcn_equals_pyskls_einsum_definition(ctr, ada, subset_wise, acts):
    torch.manual_seed(0)
    A = torch.tensor(Graph("coco", "random", num_filter=4, seed=0).A, dtype=torch.float32)
    unit = dgstgcn.DGGCN(6, 16, A, ratio=0.25, ctr=ctr, ada=ada, subset_wise=subset_wise,
                         ada_act=acts[0], ctr_act=acts[1]).eval()
    unit.alpha.data.uniform_(0.5, 1.5)
    unit.beta.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 6, 5, 17)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), _dggcn_definition(unit, x), atol=1e-5, rtol=1e-5)


def test_dgmstcn_adds_the_global_joints_branch_output_scaled_per_joint():
    torch.manual_seed(0)
    unit = dgstgcn.DGMSTCN(12, 12).eval()
    unit.add_coeff.data.uniform_(-1, 1)
    x = torch.randn(2, 12, 8, 17)
    xg = torch.cat([x, x.mean(-1, keepdim=True)], -1)
    out = torch.cat([b(xg) for b in unit.branches], 1)
    feat = out[..., :17] + torch.einsum("nct,v->nctv", out[..., 17], unit.add_coeff[:17])
    torch.testing.assert_close(unit(x), unit.bn(unit.transform(feat)), atol=1e-5, rtol=1e-5)


def test_dgstgcn_random_graph_follows_torch_seed():
    torch.manual_seed(5)
    a = dgstgcn.dgstgcn(num_classes=3, base_channels=16).backbone.gcn[0].gcn.A
    torch.manual_seed(5)
    b = dgstgcn.dgstgcn(num_classes=3, base_channels=16).backbone.gcn[0].gcn.A
    assert a.shape == (8, 17, 17) and torch.equal(a, b)
    assert abs(a.mean().item() - 0.04) < 0.01
