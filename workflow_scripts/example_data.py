"""Build the bundled example: real speech from Debian's Asterisk prompts (one speaker,
studio recordings, CC-BY-SA-3.0), joined into long recordings with pauses, as mp3 and mp4.

    python -m workflow_scripts.example_data --out example/raw [--prompts 48] [--recordings 2]

The prompts come from Debian's `asterisk-core-sounds-en-g722` package (`apt-get download`,
no root needed) and their texts from `asterisk-core-sounds-en`'s docs. Downloads are cached
under ~/.cache/piper-voice-workflow/debian; the output is deterministic for given arguments.
A `transcripts.tsv` (recording, index, start_s, end_s, prompt, text) is written beside the media folder.
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PACKAGES = ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-en")
RATE = 16000


def cache_root() -> Path:
    root = os.environ.get("PVW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "piper-voice-workflow"
    )
    return Path(root) / "debian"


def fetch_packages() -> Path:
    """apt-get download + dpkg-deb -x into the cache; returns the extraction root."""
    root = cache_root()
    tree = root / "tree"
    if (tree / ".complete").exists():
        return tree
    root.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if not list(root.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=root, check=True)
    tree.mkdir(exist_ok=True)
    for deb in sorted(root.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    (tree / ".complete").write_text("ok\n")
    return tree


def prompt_texts(tree: Path) -> dict[str, str]:
    """Map prompt name (e.g. 'vm-intro') to its text from core-sounds-en.txt.gz."""
    doc = next(tree.rglob("core-sounds-en.txt*"))
    raw = gzip.open(doc, "rt", errors="replace").read() if doc.suffix == ".gz" else doc.read_text(errors="replace")
    texts = {}
    for line in raw.splitlines():
        m = re.match(r"^([\w/-]+):\s*(.+)$", line.strip())
        if m:
            texts[m.group(1)] = m.group(2).strip()
    return texts


def usable_prompts(tree: Path, texts: dict[str, str]) -> list[tuple[str, Path, str]]:
    """Prompts with a plain-English text (no [stage directions]) and 3–12 words, sorted."""
    out = []
    base = next(p for p in tree.rglob("*.g722")).parent
    for f in sorted(tree.rglob("*.g722")):
        name = str(f.relative_to(base).with_suffix(""))
        text = texts.get(name)
        if not text or re.search(r"[\[\]<>{}]", text):
            continue
        if 3 <= len(text.split()) <= 12:
            out.append((name, f, text))
    return out


def decode_g722(path: Path) -> np.ndarray:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "g722", "-i", "file:" + str(path), "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(proc.stdout, dtype=np.int16).astype(np.float32) / 32768


def build(out_dir: str, n_prompts: int = 48, n_recordings: int = 2, seed: int = 7) -> list[Path]:
    import soundfile as sf

    tree = fetch_packages()
    prompts = usable_prompts(tree, prompt_texts(tree))
    rng = np.random.default_rng(seed)
    chosen = [prompts[i] for i in sorted(rng.choice(len(prompts), size=min(n_prompts, len(prompts)), replace=False))]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, made = [], []
    per = -(-len(chosen) // n_recordings)
    for r in range(n_recordings):
        part = chosen[r * per : (r + 1) * per]
        pieces, t = [], 0.0
        rec = f"speaker_session_{r + 1:02d}"
        lead = np.zeros(int(0.8 * RATE), dtype=np.float32)
        pieces.append(lead)
        t += len(lead) / RATE
        for i, (name, path, text) in enumerate(part):
            x = decode_g722(path)
            rows.append((rec, i, f"{t:.3f}", f"{t + len(x) / RATE:.3f}", name, text))
            pause = np.zeros(int(rng.uniform(0.7, 1.6) * RATE), dtype=np.float32)
            pieces += [x, pause]
            t += (len(x) + len(pause)) / RATE
        audio = np.concatenate(pieces)
        # a whisper of room noise so silences are not digital zero, as in real recordings
        audio += (2e-4 * rng.standard_normal(len(audio))).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "joined.wav"
            sf.write(wav, audio, RATE, subtype="PCM_16")
            if r % 2 == 0:
                target = out / f"{rec}.mp3"
                codec = ["-c:a", "libmp3lame", "-b:a", "96k", "-ar", "22050"]
            else:
                target = out / f"{rec}.mp4"
                codec = ["-c:a", "aac", "-b:a", "96k", "-ar", "22050"]
            tmp_target = target.with_name(".tmp-" + target.name)
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *codec, str(tmp_target)], check=True)
            os.replace(tmp_target, target)
        made.append(target)
    with open(out.parent / "transcripts.tsv.tmp", "w", encoding="utf-8") as fh:
        fh.write("recording\tindex\tstart_s\tend_s\tprompt\ttext\n")
        for row in rows:
            fh.write("\t".join(map(str, row)) + "\n")
    os.replace(out.parent / "transcripts.tsv.tmp", out.parent / "transcripts.tsv")
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="example/raw")
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--recordings", type=int, default=2)
    args = ap.parse_args()
    for p in build(args.out, args.prompts, args.recordings):
        print(p)


if __name__ == "__main__":
    main()
