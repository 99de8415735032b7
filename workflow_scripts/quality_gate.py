"""Quality gate for transcribed clips: text normalisation for Piper, a quality score, and
a keep/reject decision with reasons. Pure functions on the records of ``transcripts.jsonl``
(see workflow_scripts/transcription.py); standard library only.

Normalisation (``normalize_text``) makes the text speakable by Piper's phonemizer
(espeak-ng) the way the speaker said it: numbers become words (English: cardinals,
ordinals, decimals, years, money, percent; own implementation, no extra dependency),
common abbreviations and symbols are spelt out, typographic quotes/dashes become ASCII,
whitespace is collapsed. Punctuation is kept (it drives prosody). The gate records both
the original and the normalised text.

Reasons (``gate`` returns ``(keep, reasons)``; each reason is ``code`` or ``code:detail``):
``empty``, ``non_speech`` (empty after removing bracketed tags like "[Music]", only
symbols, or a non-speech transcript), ``no_speech`` (no_speech_prob too high),
``wrong_language``, ``low_logprob``, ``low_word_probability``, ``repetition`` (compression
ratio or an n-gram repeated back to back), ``chars_per_s_low`` / ``chars_per_s_high``,
``cut_start`` / ``cut_end`` (the clip edge lies inside a word of the long-form decoding, by
at least ``edge_overlap_s``, and the audio there is ``edge_floor_db`` above the local noise
floor: both must hold, so neither a late word time at a pause nor a noisy room cuts a clip),
``unspeakable`` (characters the phonemizer cannot speak), ``low_quality`` (score below
``min_quality``).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Any

# The thresholds gate() reads: transcription.gate in schemas/config.schema.yaml (the only
# place their defaults are written down), validated and filled before they reach this module.
GATE_KEYS = ("language", "min_language_probability", "min_avg_logprob", "max_no_speech_prob",
             "min_word_probability", "max_compression_ratio", "max_ngram_repeats", "min_chars_per_s",
             "max_chars_per_s", "edge_overlap_s", "edge_floor_db", "min_quality")
# The reasons that say Whisper heard no words in a clip (the speaker gate finds no voice from it).
WORDLESS_REASONS = ("empty", "non_speech", "no_speech")

# --------------------------------------------------------------------------- numbers

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def _below_1000(n: int) -> str:
    parts = []
    if n >= 100:
        parts.append(f"{_ONES[n // 100]} hundred")
        n %= 100
        if n:
            parts.append("and")
    if n >= 20:
        parts.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n or not parts:
        parts.append(_ONES[n])
    return " ".join(parts)


def number_to_words(n: int) -> str:
    """English cardinal: 1234 -> 'one thousand two hundred and thirty-four'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))
    parts = []
    for value, name in _SCALES:
        if n >= value:
            parts.append(f"{_below_1000(n // value)} {name}")
            n %= value
    if n or not parts:
        if parts and n < 100:
            parts.append("and")
        parts.append(_below_1000(n))
    return " ".join(parts)


def ordinal_words(n: int) -> str:
    words = number_to_words(n)
    head, sep, last = words.rpartition(" ")
    if "-" in last:
        a, b = last.rsplit("-", 1)
        last = f"{a}-{_ordinal_word(b)}"
    else:
        last = _ordinal_word(last)
    return f"{head}{sep}{last}"


def _ordinal_word(w: str) -> str:
    if w in _ORD_IRREGULAR:
        return _ORD_IRREGULAR[w]
    if w.endswith("y"):
        return w[:-1] + "ieth"
    return w + "th"


def year_words(n: int) -> str:
    """1984 -> 'nineteen eighty-four', 2005 -> 'two thousand and five', 1900 -> 'nineteen hundred'."""
    if 2000 <= n <= 2009 or n < 1100 or n > 2099:
        return number_to_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return f"{number_to_words(hi)} hundred"
    return f"{number_to_words(hi)} {'oh ' + _ONES[lo] if lo < 10 else number_to_words(lo)}"


def _decimal_words(s: str) -> str:
    whole, _, frac = s.partition(".")
    out = number_to_words(int(whole.replace(",", "") or "0"))
    if frac:
        out += " point " + " ".join(_ONES[int(d)] for d in frac)
    return out


_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}


def _money(sym: str, amount: str) -> str:
    one, many, sub1, subn = _CURRENCY[sym]
    whole, _, frac = amount.replace(",", "").partition(".")
    w = int(whole or "0")
    out = f"{number_to_words(w)} {one if w == 1 else many}"
    if frac and int(frac[:2].ljust(2, "0")):
        c = int(frac[:2].ljust(2, "0"))
        out += f" and {number_to_words(c)} {sub1 if c == 1 else subn}"
    return out


# --------------------------------------------------------------------------- normalisation

ABBREVIATIONS = {
    "mr.": "mister", "mrs.": "missus", "ms.": "miz", "dr.": "doctor", "prof.": "professor",
    "st.": "saint", "jr.": "junior", "sr.": "senior", "vs.": "versus", "etc.": "et cetera",
    "e.g.": "for example", "i.e.": "that is", "approx.": "approximately", "no.": "number",
}
SYMBOLS = {"&": " and ", "%": " percent", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ",
           "°": " degrees", "×": " times ", "½": " and a half"}
