"""Runs a job as a child process under GNU time: wall seconds, peak RSS, and its outcome."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass
class Job:
    """One timed command: who runs it (ocistore or a peer), what, and how to reset before it."""

    group: str
    name: str
    tool: str  # "ocistore", a peer's name, or "limit"
    argv: list[str]
    prepare: Callable[[], None] = lambda: None
    needs: tuple[str, ...] = ()  # executables that must exist, else the job is "n/a"
    count_requests: bool = False
    note: str = ""
    cpu_elsewhere: str = ""  # a daemon doing the job's work (its CPU is not the job's)
    daemon_cpu: Callable[[], float] | None = None  # that daemon's CPU seconds so far

    @property
    def ours(self) -> bool:
        """True for ocistore's own jobs (whose failure fails the run)."""
        return self.tool == "ocistore"


@dataclass
class Sample:
    """One run of a job."""

    seconds: float
    peak_rss_mib: float
    requests: int | None = None
    cpu_s: float | None = None  # user + system CPU of the job's processes (GNU time)
    server_cpu_s: float | None = None  # the registry's CPU while the job ran
    daemon_cpu_s: float | None = None  # the job's daemon's CPU while the job ran (containerd)
    machine_cpu_s: float | None = None  # every CPU's busy seconds while the job ran


@dataclass
class Outcome:
    """Every run of one job, or why it could not run."""

    job: Job
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None


def missing_tools(job: Job) -> list[str]:
    """The executables ``job`` needs that this machine lacks."""
    return [tool for tool in job.needs if shutil.which(tool) is None]


def run_once(
    job: Job,
    request_counter: Callable[[], int] | None,
    server_cpu: Callable[[], float] | None = None,
) -> Sample:
    """Runs ``job`` once; raises ``RuntimeError`` with its output's tail if it fails."""
    job.prepare()
    subprocess.run(["sync"], check=True)
    before = request_counter() if request_counter and job.count_requests else None
    # CPU seconds spent elsewhere while the job runs: the registry's, its daemon's, the machine's.
    readers = {"server": server_cpu, "daemon": job.daemon_cpu, "machine": machine_busy_seconds}
    counters = {name: read for name, read in readers.items() if read is not None}
    started = {name: read() for name, read in counters.items()}
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        done = subprocess.run(
            [GNU_TIME, "-f", "%M %U %S", "-o", report.name, *job.argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        seconds = time.perf_counter() - start
        spent = {name: read() - started[name] for name, read in counters.items()}
        lines = report.read().strip().splitlines()
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"exit {done.returncode}: {' | '.join(tail)}"[:300])
    requests = None
    if before is not None and request_counter is not None:
        requests = request_counter() - before
    rss_kib, user, system = lines[-1].split()
    return Sample(
        seconds,
        int(rss_kib) / 1024,
        requests,
        float(user) + float(system),
        spent.get("server"),
        spent.get("daemon"),
        spent.get("machine"),
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its waited-for children have used so far
    (``/proc/PID/stat``): containerd runs ``unpigz`` processes to decompress gzip layers."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """Seconds all CPUs together have spent busy since boot (``/proc/stat``: everything but
    idle and iowait): a job's delta counts its processes, the registry, daemons and the kernel
    threads writing its data back."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu "):
            ticks = [int(value) for value in line.split()[1:9]]
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError("no cpu line in /proc/stat")
