"""Speaker embeddings and the "only the target voice" decision.

Embeddings: Resemblyzer 0.1.4's GE2E speaker encoder (3-layer LSTM, 256-d, weights
``resemblyzer/pretrained.pt`` inside its wheel), run through its own ``preprocess_wav``
(volume normalised to -30 dBFS, pauses longer than ~0.2 s shortened by webrtcvad) and
``embed_utterance`` (1.6 s partials at 1.3 per second, mean, L2-normed). Every embedding
is L2-normed and non-negative, so cosine similarity = dot product, in [0, 1].

``SpeakerEncoder`` loads the weights once and checks them: Resemblyzer itself calls
``load_state_dict(strict=False)`` on whatever ``pretrained.pt`` holds, so a wrong or
truncated file would leave the network at random weights without a word; here the state
dict must hold exactly the network's tensors (plus GE2E's two training-only similarity
scalars), each of the right shape, or ``SpeakerEncoder`` raises.

Target voice:

* with a reference (one or more files of the target speaker): ``reference_embedding`` =
  normalised mean of their embeddings; a clip is the target when
  ``similarity(emb, ref) >= min_similarity`` (``MIN_SIMILARITY``);
* without one: ``dominant_speaker`` clusters the clips' embeddings (average-linkage
  agglomerative clustering on cosine similarity, merging while the two closest clusters'
  mean similarity is at least ``CLUSTER_THRESHOLD``; deterministic: ties go to the lowest
  indices) and takes the largest cluster (ties: the one with the earliest clip) as the
  target; its centroid (normalised mean) is then used like a reference.

The thresholds come from real speech (bench/bench_gates.py): Debian's Asterisk prompts (one
woman) against another woman recorded the same way (Asterisk's fr-CA prompts), Piper's
en_US joe voice (a man), a man over HF radio and espeak-ng; see the constants below. In the
no-reference mode the decision is best made like the reference mode, with the dominant
cluster's centroid as the reference (``is_target(emb, centroid)``): the cluster labels
alone leave a weak target clip out that the centroid keeps.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

SR = 16000  # resemblyzer.hparams.sampling_rate
EMBED_DIM = 256
# Cosine (dot) of a clip's embedding with the target's reference/centroid at or above which
# the clip is the target voice. Measured (bench/bench_gates.py, bench/out/gates.json; a
# reference = k random target prompts, 20 draws): the target's other 153 prompts at k=3
# 0.62-0.97 (p10 0.83, median 0.90); June, Asterisk's fr-CA voice (another woman, same
# studio chain and codec: the hard case; 179 prompts) 0.49-0.79 (median 0.68), at most 0.82
# over k=1..12; Piper's joe (a man), espeak-ng (also +f3) and a man over HF radio (ve9qrp)
# at most 0.70. At 0.80: k=3 keeps 96.7% of the target and 0 of 3580 June comparisons, k=12
# 98.8% and 0, k=6 98.3% and 0.2%; a one-prompt reference keeps only 78%: give the reference
# at least ~10 s of speech. (0.75 keeps 99% of the target but lets 3.5-9% of June through.)
MIN_SIMILARITY = 0.80
# Average-linkage merge threshold for dominant_speaker: clusters whose clips are on average
# at least this similar are one speaker. Target-target pairs median 0.85 (p10 0.76),
# target-June median 0.65 (p90 0.71), target-others under 0.73. On all 156 target prompts +
# 98 clips of the other voices: 0.62 merges June into the target (precision 0.80), 0.66-0.74
# give precision 1.0 and recall 0.99-1.0, 0.78 splits the target (recall 0.94); 0.72.
CLUSTER_THRESHOLD = 0.72
# embed_utterance's defaults: partials per second, and the share of a last partial that must be audio
PARTIAL_RATE, MIN_COVERAGE = 1.3, 0.75
# GE2E's learned similarity scale/bias: in pretrained.pt, used only for training
TRAINING_ONLY_KEYS = frozenset({"similarity_weight", "similarity_bias"})


def _import_resemblyzer():
    """resemblyzer, without the two known warnings of its imports (webrtcvad's pkg_resources,
    scipy.ndimage.morphology): both are pinned to working versions in envs/scoring.yaml."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources is deprecated.*")
        warnings.filterwarnings("ignore", message=".*scipy.ndimage.morphology.*")
        import resemblyzer
    return resemblyzer


def _torch_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))


