"""Piper stage: dataset + preflight, chunked training (kill + resume, bounded checkpoint disk),
warm start, export from per-chunk weights, smoke test.

Unit tests run in the test env. The training tests run piper in its own venv
(`python3 envs/setup_venvs.py piper`) through Snakemake with `--sdm env-modules`, on a tiny
Snakefile that includes `rules/train.smk` with a minimal stand-in for `rules/common.smk`;
they skip when that venv (or espeak-ng) is absent. Budget: ~6-8 minutes on 2 CPU cores
(reduced model, 20 espeak-ng clips, 1 epoch per chunk).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import yaml

from tests.speech_fixtures import config_section
from tests.workflow_runner import kill_once_logged
from workflow_scripts import piper_dataset as pd
from workflow_scripts import piper_train as pt
from workflow_scripts.io_utils import StageError

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]


def piper_python() -> str | None:
    venv = subprocess.run([sys.executable, str(REPO / "envs" / "setup_venvs.py"), "--print-path", "piper"],
                          capture_output=True, text=True, check=True).stdout.strip()
    py = Path(venv) / "bin" / "python"
    return str(py) if (Path(venv) / ".pvw-complete").exists() and py.exists() else None


needs_piper = pytest.mark.skipif(
    piper_python() is None or shutil.which("espeak-ng") is None or not Path(SNAKEMAKE).exists(),
    reason="piper venv (python3 envs/setup_venvs.py piper), espeak-ng or snakemake missing",
)


# --- fixtures -----------------------------------------------------------------------------
def make_clips(root: Path, n: int = 20, rate: int = 22050, rec: str = "rec") -> Path:
    """`n` espeak-ng sentences as processed clips + metadata.csv (the aggregate stage's format)."""
    clips = root / "processed" / rec / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate((SENTENCES * 2)[:n], 1):
        name = f"{rec}_{i:05d}.wav"
        raw = clips / f".{name}.espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(raw), text], check=True)
        audio, sr = sf.read(str(raw), dtype="float32")
        raw.unlink()
        if sr != rate:
            import soxr

            audio = soxr.resample(audio, sr, rate)
        pad = np.zeros(int(0.2 * rate), dtype=np.float32)
        audio = np.concatenate([pad, 0.8 * audio / max(1e-6, np.abs(audio).max()), pad])
        sf.write(str(clips / name), audio, rate, subtype="PCM_16")
        rows.append(f"{name}|{text}|{len(audio) / rate:.3f}|asterisk|0.9000")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return clips


def training_config(**over) -> dict:
    cfg = {
        "preset": "reduced",
        "espeak_voice": "en-us",
        "voice_name": "test",
        "batch_size": 4,
        "epochs": 2,
        "checkpoint_every": 1,
        "base_checkpoint": "",
        "base_mode": "warmstart",
        "device": "cpu",
        "precision": "",
        "threads": 2,
        "num_workers": 0,
        "max_phoneme_ids": 400,
        "max_clip_s": 15.0,
        "min_clip_s": 0.5,
        "validation_split": 0.1,
        "num_test_examples": 0,
        "seed": 1234,
        "mem_mb": 0,
        "chunk_runtime_min": 60,
        "log_every_steps": 1,
        "model_overrides": {},
        "smoke_sentences": ["Hello world.", "This is a test of the voice."],
        "export": "best",
    }
    cfg.update(over)
    return cfg


MINI_COMMON = '''
import os, sys
sys.path.insert(0, {repo!r})
from workflow_scripts.envmodules import configure_env_modules
configure_env_modules({repo!r})
OUT = os.path.normpath(config["output_dir"])
def dataset_path(name):
    return f"{{OUT}}/{{name}}"
def log_path(rule, key):
    return f"{{OUT}}/logs/{{rule}}/{{key}}.log"
def benchmark_path(rule, key):
    return f"{{OUT}}/benchmarks/{{rule}}/{{key}}.tsv"
def env_module(name):
    return f"pvw/{{name}}"
def all_clip_dirs():
    return [dataset_path("processed/rec/clips")]
def recut_dirs():
    return []
'''

MINI_SNAKEFILE = '''
configfile: "config.yaml"
include: "common.smk"
include: {train!r}
include: {evaluate!r}
rule all:
    input:
        dataset_path("voice/voice.onnx"),
        dataset_path("voice/smoke_test.json"),
'''


def make_workdir(tmp: Path, **train_over) -> Path:
    out = tmp / "out"
    make_clips(out)
    (tmp / "common.smk").write_text(MINI_COMMON.format(repo=str(REPO)))
    (tmp / "Snakefile").write_text(MINI_SNAKEFILE.format(train=str(REPO / "rules" / "train.smk"),
                                                         evaluate=str(REPO / "rules" / "evaluate.smk")))
    # the voice is judged in the full workflow's tests (tests/test_rerun_knobs.py): here the
    # selection falls back to the last chunk, as with evaluation.enabled false
    cfg = {"output_dir": "out", "sample_rate": 22050, "training": training_config(**train_over),
           "evaluation": config_section("evaluation", enabled=False)}
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    return out


def snakemake_cmd(workdir: Path, *targets: str) -> list[str]:
    return [SNAKEMAKE, "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir), "--cores", "2",
            "--sdm", "env-modules", "--printshellcmds", *targets]


def pending(workdir: Path, *targets: str) -> dict[str, int]:
    """Rule -> job count of the mini workflow's dry run (empty: nothing to be done)."""
    proc = subprocess.run(snakemake_cmd(workdir, *targets, "-n"), capture_output=True, text=True, timeout=300,
                          cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "Job stats:" not in proc.stdout:
        return {}
    rows = proc.stdout.split("Job stats:", 1)[1].splitlines()[3:]
    counts = {}
    for row in rows:
        parts = row.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def set_epochs(workdir: Path, epochs: int) -> None:
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["training"]["epochs"] = epochs
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def run_workflow(workdir: Path, *targets: str, timeout: int = 900) -> subprocess.CompletedProcess:
    # The piper venv's module must exist: setup_venvs writes .modules/pvw/piper on reuse.
    subprocess.run([sys.executable, str(REPO / "envs" / "setup_venvs.py"), "piper"], check=True,
                   capture_output=True)
    proc = subprocess.run(snakemake_cmd(workdir, *targets), capture_output=True, text=True, timeout=timeout,
                          cwd=workdir)
    if proc.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "out" / "logs").rglob("*.log")))
        raise AssertionError(f"snakemake failed:\n{proc.stderr[-5000:]}\n{logs}")
    return proc


