"""Vocal separation (Spleeter or Demucs), streamed chunk by chunk over hours of audio.

The ingested recording (mono s16 WAV at the pipeline rate) is read in chunks of ``chunk_s``
seconds that overlap by ``overlap_s``; each chunk is resampled to the model rate, separated,
resampled back and cross-faded into the output while it is written. Memory therefore depends
on ``chunk_s``, not on the length of the recording, and the vocal stem has exactly as many
samples as the input (checked before the output is renamed into place).

Pure functions (``plan_chunks``, ``crossfade_weights``, ``Stitcher``, ``fix_length``,
``check_spleeter_model``, ``separate_file`` with any backend) need only numpy/soundfile/soxr
and are tested in the main test env. The backends import TensorFlow (Spleeter env) or torch
(Demucs env) lazily.

Model weights are never downloaded silently into a broken state and never replaced by random
weights: ``check_spleeter_model`` refuses an existing model folder without a checkpoint, and
the checkpoint is restored with a TF ``Saver`` that fails when a variable is missing.
"""

import contextlib
import logging
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

import numpy as np

from workflow_scripts.io_utils import Progress, StageError, atomic_path, run_stage

STEMS = ("vocals", "accompaniment")
SPLEETER_PARAMS_FILE = "spleeter_params.json"  # optional: custom Spleeter config next to the checkpoint


