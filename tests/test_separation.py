"""Vocal separation: chunk planning, cross-fade stitching, streaming, and the real backends.

The pure tests run in the main test env. Spleeter (TensorFlow) and Demucs (torch) live in
their own venvs (envs/spleeter.yaml, envs/demucs.yaml, built by envs/setup_venvs.py), so the
entry point is driven there through a subprocess with a fake `snakemake` object; those tests
skip, saying why, only when the venv has not been built.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workflow_scripts.io_utils import StageError  # noqa: E402
from workflow_scripts.separation import (  # noqa: E402
    IdentityBackend,
    Stitcher,
    check_spleeter_model,
    crossfade_weights,
    fix_length,
    plan_chunks,
    separate_file,
    stitch,
)


# --- helpers -------------------------------------------------------------------------------
def synth_mix(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A 'voice' (vibrato tone, gated like syllables) over a 'band' (chord + soft noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    voice = 0.3 * np.sin(2 * np.pi * (220 * t + 3 * np.sin(2 * np.pi * 5 * t))) * (np.sin(2 * np.pi * 0.7 * t) > -0.3)
    band = 0.1 * (np.sin(2 * np.pi * 110 * t) + np.sin(2 * np.pi * 165 * t) + np.sin(2 * np.pi * 1320 * t))
    noise = 0.003 * rng.standard_normal(len(t))
    return (voice + band + noise).astype(np.float32)


def write_s16(path: Path, x: np.ndarray, sr: int) -> Path:
    sf.write(str(path), x, sr, subtype="PCM_16", format="WAV")
    return path


def venv_python(name: str) -> Path | None:
    out = subprocess.run(
        [sys.executable, str(REPO / "envs" / "setup_venvs.py"), "--print-path", name], capture_output=True, text=True, check=True
    ).stdout.strip()
    venv = Path(out)
    if not (venv / ".pvw-complete").exists():
        return None
    return venv / "bin" / "python"


def require_venv(name: str) -> Path:
    py = venv_python(name)
    if py is None:
        pytest.skip(f"venv '{name}' not built (run: python3 envs/setup_venvs.py {name}); CI builds it")
    return py


# Runs the real entry point in a backend venv with a fake `snakemake` object.
DRIVER = r"""
import json, sys, types
sys.path.insert(0, sys.argv[1])
from workflow_scripts.io_utils import run_stage
from workflow_scripts.separation import separate_recording
a = json.loads(sys.argv[2])
out = a["output"]
def one(sm, log):
    separate_recording(a["audio"], out["vocals"], out.get("accompaniment"), a["method"], a["cfg"], a.get("threads", 2),
                       log, [])