# --- unit tests (test env only) -------------------------------------------------------------
def test_presets_and_epoch_targets():
    assert pt.preset_sample_rate("x_low") == pt.preset_sample_rate("low") == 16000
    assert pt.preset_sample_rate("medium") == pt.preset_sample_rate("high") == 22050
    red = pt.PRESETS["reduced"]["model"]
    assert (red["hidden_channels"], red["filter_channels"], red["n_layers"], red["segment_size"]) == (96, 384, 2, 4096)
    assert [pt.target_epochs(n, 5) for n in range(3)] == [5, 10, 15]
    assert pt.target_epochs(0, 5, offset=1000) == 1005  # resumed base keeps its epoch counter
    with pytest.raises(StageError, match="unknown preset"):
        pt.preset("ultra")
    assert pt.estimate_memory_mb("medium", 16) > pt.estimate_memory_mb("reduced", 4)


def test_checkpoint_disk_estimate():
    # medium, 200 epochs in chunks of 10 (the defaults): 20 chunks
    d = pt.estimate_disk_mb("medium", pt.n_chunks(200, 10))
    assert d["chunks"] == 20 and d["kept_states"] == pt.KEPT_STATES == 2
    sizes = pt.CHECKPOINT_MB["medium"]
    assert d["total_mb"] == round(2 * sizes["state"] + 20 * sizes["weights"])
    assert d["without_pruning_mb"] == round(20 * sizes["state"]) > 4 * d["total_mb"]
    assert set(pt.CHECKPOINT_MB) == set(pt.PRESETS)
    assert all(0 < s["weights"] < s["state"] / 4 for s in pt.CHECKPOINT_MB.values())
    assert pt.estimate_disk_mb("reduced", 1)["kept_states"] == 1  # one chunk: one state
    # an hour of clips at 22.05 kHz: ~950 MB of piper's float32 audio + spectrogram cache
    assert 900 < pt.estimate_disk_mb("medium", 20, 3600.0)["cache_mb"] < 1000
    assert pt.n_chunks(25, 10) == 3 and pt.n_chunks(1, 10) == 1
    assert "GB for 200 epochs of preset medium" in pt.disk_message("medium", 200, 10)
    with pytest.raises(StageError, match="unknown preset"):
        pt.estimate_disk_mb("ultra", 1)


