"""One Snakemake run at a time, as a subprocess in its own process group.

``start(until)`` launches Snakemake (argument list, never a shell) up to a ``run_until``
stage and reads its output on a thread into a :class:`~.progress.Progress`. A second start
while this server's run is alive is refused; a Snakemake started elsewhere on the same
working directory (a terminal, another server) is caught by Snakemake's own lock: that run
ends at once as ``refused`` with Snakemake's lock message. ``stop()`` sends SIGTERM to the
process group (Snakemake and its jobs), then SIGKILL after a grace period; when it had to
kill, it runs ``snakemake --unlock`` (the lock's owner is gone). The next start resumes
(``--rerun-incomplete``: only jobs that were cut are redone).
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from typing import Callable

from workflow_scripts.serve.progress import Progress
from workflow_scripts.snakemake_cmd import STAGES


class RunRefused(Exception):
    pass


class Runner:
    def __init__(self, argv_for: Callable[[str], list[str]], unlock_argv: list[str], workdir: str,
                 grace_s: float = 20.0):
        self.argv_for, self.unlock_argv, self.workdir, self.grace_s = argv_for, unlock_argv, workdir, grace_s
        self._lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.progress = Progress()
        self.lines: deque = deque(maxlen=300)
        self.state = "idle"   # idle | running | stopping | done | failed | stopped | refused
        self.until: str | None = None
        self.started = self.ended = None
        self.returncode: int | None = None
        self.argv: list[str] = []
        self.run_id = 0
        self._stop_requested = False
        self._reader: threading.Thread | None = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, until: str) -> dict:
        if until not in STAGES:
            raise ValueError(f"run_until must be one of {', '.join(STAGES)}, not {until!r}")
        with self._lock:
            if self.running() or (self._reader and self._reader.is_alive()):
                raise RunRefused(
                    f"a run is already in progress (run {self.run_id}, to {self.until}, pid {self.proc.pid}, "
                    f"started {time.strftime('%H:%M:%S', time.localtime(self.started))}): Snakemake holds the "
                    f"lock on {self.workdir}. Stop it or wait for it to end.")
            self.argv = self.argv_for(until)
            self.progress, self.lines = Progress(), deque(maxlen=300)
            self.until, self.started, self.ended, self.returncode = until, time.time(), None, None
            self._stop_requested = False
            self.run_id += 1
            self.proc = subprocess.Popen(
                self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True, text=True, errors="replace", bufsize=1,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            self.state = "running"
            self._reader = threading.Thread(target=self._read, args=(self.proc, self.progress), daemon=True)
            self._reader.start()
            return self.status()

    def _read(self, proc: subprocess.Popen, progress: Progress) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))
            progress.feed(line)
        rc = proc.wait()
        with self._lock:
            self.returncode, self.ended = rc, time.time()
            if self._stop_requested:
                self.state = "stopped"
            elif rc == 0:
                self.state = "done"
            elif progress.locked:
                self.state = "refused"
            else:
                self.state = "failed"

    def stop(self) -> dict:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return self.status()
        self._stop_requested, self.state = True, "stopping"
        self._signal(proc, signal.SIGTERM)
        try:
            proc.wait(self.grace_s)
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGKILL)
            proc.wait()
            subprocess.run(self.unlock_argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=300)
        if self._reader:
            self._reader.join(10)
        return self.status()

    @staticmethod
    def _signal(proc: subprocess.Popen, sig) -> None:
        try:
            os.killpg(proc.pid, sig)  # the group: Snakemake and every job it started
        except ProcessLookupError:
            pass

    def status(self) -> dict:
        snap = self.progress.snapshot(self.workdir)
        message = ""
        if self.state == "refused":
            message = snap["lock_message"] or "Snakemake's lock is held by another run"
        elif self.state == "failed":
            names = sorted({f["rule"] for f in snap["failed"]})
            message = (f"failed in {', '.join(names)}" if names else "Snakemake failed") + f" (exit {self.returncode})"
        elif self.state == "done":
            message = "nothing to be done: everything is up to date" if snap["nothing_to_do"] else "finished"
        return {"state": self.state, "run_id": self.run_id, "until": self.until, "started": self.started,
                "ended": self.ended, "returncode": self.returncode, "pid": self.proc.pid if self.proc else None,
                "message": message, "progress": snap, "output": list(self.lines)[-40:]}
