"""Per-clip audio quality: Microsoft's DNSMOS (P.835 SIG/BAK/OVRL and P.808 MOS).

The models are the ONNX files shipped inside the ``speechmos`` wheel (0.0.1.1,
``speechmos/dnsmos_models/sig_bak_ovr.onnx`` and ``model_v8.onnx``). ``speechmos.dnsmos.run``
itself is not used: it builds its onnxruntime sessions without ``providers=`` (which
onnxruntime-gpu rejects) and with onnxruntime's default thread count. ``DnsmosScorer``
opens the two sessions once, with CUDA when onnxruntime offers it (else CPU) and a given
thread count, and runs speechmos' ``DNSMOS.__call__`` loop with speechmos' own helpers
(``get_polyfit_val``: the P.835 coefficients; ``audio_melspec``, computed to the same numbers
by ``DnsmosScorer.melspec``): 9.01 s windows hopped by 1 s, a shorter clip tiled by doubling,
the mean over windows. The scores equal ``dnsmos.run``'s (tests/test_scoring.py checks it on
a real clip to 1e-4). ``max_windows``, ``min_seconds`` and ``precision="bf16"`` (P.835's
convolutions in bfloat16, workflow_scripts/dnsmos_p835.py: OVRL within ~0.01) trade that
exactness for speed.

Scores are MOS on 1..5: SIG = speech signal (distortion), BAK = background (noise), OVRL =
overall, P808 = the P.808 single MOS. One 9.01 s window costs ~0.37 s of one CPU core
(measured on a shared 2-core machine), in proportion to the samples fed (batching inputs
gains nothing, nor do onnxruntime's other session options; int8 weights were 4.6x slower):
the P.835 network is convolutional (frames of 320 samples hopped by 160, a learned DFT, log
power, 7 conv layers) with a global max over time and frequency before its 3 dense layers,
the P.808 one likewise over its mel frames; only the inputs' declared lengths, two reshapes
to 900 frames and one crop fix them at 9.01 s. DNSMOS tiles a clip by doubling up to 9.01 s,
and it then costs floor(seconds) - 8 windows: 4.6-10 s (or 2.3-2.5 s, ...) is one window, 8 s
(tiled to 16 s) seven; so one window of a 3 s clip costs 3x its length.

``max_windows=N``: only N evenly spaced windows of a longer clip (1: its first 9.01 s; on
the real talks' 11 clips of 9.0-11.7 s OVRL 0.03 lower than over all windows, at most 0.17
apart, bench/bench_gates.py). ``min_seconds`` below 9.01 (the stage's
``quality.short_clip_input_s``; its default is 9.01): a clip shorter than 9.01 s is fed once at its own length (its end cut
to whole 10 ms hops), tiled by doubling only up to ``min_seconds``, through copies of the two
graphs with those lengths left free (``length_free_model``: the wheel's files edited in
memory; at 9.01 s they give the originals' outputs exactly, tests/test_scoring.py); longer
clips keep their 9.01 s windows. For short clips these are not DNSMOS's own scores: every
tiled copy of a clip starts at another phase of the 10 ms hop and of the 80 ms pooling grid,
and the global max over more such variants scores higher (a 2.1 s prompt: OVRL 2.92 alone,
3.21 twice over, 3.26 tiled to 9.01 s; cutting 3 ms off a short clip's end, which moves the
copies' phases, moved its tiled OVRL by up to 0.47). Fed as 5 s, against one tiled 9.01 s
window: Asterisk prompts (1.4-7 s, clean and noisy, 184) OVRL -0.07 on average (3 s: -0.14),
P.808 -0.10 (3 s: -0.17); real talks' clips under 9.01 s -0.05 (up to -0.24: a 7.5 s phrase
of a lecture at 2.69 against 2.89 tiled fell under the gate's 2.8); HF-radio pieces 0.00.
Clean against 10 and 0 dB mixes, area under the ROC by OVRL: one tiled window 0.998 (DNSMOS
itself 0.999, 5 s 0.991, 3 s 0.990, own length without tiling 0.984), clean against 20 dB
0.934 for both one window and 5 s; the default gate keeps 16/16 clean prompts, 39/40 more
(5 s: 38/40) and a real talk's 6/6 clips (5 s: 5/6). So the stage tiles short clips to one
window (``short_clip_input_s`` 9.01): a 2.8 s prompt costs 9.01 s of input, not 5 s.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_scripts.onnx_wire import int64s, pb_bytes, pb_fields, pb_one, varint

SR = 16000
WINDOW_S = 9.01  # speechmos.dnsmos.INPUT_LENGTH
MIN_SAMPLES = 160  # 10 ms: anything shorter holds no speech to judge (scores are None)
HOP = 160  # the P.835 network's frame hop (10 ms); its frames are 2 hops long

# The gate's defaults (schemas/config.schema.yaml, quality.*) come from bench/bench_gates.py
# (16 + 40 clean Asterisk prompts; real noise from codec2-examples mixed in; ve9qrp = real
# speech over HF radio; two real talks cut into clips by the stage) and real recordings, as
# the stage scored then (max_windows 1, short clips at their own length, >= 5 s, bf16); one
# tiled window, the default since, scores short clips ~0.05-0.07 higher and separates better.
# OVRL, min/median/max: clean 2.93/3.18/3.40 (the 40 more prompts 2.20/3.23/3.33), 30 dB
# 2.70-3.33, 20 dB 2.42-3.26, 10 dB 2.11-2.79, 0 dB 1.14-2.25, ve9qrp 2.78-3.35. OVRL >= 2.8
# keeps every clean clip of the 16 (38/40 of the others) and rejects every 10 and 0 dB mix (and
# 19/32 of the 20 dB ones); 2.7 lets two 10 dB mixes through. OVRL misses band-limited radio
# speech (16/18 ve9qrp pieces pass it). P.808: clean 3.32-3.97 (the 40 more 3.07-3.98), ve9qrp
# 2.87-3.40 (median 3.03), but an ordinary recorded talk (silero-vad's test.wav, 11 clips)
# 2.83-3.28 (median 3.14) as well: P.808 >= 3.3 would stop radio and that talk alike, so the
# default 3.0 stops only the worst. SIG stays at ~3.5 down to 10 dB (no help against noise);
# BAK tracks the noise but separates no better than OVRL.
THRESHOLD_KEYS = ("min_ovrl", "min_p808", "min_sig", "min_bak")
# fp32: onnxruntime, DNSMOS's own numbers; bf16: P.835's convolutions in bfloat16 (torch,
# workflow_scripts/dnsmos_p835.py), for CPUs that compute bf16 natively
PRECISIONS = ("fp32", "bf16")


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


# ------------------------------------------------------------ length-free graphs
# The two ONNX files are edited as protobuf wire data (workflow_scripts/onnx_wire.py; field
# numbers of onnx.proto3: ModelProto.graph 7; GraphProto.initializer 5, .input 11;
# ValueInfoProto.type 2; TypeProto.tensor_type 1; TypeProto.Tensor.shape 2;
# TensorShapeProto.dim 1; Dimension.dim_value 1, .dim_param 2): the onnx package is not
# needed for four numbers, and every field not touched is copied as it is.

_INT64_MAX = (1 << 63) - 1
# name: (value in the wheel, value with the time axis free); P.835 only
_P835_EDITS = {"shape_tensor": ([-1, 900, 160], [0, -1, 160]),  # frames' first halves: N x T x 160
               "shape_tensor1": ([-1, 900, 160], [0, -1, 160]),  # their second halves
               "input_1:01_cropping_end": ([_INT64_MAX, 144000], [_INT64_MAX, -HOP])}  # all but the last hop


def length_free_model(model: bytes, edits: dict[str, tuple[list[int], list[int]]], axis: int, length: int) -> bytes:
    """``model`` (ONNX bytes) with its one input's dimension ``axis`` free (was ``length``) and
    the int64 initializers named in ``edits`` changed from their expected to their new values;
    ValueError when anything is not as expected (another model or speechmos version)."""
    top = pb_fields(model)
    graph_field = pb_one(top, 7)
    graph = pb_fields(graph_field[2])
    todo = dict(edits)
    for field in graph:
        if field[0] != 5:
            continue
        tensor = pb_fields(field[2])
        names = [v.decode() for n, w, v in tensor if n == 8 and w == 2]
        if names and names[0] in todo:
            old, new = todo.pop(names[0])
            if int64s(tensor) != list(old):
                raise ValueError(f"initializer {names[0]}: {int64s(tensor)}, expected {list(old)}")
            tensor = [f for f in tensor if f[0] != 7] + [[7, 2, b"".join(varint(v) for v in new)]]
            field[2] = pb_bytes(tensor)
    if todo:
        raise ValueError(f"initializers not found: {', '.join(sorted(todo))}")
    inputs = [f for f in graph if f[0] == 11]
    if len(inputs) != 1:
        raise ValueError(f"expected one graph input, found {len(inputs)}")
    value_info = pb_fields(inputs[0][2])
    type_ = pb_one(value_info, 2)
    type_fields = pb_fields(type_[2])
    tensor_type = pb_one(type_fields, 1)
    tensor_fields = pb_fields(tensor_type[2])
    shape = pb_one(tensor_fields, 2)
    dims = pb_fields(shape[2])
    if axis >= len(dims) or pb_fields(dims[axis][2]) != [[1, 0, length]]:
        raise ValueError(f"input dimension {axis} is not {length}")
    dims[axis][2] = pb_bytes([[2, 2, b"T"]])  # dim_param "T"
    shape[2] = pb_bytes(dims)
    tensor_type[2] = pb_bytes(tensor_fields)
    type_[2] = pb_bytes(type_fields)
    inputs[0][2] = pb_bytes(value_info)
    graph_field[2] = pb_bytes(graph)
    return pb_bytes(top)


def length_free_models(personalized: bool = False) -> tuple[bytes, bytes]:
    """(P.835, P.808) graphs of ``model_paths`` taking any length: P.835 (N, 160*k + 160)
    samples, P.808 (N, frames, 120) mel bands."""
    primary, p808 = model_paths(personalized)
    return (length_free_model(primary.read_bytes(), _P835_EDITS, 1, int(WINDOW_S * SR)),
            length_free_model(p808.read_bytes(), {}, 1, 900))


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
    """DNSMOS sessions loaded once; ``score`` per clip.

    ``max_windows``: at most that many evenly spaced 9.01 s windows of a longer clip (None:
    all, as DNSMOS). ``min_seconds`` below 9.01: a shorter clip is fed once at its own
    length, tiled by doubling only up to ``min_seconds`` (length-free graphs; see the
    module's notes); 9.01 (the default): tiled to a 9.01 s window as DNSMOS does.
    ``precision``: ``fp32`` (onnxruntime: DNSMOS's own numbers) or ``bf16`` (P.835's
    convolutions in bfloat16, workflow_scripts/dnsmos_p835.py: for a CPU with native bf16).
    """

    def __init__(self, threads: int = 1, use_providers: list[str] | None = None, personalized: bool = False,
                 max_windows: int | None = None, min_seconds: float = WINDOW_S, precision: str = "fp32"):
        import onnxruntime as ort
        from speechmos import dnsmos

        if not 0 < min_seconds <= WINDOW_S:
            raise ValueError(f"min_seconds {min_seconds}: expected 0 < min_seconds <= {WINDOW_S}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        primary, p808 = model_paths(personalized)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: on a shared machine spinning threads only steal cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.providers = list(use_providers or providers())
        self.personalized = personalized
        self.max_windows = max_windows
        self.window_samples = int(WINDOW_S * SR)
        # the shortest input (whole hops, two at least) when short clips go in at their own length
        self.min_samples = max(2 * HOP, int(min_seconds * SR) // HOP * HOP) if min_seconds < WINDOW_S else self.window_samples
        run_providers: list = self.providers
        if self.min_samples < self.window_samples:
            primary, p808 = length_free_models(personalized)
            # each new input length would otherwise start cuDNN's exhaustive search of conv algorithms
            run_providers = [(p, {"cudnn_conv_algo_search": "HEURISTIC"}) if p == "CUDAExecutionProvider" else p
                             for p in self.providers]
        else:
            primary, p808 = str(primary), str(p808)
        # speechmos' own object (for its helpers), given our sessions instead of building its own
        impl = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        impl.primary_model_path = str(model_paths(personalized)[0])
        impl.p808_onnx_sess = ort.InferenceSession(p808, opts, providers=run_providers)
        self.precision, self._p835 = precision, None
        if precision == "bf16":  # P.835 in torch (any length), the P.808 model stays with onnxruntime
            import torch

            from workflow_scripts.dnsmos_p835 import P835Net

            torch.set_num_threads(max(1, int(threads)))
            impl.onnx_sess = None
            self._p835 = P835Net(Path(impl.primary_model_path).read_bytes(), bf16=True)
        else:
            impl.onnx_sess = ort.InferenceSession(primary, opts, providers=run_providers)
        self._impl = impl

    def melspec(self, audio: np.ndarray) -> np.ndarray:
        """speechmos' ``audio_melspec`` (librosa: power spectrogram of 321-sample frames hopped
        by 160, 120 mel bands, dB re its max, (dB + 40) / 40, frames x bands), the same numbers
        (tests/test_scoring.py) from workflow_scripts/mel.py: the filter bank is built once,
        the bands are one matrix product, and librosa is not imported."""
        from workflow_scripts.mel import mel_filters, power_spectrogram, power_to_db

        power = power_spectrogram(audio, 2 * HOP + 1, HOP)
        return ((power_to_db(mel_filters(SR, 2 * HOP + 1, 120) @ power) + 40) / 40).T

    def inputs(self, audio_16k: np.ndarray) -> list[np.ndarray]:
        """The pieces of a 16 kHz clip that the models are fed, one run each (see ``raw``)."""
        audio, fs, need = np.asarray(audio_16k, dtype=np.float32), SR, self.window_samples
        if len(audio) < need and self.min_samples < need:
            # once, at its own length in whole hops, tiled by doubling up to min_seconds
            n = max((len(audio) - HOP) // HOP * HOP + HOP, self.min_samples)
            while len(audio) < n:
                audio = np.append(audio, audio)
            return [audio[:n]]
        while len(audio) < need:
            audio = np.append(audio, audio)
        num_hops = int(np.floor(len(audio) / fs) - WINDOW_S) + 1
        segs = [audio[int(idx * fs): int((idx + WINDOW_S) * fs)] for idx in range(num_hops)]
        segs = [seg for seg in segs if len(seg) >= need]
        if self.max_windows and len(segs) > self.max_windows:
            pick = np.unique(np.round(np.linspace(0, len(segs) - 1, self.max_windows)).astype(int))
            segs = [segs[i] for i in pick]
        return segs

    def raw(self, audio_16k: np.ndarray) -> dict:
        """Unrounded ``{"sig_mos", "bak_mos", "ovrl_mos", "p808_mos", "windows"}`` of a 16 kHz clip.

        speechmos' ``DNSMOS.__call__`` step by step with its own helpers (``get_polyfit_val``;
        ``melspec`` = its ``audio_melspec``) and the same tiling and window arithmetic, so that with
        ``max_windows=None`` (and ``min_seconds`` 9.01) the result is that of ``dnsmos.run``;
        with ``max_windows=N`` only N evenly spaced windows of those are scored (a short clip
        is tiled by doubling, and its windows are shifted copies of one another: an 8 s clip
        makes 7); with ``min_seconds`` below 9.01 a shorter clip is one input of its own length
        (at least ``min_seconds``). ``windows``: the number of model runs.
        """
        audio = to_16k(audio_16k, SR)
        if len(audio) < MIN_SAMPLES:
            raise ValueError(f"clip too short for DNSMOS ({len(audio)} samples at 16 kHz)")
        impl = self._impl
        sig, bak, ovr, p808 = [], [], [], []
        segs = self.inputs(audio)
        for seg in segs:
            feats = np.array(seg).astype("float32")[np.newaxis, :]
            mel = np.array(self.melspec(seg[:-HOP])).astype("float32")[np.newaxis, :, :]
            p808.append(impl.p808_onnx_sess.run(None, {"input_1": mel})[0][0][0])
            if self._p835 is not None:
                s_raw, b_raw, o_raw = self._p835(feats)[0]
            else:
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
