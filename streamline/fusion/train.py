"""Training the default fusion model from the corpora in ``shared/data`` (``streamline train``).

What trains what (all splits by person, never by file):

=========  ===============================  ==========================================
part       data                             split
=========  ===============================  ==========================================
voice      ravdess_speech16k (1,260 FLAC,   test actors 01-04, validation 05-07,
encoder    21 actors; calm -> neutral)      training the other 14
face       faces/ (JAFFE 213 + Taiwanese    test and validation subjects listed in
encoder    performers 1,232 stills)         :data:`FACE_TEST_SUBJECTS` / ``_VAL_``
text       MELD train utterances            validation = dialogues with id % 10 == 0;
encoder                                     test = MELD dev
fusion     class-consistent combinations:   combinations drawn within each split
           a voice clip, a face image and   (training / validation / test), each
           a MELD utterance of one class,   modality kept with probability 0.7
           random subsets (modality         (at least one)
           dropout)
=========  ===============================  ==========================================

Stages: (1) each encoder with its own heads on its corpus (balanced sampling
over classes for voice and face, natural frequencies for MELD text, label
smoothing, AdamW, cosine schedule, the best validation macro-F1 epoch kept); (2) per-branch temperatures on the validation split;
(3) the fusion layers on training-split combinations with the encoders frozen;
(4) one temperature per modality subset on validation combinations. Then test
metrics are computed on held-out speakers and saved with the weights.

Voice sees speech only: the hops of a clip in which the VAD finds speech
(:func:`~streamline.fusion.extract.voice_has_speech`), as at inference, where
other hops are masked. Training crops are cut from a clip's speech hops; clips
without any are left out of training and validation, and count as wrong (uniform
probabilities) in the test figures.

Valence and arousal targets: no corpus here has dimensional labels, so the
heads learn each class's place on Russell's circumplex (:data:`VA_PROTOTYPES`,
approximate coordinates after Russell 1980, J. Pers. Soc. Psychol. 39(6)),
scaled by 0.7 for RAVDESS normal-intensity takes; RAVDESS calm keeps its own
place (low arousal) although its class is neutral.

Determinism: torch and numpy are seeded from ``TrainSettings.seed`` (the model's
initialisation), and again at the start of each stage from the seed and the stage
alone, so that a change to one corpus does not move the other branches; torch runs
deterministic algorithms on ``threads`` CPU threads; the same settings and caches
give the same weights.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._optional import require
from ..errors import MediaNotFoundError
from . import cache as C
from .datasets import load_faces, load_meld, load_ravdess
from .extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM, VOICE_FEATURE_DIM
from .metrics import classification_report
from .types import CLASSES, MODALITIES, NUM_CLASSES

__all__ = [
    "DEFAULT_SETTINGS",
    "TrainSettings",
    "VA_PROTOTYPES",
    "RAVDESS_TEST_ACTORS",
    "RAVDESS_VAL_ACTORS",
    "FACE_TEST_SUBJECTS",
    "FACE_VAL_SUBJECTS",
    "train_default_model",
    "clip_window_starts",
]

log = logging.getLogger(__name__)

#: (valence, arousal) per class, approximate circumplex coordinates (Russell 1980).
VA_PROTOTYPES: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.5),
    "angry": (-0.6, 0.8),
    "fearful": (-0.6, 0.6),
    "disgust": (-0.7, 0.3),
    "surprised": (0.3, 0.8),
}
_CALM_VA = (0.3, -0.6)

RAVDESS_TEST_ACTORS = ("01", "02", "03", "04")
RAVDESS_VAL_ACTORS = ("05", "06", "07")
FACE_TEST_SUBJECTS = (
    "JAFFE KA", "JAFFE NM", "TW performer 01", "TW performer 06", "TW performer 11",
    "TW performer 17", "TW performer 22", "TW performer 27",
)  # fmt: skip
FACE_VAL_SUBJECTS = (
    "JAFFE KR", "JAFFE UY", "TW performer 03", "TW performer 09", "TW performer 14", "TW performer 20",
)  # fmt: skip

_CLS_INDEX = {c: i for i, c in enumerate(CLASSES)}


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """How ``streamline train`` trains (saved in the weights' config JSON).

    Attributes:
        data_dir: the ``shared/data`` folder.
        cache_dir: where feature caches go (outside the repository).
        out_dir: where the weights, config and metrics are written.
        seed: seeds numpy and torch.
        strategy: fusion strategy (``concat``, ``attention``, ``late``).
        voice_epochs, face_epochs, text_epochs, fusion_epochs: passes over each
            training set (the fusion epoch is ``fusion_samples`` combinations).
        fusion_samples: combinations per fusion epoch.
        batch_size: examples per step.
        lr: AdamW learning rate (cosine decay to 5 %).
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing.
        va_weight: weight of the valence/arousal MSE in the loss.
        modality_keep: probability of keeping each modality in a fusion example.
        crop_s: (shortest, longest) random voice crop in training, seconds.
        text_balanced: balance MELD classes when training the text branch. Default
            False, natural frequencies: on MELD's validation dialogues they gave the
            better macro-F1 as well as weighted-F1 (0.454 against 0.430 balanced).
        voice_mixup: mixup Beta(a, a) parameter for the voice branch (0: off).
        voice_lr: learning rate of the voice branch.
        compare_strategies: after saving, also train the other fusion strategies on
            the same encoders and add their test metrics to ``metrics.json``.
        threads: torch CPU threads.
        model: architecture overrides (FusionConfig fields) as a dict.
    """

    data_dir: str
    cache_dir: str
    out_dir: str
    seed: int = 0
    strategy: str = "late"
    voice_epochs: int = 100
    face_epochs: int = 60
    text_epochs: int = 20
    fusion_epochs: int = 8
    fusion_samples: int = 4000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    va_weight: float = 0.5
    modality_keep: float = 0.7
    crop_s: tuple[float, float] = (1.5, 3.0)
    text_balanced: bool = False
    voice_mixup: float = 0.0
    voice_lr: float = 3e-3
    compare_strategies: bool = True
    threads: int = 1
    model: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["crop_s"] = list(self.crop_s)
        d["model"] = dict(self.model)
        return d


#: The recipe of the shipped default weights (paths filled in by ``streamline train``).
DEFAULT_SETTINGS = TrainSettings(data_dir="", cache_dir="", out_dir="")

# ------------------------------------------------------------------ data


def clip_window_starts(n_frames: int, win: int, hop: int) -> list[int]:
    """Start frames of the windows covering a clip of ``n_frames`` frames.

    Windows of ``win`` frames every ``hop`` frames from 0 while they fit, plus a
    last window ending at the clip's end when the grid misses it; a clip shorter
    than one window gives one window at 0 (holding the whole clip).
    """
    if n_frames <= win:
        return [0]
    starts = list(range(0, n_frames - win + 1, hop))
    if starts[-1] + win < n_frames:
        starts.append(n_frames - win)
    return starts


@dataclass(slots=True)
class _Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _va_targets(labels: np.ndarray, intensity: np.ndarray | None = None, calm: np.ndarray | None = None) -> np.ndarray:
    va = np.array([VA_PROTOTYPES[str(c)] for c in labels], dtype=np.float32).reshape(-1, 2)
    if calm is not None and calm.any():
        va[calm] = _CALM_VA
    if intensity is not None:
        va[intensity == "normal"] *= 0.7
    return va


class _VoiceData:
    def __init__(self, cache: C.VoiceCache) -> None:
        self.c = cache
        self.y = np.array([_CLS_INDEX[str(c)] for c in cache.labels], dtype=np.int64)
        calm = np.array(["-02-" in Path(str(p)).stem[5:9] for p in cache.paths])
        self.va = _va_targets(cache.labels, cache.intensity, calm)
        spk = cache.speakers.astype(str)
        test = np.isin(spk, RAVDESS_TEST_ACTORS)
        val = np.isin(spk, RAVDESS_VAL_ACTORS)
        # a clip in which the VAD finds no speech has no voice to learn from; test keeps them all
        spoken = np.array([cache.has_speech(i, 0).any() for i in range(len(cache.labels))], dtype=bool)
        self.split = _Split(np.flatnonzero(~test & ~val & spoken), np.flatnonzero(val & spoken), np.flatnonzero(test))

    def speech_hops(self, i: int, v: int) -> np.ndarray:
        """(m, 769) the hops of item ``i``, variant ``v``, that hold speech (the voice the
        model sees); an augmentation that hid all the speech gives the original's."""
        keep = self.c.has_speech(i, v)
        if v and not keep.any():
            return self.speech_hops(i, 0)
        return self.c.get(i, v)[keep]

    def clip_windows(self, i: int, win_frames: int, hop_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The windows ``streamline evaluate`` makes of clip ``i``: (hops, speech mask) on the
        clip's own timeline, those without speech left out."""
        f, keep = self.c.get(i, 0), self.c.has_speech(i, 0)
        return [(f[st : st + win_frames], keep[st : st + win_frames])
                for st in clip_window_starts(f.shape[0], win_frames, hop_frames) if keep[st : st + win_frames].any()]

    def crop(self, i: int, v: int, rng: np.random.Generator | None, crop_frames: int | None) -> np.ndarray:
        f = self.speech_hops(i, v)
        if crop_frames is None or f.shape[0] <= crop_frames:
            return f
        if rng is None:  # centre crop
            s = (f.shape[0] - crop_frames) // 2
        else:
            s = int(rng.integers(0, f.shape[0] - crop_frames + 1))
        return f[s : s + crop_frames]


def _drop_hop(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Voice augmentation on hop items: with probability 0.3 one hop of a crop of
    three or more is left out (as a gap or a too-short hop would leave it)."""
    if f.shape[0] > 2 and rng.random() < 0.3:
        return np.delete(f, int(rng.integers(0, f.shape[0])), axis=0)
    return f


def _pad(seqs: list[np.ndarray], dim: int, masks: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences into (B, longest, dim) values and a (B, longest) mask: True at real
    rows, or ``masks[k]`` there when given."""
    n = max(1, max((s.shape[0] for s in seqs), default=1))
    x = np.zeros((len(seqs), n, dim), dtype=np.float32)
    m = np.zeros((len(seqs), n), dtype=bool)
    for k, s in enumerate(seqs):
        x[k, : s.shape[0]] = s
        m[k, : s.shape[0]] = True if masks is None else masks[k]
    return x, m


def _absent(b: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((b, 1, dim), np.float32), np.zeros((b, 1), bool)


class _FaceData:
    def __init__(self, cache: C.FaceCache) -> None:
        self.c = cache
        self.y = np.array([_CLS_INDEX[str(c)] for c in cache.labels], dtype=np.int64)
        self.va = _va_targets(cache.labels)
        spk = cache.speakers.astype(str)
        usable = cache.present[:, 0]
        test = np.isin(spk, FACE_TEST_SUBJECTS)
        val = np.isin(spk, FACE_VAL_SUBJECTS)
        # test items keep their index even without a face (counted as a miss by the caller)
        self.split = _Split(np.flatnonzero(~test & ~val & cache.present.any(1)), np.flatnonzero(val & usable), np.flatnonzero(test))

    def frames(self, i: int, rng: np.random.Generator | None) -> np.ndarray:
        if rng is None:
            return self.c.feats[i, :1] if self.c.present[i, 0] else np.zeros((0, FACE_FEATURE_DIM), np.float32)
        ok = np.flatnonzero(self.c.present[i])
        k = int(rng.integers(1, 5))
        return self.c.feats[i, rng.choice(ok, size=k, replace=True)]


class _TextData:
    def __init__(self, train: C.TextCache, dev: C.TextCache) -> None:
        self.tr, self.dev = train, dev
        self.y = np.array([_CLS_INDEX[str(c)] for c in train.labels], dtype=np.int64)
        self.y_dev = np.array([_CLS_INDEX[str(c)] for c in dev.labels], dtype=np.int64)
        self.va = _va_targets(train.labels)
        self.va_dev = _va_targets(dev.labels)
        groups = train.groups.astype(np.int64)
        val = groups % 10 == 0
        self.split = _Split(np.flatnonzero(~val), np.flatnonzero(val), np.arange(len(dev.labels)))


def _balanced_indices(idx: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from idx, each class equally likely, uniform within a class."""
    classes = [idx[y[idx] == c] for c in range(NUM_CLASSES)]
    classes = [c for c in classes if len(c)]
    which = rng.integers(0, len(classes), size=n)
    return np.array([classes[w][rng.integers(0, len(classes[w]))] for w in which], dtype=np.int64)


# ------------------------------------------------------------------ training core


class _Trainer:
    def __init__(self, s: TrainSettings, log_fn: Callable[[str], None]) -> None:
        self.torch = require("torch", "fusion")
        self.s = s
        self.log = log_fn
        torch = self.torch
        torch.manual_seed(s.seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(s.threads)
        from .model import FusionConfig, FusionNet

        self.cfg = FusionConfig(strategy=s.strategy, **dict(s.model))
        self.net = FusionNet(self.cfg)

    def reseed(self, stage: int) -> np.random.Generator:
        """Seed torch (dropout) and return a numpy generator for one training stage, from
        (seed, stage) alone: a change in one corpus leaves the other stages' draws alone."""
        self.torch.manual_seed(self.s.seed * 1000 + 100 + stage)
        return np.random.default_rng([self.s.seed, 100 + stage])

    def T(self, a: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(a))

    # -- one modality -------------------------------------------------------------

    def _branch_forward(self, mod: int, x: np.ndarray, m: np.ndarray) -> tuple[Any, Any]:
        enc = (self.net.face, self.net.voice, self.net.text)[mod]
        e = enc(self.T(x), self.T(m))
        return self.net.branch_heads[mod](e)

    def train_branch(
        self,
        mod: int,
        epochs: int,
        n_per_epoch: int,
        batch_fn: Callable[[np.ndarray, np.random.Generator | None], tuple[np.ndarray, np.ndarray]],
        train_idx: np.ndarray,
        y: np.ndarray,
        va: np.ndarray,
        val_fn: Callable[[], dict[str, Any]],
        balanced: bool = True,
        mixup: float = 0.0,
        lr: float | None = None,
    ) -> dict[str, Any]:
        torch = self.torch
        enc = (self.net.face, self.net.voice, self.net.text)[mod]
        params = list(enc.parameters()) + list(self.net.branch_heads[mod].parameters())
        opt = torch.optim.AdamW(params, lr=lr or self.s.lr, weight_decay=self.s.weight_decay)
        steps = epochs * math.ceil(n_per_epoch / self.s.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
        best, best_state, best_epoch = -1.0, None, -1
        name = MODALITIES[mod]
        rng = self.reseed(mod)
        for epoch in range(epochs):
            enc.train()
            self.net.branch_heads[mod].train()
            if balanced:
                order = _balanced_indices(train_idx, y, n_per_epoch, rng)
            else:
                order = rng.permutation(train_idx)[:n_per_epoch]
            t0 = time.perf_counter()
            total = 0.0
            for b0 in range(0, len(order), self.s.batch_size):
                bi = order[b0 : b0 + self.s.batch_size]
                x, m = batch_fn(bi, rng)
                if mixup > 0:
                    # mixup (Zhang et al. 2018): convex pairs of examples and of their targets
                    lam = float(rng.beta(mixup, mixup))
                    perm = rng.permutation(len(bi))
                    x = lam * x + (1 - lam) * x[perm]
                    m = m | m[perm]
                    logits, pva = self._branch_forward(mod, x, m)
                    ce = torch.nn.functional.cross_entropy
                    ls = self.s.label_smoothing
                    loss = lam * ce(logits, self.T(y[bi]), label_smoothing=ls) + (1 - lam) * ce(logits, self.T(y[bi][perm]), label_smoothing=ls)
                    target_va = lam * va[bi] + (1 - lam) * va[bi][perm]
                    loss = loss + self.s.va_weight * torch.nn.functional.mse_loss(pva, self.T(target_va))
                else:
                    logits, pva = self._branch_forward(mod, x, m)
                    loss = torch.nn.functional.cross_entropy(logits, self.T(y[bi]), label_smoothing=self.s.label_smoothing)
                    loss = loss + self.s.va_weight * torch.nn.functional.mse_loss(pva, self.T(va[bi]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(bi)
            rep = val_fn()
            score = rep["macro_f1"]
            if score > best:
                best, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.log(
                f"{name} epoch {epoch + 1}/{epochs}: loss {total / len(order):.3f}, val acc {rep['accuracy']:.3f} "
                f"macro-F1 {score:.3f} weighted-F1 {rep['weighted_f1']:.3f} ({time.perf_counter() - t0:.1f} s)"
            )
        assert best_state is not None
        self.net.load_state_dict(best_state)
        self.log(f"{name}: kept epoch {best_epoch + 1} (val macro-F1 {best:.3f})")
        return {"best_epoch": best_epoch + 1, "val_macro_f1": best}

    def predict_branch(self, mod: int, x: np.ndarray, m: np.ndarray, *, temperature: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n, 7) and VA (n, 2) of one branch, eval mode, in batches."""
        torch = self.torch
        self.net.eval()
        outs, vas = [], []
        with torch.no_grad():
            for b0 in range(0, len(x), 256):
                lg, va = self._branch_forward(mod, x[b0 : b0 + 256], m[b0 : b0 + 256])
                if temperature:
                    lg = lg / self.net.branch_temperature[mod]
                outs.append(lg.numpy())
                vas.append(va.numpy())
        return np.concatenate(outs), np.concatenate(vas)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------------ the full recipe


def _caches(s: TrainSettings, log_fn: Callable[[str], None]) -> tuple[Path, Path, Path, Path]:
    data = Path(s.data_dir)
    cache = Path(s.cache_dir)
    for sub in ("ravdess_speech16k", "faces", "meld"):
        if not (data / sub).exists():
            raise MediaNotFoundError(f"streamline train: {data / sub} not found (the training corpora of shared/data)")
    if cache.resolve().is_relative_to(Path(__file__).resolve().parents[2]):
        log.warning("feature cache %s is inside the repository; keep caches out of git", cache)
    paths = (
        C.build_voice_cache(load_ravdess(data / "ravdess_speech16k"), cache / "voice_ravdess16k.npz", progress=log_fn),
        C.build_face_cache(load_faces(data / "faces"), cache / "face_faces.npz", progress=log_fn),
        C.build_text_cache(load_meld(data / "meld" / "train_sent_emo.csv"), cache / "text_meld_train.npz", progress=log_fn),
        C.build_text_cache(load_meld(data / "meld" / "dev_sent_emo.csv"), cache / "text_meld_dev.npz", variants=1, progress=log_fn),
    )
    return paths


def train_default_model(settings: TrainSettings, *, log_fn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the caches (if needed), train, calibrate, evaluate and save the model.

    Writes ``fusion.pt`` (state dict), ``fusion.json`` (architecture, training
    settings, splits, temperatures, checksum) and ``metrics.json`` (held-out
    metrics) into ``settings.out_dir``.

    Returns:
        The metrics dict.

    Raises:
        MediaNotFoundError: a training corpus is missing.
        MissingExtraError: torch (extra ``fusion``), or the feature extractors' extras.
    """
    log_fn = log_fn or (lambda msg: log.info("%s", msg))
    torch = require("torch", "fusion")
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    try:
        return _train(settings, log_fn)
    finally:  # _Trainer switched torch to deterministic, fixed-thread mode: put it back
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def _train(settings: TrainSettings, log_fn: Callable[[str], None]) -> dict[str, Any]:
    s = settings
    t_start = time.perf_counter()
    vpath, fpath, tpath, dpath = _caches(s, log_fn)
    tr = _Trainer(s, log_fn)
    torch = tr.torch
    net = tr.net
    voice = _VoiceData(C.load_voice_cache(vpath))
    face = _FaceData(C.load_face_cache(fpath))
    text = _TextData(C.load_text_cache(tpath), C.load_text_cache(dpath))
    hop_frames = int(round(0.5 * tr.cfg.voice_rate_hz))
    win_frames = int(round(tr.cfg.window_s * tr.cfg.voice_rate_hz))

    # -- normalisation statistics (training split only) ----------------------------
    # the voice encoder standardises the pooled window vector: statistics of training windows
    windows = [f[st : st + win_frames] for f in (voice.speech_hops(i, 0) for i in voice.split.train)
               for st in clip_window_starts(f.shape[0], win_frames, hop_frames)]
    wx, wm = _pad(windows, VOICE_FEATURE_DIM)
    pooled = net.voice.pool(torch.from_numpy(wx), torch.from_numpy(wm)).numpy()
    net.voice.mean.copy_(torch.from_numpy(pooled.mean(0)))
    net.voice.std.copy_(torch.from_numpy(pooled.std(0) + 1e-3))
    ff = face.c.feats[face.split.train][face.c.present[face.split.train]]
    net.face.mean.copy_(torch.from_numpy(ff.mean(0)))
    net.face.std.copy_(torch.from_numpy(ff.std(0) + 1e-2))
    tf = text.tr.feats[text.split.train].reshape(-1, TEXT_FEATURE_DIM)
    net.text.mean.copy_(torch.from_numpy(tf.mean(0)))
    net.text.std.copy_(torch.from_numpy(tf.std(0) + 1e-3))

    crop_lo, crop_hi = (int(round(c * tr.cfg.voice_rate_hz)) for c in s.crop_s)

    # -- voice -------------------------------------------------------------------------
    def voice_batch(bi: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        assert rng is not None
        crop = int(rng.integers(crop_lo, crop_hi + 1))
        seqs = [_drop_hop(voice.crop(int(i), int(rng.integers(0, voice.c.variants)), rng, crop), rng) for i in bi]
        return _pad(seqs, VOICE_FEATURE_DIM)

    def voice_clip_probs(idx: np.ndarray) -> np.ndarray:
        """Clip-level probabilities: mean over the clip's 2 s windows with speech (hop 0.5 s),
        as ``streamline evaluate`` computes them; uniform for a clip without speech."""
        seqs, masks, owner = [], [], []
        for k, i in enumerate(idx):
            for f, keep in voice.clip_windows(int(i), win_frames, hop_frames):
                seqs.append(f)
                masks.append(keep)
                owner.append(k)
        x, m = _pad(seqs, VOICE_FEATURE_DIM, masks)
        lg, _ = tr.predict_branch(1, x, m)
        p = _softmax(lg)
        owner_a = np.array(owner)
        uniform = np.full(NUM_CLASSES, 1 / NUM_CLASSES, np.float32)
        return np.stack([p[owner_a == k].mean(0) if (owner_a == k).any() else uniform for k in range(len(idx))])

    def voice_val() -> dict[str, Any]:
        return classification_report(voice.y[voice.split.val], voice_clip_probs(voice.split.val))

    results: dict[str, Any] = {"stages": {}}
    results["stages"]["voice"] = tr.train_branch(
        1, s.voice_epochs, len(voice.split.train), voice_batch, voice.split.train, voice.y, voice.va, voice_val,
        mixup=s.voice_mixup, lr=s.voice_lr,
    )

    # -- face --------------------------------------------------------------------------
    def face_batch(bi: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        return _pad([face.frames(int(i), rng) for i in bi], FACE_FEATURE_DIM)

    def face_eval(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, m = _pad([face.frames(int(i), None) for i in idx], FACE_FEATURE_DIM)
        lg, _ = tr.predict_branch(0, x, m)
        p = _softmax(lg)
        p[~m.any(1)] = 1.0 / NUM_CLASSES  # no face found: no information
        return p, m.any(1)

    def face_val() -> dict[str, Any]:
        return classification_report(face.y[face.split.val], face_eval(face.split.val)[0])

    results["stages"]["face"] = tr.train_branch(
        0, s.face_epochs, len(face.split.train), face_batch, face.split.train, face.y, face.va, face_val
    )

    # -- text --------------------------------------------------------------------------
    def text_batch(bi: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        assert rng is not None
        v = rng.integers(0, text.tr.feats.shape[1], size=len(bi))
        return text.tr.feats[bi, v][:, None], np.ones((len(bi), 1), bool)

    def text_probs(feats: np.ndarray) -> np.ndarray:
        lg, _ = tr.predict_branch(2, feats[:, None], np.ones((len(feats), 1), bool))
        return _softmax(lg)

    def text_val() -> dict[str, Any]:
        return classification_report(text.y[text.split.val], text_probs(text.tr.feats[text.split.val, 0]))

    results["stages"]["text"] = tr.train_branch(
        2, s.text_epochs, len(text.split.train), text_batch, text.split.train, text.y, text.va, text_val,
        balanced=s.text_balanced,
    )

    # -- branch temperatures (validation split) ----------------------------------------
    from .model import fit_temperature

    def fit_branch_t(mod: int, x: np.ndarray, m: np.ndarray, y: np.ndarray) -> float:
        lg, _ = tr.predict_branch(mod, x, m, temperature=False)
        return fit_temperature(torch.from_numpy(lg), torch.from_numpy(y))

    vx, vm = _pad([voice.crop(int(i), 0, None, win_frames) for i in voice.split.val], VOICE_FEATURE_DIM)
    fx, fm = _pad([face.frames(int(i), None) for i in face.split.val], FACE_FEATURE_DIM)
    t_face = fit_branch_t(0, fx, fm, face.y[face.split.val])
    t_voice = fit_branch_t(1, vx, vm, voice.y[voice.split.val])
    t_text = fit_branch_t(2, text.tr.feats[text.split.val, 0][:, None], np.ones((len(text.split.val), 1), bool), text.y[text.split.val])
    net.branch_temperature.copy_(torch.tensor([t_face, t_voice, t_text]))
    log_fn(f"branch temperatures: face {t_face:.2f}, voice {t_voice:.2f}, text {t_text:.2f}")

    # -- fusion --------------------------------------------------------------------------
    by_class = {
        "train": (
            [voice.split.train[voice.y[voice.split.train] == c] for c in range(NUM_CLASSES)],
            [face.split.train[face.y[face.split.train] == c] for c in range(NUM_CLASSES)],
            [text.split.train[text.y[text.split.train] == c] for c in range(NUM_CLASSES)],
        ),
        "val": (
            [voice.split.val[voice.y[voice.split.val] == c] for c in range(NUM_CLASSES)],
            [face.split.val[face.y[face.split.val] == c] for c in range(NUM_CLASSES)],
            [text.split.val[text.y[text.split.val] == c] for c in range(NUM_CLASSES)],
        ),
    }

    def combos(split: str, n: int, rng: np.random.Generator, *, train: bool) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
        vcls, fcls, tcls = by_class[split]
        y = rng.integers(0, NUM_CLASSES, size=n)
        vs, fs, ts = [], [], []
        for c in y:
            vi = int(vcls[c][rng.integers(0, len(vcls[c]))])
            fi = int(fcls[c][rng.integers(0, len(fcls[c]))])
            ti = int(tcls[c][rng.integers(0, len(tcls[c]))])
            if train:
                crop = int(rng.integers(crop_lo, crop_hi + 1))
                vs.append(voice.crop(vi, int(rng.integers(0, voice.c.variants)), rng, crop))
                fs.append(face.frames(fi, rng))
                ts.append(text.tr.feats[ti, int(rng.integers(0, text.tr.feats.shape[1]))][None])
            else:
                vs.append(voice.crop(vi, 0, None, win_frames))
                fs.append(face.frames(fi, None))
                ts.append(text.tr.feats[ti, 0][None])
        vx, vm = _pad(vs, VOICE_FEATURE_DIM)
        fx, fm = _pad(fs, FACE_FEATURE_DIM)
        tx, tm = _pad(ts, TEXT_FEATURE_DIM)
        va = _va_targets(np.array([CLASSES[c] for c in y]))
        return (fx, fm, vx, vm, tx, tm), y, va

    def drop_modalities(inputs: tuple[np.ndarray, ...], rng: np.random.Generator, keep_p: float) -> tuple[np.ndarray, ...]:
        fx, fm, vx, vm, tx, tm = inputs
        n = len(fm)
        keep = rng.random((n, 3)) < keep_p
        none = ~keep.any(1)
        keep[none, rng.integers(0, 3, size=int(none.sum()))] = True
        return fx, fm & keep[:, :1], vx, vm & keep[:, 1:2], tx, tm & keep[:, 2:3]

    def fused_logits(net: Any, inputs: tuple[np.ndarray, ...], *, grad: bool) -> tuple[Any, Any, Any]:
        fx, fm, vx, vm, tx, tm = (tr.T(a) for a in inputs)
        with torch.no_grad():
            net.face.eval(), net.voice.eval(), net.text.eval()
            e, present = net.encode(fx, fm, vx, vm, tx, tm)
        if grad:
            return (*net.fuse(e, present)[:2], present)
        with torch.no_grad():
            return (*net.fuse(e, present)[:2], present)

    def fit_fusion(net: Any) -> None:
        """Train the fusion layers of ``net`` (encoders frozen), then the subset temperatures."""
        fusion_params = [p for n_, p in net.named_parameters() if not n_.startswith(("face.", "voice.", "text.", "branch_heads."))]
        opt = torch.optim.AdamW(fusion_params, lr=s.lr, weight_decay=s.weight_decay)
        steps_per_epoch = math.ceil(s.fusion_samples / s.batch_size)
        total_steps = max(1, s.fusion_epochs * steps_per_epoch)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(k, total_steps) / total_steps)))
        val_rng = np.random.default_rng([s.seed, 7])
        val_inputs, val_y, _ = combos("val", 1400, val_rng, train=False)
        val_inputs = drop_modalities(val_inputs, val_rng, s.modality_keep)
        best, best_state = -1.0, None
        rng = tr.reseed(len(MODALITIES))
        for epoch in range(s.fusion_epochs):
            t0 = time.perf_counter()
            for _ in range(steps_per_epoch):
                inputs, y, va = combos("train", s.batch_size, rng, train=True)
                inputs = drop_modalities(inputs, rng, s.modality_keep)
                for mod_name in ("mlp", "layers", "heads", "norm"):
                    if hasattr(net, mod_name):
                        getattr(net, mod_name).train()
                logits, pva, _ = fused_logits(net, inputs, grad=True)
                loss = torch.nn.functional.cross_entropy(logits, tr.T(y), label_smoothing=s.label_smoothing)
                loss = loss + s.va_weight * torch.nn.functional.mse_loss(pva, tr.T(va))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            net.eval()
            logits, _, _ = fused_logits(net, val_inputs, grad=False)
            rep = classification_report(val_y, _softmax(logits.numpy()))
            if rep["macro_f1"] > best:
                best = rep["macro_f1"]
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            log_fn(f"fusion ({net.cfg.strategy}) epoch {epoch + 1}/{s.fusion_epochs}: val acc {rep['accuracy']:.3f} macro-F1 {rep['macro_f1']:.3f} ({time.perf_counter() - t0:.1f} s)")
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()

        # -- per-subset temperatures (validation combinations, every subset) ----------------
        temps = torch.ones(8)
        subsets = [(f, v, t) for f in (0, 1) for v in (0, 1) for t in (0, 1) if f or v or t]
        val_all, val_y_all, _ = combos("val", 700, np.random.default_rng([s.seed, 8]), train=False)
        for f, v, t in subsets:
            fx_, fm_, vx_, vm_, tx_, tm_ = val_all
            inputs = (fx_, fm_ & bool(f), vx_, vm_ & bool(v), tx_, tm_ & bool(t))
            logits, _, present = fused_logits(net, inputs, grad=False)
            ok = present.any(1).numpy()
            code = f + 2 * v + 4 * t
            temps[code] = fit_temperature(logits[torch.from_numpy(ok)], torch.from_numpy(val_y_all[ok]))
        net.temperature.copy_(temps)
        log_fn("subset temperatures: " + ", ".join(f"{k}:{temps[k].item():.2f}" for k in range(1, 8)))

    fit_fusion(net)

    # -- held-out test metrics -----------------------------------------------------------
    metrics = _test_metrics(
        tr, voice, face, text, voice_clip_probs, face_eval, text_probs, win_frames=win_frames, seed=s.seed,
    )
    metrics["stages"] = results["stages"]
    _save(tr, s, metrics)
    if s.compare_strategies:
        # the other strategies on the same encoders (after the default is saved, so the
        # comparison cannot change the shipped weights)
        from .model import STRATEGIES, FusionNet

        comparison = {s.strategy: _summary(metrics["fused_test_combinations"])}
        for strategy in STRATEGIES:
            if strategy == s.strategy:
                continue
            other = FusionNet(replace(tr.cfg, strategy=strategy))
            shared = {k: v for k, v in net.state_dict().items() if k.startswith(("face.", "voice.", "text.", "branch_heads.", "branch_temperature"))}
            other.load_state_dict(shared, strict=False)
            fit_fusion(other)
            comparison[strategy] = _summary(_fused_test(other, voice, face, text, win_frames=win_frames, seed=s.seed))
        metrics["strategy_comparison"] = comparison
        for strategy, summ in comparison.items():
            log_fn(f"strategy {strategy}: " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in summ.items()))
    metrics["train_seconds"] = round(time.perf_counter() - t_start, 1)
    _save(tr, s, metrics)
    return metrics


def _test_metrics(tr: _Trainer, voice: _VoiceData, face: _FaceData, text: _TextData, voice_clip_probs: Any,
                  face_eval: Any, text_probs: Any, *, win_frames: int, seed: int) -> dict[str, Any]:
    torch = tr.torch
    net = tr.net
    out: dict[str, Any] = {}
    # unimodal, held-out people
    out["voice_ravdess_test_clips"] = classification_report(voice.y[voice.split.test], voice_clip_probs(voice.split.test))
    pf, has_face = face_eval(face.split.test)
    out["face_test_images"] = classification_report(face.y[face.split.test], pf)
    out["face_test_images"]["no_face"] = int((~has_face).sum())
    out["text_meld_dev"] = classification_report(text.y_dev, text_probs(text.dev.feats[:, 0]))

    out["fused_test_combinations"] = _fused_test(net, voice, face, text, win_frames=win_frames, seed=seed)
    return out


def _summary(subsets: dict[str, Any]) -> dict[str, Any]:
    return {k: {m: r[m] for m in ("accuracy", "macro_f1", "ece", "roc_auc")} for k, r in subsets.items()}


def _fused_test(net: Any, voice: _VoiceData, face: _FaceData, text: _TextData, *, win_frames: int, seed: int) -> dict[str, Any]:
    """Per-subset metrics on test combinations: each held-out RAVDESS clip (centre 2 s)
    with a held-out face image and a MELD dev utterance of the same class."""
    torch = require("torch", "fusion")
    rng = np.random.default_rng([seed, 99])
    f_by = [face.split.test[(face.y[face.split.test] == c) & face.c.present[face.split.test, 0]] for c in range(NUM_CLASSES)]
    t_by = [np.flatnonzero(text.y_dev == c) for c in range(NUM_CLASSES)]
    vi = voice.split.test
    y = voice.y[vi]
    vs = [voice.crop(int(i), 0, None, win_frames) for i in vi]
    fs = [face.c.feats[int(f_by[c][rng.integers(0, len(f_by[c]))]), :1] for c in y]
    ts = [text.dev.feats[int(t_by[c][rng.integers(0, len(t_by[c]))]), 0][None] for c in y]
    vx, vm = _pad(vs, VOICE_FEATURE_DIM)
    fx, fm = _pad(fs, FACE_FEATURE_DIM)
    tx, tm = _pad(ts, TEXT_FEATURE_DIM)
    subsets = {}
    for f in (0, 1):
        for v in (0, 1):
            for t in (0, 1):
                if not (f or v or t):
                    continue
                name = "+".join(m for m, on in zip(MODALITIES, (f, v, t)) if on)
                with torch.no_grad():
                    _, probs, _, _, _ = net(
                        *(torch.from_numpy(a) for a in (fx, fm & bool(f), vx, vm & bool(v), tx, tm & bool(t)))
                    )
                subsets[name] = classification_report(y, probs.numpy())
    return subsets


def _save(tr: _Trainer, s: TrainSettings, metrics: dict[str, Any]) -> None:
    from .recognizer import save_model

    save_model(tr.net, Path(s.out_dir), train_settings=s.to_dict(), splits={
        "ravdess_test_actors": list(RAVDESS_TEST_ACTORS),
        "ravdess_val_actors": list(RAVDESS_VAL_ACTORS),
        "face_test_subjects": list(FACE_TEST_SUBJECTS),
        "face_val_subjects": list(FACE_VAL_SUBJECTS),
        "meld_val": "train dialogues with Dialogue_ID % 10 == 0",
        "meld_test": "dev_sent_emo.csv",
    }, metrics=metrics)

