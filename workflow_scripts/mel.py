"""librosa's power mel spectrogram in numpy, for the scoring processes.

``melspectrogram(y, sr, n_fft, hop, n_mels)`` = ``librosa.feature.melspectrogram`` at its
defaults (frames centred on the hops with ``n_fft // 2`` zeros of padding, a periodic Hann
window as long as the frame, power 2, Slaney's mel scale and area norm from 0 Hz to sr/2),
and ``power_to_db`` = ``librosa.power_to_db`` (amin 1e-10, top_db 80). DNSMOS' P.808 input
and Resemblyzer's encoder input are built with them: the same numbers as librosa 0.11
(tests/test_scoring.py), without importing it, whose first call costs every scoring process
about 2 s (librosa.core, scipy.signal, numba) for the two spectrograms it is used for.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

# Slaney's mel scale (librosa.hz_to_mel, htk=False): linear below 1 kHz, logarithmic above
_F_SP, _MIN_LOG_HZ, _LOGSTEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asanyarray(f, dtype=np.float64)
    mel = f / _F_SP
    high = f >= _MIN_LOG_HZ
    return np.where(high, _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    hz = _F_SP * m
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), hz)


@lru_cache(maxsize=8)
def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels x n_fft // 2 + 1) float32 triangles, area-normalised (librosa.filters.mel)."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """The periodic Hann window (scipy.signal.get_window("hann", n, fftbins=True))."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 (freq x frames, float32) of centred, zero-padded frames (librosa.stft)."""
    y = np.asarray(y, dtype=np.float32)
    padded = np.pad(y, n_fft // 2, mode="constant")
    if len(padded) < n_fft:
        raise ValueError(f"{len(y)} samples: too short for frames of {n_fft}")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spec = np.fft.rfft(frames * _hann(n_fft), axis=1).astype(np.complex64)
    return (np.abs(spec) ** 2).T


def melspectrogram(y: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """Power mel spectrogram (n_mels x frames, float32)."""
    return mel_filters(sr, n_fft, n_mels) @ power_spectrogram(y, n_fft, hop)


def power_to_db(s: np.ndarray, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """dB re the largest value, floored ``top_db`` under it (librosa.power_to_db, ref=np.max)."""
    log_spec = 10.0 * np.log10(np.maximum(amin, s)) - 10.0 * np.log10(np.maximum(amin, np.max(s)))
    return np.maximum(log_spec, log_spec.max() - top_db)
