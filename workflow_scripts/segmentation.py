"""Cut a long vocal stem into phrase-length segments at its pauses.

A TTS trainer wants each segment to hold whole phrases, to be as long as allowed but never
over ``max_clip_s``, and to be cut in a real pause, the best one where there is a choice.

1. Envelope: RMS of ``frame_s`` frames in dBFS (``write_segments`` streams it from the
   file, so memory follows the number of frames, not of samples).
2. Local references, so that a quieter take or a noisier room is judged against itself and
   not against one figure for the whole recording: the speech level is the
   ``level_percentile`` of frame dB within ±``level_window_s``, the noise floor the
   ``floor_percentile`` within ±``floor_window_s``. Both are taken every ``grid_s`` and
   interpolated to frames (a 3-hour stem needs ~20k percentiles, not 540k).
3. Silence at a factor f: frames under
       max(min(max(level + 20·log10 f, floor + noise_margin_db), level - headroom_db),
           silence_floor_dbfs)
   The first term finds pauses relative to the voice; the second keeps room noise (which
   can sit above level + 20·log10 f) counted as silence; the cap keeps the loud part of
   the voice voiced when dense speech lifts the floor estimate; the absolute floor makes
   dither and hiss silence whatever the level. Where the level is both less than
   ``min_snr_db`` above the floor and ``min_snr_db`` under the loudest local level, the
   window holds no voice at all (the middle of a long pause in a noisy room) and every
   frame there is silence.
4. Clear pauses, ``min_silence_s`` of silence at ``factor``, are always cut: at their
   middle, or, when longer than 2 × ``keep_silence_s``, keeping ``keep_silence_s`` of it
   on either side (the rest is dropped, so silence does not use up a segment's length;
   pauses up to twice that leave contiguous segments, which clip preprocessing may merge).
   Leading and trailing silence of the stem is trimmed the same way. A pause's middle
   weighs each frame by the square of its depth under the threshold: in a noisy room the
   faint end of a word (a fading consonant) falls under the floor-relative threshold and
   would pull a plain midpoint into the word; a pause of even depth is cut at its midpoint.
   Every cut below (steps 5 and 7) is at such a middle.
5. A stretch still over ``max_clip_s`` is cut with the fewest cuts at the best pauses.
   Candidate pauses come in tiers: tier k raises the factor to ``factor × factor_step^k``
   (up to ``max_factor``: fainter pauses count) and shortens the minimum silence to
   ``min_silence_s × min_silence_step^k`` (down to ``min_silence_floor_s``). At the first
   tier that allows every piece under the maximum, a dynamic programme over the pause
   middles picks the cuts: fewest pieces, then fewest pieces under ``min_piece_s``, then
   the strongest weakest cut, a pause's score being its dip area below the local level
   (sum over its frames of level − frame dB, × frame_s, in dB·s: longer and deeper pauses
   score higher). These cuts drop nothing: a faint "pause" at a raised factor may hold
   quiet speech.
6. Only if no tier allows it do local minima of the smoothed envelope join the candidates
   ("quietest" cuts, as few as possible, scored by their depth below the level). So the
   maximum always holds, and speech is cut between pauses only where there is none.
7. Islands (``island_max_s`` > 0, 0 = off): speech shorter than ``island_max_s``
   between two pauses of ``island_pause_s`` or more (silence at ``factor``) inside a stretch
   is cut out at the two pauses' middles. In a conversation the other voice's "Yeah." sits
   0.2-0.4 s from the speaker's phrases on both sides, too close for a clear pause; as a
   segment of its own it becomes a part of the clip preprocessing joins it into, which the
   speaker gate judges on its own and can cut out (workflow_scripts/recut.py). Island cuts
   are at tier 0, as clear pauses. On one voice the speaker's own short words are then
   judged alone, on embeddings too short to be sure of, which costs a little yield.
   Island cuts are found first and step 5 runs on each part between them, so its fewest
   cuts count the island cuts already made (otherwise a cut between two words can save a
   piece that an island cut then adds anyway).
8. Each cut's pause: the seconds of the run of silence at ``factor`` that holds it (0 for a
   cut in speech). It is floor-relative, so it still tells a pause from a dip between words
   in a noisy room, where a trim against the loudest frame finds no pause at all: clip
   preprocessing joins a short piece across the shorter of its two pauses.
9. Seams: the middles of the pauses of ``island_pause_s`` or more inside a segment, which
   were not cut because nothing asked for it. A conversation's turn 0.3 s after the other
   voice, or an answer of 1 s (too long for an island), lies inside one segment; clip
   preprocessing passes the seams on as part boundaries (clips.tsv ``joins_s``), so the speaker
   gate judges each part's voice and workflow_scripts/recut.py can cut there.
Pieces without a frame of voice at ``factor`` are dropped. Deterministic: the same samples
and parameters give the same cuts.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np


# The shortest part a seam may leave on either side: the speaker encoder embeds parts from
# clip_gates.MIN_PART_S (0.25 s) on, and a part this short is not one the gate can judge well.
SEAM_MIN_PART_S = 0.5
# Added to each frame's depth under the threshold (dB) before it is squared to weigh where a
# pause's middle is: a run of equally deep frames (digital silence) is cut at its midpoint.
DEPTH_EPS_DB = 0.5


@dataclass(frozen=True)
class SegmentParams:
    # Defaults equal schemas/config.schema.yaml (segmentation), which is their source.
    frame_s: float = 0.02
    level_percentile: float = 95.0
    level_window_s: float = 5.0
    floor_percentile: float = 5.0
    floor_window_s: float = 15.0
    grid_s: float = 0.5
    noise_margin_db: float = 6.0
    headroom_db: float = 3.0
    min_snr_db: float = 10.0
    factor: float = 0.05
    factor_step: float = 2.0
    max_factor: float = 0.4
    min_silence_s: float = 0.5
    min_silence_step: float = 0.5
    min_silence_floor_s: float = 0.1
    keep_silence_s: float = 0.75
    min_piece_s: float = 1.0
    island_max_s: float = 1.0
    island_pause_s: float = 0.2
    max_clip_s: float = 12.0
    silence_floor_dbfs: float = -60.0

    @classmethod
    def from_config(cls, cfg: dict) -> "SegmentParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})

    def tiers(self) -> list[tuple[float, float]]:
        """(factor, min silence s) of tier 0, 1, …: raised/shortened until both limits hold."""
        out = [(self.factor, self.min_silence_s)]
        while True:
            f, s = out[-1]
            nxt = (min(f * self.factor_step, max(self.max_factor, f)), max(s * self.min_silence_step, min(self.min_silence_floor_s, s)))
            if nxt == (f, s):
                return out
            out.append(nxt)


@dataclass(frozen=True)
class Segment:
    start: int  # sample index, inclusive
    end: int  # sample index, exclusive
    method: str  # "silence" or "quietest" (one of its ends is a quietest cut)
    depth: int  # highest tier of its two end cuts (0: clear pauses; len(tiers): quietest)
    factor: float  # that tier's factor
    min_silence_s: float  # and minimum silence
    pause_before_s: float = 0.0  # silence at the base factor around its start cut (step 8)
    pause_after_s: float = 0.0  # and around its end cut
    seams: tuple[int, ...] = ()  # sample indices of the pauses inside it that bound its parts (step 9)


def frame_rms(audio: np.ndarray, hop: int, block_frames: int = 1 << 16) -> np.ndarray:
    """RMS of consecutive frames of ``hop`` samples (the last partial frame included)."""
    n = len(audio)
    n_frames = -(-n // hop)
    out = np.empty(n_frames, dtype=np.float64)
    for f0 in range(0, n_frames, block_frames):
        f1 = min(f0 + block_frames, n_frames)
        block = np.asarray(audio[f0 * hop : min(f1 * hop, n)], dtype=np.float64)
        pad = (f1 - f0) * hop - len(block)
        if pad:
            block = np.concatenate([block, np.zeros(pad)])
        out[f0:f1] = np.sqrt(np.mean(block.reshape(-1, hop) ** 2, axis=1))
    return out


def local_percentile(db: np.ndarray, percentile: float, half: int, step: int) -> np.ndarray:
    """Per frame: the percentile of ``db`` within ±``half`` frames, taken every ``step``.

    Windows at the ends are shifted inside the signal (same width). Rows are processed in
    blocks of ~4M values so memory stays bounded for any length.
    """
    n = len(db)
    width = min(2 * half + 1, n)
    centres = np.unique(np.r_[np.arange(0, n, max(step, 1)), n - 1])
    starts = np.clip(centres - half, 0, n - width)
    views = np.lib.stride_tricks.sliding_window_view(db, width)
    kth = int(round(percentile / 100 * (width - 1)))
    values = np.empty(len(centres), dtype=np.float64)
    rows = max(1, (1 << 22) // width)
    for r0 in range(0, len(starts), rows):
        block = views[starts[r0 : r0 + rows]]  # a copy: partitioned in place
        block.partition(kth, axis=1)
        values[r0 : r0 + rows] = block[:, kth]
    return np.interp(np.arange(n), centres, values)


def silence_runs(is_silent: np.ndarray, min_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of runs of True of at least ``min_frames`` frames."""
    padded = np.concatenate([[False], is_silent, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts) >= max(min_frames, 1)
    return starts[keep], ends[keep]


def fewest_cuts(pos, score, fallback, n: int, max_len: int, short_len: int) -> list[int] | None:
    """Indices of the candidates to cut [0, n) at so that every piece is at most ``max_len``.

    Lexicographic optimum by dynamic programming over the candidates (sorted ``pos``): fewest
    pieces, then fewest ``fallback`` cuts, then fewest pieces under ``short_len``, then the
    largest minimum ``score``; ties go to the earliest cut. None when no choice fits.
    """
    P = np.concatenate([[0], pos, [n]]).astype(np.int64)
    S = np.concatenate([[np.inf], score, [np.inf]])
    F = np.concatenate([[0], fallback, [0]]).astype(np.int64)
    k = len(P)
    unreached = np.iinfo(np.int64).max
    pieces = np.full(k, unreached, dtype=np.int64)
    falls = np.zeros(k, dtype=np.int64)
    shorts = np.zeros(k, dtype=np.int64)
    weakest = np.full(k, -np.inf)
    prev = np.full(k, -1, dtype=np.int64)
    pieces[0], weakest[0] = 0, np.inf
    for j in range(1, k):
        i = np.arange(np.searchsorted(P, P[j] - max_len, "left"), j)
        i = i[pieces[i] != unreached]
        if not len(i):
            continue
        w = np.minimum(weakest[i], S[j])
        sh = shorts[i] + (P[j] - P[i] < short_len)
        fb = falls[i] + F[j]
        best = np.lexsort((-w, sh, fb, pieces[i]))[0]
        b = i[best]
        pieces[j], falls[j], shorts[j], weakest[j], prev[j] = pieces[b] + 1, fb[best], sh[best], w[best], b
    if pieces[-1] == unreached:
        return None
    chosen, j = [], prev[-1]
    while j > 0:
        chosen.append(int(j) - 1)
        j = prev[j]
    return chosen[::-1]


def segment_envelope(rms: np.ndarray, n_samples: int, sample_rate: int, params: SegmentParams = SegmentParams()) -> list[Segment]:
    """Segments from the frame RMS (relative to full scale) of a stem of ``n_samples``."""
    p = params
    hop = max(int(round(p.frame_s * sample_rate)), 1)
    n = len(rms)
    if n == 0:
        return []
    frame_s = hop / sample_rate

    def frames(seconds: float) -> int:
        return int(round(seconds / frame_s))

    db = 20 * np.log10(np.maximum(rms, 1e-12))
    np.maximum(db, p.silence_floor_dbfs - 40, out=db)  # digital zero: no -inf, bounded scores
    step = max(frames(p.grid_s), 1)
    level = local_percentile(db, p.level_percentile, frames(p.level_window_s), step)
    floor = local_percentile(db, p.floor_percentile, frames(p.floor_window_s), step)
    no_voice = (level - floor < p.min_snr_db) & (level < level.max() - p.min_snr_db)
    below_level = np.maximum(level - db, 0.0)

    def threshold(a: int, b: int, factor: float) -> np.ndarray:
        thr = np.maximum(level[a:b] + 20 * np.log10(factor), floor[a:b] + p.noise_margin_db)
        return np.maximum(np.minimum(thr, level[a:b] - p.headroom_db), p.silence_floor_dbfs)

    def silent(a: int, b: int, factor: float) -> np.ndarray:
        return (db[a:b] < threshold(a, b, factor)) | no_voice[a:b]

    def centres(a: int, b: int, factor: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Frames (from a) where the silence runs [starts, ends) of [a, b) are cut: each run's
        middle, its frames weighted by the square of their depth under the threshold (step 4)."""
        weight = (np.maximum(threshold(a, b, factor) - db[a:b], 0.0) + DEPTH_EPS_DB) ** 2
        w, wx = np.r_[0.0, np.cumsum(weight)], np.r_[0.0, np.cumsum(weight * np.arange(b - a))]
        mid = (wx[ends] - wx[starts]) / (w[ends] - w[starts])
        return np.clip(np.round(mid).astype(np.int64), starts, ends - 1)

    tiers = p.tiers()
    silent0 = silent(0, n, tiers[0][0])
    voiced = np.flatnonzero(~silent0)
    if not len(voiced):
        return []
    voiced_before = np.r_[0, np.cumsum(~silent0)]
    run_starts, run_ends = silence_runs(silent0, 1)
    run_len = np.zeros(n + 1)  # frames of the base-factor silence run each frame lies in
    np.add.at(run_len, run_starts, run_ends - run_starts)
    np.add.at(run_len, run_ends, run_starts - run_ends)
    run_len = np.cumsum(run_len)[:n]

    def pause_at(c: int) -> float:
        """Seconds of the base-factor silence at cut frame c (between frames c-1 and c)."""
        return float(max(run_len[c - 1] if c > 0 else 0, run_len[c] if c < n else 0)) * frame_s
    keep = frames(p.keep_silence_s)
    max_frames = max(int(p.max_clip_s * sample_rate) // hop, 1)

    # Stretches between clear pauses (step 4).
    stretches, a = [], max(int(voiced[0]) - keep, 0)
    clear_starts, clear_ends = silence_runs(silent0, frames(tiers[0][1]))
    for s, e, m in zip(clear_starts, clear_ends, centres(0, n, tiers[0][0], clear_starts, clear_ends)):
        if s == 0 or e == n:
            continue  # leading/trailing silence: trimmed by the first/last voiced frame
        if e - s <= 2 * keep:
            stretches.append((a, int(m)))
            a = int(m)
        else:
            stretches.append((a, s + keep))
            a = e - keep
    stretches.append((a, min(int(voiced[-1]) + 1 + keep, n)))

    def cut_stretch(a: int, b: int) -> list[tuple[int, int, str]]:
        """(frame, tier, method) of the cuts that bring [a, b) under the maximum (steps 5-6)."""
        length, short = b - a, frames(p.min_piece_s)
        area = np.r_[0.0, np.cumsum(below_level[a:b])] * frame_s
        pos = score = np.zeros(0)
        for depth, (factor, min_sil) in enumerate(tiers):
            starts, ends = silence_runs(silent(a, b, factor), frames(min_sil))
            inner = (starts > 0) & (ends < length)
            starts, ends = starts[inner], ends[inner]
            pos, score = centres(a, b, factor, starts, ends), area[ends] - area[starts]
            chosen = fewest_cuts(pos, score, np.zeros(len(pos)), length, max_frames, short)
            if chosen is not None:
                return [(a + int(pos[c]), depth, "silence") for c in chosen]
        # No tier fits: local minima of the envelope smoothed over 100 ms join the last tier.
        width = max(frames(0.1), 1) | 1
        smooth = np.convolve(db[a:b], np.ones(width) / width, mode="same")
        padded = np.pad(smooth, width // 2, constant_values=np.inf)
        minima = np.flatnonzero(smooth <= np.lib.stride_tricks.sliding_window_view(padded, width).min(axis=1))
        minima = minima[(minima > 0) & (minima < length)]
        for extra in (minima, np.arange(1, length)):  # every frame only if minima cannot fit
            all_pos = np.r_[pos, extra]
            order = np.argsort(all_pos, kind="stable")
            all_score = np.r_[score, np.maximum(level[a + extra] - smooth[extra], 0) * frame_s]
            is_fallback = np.r_[np.zeros(len(pos)), np.ones(len(extra))]
            chosen = fewest_cuts(all_pos[order], all_score[order], is_fallback[order], length, max_frames, short)
            if chosen is not None:
                out = []
                for c in order[chosen]:
                    fb = c >= len(pos)
                    out.append((a + int(all_pos[c]), len(tiers) if fb else len(tiers) - 1, "quietest" if fb else "silence"))
                return out
        raise AssertionError("every frame is a candidate: a split under the maximum exists")

    def inner_pauses(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Starts, ends (exclusive) and middles, in frames from a, of the base-factor pauses of
        ``island_pause_s`` or more inside [a, b) (touching neither end): what bounds an island
        (step 7) and where a seam lies (step 9)."""
        starts, ends = silence_runs(silent0[a:b], frames(p.island_pause_s))
        inner = (starts > 0) & (ends < b - a)
        starts, ends = starts[inner], ends[inner]
        return starts, ends, centres(a, b, tiers[0][0], starts, ends)

    def island_cuts(a: int, b: int) -> list[tuple[int, int, str]]:
        """(frame, 0, "silence") at the middles of the pauses around each island in [a, b) (step 7)."""
        if p.island_max_s <= 0:
            return []
        starts, ends, inner_mids = inner_pauses(a, b)
        voiced_at = np.flatnonzero(~silent0[a:b])
        if not len(starts) or not len(voiced_at):
            return []
        # the stretch's own ends bound its first and last speech as pauses do (no cut there)
        mids = [None, *inner_mids, None]
        speech = [(int(voiced_at[0]), int(starts[0])), *zip(ends[:-1], starts[1:]), (int(ends[-1]), int(voiced_at[-1]) + 1)]
        cuts = set()
        for k, (x, y) in enumerate(speech):
            if 0 < y - x < frames(p.island_max_s):
                cuts.update(m for m in (mids[k], mids[k + 1]) if m is not None)
        return [(a + int(c), 0, "silence") for c in sorted(cuts)]

    def seams(a: int, b: int) -> list[int]:
        """Frames of [a, b) at the middles of its inner pauses of ``island_pause_s`` or more, each
        part between them (and the ends) at least SEAM_MIN_PART_S long (step 9)."""
        out, last, min_part = [], a, frames(SEAM_MIN_PART_S)
        for c in inner_pauses(a, b)[2]:
            if a + c - last >= min_part and b - (a + c) >= min_part:
                out.append(a + int(c))
                last = a + int(c)
        return out

    segments = []
    for a, b in stretches:
        # island cuts are made whatever the length, so the fewest cuts are counted between them
        islands = island_cuts(a, b)
        bounds = [a, *(c[0] for c in islands), b]
        cuts = sorted([*islands, *(c for x, y in zip(bounds, bounds[1:]) if y - x > max_frames for c in cut_stretch(x, y))])
        ends = [(a, 0, "silence"), *cuts, (b, 0, "silence")]
        for (x, dx, mx), (y, dy, my) in zip(ends[:-1], ends[1:]):
            if voiced_before[y] == voiced_before[x]:
                continue  # nothing but silence at the base factor
            depth = max(dx, dy)
            factor, min_sil = tiers[min(depth, len(tiers) - 1)]
            method = "quietest" if "quietest" in (mx, my) else "silence"
            segments.append(Segment(int(x) * hop, min(int(y) * hop, n_samples), method, int(depth), factor, min_sil,
                                    round(pause_at(int(x)), 3), round(pause_at(int(y)), 3),
                                    tuple(int(c) * hop for c in seams(int(x), int(y)))))
    return segments


def full_scale(dtype) -> float:
    return float(np.iinfo(dtype).max + 1) if np.issubdtype(dtype, np.integer) else 1.0


def split_on_silence(audio: np.ndarray, sample_rate: int, params: SegmentParams = SegmentParams()) -> list[Segment]:
    """Segments of ``audio`` (mono) under ``params.max_clip_s``, cut in pauses where possible."""
    hop = max(int(round(params.frame_s * sample_rate)), 1)
    return segment_envelope(frame_rms(audio, hop) / full_scale(audio.dtype), len(audio), sample_rate, params)


def write_segments(vocals_path: str, out_dir: str, params: SegmentParams, log) -> list[dict]:
    """Entry-point body: ``out_dir/segments.tsv`` for ``vocals_path`` (written atomically)."""
    import soundfile as sf

    from workflow_scripts.io_utils import StageError, atomic_dir

    try:
        info = sf.info(vocals_path)
        if info.channels != 1:
            raise StageError(f"{vocals_path}: expected mono, found {info.channels} channels")
        rate = info.samplerate
        hop = max(int(round(params.frame_s * rate)), 1)
        # Streamed: blocks are whole frames, so the envelope equals frame_rms of the whole stem.
        blocks = [frame_rms(b, hop) for b in sf.blocks(vocals_path, blocksize=hop << 16, dtype="int16")]
        n_samples = info.frames
    except StageError:
        raise
    except Exception as exc:
        raise StageError(f"{vocals_path}: cannot read vocal stem ({exc})") from exc
    rms = np.concatenate(blocks) / full_scale(np.int16) if blocks else np.zeros(0)
    segments = segment_envelope(rms, n_samples, rate, params)
    too_long = [s for s in segments if s.end - s.start > params.max_clip_s * rate + 1]
    if too_long:  # invariant: the maximum always holds
        raise StageError(f"{vocals_path}: internal error, {len(too_long)} segments over max_clip_s")
    if any(b.start < a.end for a, b in zip(segments, segments[1:])) or any(s.start < 0 or s.end > n_samples for s in segments):
        raise StageError(f"{vocals_path}: internal error, segments overlap or leave the stem")  # invariant
    header = ["segment", "start_sample", "end_sample", "start_s", "end_s", "duration_s", "method", "depth", "factor", "min_silence_s",
              "pause_before_s", "pause_after_s", "seams_s"]
    rows = [
        {
            "segment": f"seg_{i:05d}",
            "start_sample": seg.start,
            "end_sample": seg.end,
            "start_s": f"{seg.start / rate:.3f}",
            "end_s": f"{seg.end / rate:.3f}",
            "duration_s": f"{(seg.end - seg.start) / rate:.3f}",
            "method": seg.method,
            "depth": seg.depth,
            "factor": f"{seg.factor:g}",
            "min_silence_s": f"{seg.min_silence_s:g}",
            "pause_before_s": f"{seg.pause_before_s:.3f}",
            "pause_after_s": f"{seg.pause_after_s:.3f}",
            "seams_s": ";".join(f"{c / rate:.3f}" for c in seg.seams),
        }
        for i, seg in enumerate(segments, start=1)
    ]
    with atomic_dir(out_dir) as tmp:
        with open(f"{tmp}/segments.tsv", "w", encoding="utf-8") as fh:
            fh.write("\t".join(header) + "\n")
            for r in rows:
                fh.write("\t".join(str(r[h]) for h in header) + "\n")
    total = n_samples / rate if rate else 0
    kept = sum(s.end - s.start for s in segments) / rate if rate else 0
    log.info("%s: %d segments, %.1f s of %.1f s, %d cut at a quietest frame", vocals_path, len(rows), kept, total, sum(s.method == "quietest" for s in segments))
    return rows


def main(snakemake, log) -> None:
    """One shard: every member's segments (workflow_scripts/shards.py), then the manifest."""
    from workflow_scripts.shards import member_outputs, out_dir_of, processed_path, run_members, write_manifest

    params = SegmentParams.from_config({**snakemake.params.cfg, "max_clip_s": snakemake.params.max_clip_s})
    out_dir, recs = out_dir_of(snakemake.output.manifest), list(snakemake.params.recs)
    vocals = dict(zip(recs, member_outputs(snakemake.input.vocals, "vocals", recs)))
    rows = []

    def segment(rec: str) -> None:
        out = processed_path(out_dir, rec, "segments")
        write_segments(vocals[rec], out, params, log)
        rows.append((rec, "segments", out))

    run_members(recs, segment, log, out_dir, "segment")
    write_manifest(snakemake.output.manifest, rows)


if "snakemake" in globals():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821
    from workflow_scripts.io_utils import run_stage

    run_stage(snakemake, main)  # noqa: F821
