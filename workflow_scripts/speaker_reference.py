"""The target voice from reference recordings (``speaker_gate.reference``), in the scoring env.

Each file (any format ffmpeg decodes) is decoded to 16 kHz mono, embedded whole with the
speaker encoder (speaker_similarity.SpeakerEncoder, loaded once), and the reference is the
normalised mean of the files' embeddings. Outputs (atomic): ``reference.npy`` (256 float32)
and ``reference.json``::

    {"files": [{"path": "...", "seconds": 12.3, "similarity": 0.93}], "seconds": 12.3}

(``similarity``: each file's cosine to the mean: a file far from the others is probably not
the same voice, and is logged). A file that cannot be decoded or holds no voice stops the job
with its name and the reason: the gate must not run on a wrong reference.

CLI: ``python -m workflow_scripts.speaker_reference OUT_NPY OUT_JSON FILE... [--log FILE]``.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

if "snakemake" in globals():  # run by Snakemake's script: directive from a copy of this file
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, run_stage  # noqa: E402

SR = 16000
# Under this much voiced audio in all, the reference embedding is unreliable (a one-prompt
# reference kept only ~78 % of the target's clips in bench/bench_gates.py, ~10 s ~97 %).
MIN_TOTAL_S = 5.0
FAR_FROM_OTHERS = 0.75


def decode(path: str) -> np.ndarray:
    """16 kHz mono float32 via ffmpeg (arguments as a list: a file name never meets a shell; the
    ``file:`` protocol: a name starting with ``-`` or holding ``:`` is never read as an option or
    another protocol)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", "file:" + str(path), "-ac", "1", "-ar", str(SR),
           "-f", "f32le", "-"]
    try:
        res = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as exc:
        raise StageError(f"{path}: cannot run ffmpeg ({exc})") from exc
    if res.returncode != 0:
        msg = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise StageError(f"{path}: speaker reference cannot be decoded ({msg[-1] if msg else 'ffmpeg failed'})")
    audio = np.frombuffer(res.stdout, dtype=np.float32)
    if not len(audio):
        raise StageError(f"{path}: speaker reference holds no audio")
    return audio


def build_reference(paths: list[str], log) -> tuple[np.ndarray, dict]:
    from workflow_scripts.speaker_similarity import SpeakerEncoder, mean_direction, similarity

    if not paths:
        raise StageError("speaker_gate.reference is empty")
    audios = [decode(p) for p in paths]  # every file is checked before the model loads
    encoder = SpeakerEncoder("cpu", threads=1)
    embs = []
    for path, audio in zip(paths, audios):
        emb = encoder.embed(audio, SR)
        if not np.any(emb):
            raise StageError(f"{path}: speaker reference holds no voice the speaker encoder can hear")
        embs.append(emb)
    ref = mean_direction(np.stack(embs))
    files = [{"path": str(p), "seconds": round(len(a) / SR, 3), "similarity": round(float(similarity(e, ref)), 4)}
             for p, a, e in zip(paths, audios, embs)]
    total = sum(f["seconds"] for f in files)
    if total < MIN_TOTAL_S:
        log.warning("speaker reference: only %.1f s of audio in all; give ~10 s or more for a reliable gate", total)
    for f in files:
        if len(files) > 1 and f["similarity"] < FAR_FROM_OTHERS:
            log.warning("%s: far from the other reference files (similarity %.2f): is it the same voice?",
                        f["path"], f["similarity"])
    return ref.astype(np.float32), {"files": files, "seconds": round(total, 3)}


def write_outputs(ref: np.ndarray, info: dict, npy, js) -> None:
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save would append .npy to the temp name
            np.save(fh, ref)
    with atomic_path(js) as tmp:
        Path(tmp).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(snakemake, log) -> None:
    ref, info = build_reference([str(p) for p in snakemake.input.files], log)
    write_outputs(ref, info, snakemake.output.embedding, snakemake.output.info)
    log.info("reference from %d file(s), %.1f s: %s", len(info["files"]), info["seconds"],
             ", ".join(f"{Path(f['path']).name} {f['similarity']:.2f}" for f in info["files"]))


def cli(argv: list[str] | None = None) -> int:
    import argparse

    from workflow_scripts.io_utils import run_cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_npy")
    ap.add_argument("out_json")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)

    def work(log) -> None:
        ref, info = build_reference(args.files, log)
        write_outputs(ref, info, args.out_npy, args.out_json)

    return run_cli(work, args.log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
elif __name__ == "__main__":
    sys.exit(cli())
