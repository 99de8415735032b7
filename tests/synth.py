"""Synthetic 'speech' with known silences for unit tests."""
from __future__ import annotations

import numpy as np


def burst(seconds: float, rate: int, seed: int, level: float = 0.3) -> np.ndarray:
    """Speech-like burst: a few harmonics with syllable-rate amplitude modulation, no gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 40 * rng.random()
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) / k for k in range(1, 6))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    x = x * envelope
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def speech_with_pauses(pattern: list[tuple[str, float]], rate: int, noise: float = 1e-4, seed: int = 0):
    """Concatenate ('speech'|'silence', seconds) parts; return audio and silence spans (s)."""
    rng = np.random.default_rng(seed)
    parts, silences, t = [], [], 0.0
    for i, (kind, dur) in enumerate(pattern):
        n = int(round(dur * rate))
        if kind == "speech":
            parts.append(burst(n / rate, rate, seed + i))
        else:
            parts.append((noise * rng.standard_normal(n)).astype(np.float32))
            silences.append((t, t + n / rate))
        t += n / rate
    return np.concatenate(parts), silences
