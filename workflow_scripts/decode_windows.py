"""Plan the stretches of a vocal stem that Whisper decodes, from the clips cut out of it.

Whisper transcribes best with context: a whole stretch of speech, decoded in order, each
30 s window conditioned on the text before it. Decoding clip by clip loses that (and pays
a padded 30 s encoder pass per clip). So the stem itself is decoded, restricted to the
parts that hold clips, and each clip later takes the words whose times fall inside it.

A window is a run of consecutive clips that fits in ``max_s`` of stem time (Whisper's
window is 30 s; its last second tends to lose words). It reaches ``lead_s`` before its
first clip and after its last one, but never into a neighbouring window, so a word is
decoded once. Windows break at the gaps between clips, which are pauses (the clips were
cut at silences), so no window boundary falls inside a word of a clip. A clip longer than
``max_s`` gets a window of its own (Whisper's long-form decoding seeks through it).

Windows are grouped into blocks of at most ``block_s`` of stem time: one block is read,
resampled and decoded at a time, so memory stays bounded however long the recording.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: float  # seconds in the stem
    end: float
    clips: tuple[int, ...]  # indices into the clip list, consecutive


def plan_windows(spans: list[tuple[float, float]], max_s: float = 28.0, lead_s: float = 0.4) -> list[Window]:
    """Windows over clips given as (start, end) stem seconds, sorted and non-overlapping."""
    groups: list[list[int]] = []
    for i, (start, end) in enumerate(spans):
        if groups and end - spans[groups[-1][0]][0] <= max_s:
            groups[-1].append(i)
        else:
            groups.append([i])
    windows = []
    for k, group in enumerate(groups):
        first, last = spans[group[0]], spans[group[-1]]
        lo = first[0] - lead_s
        hi = last[1] + lead_s
        if k > 0:  # meet the previous window halfway in the gap, never overlap it
            prev_end = spans[groups[k - 1][-1]][1]
            lo = max(lo, (prev_end + first[0]) / 2)
        if k + 1 < len(groups):
            next_start = spans[groups[k + 1][0]][0]
            hi = min(hi, (last[1] + next_start) / 2)
        windows.append(Window(max(lo, 0.0), hi, tuple(group)))
    return windows


def plan_blocks(windows: list[Window], block_s: float = 600.0) -> list[list[Window]]:
    """Consecutive windows grouped so each group spans at most ``block_s`` of stem time."""
    blocks: list[list[Window]] = []
    for w in windows:
        if blocks and w.end - blocks[-1][0].start <= block_s:
            blocks[-1].append(w)
        else:
            blocks.append([w])
    return blocks
