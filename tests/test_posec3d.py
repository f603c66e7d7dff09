"""PoseConv3D: PYSKL's SlowOnly-R50 on heatmap volumes, its checkpoint layout and parity."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from humact.skeleton.posec3d import checkpoint_filter_fn, load_pyskl_checkpoint, posec3d_slowonly_r50_model
from humact.video_models.recognizer import Recognizer3D
from conftest import shared_file

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model() -> Recognizer3D:
    torch.manual_seed(0)
    return posec3d_slowonly_r50_model(num_classes=60).eval()


@pytest.fixture(scope="module")
def reference():
    return torch.load(shared_file("reference", "pyskl", "posec3d_slowonly_r50_ntu60.pt"), weights_only=True)


def test_parameter_count_matches_pyskl(model):
    # ../shared/reference/pyskl/results.json: params_total 2,024,860 (backbone 1,994,080, head 30,780)
    assert sum(p.numel() for p in model.parameters()) == 2_024_860
    assert sum(p.numel() for p in model.backbone.parameters()) == 1_994_080


def test_key_layout_is_pyskl_layout(model):
    path = shared_file("reference", "pyskl", "posec3d_slowonly_r50_ntu60_state_dict_keys.txt")
    ref = {}
    for line in path.read_text().splitlines():
        k, shape = line.split("\t")
        ref[k] = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == ref


def test_posec3d_is_a_recognizer3d_on_the_heatmap_slowonly_with_an_i3d_head(model):
    from humact.video_models.heads import I3DHead
    from humact.video_models.resnet3d import ResNet3d

    assert type(model) is Recognizer3D and type(model.cls_head) is I3DHead
    assert isinstance(model.backbone, ResNet3d) and model.backbone.in_channels == 17
    assert model.backbone.res_layers == ["layer1", "layer2", "layer3"]


def test_feature_map_halves_time_and_divides_space_by_eight(model):
    with torch.no_grad():
        feat = model.forward_features(torch.zeros(1, 17, 8, 32, 32))
    assert feat.shape == (1, 512, 4, 4, 4)


def test_reproduces_pyskl_features_logits_and_probabilities(model, reference):
    load_pyskl_checkpoint(model, reference)
    with torch.no_grad():
        feat = model.forward_features(reference["input"])
        logits = model.forward_head(feat)
        prob = model.predict(reference["input"])
    # Features reach ~107: float32 convolutions summed in a different order differ by a few
    # ulps (PYSKL's own output is 2e-4 away from a float64 run), so compare relative to the
    # largest magnitude; logits and probabilities to 1e-5 absolute.
    scale = reference["feat"].abs().max()
    assert (feat - reference["feat"]).abs().max() <= 1e-5 * scale
    assert (logits - reference["logits"]).abs().max() <= 1e-5
    assert (prob - reference["prob"]).abs().max() <= 1e-5


def test_channels_last_layout_gives_the_same_logits(reference):
    net = load_pyskl_checkpoint(posec3d_slowonly_r50_model(num_classes=60), reference).eval().to_channels_last()
    with torch.no_grad():
        logits = net(reference["input"])
    assert (logits - reference["logits"]).abs().max() <= 1e-5


def test_loader_accepts_bare_dict_module_prefix_and_old_fc_name(model):
    sd = model.state_dict()
    wrapped = {"state_dict": OrderedDict(
        ("module." + k.replace("cls_head.fc_cls.", "cls_head.fc."), v.clone()) for k, v in sd.items())}
    fresh = posec3d_slowonly_r50_model(num_classes=60)
    load_pyskl_checkpoint(fresh, wrapped)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in sd.items())
    assert list(checkpoint_filter_fn(wrapped)) == list(sd)


def test_loader_names_the_file_and_the_missing_key(model, tmp_path):
    sd = dict(model.state_dict())
    del sd["backbone.layer2.3.conv1.conv.weight"]
    path = tmp_path / "broken.pth"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(ValueError, match=r"broken\.pth.*backbone\.layer2\.3\.conv1\.conv\.weight"):
        load_pyskl_checkpoint(posec3d_slowonly_r50_model(num_classes=60), path)


def test_loader_rejects_a_checkpoint_for_another_class_count(model):
    with pytest.raises(ValueError, match=r"cls_head\.fc_cls\.weight: checkpoint \(60, 512\) vs model \(99, 512\)"):
        load_pyskl_checkpoint(posec3d_slowonly_r50_model(num_classes=99), model.state_dict())


def test_predict_averages_softmax_probabilities_over_clips(model):
    torch.manual_seed(1)
    x = torch.rand(1, 2, 17, 8, 32, 32)
    with torch.no_grad():
        per_clip = model(x[0]).softmax(-1).mean(0, keepdim=True)
        assert torch.allclose(model.predict(x), per_clip, atol=1e-6)


def test_trains_forward_and_backward():
    torch.manual_seed(0)
    net = posec3d_slowonly_r50_model(num_classes=5, dropout=0.0).train()
    loss = torch.nn.functional.cross_entropy(net(torch.rand(2, 17, 8, 32, 32)), torch.tensor([0, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.backbone.conv1.conv.weight.grad.abs().sum() > 0