def test_prune_keeps_the_newest_chunks_states_and_every_weights_file(tmp_path):
    log = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None)
    for k in range(4):
        (tmp_path / f"chunk_{k}.ckpt").write_bytes(b"s" * 1000)
        (tmp_path / f"chunk_{k}.weights.ckpt").write_bytes(b"w")
    (tmp_path / "chunk_0.weights.ckpt").unlink()  # a state without weights is that chunk's only copy
    leftover = tmp_path / "work" / "chunk_1" / "ckpt" / "last.ckpt"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"l" * 1000)
    # chunk 3 starts: chunk 2's state is its input, chunk 1's goes
    assert pt.prune_superseded_states(tmp_path, 3, log) == pytest.approx(0.002)
    assert sorted(p.name for p in tmp_path.glob("chunk_*.ckpt")) == [
        "chunk_0.ckpt", "chunk_1.weights.ckpt", "chunk_2.ckpt", "chunk_2.weights.ckpt", "chunk_3.ckpt",
        "chunk_3.weights.ckpt"]
    assert not leftover.exists()
    assert pt.prune_superseded_states(tmp_path, 1, log) == 0  # chunk 1 needs chunk 0: nothing goes


def test_training_plan_paths():
    plan = pt.TrainingPlan(training_config(epochs=3), lambda name: f"out/{name}")
    assert plan.all_weights() == [f"out/checkpoints/chunk_{n}.weights.ckpt" for n in range(3)]
    assert plan.final_weights() == "out/checkpoints/chunk_2.weights.ckpt"
    assert plan.previous_state(SimpleNamespace(n="2")) == {"previous": "out/checkpoints/chunk_1.ckpt"}
    assert plan.previous_state(SimpleNamespace(n="0")) == {}


def test_fit_config_and_command(tmp_path):
    cfg = training_config(preset="high", device="cuda", precision="16-mixed")
    fit = pt.build_fit_config(cfg, tmp_path, "d.csv", "wavs", tmp_path / "cache", 7)
    assert fit["trainer"]["max_epochs"] == 7 and fit["trainer"]["accelerator"] == "gpu"
    assert fit["model"]["mos_metric"] == "none" and fit["model"]["upsample_rates"] == [8, 8, 2, 2]
    assert fit["model"]["sample_rate"] == 22050 and fit["data"]["espeak_voice"] == "en-us"
    assert fit["trainer"]["logger"]["class_path"].endswith("CSVLogger")
    cmd = pt.fit_command(tmp_path / "fit.json", tmp_path / "ckpt", 2, "prev.ckpt", None, python="py")
    assert cmd[:4] == ["py", "-m", "workflow_scripts.piper_train", "launch"]
    assert cmd[-2:] == ["--ckpt_path", "prev.ckpt"] and "--model.warmstart_ckpt" not in cmd


