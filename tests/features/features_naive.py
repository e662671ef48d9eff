"""Slow, obviously-correct references for the voice feature kernels, and test signals.

The references use numpy's FFT, librosa's mel filters and scipy's DCT, and a
line-by-line YIN (de Cheveigné & Kawahara 2002), one frame at a time.
"""

from __future__ import annotations

import numpy as np

SR = 16000
HOP = 160
WIN = 400
N_FFT = 512


def naive_features(samples: np.ndarray, *, f0_min_hz: float = 60.0, f0_max_hz: float = 500.0,
                   yin_threshold: float = 0.15, voicing_threshold: float = 0.3,
                   energy_floor_db: float = -60.0) -> tuple[np.ndarray, np.ndarray]:
    """Reference features of one contiguous segment at 16 kHz: (dips (m,), features (m, 57))."""
    import librosa
    import scipy.fft

    x = np.asarray(samples, dtype=np.float32).astype(np.float64)
    n = x.shape[0]
    m = -(-n // HOP)
    tau_min = max(2, int(np.floor(SR / f0_max_hz)))
    tau_max = int(np.ceil(SR / f0_min_hz))
    yin_span = WIN + tau_max + 1
    yin_back = yin_span // 2
    pad = 2048
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
    mel_fb = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=40, fmin=20.0, fmax=8000.0, htk=False, norm="slaney")
    feats = np.zeros((m, 57))
    dips = np.zeros(m)
    for k in range(m):
        c = pad + k * HOP
        frame = xp[c - WIN // 2 : c - WIN // 2 + WIN]
        energy_db = 10 * np.log10(np.mean(frame**2) + 1e-10)
        power = np.abs(np.fft.rfft(frame * window, n=N_FFT)) ** 2
        logmel = 10 * np.log10(mel_fb.astype(np.float64) @ power + 1e-10)
        mfcc = scipy.fft.dct(logmel, type=2, norm="ortho")[:13]
        y = xp[c - yin_back : c - yin_back + yin_span]
        d = np.array([0.0] + [np.sum((y[:WIN] - y[tau : tau + WIN]) ** 2) for tau in range(1, tau_max + 2)])
        cum = np.cumsum(d)
        cmnd = np.ones_like(d)
        nz = cum[1:] > 0
        cmnd[1:][nz] = d[1:][nz] * np.arange(1, tau_max + 2)[nz] / cum[1:][nz]
        below = [t for t in range(tau_min, tau_max + 1) if cmnd[t] < yin_threshold]
        if below:
            t = below[0]
            while t + 1 <= tau_max and cmnd[t + 1] < cmnd[t]:
                t += 1
        else:
            t = tau_min + int(np.argmin(cmnd[tau_min : tau_max + 1]))
        a, b, cc = cmnd[t - 1], cmnd[t], cmnd[t + 1]
        period = float(t)
        if a - 2 * b + cc > 0:
            shift = 0.5 * (a - cc) / (a - 2 * b + cc)
            if abs(shift) < 1:
                period += shift
        voiced = energy_db >= energy_floor_db and cmnd[t] < voicing_threshold
        prob = 0.0 if energy_db < energy_floor_db else float(np.clip(1 - cmnd[t], 0, 1))
        feats[k, 0] = energy_db
        feats[k, 1] = SR / period if voiced else 0.0
        feats[k, 2] = prob
        feats[k, 3] = float(voiced)
        feats[k, 4:44] = logmel
        feats[k, 44:57] = mfcc
        dips[k] = cmnd[t]
    return dips, feats


def vowel(f0_hz: float, duration_s: float, *, amplitude: float = 0.3, sr: int = SR,
          formants_hz: tuple[float, ...] = (700.0, 1220.0, 2600.0), seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic signal: harmonics of ``f0_hz`` up to 4 kHz shaped by formant resonances.

    Each harmonic's amplitude is the magnitude of a cascade of second-order resonances
    (bandwidth 80 Hz) at ``formants_hz`` (default /a/), with a -6 dB/octave source
    tilt, and a random phase. Peak-normalised to ``amplitude``.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * sr))) / sr
    x = np.zeros_like(t)
    for h in range(1, int(4000 // f0_hz) + 1):
        f = h * f0_hz
        gain = np.prod([1.0 / np.sqrt((1 - (f / fm) ** 2) ** 2 + (80.0 * f / fm**2) ** 2) for fm in formants_hz])
        x += gain / h * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return (amplitude * x / np.max(np.abs(x))).astype(np.float32)


def mixed_signal(seed: int = 0) -> np.ndarray:
    """3 s at 16 kHz: a 120 Hz vowel, 0.5 s silence, a 220 Hz vowel, white noise, all at various levels."""
    rng = np.random.default_rng(seed)
    parts = [
        vowel(120.0, 0.8, amplitude=0.4, seed=seed),
        np.zeros(SR // 2, dtype=np.float32),
        vowel(220.0, 0.7, amplitude=0.2, formants_hz=(300.0, 2300.0, 3000.0), seed=seed + 1),
        (0.05 * rng.standard_normal(SR // 2)).astype(np.float32),
        (0.3 * vowel(180.0, 0.5, seed=seed + 2) + 0.01 * rng.standard_normal(SR // 2)).astype(np.float32),
    ]
    return np.concatenate(parts).astype(np.float32)
