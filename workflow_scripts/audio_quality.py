"""Per-clip audio quality: Microsoft's DNSMOS (P.835 SIG/BAK/OVRL and P.808 MOS).

The models are the ONNX files shipped inside the ``speechmos`` wheel (0.0.1.1,
``speechmos/dnsmos_models/sig_bak_ovr.onnx`` and ``model_v8.onnx``). ``speechmos.dnsmos.run``
itself is not used: it builds its onnxruntime sessions without ``providers=`` (which
onnxruntime-gpu rejects) and with onnxruntime's default thread count. ``DnsmosScorer``
opens the two sessions once, with CUDA when onnxruntime offers it (else CPU) and a given
thread count, and runs speechmos' ``DNSMOS.__call__`` loop with speechmos' own helpers
(``audio_melspec``, ``get_polyfit_val``: same features and P.835 coefficients): 9.01 s
windows hopped by 1 s, a shorter clip tiled by doubling, the mean over windows. The scores
equal ``dnsmos.run``'s (tests/test_scoring.py checks it on a real clip to 1e-4).
``max_windows`` trades that exactness for speed (bench/bench_gates.py: scoring only 1
window per clip strays up to 0.5 MOS from all of them, 3 windows up to 0.13).

Scores are MOS on 1..5: SIG = speech signal (distortion), BAK = background (noise), OVRL =
overall, P808 = the P.808 single MOS. One 9.01 s window costs ~0.4 s of one CPU core
(measured on a shared 2-core machine). A clip is tiled by doubling up to 9.01 s and then
costs floor(seconds) - 8 windows: 4.6-10 s (or 2.3-2.5 s, ...) is one window, 8 s (tiled to
16 s) seven.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000
WINDOW_S = 9.01  # speechmos.dnsmos.INPUT_LENGTH
MIN_SAMPLES = 160  # 10 ms: anything shorter holds no speech to judge (scores are None)

# The gate's defaults (schemas/config.schema.yaml, quality.*) come from bench/bench_gates.py
# (16 + 40 clean Asterisk prompts; real noise from codec2-examples mixed in; ve9qrp = real
# speech over HF radio) and real recordings. OVRL, min/median/max: clean 3.01/3.27/3.42 (one
# of 40 more prompts 2.67), 30 dB 2.83-3.41, 20 dB 2.41-3.36, 10 dB 2.21-2.76, 0 dB
# 1.15-2.38, ve9qrp 2.79-3.31. OVRL >= 2.8 keeps every clean clip of the 16 (39/40 of the
# others) and rejects every 10 and 0 dB mix (and most 20 dB ones). OVRL misses band-limited
# radio speech (17/18 ve9qrp pieces pass it). P.808: clean 3.49-4.00, ve9qrp 2.88-3.36
# (median 3.05), but an ordinary recorded talk (silero-vad's test.wav) 3.11-3.28 as well:
# P.808 >= 3.3 would stop radio and that talk alike, so the default 3.0 stops only the worst.
# SIG stays at ~3.5 down to 10 dB (no help against noise); BAK tracks the noise but separates
# no better than OVRL.
THRESHOLD_KEYS = ("min_ovrl", "min_p808", "min_sig", "min_bak")


def providers() -> list[str]:
    """CUDA when this onnxruntime build has it, always CPU as the fallback."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have] or ["CPUExecutionProvider"]


def model_paths(personalized: bool = False) -> tuple[Path, Path]:
    """(P.835 model, P.808 model) inside the installed speechmos wheel."""
    from speechmos import dnsmos

    root = Path(dnsmos.__file__).resolve().parent
    primary = root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    p808 = root / "dnsmos_models" / "model_v8.onnx"
    for path in (primary, p808):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: DNSMOS model missing from the speechmos wheel (reinstall speechmos==0.0.1.1)")
    return primary, p808


def to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 at 16 kHz in [-1, 1] (soxr resampling can overshoot full scale a little)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:  # (samples, channels) as soundfile reads it
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (or samples x channels), got shape {audio.shape}")
    if sr != SR and len(audio):
        import soxr

        audio = soxr.resample(audio, sr, SR, quality="HQ").astype(np.float32)
    audio = np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(audio, -1.0, 1.0)


def gate_reasons(scores: dict, *, min_ovrl: float | None, min_p808: float | None, min_sig: float | None,
                 min_bak: float | None) -> list[str]:
    """Reasons a clip's DNSMOS ``scores`` ({"sig", "bak", "ovrl", "p808"}) fail the gate, as
    ``low_dnsmos_<key>:<value><<threshold>`` (empty list: it passes). A threshold of None is
    not checked; a clip without scores (under 10 ms) fails as ``no_dnsmos``."""
    limits = {"ovrl": min_ovrl, "p808": min_p808, "sig": min_sig, "bak": min_bak}
    if any(scores.get(k) is None for k, v in limits.items() if v is not None):
        return ["no_dnsmos"]
    return [f"low_dnsmos_{k}:{scores[k]:.2f}<{v:g}" for k, v in limits.items() if v is not None and scores[k] < v]