def test_metadata_and_clip_validation(tmp_path):
    clips = tmp_path / "processed" / "rec" / "clips"
    clips.mkdir(parents=True)
    sr = 22050
    tone = (0.3 * np.sin(np.arange(sr) / sr * 2 * np.pi * 220)).astype(np.float32)
    sf.write(str(clips / "rec_00001.wav"), tone, sr, subtype="PCM_16")
    sf.write(str(clips / "rec_00002.wav"), tone, sr, subtype="PCM_24")
    sf.write(str(clips / "rec_00003.wav"), np.stack([tone, tone], 1), sr, subtype="PCM_16")
    sf.write(str(clips / "rec_00004.wav"), tone, 16000, subtype="PCM_16")
    (clips / "rec_00005.wav").write_bytes(b"not a wav")
    idx = pd.index_clips([clips])
    assert pd.check_clip(idx["rec_00001.wav"], sr)[0] is None
    assert "16-bit" in pd.check_clip(idx["rec_00002.wav"], sr)[0]
    assert "mono" in pd.check_clip(idx["rec_00003.wav"], sr)[0]
    assert "16000" in pd.check_clip(idx["rec_00004.wav"], sr)[0]
    assert "readable" in pd.check_clip(idx["rec_00005.wav"], sr)[0]
    assert pd.resolve_clip("rec/clips/rec_00001.wav", idx, tmp_path / "processed") == clips / "rec_00001.wav"
    with pytest.raises(StageError, match="rec_09999.wav"):
        pd.resolve_clip("rec_09999.wav", idx, tmp_path / "processed")

    meta = tmp_path / "metadata.csv"
    meta.write_text("a.wav|Hello there.|1.0|spk|0.9\nb.wav| |1.0|spk|0.9\n")
    with pytest.raises(StageError, match="empty transcript for b.wav"):
        pd.read_metadata(meta)
    meta.write_text("a.wav|Hello.|1.0|spk|0.9\na.wav|Again.|1.0|spk|0.9\n")
    with pytest.raises(StageError, match="twice"):
        pd.read_metadata(meta)

    # resampling to the preset rate keeps 16-bit mono and the duration
    dst = tmp_path / "out.wav"
    pd.place_wav(idx["rec_00001.wav"], dst, sr, 16000)
    info = sf.info(str(dst))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 16000)


def test_rule_file_has_contract_fields():
    text = (REPO / "rules" / "train.smk").read_text()
    for rule in ("piper_dataset", "train_chunk", "export_voice", "smoke_test"):
        assert f"rule {rule}:" in text
    assert "lambda" not in text
    assert text.count('conda:\n        "../envs/piper.yaml"') == 4
    assert text.count('env_module("piper")') == 4