_TYPOGRAPHIC = {"‘": "'", "’": "'", "ʼ": "'", "“": '"', "”": '"', "„": '"', "–": " - ", "—": " - ",
                "…": "...", "\u00a0": " "}
SPEAKABLE_PUNCT = set(" .,?!;:'\"-()")
NON_SPEECH_TAG = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪+")


def strip_non_speech_tags(text: str) -> str:
    """Remove Whisper's bracketed annotations ("[Music]", "(laughs)", "♪")."""
    return re.sub(r"\s+", " ", NON_SPEECH_TAG.sub(" ", text)).strip()


def normalize_text(text: str, language: str = "en") -> str:
    """Make ``text`` speakable for Piper (see module docstring); punctuation is kept."""
    t = unicodedata.normalize("NFC", text or "")
    for a, b in _TYPOGRAPHIC.items():
        t = t.replace(a, b)
    t = strip_non_speech_tags(t)
    if language and not language.startswith("en"):
        return re.sub(r"\s+", " ", t).strip()
    # abbreviations (case-insensitive, whole tokens)
    for abbr, full in ABBREVIATIONS.items():
        t = re.sub(rf"(?<![\w.]){re.escape(abbr)}(?=\s|$)",
                   lambda m, full=full: full.capitalize() if m.group(0)[0].isupper() else full, t, flags=re.I)
    # money, percent before generic numbers
    t = re.sub(r"([$£€])\s?(\d[\d,]*(?:\.\d+)?)", lambda m: " " + _money(m.group(1), m.group(2)), t)
    t = re.sub(r"(\d)(st|nd|rd|th)\b", lambda m: m.group(1) + "\x00" + m.group(2), t)
    t = re.sub(r"\b(\d+)\x00(?:st|nd|rd|th)\b", lambda m: ordinal_words(int(m.group(1))), t)
    t = re.sub(r"\b(1[1-9]\d\d|20\d\d)s\b", lambda m: year_words(int(m.group(1))).rstrip("y") +
               ("ies" if year_words(int(m.group(1))).endswith("y") else "s"), t)
    t = re.sub(r"(?<![\d,.])\b(1[1-9]\d\d|20\d\d)\b(?![\d,.]\d)", lambda m: year_words(int(m.group(1))), t)
    # call signs and model numbers ("W5ABC", "TS2000"): digits apart from the letters
    t = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", t)
    t = re.sub(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+\.\d+\b|\b\d+\b", lambda m: _decimal_words(m.group(0)), t)
    for sym, word in SYMBOLS.items():
        t = t.replace(sym, word)
    t = re.sub(r"\s+([.,?!;:])", r"\1", t)
    return re.sub(r"\s+", " ", t).strip()


def unspeakable_chars(text: str, language: str = "en") -> list[str]:
    """Characters the phonemizer cannot speak (sorted, unique) in normalised text."""
    bad = set()
    for ch in text:
        if ch in SPEAKABLE_PUNCT or ch.isspace():
            continue
        if ch.isalpha():
            if language and language.startswith("en") and not unicodedata.name(ch, "").startswith("LATIN"):
                bad.add(ch)
            continue
        bad.add(ch)
    return sorted(bad)


# --------------------------------------------------------------------------- signals


def max_ngram_repeats(text: str, max_n: int = 5) -> tuple[int, int]:
    """(repeats, n): the most back-to-back repetitions of any word n-gram (n = 1..max_n)."""
    words = re.findall(r"[\w']+", text.lower())
    best = (1, 1)
    for n in range(1, max_n + 1):
        for start in range(len(words) - n + 1):
            gram, reps, pos = words[start : start + n], 1, start + n
            while words[pos : pos + n] == gram:
                reps, pos = reps + 1, pos + n
            if reps > best[0]:
                best = (reps, n)
    return best


def is_loop(reps: int, n: int, max_repeats: int) -> bool:
    """Whether ``reps`` back-to-back repeats of a word ``n``-gram (max_ngram_repeats) are a
    decoding loop: ``max_repeats`` or more, one more for a single word ("no, no, no" is speech)."""
    return reps >= max_repeats + (1 if n == 1 else 0)


def ngram_share(text: str, n: int = 3) -> float:
    """Share of word n-grams that are copies of an earlier one (0 = none, ~1 = loop)."""
    words = re.findall(r"[\w']+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)


def speech_chars(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def mean_word_probability(record: dict) -> float | None:
    probs = [w.get("probability") for w in record.get("words") or [] if w.get("probability") is not None]
    return sum(probs) / len(probs) if probs else None


def quality_score(record: dict, cfg: dict | None = None) -> float:
    """A score in [0, 1] (higher is better): weighted geometric mean of the signals.

    per-token probability exp(avg_logprob) (weight 0.35), mean word probability (0.25),
    1 - no_speech_prob (0.15), a compression-ratio term (1 up to 2.0, 0 at 3.0; 0.15) and
    the language probability (0.10). A missing signal is left out (weights renormalised).
    Empty text scores 0.
    """
    if not strip_non_speech_tags(record.get("text") or ""):
        return 0.0
    terms = []
    if record.get("avg_logprob") is not None:
        terms.append((math.exp(min(0.0, float(record["avg_logprob"]))), 0.35))
    wp = mean_word_probability(record)
    if wp is not None:
        terms.append((wp, 0.25))
    if record.get("no_speech_prob") is not None:
        terms.append((1.0 - float(record["no_speech_prob"]), 0.15))
    cr = record.get("compression_ratio")
    if cr is not None:
        terms.append((min(1.0, max(0.0, 1.0 - (float(cr) - 2.0))), 0.15))
    if record.get("language_probability") is not None:
        terms.append((float(record["language_probability"]), 0.10))
    if not terms:
        return 0.0
    wsum = sum(w for _, w in terms)
    logs = sum(w * math.log(max(v, 1e-6)) for v, w in terms) / wsum
    return round(min(1.0, max(0.0, math.exp(logs))), 4)


# --------------------------------------------------------------------------- gate


def gate_config(cfg: dict, transcription_language: str | None = None) -> dict:
    """The validated ``transcription.gate`` section; ``language`` null = ``transcription_language``."""
    missing = [k for k in GATE_KEYS if k not in (cfg or {})]
    if missing:
        raise ValueError(f"transcription.gate lacks {', '.join(missing)} (the schema fills them: "
                         "pass a config validated against schemas/config.schema.yaml)")
    out = dict(cfg)
    if out["language"] is None:
        out["language"] = transcription_language
    return out


def gate(record: dict, cfg: dict) -> tuple[bool, list[str]]:
    """Decide whether a transcribed clip is kept; returns (keep, reasons)."""
    c = gate_config(cfg)
    reasons: list[str] = []
    raw = (record.get("text") or "").strip()
    lang = record.get("language") or c["language"] or "en"
    if not raw:
        return False, ["empty"]
    spoken = strip_non_speech_tags(raw)
    if not spoken or speech_chars(spoken) == 0:
        return False, ["non_speech"]
    text = normalize_text(raw, lang)

    expected = c["language"]
    prob = record.get("language_probability")
    if expected and record.get("language") and prob is not None:
        if record["language"] != expected:
            reasons.append(f"wrong_language:{record['language']}")
        elif prob < c["min_language_probability"]:
            reasons.append(f"wrong_language:uncertain {prob:.2f}")
    elif expected and record.get("language") and record["language"] != expected:
        reasons.append(f"wrong_language:{record['language']}")

    nsp = record.get("no_speech_prob")
    if nsp is not None and nsp > c["max_no_speech_prob"]:
        reasons.append(f"no_speech:{nsp:.2f}")
    lp = record.get("avg_logprob")
    if lp is not None and lp < c["min_avg_logprob"]:
        reasons.append(f"low_logprob:{lp:.2f}")
    wp = mean_word_probability(record)
    if wp is not None and wp < c["min_word_probability"]:
        reasons.append(f"low_word_probability:{wp:.2f}")

    cr = record.get("compression_ratio")
    reps, n = max_ngram_repeats(raw)
    if cr is not None and cr > c["max_compression_ratio"]:
        reasons.append(f"repetition:compression {cr:.2f}")
    elif is_loop(reps, n, c["max_ngram_repeats"]):
        reasons.append(f"repetition:{n}-gram x{reps}")

    dur = float(record.get("duration_s") or 0.0)
    if dur > 0:
        cps = speech_chars(text) / dur
        if cps < c["min_chars_per_s"]:
            reasons.append(f"chars_per_s_low:{cps:.1f}")
        elif cps > c["max_chars_per_s"]:
            reasons.append(f"chars_per_s_high:{cps:.1f}")

    words = record.get("words") or []
    overlap = record.get("edge_overlap_s") or [0.0, 0.0]
    above = record.get("edge_floor_db") or [None, None]
    for side, code, word in ((0, "cut_start", words[:1]), (1, "cut_end", words[-1:])):
        if overlap[side] >= c["edge_overlap_s"] and (above[side] is None or above[side] > c["edge_floor_db"]):
            reasons.append(f"{code}:{word[0]['word'].strip() if word else 'inside a word'}")

    bad = unspeakable_chars(text, lang)
    if bad:
        reasons.append("unspeakable:" + "".join(bad))

    score = quality_score(record)
    if score < c["min_quality"]:
        reasons.append(f"low_quality:{score:.2f}")
    return not reasons, reasons


def reason_code(reason: str) -> str:
    return reason.split(":", 1)[0]


def evaluate(record: dict, cfg: dict) -> dict:
    """Gate one record: {keep, reasons, quality, text (original), normalised}."""
    keep, reasons = gate(record, cfg)
    lang = record.get("language") or "en"
    return {
        "keep": keep,
        "reasons": reasons,
        "quality": quality_score(record),
        "text": (record.get("text") or "").strip(),
        "normalised": normalize_text(record.get("text") or "", lang),
    }
