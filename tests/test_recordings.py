"""Recording ids from hostile names: safe, unique, stable."""
import re

from workflow_scripts.recordings import ID_PATTERN, recording_id, recordings_from_directory, recordings_from_sheet

NASTY = [
    "my talk.mp3", "it's \"quoted\".mp3", "$(touch pwned).mp3", "`whoami`.mp4", "a;b.wav", "-rf.mp3",
    "--help.flac", "Grüße aus Köln.m4a", "日本語.ogg", "x" * 300 + ".mp3", "..hidden.mp3", "a{b}c.wav", "tab\tname.mp3",
]


def test_ids_safe_unique_stable():
    ids = [recording_id(n) for n in NASTY]
    assert len(set(ids)) == len(ids)
    for i in ids:
        assert re.fullmatch(ID_PATTERN, i), i
        assert len(i) <= 80
    assert ids == [recording_id(n) for n in NASTY]
    assert recording_id("lecture_01.mp3") == "lecture_01"


def test_directory_scan_and_collisions(tmp_path):
    for n in ["talk.mp3", "talk.wav", "notes.txt", ".hidden.mp3", "sub/talk.mp3"]:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_bytes(b"x")
    recs = recordings_from_directory(tmp_path, "spk", "en")
    ids = [r.id for r in recs]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert any(i.startswith("sub_") for i in ids)


def test_sample_sheet(tmp_path):
    (tmp_path / "a b.mp3").write_bytes(b"x")
    (tmp_path / "sheet.tsv").write_text("id\tpath\tspeaker\tlanguage\nr1\ta b.mp3\tanna\tde\n\t/abs/c.mp3\t\t\n")
    recs = recordings_from_sheet(tmp_path / "sheet.tsv", "spk", "en")
    assert recs[0].id == "r1" and recs[0].speaker == "anna" and recs[0].language == "de"
    assert recs[0].path == str((tmp_path / "a b.mp3").resolve())
    assert recs[1].id == "c" and recs[1].speaker == "spk"