# --- integration: piper venv ----------------------------------------------------------------
def _checkpoint_contents(py: str, path: Path) -> dict:
    """Top-level keys and parameter-name prefixes of a checkpoint (read in the piper venv)."""
    code = ("import json, sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False)\n"
            "print(json.dumps({'keys': sorted(c), 'prefixes': sorted({k.split('.')[0] for k in c['state_dict']})}))")
    out = subprocess.run([py, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _checkpoint_epochs(py: str, path: Path) -> int:
    code = "import sys; from workflow_scripts.piper_train import checkpoint_epochs as c; print(c(sys.argv[1]))"
    out = subprocess.run([py, "-c", code, str(path)], capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return int(out.stdout.strip())


@pytest.mark.slow
@needs_piper
def test_chunked_training_kill_resume_export_and_warm_start(tmp_path):
    py = piper_python()
    wd = tmp_path / "wf"
    wd.mkdir()
    out = make_workdir(wd)

    # 1. dataset + preflight
    run_workflow(wd, "out/piper/preflight.json")
    pre = json.loads((out / "piper" / "preflight.json").read_text())
    assert pre["clips"] == 20 and pre["sample_rate"] == 16000 and pre["resampled"] == 20
    assert pre["phoneme_ids"]["max"] <= 400 and pre["phonemes"]["distinct"] > 20
    assert not pre["phonemes"]["missing_from_id_map"]
    assert (out / "piper" / "preflight.md").read_text().startswith("# Piper dataset preflight")
    rows = (out / "piper" / "dataset.csv").read_text().splitlines()
    assert len(rows) == 20 and rows[0].startswith("rec_00001.wav|The birch canoe")
    info = sf.info(str(out / "piper" / "wavs" / "rec_00001.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")

    pre_disk = pre["disk"]  # stated before any training: 2 chunks, each state kept
    assert (pre_disk["epochs"], pre_disk["chunks"], pre_disk["kept_states"]) == (2, 2, 2)
    assert pre_disk["total_mb"] == round(2 * pt.CHECKPOINT_MB["reduced"]["state"] + 2 * pt.CHECKPOINT_MB["reduced"]["weights"]
                                         + pre_disk["cache_mb"])
    assert 5 < pre_disk["cache_mb"] < 20  # 20 short clips (measured: 11 MB)
    assert "checkpoints/ needs" in (out / "piper" / "preflight.md").read_text()

    # 2. chunk 0, then kill the run during chunk 1 (before its epoch ends)
    run_workflow(wd, "out/checkpoints/chunk_0.weights.ckpt")
    c0 = out / "checkpoints" / "chunk_0.ckpt"
    assert _checkpoint_epochs(py, c0) == 1
    c0_stat = c0.stat()
    proc = subprocess.Popen(snakemake_cmd(wd, "out/checkpoints/chunk_1.ckpt"), cwd=wd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    log1 = out / "logs" / "train_chunk" / "chunk_1.log"
    # kill as soon as piper's trainer is up in chunk 1 (keeps the test short)
    kill_once_logged(proc, log1, "replaced piper's ModelCheckpoint", str(wd), timeout=300)
    assert not (out / "checkpoints" / "chunk_1.ckpt").exists()
    assert not (out / "checkpoints" / "chunk_1.weights.ckpt").exists()
    assert c0.stat().st_mtime_ns == c0_stat.st_mtime_ns and c0.stat().st_size == c0_stat.st_size

    # 3. rerun: resumes from chunk 0's checkpoint, then exports and smoke-tests the voice
    log1.unlink()
    subprocess.run(snakemake_cmd(wd, "--unlock"), cwd=wd, check=True, capture_output=True)  # killed run's lock
    run_workflow(wd, "--rerun-incomplete")
    text = log1.read_text()
    assert f"from {c0}" in text or "from out/checkpoints/chunk_0.ckpt" in text
    assert "epoch 1 done" in text and "Traceback" not in text
    assert _checkpoint_epochs(py, out / "checkpoints" / "chunk_1.ckpt") == 2
    assert c0.stat().st_mtime_ns == c0_stat.st_mtime_ns
    metrics = list((out / "checkpoints" / "work" / "chunk_1" / "csv").rglob("metrics.csv"))
    assert metrics and "loss_g" in metrics[0].read_text().splitlines()[0]
    voice = json.loads((out / "voice" / "voice.onnx.json").read_text())
    assert voice["audio"]["sample_rate"] == 16000 and voice["espeak"]["voice"] == "en-us"
    assert voice["training"]["epochs"] == 2 and voice["training"]["checkpoint"] == "chunk_1.weights.ckpt"
    # the weights file: generator only, no optimizer/discriminator, a fraction of the state
    w1 = out / "checkpoints" / "chunk_1.weights.ckpt"
    contents = _checkpoint_contents(py, w1)
    assert contents["prefixes"] == ["model_g"] and "optimizer_states" not in contents["keys"]
    assert _checkpoint_epochs(py, w1) == 2
    state_mb, weights_mb = c0.stat().st_size / 1e6, w1.stat().st_size / 1e6
    assert weights_mb < state_mb / 10
    assert abs(state_mb - pt.CHECKPOINT_MB["reduced"]["state"]) < 5  # the documented constants
    assert abs(weights_mb - pt.CHECKPOINT_MB["reduced"]["weights"]) < 1
    assert pending(wd) == {}  # a complete run plans nothing
    smoke = json.loads((out / "voice" / "smoke_test.json").read_text())
    assert smoke["ok"] and len(smoke["sentences"]) == 2 and all(s["seconds"] > 0.2 for s in smoke["sentences"])
    selection = json.loads((out / "voice" / "selection.json").read_text())
    assert (selection["chosen"], selection["evaluated"]) == (1, False) and smoke["chunk"] == 1
    assert smoke["verdict"] == "not evaluated (evaluation.enabled: false)" and smoke["audio_ok"]
    info = sf.info(str(out / "voice" / "smoke_test.wav"))
    assert info.samplerate == 16000 and info.frames > 0.4 * 16000

    # 4. more epochs: only the new chunk (on top of chunk 1's state) and the voice; once it ran,
    # chunk 0's state is gone, the newest two states and every chunk's weights stay
    set_epochs(wd, 3)
    assert pending(wd) == {"train_chunk": 1, "select_voice": 1, "export_voice": 1, "smoke_test": 1, "all": 1}
    weights_before = {n: (out / "checkpoints" / f"chunk_{n}.weights.ckpt").stat().st_mtime_ns for n in (0, 1)}
    run_workflow(wd)
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("chunk_*.ckpt")) == [
        "chunk_0.weights.ckpt", "chunk_1.ckpt", "chunk_1.weights.ckpt", "chunk_2.ckpt", "chunk_2.weights.ckpt"]
    assert {n: (ckpts / f"chunk_{n}.weights.ckpt").stat().st_mtime_ns for n in (0, 1)} == weights_before
    assert "deleted superseded full state" in (out / "logs" / "train_chunk" / "chunk_2.log").read_text()
    assert json.loads((out / "voice" / "voice.onnx.json").read_text())["training"]["epochs"] == 3
    assert pending(wd) == {}
    # a kill -9 after chunk 2 wrote its files but before Snakemake recorded it: the rerun
    # removes them and trains chunk 2 again, which needs only chunk 1's state, still here
    # (no earlier chunk is planned)
    for name in ("chunk_2.ckpt", "chunk_2.weights.ckpt"):
        (ckpts / name).unlink()
    assert pending(wd, "out/checkpoints/chunk_2.weights.ckpt") == {"train_chunk": 1}

    # 5. warm start (fine-tuning) from a local checkpoint in a fresh workflow
    base = tmp_path / "base.ckpt"
    shutil.copyfile(out / "checkpoints" / "chunk_1.ckpt", base)
    wd2 = tmp_path / "wf2"
    wd2.mkdir()
    out2 = make_workdir(wd2, epochs=1, base_checkpoint=str(base))
    run_workflow(wd2, "out/checkpoints/chunk_0.weights.ckpt")
    text = (out2 / "logs" / "train_chunk" / "chunk_0.log").read_text()
    assert f"warm start {base}" in text and "[warmstart] Copied" in text
    assert _checkpoint_epochs(py, out2 / "checkpoints" / "chunk_0.ckpt") == 1  # fresh epoch counter


@needs_piper
def test_smoke_test_rejects_silent_voice_and_bad_json(tmp_path):
    """The smoke test's checks, on a voice JSON missing keys (no training needed)."""
    code = (
        "import json,sys,logging\n"
        "from workflow_scripts.piper_export import check_voice_config\n"
        "from workflow_scripts.io_utils import StageError\n"
        "cfg={'audio':{'sample_rate':16000},'espeak':{'voice':'en-us'},'num_symbols':256,'num_speakers':1,"
        "'phoneme_id_map':{'^':[1],'$':[2],'_':[0]},'phoneme_type':'espeak','inference':{'noise_scale':0.667,"
        "'length_scale':1,'noise_w':0.8}}\n"
        "check_voice_config(cfg,'ok')\n"
        "for k in ('phoneme_id_map','audio'):\n"
        "    bad=dict(cfg); del bad[k]\n"
        "    try: check_voice_config(bad,'x.json'); print('accepted', k); sys.exit(1)\n"
        "    except StageError as e: print(e)\n"
    )
    out = subprocess.run([piper_python(), "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "x.json: voice config lacks phoneme_id_map" in out.stdout
