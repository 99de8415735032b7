"""Progress of a Snakemake run, read from Snakemake's own output (nothing is re-derived).

Snakemake 9 prints, in order: a ``Job stats:`` table (rule, count, ``total``), then for each
job a block ``rule NAME:`` / ``localrule NAME:`` with indented ``jobid:``, ``log:``,
``wildcards:`` lines, ``Finished jobid: N (Rule: NAME)`` when it ends and ``N of M steps
(P%) done`` after each; a failed job prints ``Error in rule NAME:`` with its ``jobid:`` and
``log: PATH (check log file(s) for error details)``. A second Snakemake on the same outputs
stops with ``Directory cannot be locked``. :class:`Progress` folds those lines into a state;
:func:`log_tail` and :func:`eta_line` read a job's own log (the rules log ``... ETA 12s``).
"""
from __future__ import annotations

import re
from collections import Counter, deque
from pathlib import Path

from workflow_scripts.snakemake_cmd import LOCK_MESSAGE

_STEPS = re.compile(r"^(\d+) of (\d+) steps \((\d+(?:\.\d+)?)%\) done")
_JOB = re.compile(r"^(?:local)?rule (\S+):$")
_ERROR = re.compile(r"^Error in rule (\S+):$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\S+)\)|^Finished job (\d+)\.")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")
_STAT = re.compile(r"^(\S+)\s+(\d+)$")
_ETA = re.compile(r"ETA \d+s|\d+(?:\.\d+)?%")


class Progress:
    """The state of one run, fed line by line (``feed``)."""

    def __init__(self) -> None:
        self.planned: dict[str, int] = {}   # rule -> jobs to run (the Job stats table)
        self.total: int | None = None       # steps in the run (Job stats' total)
        self.done = 0
        self.percent = 0.0
        self.finished: Counter = Counter()  # rule -> jobs finished
        self.running: dict[str, dict] = {}  # jobid -> {"rule", "log", "wildcards"}
        self.failed: list[dict] = []        # {"rule", "jobid", "log", "wildcards"}
        self.errors: deque = deque(maxlen=20)  # other ERROR lines (workflow errors)
        self.nothing_to_do = False
        self.locked = False
        self.lock_message: list[str] = []
        self.complete_log: str | None = None
        self._block: dict | None = None     # the job/error block being read
        self._in_stats = False
        self._in_lock = False

    def feed(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if self._in_lock:
            self.lock_message.append(line)
            if "--unlock" in line or not line.strip():
                self._in_lock = False
            return
        if self._in_stats and self._stats_line(line):
            return
        m = _FIELD.match(line)
        if m and self._block is not None:
            self._field(m.group(1), m.group(2).strip())
            return
        self._block = None
        if line.startswith("Job stats:"):
            self._in_stats, self.planned, self.total = True, {}, None
        elif (m := _STEPS.match(line)):
            self.done, self.total, self.percent = int(m.group(1)), int(m.group(2)), float(m.group(3))
        elif (m := _JOB.match(line)):
            self._block = {"kind": "job", "rule": m.group(1), "log": None, "wildcards": ""}
        elif (m := _ERROR.match(line)):
            self._block = {"kind": "error", "rule": m.group(1), "log": None, "wildcards": "", "jobid": None}
            self.failed.append(self._block)
        elif (m := _FINISHED.match(line)):
            jobid = m.group(1) or m.group(3)
            job = self.running.pop(jobid, None)
            self.finished[m.group(2) or (job or {}).get("rule", "?")] += 1
        elif line.startswith("Nothing to be done"):
            self.nothing_to_do = True
        elif LOCK_MESSAGE in line:
            self.locked, self._in_lock = True, True
            self.lock_message = [line.strip()]
        elif line.startswith("Complete log"):
            self.complete_log = line.split(": ", 1)[1].strip()
        elif re.match(r"^(\w*Error|\w*Exception)\b|ERROR|piper-voice-workflow: ", line):
            self.errors.append(line.strip())

    def _stats_line(self, line: str) -> bool:
        text = line.strip()
        if not text:
            self._in_stats = False
            return bool(self.planned)  # the blank line after the table
        if text.startswith("job") or set(text) <= {"-", " "}:
            return True
        m = _STAT.match(text)
        if not m:
            self._in_stats = False
            return False
        if m.group(1) == "total":
            self.total = int(m.group(2))
        else:
            self.planned[m.group(1)] = int(m.group(2))
        return True

    def _field(self, key: str, value: str) -> None:
        block = self._block
        if key == "jobid":
            block["jobid"] = value
            if block["kind"] == "job":
                self.running[value] = block
            else:
                self.running.pop(value, None)
        elif key == "log":
            block["log"] = value.split(" (check log", 1)[0].split(", ")[0].strip() or None
        elif key == "wildcards":
            block["wildcards"] = value

    def snapshot(self, workdir: str | Path | None = None) -> dict:
        """JSON-ready state; with ``workdir``, each running job's latest ETA line and each
        failed job's last log lines (read from the job's log file)."""
        def job(b, tail):
            out = {"rule": b["rule"], "jobid": b.get("jobid"), "wildcards": b["wildcards"], "log": b["log"]}
            if workdir is not None and b["log"]:
                path = Path(workdir) / b["log"]
                out["eta"] = eta_line(path) if not tail else None
                out["log_lines"] = log_tail(path, 40) if tail else []
            return out

        # copies first: the reader thread adds and removes jobs while job() reads their logs
        running, failed = list(self.running.values()), list(self.failed)
        return {
            "planned": dict(self.planned), "total": self.total, "done": self.done, "percent": self.percent,
            "finished": dict(self.finished),
            "running": [job(b, False) for b in running],
            "failed": [job(b, True) for b in failed],
            "errors": list(self.errors), "nothing_to_do": self.nothing_to_do,
            "locked": self.locked, "lock_message": "\n".join(x for x in self.lock_message if x.strip()),
            "complete_log": self.complete_log,
        }


def log_tail(path: str | Path, n: int = 40, max_bytes: int = 64_000) -> list[str]:
    """The last ``n`` lines of a text file ([] when it is missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:]


def eta_line(path: str | Path) -> str | None:
    """The job log's latest progress line (``label: 42.0% (…) elapsed 3s ETA 5s``), if any."""
    for line in reversed(log_tail(path, 20, 8000)):
        if "ETA" in line and _ETA.search(line):
            return line.split(" INFO ", 1)[-1].strip()
    return None
