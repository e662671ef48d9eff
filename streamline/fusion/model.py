"""The fusion network (torch): per-modality encoders, three fusion strategies, calibrated heads.

Inputs per window (a batch of ``B`` windows), one masked sequence per modality::

    face   x (B, Tf, 63)  mask (B, Tf)   face vectors (streamline.fusion.extract), ~15 Hz
    voice  x (B, Tv, 769) mask (B, Tv)   voice embeddings (streamline.features.voice_embedding), 2 Hz
    text   x (B, 1, 1537) mask (B, 1)    sentence embedding + VADER valence

``mask`` is True at valid grid points. A modality is *present* in a window when
any of its points is valid. Encoders pool over valid points only, and an absent
modality never enters the fusion as numbers: depending on the strategy it is
removed from the softmax over branches (``late``), excluded from attention by a
key padding mask (``attention``), or replaced by a learned "missing" token with
a presence flag (``concat``). So changing the features of an absent modality
cannot change the output (tested).

Encoders (each gives a ``d_model`` vector):

* voice: the window's hop embeddings pooled exactly into the mean and standard
  deviation of Whisper tiny.en encoder states over the window (768 values),
  standardised with training statistics, MLP (768 -> 128 -> d) with dropout
  (pooled encoder states: Pepino et al., Interspeech 2021);
* face: per-frame MLP (63 -> 96 -> d) on standardised features, masked mean pooling;
* text: standardised, then MLP (1537 -> 128 -> d) with dropout.

Each branch has its own heads (7 logits; valence and arousal through tanh),
used for unimodal training and by late fusion.

Fusion strategies (``FusionConfig.strategy``):

* ``"concat"`` (early fusion): [e_face | e_voice | e_text] with learned missing
  tokens for absent modalities, plus the 3 presence flags, through an MLP.
  Contributions: leave-one-modality-out (see :meth:`FusionNet.forward`).
* ``"attention"``: a learned query token and one token per present modality
  (encoder output + modality embedding) through ``n_layers`` transformer layers
  with a key padding mask; the query token's output feeds the heads.
  Contributions: the last layer's attention of the query token over the
  modality tokens (mean over heads, renormalised to sum to 1).
* ``"late"``: the branch heads' log-probabilities averaged with gate weights
  ``softmax_m(a_m * maxprob_m - b_m * entropy_m + c_m)`` over the present
  modalities (learned a, b, c per modality: the weight follows each branch's
  confidence on this window); valence and arousal likewise. Contributions: the
  gate weights.

Calibration: logits are divided by a temperature chosen per modality subset
(the 7 non-empty subsets, fitted on a validation split by :func:`fit_temperature`,
and the empty one, fixed at 1; Guo et
al., "On Calibration of Modern Neural Networks", ICML 2017). Confidence is the
calibrated maximum probability.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .._optional import require
from ..errors import ConfigError
from ..features.voice_embedding import ENCODER_DIM  # the voice vector: mean, std (ENCODER_DIM each), weight
from .extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM
from .types import MODALITIES, NUM_CLASSES

torch = require("torch", "fusion")
nn = torch.nn
F = torch.nn.functional

__all__ = ["FusionConfig", "FusionNet", "STRATEGIES", "subset_code", "fit_temperature"]

#: The fusion strategies.
STRATEGIES = ("concat", "attention", "late")



@dataclass(frozen=True, slots=True)
class FusionConfig:
    """Architecture of a :class:`FusionNet` (saved as JSON beside the weights).

    Attributes:
        strategy: ``"concat"``, ``"attention"`` or ``"late"`` (module docstring).
        d_model: width of every encoder's output.
        voice_hidden: hidden width of the voice MLP.
        voice_input_dropout: dropout on the standardised pooled voice embedding.
        face_hidden: hidden width of the face frame MLP.
        text_hidden: hidden width of the text MLP.
        fusion_hidden: hidden width of the concat MLP.
        n_heads: attention heads (``attention``).
        n_layers: transformer layers (``attention``).
        dropout: dropout rate in encoders and fusion.
        window_s: the window length the model was trained for, seconds.
        voice_rate_hz: voice items per second the model was trained on (2: one per 0.5 s hop;
            training crops and clip windows are counted in items).
        face_rate_hz: face grid rate the model expects.
    """

    strategy: str = "late"
    d_model: int = 64
    voice_hidden: int = 128
    voice_input_dropout: float = 0.2
    face_hidden: int = 96
    text_hidden: int = 128
    fusion_hidden: int = 128
    n_heads: int = 4
    n_layers: int = 1
    dropout: float = 0.2
    window_s: float = 2.0
    voice_rate_hz: float = 2.0
    face_rate_hz: float = 15.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"FusionConfig.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.d_model < 4 or self.d_model % self.n_heads:
            raise ConfigError(f"FusionConfig.d_model={self.d_model} must be >= 4 and divisible by n_heads={self.n_heads}")
        for name in ("dropout", "voice_input_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"FusionConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.window_s <= 0 or self.voice_rate_hz <= 0 or self.face_rate_hz <= 0:
            raise ConfigError("FusionConfig: window_s, voice_rate_hz and face_rate_hz must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FusionConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise ConfigError)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"FusionConfig: unknown keys {sorted(unknown)}")
        return cls(**d)


def subset_code(present: Any) -> Any:
    """Index 0-7 of a modality subset: face 1 + voice 2 + text 4 (``present`` (B, 3) bool tensor)."""
    p = present.to(torch.long)
    return p[:, 0] + 2 * p[:, 1] + 4 * p[:, 2]


def _masked_mean(x: Any, mask: Any) -> Any:
    """Mean over dim 1 of x (B, T, C) at mask (B, T); 0 where nothing is valid."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class VoiceEncoder(nn.Module):
    """Voice embeddings (B, T, 769) + mask -> (B, d).

    Pools the window's hop items exactly (the frame-weighted mean and standard
    deviation of all its encoder frames, from each hop's mean, std and weight),
    standardises the 768 values with training statistics, then an MLP.
    """

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(2 * ENCODER_DIM))
        self.register_buffer("std", torch.ones(2 * ENCODER_DIM))
        self.fc1 = nn.Linear(2 * ENCODER_DIM, cfg.voice_hidden)
        self.fc2 = nn.Linear(cfg.voice_hidden, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.in_drop = nn.Dropout(cfg.voice_input_dropout)

    def pool(self, x: Any, mask: Any) -> Any:
        """(B, 768) window mean and standard deviation of the encoder frames (unstandardised)."""
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        w = x[:, :, 2 * ENCODER_DIM].clamp_min(0.0) * mask.to(x.dtype)  # (B, T) frames per hop / full hop
        total = w.sum(1, keepdim=True).clamp_min(1e-6)
        w = (w / total).unsqueeze(-1)
        m = x[:, :, :ENCODER_DIM]
        sd = x[:, :, ENCODER_DIM : 2 * ENCODER_DIM]
        mean = (w * m).sum(1)
        var = (w * (sd * sd + m * m)).sum(1) - mean * mean
        return torch.cat([mean, torch.sqrt(var.clamp_min(0.0) + 1e-6)], dim=1)

    def forward(self, x: Any, mask: Any) -> Any:
        z = (self.pool(x, mask) - self.mean) / self.std
        return self.fc2(self.drop(F.gelu(self.fc1(self.in_drop(z)))))


class FaceEncoder(nn.Module):
    """Face vectors (B, T, 63) + mask -> (B, d): per-frame MLP, masked mean pooling."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(FACE_FEATURE_DIM))
        self.register_buffer("std", torch.ones(FACE_FEATURE_DIM))
        self.fc1 = nn.Linear(FACE_FEATURE_DIM, cfg.face_hidden)
        self.fc2 = nn.Linear(cfg.face_hidden, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Any, mask: Any) -> Any:
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        x = (x - self.mean) / self.std
        h = self.fc2(self.drop(F.gelu(self.fc1(self.drop(x)))))
        return _masked_mean(h, mask)


class TextEncoder(nn.Module):
    """Text vector (B, 1, 1537) + mask -> (B, d): standardised with training statistics, then an MLP."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(TEXT_FEATURE_DIM))
        self.register_buffer("std", torch.ones(TEXT_FEATURE_DIM))
        self.fc1 = nn.Linear(TEXT_FEATURE_DIM, cfg.text_hidden)
        self.fc2 = nn.Linear(cfg.text_hidden, cfg.d_model)
        self.drop = nn.Dropout(min(0.5, cfg.dropout * 2))

    def forward(self, x: Any, mask: Any) -> Any:
        x = (_masked_mean(torch.nan_to_num(x, nan=0.0), mask) - self.mean) / self.std
        return self.fc2(self.drop(F.gelu(self.fc1(self.drop(x)))))


class Heads(nn.Module):
    """d -> 7 logits and (valence, arousal) in [-1, 1]."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.cls = nn.Linear(d, NUM_CLASSES)
        self.va = nn.Linear(d, 2)

    def forward(self, h: Any) -> tuple[Any, Any]:
        return self.cls(h), torch.tanh(self.va(h))


class AttnLayer(nn.Module):
    """Pre-norm transformer layer that also returns the attention weights."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d, d))

    def forward(self, x: Any, pad: Any) -> tuple[Any, Any]:
        h = self.norm1(x)
        a, w = self.attn(h, h, h, key_padding_mask=pad, need_weights=True, average_attn_weights=True)
        x = x + a
        x = x + self.ff(self.norm2(x))
        return x, w


class FusionNet(nn.Module):
    """Encoders + fusion + heads; see the module docstring.

    ``forward(face_x, face_mask, voice_x, voice_mask, text_x, text_mask)`` returns
    ``(logits, probs, va, contributions, present)``: calibrated logits (B, 7),
    probabilities (B, 7), valence/arousal (B, 2), contributions (B, 3) over
    :data:`MODALITIES` (0 for absent ones, summing to 1 when any is present) and
    presence (B, 3) bool. Set ``loo_contributions=False`` to skip the extra
    passes of leave-one-out contributions (``concat`` only).
    """

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.face = FaceEncoder(cfg)
        self.voice = VoiceEncoder(cfg)
        self.text = TextEncoder(cfg)
        self.branch_heads = nn.ModuleList([Heads(d) for _ in MODALITIES])
        self.register_buffer("temperature", torch.ones(8))
        self.register_buffer("branch_temperature", torch.ones(len(MODALITIES)))
        self.loo_contributions = True
        if cfg.strategy == "concat":
            self.missing = nn.Parameter(torch.zeros(len(MODALITIES), d))
            self.mlp = nn.Sequential(
                nn.Linear(len(MODALITIES) * (d + 1), cfg.fusion_hidden), nn.GELU(), nn.Dropout(cfg.dropout),
                nn.Linear(cfg.fusion_hidden, d), nn.GELU(),
            )
            self.heads = Heads(d)
        elif cfg.strategy == "attention":
            self.query = nn.Parameter(torch.zeros(1, 1, d))
            self.type_emb = nn.Parameter(torch.randn(len(MODALITIES), d) * 0.02)
            self.layers = nn.ModuleList([AttnLayer(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers)])
            self.norm = nn.LayerNorm(d)
            self.heads = Heads(d)
        else:  # late
            self.gate = nn.Parameter(torch.tensor([[4.0, 1.0, 0.0]] * len(MODALITIES)))

    # -- parts -----------------------------------------------------------------

    def encode(self, face_x: Any, face_mask: Any, voice_x: Any, voice_mask: Any, text_x: Any, text_mask: Any) -> tuple[Any, Any]:
        """Encoder outputs (B, 3, d) and presence (B, 3) bool."""
        present = torch.stack([face_mask.any(1), voice_mask.any(1), text_mask.any(1)], dim=1)
        e = torch.stack(
            [self.face(face_x, face_mask), self.voice(voice_x, voice_mask), self.text(text_x, text_mask)], dim=1
        )
        return e, present

    def branch_outputs(self, e: Any) -> tuple[Any, Any]:
        """Per-branch logits (B, 3, 7) (divided by the branch temperatures) and VA (B, 3, 2)."""
        outs = [h(e[:, i]) for i, h in enumerate(self.branch_heads)]
        logits = torch.stack([o[0] for o in outs], 1) / self.branch_temperature.view(1, -1, 1)
        va = torch.stack([o[1] for o in outs], 1)
        return logits, va

    def fuse(self, e: Any, present: Any) -> tuple[Any, Any, Any]:
        """Uncalibrated fused logits (B, 7), VA (B, 2), intrinsic contributions (B, 3) or None."""
        strategy = self.cfg.strategy
        pf = present.to(e.dtype)
        if strategy == "concat":
            z = torch.where(present.unsqueeze(-1), e, self.missing.unsqueeze(0).expand_as(e))
            z = torch.cat([z.flatten(1), pf], dim=1)
            logits, va = self.heads(self.mlp(z))
            return logits, va, None
        if strategy == "attention":
            b = e.shape[0]
            tokens = torch.cat([self.query.expand(b, 1, -1), e + self.type_emb.unsqueeze(0)], dim=1)
            pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=e.device), ~present], dim=1)
            w = None
            for layer in self.layers:
                tokens, w = layer(tokens, pad)
            logits, va = self.heads(self.norm(tokens[:, 0]))
            assert w is not None
            contrib = w[:, 0, 1:] * pf
            contrib = contrib / contrib.sum(1, keepdim=True).clamp_min(1e-9)
            return logits, va, contrib
        # late
        blog, bva = self.branch_outputs(e)
        logp = F.log_softmax(blog, dim=-1)
        p = logp.exp()
        maxp = p.max(-1).values
        ent = -(p * logp).sum(-1)
        score = self.gate[:, 0] * maxp - self.gate[:, 1] * ent + self.gate[:, 2]
        score = score.masked_fill(~present, -1e4)
        g = torch.softmax(score, dim=1) * pf
        g = g / g.sum(1, keepdim=True).clamp_min(1e-9)
        logits = (g.unsqueeze(-1) * logp).sum(1)
        va = (g.unsqueeze(-1) * bva).sum(1)
        return logits, va, g

    def forward(self, face_x: Any, face_mask: Any, voice_x: Any, voice_mask: Any, text_x: Any, text_mask: Any) -> tuple[Any, Any, Any, Any, Any]:
        e, present = self.encode(face_x, face_mask, voice_x, voice_mask, text_x, text_mask)
        logits, va, contrib = self.fuse(e, present)
        code = subset_code(present)
        logits = logits / self.temperature[code].unsqueeze(-1)
        probs = torch.softmax(logits, dim=-1)
        if contrib is None:
            contrib = self._loo(e, present, probs) if self.loo_contributions else present.to(e.dtype) / present.sum(1, keepdim=True).clamp_min(1).to(e.dtype)
        return logits, probs, va, contrib, present

    def _loo(self, e: Any, present: Any, probs: Any) -> Any:
        """Leave-one-modality-out contributions (concat): the drop of the predicted
        class's probability when the modality is masked, clipped at 0 and normalised
        over present modalities (equal shares when no removal lowers it)."""
        top = probs.argmax(-1, keepdim=True)
        p_top = probs.gather(1, top).squeeze(1)
        deltas = []
        for i in range(len(MODALITIES)):
            keep = present.clone()
            keep[:, i] = False
            lg, _, _ = self.fuse(e, keep)
            lg = lg / self.temperature[subset_code(keep)].unsqueeze(-1)
            p_wo = torch.softmax(lg, -1).gather(1, top).squeeze(1)
            deltas.append((p_top - p_wo).clamp_min(0.0))
        d = torch.stack(deltas, 1) * present.to(e.dtype)
        total = d.sum(1, keepdim=True)
        equal = present.to(e.dtype) / present.sum(1, keepdim=True).clamp_min(1).to(e.dtype)
        # a single present modality gets everything; ties at 0 share equally
        return torch.where(total > 1e-6, d / total.clamp_min(1e-9), equal)


def fit_temperature(logits: Any, labels: Any, *, grid: tuple[float, float, int] = (0.3, 5.0, 95)) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` under ``logits / T``.

    A grid search over log-spaced T (robust, deterministic; Guo et al. 2017 use
    LBFGS on the same one-parameter objective).

    Args:
        logits: (n, 7) uncalibrated logits (torch tensor).
        labels: (n,) int64 class indices.
        grid: (lowest T, highest T, points).

    Returns:
        The best T (1.0 when ``logits`` is empty).
    """
    if logits.shape[0] == 0:
        return 1.0
    lo, hi, n = grid
    best_t, best_nll = 1.0, math.inf
    with torch.no_grad():
        for t in torch.logspace(math.log10(lo), math.log10(hi), n).tolist():
            nll = F.cross_entropy(logits / t, labels).item()
            if nll < best_nll:
                best_t, best_nll = t, nll
    return float(best_t)