# --- chunk planning and stitching (pure) ---------------------------------------------------
def plan_chunks(n_samples: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Half-open sample ranges ``[start, end)`` covering ``[0, n_samples)``.

    Consecutive chunks overlap by exactly ``overlap`` samples; every chunk but the last is
    ``chunk`` long, the last ends at ``n_samples`` and is longer than ``overlap``.
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    if not 0 <= overlap < chunk:
        raise ValueError(f"overlap must be in [0, chunk), got {overlap} for chunk {chunk}")
    if n_samples <= 0:
        return []
    if n_samples <= chunk:
        return [(0, n_samples)]
    hop = chunk - overlap
    plan = []
    start = 0
    while start + chunk < n_samples:
        plan.append((start, start + chunk))
        start += hop
    plan.append((start, n_samples))
    return plan


def crossfade_weights(n: int, kind: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in weights of length ``n``.

    ``linear``: the two sum to 1 (identical, correlated signals are reproduced exactly; right
    for overlapping separations of the same audio). ``equal_power``: squares sum to 1 (constant
    power for uncorrelated signals).
    """
    if n <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    if kind == "linear":
        fade_in = t
        fade_out = 1.0 - t
    elif kind == "equal_power":
        fade_in = np.sin(0.5 * np.pi * t)
        fade_out = np.cos(0.5 * np.pi * t)
    else:
        raise ValueError(f"unknown cross-fade {kind!r} (linear or equal_power)")
    return fade_out.astype(np.float32), fade_in.astype(np.float32)


def crossfade(tail: np.ndarray, head: np.ndarray, kind: str = "linear") -> np.ndarray:
    """Blend the end of one chunk (``tail``) into the start of the next (``head``)."""
    if tail.shape != head.shape:
        raise ValueError(f"cross-fade needs equal shapes, got {tail.shape} and {head.shape}")
    fade_out, fade_in = crossfade_weights(len(tail), kind)
    return tail * fade_out + head * fade_in


class Stitcher:
    """Streaming overlap-add of chunk outputs that follow ``plan_chunks``.

    ``push(y, last)`` returns the samples that are final: everything but the last ``overlap``
    samples (kept back to be blended with the next chunk), or everything for the last chunk.
    The total returned equals the input length exactly.
    """

    def __init__(self, overlap: int, kind: str = "linear"):
        self.overlap, self.kind = int(overlap), kind
        crossfade_weights(1, kind)  # validate early
        self.tail: np.ndarray | None = None

    def push(self, y: np.ndarray, last: bool) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        ov = self.overlap
        if self.tail is not None and ov:
            if len(y) < ov:
                raise ValueError(f"chunk of {len(y)} samples is shorter than the overlap {ov}")
            y = y.copy()
            y[:ov] = crossfade(self.tail, y[:ov], self.kind)
        self.tail = None
        if last or ov == 0:
            return y
        if len(y) <= ov:
            raise ValueError(f"chunk of {len(y)} samples is not longer than the overlap {ov}")
        self.tail = y[-ov:].copy()
        return y[:-ov]


def stitch(chunks: list[np.ndarray], overlap: int, kind: str = "linear") -> np.ndarray:
    """Whole-array version of ``Stitcher`` (for tests and small inputs)."""
    st = Stitcher(overlap, kind)
    parts = [st.push(c, i == len(chunks) - 1) for i, c in enumerate(chunks)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad along axis 0 to exactly ``n`` samples (resampling rounds)."""
    if len(y) == n:
        return y
    if len(y) > n:
        return y[:n]
    pad = [(0, n - len(y))] + [(0, 0)] * (y.ndim - 1)
    return np.pad(y, pad)


def float_to_s16(y: np.ndarray) -> np.ndarray:
    """Inverse of soundfile's int16 -> float32 read (x / 32768), clipped: lossless round trip."""
    return np.clip(np.round(np.asarray(y, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited resampling (soxr HQ) along axis 0; identity when the rates agree."""
    if sr_from == sr_to or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), sr_from, sr_to, quality="HQ").astype(np.float32, copy=False)


# --- model folder check (pure) -------------------------------------------------------------
def check_spleeter_model(model_dir: str | os.PathLike, model_name: str) -> str:
    """Return ``"present"`` or ``"absent"``; raise StageError for an unusable folder.

    ``absent``: ``model_dir/model_name`` does not exist, Spleeter may download it (online).
    An existing folder must hold a TF checkpoint (``checkpoint``, ``model.index``,
    ``model.data-*``): an empty folder is what a failed Spleeter download leaves behind and
    would otherwise run with random weights.
    """
    folder = Path(model_dir) / model_name
    if not folder.exists():
        return "absent"
    if not folder.is_dir():
        raise StageError(f"{folder}: Spleeter model path is not a directory")
    missing = []
    if not (folder / "checkpoint").is_file():
        missing.append("checkpoint")
    if not (folder / "model.index").is_file():
        missing.append("model.index")
    if not list(folder.glob("model.data-*")):
        missing.append("model.data-*")
    if missing:
        raise StageError(
            f"{folder}: Spleeter model folder lacks {', '.join(missing)} "
            f"(an empty folder is what a failed download leaves behind; refusing to separate with random weights). "
            f"Provide the model: unpack {model_name}.tar.gz from https://github.com/deezer/spleeter/releases "
            f"into this folder, or delete the folder to let Spleeter download it, "
            f"or set separation.spleeter.model_dir to a folder that holds {model_name}/"
        )
    return "present"


# --- backends ------------------------------------------------------------------------------
class Backend:
    """A separator working at ``rate`` Hz on (N, channels) float32; returns stems by name."""

    rate: int = 44100
    channels: int = 2
    min_samples: int = 0
    name: str = "backend"

    def separate(self, x: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def separate_mono(self, x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Mono float32 at ``sr`` -> mono stems at ``sr`` of exactly ``len(x)`` samples."""
        n = len(x)
        y = resample(x, sr, self.rate)
        m = len(y)
        if m < self.min_samples:
            y = np.pad(y, (0, self.min_samples - m))
        y = np.repeat(y[:, None], self.channels, axis=1) if self.channels > 1 else y[:, None]
        stems = self.separate(np.ascontiguousarray(y, dtype=np.float32))
        out = {}
        for key, s in stems.items():
            s = np.asarray(s, dtype=np.float32)
            s = s.mean(axis=1) if s.ndim == 2 else s
            out[key] = fix_length(resample(fix_length(s, m), self.rate, sr), n)
        return out


class IdentityBackend(Backend):
    """Vocals = input, accompaniment = silence. For tests of the streaming path."""

    name = "identity"

    def __init__(self, rate: int = 22050, channels: int = 1):
        self.rate, self.channels = rate, channels

    def separate(self, x):
        return {"vocals": x.copy(), "accompaniment": np.zeros_like(x)}


class SpleeterBackend(Backend):
    """Spleeter's own model graph (EstimatorSpecBuilder), restored ONCE into one TF session.

    ``Separator.separate(waveform)`` rebuilds the estimator graph and restores the checkpoint
    on every call; with chunking that would reload the model per chunk. Building the same
    predict graph here (same code, same variable names) keeps one session for the whole job.
    """

    name = "spleeter"

    def __init__(self, model_dir: str, model: str, threads: int = 1, device: str = "cpu", log: logging.Logger | None = None):
        log = log or logging.getLogger("pvw")
        folder = Path(model_dir) / model
        state = check_spleeter_model(model_dir, model)
        os.environ["MODEL_PATH"] = str(Path(model_dir).resolve())  # read by spleeter at import
        if device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
            from spleeter.model import EstimatorSpecBuilder
            from spleeter.utils.configuration import load_configuration
        except ImportError as exc:
            raise StageError(f"spleeter: cannot import Spleeter/TensorFlow ({exc}); build the env: python3 envs/setup_venvs.py spleeter") from exc

        if state == "absent":
            self._download(folder, model, log)
            check_spleeter_model(model_dir, model)
        custom = folder / SPLEETER_PARAMS_FILE
        descriptor = str(custom) if custom.is_file() else f"spleeter:{model}"
        try:
            params = load_configuration(descriptor)
        except Exception as exc:
            raise StageError(f"{folder}: no Spleeter configuration {descriptor!r} ({exc})") from exc
        params["model_dir"] = str(folder.resolve())
        params["MWF"] = False
        self.params = params
        self.rate = int(params["sample_rate"])
        self.channels = int(params["n_channels"])
        self.min_samples = int(params["frame_length"]) * 2
        self.instruments = list(params["instrument_list"])
        if "vocals" not in self.instruments:
            raise StageError(f"{folder}: Spleeter model {model} has no 'vocals' stem ({self.instruments})")
        ckpt = tf.train.latest_checkpoint(str(folder))
        if not ckpt:
            raise StageError(f"{folder}/checkpoint: names no readable checkpoint")
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.waveform = tf.compat.v1.placeholder(tf.float32, shape=(None, self.channels), name="waveform")
            audio_id = tf.compat.v1.placeholder(tf.string, name="audio_id")
            builder = EstimatorSpecBuilder({"waveform": self.waveform, "audio_id": audio_id}, params)
            self.outputs = {k: v for k, v in builder.outputs.items() if k in self.instruments}
            saver = tf.compat.v1.train.Saver()
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=max(1, threads), inter_op_parallelism_threads=max(1, min(2, threads))
        )
        if device == "cuda":
            config.gpu_options.allow_growth = True
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)
        try:
            with self.graph.as_default():
                saver.restore(self.session, ckpt)
        except Exception as exc:  # shape/variable mismatch: wrong config for these weights
            raise StageError(
                f"{ckpt}: cannot restore Spleeter weights with configuration {descriptor!r} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
            ) from exc

    @staticmethod
    def _download(folder: Path, model: str, log: logging.Logger) -> None:
        """Spleeter's normal download (GitHub release); leaves no empty folder on failure."""
        from spleeter.model.provider import ModelProvider

        log.info("%s: model absent, asking Spleeter to download %s", folder, model)
        try:
            ModelProvider.default().get(str(folder.resolve()))
        except Exception as exc:
            with contextlib.suppress(OSError):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise StageError(
                f"{folder}: Spleeter model {model} is absent and could not be downloaded "
                f"({type(exc).__name__}: {exc}). Download {model}.tar.gz from "
                f"https://github.com/deezer/spleeter/releases and unpack it into {folder}"
            ) from exc

    def separate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        res = self.session.run(self.outputs, feed_dict={self.waveform: x})
        out = {"vocals": res["vocals"]}
        others = [res[k] for k in self.instruments if k != "vocals"]
        if others:
            out["accompaniment"] = others[0] if len(others) == 1 else np.sum(others, axis=0)
        return out

    def close(self) -> None:
        self.session.close()


class DemucsBackend(Backend):
    """Demucs 4 (``demucs.apply.apply_model``), model loaded once; vocals vs the rest."""

    name = "demucs"

    def __init__(self, model: str, repo: str = "", threads: int = 1, device: str = "cpu", log: logging.Logger | None = None):
        try:
            import torch
            from demucs.apply import apply_model
            from demucs.pretrained import get_model
        except ImportError as exc:
            raise StageError(f"demucs: cannot import Demucs/torch ({exc}); build the env: python3 envs/setup_venvs.py demucs") from exc
        torch.set_num_threads(max(1, threads))
        if device == "cuda" and not torch.cuda.is_available():
            raise StageError("demucs: separation.device is cuda but torch sees no CUDA device")
        repo_path = Path(repo) if repo else None
        if repo_path is not None and not repo_path.is_dir():
            raise StageError(f"{repo}: separation.demucs.repo is not a directory")
        try:
            m = get_model(model, repo=repo_path)
        except Exception as exc:
            where = f"in {repo}" if repo_path else "(download failed or unknown name)"
            raise StageError(
                f"demucs model {model!r}: cannot load {where}: {type(exc).__name__}: {str(exc)[:300].rstrip('.')}. "
                f"Offline, put the model's .th/.yaml files in a folder and set separation.demucs.repo to it"
            ) from exc
        m.eval()
        self.torch, self.apply_model, self.model, self.device = torch, apply_model, m, device
        self.rate = int(m.samplerate)
        self.channels = int(m.audio_channels)
        self.sources = list(m.sources)
        if "vocals" not in self.sources:
            raise StageError(f"demucs model {model!r} has no 'vocals' source ({self.sources})")
        self.min_samples = self.rate  # demucs pads internally; keep chunks >= 1 s

    def separate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        wav = torch.from_numpy(np.ascontiguousarray(x.T))
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        wav = (wav - mean) / std
        with torch.no_grad():
            out = self.apply_model(
                self.model, wav[None], device=self.device, shifts=0, split=True, overlap=0.25, progress=False, num_workers=0
            )[0]
        out = out * std + mean
        v = self.sources.index("vocals")
        vocals = out[v]
        acc = out.sum(0) - vocals
        return {"vocals": vocals.T.cpu().numpy(), "accompaniment": acc.T.cpu().numpy()}


def make_backend(method: str, cfg: dict, threads: int, log: logging.Logger) -> Backend:
    device = cfg.get("device", "cpu")
    if method == "spleeter":
        sp = cfg.get("spleeter", {}) or {}
        return SpleeterBackend(sp.get("model_dir", "pretrained_models"), sp.get("model", "2stems"), threads, device, log)
    if method == "demucs":
        dm = cfg.get("demucs", {}) or {}
        return DemucsBackend(dm.get("model", "htdemucs"), dm.get("repo", "") or "", threads, device, log)
    raise StageError(f"separation.method {method!r}: this rule handles spleeter or demucs")


# --- streaming separation of one file ------------------------------------------------------
@dataclass
class SeparationStats:
    n_samples: int
    sample_rate: int
    n_chunks: int
    seconds: float


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def separate_file(
    audio: str | os.PathLike,
    vocals_out: str | os.PathLike,
    accompaniment_out: str | os.PathLike | None,
    backend: Backend,
    chunk_s: float,
    overlap_s: float,
    log: logging.Logger | None = None,
    crossfade_kind: str = "linear",
    progress_every_s: float = 10.0,
) -> SeparationStats:
    """Separate ``audio`` chunk by chunk, writing mono s16 stems of exactly its length."""
    import soundfile as sf

    log = log or logging.getLogger("pvw")
    try:
        info = sf.info(str(audio))
    except Exception as exc:
        raise StageError(f"{audio}: cannot read audio ({exc})") from exc
    sr, n = int(info.samplerate), int(info.frames)
    chunk = int(round(chunk_s * sr))
    ov = int(round(overlap_s * sr))
    if chunk <= 0 or not 0 <= ov < chunk:
        raise StageError(f"{audio}: separation.overlap_s ({overlap_s}) must be >= 0 and below chunk_s ({chunk_s})")
    plan = plan_chunks(n, chunk, ov)
    outputs = {"vocals": vocals_out}
    if accompaniment_out:
        outputs["accompaniment"] = accompaniment_out
    log.info("%s: %.1f s at %d Hz, %d chunk(s) of %g s (overlap %g s), %s at %d Hz", audio, n / sr, sr, len(plan), chunk_s, overlap_s, backend.name, backend.rate)
    progress = Progress(n / sr, f"separate {Path(audio).name} (audio s)", log, every_s=progress_every_s)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmps = {k: stack.enter_context(atomic_path(p)) for k, p in outputs.items()}
        writers = {k: sf.SoundFile(str(t), "w", samplerate=sr, channels=1, subtype="PCM_16", format="WAV") for k, t in tmps.items()}
        stitchers = {k: Stitcher(ov, crossfade_kind) for k in outputs}
        try:
            with sf.SoundFile(str(audio)) as src:
                done = 0
                for i, (s, e) in enumerate(plan):
                    src.seek(s)
                    x = src.read(e - s, dtype="float32", always_2d=True)
                    if len(x) != e - s:
                        raise StageError(f"{audio}: short read at sample {s} ({len(x)} of {e - s})")
                    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
                    stems = backend.separate_mono(x, sr)
                    if "accompaniment" in outputs and "accompaniment" not in stems:
                        stems["accompaniment"] = x - stems["vocals"]
                    last = i == len(plan) - 1
                    for k, w in writers.items():
                        w.write(float_to_s16(stitchers[k].push(stems[k], last)))
                    progress.update((e - done) / sr)
                    done = e
        finally:
            for w in writers.values():
                w.close()
        # Invariant before anything is renamed into place: every stem is as long as the input.
        for k, t in tmps.items():
            got = sf.info(str(t))
            if got.frames != n or got.samplerate != sr:
                raise StageError(f"{outputs[k]}: {k} stem has {got.frames} samples at {got.samplerate} Hz, input {audio} has {n} at {sr} Hz")
    secs = time.monotonic() - t0
    log.info("separated %.1f s of audio in %.1f s (%.1f s per audio hour), peak RSS %.0f MB", n / sr, secs, secs / max(n / sr, 1e-9) * 3600, peak_rss_mb())
    return SeparationStats(n, sr, len(plan), secs)


# --- rule helpers (rules/separate.smk imports these: `snakemake --lint` wants no defs there) ---
def env_name(cfg: dict) -> str:
    """The env family (envs/NAME.yaml, module pvw/NAME) of the configured separator."""
    return "demucs" if cfg.get("method") == "demucs" else "spleeter"


def job_params(cfg: dict) -> dict:
    """What a separation job reads (its `params`, so a change reruns it): the device, the
    chunking and the configured method's own settings. threads/mem_mb are resources and
    keep_accompaniment is a param of its own (whether the file is written)."""
    method = cfg.get("method")
    out = {k: cfg.get(k) for k in ("device", "chunk_s", "overlap_s", "crossfade")}
    if method in ("spleeter", "demucs"):
        out[method] = dict(cfg.get(method) or {})
    return out


# --- Snakemake entry point -----------------------------------------------------------------
def separate_recording(audio: str, vocals: str, acc: str | None, method: str, cfg: dict, threads: int,
                       log: logging.Logger, backend: list) -> None:
    """One recording's stems; ``backend`` holds the model once loaded (empty: load it here)."""
    import soundfile as sf

    info = sf.info(audio)
    if info.frames == 0:  # a recording ingest excluded (inputs.on_error: skip): no model needed
        for path in [vocals] + ([acc] if acc else []):
            with atomic_path(path) as tmp:
                sf.write(str(tmp), np.zeros(0, dtype=np.int16), info.samplerate, subtype="PCM_16", format="WAV")
        log.warning("%s: no audio samples (excluded at ingest): empty stems", audio)
        return
    if not backend:
        t0 = time.monotonic()
        backend.append(make_backend(method, cfg, threads, log))
        log.info("%s model loaded in %.1f s (threads %d, device %s)", method, time.monotonic() - t0, threads,
                 cfg.get("device", "cpu"))
    separate_file(audio, vocals, acc, backend[0], float(cfg.get("chunk_s", 300)), float(cfg.get("overlap_s", 5)), log,
                  crossfade_kind=str(cfg.get("crossfade", "linear")))


def main(snakemake, log: logging.Logger) -> None:
    """One shard (workflow_scripts/shards.py): every member's stems, the model loaded once (and
    not at all when no member has audio)."""
    from workflow_scripts.shards import member_outputs, out_dir_of, processed_path, run_members, write_manifest

    cfg = dict(snakemake.params.cfg)
    method = str(snakemake.params.method)
    out_dir, recs = out_dir_of(snakemake.output.manifest), list(snakemake.params.recs)
    keep_acc = bool(snakemake.params.keep_accompaniment)
    audio = dict(zip(recs, member_outputs(snakemake.input.audio, "audio", recs)))
    threads = int(getattr(snakemake, "threads", 1) or 1)
    backend: list[Backend] = []  # loaded by the first member with audio, then kept
    rows = []

    def separate(rec: str) -> None:
        vocals = processed_path(out_dir, rec, "vocals.wav")
        acc = processed_path(out_dir, rec, "accompaniment.wav") if keep_acc else None
        separate_recording(audio[rec], vocals, acc, method, cfg, threads, log, backend)
        rows.append((rec, "vocals", vocals))
        if acc:
            rows.append((rec, "accompaniment", acc))

    run_members(recs, separate, log, out_dir, "separate_vocals")
    write_manifest(snakemake.output.manifest, rows)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
