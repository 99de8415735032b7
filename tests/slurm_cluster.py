"""A throw-away one-node Slurm cluster on localhost, for tests.

Usable three ways:

* as a pytest fixture module: ``from tests.slurm_cluster import slurm_cluster`` (or
  ``pytest_plugins = ["tests.slurm_cluster"]``) gives a module-scoped ``slurm_cluster``
  fixture that starts the daemons, yields a :class:`SlurmCluster` and stops them again;
* as a library: ``SlurmCluster().start()`` / ``.stop()``, and
  :func:`run_snakemake_on_slurm` to run Snakemake with the SLURM executor plugin;
* as a CLI: ``python tests/slurm_cluster.py start|stop|status`` (state lives in
  ``$PVW_SLURM_DIR``, default ``/tmp/pvw-slurm``; ``start`` prints the ``export SLURM_CONF=... PATH=...``
  line that client commands such as ``sinfo``/``sbatch`` need).

It installs nothing. It needs Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and
``munge`` (``.ci/install_slurm.sh``) and root (``SlurmUser=root``). It works without systemd
(e.g. in a container): ``munged``, ``slurmctld`` and ``slurmd`` are started directly, each with
its own pid file under the state directory, and ``stop`` signals exactly those pids.

Everything the cluster writes (munge key/socket, slurm.conf, state/spool dirs, logs) lives in
the state directory. There is no accounting (no slurmdbd): ``sacct`` does not work, so the
executor plugin must poll with ``squeue`` (``--slurm-status-command squeue``; with a low
``--slurm-init-seconds-before-status-checks`` that needs ``MinJobAge`` >= 3x that value, which
the default 300 s here satisfies).

One wrinkle: inside a job the jobstep plugin runs ``srun`` with every ``SLURM_*`` variable
removed from the environment, so ``srun`` cannot see ``SLURM_CONF`` and looks for the
compiled-in default ``/etc/slurm/slurm.conf``, which a test machine does not have. The cluster
therefore puts a two-line ``srun`` in ``<state dir>/bin`` first on the ``PATH`` of
:meth:`SlurmCluster.env` (jobs inherit the submitting ``PATH``): it sets ``SLURM_CONF`` and
runs the real ``srun``. Nothing outside the state directory is written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = Path(os.environ.get("PVW_SLURM_DIR", "/tmp/pvw-slurm"))
REQUIRED_BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scontrol",
    "srun",
)
INSTALL_HINT = "run `bash .ci/install_slurm.sh` (apt-get install -y slurmctld slurmd slurm-client munge)"

# "Submitted job 3 with external jobid '12'." (Snakemake's executor log line)
_SUBMITTED_RE = re.compile(r"with external jobid '(\d+)'")
# plugin debug/info variants, e.g. "Job 0 has been submitted with SLURM jobid 12 (log: ...)."
_SLURM_JOBID_RE = re.compile(r"SLURM jobid (\d+)")


class SlurmUnavailable(RuntimeError):
    """The machine cannot run the test cluster (missing packages, not root, ...)."""


def _which(name: str) -> str | None:
    """Find a binary on PATH or in the sbin dirs (daemons live in /usr/sbin)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def missing_requirements() -> list[str]:
    """Reasons why a cluster cannot be started here (empty list: it can)."""
    reasons = [f"`{b}` not found" for b in REQUIRED_BINARIES if _which(b) is None]
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        reasons.append("must run as root (SlurmUser=root)")
    if reasons:
        reasons.append(INSTALL_HINT)
    return reasons