def passes_gate(scores: dict, **thresholds) -> bool:
    """True when ``gate_reasons`` finds nothing (thresholds as its keywords)."""
    return not gate_reasons(scores, **thresholds)


class DnsmosScorer:
    """DNSMOS sessions loaded once; ``score`` per clip."""

    def __init__(self, threads: int = 1, use_providers: list[str] | None = None, personalized: bool = False,
                 max_windows: int | None = None):
        import onnxruntime as ort
        from speechmos import dnsmos

        primary, p808 = model_paths(personalized)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: on a shared machine spinning threads only steal cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.providers = list(use_providers or providers())
        self.personalized = personalized
        self.max_windows = max_windows
        # speechmos' own object (for its helpers), given our sessions instead of building its own
        impl = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        impl.primary_model_path = str(primary)
        impl.onnx_sess = ort.InferenceSession(str(primary), opts, providers=self.providers)
        impl.p808_onnx_sess = ort.InferenceSession(str(p808), opts, providers=self.providers)
        self._impl = impl

    def raw(self, audio_16k: np.ndarray) -> dict:
        """Unrounded ``{"sig_mos", "bak_mos", "ovrl_mos", "p808_mos", "windows"}`` of a 16 kHz clip.

        speechmos' ``DNSMOS.__call__`` step by step with its own helpers (``audio_melspec``,
        ``get_polyfit_val``) and the same tiling and window arithmetic, so that with
        ``max_windows=None`` the result is that of ``dnsmos.run``; with ``max_windows=N`` only N
        evenly spaced windows of those are scored (a short clip is tiled by doubling, and its
        windows are shifted copies of one another: an 8 s clip makes 7).
        """
        audio = to_16k(audio_16k, SR)
        if len(audio) < MIN_SAMPLES:
            raise ValueError(f"clip too short for DNSMOS ({len(audio)} samples at 16 kHz)")
        impl, fs = self._impl, SR
        len_samples = int(WINDOW_S * fs)
        while len(audio) < len_samples:
            audio = np.append(audio, audio)
        num_hops = int(np.floor(len(audio) / fs) - WINDOW_S) + 1
        segs = [audio[int(idx * fs): int((idx + WINDOW_S) * fs)] for idx in range(num_hops)]
        segs = [seg for seg in segs if len(seg) >= len_samples]
        if self.max_windows and len(segs) > self.max_windows:
            pick = np.unique(np.round(np.linspace(0, len(segs) - 1, self.max_windows)).astype(int))
            segs = [segs[i] for i in pick]
        sig, bak, ovr, p808 = [], [], [], []
        for seg in segs:
            feats = np.array(seg).astype("float32")[np.newaxis, :]
            mel = np.array(impl.audio_melspec(audio=seg[:-160])).astype("float32")[np.newaxis, :, :]
            p808.append(impl.p808_onnx_sess.run(None, {"input_1": mel})[0][0][0])
            s_raw, b_raw, o_raw = impl.onnx_sess.run(None, {"input_1": feats})[0][0]
            s_, b_, o_ = impl.get_polyfit_val(s_raw, b_raw, o_raw, self.personalized)
            sig.append(s_), bak.append(b_), ovr.append(o_)
        return {"ovrl_mos": float(np.mean(ovr)), "sig_mos": float(np.mean(sig)), "bak_mos": float(np.mean(bak)),
                "p808_mos": float(np.mean(p808)), "windows": len(segs)}

    def score(self, audio: np.ndarray, sr: int = SR) -> dict:
        """{"sig", "bak", "ovrl", "p808"} rounded to 3 decimals; None each for a clip under 10 ms."""
        audio = to_16k(audio, sr)
        if len(audio) < MIN_SAMPLES:
            return {"sig": None, "bak": None, "ovrl": None, "p808": None}
        r = self.raw(audio)
        return {k: round(float(r[f"{k}_mos"]), 3) for k in ("sig", "bak", "ovrl", "p808")}

    @staticmethod
    def windows(n_samples_16k: int) -> int:
        """How many 9.01 s windows a clip of this length costs (for progress and benches)."""
        n, need = max(int(n_samples_16k), 1), int(WINDOW_S * SR)
        while n < need:  # speechmos tiles a short clip by doubling it
            n *= 2
        return int(np.floor(n / SR) - WINDOW_S) + 1
