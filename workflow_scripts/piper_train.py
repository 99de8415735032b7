"""Train a Piper voice in resumable chunks (runs in the piper env).

Rule ``train_chunk`` runs once per chunk ``n``: it continues training from chunk ``n-1``'s
full state (chunk 0: from scratch, or from ``training.base_checkpoint``) up to epoch
``(n + 1) * checkpoint_every`` (+ the base checkpoint's epochs when resuming a base) and
writes two files:

* ``{root}/checkpoints/chunk_{n}.ckpt``, the full Lightning state (generator, discriminator,
  both optimizers, schedulers, loop progress): what chunk ``n+1`` resumes from. ~846 MB for
  the medium preset; only the newest two are kept (:func:`prune_superseded_states`).
* ``{root}/checkpoints/chunk_{n}.weights.ckpt``, the generator's weights only (plus the
  hyper-parameters and epoch count): what export and per-chunk evaluation read. Kept for
  every chunk, ~1/9 of the full state for medium (95 MB; :data:`CHECKPOINT_MB`).

A killed or failed chunk never touches the previous chunk's files; its rerun starts again
from the previous chunk's full state (or from the last epoch the interrupted attempt
completed, kept in the chunk's work directory).

Training itself is piper's own CLI (``python -m piper.train fit ...``, a LightningCLI), run in
a subprocess through :func:`launch` (``python -m workflow_scripts.piper_train launch ...``),
which only adjusts piper's callback list before handing over to ``piper.train.__main__.main``:

* piper always adds ``ModelCheckpoint(monitor="val_mos")``. ``val_mos``
  is only logged when the UTMOS predictor can be downloaded from torch hub; offline it never
  is and Lightning raises at the end of epoch 0 ("could not find the monitored key"), even
  with ``--model.mos_metric none``. LightningCLI always appends ``trainer_defaults``
  callbacks, so they cannot be removed from the command line; the launcher edits piper's
  module-level ``_DEFAULT_CALLBACKS`` list instead (no piper code is copied or changed).
* piper's other default keeps the 5 best checkpoints by ``val_mel`` (up to 5 x 846 MB per
  chunk for the default model); the chunk's own ``last.ckpt`` is all this workflow needs, so
  the launcher replaces both with one ``ModelCheckpoint(save_last=True, save_top_k=0)``
  writing into the chunk's work directory, plus a small callback that logs epoch, step,
  losses and time per epoch as plain lines. Lightning's CSVLogger keeps every metric.

Functions here import neither torch nor piper at module level: tests and the rule file
import the presets from the test/snakemake env.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, run_stage

# Snakemake runs a copy of this script from .snakemake/scripts/: find the repo via scriptdir.
REPO = (Path(snakemake.scriptdir).resolve().parent if "snakemake" in globals()  # noqa: F821
        else Path(__file__).resolve().parent.parent)

# --- quality presets ---------------------------------------------------------------------
# Piper's quality levels: x_low/low at 16 kHz, medium/high at 22.05 kHz; x_low uses narrow
# text-encoder/flow layers, high a larger HiFi-GAN decoder (resblock 1, 512 channels).
# "reduced" is a tiny model for tests and benchmarks (~1 min/epoch on 20 clips on 2 CPU cores).
_HIGH_DECODER = {
    "resblock": "1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "upsample_rates": [8, 8, 2, 2],
    "upsample_initial_channel": 512,
    "upsample_kernel_sizes": [16, 16, 4, 4],
}
PRESETS: dict[str, dict] = {
    "x_low": {"sample_rate": 16000, "model": {"hidden_channels": 96, "inter_channels": 96, "filter_channels": 384}},
    "low": {"sample_rate": 16000, "model": {}},
    "medium": {"sample_rate": 22050, "model": {}},
    "high": {"sample_rate": 22050, "model": dict(_HIGH_DECODER)},
    "reduced": {
        "sample_rate": 16000,
        "model": {
            "hidden_channels": 96,
            "inter_channels": 96,
            "filter_channels": 384,
            "n_layers": 2,
            "upsample_initial_channel": 128,
            "segment_size": 4096,
        },
    },
}
# Checkpoint sizes per preset (MB, 1e6 bytes): the full Lightning state of a chunk and its
# generator-only weights (a real checkpoint has the same tensors; its loop/callback
# bookkeeping adds well under 1 MB). Measured with piper-tts 1.8.0 / torch 2.13 by
#   $(python3 envs/setup_venvs.py --print-path piper)/bin/python bench/bench_training.py --sizes-only
# which builds each preset's VitsModel from piper's code, takes one AdamW step on both
# optimizers (so their moment buffers exist, as after any training step) and saves the
# state the way a chunk does; real 1-epoch chunks gave the same full states (medium 846 MB,
# reduced 621 MB: bench_training.py --presets medium,reduced). The discriminator (~47 M parameters,
# the same for every preset) and the optimizers' two moment buffers per parameter are most
# of a full state; the weights are the generator's fp32 parameters alone.
CHECKPOINT_MB = {  # generator parameters: x_low 7.1 M, low/medium 23.7 M, high 36.3 M, reduced 5.0 M
    "x_low": {"state": 646.7, "weights": 28.5},
    "low": {"state": 845.7, "weights": 94.9},
    "medium": {"state": 845.8, "weights": 94.9},
    "high": {"state": 997.9, "weights": 145.6},
    "reduced": {"state": 621.3, "weights": 20.0},
}
# Full states on disk: the newest chunk's (what the next chunk resumes from) and the one
# before it (the newest chunk's own input, needed should that chunk be rerun); while a chunk
# trains, its predecessor's state and its own in-progress last.ckpt: two either way.
KEPT_STATES = 2
# piper's dataset cache (checkpoints/cache/) holds each clip as float32 audio and a float32
# linear spectrogram (1024-point FFT: 513 bins every 256 samples): bytes per audio sample.
# Measured: 20 clips, 58 s at 16 kHz -> 11.1 MB of cache, 12.0 bytes per sample.
CACHE_BYTES_PER_SAMPLE = 4 + 4 * 513 / 256

# Rough peak resident memory on CPU (MB) for batch size 4 of ~3 s clips (measured on
# 2 CPU cores: default 4.3 GB, reduced 3.2 GB) and the extra per batch item; used for `mem_mb` and the
# preflight estimate. GPU memory scales similarly.
_MEM_BASE_MB = {"x_low": 2600, "low": 3000, "medium": 3200, "high": 4200, "reduced": 2600}
_MEM_PER_ITEM_MB = {"x_low": 120, "low": 250, "medium": 280, "high": 400, "reduced": 150}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise StageError(f"training.preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def preset_sample_rate(name: str) -> int:
    return int(preset(name)["sample_rate"])


def estimate_memory_mb(preset_name: str, batch_size: int, longest_clip_s: float = 3.0) -> int:
    """Peak training memory estimate: base + batch items scaled by the longest clip."""
    scale = max(1.0, longest_clip_s / 3.0)
    return int(_MEM_BASE_MB[preset_name] + _MEM_PER_ITEM_MB[preset_name] * batch_size * scale)


def n_chunks(epochs: int, every: int) -> int:
    """Chunks of ``every`` epochs that cover ``epochs`` (rounded up, at least one)."""
    return max(1, -(-int(epochs) // int(every)))


def estimate_disk_mb(preset_name: str, chunks: int, audio_s: float = 0.0) -> dict:
    """Disk under ``checkpoints/`` for a run of ``chunks`` chunks on ``audio_s`` seconds of
    clips: at most KEPT_STATES full states, every chunk's weights and piper's dataset cache
    (the logs are small beside them). ``without_pruning_mb``: had every state been kept."""
    preset(preset_name)  # an unknown name fails here, naming the known ones
    sizes = CHECKPOINT_MB[preset_name]
    states = min(KEPT_STATES, chunks)
    cache = audio_s * preset_sample_rate(preset_name) * CACHE_BYTES_PER_SAMPLE / 1e6
    total = states * sizes["state"] + chunks * sizes["weights"] + cache
    return {"chunks": chunks, "state_mb": sizes["state"], "weights_mb": sizes["weights"], "kept_states": states,
            "cache_mb": round(cache), "total_mb": round(total),
            "without_pruning_mb": round(chunks * sizes["state"] + cache)}


def target_epochs(n: int, every: int, offset: int = 0) -> int:
    """Total epochs completed at the end of chunk ``n`` (epochs are counted from 0 of the
    model's life, so a resumed base checkpoint's epochs are the ``offset``)."""
    if n < 0 or every < 1:
        raise StageError(f"train_chunk: bad chunk {n} / checkpoint_every {every}")
    return offset + (n + 1) * every


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A Lightning checkpoint, memory-mapped (needs torch); StageError when it is not one."""
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False, mmap=True)
    except Exception as exc:  # torch raises many types for a truncated/foreign file
        raise StageError(f"{path}: not a readable Lightning checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or "epoch" not in ckpt or "state_dict" not in ckpt:
        raise StageError(f"{path}: not a Lightning checkpoint (no epoch/state_dict)")
    return ckpt


def completed_epochs(ckpt: dict) -> int:
    """Epochs a loaded Lightning checkpoint has completed.

    Lightning's fit-loop progress counts completed epochs (a mid-epoch checkpoint, never
    written by this workflow, does not count its partial epoch). Measured with lightning
    2.6: last.ckpt after n epochs has completed == epoch == n.
    """
    loops = ckpt.get("loops", {}).get("fit_loop", {})
    done = loops.get("epoch_progress", {}).get("current", {}).get("completed")
    return int(done) if isinstance(done, int) else int(ckpt["epoch"])


def checkpoint_epochs(path: str | os.PathLike) -> int:
    """Epochs the Lightning checkpoint (full state or weights) at ``path`` has completed."""
    return completed_epochs(load_checkpoint(path))


# --- per-chunk weights ----------------------------------------------------------------------
GENERATOR_PREFIX = "model_g."  # VitsModel.model_g: the synthesiser (SynthesizerTrn)
WEIGHTS_CONTENT = "generator weights"  # the weights file's "content" entry


def generator_weights(state: dict) -> dict:
    """A chunk's full Lightning state reduced to what export and evaluation read.

    The result is still a Lightning-style checkpoint (``state_dict``, ``hyper_parameters``,
    ``epoch``, ``global_step``, the fit loop's epoch progress for :func:`completed_epochs`),
    with the generator's parameters only: no discriminator, no optimizer or scheduler state,
    so it cannot be resumed from (``--ckpt_path`` would fail), only exported, synthesised
    with, or used as a warm start (``--model.warmstart_ckpt`` copies matching parameters).
    """
    generator = {k: v.clone() for k, v in state["state_dict"].items() if k.startswith(GENERATOR_PREFIX)}
    if not generator:
        raise StageError(f"checkpoint has no generator parameters ({GENERATOR_PREFIX}*)")
    fit_loop = state.get("loops", {}).get("fit_loop", {})
    return {
        "content": WEIGHTS_CONTENT,
        "epoch": state["epoch"],
        "global_step": state.get("global_step", 0),
        "pytorch-lightning_version": state.get("pytorch-lightning_version"),
        "hyper_parameters": dict(state.get("hyper_parameters") or {}),
        "loops": {"fit_loop": {"epoch_progress": fit_loop.get("epoch_progress", {})}},
        "state_dict": generator,
    }


def load_generator_model(path: str | os.PathLike):
    """piper's VitsModel with the generator of ``path`` (weights file or full state) loaded;
    the discriminator, absent from a weights file, stays as initialised (export never runs
    it). Any other missing or unexpected parameter is an error (needs torch + piper)."""
    import torch
    from piper.train.vits.lightning import VitsModel

    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    # fit-time options only: no MOS model to set up, no warm start file to look for
    hparams.update(mos_metric="none", warmstart_ckpt=None, vocoder_warmstart_ckpt=None)
    model = VitsModel(**hparams)
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    wrong = [k for k in missing if k.startswith(GENERATOR_PREFIX)] + list(unexpected)
    if wrong:
        raise StageError(f"{path}: generator parameters do not fit the model: {', '.join(wrong[:5])}")
    return model


def prune_superseded_states(ckpt_root: Path, n: int, log) -> float:
    """Delete the full states of chunks before ``n - 1`` (and their chunks' work leftovers);
    return the MB freed. Runs at the start of chunk ``n``: Snakemake starts chunk ``n`` only
    after it recorded chunk ``n-1`` as complete, so no chunk that may still be rerun without
    a config change (which retrains from chunk 0) reads them. Chunk ``n-1``'s own input, the
    state of ``n-2``, stays until then: were it deleted by chunk ``n-1`` itself, a kill -9
    between that job's end and Snakemake's record of it would make the rerun need the
    deleted file, and Snakemake would retrain every chunk before it to rebuild it. A state
    whose weights file is missing (a run from before per-chunk weights) is kept: it is that
    chunk's only copy."""
    freed = 0.0
    for state in sorted(ckpt_root.glob("chunk_*.ckpt")):
        m = re.fullmatch(r"chunk_(\d+)\.ckpt", state.name)
        if not m or int(m.group(1)) >= n - 1:
            continue
        k = int(m.group(1))
        if not (ckpt_root / f"chunk_{k}.weights.ckpt").is_file():
            log.warning("keeping %s: no %s beside it", state, f"chunk_{k}.weights.ckpt")
            continue
        freed += state.stat().st_size / 1e6
        state.unlink()
        log.info("deleted superseded full state %s (chunk %d's weights are kept)", state, k)
    for k in range(n):  # a finished chunk's interrupted-attempt leftovers
        for leftover in (ckpt_root / "work" / f"chunk_{k}" / "ckpt" / "last.ckpt",
                         ckpt_root / "work" / f"chunk_{k}" / "resume_from.ckpt"):
            if leftover.is_file():
                freed += leftover.stat().st_size / 1e6
                leftover.unlink()
    return freed


# What each training rule reads of `training` (its `params`: Snakemake reruns a job when its
# params change, so these lists decide what a config change redoes).
# piper_dataset: the preset's rate and segment size, the clip limits, the phonemizer voice;
# batch_size/validation_split/num_test_examples feed the preflight estimate only, but they
# rerun the chunks anyway (CHUNK_KEYS), so the dataset may as well follow them.
DATASET_KEYS = ("preset", "espeak_voice", "max_phoneme_ids", "max_clip_s", "min_clip_s", "batch_size",
                "validation_split", "num_test_examples")
# train_chunk: what the checkpoint depends on. Not `epochs` (it only sets how many chunks
# there are: raising it adds chunks on top of the existing ones) and not RUN_OPTION_KEYS.
CHUNK_KEYS = ("preset", "model_overrides", "espeak_voice", "batch_size", "validation_split", "num_test_examples",
              "seed", "precision", "checkpoint_every", "base_checkpoint", "base_mode")
# How a chunk runs, not what it computes: read from the job's config at run time, so moving
# to a GPU, more loader workers, other log intervals or a new voice name (export_voice's
# param) continue the chain instead of retraining it. threads/mem_mb/chunk_runtime_min
# are the rule's threads and resources.
RUN_OPTION_KEYS = ("device", "num_workers", "log_every_steps", "voice_name")
# piper_dataset's disk estimate counts chunks: read from the job's config at run time too,
# since as params they would rewrite the dataset (and retrain every chunk) when `epochs` is
# raised. The report records the values it used; each train_chunk log states the estimate
# for the config it runs with.
DISK_PLAN_KEYS = ("epochs", "checkpoint_every")


class TrainingPlan:
    """The chunk chain for `rules/train.smk` (kept here: Snakemake's linter wants no `def`
    next to rules). ``cfg`` is ``config["training"]``, ``dataset_path`` the common helper.
    Bound methods serve as input/resource functions (no lambdas in rules)."""

    def __init__(self, cfg: dict, dataset_path):
        self.cfg, self.dataset_path = cfg, dataset_path

    def dataset_params(self) -> dict:
        out = {k: self.cfg[k] for k in DATASET_KEYS}
        segment = self.cfg["model_overrides"].get("segment_size")
        if segment is not None:  # the only model override the dataset's limits depend on
            out["model_overrides"] = {"segment_size": segment}
        return out

    def chunk_params(self) -> dict:
        return {k: self.cfg[k] for k in CHUNK_KEYS}

    def stale_chunks_message(self) -> str | None:
        """When the finished chunks were trained with another `checkpoint_every`: what the
        run is about to do about it (each chunk's work dir records its setting)."""
        every = int(self.cfg["checkpoint_every"])
        found = {}
        for n in range(self.n_chunks()):
            info = Path(self.weights_path(n)).parent / "work" / f"chunk_{n}" / "chunk.json"
            if not Path(self.weights_path(n)).exists() or not info.exists():
                continue
            try:
                old = json.loads(info.read_text()).get("checkpoint_every")
            except (OSError, ValueError):
                continue
            if old is not None and int(old) != every:
                found[n] = int(old)
        if not found:
            return None
        olds = sorted(set(found.values()))
        return (f"training.checkpoint_every is {every}, but the existing checkpoints "
                f"{self.dataset_path('checkpoints/')}chunk_{{{','.join(map(str, sorted(found)))}}}.weights.ckpt were "
                f"trained with {'/'.join(map(str, olds))} epoch(s) per chunk: every train_chunk job reruns, "
                f"training from {'training.base_checkpoint' if self.cfg['base_checkpoint'] else 'scratch'} "
                f"(chunk 0). Set checkpoint_every back to {olds[0]} to keep them.")

    def n_chunks(self) -> int:
        return n_chunks(self.cfg["epochs"], self.cfg["checkpoint_every"])

    def state_path(self, n) -> str:
        """Chunk n's full Lightning state (resume only; the newest two are kept)."""
        return self.dataset_path(f"checkpoints/chunk_{n}.ckpt")

    def weights_path(self, n) -> str:
        """Chunk n's generator weights: kept for every chunk, what export/evaluation read."""
        return self.dataset_path(f"checkpoints/chunk_{n}.weights.ckpt")

    def all_weights(self) -> list[str]:
        return [self.weights_path(n) for n in range(self.n_chunks())]

    def final_weights(self) -> str:
        return self.weights_path(self.n_chunks() - 1)

    def previous_state(self, wildcards) -> dict:
        """Chunk n-1's full state (chunk 0: the fine-tuning base, if any) for `unpack()`."""
        n = int(wildcards.n)
        if n > 0:
            return {"previous": self.state_path(n - 1)}
        return {"base": self.cfg["base_checkpoint"]} if self.cfg["base_checkpoint"] else {}

    def gpu(self, wildcards) -> int:
        return 1 if self.cfg["device"] == "cuda" else 0

    def mem_mb(self, wildcards) -> int:
        if self.cfg["mem_mb"]:
            return int(self.cfg["mem_mb"])
        return int(1.3 * estimate_memory_mb(self.cfg["preset"], int(self.cfg["batch_size"]),
                                            float(self.cfg["max_clip_s"])))

    def runtime(self, wildcards) -> int:
        return int(self.cfg["chunk_runtime_min"])

    def sample_rate(self) -> int:
        return preset_sample_rate(self.cfg["preset"])


def build_fit_config(cfg: dict, work: Path, csv_path: str, audio_dir: str, cache_dir: Path, max_epochs: int) -> dict:
    """The LightningCLI config (YAML/JSON) for one chunk: model preset, data, trainer."""
    p = preset(cfg["preset"])
    model = {"sample_rate": p["sample_rate"], "mos_metric": "none", **p["model"], **cfg["model_overrides"]}
    device = cfg["device"]
    trainer = {
        "max_epochs": int(max_epochs),
        "accelerator": "gpu" if device == "cuda" else "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": int(cfg["log_every_steps"]),
        "default_root_dir": str(work),
        "logger": {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            # A fresh version per attempt: LightningCLI refuses to overwrite its config.yaml.
            "init_args": {"save_dir": str(work), "name": "csv", "version": f"attempt_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}"},
        },
    }
    if cfg["precision"]:
        trainer["precision"] = cfg["precision"]
    data = {
        "csv_path": str(csv_path),
        "audio_dir": str(audio_dir),
        "cache_dir": str(cache_dir),
        "config_path": str(work / "config.json"),
        "espeak_voice": cfg["espeak_voice"],
        "voice_name": cfg["voice_name"],
        "batch_size": int(cfg["batch_size"]),
        "num_workers": int(cfg["num_workers"]),
        "validation_split": float(cfg["validation_split"]),
        "num_test_examples": int(cfg["num_test_examples"]),
    }
    return {"seed_everything": int(cfg["seed"]), "model": model, "data": data, "trainer": trainer}


def fit_command(config_file: Path, ckpt_dir: Path, threads: int, ckpt_path: str | None, warmstart: str | None,
                python: str | None = None, log_every: int = 10) -> list[str]:
    cmd = [python or sys.executable, "-m", "workflow_scripts.piper_train", "launch",
           "--ckpt-dir", str(ckpt_dir), "--threads", str(threads), "--log-every", str(log_every), "--",
           "fit", "--config", str(config_file)]
    if warmstart:
        cmd += ["--model.warmstart_ckpt", str(warmstart)]
    if ckpt_path:
        cmd += ["--ckpt_path", str(ckpt_path)]
    return cmd


def run_logged(cmd: list[str], log, env: dict | None = None, cwd: str | None = None) -> tuple[int, list[str]]:
    """Run ``cmd`` (a list, never a shell), copy every output line into the log."""
    log.info("running: %s", " ".join(cmd))
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
                            bufsize=1, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line:
            log.info("| %s", line)
            tail = (tail + [line])[-30:]
    return proc.wait(), tail


def subprocess_env(threads: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(max(1, threads))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def dataset_cache_dir(root: Path, csv_path: str, sample_rate: int) -> Path:
    """piper caches phoneme ids/audio/spectrograms keyed by row number + text only, so a
    rebuilt dataset (new audio, same text) or another sample rate gets its own folder."""
    import hashlib

    h = hashlib.sha256(Path(csv_path).read_bytes())
    h.update(str(sample_rate).encode())
    return root / "cache" / h.hexdigest()[:12]


def train_chunk(n: int, cfg: dict, csv_path: str, audio_dir: str, state_out: str, weights_out: str,
                previous: str | None, threads: int, log) -> dict:
    """Train chunk ``n``; write its full state to ``state_out`` and its generator weights to
    ``weights_out`` (each atomically), after deleting the states no rerun can need."""
    every = int(cfg["checkpoint_every"])
    # piper runs with the work dir as cwd: make every path absolute first.
    out = Path(state_out).resolve()
    csv_path, audio_dir = str(Path(csv_path).resolve()), str(Path(audio_dir).resolve())
    previous = str(Path(previous).resolve()) if previous else None
    ckpt_root = out.parent
    work = ckpt_root / "work" / f"chunk_{n}"
    ckpt_dir = work / "ckpt"
    work.mkdir(parents=True, exist_ok=True)
    freed = prune_superseded_states(ckpt_root, n, log)

    base = str(Path(cfg["base_checkpoint"]).resolve()) if cfg["base_checkpoint"] else None
    base_mode = cfg["base_mode"]
    if base and not Path(base).is_file():
        raise StageError(f"{base}: training.base_checkpoint does not exist")
    offset = 0
    if base and base_mode == "resume":
        offset = checkpoint_epochs(base)
    target = target_epochs(n, every, offset)

    warmstart = None
    if previous:
        start_from, start_epochs = previous, checkpoint_epochs(previous)
        if start_epochs != target - every:
            log.warning("%s has %d epochs, expected %d (checkpoint_every changed?)", previous, start_epochs, target - every)
    elif base and base_mode == "resume":
        start_from, start_epochs = base, offset
    else:
        start_from, start_epochs = None, 0
        warmstart = base  # fine-tune: weights only, fresh optimizer, epoch 0
    if start_epochs >= target:
        raise StageError(f"{start_from}: already has {start_epochs} epochs >= chunk {n}'s target {target}; "
                         "remove later checkpoints or raise training.epochs")

    # An interrupted attempt of this chunk may have finished some epochs: continue from there.
    partial = ckpt_dir / "last.ckpt"
    if partial.is_file():
        try:
            done = checkpoint_epochs(partial)
        except StageError as exc:
            log.warning("ignoring unreadable %s (%s)", partial, exc)
            done = -1
        if start_epochs < done < target:
            log.info("resuming interrupted chunk %d from %s (%d epochs done)", n, partial, done)
            start_from, start_epochs, warmstart = str(partial), done, None
            kept = work / "resume_from.ckpt"
            os.replace(partial, kept)  # Lightning would overwrite last.ckpt while reading it
            start_from = str(kept)
    log.info("chunk %d: epochs %d -> %d (checkpoint_every %d, base offset %d), from %s%s",
             n, start_epochs, target, every, offset, start_from or "scratch",
             f", warm start {warmstart}" if warmstart else "")

    sample_rate = preset_sample_rate(cfg["preset"])
    cache = dataset_cache_dir(ckpt_root, csv_path, sample_rate)
    fit_cfg = build_fit_config(cfg, work, csv_path, audio_dir, cache, target)
    config_file = work / "fit.json"  # JSON is YAML: jsonargparse reads it with --config
    config_file.write_text(json.dumps(fit_cfg, indent=2))
    cmd = fit_command(config_file, ckpt_dir, threads, start_from, warmstart,
                      log_every=int(cfg["log_every_steps"]))
    t0 = time.monotonic()
    rc, tail = run_logged(cmd, log, env=subprocess_env(threads), cwd=str(work))
    elapsed = time.monotonic() - t0
    if rc != 0:
        hint = next((t for t in reversed(tail) if "Error" in t or "error" in t), tail[-1] if tail else "")
        raise StageError(f"{out}: piper.train fit exited with {rc} ({hint.strip()[:300]}); previous checkpoints kept")
    final = ckpt_dir / "last.ckpt"
    if not final.is_file():
        raise StageError(f"{final}: training finished without writing last.ckpt")
    state = load_checkpoint(final)
    done = completed_epochs(state)
    if done != target:
        raise StageError(f"{final}: has {done} epochs, expected {target}")
    import torch

    weights = Path(weights_out).resolve()
    with atomic_path(weights) as tmp:
        torch.save(generator_weights(state), tmp)
    del state
    with atomic_path(out) as tmp:
        os.replace(final, tmp)  # same file system: a rename, never a second copy on disk
    resume_copy = work / "resume_from.ckpt"  # an interrupted attempt's epochs, now in `out`
    if resume_copy.exists():
        resume_copy.unlink()
    info = {"chunk": n, "epochs": target, "checkpoint_every": every, "from": start_from, "warmstart": warmstart, "seconds": round(elapsed, 1),
            "seconds_per_epoch": round(elapsed / max(1, target - start_epochs), 1),
            "state_mb": round(out.stat().st_size / 1e6, 1), "weights_mb": round(weights.stat().st_size / 1e6, 1),
            "pruned_mb": round(freed, 1), "voice_config": str(work / "config.json")}
    (work / "chunk.json").write_text(json.dumps(info, indent=2))
    log.info("chunk %d done: %s", n, json.dumps(info))
    return info


def run_options(config: dict, keys=RUN_OPTION_KEYS) -> dict:
    """``keys`` of the job's config["training"] (what params leave out on purpose)."""
    training = config["training"]
    return {k: training[k] for k in keys}


def disk_message(preset_name: str, epochs: int, every: int, audio_s: float = 0.0) -> str:
    d = estimate_disk_mb(preset_name, n_chunks(epochs, every), audio_s)
    cache = f" + {d['cache_mb']} MB dataset cache" if audio_s else ""
    return (f"checkpoints/ needs ~{d['total_mb'] / 1000:.1f} GB for {epochs} epochs of preset {preset_name}: "
            f"{d['kept_states']} full state(s) of {d['state_mb']:.0f} MB + {d['chunks']} chunk weights of "
            f"{d['weights_mb']:.0f} MB{cache} (every full state kept: {d['without_pruning_mb'] / 1000:.1f} GB)")


def main(snakemake, log) -> None:
    cfg = {**run_options(snakemake.config), **dict(snakemake.params.cfg)}
    plan = run_options(snakemake.config, DISK_PLAN_KEYS)
    if "epochs" in plan:
        log.info("%s", disk_message(cfg["preset"], int(plan["epochs"]), int(cfg["checkpoint_every"])))
    n = int(snakemake.wildcards.n)
    previous = str(snakemake.input.previous) if "previous" in snakemake.input.keys() else None
    train_chunk(n, cfg, str(snakemake.input.csv), str(snakemake.input.wavs), str(snakemake.output.state),
                str(snakemake.output.weights), previous, int(snakemake.threads), log)


# --- the launcher: runs piper's LightningCLI with this workflow's callbacks ---------------
def _progress_callback(log_every: int):
    import logging

    from lightning.pytorch.callbacks import Callback

    logger = logging.getLogger("pvw.train")

    def _fmt(metrics, keys):
        out = []
        for k in keys:
            if k in metrics:
                try:
                    out.append(f"{k}={float(metrics[k]):.4f}")
                except (TypeError, ValueError):
                    pass
        return " ".join(out)

    class Progress(Callback):
        """One plain log line per `log_every` steps and per epoch (no tqdm in log files)."""

        def on_train_epoch_start(self, trainer, pl_module):
            self.t0 = time.monotonic()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if log_every > 0 and (batch_idx + 1) % log_every == 0:
                logger.info("epoch %d step %d batch %d: %s", trainer.current_epoch, trainer.global_step, batch_idx + 1,
                            _fmt(trainer.callback_metrics, ("loss_g", "loss_d", "train_mel")))

        def on_train_epoch_end(self, trainer, pl_module):
            logger.info("epoch %d done in %.1fs (step %d): %s", trainer.current_epoch, time.monotonic() - self.t0,
                        trainer.global_step,
                        _fmt(trainer.callback_metrics, ("loss_g", "loss_d", "train_mel", "train_kl", "train_dur",
                                                        "val_loss", "val_mel")))

    return Progress()


def launch(argv: list[str]) -> None:
    """``launch --ckpt-dir D [--threads N] [--log-every K] -- <piper.train args>``."""
    import argparse
    import logging

    ap = argparse.ArgumentParser(prog="piper_train launch")
    ap.add_argument("--ckpt-dir", required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest

    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    # Lightning has its own console handler: keep its lines from being printed twice.
    logging.getLogger("lightning.pytorch").propagate = False
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    import piper.train.__main__ as piper_cli

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # Breakage 2 (see module docstring): replace piper's default checkpoint callbacks, the
    # offline-crashing val_mos one included, by one that keeps only last.ckpt of this chunk.
    dropped = [getattr(cb, "monitor", None) for cb in piper_cli._DEFAULT_CALLBACKS if isinstance(cb, ModelCheckpoint)]
    piper_cli._DEFAULT_CALLBACKS[:] = [cb for cb in piper_cli._DEFAULT_CALLBACKS if not isinstance(cb, ModelCheckpoint)]
    piper_cli._DEFAULT_CALLBACKS.append(ModelCheckpoint(dirpath=args.ckpt_dir, save_last=True, save_top_k=0))
    piper_cli._DEFAULT_CALLBACKS.append(_progress_callback(args.log_every))
    logging.getLogger("pvw.train").info("replaced piper's ModelCheckpoint callbacks %s by last.ckpt in %s",
                                        dropped, args.ckpt_dir)
    sys.argv = ["piper.train"] + rest
    piper_cli.main()


def export(argv: list[str]) -> None:
    """``export -- <piper.train.export_onnx args>`` with torch's legacy ONNX exporter.

    Reads a chunk's weights file as well as a full state (see :func:`load_generator_model`).

    Breakage 3: torch >= 2.9 defaults ``torch.onnx.export`` to the dynamo exporter, which
    needs ``onnxscript`` (not installed) and does not handle VITS's data-dependent shapes;
    piper's export script calls ``torch.onnx.export`` without ``dynamo=``, so the legacy
    TorchScript-based exporter is selected here by defaulting ``dynamo=False``.
    """
    import functools

    import torch

    rest = argv[1:] if argv[:1] == ["--"] else argv
    torch.onnx.export = functools.partial(torch.onnx.export, dynamo=False)
    import piper.train.export_onnx as piper_export

    class GeneratorCheckpoint:
        """Stands in for VitsModel in piper's exporter, which loads with Lightning's strict
        ``load_from_checkpoint`` and so refuses a weights file (no discriminator)."""

        @staticmethod
        def load_from_checkpoint(path, map_location=None):
            return load_generator_model(path)

    piper_export.VitsModel = GeneratorCheckpoint

    sys.argv = ["piper.train.export_onnx"] + rest
    piper_export.main()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] in ("launch", "export"):
    {"launch": launch, "export": export}[sys.argv[1]](sys.argv[2:])
elif "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
