"""numba kernels of the voice features (private; use :mod:`streamline.features.voice`).

Every kernel is pure: arrays in, arrays out, no validation (the public wrappers
in ``voice.py`` check shapes, dtypes and ranges before calling). Each frame is
computed from its own samples only, in float64, with the same code whatever the
batch it belongs to, so a stream cut into chunks of any size gives bit-identical
features (see ``tests/features/test_voice.py``).

Slow, obviously-correct numpy references of every kernel live in
``tests/features/naive.py`` and the tests compare the two.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "hann_window",
    "mel_filterbank",
    "dct_matrix",
    "fft_tables",
    "voice_frames_kernel",
]

_LOG_EPS = 1e-10  # floor of every power before log10: -100 dB


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window (the one ``scipy.signal.get_window('hann', n)`` and librosa use)."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def _hz_to_mel(freq_hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (Auditory Toolbox; librosa's default ``htk=False``)."""
    freq_hz = np.asarray(freq_hz, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    mels = freq_hz / f_sp
    log_part = freq_hz >= min_log_hz
    mels = np.where(log_part, min_log_mel + np.log(np.maximum(freq_hz, 1e-12) / min_log_hz) / logstep, mels)
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    freqs = f_sp * mels
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


def mel_filterbank(sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """Triangular mel filters, (n_mels, n_fft // 2 + 1) float64.

    Slaney mel scale with Slaney area normalisation (each filter divided by its
    width in Hz / 2), i.e. ``librosa.filters.mel(..., htk=False, norm="slaney")``;
    re-implemented here so the core needs only numpy.
    """
    n_bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, sample_rate_hz / 2.0, n_bins)
    mel_pts = np.linspace(_hz_to_mel(np.array(fmin_hz)), _hz_to_mel(np.array(fmax_hz)), n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, n_bins), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (hz_pts[2 : n_mels + 2] - hz_pts[:n_mels])
    weights *= enorm[:, None]
    return weights


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis, (n_out, n_in) float64 (``scipy.fft.dct(norm='ortho')``)."""
    k = np.arange(n_out, dtype=np.float64)[:, None]
    n = np.arange(n_in, dtype=np.float64)[None, :]
    basis = np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def fft_tables(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit-reversal permutation (int64) and twiddles ``exp(-2j pi k / n)`` (complex128) for a radix-2 FFT."""
    bits = int(round(math.log2(n_fft)))
    rev = np.zeros(n_fft, dtype=np.int64)
    for i in range(n_fft):
        r = 0
        v = i
        for _ in range(bits):
            r = (r << 1) | (v & 1)
            v >>= 1
        rev[i] = r
    twiddles = np.exp(-2j * np.pi * np.arange(n_fft // 2) / n_fft)
    return rev, twiddles


@numba.njit(cache=True)
def _fft_inplace(re: np.ndarray, im: np.ndarray, rev: np.ndarray, tw_re: np.ndarray, tw_im: np.ndarray) -> None:
    """Iterative radix-2 decimation-in-time FFT of (re, im), in place."""
    n = re.shape[0]
    for i in range(n):
        j = rev[i]
        if j > i:
            t = re[i]
            re[i] = re[j]
            re[j] = t
            t = im[i]
            im[i] = im[j]
            im[j] = t
    size = 2
    while size <= n:
        half = size // 2
        step = n // size
        for start in range(0, n, size):
            for k in range(half):
                wr = tw_re[k * step]
                wi = tw_im[k * step]
                a = start + k
                b = a + half
                xr = re[b] * wr - im[b] * wi
                xi = re[b] * wi + im[b] * wr
                re[b] = re[a] - xr
                im[b] = im[a] - xi
                re[a] = re[a] + xr
                im[a] = im[a] + xi
        size *= 2


@numba.njit(cache=True)
def voice_frames_kernel(
    buf: np.ndarray,
    first_centre: int,
    n_frames: int,
    hop: int,
    win: int,
    window: np.ndarray,
    rev: np.ndarray,
    tw_re: np.ndarray,
    tw_im: np.ndarray,
    mel_fb: np.ndarray,
    dct: np.ndarray,
    yin_lookback: int,
    tau_min: int,
    tau_max: int,
    yin_threshold: float,
    voicing_threshold: float,
    energy_floor_db: float,
    sample_rate_hz: float,
    out: np.ndarray,
) -> None:
    """Compute ``n_frames`` feature rows into ``out`` (n_frames, 4 + n_mels + n_mfcc) float32.

    Frame ``i`` is centred on ``buf[first_centre + i * hop]``. Its energy and
    spectrum use ``buf[c - win // 2 : c - win // 2 + win]``; its YIN analysis uses
    ``buf[c - yin_lookback : c - yin_lookback + win + tau_max + 1]``. The caller
    guarantees both lie inside ``buf`` (zero-padded at a segment's edges).

    Row layout: log energy (dBFS), F0 (Hz, 0 when unvoiced), voicing
    probability (1 - the YIN dip, 0 below the energy floor), voiced (0/1),
    ``n_mels`` log-mel powers (dB), ``n_mfcc`` MFCCs (DCT-II of the log-mel dB).

    YIN: de Cheveigné & Kawahara (2002), J. Acoust. Soc. Am. 111(4), steps 1-5:
    difference function, cumulative mean normalised difference, absolute
    threshold (first dip below ``yin_threshold``, else the global minimum),
    parabolic interpolation.
    """
    n_fft = rev.shape[0]
    n_bins = n_fft // 2 + 1
    n_mels = mel_fb.shape[0]
    n_mfcc = dct.shape[0]
    half_win = win // 2
    re = np.empty(n_fft)
    im = np.empty(n_fft)
    power = np.empty(n_bins)
    logmel = np.empty(n_mels)
    diff = np.empty(tau_max + 2)
    cmnd = np.empty(tau_max + 2)
    for i in range(n_frames):
        c = first_centre + i * hop
        s0 = c - half_win
        # --- energy over the (rectangular) analysis window
        acc = 0.0
        for j in range(win):
            v = np.float64(buf[s0 + j])
            acc += v * v
        energy_db = 10.0 * math.log10(acc / win + 1e-10)
        # --- power spectrum of the Hann-windowed frame, zero-padded to n_fft
        for j in range(n_fft):
            re[j] = 0.0
            im[j] = 0.0
        for j in range(win):
            re[j] = np.float64(buf[s0 + j]) * window[j]
        _fft_inplace(re, im, rev, tw_re, tw_im)
        for k in range(n_bins):
            power[k] = re[k] * re[k] + im[k] * im[k]
        for m in range(n_mels):
            acc = 0.0
            for k in range(n_bins):
                acc += mel_fb[m, k] * power[k]
            logmel[m] = 10.0 * math.log10(acc + 1e-10)
        # --- YIN
        y0 = c - yin_lookback
        diff[0] = 0.0
        cmnd[0] = 1.0
        running = 0.0
        for tau in range(1, tau_max + 2):
            acc = 0.0
            for j in range(win):
                d = np.float64(buf[y0 + j]) - np.float64(buf[y0 + j + tau])
                acc += d * d
            diff[tau] = acc
            running += acc
            if running > 0.0:
                cmnd[tau] = acc * tau / running
            else:
                cmnd[tau] = 1.0
        best = -1
        for tau in range(tau_min, tau_max + 1):
            if cmnd[tau] < yin_threshold:
                while tau + 1 <= tau_max and cmnd[tau + 1] < cmnd[tau]:
                    tau += 1
                best = tau
                break
        if best < 0:
            best = tau_min
            for tau in range(tau_min + 1, tau_max + 1):
                if cmnd[tau] < cmnd[best]:
                    best = tau
        dip = cmnd[best]
        period = np.float64(best)
        a = cmnd[best - 1]
        b = cmnd[best]
        cc = cmnd[best + 1]
        denom = a - 2.0 * b + cc
        if denom > 0.0:
            shift = 0.5 * (a - cc) / denom
            if -1.0 < shift < 1.0:
                period += shift
        prob = 1.0 - dip
        if prob < 0.0:
            prob = 0.0
        if prob > 1.0:
            prob = 1.0
        voiced = energy_db >= energy_floor_db and dip < voicing_threshold
        if energy_db < energy_floor_db:
            prob = 0.0
        out[i, 0] = energy_db
        out[i, 1] = sample_rate_hz / period if voiced else 0.0
        out[i, 2] = prob
        out[i, 3] = 1.0 if voiced else 0.0
        for m in range(n_mels):
            out[i, 4 + m] = logmel[m]
        for q in range(n_mfcc):
            acc = 0.0
            for m in range(n_mels):
                acc += dct[q, m] * logmel[m]
            out[i, 4 + n_mels + q] = acc