def _load_weights(path: Path):
    import torch

    try:
        # weights_only: the file holds tensors and plain containers only (no code to unpickle)
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path}: not a Resemblyzer checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model_state"), dict):
        raise ValueError(f"{path}: not a Resemblyzer checkpoint (no 'model_state' dict)")
    return ckpt["model_state"]


def _expected_shapes(resemblyzer) -> dict[str, tuple]:
    """Tensor names and shapes of Resemblyzer's network (LSTM + linear, from its hparams)."""
    from resemblyzer import hparams as hp
    from torch import nn

    net = nn.Module()
    net.lstm = nn.LSTM(hp.mel_n_channels, hp.model_hidden_size, hp.model_num_layers, batch_first=True)
    net.linear = nn.Linear(hp.model_hidden_size, hp.model_embedding_size)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


class SpeakerEncoder:
    """Resemblyzer's VoiceEncoder, loaded once with verified weights; ``embed`` per clip."""

    def __init__(self, device: str = "cpu", threads: int | None = None, weights: str | Path | None = None,
                 precision: str = "fp32"):
        import torch

        from workflow_scripts.audio_quality import PRECISIONS

        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")

        resemblyzer = _import_resemblyzer()
        _torch_threads(threads)
        path = Path(weights) if weights else Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: speaker encoder weights missing (reinstall resemblyzer==0.1.4)")
        state = _load_weights(path)
        # check names and shapes against the network's own, before resemblyzer's loader
        # (strict=False) sees the file
        own = _expected_shapes(resemblyzer)
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own) - TRAINING_ONLY_KEYS)
        wrong = sorted(k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != own[k])
        if missing or unexpected or wrong:
            raise ValueError(
                f"{path}: does not fit Resemblyzer's speaker encoder (missing {missing[:4]}, "
                f"unexpected {unexpected[:4]}, wrong shape {wrong[:4]}): a wrong or damaged weights file")
        model = resemblyzer.VoiceEncoder(device=device, verbose=False, weights_fpath=path)
        # and load the verified tensors strictly, so nothing is left at random init
        model.load_state_dict({k: state[k] for k in own}, strict=True)
        model.eval()
        self.model, self.device, self.weights = model, torch.device(device), path
        self._preprocess = resemblyzer.preprocess_wav
        self._resemblyzer = resemblyzer
        hp = resemblyzer.hparams
        self._mel_shape = (int(SR * hp.mel_window_length / 1000), int(SR * hp.mel_window_step / 1000), hp.mel_n_channels)
        self.precision = precision
        # bf16: a copy of the network in bfloat16 (for CPUs with native bf16): ~1.9x faster, the
        # clip embeddings within cosine 0.998 of float32's (tests/test_scoring.py)
        self._bf16 = copy.deepcopy(model).to(torch.bfloat16) if precision == "bf16" else None

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """256-d float32 L2-normed embedding; all zeros for a clip without any voiced audio."""
        return self.embed_with_windows(audio, sr)[0]

    def embed_with_windows(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """(the embedding, as ``embed``; its partials' L2-normed embeddings, one row per 1.6 s
        window of the voiced audio, 0 x 256 for a clip without voice)."""
        emb, windows, _ = self.embed_with_window_spans(audio, sr)
        return emb, windows

    def embed_with_window_spans(self, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``embed_with_windows`` and where each window lies in the clip: (k x 2) seconds from
        the clip's start (its first and last voiced sample; a window spans the pauses that
        Resemblyzer's preprocessing shortened inside it)."""
        from workflow_scripts.audio_quality import to_16k

        none = np.zeros(EMBED_DIM, np.float32), np.zeros((0, EMBED_DIM), np.float32), np.zeros((0, 2))
        wav = to_16k(audio, sr)
        if len(wav) == 0 or not np.any(wav):
            return none
        pre, kept = self._voiced(wav)  # at 16 kHz already: volume + long pauses only
        if len(pre) < SR // 10:  # webrtcvad heard (almost) no voice: embed the clip as it is
            pre, kept = wav, np.arange(len(wav))
        emb, windows, slices = self._embed(pre)
        if not np.all(np.isfinite(emb)) or not np.all(np.isfinite(windows)):
            return none
        last = len(kept) - 1
        spans = np.array([[kept[min(s.start, last)], kept[min(s.stop, len(kept)) - 1] + 1] for s in slices],
                         dtype=np.float64).reshape(-1, 2) / SR
        return emb, windows, spans

    def _voiced(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resemblyzer's ``preprocess_wav`` of 16 kHz audio (volume raised to its target, pauses
        longer than its VAD allows shortened) and, for each sample it keeps, its index in
        ``wav``: ``trim_long_silences``' own steps, which return only the audio, with the mask
        kept (tests/test_scoring.py checks the audio equals ``preprocess_wav``'s)."""
        from scipy.ndimage import binary_dilation

        audio = self._resemblyzer.audio
        hp = self._resemblyzer.hparams
        norm = audio.normalize_volume(wav, hp.audio_norm_target_dBFS, increase_only=True)
        step = (hp.vad_window_length * SR) // 1000
        n = len(norm) - len(norm) % step
        pcm = (np.round(norm[:n] * audio.int16_max)).astype(np.int16).tobytes()
        vad = audio.webrtcvad.Vad(mode=3)
        flags = np.array([vad.is_speech(pcm[a * 2:(a + step) * 2], sample_rate=SR) for a in range(0, n, step)],
                         dtype=float)
        width = hp.vad_moving_average_width
        padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
        acc = np.cumsum(padded)
        acc[width:] = acc[width:] - acc[:-width]
        mask = np.round(acc[width - 1:] / width).astype(bool)
        kept = np.flatnonzero(np.repeat(binary_dilation(mask, np.ones(hp.vad_max_silence_length + 1)), step))
        return norm[kept], kept

    def _embed(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[slice]]:
        """Resemblyzer's ``embed_utterance`` (its partial slices at its defaults, zero padding,
        its mel spectrogram, the mean of the partials' embeddings, L2-normed) and the partials
        themselves, L2-normed, and their sample slices of ``wav``; the mel from
        workflow_scripts/mel.py (librosa's numbers, without importing librosa), the network
        in bfloat16 when so configured."""
        import torch

        from workflow_scripts.mel import melspectrogram

        wav_slices, mel_slices = self.model.compute_partial_slices(len(wav), PARTIAL_RATE, MIN_COVERAGE)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
        mel = melspectrogram(wav, SR, *self._mel_shape).astype(np.float32).T
        network, dtype = (self.model, torch.float32) if self._bf16 is None else (self._bf16, torch.bfloat16)
        mels = torch.from_numpy(np.array([mel[s] for s in mel_slices])).to(self.device, dtype)
        with torch.inference_mode():
            partials = network(mels).float().cpu().numpy()
        raw = partials.mean(axis=0)
        return (raw / np.linalg.norm(raw)).astype(np.float32), normalize(partials), list(wav_slices)

    def embed_file(self, path: str | Path) -> np.ndarray:
        import soundfile as sf

        audio, sr = sf.read(str(path), dtype="float32", always_2d=False)
        return self.embed(audio, sr)


def normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.where(n > 0, n, 1.0)).astype(np.float32)


def mean_direction(embeddings: np.ndarray) -> np.ndarray:
    """Normalised mean of L2-normed rows (zero rows, i.e. clips without voice, are left out)."""
    e = normalize(np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBED_DIM) if np.size(embeddings) else np.zeros((0, EMBED_DIM)))
    e = e[np.linalg.norm(e, axis=1) > 0]
    if not len(e):
        raise ValueError("no voiced embedding to average")
    return normalize(e.mean(axis=0))


def reference_embedding(paths: Iterable[str | Path], encoder: SpeakerEncoder | None = None) -> np.ndarray:
    """The target voice from one or more reference recordings: normalised mean of their
    L2-normed embeddings (each file embedded whole)."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise ValueError("reference_embedding needs at least one file")
    encoder = encoder or SpeakerEncoder()
    return mean_direction(np.stack([encoder.embed_file(p) for p in paths]))


def similarity(emb: np.ndarray, centroid: np.ndarray) -> np.ndarray | float:
    """Cosine similarity of one embedding (float) or of rows (array) with ``centroid``."""
    emb, c = normalize(emb), normalize(centroid)
    out = emb @ c
    return float(out) if np.ndim(out) == 0 else out


def cluster(embeddings: np.ndarray, threshold: float = CLUSTER_THRESHOLD) -> np.ndarray:
    """Average-linkage agglomerative clustering on cosine similarity; labels 0..k-1 numbered by
    first appearance. Merges the most similar pair of clusters (ties: lowest indices) while
    their mean pairwise similarity is >= ``threshold`` (Lance-Williams update: O(n^2) memory,
    O(n^3) time at worst, about a second for 1500 clips; ``dominant_speaker`` samples larger
    sets). Zero rows (clips without voice) each get a label of their own, after the clusters."""
    e = normalize(np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBED_DIM))
    n = len(e)
    if n == 0:
        return np.zeros(0, dtype=int)
    voiced = np.linalg.norm(e, axis=1) > 0
    avg = (e @ e.T).astype(np.float64)  # mean similarity between clusters (rows/cols = cluster ids)
    avg[~voiced, :] = -np.inf
    avg[:, ~voiced] = -np.inf
    np.fill_diagonal(avg, -np.inf)
    size = np.ones(n)
    members = {i: [i] for i in np.flatnonzero(voiced)}
    while len(members) > 1:
        flat = int(np.argmax(avg))  # first maximum in row-major order: lowest indices win ties
        a, b = divmod(flat, n)
        if avg[a, b] < threshold:
            break
        a, b = min(a, b), max(a, b)
        merged = (size[a] * avg[a] + size[b] * avg[b]) / (size[a] + size[b])
        avg[a, :] = merged
        avg[:, a] = merged
        avg[b, :] = -np.inf
        avg[:, b] = -np.inf
        avg[a, a] = -np.inf
        size[a] += size[b]
        members[a] += members.pop(b)
    labels = np.full(n, -1, dtype=int)
    order = sorted(min(m) for m in members.values())
    first = {min(m): m for m in members.values()}
    for lab, k in enumerate(order):
        labels[first[k]] = lab
    nxt = len(order)
    for i in np.flatnonzero(~voiced):
        labels[i] = nxt
        nxt += 1
    return labels


def dominant_speaker(embeddings: np.ndarray, threshold: float = CLUSTER_THRESHOLD,
                     max_clips: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroid) without a reference: ``labels`` from ``cluster``, relabelled so that
    0 is the largest cluster of voiced clips (ties: the one with the earliest clip), and
    ``centroid`` = its normalised mean embedding, the target voice.

    More than ``max_clips`` voiced rows: a deterministic, evenly spaced sample of that many is
    clustered, and every other row takes the label of the sampled cluster whose centroid it is
    most similar to (or a label of its own when that similarity is under ``threshold``)."""
    e = normalize(np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBED_DIM))
    if not len(e):
        raise ValueError("no embeddings to cluster")
    voiced_idx = np.flatnonzero(np.linalg.norm(e, axis=1) > 0)
    if not len(voiced_idx):
        raise ValueError("no voiced embedding to cluster")
    if len(voiced_idx) > max_clips:
        sample = voiced_idx[np.unique(np.round(np.linspace(0, len(voiced_idx) - 1, max_clips)).astype(int))]
    else:
        sample = voiced_idx
    sub = cluster(e[sample], threshold)
    k = int(sub.max()) + 1
    cents = np.stack([mean_direction(e[sample[sub == c]]) for c in range(k)])
    labels = np.full(len(e), -1, dtype=int)
    labels[sample] = sub
    rest = np.setdiff1d(voiced_idx, sample)
    if len(rest):
        sims = e[rest] @ cents.T
        best = np.argmax(sims, axis=1)
        labels[rest] = np.where(sims[np.arange(len(rest)), best] >= threshold, best, -1)
    counts = np.bincount(labels[labels >= 0], minlength=k)
    rank = sorted(range(k), key=lambda c: (-counts[c], int(np.flatnonzero(labels == c)[0])))
    remap = np.empty(k, dtype=int)
    remap[rank] = np.arange(k)
    out = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)
    # rows outside every cluster (no voice, or far from all sampled clusters): own labels after
    nxt = k
    for i in np.flatnonzero(out < 0):
        out[i] = nxt
        nxt += 1
    return out, mean_direction(e[out == 0])


def is_target(embeddings: np.ndarray, centroid: np.ndarray, min_similarity: float = MIN_SIMILARITY) -> np.ndarray:
    """Boolean per row: similarity to ``centroid`` at least ``min_similarity`` (zero rows: False)."""
    return np.atleast_1d(similarity(np.asarray(embeddings).reshape(-1, EMBED_DIM), centroid)) >= min_similarity


def precision_recall(predicted: Sequence[bool], truth: Sequence[bool]) -> tuple[float, float]:
    """(precision, recall) of ``predicted`` target clips against ``truth``."""
    p, t = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp = int(np.sum(p & t))
    return (tp / max(int(p.sum()), 1), tp / max(int(t.sum()), 1))