def _node_hardware() -> tuple[str, dict[str, int]]:
    """Node name (short hostname) and hardware fields as slurmd itself detects them."""
    name = socket.gethostname().split(".")[0]
    hw: dict[str, int] = {}
    try:
        out = subprocess.run(
            [_which("slurmd") or "slurmd", "-C"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        for key, value in re.findall(
            r"(\w+)=(\d+)", out.splitlines()[0] if out else ""
        ):
            hw[key] = int(value)
    except (OSError, subprocess.SubprocessError):
        pass
    if "CPUs" not in hw:
        hw = {"CPUs": os.cpu_count() or 1}
    if "RealMemory" not in hw:
        with open("/proc/meminfo") as fh:
            kb = int(
                next(line for line in fh if line.startswith("MemTotal")).split()[1]
            )
        hw["RealMemory"] = kb // 1024
    # Leave slack: slurmd drains a node whose memory is below the configured RealMemory.
    hw["RealMemory"] = max(256, int(hw["RealMemory"] * 0.9))
    hw.pop("Boards", None)
    return name, hw


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _is_daemon(pid: int, name: str) -> bool:
    """True if ``pid`` still runs ``name`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return os.path.basename(cmdline) == name


@dataclass
class SlurmCluster:
    """One-node Slurm (slurmctld + slurmd + munged) rooted at ``state_dir``."""

    state_dir: Path = DEFAULT_STATE_DIR
    ctld_port: int = int(os.environ.get("PVW_SLURMCTLD_PORT", "6817"))
    slurmd_port: int = int(os.environ.get("PVW_SLURMD_PORT", "6818"))
    partition: str = "debug"
    pids: dict[str, int] = field(default_factory=dict)

    # -- paths ---------------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.state_dir / "slurm.conf"

    @property
    def bin_dir(self) -> Path:
        return self.state_dir / "bin"

    @property
    def munge_socket(self) -> Path:
        return self.state_dir / "munge" / "munge.socket"

    @property
    def ctld_log(self) -> Path:
        return self.state_dir / "log" / "slurmctld.log"

    @property
    def slurmd_log(self) -> Path:
        return self.state_dir / "log" / "slurmd.log"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for Slurm client commands: ``SLURM_CONF`` set, the ``srun`` shim first on ``PATH``."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        return env

    # -- configuration -------------------------------------------------------------------
    def write_config(self) -> None:
        node, hw = _node_hardware()
        hw_fields = " ".join(f"{k}={v}" for k, v in hw.items())
        d = self.state_dir
        conf = f"""\
# Written by tests/slurm_cluster.py: a one-node test cluster on localhost.
ClusterName=pvwtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/slurmd-%n
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmdPidFile={d}/run/slurmd-%n.pid
SlurmctldLogFile={self.ctld_log}
SlurmdLogFile={self.slurmd_log}
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# No accounting daemon: sacct cannot work, squeue keeps finished jobs for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0
SlurmctldTimeout=60
SlurmdTimeout=60
NodeName={node} NodeAddr=127.0.0.1 {hw_fields} State=UNKNOWN
PartitionName={self.partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
        self.conf.write_text(conf)

    # -- lifecycle -------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        for sub in ("munge", "state", "spool", "run", "log"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        os.chmod(self.state_dir / "munge", 0o700)

    def _start_munged(self) -> None:
        m = self.state_dir / "munge"
        key = m / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        pidfile = m / "munged.pid"
        cmd = [
            _which("munged") or "munged",
            "--force",
            f"--key-file={key}",
            f"--socket={self.munge_socket}",
            f"--pid-file={pidfile}",
            f"--log-file={m / 'munged.log'}",
            f"--seed-file={m / 'munged.seed'}",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise RuntimeError(f"munged failed to start: {res.stderr.strip()}")
        self.pids["munged"] = self._read_pidfile(pidfile, "munged")

    def _start_daemon(self, name: str, args: list[str], pidfile: Path) -> None:
        """Start a Slurm daemon daemonized (no -D) and record the pid from its pid file."""
        res = subprocess.run(
            [_which(name) or name, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"{name} failed to start (rc {res.returncode}): {res.stderr.strip()}\n{self._tail_logs()}"
            )
        self.pids[name] = self._read_pidfile(pidfile, name)

    @staticmethod
    def _read_pidfile(pidfile: Path, name: str, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = pidfile.read_text().strip()
                if text:
                    return int(text)
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name}: no pid file {pidfile} after {timeout:.0f} s")

    def _write_srun_shim(self) -> None:
        """An ``srun`` that finds this cluster's slurm.conf without ``SLURM_*`` variables."""
        real = _which("srun")
        if real is None:
            raise SlurmUnavailable("`srun` not found")
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        shim = self.bin_dir / "srun"
        shim.write_text(
            "#!/bin/sh\n"
            f"SLURM_CONF={shlex.quote(str(self.conf))} exec {shlex.quote(real)} \"$@\"\n"
        )
        shim.chmod(0o755)

    def start(self, timeout: float = 90.0) -> "SlurmCluster":
        reasons = missing_requirements()
        if reasons:
            raise SlurmUnavailable("; ".join(reasons))
        if self.state_file.exists():
            old = SlurmCluster.load(self.state_dir)
            if old and old.running():
                raise RuntimeError(
                    f"a test cluster is already running from {self.state_dir}; stop it first"
                )
            if old:
                old.stop()
        self._prepare_dirs()
        self.write_config()
        self._write_srun_shim()
        try:
            self._start_munged()
            self._save()
            self._start_daemon(
                "slurmctld", ["-i"], self.state_dir / "run" / "slurmctld.pid"
            )
            self._save()
            node, _ = _node_hardware()
            self._start_daemon(
                "slurmd", ["-N", node], self.state_dir / "run" / f"slurmd-{node}.pid"
            )
            self._save()
            self.wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_idle(self, timeout: float = 90.0) -> None:
        """Wait until sinfo shows the node idle (resuming it if it came up drained/down)."""
        node, _ = _node_hardware()
        deadline = time.monotonic() + timeout
        state = ""
        resumed = False
        while time.monotonic() < deadline:
            res = subprocess.run(
                ["sinfo", "-h", "-N", "-n", node, "-o", "%T"],
                capture_output=True,
                text=True,
                env=self.env(),
                timeout=30,
            )
            state = res.stdout.strip()
            if state.rstrip("*") == "idle":
                return
            if not resumed and any(s in state for s in ("drain", "down")):
                subprocess.run(
                    ["scontrol", "update", f"NodeName={node}", "State=RESUME"],
                    capture_output=True,
                    env=self.env(),
                    timeout=30,
                )
                resumed = True
            for name, pid in self.pids.items():
                if not _pid_alive(pid):
                    raise RuntimeError(f"{name} (pid {pid}) died\n{self._tail_logs()}")
            time.sleep(0.5)
        raise RuntimeError(
            f"node {node} not idle after {timeout:.0f} s (state {state!r})\n{self._tail_logs()}"
        )

    def running(self) -> bool:
        return bool(self.pids) and all(_pid_alive(p) for p in self.pids.values())

    def _queued_job_ids(self) -> list[str]:
        """Ids of jobs still pending or running on this cluster."""
        return subprocess.run(
            ["squeue", "-h", "-o", "%i"],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=30,
        ).stdout.split()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop exactly the daemons this cluster started (by pid), then delete its state."""
        if self.pids.get("slurmctld") and _pid_alive(self.pids["slurmctld"]):
            # Cancel jobs still queued/running on *this* cluster so no job step outlives slurmd.
            try:
                ids = self._queued_job_ids()
                if ids:
                    subprocess.run(
                        ["scancel", *ids],
                        capture_output=True,
                        env=self.env(),
                        timeout=30,
                    )
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline and self._queued_job_ids():
                        time.sleep(0.5)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.get(name)
            if pid is None or not _is_daemon(pid, name):
                continue  # gone, or the pid was reused by an unrelated process
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.pids.clear()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- persistence (for the CLI) ----------------------------------------------------------
    def _save(self) -> None:
        self.state_file.write_text(
            json.dumps(
                {
                    "pids": self.pids,
                    "ctld_port": self.ctld_port,
                    "slurmd_port": self.slurmd_port,
                }
            )
        )

    @classmethod
    def load(cls, state_dir: Path = DEFAULT_STATE_DIR) -> "SlurmCluster | None":
        try:
            data = json.loads((Path(state_dir) / "cluster.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            state_dir=Path(state_dir),
            ctld_port=data["ctld_port"],
            slurmd_port=data["slurmd_port"],
            pids={k: int(v) for k, v in data["pids"].items()},
        )

    # -- diagnostics ------------------------------------------------------------------------
    def _tail_logs(self, lines: int = 15) -> str:
        out = []
        for log in (
            self.ctld_log,
            self.slurmd_log,
            self.state_dir / "munge" / "munged.log",
        ):
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def submitted_job_ids(self) -> list[str]:
        """Job ids slurmctld accepted through sbatch (from its log)."""
        if not self.ctld_log.exists():
            return []
        text = self.ctld_log.read_text(errors="replace")
        return re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text)

    def job_states(self) -> dict[str, str]:
        """JobId -> state for every job slurmctld still remembers (MinJobAge)."""
        res = subprocess.run(
            ["squeue", "--states=all", "-h", "-o", "%i|%T|%j"],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=30,
        )
        return {
            line.split("|")[0]: line.split("|")[1]
            for line in res.stdout.splitlines()
            if "|" in line
        }

    def sbatch_wrap(self, command: str, timeout: float = 60.0) -> tuple[str, str]:
        """Submit ``sbatch --wrap command``; wait for it; return (job id, final state)."""
        out_file = self.state_dir / "log" / "wrap-%j.out"
        res = subprocess.run(
            ["sbatch", "--parsable", "-o", str(out_file), "--wrap", command],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=30,
            check=True,
        )
        job_id = res.stdout.strip().split(";")[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.job_states().get(job_id, "")
            if state in (
                "COMPLETED",
                "FAILED",
                "CANCELLED",
                "TIMEOUT",
                "NODE_FAIL",
                "OUT_OF_MEMORY",
            ):
                return job_id, state
            time.sleep(0.5)
        return job_id, "TIMEOUT_WAITING"


# -- Snakemake -------------------------------------------------------------------------------
def snakemake_venv() -> Path:
    """The runner venv (envs/snakemake.yaml) as built by envs/setup_venvs.py."""
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "envs" / "setup_venvs.py"),
            "--print-path",
            "snakemake",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out.splitlines()[-1])


def snakemake_binary() -> Path:
    exe = snakemake_venv() / "bin" / "snakemake"
    if not exe.exists():
        raise FileNotFoundError(
            f"{exe} missing: run `python3 envs/setup_venvs.py snakemake`"
        )
    return exe


# Options every test run on the throw-away cluster needs; a profile may set them too (the
# command line wins). squeue: there is no accounting daemon, so sacct cannot report states.
SLURM_TEST_ARGS = [
    "--executor",
    "slurm",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-keep-successful-logs",
]


def parse_slurm_job_ids(log: str) -> list[str]:
    ids = _SUBMITTED_RE.findall(log) or _SLURM_JOBID_RE.findall(log)
    return list(dict.fromkeys(ids))


def run_snakemake_on_slurm(
    workdir,
    args,
    *,
    cluster: SlurmCluster | None = None,
    executor_args: bool = True,
    timeout: float = 1800.0,
    env: dict[str, str] | None = None,
):
    """Run the venv's ``snakemake`` in ``workdir`` with the SLURM executor plugin.

    ``cluster`` defaults to the one ``python tests/slurm_cluster.py start`` left running, else the
    machine's own Slurm. ``args`` are extra command-line arguments (e.g. ``["--profile", "profiles/slurm", "-s", ...]``);
    unless ``executor_args`` is False, :data:`SLURM_TEST_ARGS` are appended after them so they
    override a profile. The venv's ``bin`` goes first on ``PATH`` (sbatch exports the
    submitting environment, and the job re-runs ``snakemake`` from that ``PATH``).

    Returns ``(returncode, stdout+stderr, slurm_job_ids)``; the ids come from Snakemake's
    "external jobid" log lines.
    """
    if cluster is None:
        cluster = (
            SlurmCluster.load()
        )  # one started with `python tests/slurm_cluster.py start`
        if cluster is not None and not cluster.running():
            cluster = None
    exe = snakemake_binary()
    # Without a test cluster, use the machine's own Slurm configuration (a real cluster).
    run_env = (
        cluster.env(env)
        if cluster is not None
        else dict(os.environ if env is None else env)
    )
    run_env["PATH"] = f"{exe.parent}{os.pathsep}{run_env.get('PATH', '/usr/bin:/bin')}"
    run_env.pop("SLURM_JOB_ID", None)
    cmd = [str(exe), *map(str, args), *(SLURM_TEST_ARGS if executor_args else [])]
    try:
        res = subprocess.run(
            cmd,
            cwd=str(workdir),
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        rc, log = res.returncode, res.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        rc, log = (
            124,
            (out.decode(errors="replace") if isinstance(out, bytes) else out)
            + "\n[timed out]",
        )
    if rc != 0:
        log += slurm_job_logs(Path(workdir))
    return rc, log, parse_slurm_job_ids(log)


def slurm_job_logs(workdir: Path, tail: int = 1500) -> str:
    """The end of each SLURM job log the plugin wrote, so a failed run says why its jobs failed."""
    parts = []
    for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")):
        text = path.read_text(errors="replace")
        parts.append(f"\n== {path.relative_to(workdir)} (last {tail} chars)\n{text[-tail:]}")
    return "".join(parts)


# -- pytest ------------------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # the CLI works without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="module")
    def slurm_cluster():
        """Module-scoped running cluster; skips the module when Slurm is not installed."""
        reasons = missing_requirements()
        if reasons:
            pytest.skip("Slurm test cluster unavailable: " + "; ".join(reasons))
        running = SlurmCluster.load()
        if running is not None and running.running():
            # Started with `python tests/slurm_cluster.py start`: use it, leave it running.
            yield running
            return
        state_dir = Path(tempfile.mkdtemp(prefix="pvw-slurm-"))
        cluster = SlurmCluster(state_dir=state_dir)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


# -- CLI -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in ("start", "stop", "status"):
        print(
            "usage: python tests/slurm_cluster.py start|stop|status   (state dir: $PVW_SLURM_DIR, "
            f"default {DEFAULT_STATE_DIR})",
            file=sys.stderr,
        )
        return 2
    cmd = argv[0]
    if cmd == "start":
        reasons = missing_requirements()
        if reasons:
            print("cannot start: " + "; ".join(reasons), file=sys.stderr)
            return 1
        t0 = time.monotonic()
        cluster = SlurmCluster().start()
        print(f"started in {time.monotonic() - t0:.1f} s: pids {cluster.pids}")
        print(f"export SLURM_CONF={cluster.conf} PATH={cluster.bin_dir}:$PATH")
        return 0
    cluster = SlurmCluster.load()
    if cluster is None:
        print(f"no test cluster recorded in {DEFAULT_STATE_DIR}")
        return 0 if cmd == "stop" else 1
    if cmd == "stop":
        cluster.stop()
        print("stopped")
        return 0
    alive = {n: _pid_alive(p) for n, p in cluster.pids.items()}
    print(
        "daemons: "
        + ", ".join(
            f"{n} pid {cluster.pids[n]} {'up' if a else 'DEAD'}"
            for n, a in alive.items()
        )
    )
    res = subprocess.run(["sinfo"], capture_output=True, text=True, env=cluster.env())
    print(res.stdout + res.stderr, end="")
    print(f"export SLURM_CONF={cluster.conf} PATH={cluster.bin_dir}:$PATH")
    return 0 if all(alive.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
