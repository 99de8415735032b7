"""Judging evaluated voices (reports of workflow_scripts/voice_eval.py): the smoke verdict in
words and the choice of ``training.export: best``. Standard library only, so that any stage
env can import it.

Verdict (``intelligibility``, ``smoke_verdict``), from the overall CER of the evaluation and
the two thresholds of the config's ``evaluation`` section:

* CER <= ``intelligible_max_cer``: "intelligible (CER 0.04)";
* CER <= ``partly_intelligible_max_cer``: "partly intelligible (CER 0.31)";
* otherwise "not intelligible yet (CER 0.93)".

The speaker similarity follows, then every problem that sentences were flagged with and in how
many of them ("; clipped in 2 of 6 sentences").

Best candidate (``select_best``, ``SELECTION_RULE``): the lowest overall CER; among equal CERs
(as recorded, to 4 decimals) the highest mean speaker similarity; among equal ones the later
chunk. CER comes first because a voice that cannot be understood is of no use however close it
sounds to the speaker; the later chunk last because it has trained longest.
"""
from __future__ import annotations

from typing import Mapping

SELECTION_RULE = "lowest CER, then highest speaker similarity, then the later chunk"
CANDIDATE_KEYS = ("cer", "wer", "similarity", "dnsmos_ovrl", "duration_ratio", "flagged_sentences", "verdict")


def intelligibility(cer: float, settings: Mapping) -> str:
    """The class of an overall CER: intelligible / partly intelligible / not intelligible yet."""
    if cer <= settings["intelligible_max_cer"]:
        return "intelligible"
    if cer <= settings["partly_intelligible_max_cer"]:
        return "partly intelligible"
    return "not intelligible yet"


def smoke_verdict(overall: Mapping, n_sentences: int, settings: Mapping) -> str:
    """One line, e.g. "not intelligible yet (CER 0.93), speaker similarity 0.41; silent in
    2 of 6 sentences". ``overall``: the ``overall`` object of an evaluation report (``cer``,
    ``similarity``, ``flags`` = problem -> number of sentences)."""
    text = f"{intelligibility(overall['cer'], settings)} (CER {overall['cer']:.2f})"
    if overall.get("similarity") is not None:
        text += f", speaker similarity {overall['similarity']:.2f}"
    problems = [f"{name.replace('_', ' ')} in {k} of {n_sentences} sentences"
                for name, k in overall.get("flags", {}).items() if k]
    return "; ".join([text, *problems])


def _sort_key(chunk: int, overall: Mapping) -> tuple:
    similarity = overall.get("similarity")
    return (-round(float(overall["cer"]), 4), -1.0 if similarity is None else round(float(similarity), 4), chunk)


def select_best(candidates: Mapping[int, Mapping]) -> dict:
    """The chunk to export under ``training.export: best``, by SELECTION_RULE.

    ``candidates``: chunk number -> its evaluation report (the JSON voice_eval writes). Returns
    what voice/selection.json records::

        {"rule": SELECTION_RULE, "chosen": 3,
         "candidates": [{"chunk": 1, "cer": 0.91, "wer": 1.0, "similarity": 0.52,
                         "dnsmos_ovrl": 2.1, "duration_ratio": 1.4, "flagged_sentences": 2,
                         "verdict": "..."}, ...]}   # in chunk order
    """
    if not candidates:
        raise ValueError("select_best: no candidates")
    rows = []
    for chunk in sorted(candidates):
        overall = candidates[chunk]["overall"]
        rows.append({"chunk": int(chunk), **{k: overall.get(k) for k in CANDIDATE_KEYS}})
    best = max(rows, key=lambda r: _sort_key(r["chunk"], r))
    return {"rule": SELECTION_RULE, "chosen": best["chunk"], "candidates": rows}
