"""DNSMOS's P.835 network in torch, with its convolutions in bfloat16 where the CPU has bf16.

The network is the speechmos wheel's ``sig_bak_ovr.onnx`` (workflow_scripts/audio_quality.py
reads its file), rebuilt op for op from that graph and its weights (read with
workflow_scripts/onnx_wire.py, so no second copy of the weights exists): 320-sample frames
hopped by 160 (the graph's two crops and reshapes), a learned DFT (two 1x1 convolutions, 161
bins), |X|^2 as sqrt then square, log10 of it above 1e-12, seven 3x3 convolutions with ReLU
(128, 64, 64, 32 channels at the spectrogram's own resolution, a 2x2 max-pool after the 4th,
5th and 6th), a global max over time and frequency, and three dense layers to the raw
(SIG, BAK, OVRL) that the P.835 polynomials then map to MOS.

Why: the three full-resolution convolutions are ~95 % of DNSMOS's cost per clip, and
onnxruntime has no bf16 convolutions on CPUs. In float32 this module gives the ONNX graph's
outputs to ~1e-7 but ~1.2-1.8x slower than onnxruntime, so float32 stays with onnxruntime; with
the seven convolutions in bfloat16 in channels-last layout (oneDNN's AVX512-BF16/AMX kernels),
the STFT, the log and the dense layers in float32, with each ReLU fused into its convolution, it
runs ~4.5x faster than onnxruntime on one core (AMX), the raw outputs within ~0.02 of it and the
MOS within 0.02 of float32's (tests/test_scoring.py). On a CPU without native bf16 it would be
emulated and slow: ``native_bf16`` says whether to use it.
"""
from __future__ import annotations

import numpy as np

HOP = 160
CONVS = ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "conv2d_5", "conv2d_6")
CONV_CHANNELS = ((128, 1), (64, 128), (64, 64), (32, 64), (32, 32), (32, 32), (64, 32))
POOL_AFTER = (3, 4, 5)  # max-pool 2x2 after these convolutions
FULL_RES = 4  # the convolutions before the first pool, at the spectrogram's resolution
MIN_FRAMES = 8  # three 2x2 pools leave one frame
TILE_FRAMES = 200  # frames per tile of those (~8 MB of bf16 activations at most)
DENSE = ("dense", "dense_1", "dense_3")
DENSE_SHAPES = ((64, 128), (128, 64), (64, 3))
BINS, FRAME = 161, 2 * HOP
POWER_FLOOR = 9.999999960041972e-13  # the graph's Maximum constant (1e-12 in float32)
LN10 = 2.3025851249694824  # the graph's divisor: log10 = ln / ln(10)


def native_bf16() -> bool:
    """True when this CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX)."""
    import torch

    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def _weights(model: bytes) -> dict[str, np.ndarray]:
    """The graph's weights by role, checked against the network's shapes."""
    from workflow_scripts.onnx_wire import float_initializers

    init = float_initializers(model)
    pre = "mos_estimator_logpow/"
    want = {"stft_real": ("time2freq/stft-real/kernel:0", (BINS, FRAME, 1)),
            "stft_imag": ("time2freq/stft-imag/kernel:0", (BINS, FRAME, 1))}
    for name, (out_c, in_c) in zip(CONVS, CONV_CHANNELS):
        want[f"{name}.w"] = (f"{name}/kernel:0", (out_c, in_c, 3, 3))
        want[f"{name}.b"] = (f"{name}/bias:0", (out_c,))
    for name, shape in zip(DENSE, DENSE_SHAPES):
        want[f"{name}.w"] = (f"{pre}{name}/MatMul/ReadVariableOp/resource:0", shape)
        want[f"{name}.b"] = (f"{pre}{name}/BiasAdd/ReadVariableOp/resource:0", (shape[1],))
    out = {}
    for role, (key, shape) in want.items():
        arr = init.get(key)
        if arr is None or tuple(arr.shape) != shape:
            got = None if arr is None else tuple(arr.shape)
            raise ValueError(f"DNSMOS P.835 graph: {key} is {got}, expected {shape} (another speechmos version?)")
        out[role] = arr
    return out


