"""System 2: the part-state network (part features, relevance, states, language priors, LSTM -> action).

One item is one person at one annotated frame. Its input (`part_windows`) is, for each of the 10
parts, the part's own COCO-17 joints (`humact.perception.parts.PART_KEYPOINTS`, padded to 5) over
`window` frames centred on the frame, as (x, y, score) with x, y relative to the person box centre
at that frame in units of the person scale (`parts.person_scale`): (10, W, 5, 3).

`PartStateNet` (random initialisation; trained by `train_system2`):

- per-part visual feature: a skeleton encoder shared by the parts (temporal 1D convolutions over
  the part's joint channels, BN, ReLU, stride 2, global average) plus a learned part embedding:
  f_p (D = 64);
- **relevance**: FC-ReLU-FC per part, sigmoid: P(part p is relevant), supervised with "state is not
  none" (binary cross-entropy on annotated parts);
- **states**: multi-label logits over the state vocabulary, sigmoid (binary cross-entropy against the
  annotated state, annotated parts only);
- **language prior**: E (10, S, 384) holds the all-MiniLM-L6-v2 embedding of each part's state
  texts ("left hand hold something", `language.state_texts`); f_lang,p = E_p^T P(state | p) (384),
  resized by a linear layer to 64 and concatenated with f_p (without E, `language=False`, the branch
  is absent);
- **hierarchical activity graph as a sequence model**: the part representations, gated by their
  relevance, enter an LSTM one part at a time (`PART_NAMES` order); its last output classifies the
  action (cross-entropy).

Prediction (`System2.predict_person`): a part's state is "none" when its relevance is below 0.5,
else its most probable state other than "none" among the states its group was annotated with in
training (`allowed_states`; a hand is never "unbend"); the video's action is the mean of the action
probabilities over every person and predicted frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humact.keypoints import PART_NAMES
from humact.parsing.labels import NONE_STATE

__all__ = ["WINDOW", "part_windows", "allowed_states", "PartStateNet", "system2_items", "system2_loss", "train_system2", "System2"]

WINDOW = 16
MAX_JOINTS = 5


def part_windows(tracks, m: int, t: int, window: int = WINDOW) -> np.ndarray:
    """(10, window, 5, 3) float32 input of person `m` at frame `t` (module docstring)."""
    from humact.perception.parts import PART_KEYPOINTS, person_scale

    total = tracks.num_frames
    idx = np.clip(np.arange(t - window // 2, t - window // 2 + window), 0, total - 1)
    kp = tracks.keypoints[m, idx].astype(np.float64)                  # (W, 17, 2)
    sc = tracks.keypoint_scores[m, idx] * tracks.valid[m, idx, None]  # (W, 17)
    box = tracks.boxes[m, t].astype(np.float64)
    centre = (box[:2] + box[2:]) / 2
    scale = float(person_scale(tracks)[m, t]) if tracks.valid[m, t] else 1.0
    rel = (kp - centre) / max(scale, 1e-3)
    rel = np.where(sc[..., None] > 0, rel, 0.0)
    out = np.zeros((len(PART_NAMES), window, MAX_JOINTS, 3), np.float32)
    for p, name in enumerate(PART_NAMES):
        joints = list(PART_KEYPOINTS[name])
        out[p, :, : len(joints), :2] = rel[:, joints]
        out[p, :, : len(joints), 2] = sc[:, joints]
    return out


def allowed_states(videos) -> dict[str, list[str]]:
    """{part: sorted states annotated for any part of its group} over training `TpsVideo`s."""
    from humact.parsing.labels import part_group

    by_group: dict[str, set] = {}
    for v in videos:
        for frame in v.frames.values():
            for h in frame["humans"]:
                for name, part in h["parts"].items():
                    by_group.setdefault(part_group(name), set()).add(part["verb"])
    return {p: sorted(by_group.get(part_group(p), ())) for p in PART_NAMES}


class PartStateNet(nn.Module):
    """(N, 10, W, 5, 3) -> {"relevance": (N, 10), "states": (N, 10, S), "action": (N, A)} logits."""

    def __init__(self, num_states: int, num_actions: int, *, embeddings: np.ndarray | torch.Tensor | None = None,
                 dim: int = 64, lang_dim: int = 64, hidden: int = 128, num_parts: int = len(PART_NAMES)) -> None:
        super().__init__()
        c = MAX_JOINTS * 3
        self.encoder = nn.Sequential(
            nn.Conv1d(c, dim, 3, padding=1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Conv1d(dim, dim, 3, stride=2, padding=1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Conv1d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(1))
        self.part_embed = nn.Embedding(num_parts, dim)
        self.relevance = nn.Sequential(nn.Linear(dim, dim // 2), nn.ReLU(inplace=True), nn.Linear(dim // 2, 1))
        self.states = nn.Linear(dim, num_states)
        self.language = embeddings is not None
        if self.language:
            e = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32)
            if e.shape[:2] != (num_parts, num_states):
                raise ValueError(f"embeddings: expected ({num_parts}, {num_states}, D), got {tuple(e.shape)}")
            self.register_buffer("E", e)
            self.lang = nn.Linear(e.shape[-1], lang_dim)
        self.lstm = nn.LSTM(dim + (lang_dim if self.language else 0), hidden, batch_first=True)
        self.action = nn.Linear(hidden, num_actions)

    def part_features(self, x: torch.Tensor) -> torch.Tensor:
        n, p, w, j, c = x.shape
        f = self.encoder(x.reshape(n * p, w, j * c).transpose(1, 2)).view(n, p, -1)
        return f + self.part_embed.weight[None]

    def language_prior(self, state_prob: torch.Tensor) -> torch.Tensor:
        """f_lang = E_p^T P(state | p): (N, P, S) probabilities -> (N, P, 384)."""
        return torch.einsum("nps,psd->npd", state_prob, self.E)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.part_features(x)
        rel = self.relevance(f).squeeze(-1)
        states = self.states(f)
        rep = f
        if self.language:
            rep = torch.cat([f, self.lang(self.language_prior(states.sigmoid()))], dim=-1)
        out, _ = self.lstm(rep * rel.sigmoid()[..., None])
        return {"relevance": rel, "states": states, "action": self.action(out[:, -1])}


def system2_items(dataset, results: dict, states: tuple[str, ...], actions: tuple[str, ...],
                  window: int = WINDOW) -> list:
    """Training items (x, relevance (10,), state one-hot (10, S), annotated (10,), action) of every
    annotated human matched to a track (`tracks.match_humans`)."""
    from humact.parsing.dataset import frame_index
    from humact.parsing.tracks import match_humans

    items = []
    for v in dataset.videos:
        tracks = results[v.name].tracks
        a = actions.index(v.action)
        for key, frame in v.frames.items():
            t = frame_index(key, v.name)
            for g, m in match_humans(tracks, t, frame["humans"]).items():
                rel = np.zeros(len(PART_NAMES), np.float32)
                onehot = np.zeros((len(PART_NAMES), len(states)), np.float32)
                annotated = np.zeros(len(PART_NAMES), bool)
                for name, part in frame["humans"][g]["parts"].items():
                    if name in PART_NAMES and part["verb"] in states:
                        p = PART_NAMES.index(name)
                        annotated[p] = True
                        rel[p] = part["verb"] != NONE_STATE
                        onehot[p, states.index(part["verb"])] = 1.0
                items.append((part_windows(tracks, m, t, window), rel, onehot, annotated, a))
    return items


def _collate(items):
    return tuple(torch.from_numpy(np.stack([i[k] for i in items])) for k in range(4)) + (
        torch.tensor([i[4] for i in items], dtype=torch.long),)


def system2_loss(model: PartStateNet, batch) -> torch.Tensor:
    """BCE(relevance) + BCE(states), on annotated parts, + CE(action)."""
    x, rel, onehot, annotated, action = batch
    out = model(x)
    bce = nn.functional.binary_cross_entropy_with_logits
    w = annotated.float()
    n = w.sum().clamp(min=1.0)
    l_rel = (bce(out["relevance"], rel, reduction="none") * w).sum() / n
    l_states = (bce(out["states"], onehot, reduction="none").mean(-1) * w).sum() / n
    return l_rel + l_states + nn.functional.cross_entropy(out["action"], action)


def train_system2(items: list, states, actions, *, embeddings=None, epochs: int = 30, batch_size: int = 32,
                  lr: float = 0.02, seed: int = 0, log=None) -> tuple[PartStateNet, list[float]]:
    from humact.parsing.fit import fit

    torch.manual_seed(seed)
    model = PartStateNet(len(states), len(actions), embeddings=embeddings)
    history = fit(model, items, _collate, system2_loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  log=log, name="system 2")
    return model, history


class System2:
    """A trained `PartStateNet` with its vocabularies (saved as safetensors + JSON)."""

    KIND = "humact.part_state_net"

    def __init__(self, model: PartStateNet, states, actions, window: int = WINDOW,
                 allowed: dict[str, list[str]] | None = None) -> None:
        self.model, self.states, self.actions, self.window = model.eval(), tuple(states), tuple(actions), window
        #: {part: the states it may take} (those its group was annotated with in training); None = any
        self.allowed = allowed
        self._mask = np.ones((len(PART_NAMES), len(self.states)), bool)
        if allowed:
            for p, name in enumerate(PART_NAMES):
                if name in allowed:
                    self._mask[p] = [s in allowed[name] for s in self.states]

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        from humact.io.checkpoints import save_checkpoint

        save_checkpoint(path, self.model.state_dict(), {
            "kind": self.KIND, "states": list(self.states), "actions": list(self.actions), "window": self.window,
            "language": self.model.language, "allowed": self.allowed, **(extra or {})})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "System2":
        from humact.errors import CheckpointError
        from humact.io.checkpoints import load_checkpoint, load_strict

        tensors, meta = load_checkpoint(path)
        src = str(Path(path).with_suffix(".json"))
        if meta.get("kind") != cls.KIND:
            raise CheckpointError(f"{src}: not a System 2 part-state network (field kind)")
        for key in ("states", "actions"):
            if not isinstance(meta.get(key), list) or not all(isinstance(s, str) for s in meta[key]):
                raise CheckpointError(f"{src}: field {key}: expected a list of names")
        emb = tensors.get("E")
        model = PartStateNet(len(meta["states"]), len(meta["actions"]),
                             embeddings=emb.numpy() if emb is not None else None)
        load_strict(model, tensors, str(path))
        allowed = meta.get("allowed")
        if allowed is not None and not (isinstance(allowed, dict) and all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in allowed.values())):
            raise CheckpointError(f"{src}: field allowed: expected {{part: [state, ...]}}")
        return cls(model, meta["states"], meta["actions"], int(meta.get("window", WINDOW)), allowed)

    @torch.no_grad()
    def predict_person(self, tracks, m: int, frames) -> tuple[list[dict[str, str]], np.ndarray]:
        """Per frame of `frames`, {part: state} of person `m`, and the action probabilities (len(frames), A)."""
        if not len(frames):
            return [], np.zeros((0, len(self.actions)), np.float32)
        x = torch.from_numpy(np.stack([part_windows(tracks, m, t, self.window) for t in frames]))
        out = self.model(x)
        rel = out["relevance"].sigmoid().numpy()
        st = out["states"].sigmoid().numpy()
        st[:, ~self._mask] = -1.0
        if NONE_STATE in self.states:
            st[..., self.states.index(NONE_STATE)] = -1.0
        best = st.argmax(-1)
        some = (st >= 0).any(-1)            # a state other than "none" is allowed for the part
        result = []
        for i in range(len(frames)):
            result.append({name: (self.states[best[i, p]] if some[i, p] and (rel[i, p] >= 0.5 or NONE_STATE
                                                                              not in self.states)
                                  else NONE_STATE) for p, name in enumerate(PART_NAMES)})
        return result, out["action"].softmax(-1).numpy()