run_stage(types.SimpleNamespace(log=[a["log"]], rule="separate_vocals"), one)
"""


def run_entry(py: Path, tmp: Path, audio: Path, method: str, cfg: dict, accompaniment: bool = True, timeout: int = 300):
    out = {"vocals": str(tmp / "vocals.wav")}
    if accompaniment:
        out["accompaniment"] = str(tmp / "accompaniment.wav")
    args = {"audio": str(audio), "output": out, "method": method, "cfg": cfg, "log": str(tmp / "separate.log"), "threads": 2}
    t0 = time.monotonic()
    proc = subprocess.run([str(py), "-c", DRIVER, str(REPO), json.dumps(args)], capture_output=True, text=True, timeout=timeout, cwd=tmp)
    log = (tmp / "separate.log").read_text() if (tmp / "separate.log").exists() else ""
    return proc, log, time.monotonic() - t0


def base_cfg(**kw) -> dict:
    cfg = {
        "method": "spleeter",
        "device": "cpu",
        "chunk_s": 300,
        "overlap_s": 5,
        "keep_accompaniment": False,
        "spleeter": {"model_dir": "pretrained_models", "model": "2stems"},
        "demucs": {"model": "htdemucs", "repo": ""},
    }
    cfg.update(kw)
    return cfg


# --- chunk planning ------------------------------------------------------------------------
@pytest.mark.parametrize("n,chunk,overlap", [(1, 10, 0), (10, 10, 3), (11, 10, 3), (100, 10, 3), (1000, 97, 13), (12345, 1000, 0), (1001, 100, 99)])
def test_plan_covers_input_with_exact_overlaps(n, chunk, overlap):
    plan = plan_chunks(n, chunk, overlap)
    assert plan[0][0] == 0 and plan[-1][1] == n
    for (s0, e0), (s1, e1) in zip(plan, plan[1:]):
        assert e0 - s1 == overlap  # exactly `overlap` samples shared
        assert e0 - s0 == chunk
    for s, e in plan:
        assert e - s <= chunk
        if len(plan) > 1:
            assert e - s > overlap
    assert sum(e - s for s, e in plan) - overlap * (len(plan) - 1) == n


def test_plan_edge_cases():
    assert plan_chunks(0, 10, 2) == []
    assert plan_chunks(5, 10, 2) == [(0, 5)]
    with pytest.raises(ValueError):
        plan_chunks(100, 10, 10)
    with pytest.raises(ValueError):
        plan_chunks(100, 0, 0)


# --- cross-fade stitching ------------------------------------------------------------------
def test_crossfade_weights():
    out, inn = crossfade_weights(1000, "linear")
    np.testing.assert_allclose(out + inn, 1.0, atol=1e-6)
    out, inn = crossfade_weights(1000, "equal_power")
    np.testing.assert_allclose(out**2 + inn**2, 1.0, atol=1e-6)
    assert inn[0] < 0.01 and inn[-1] > 0.99
    with pytest.raises(ValueError):
        crossfade_weights(10, "cubic")


@pytest.mark.parametrize("n,chunk,overlap", [(1000, 97, 13), (5000, 1000, 250), (333, 100, 0), (50, 100, 10)])
def test_stitch_of_identical_signals_reproduces_them(n, chunk, overlap):
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    chunks = [x[s:e] for s, e in plan_chunks(n, chunk, overlap)]
    y = stitch(chunks, overlap, "linear")
    assert len(y) == n
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_stitch_blends_across_the_overlap():
    # Chunk outputs that disagree (a constant 0 then 1): the seam ramps, length is exact.
    n, chunk, overlap = 300, 200, 100
    plan = plan_chunks(n, chunk, overlap)
    chunks = [np.full(e - s, float(i), np.float32) for i, (s, e) in enumerate(plan)]
    y = stitch(chunks, overlap, "linear")
    assert len(y) == n
    seam = y[100:200]
    assert np.all(np.diff(seam) > 0) and seam[0] < 0.01 and seam[-1] > 0.99
    assert np.all(y[:100] == 0) and np.all(y[200:] == 1)


def test_stitcher_streams_exact_total():
    st = Stitcher(7)
    total = 0
    plan = plan_chunks(1234, 100, 7)
    for i, (s, e) in enumerate(plan):
        total += len(st.push(np.zeros(e - s), i == len(plan) - 1))
    assert total == 1234


def test_fix_length():
    assert len(fix_length(np.ones(10), 7)) == 7
    assert np.all(fix_length(np.ones(5), 8)[5:] == 0)
    assert fix_length(np.ones((5, 2)), 6).shape == (6, 2)


# --- streaming over a file (no model) --------------------------------------------------------
def test_separate_file_identity_is_lossless_and_exact_length(tmp_path):
    sr = 8000
    x = synth_mix(63.37, sr)
    audio = write_s16(tmp_path / "audio.wav", x, sr)
    stats = separate_file(audio, tmp_path / "v.wav", tmp_path / "a.wav", IdentityBackend(rate=sr), chunk_s=10, overlap_s=1.5)
    assert stats.n_chunks == 8
    v, vsr = sf.read(str(tmp_path / "v.wav"), dtype="int16")
    a, _ = sf.read(str(tmp_path / "a.wav"), dtype="int16")
    ref, _ = sf.read(str(audio), dtype="int16")
    assert vsr == sr and len(v) == len(ref) == len(a)
    np.testing.assert_array_equal(v, ref)
    assert not np.any(a)
    assert sf.info(str(tmp_path / "v.wav")).subtype == "PCM_16" and sf.info(str(tmp_path / "v.wav")).channels == 1
    assert not list(tmp_path.glob(".*tmp*"))


def test_separate_file_resampling_backend_keeps_length_and_signal(tmp_path):
    sr = 22050
    x = synth_mix(20.01, sr)
    audio = write_s16(tmp_path / "audio.wav", x, sr)
    separate_file(audio, tmp_path / "v.wav", None, IdentityBackend(rate=44100, channels=2), chunk_s=6, overlap_s=1)
    v, vsr = sf.read(str(tmp_path / "v.wav"), dtype="float32")
    assert vsr == sr and len(v) == len(x)
    assert not (tmp_path / "a.wav").exists()
    err = v[1000:-1000] - x[1000:-1000]
    assert np.sqrt(np.mean(err**2)) < 2e-3


def test_separate_file_rejects_bad_overlap(tmp_path):
    audio = write_s16(tmp_path / "audio.wav", synth_mix(2, 8000), 8000)
    with pytest.raises(StageError, match="overlap_s"):
        separate_file(audio, tmp_path / "v.wav", None, IdentityBackend(rate=8000), chunk_s=1, overlap_s=1)
    assert not (tmp_path / "v.wav").exists()


# --- rule helpers ----------------------------------------------------------------------------
def test_rule_helpers():
    from workflow_scripts import dag_resources as res
    from workflow_scripts import separation as sep

    cfg = {"method": "spleeter", "device": "cpu", "chunk_s": 120, "mem_mb": 1000, "threads": 2}
    assert sep.env_name(cfg) == "spleeter" and sep.env_name({**cfg, "method": "demucs"}) == "demucs"
    assert res.gpus("cpu") == 0 and res.gpus("cuda") == 1
    assert res.separation_mem_mb("spleeter", 120, 1000) >= 3000  # measured ~2.9 GB peak for 120 s chunks
    assert res.separation_mem_mb("spleeter", 120, 64000) == 64000
    assert res.separation_mem_mb("spleeter", 300, 1000) > res.separation_mem_mb("spleeter", 120, 1000)
    assert res.separation_mem_mb("demucs", 120, 1000) < res.separation_mem_mb("spleeter", 120, 1000)
    assert res.separation_runtime(3600, "spleeter", "cpu", 2) >= 60  # ~0.5 s per audio second on CPU, doubled
    assert res.separation_runtime(3600, "spleeter", "cuda", 2) < res.separation_runtime(3600, "spleeter", "cpu", 2)
    assert res.separation_runtime(3600, "demucs", "cpu", 2) > res.separation_runtime(3600, "spleeter", "cpu", 2)
    # the job's params: what it reads, so threads/mem_mb or the other method's block rerun nothing
    full = {**cfg, "overlap_s": 5, "crossfade": "linear", "keep_accompaniment": False,
            "spleeter": {"model_dir": "m", "model": "2stems"}, "demucs": {"model": "htdemucs", "repo": ""}}
    assert sep.job_params(full) == {"device": "cpu", "chunk_s": 120, "overlap_s": 5, "crossfade": "linear",
                                    "spleeter": {"model_dir": "m", "model": "2stems"}}
    assert set(sep.job_params({**full, "method": "demucs"})) == {"device", "chunk_s", "overlap_s", "crossfade", "demucs"}


# --- model folder check ----------------------------------------------------------------------
def test_check_spleeter_model(tmp_path):
    assert check_spleeter_model(tmp_path, "2stems") == "absent"
    (tmp_path / "2stems").mkdir()
    with pytest.raises(StageError) as err:
        check_spleeter_model(tmp_path, "2stems")
    msg = str(err.value)
    assert "checkpoint" in msg and "model.index" in msg and "model.data-*" in msg and "random weights" in msg
    assert "releases" in msg  # says how to provide it
    for name in ("checkpoint", "model.index", "model.data-00000-of-00001"):
        (tmp_path / "2stems" / name).write_text("x")
    assert check_spleeter_model(tmp_path, "2stems") == "present"


# --- Spleeter (in its venv) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def spleeter_py():
    return require_venv("spleeter")


@pytest.fixture(scope="module")
def tiny_models(spleeter_py, tmp_path_factory):
    """A 44.1 kHz tiny model (like the real one) and a 4 kHz one for the long input."""
    root = tmp_path_factory.mktemp("models")
    subprocess.run(
        [str(spleeter_py), str(REPO / "tests" / "tiny_spleeter.py"), str(root / "m44k"), f"{root / 'mlow'}:4000:512"],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return root


def test_tiny_model_is_small(tiny_models):
    folder = tiny_models / "m44k" / "2stems"
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 3_000_000
    assert check_spleeter_model(tiny_models / "m44k", "2stems") == "present"


def test_spleeter_tiny_model_stems(spleeter_py, tiny_models, tmp_path):
    sr = 22050
    x = synth_mix(17.3, sr)
    audio = write_s16(tmp_path / "audio.wav", x, sr)
    cfg = base_cfg(chunk_s=6, overlap_s=1, spleeter={"model_dir": str(tiny_models / "m44k"), "model": "2stems"})
    proc, log, _ = run_entry(spleeter_py, tmp_path, audio, "spleeter", cfg)
    assert proc.returncode == 0, log + proc.stderr[-3000:]
    v, vsr = sf.read(str(tmp_path / "vocals.wav"), dtype="float32")
    a, asr = sf.read(str(tmp_path / "accompaniment.wav"), dtype="float32")
    mix, _ = sf.read(str(audio), dtype="float32")
    assert vsr == asr == sr and len(v) == len(a) == len(mix)
    assert sf.info(str(tmp_path / "vocals.wav")).channels == 1
    assert np.std(v) > 1e-3 and np.std(a) > 1e-3  # random weights still split the energy
    assert np.max(np.abs(v - a)) > 1e-2  # ... differently for the two stems
    err = (v + a - mix)[2000:-2000]
    assert np.sqrt(np.mean(err**2)) < 5e-3, np.sqrt(np.mean(err**2))
    assert "model loaded" in log and "%" in log


def test_spleeter_long_input_full_length(spleeter_py, tiny_models, tmp_path):
    """25 minutes (longer than one 300 s chunk) come out sample-exact (4 kHz tiny model: fast)."""
    sr = 4000
    x = synth_mix(25 * 60 + 0.37, sr)
    audio = write_s16(tmp_path / "audio.wav", x, sr)
    cfg = base_cfg(chunk_s=300, overlap_s=5, spleeter={"model_dir": str(tiny_models / "mlow"), "model": "2stems"})
    proc, log, secs = run_entry(spleeter_py, tmp_path, audio, "spleeter", cfg, accompaniment=False)
    assert proc.returncode == 0, log + proc.stderr[-3000:]
    info = sf.info(str(tmp_path / "vocals.wav"))
    assert info.frames == len(x) and info.samplerate == sr
    assert "6 chunk(s)" in log
    assert not (tmp_path / "accompaniment.wav").exists()


def test_spleeter_empty_model_folder_fails_clearly(spleeter_py, tmp_path):
    (tmp_path / "models" / "2stems").mkdir(parents=True)
    audio = write_s16(tmp_path / "audio.wav", synth_mix(3, 22050), 22050)
    cfg = base_cfg(spleeter={"model_dir": str(tmp_path / "models"), "model": "2stems"})
    proc, log, _ = run_entry(spleeter_py, tmp_path, audio, "spleeter", cfg)
    assert proc.returncode != 0
    assert "lacks checkpoint, model.index, model.data-*" in log and "random weights" in log
    assert not (tmp_path / "vocals.wav").exists()


def test_excluded_recording_passes_through_without_a_model(spleeter_py, tmp_path):
    """A zero-sample placeholder (ingest under inputs.on_error: skip) gives empty stems; the
    model is never loaded (this folder holds none)."""
    (tmp_path / "models" / "2stems").mkdir(parents=True)
    audio = write_s16(tmp_path / "audio.wav", np.zeros(0), 22050)
    cfg = base_cfg(spleeter={"model_dir": str(tmp_path / "models"), "model": "2stems"})
    proc, log, _ = run_entry(spleeter_py, tmp_path, audio, "spleeter", cfg)
    assert proc.returncode == 0, log
    for stem in ("vocals.wav", "accompaniment.wav"):
        info = sf.info(str(tmp_path / stem))
        assert info.frames == 0 and info.samplerate == 22050 and info.channels == 1
    assert "no audio samples" in log and "random weights" not in log


# --- Demucs (in its venv) --------------------------------------------------------------------
@pytest.fixture(scope="module")
def demucs_py():
    return require_venv("demucs")


def test_demucs_unittest_model_through_entry(demucs_py, tmp_path):
    sr = 22050
    x = synth_mix(5.3, sr)
    audio = write_s16(tmp_path / "audio.wav", x, sr)
    cfg = base_cfg(method="demucs", chunk_s=3, overlap_s=0.5, demucs={"model": "demucs_unittest", "repo": ""})
    proc, log, _ = run_entry(demucs_py, tmp_path, audio, "demucs", cfg)
    assert proc.returncode == 0, log + proc.stderr[-3000:]
    for name in ("vocals.wav", "accompaniment.wav"):
        info = sf.info(str(tmp_path / name))
        assert info.frames == len(x) and info.samplerate == sr and info.channels == 1


def test_demucs_missing_model_offline_fails_clearly(demucs_py, tmp_path):
    repo = tmp_path / "demucs_models"
    repo.mkdir()
    audio = write_s16(tmp_path / "audio.wav", synth_mix(2, 22050), 22050)
    cfg = base_cfg(method="demucs", demucs={"model": "htdemucs", "repo": str(repo)})
    proc, log, _ = run_entry(demucs_py, tmp_path, audio, "demucs", cfg, timeout=120)
    assert proc.returncode != 0
    assert "demucs model 'htdemucs': cannot load" in log and "separation.demucs.repo" in log
    assert not (tmp_path / "vocals.wav").exists()