class P835Net:
    """The P.835 graph as torch operations; ``__call__(audio)`` -> raw (SIG, BAK, OVRL).

    ``bf16``: the convolutions in bfloat16 (channels-last); else all in float32.
    """

    def __init__(self, model: bytes, bf16: bool, device: str = "cpu"):
        import torch

        w = _weights(model)
        self.device = torch.device(device)
        self.conv_dtype = torch.bfloat16 if bf16 else torch.float32
        self.layout = torch.channels_last if bf16 else torch.contiguous_format

        def t(a, dtype=torch.float32):
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, dtype)

        self.dft = t(np.concatenate([w["stft_real"][:, :, 0], w["stft_imag"][:, :, 0]]).T)  # 320 x 322
        # allocated in the layout rather than .contiguous(memory_format=...): that keeps conv2d's
        # 1-input-channel weight in NCHW strides (both layouts count as contiguous there), and then
        # its 128-channel output comes back NCHW and is transposed back to channels-last for the next
        # convolution, which cost 3x the convolutions themselves
        convs = [(t(w[f"{n}.w"], self.conv_dtype), t(w[f"{n}.b"], self.conv_dtype)) for n in CONVS]
        self.convs = [(torch.empty_like(k, memory_format=self.layout).copy_(k), b) for k, b in convs]
        # oneDNN's convolution with the ReLU fused (the op torch.compile uses on CPU): saves a pass
        # over each output map; another build or device falls back to conv2d then relu_
        fused = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
        self._fused = fused if self.device.type == "cpu" and torch.backends.mkldnn.is_available() else None
        self.dense = [(t(w[f"{n}.w"]), t(w[f"{n}.b"])) for n in DENSE]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """``audio``: float32 (samples,) or (N, samples) with samples = 160 * (frames + 1);
        returns float32 (N, 3) raw scores, as the ONNX graph's output."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(audio), dtype=np.float32)).to(self.device)
        n, samples = x.shape
        if samples % HOP or samples < (MIN_FRAMES + 1) * HOP:
            raise ValueError(f"P.835 input of {samples} samples: expected 160 x (frames + 1), frames >= {MIN_FRAMES}")
        with torch.inference_mode():
            frames = torch.cat([x[:, :-HOP].reshape(n, -1, HOP), x[:, HOP:].reshape(n, -1, HOP)], dim=2)
            re, im = (frames @ self.dft).split(BINS, dim=2)
            power = torch.sqrt(re * re + im * im) ** 2
            h = (torch.log(torch.clamp(power, min=POWER_FLOOR)) / LN10).unsqueeze(1)
            h = self._full_resolution(h.to(self.conv_dtype).contiguous(memory_format=self.layout))
            for i in range(FULL_RES, len(CONVS)):
                h = self._conv_relu(h, i)
                if i in POOL_AFTER:
                    h = F.max_pool2d(h, 2)
            h = h.float().amax(dim=(2, 3))
            for i, (weight, bias) in enumerate(self.dense):
                h = h @ weight + bias
                if i < len(self.dense) - 1:
                    h = F.relu(h)
        return h.cpu().numpy()

    def _full_resolution(self, h):
        """The first FULL_RES convolutions (and the pool after the last), TILE_FRAMES frames at a
        time: each tile carries FULL_RES frames of its neighbours on either side, which the
        convolutions' zero padding spoils and which are cut off again, so the result is the whole
        map's exactly while the 128- and 64-channel maps stay in cache."""
        import torch
        import torch.nn.functional as F

        frames, parts = h.shape[2], []
        for a in range(0, frames, TILE_FRAMES):
            b = min(frames, a + TILE_FRAMES)
            lo, hi = max(0, a - FULL_RES), min(frames, b + FULL_RES)
            x = h[:, :, lo:hi]
            for i in range(FULL_RES):
                x = self._conv_relu(x, i)
            parts.append(x[:, :, a - lo:b - lo])
        return F.max_pool2d(torch.cat(parts, dim=2), 2)

    def _conv_relu(self, x, i: int):
        """ReLU of the i-th 3x3 convolution (zero padding 1)."""
        import torch.nn.functional as F

        weight, bias = self.convs[i]
        if self._fused is not None:
            return self._fused(x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
        return F.relu_(F.conv2d(x, weight, bias, padding=1))
