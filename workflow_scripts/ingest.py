"""Ingest one recording: probe it, decode its first audio stream to mono 16-bit WAV at the
pipeline rate, and record where it came from (sha256, codec, channels, rate) in a sidecar.

The user's file is only ever read. ffmpeg/ffprobe are called with argument lists (never a
shell) and with a ``file:`` URL so names starting with ``-`` or containing ``:`` are plain paths.

A file that cannot be read (empty, not media, no audio stream, nothing decodable) fails the
job with one ERROR line under ``inputs.on_error: fail``. Under ``skip`` (the default) the job
succeeds instead: the sidecar gets ``"error": "<file>: <reason>"`` and ``audio.wav`` is a
valid WAV with no samples, which every later per-recording stage passes through as a
recording without clips (``summary.json`` lists it under ``excluded``).
"""

import hashlib
import json
import os
import subprocess
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script: directive from a copy of this file
    import sys

    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path  # noqa: E402


def sha256_file(path: str, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def ffmpeg_reason(stderr: str) -> str:
    """The most useful line of ffmpeg's stderr (its last non-empty one)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def start_probe(path: str) -> subprocess.Popen:
    """ffprobe of ``path``, started (``probe_result`` waits for it): it runs beside the decode,
    as a shard of short files waits mostly on the two processes' start-up."""
    url = "file:" + os.path.abspath(path)
    return subprocess.Popen(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def probe(path: str) -> dict:
    """ffprobe's view of ``path``: the first audio stream and the container duration."""
    return probe_result(start_probe(path), path)


def probe_result(proc: subprocess.Popen, path: str) -> dict:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise StageError(f"{path}: ffprobe cannot read it: {ffmpeg_reason(stderr)}")
    data = json.loads(stdout or "{}")
    audio = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise StageError(f"{path}: no audio stream (streams: {[s.get('codec_type') for s in data.get('streams', [])] or 'none'})")
    stream = audio[0]
    fmt = data.get("format", {})
    duration = stream.get("duration") or fmt.get("duration")
    return {
        "codec": stream.get("codec_name"),
        "channels": stream.get("channels"),
        "source_sample_rate": int(stream["sample_rate"]) if stream.get("sample_rate") else None,
        "sample_fmt": stream.get("sample_fmt"),
        "bits_per_sample": stream.get("bits_per_raw_sample") or stream.get("bits_per_sample"),
        "container": fmt.get("format_name"),
        "container_duration_s": float(duration) if duration not in (None, "N/A") else None,
        "audio_streams": len(audio),
    }


def decode_to_wav(path: str, out_wav: str, sample_rate: int) -> None:
    """First audio stream → mono s16 WAV at ``sample_rate`` (ffmpeg's downmix and soxr resampler)."""
    url = "file:" + os.path.abspath(path)
    with atomic_path(out_wav) as tmp:
        proc = subprocess.run(
            [
                "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
                "-i", url,
                "-map", "0:a:0", "-vn", "-sn", "-dn",
                "-ac", "1", "-ar", str(sample_rate),
                # soxr resamples in float: asked for 16-bit output it dithers with a seed
                # of its own, so the same input gave different samples on every run
                "-af", "aresample=resampler=soxr:osf=flt",
                "-c:a", "pcm_s16le", "-f", "wav",
                "file:" + str(tmp),
            ],
            capture_output=True,
            text=True,
            errors="replace",
        )
        if proc.returncode != 0:
            raise StageError(f"{path}: ffmpeg cannot decode it: {ffmpeg_reason(proc.stderr)}")
        if os.path.getsize(tmp) <= 44:
            raise StageError(f"{path}: decoded to no audio samples")


ON_ERROR = ("skip", "fail")


def write_sidecar(out_json: str, sidecar: dict) -> None:
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def exclude(path: str, out_wav: str, out_json: str, sample_rate: int, rec: str, reason: str, log) -> dict:
    """``inputs.on_error: skip``: a zero-sample WAV and a sidecar saying why (the job succeeds)."""
    import numpy as np
    import soundfile as sf

    with atomic_path(out_wav) as tmp:
        sf.write(str(tmp), np.zeros(0, dtype=np.int16), sample_rate, subtype="PCM_16", format="WAV")
    size = os.path.getsize(path) if os.path.exists(path) else None
    sidecar = {
        "recording": rec,
        "original_path": os.path.abspath(path),
        "original_name": Path(path).name,
        "size_bytes": size,
        "sha256": sha256_file(path) if size is not None else None,
        "error": reason,
        "sample_rate": sample_rate,
        "samples": 0,
        "duration_s": 0.0,
    }
    write_sidecar(out_json, sidecar)
    log.warning("%s; recording %s is excluded (inputs.on_error: skip)", reason, rec)
    return sidecar


def ingest(path: str, out_wav: str, out_json: str, sample_rate: int, rec: str, log, on_error: str = "fail") -> dict:
    if on_error not in ON_ERROR:
        raise StageError(f"inputs.on_error: {on_error!r} is not one of {', '.join(ON_ERROR)}")
    try:
        return read_recording(path, out_wav, out_json, sample_rate, rec, log)
    except StageError as exc:
        if on_error == "fail":
            raise
        return exclude(path, out_wav, out_json, sample_rate, rec, str(exc), log)


def read_recording(path: str, out_wav: str, out_json: str, sample_rate: int, rec: str, log) -> dict:
    if not os.path.exists(path):
        raise StageError(f"{path}: file not found")
    size = os.path.getsize(path)
    if size == 0:
        raise StageError(f"{path}: empty file (0 bytes)")
    prober = start_probe(path)
    try:
        digest = sha256_file(path)
        decode_to_wav(path, out_wav, sample_rate)
    except StageError:
        probe_result(prober, path)  # ffprobe's reason first, as when it ran before the decode
        raise
    try:
        info = probe_result(prober, path)
    except StageError:
        os.unlink(out_wav)  # no audio.wav without its sidecar
        raise
    import soundfile as sf

    wav = sf.info(out_wav)
    sidecar = {
        "recording": rec,
        "original_path": os.path.abspath(path),
        "original_name": Path(path).name,
        "size_bytes": size,
        "sha256": digest,
        **info,
        "sample_rate": wav.samplerate,
        "samples": wav.frames,
        "duration_s": wav.frames / wav.samplerate,
    }
    write_sidecar(out_json, sidecar)
    log.info("%s → %s: %.1f s, %s %s ch %s Hz, sha256 %s", path, out_wav, sidecar["duration_s"], info["codec"], info["channels"], info["source_sample_rate"], digest[:12])
    return sidecar


def link_or_copy(src: str, dst: str) -> None:
    """Vocal slot for ``separation: none``: the ingested audio, hard-linked (or copied)."""
    import shutil

    with atomic_path(dst) as tmp:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def main(snakemake, log) -> None:
    """One shard: every member recording in turn (workflow_scripts/shards.py); a manifest of
    the per-recording outputs is the job's declared output."""
    from workflow_scripts.shards import member_outputs, out_dir_of, processed_path, run_members, write_manifest

    out_dir, recs = out_dir_of(snakemake.output.manifest), list(snakemake.params.recs)
    rows = []
    if snakemake.rule == "copy_vocals":
        audio = dict(zip(recs, member_outputs(snakemake.input.audio, "audio", recs)))

        def link(rec: str) -> None:
            vocals = processed_path(out_dir, rec, "vocals.wav")
            link_or_copy(audio[rec], vocals)
            log.info("separation: none — %s is the vocal stem", audio[rec])
            rows.append((rec, "vocals", vocals))

        run_members(recs, link, log, out_dir, "copy_vocals")
        write_manifest(snakemake.output.manifest, rows)
        return
    # inputs.on_error is read from the config, not from params: switching it must not rerun
    # (and so re-decode) every recording; only an unreadable file's job depends on it.
    on_error = str(((getattr(snakemake, "config", None) or {}).get("inputs") or {}).get("on_error", "skip"))
    media = dict(zip(recs, map(str, snakemake.input.media)))
    rate = int(snakemake.params.sample_rate)

    def decode(rec: str) -> None:
        audio, sidecar = processed_path(out_dir, rec, "audio.wav"), processed_path(out_dir, rec, "source.json")
        ingest(media[rec], audio, sidecar, rate, rec, log, on_error)
        rows.extend([(rec, "audio", audio), (rec, "sidecar", sidecar)])

    # ffprobe, ffmpeg and the hash wait on other processes and on the disk: ``threads`` files
    # at a time (a shard of many short files would otherwise pay their start-ups in a row)
    run_members(recs, decode, log, out_dir, "ingest", int(getattr(snakemake, "threads", 1) or 1))
    write_manifest(snakemake.output.manifest, rows)


if "snakemake" in globals():
    from workflow_scripts.io_utils import run_stage

    run_stage(snakemake, main)  # noqa: F821
