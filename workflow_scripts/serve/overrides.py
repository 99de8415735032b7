"""The review page's decisions written straight to ``{output_dir}/overrides.tsv``.

The file is byte for byte what the page's *Export overrides.tsv* produces
(``workflow_scripts/review_page.py``, ``overridesTsv()``): header ``clip action text``, one
line per decided clip sorted by clip name, ``text`` only for ``edit`` (cleaned of tabs, bars
and line breaks). It is read back with ``aggregate_metadata.read_overrides`` before it
replaces the old file (atomically), so what is written is what the rerun applies. No decision
at all removes the file: the gate's decisions come back, as when a user deletes it.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

ACTIONS = ("accept", "reject", "edit")


class InvalidDecisions(ValueError):
    pass


def clean(text) -> str:
    """As the page's ``clean()``: tabs, line breaks and ``|`` become spaces, spaces collapse."""
    return re.sub(r"\s+", " ", re.sub(r"[\t\r\n|]+", " ", str(text))).strip()


def overrides_tsv(decisions: dict) -> str:
    lines = ["clip\taction\ttext"]
    for clip in sorted(decisions):
        d = decisions[clip]
        lines.append("\t".join([clip, d["action"], clean(d.get("text", "")) if d["action"] == "edit" else ""]))
    return "\n".join(lines) + "\n"


def validate(decisions, known_clips: set[str] | None = None) -> dict:
    """{clip: {"action", "text"}} checked: known clip names, known actions, text for edit."""
    if not isinstance(decisions, dict):
        raise InvalidDecisions("decisions must be an object {clip: {action, text}}")
    out = {}
    for clip, d in decisions.items():
        if not isinstance(clip, str) or not clip or clip != clean(clip) or "/" in clip or clip.startswith("."):
            raise InvalidDecisions(f"{clip!r} is not a clip file name")
        if known_clips is not None and clip not in known_clips:
            raise InvalidDecisions(f"{clip}: no such clip in transcripts.tsv")
        if not isinstance(d, dict) or d.get("action") not in ACTIONS:
            raise InvalidDecisions(f"{clip}: action must be one of {', '.join(ACTIONS)}")
        text = clean(d.get("text") or "")
        if d["action"] == "edit" and not text:
            raise InvalidDecisions(f"{clip}: edit without text")
        out[clip] = {"action": d["action"], "text": text if d["action"] == "edit" else ""}
    return out


def known_clips(transcripts_tsv: str | os.PathLike) -> set[str] | None:
    """The clip names of ``transcripts.tsv`` (None before aggregate_metadata has run)."""
    try:
        with open(transcripts_tsv, newline="", encoding="utf-8") as fh:
            return {r["clip"] for r in csv.DictReader(fh, delimiter="\t")}
    except FileNotFoundError:
        return None


def write_overrides(path: str | os.PathLike, decisions: dict) -> str:
    """Write (or, with no decision, remove) ``overrides.tsv``; returns the text written."""
    from workflow_scripts.aggregate_metadata import read_overrides

    path = Path(path)
    if not decisions:
        path.unlink(missing_ok=True)
        return ""
    text = overrides_tsv(decisions)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        back = read_overrides(tmp)
    except Exception as exc:  # noqa: BLE001 - any reader error means the file is not written
        tmp.unlink(missing_ok=True)
        raise InvalidDecisions(str(exc)) from exc
    if {c: (v["action"], v["text"]) for c, v in back.items()} != {c: (v["action"], v["text"]) for c, v in decisions.items()}:
        tmp.unlink(missing_ok=True)
        raise InvalidDecisions("overrides.tsv would not read back as written")
    os.replace(tmp, path)
    return text
