"""Turn a recording's segments into training clips.

Per segment: trim leading/trailing silence down to a pad, join short neighbours whose
pause is small (when the result stays under the maximum), optional denoise, resample (soxr),
loudness-normalise to the target (workflow_scripts/loudness.py: BS.1770 gain, and ffmpeg's
look-ahead limiter where the gain alone would pass the peak ceiling), and drop what is still
under ``min_clip_s`` with the reason recorded.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np


# A short piece joins the neighbour across the shorter pause when the two pauses differ by at
# least this much; closer than that (a noisy room blurs where speech ends), the shorter one.
PAUSE_MARGIN_S = 0.25


@dataclass(frozen=True)
class PreprocessParams:
    sample_rate: int = 22050
    target_lufs: float = -23.0
    peak_dbfs: float = -1.0
    denoise: bool = False
    trim_threshold_db: float = -40.0  # relative to the clip's loudest frame
    pad_s: float = 0.25
    min_clip_s: float = 1.0
    max_clip_s: float = 12.0
    merge_gap_s: float = 1.5
    join_under_s: float = 5.0
    frame_s: float = 0.01

    @classmethod
    def from_config(cls, cfg: dict) -> "PreprocessParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


@dataclass
class Piece:
    """A stretch of the vocal stem (sample indices at ``rate``) with its speech bounds."""

    start: int
    end: int
    speech_start: int  # absolute sample where speech begins (after trimming analysis)
    speech_end: int
    sources: list[str] = field(default_factory=list)
    # samples where each part after the first begins: a later source's start, or a seam (a pause
    # inside a source that segmentation did not need to cut, segments.tsv seams_s)
    part_starts: list[int] = field(default_factory=list)
    # samples of silence segmentation measured around the cuts at start and end, floor-relative
    # (segments.tsv pause_before_s / pause_after_s): a pause the trim cannot see in a noisy room
    pause_before: int = 0
    pause_after: int = 0

    @property
    def speech_len(self) -> int:
        return self.speech_end - self.speech_start


def speech_bounds(audio: np.ndarray, rate: int, threshold_db: float, frame_s: float, floor_rms: float = 0.0) -> tuple[int, int] | None:
    """First and last sample of frames louder than ``threshold_db`` below the loudest frame
    and, in a noisy room, than ``TRIM_OVER_FLOOR_DB`` over the local noise floor ``floor_rms``
    (never above ``TRIM_MAX_DB`` under the loudest frame, so soft speech is kept)."""
    hop = max(int(frame_s * rate), 1)
    n = len(audio) // hop
    if n == 0:
        return None
    rms = np.sqrt(np.mean(np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return None
    threshold = max(peak * 10 ** (threshold_db / 20), min(floor_rms * 10 ** (TRIM_OVER_FLOOR_DB / 20), peak * 10 ** (TRIM_MAX_DB / 20)))
    loud = np.flatnonzero(rms >= threshold)
    return int(loud[0] * hop), int(min((loud[-1] + 1) * hop, len(audio)))


# Trimming in a noisy room: speech starts where the level rises this far over the local
# noise floor (10th percentile of the frames within FLOOR_WINDOW_S) ...
TRIM_OVER_FLOOR_DB = 6.0
FLOOR_WINDOW_S = 10.0
# ... but the threshold never rises above this under the clip's loudest frame.
TRIM_MAX_DB = -20.0


def local_floor(frames_rms: np.ndarray, hop: int, rate: int, start: int, end: int) -> float:
    """The noise floor around samples [start, end): 10th percentile of frame RMS within
    FLOOR_WINDOW_S on either side."""
    w = int(FLOOR_WINDOW_S * rate / hop)
    region = frames_rms[max(start // hop - w, 0) : end // hop + w]
    return float(np.percentile(region, 10)) if len(region) else 0.0


def merge_short_neighbours(pieces: list[Piece], rate: int, p: PreprocessParams) -> list[Piece]:
    """Join each piece shorter than ``join_under_s`` (or ``min_clip_s``, if longer) to an
    adjacent one, the shortest piece first, until none can be joined.

    Only contiguous pieces (one ends where the next starts) are joined, only when the pause
    between their speech is at most ``merge_gap_s``, and only when the joined speech plus
    pads stays under ``max_clip_s``; of two neighbours, the one across the shorter pause
    when the pauses differ by PAUSE_MARGIN_S or more (the longer pause is the phrase
    boundary, where the clip should end; "in his … book, | Capital in the …": a hesitation
    inside a phrase is shorter than the gap after it), else the shorter neighbour. A pause is
    the longer of the gap between the trimmed speech and the silence segmentation measured at
    the cut (``pause_before``/``pause_after``): in a noisy room the trim finds speech up to
    both ends of every piece, while the floor-relative silence still tells a dip between
    words from the pause after a sentence. Why join above
    ``min_clip_s``: a phrase of 2 s is a poor clip on its own (a trainer sees less context
    per utterance, and DNSMOS and the speaker encoder, which judge every clip, are least
    sure of short ones: DNSMOS rates a clean 2 s phrase ~0.3 lower than the same phrase
    with its neighbours), and a pause of up to ``merge_gap_s`` inside a clip is the
    speaker's own.
    """
    import heapq

    join_len, max_len = max(p.min_clip_s, p.join_under_s) * rate, p.max_clip_s * rate
    pad, gap_max = p.pad_s * rate, p.merge_gap_s * rate
    out: list[Piece | None] = list(pieces)
    prev = list(range(-1, len(out) - 1))
    nxt = [*range(1, len(out)), -1]

    def length(i: int) -> float:
        return out[i].speech_len + 2 * pad

    def can_merge(a: Piece, b: Piece) -> bool:
        return (
            a.end == b.start
            and b.speech_start - a.speech_end <= gap_max
            and (b.speech_end - a.speech_start) + 2 * pad <= max_len
        )

    heap = [(length(i), i) for i in range(len(out)) if length(i) < join_len]
    heapq.heapify(heap)
    while heap:
        queued, i = heapq.heappop(heap)
        piece = out[i]
        if piece is None or length(i) != queued:
            continue  # joined since it was queued (lengths only grow): its entry is another
        options = []
        if prev[i] >= 0 and can_merge(out[prev[i]], piece):
            pause = max(piece.speech_start - out[prev[i]].speech_end, piece.pause_before)
            options.append((pause, out[prev[i]].speech_len, prev[i]))
        if nxt[i] >= 0 and can_merge(piece, out[nxt[i]]):
            pause = max(out[nxt[i]].speech_start - piece.speech_end, piece.pause_after)
            options.append((pause, out[nxt[i]].speech_len, i))
        if not options:
            continue  # its neighbours only grow: it can never be joined
        if len(options) == 2 and abs(options[0][0] - options[1][0]) < PAUSE_MARGIN_S * rate:
            options = [(0, *o[1:]) for o in options]  # no clear phrase boundary: the shorter neighbour
        *_, j = min(options)
        k = nxt[j]
        a, b = out[j], out[k]
        out[j] = Piece(a.start, b.end, a.speech_start, b.speech_end, a.sources + b.sources, [*a.part_starts, b.start, *b.part_starts],
                       a.pause_before, b.pause_after)
        out[k] = None
        nxt[j] = nxt[k]
        if nxt[k] >= 0:
            prev[nxt[k]] = j
        if length(j) < join_len:
            heapq.heappush(heap, (length(j), j))
    return [x for x in out if x is not None]


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return audio
    import soxr

    return soxr.resample(audio, rate_in, rate_out, quality="HQ")


def denoise(audio: np.ndarray, rate: int) -> np.ndarray:
    import noisereduce

    return noisereduce.reduce_noise(y=audio, sr=rate, stationary=True)


def segments_of(rows: list[dict], rate: int) -> tuple[list[tuple[str, int, int]], dict[str, tuple[float, float]], dict[str, list[int]]]:
    """segments.tsv rows as make_pieces takes them: (name, start, end); by name, segmentation's
    (pause_before_s, pause_after_s) and its seams (samples at ``rate``, the stem's); a table
    written before segmentation measured these has none, and then the trim's gaps alone decide
    the joins and a segment is one part."""
    segs = [(r["segment"], int(r["start_sample"]), int(r["end_sample"])) for r in rows]
    pauses = {r["segment"]: (float(r.get("pause_before_s") or 0), float(r.get("pause_after_s") or 0)) for r in rows}
    seams = {r["segment"]: [int(round(float(x) * rate)) for x in (r.get("seams_s") or "").split(";") if x] for r in rows}
    return segs, pauses, seams


def make_pieces(segments: list[tuple[str, int, int]], audio_for, rate: int, p: PreprocessParams,
                frames_rms: np.ndarray | None = None,
                pauses: dict[str, tuple[float, float]] | None = None,
                seams: dict[str, list[int]] | None = None) -> tuple[list[Piece], list[tuple[str, str, float]]]:
    """Analyse segments (name, start, end) into pieces; return (pieces, dropped (name, reason,
    seconds)). ``frames_rms``: the stem's frame RMS (``frame_s`` frames) for the local noise floor;
    ``pauses``: segmentation's (pause_before_s, pause_after_s) by segment name; ``seams``: its
    seams by segment name (those inside the trimmed speech become the piece's first part
    boundaries)."""
    hop = max(int(p.frame_s * rate), 1)
    pieces, dropped = [], []
    for name, start, end in segments:
        floor = local_floor(frames_rms, hop, rate, start, end) if frames_rms is not None else 0.0
        bounds = speech_bounds(audio_for(start, end), rate, p.trim_threshold_db, p.frame_s, floor)
        if bounds is None:
            dropped.append((name, "silent", (end - start) / rate))
            continue
        before, after = (pauses or {}).get(name, (0.0, 0.0))
        a, b = start + bounds[0], start + bounds[1]
        inner = [c for c in (seams or {}).get(name, []) if a < c < b]
        pieces.append(Piece(start, end, a, b, [name], inner, int(round(before * rate)), int(round(after * rate))))
    return pieces, dropped


def render_piece(piece: Piece, audio_for, rate: int, p: PreprocessParams) -> tuple[np.ndarray, int, int]:
    """Cut the piece to its speech plus pads, then denoise and resample."""
    pad = int(p.pad_s * rate)
    a = max(piece.start, piece.speech_start - pad)
    b = min(piece.end, piece.speech_end + pad)
    x = np.asarray(audio_for(a, b), dtype=np.float64)
    if p.denoise:
        x = denoise(x, rate)
    return resample(x, rate, p.sample_rate), a, b


# Clips rendered and normalised together (one limiter process per batch, bounded memory).
RENDER_BATCH = 200


# joins_s: where each part after the first begins, seconds into the clip (";"-separated; empty
# for a clip of one part): a joined segment's start or a seam inside a segment (a pause of
# segmentation.island_pause_s or more). score_clips embeds each part, so the speaker gate can
# tell a clip of two voices and recut can cut it at their pause.
CLIP_COLUMNS = ["clip", "start_s", "end_s", "duration_s", "lufs_before", "lufs_after", "segments", "joins_s"]


def preprocess_recording(rec: str, vocals_path: str, segments_dir: str, out_dir: str, p: PreprocessParams, log) -> tuple[list[dict], list[tuple[str, str]]]:
    """Entry-point body: all clips of one recording into ``out_dir`` (written atomically)."""
    import soundfile as sf

    from workflow_scripts.io_utils import Progress, StageError, atomic_dir, read_tsv, to_int16
    from workflow_scripts.loudness import normalise

    rows_in = read_tsv(f"{segments_dir}/segments.tsv")
    # One read of the stem as int16 (2 bytes a sample, as segmentation does); every segment
    # is then analysed and rendered from memory instead of being re-read from disk twice.
    try:
        stem, rate = sf.read(vocals_path, dtype="int16", always_2d=True)
    except Exception as exc:
        raise StageError(f"{vocals_path}: cannot read vocal stem ({exc})") from exc
    stem = stem[:, 0] if stem.shape[1] == 1 else stem.mean(axis=1).astype(np.int16)

    def audio_for(a: int, b: int) -> np.ndarray:
        return stem[a:b].astype(np.float32) / 32768.0

    segs, pauses, seams = segments_of(rows_in, rate)
    from workflow_scripts.segmentation import frame_rms

    frames = frame_rms(stem, max(int(p.frame_s * rate), 1)) / 32768.0
    pieces, dropped = make_pieces(segs, audio_for, rate, p, frames, pauses, seams)
    pieces = merge_short_neighbours(pieces, rate, p)
    rows = []
    progress = Progress(len(pieces), f"preprocess {rec}", log)
    with atomic_dir(out_dir) as tmp:
        n = 0
        for k in range(0, len(pieces), RENDER_BATCH):
            batch = pieces[k : k + RENDER_BATCH]
            rendered = [render_piece(piece, audio_for, rate, p) for piece in batch]
            levelled = normalise([x for x, _, _ in rendered], p.sample_rate, p.target_lufs, p.peak_dbfs)
            for piece, (_, a, b), (y, before, after) in zip(batch, rendered, levelled):
                duration = len(y) / p.sample_rate
                label = "+".join(piece.sources)
                progress.update()
                if duration < p.min_clip_s:
                    dropped.append((label, "too_short", duration))
                    continue
                if duration > p.max_clip_s + 1e-6:
                    dropped.append((label, "too_long", duration))
                    continue
                n += 1
                name = f"{rec}_{n:05d}.wav"
                sf.write(f"{tmp}/{name}", to_int16(y), p.sample_rate, subtype="PCM_16", format="WAV")
                rows.append(
                    {
                        "clip": name,
                        "start_s": f"{a / rate:.3f}",
                        "end_s": f"{b / rate:.3f}",
                        "duration_s": f"{duration:.3f}",
                        "lufs_before": f"{before:.2f}",
                        "lufs_after": f"{after:.2f}",
                        "segments": label,
                        "joins_s": ";".join(f"{(j - a) / rate:.3f}" for j in piece.part_starts),
                    }
                )
        with open(f"{tmp}/clips.tsv", "w", encoding="utf-8") as fh:
            fh.write("\t".join(CLIP_COLUMNS) + "\n")
            for r in rows:
                fh.write("\t".join(r[c] for c in CLIP_COLUMNS) + "\n")
        with open(f"{tmp}/dropped.tsv", "w", encoding="utf-8") as fh:
            fh.write("segment\treason\tseconds\n")
            for name, reason, seconds in dropped:
                fh.write(f"{name}\t{reason}\t{seconds:.3f}\n")
    log.info("%s: %d clips kept, %d dropped (%s)", rec, len(rows), len(dropped), ", ".join(sorted({r for _, r, _ in dropped})) or "none")
    return rows, dropped


def main(snakemake, log) -> None:
    """One shard: every member's clips (workflow_scripts/shards.py), then the manifest."""
    from workflow_scripts.shards import member_outputs, out_dir_of, processed_path, run_members, write_manifest

    cfg = {**snakemake.params.cfg, "max_clip_s": snakemake.params.max_clip_s, "sample_rate": snakemake.params.sample_rate}
    params = PreprocessParams.from_config(cfg)
    out_dir, recs = out_dir_of(snakemake.output.manifest), list(snakemake.params.recs)
    vocals = dict(zip(recs, member_outputs(snakemake.input.vocals, "vocals", recs)))
    segments = dict(zip(recs, member_outputs(snakemake.input.segments, "segments", recs)))
    rows = []

    def cut(rec: str) -> None:
        out = processed_path(out_dir, rec, "clips")
        preprocess_recording(rec, vocals[rec], segments[rec], out, params, log)
        rows.append((rec, "clips", out))

    run_members(recs, cut, log, out_dir, "preprocess_clips")
    write_manifest(snakemake.output.manifest, rows)


if "snakemake" in globals():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821
    from workflow_scripts.io_utils import run_stage

    run_stage(snakemake, main)  # noqa: F821
