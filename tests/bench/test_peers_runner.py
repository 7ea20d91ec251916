"""benches/peers.py's runner and report: n/a for peers, failure only for ocistore, order."""

from __future__ import annotations

from pathlib import Path

from peerbench import report
from peerbench.image import ImageInfo
from peerbench.measure import Job
from peerbench.runner import run_rounds

INFO = ImageInfo(
    size_mb=1,
    uncompressed=1_000_000,
    compressed={"gzip": 500_000, "zstd": 400_000},
    layers=5,
    manifest_digests={},
)


def test_failing_or_missing_peer_is_na_and_never_retried(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.write_text("")

    def count() -> None:
        calls.write_text(calls.read_text() + "x")

    jobs = [
        Job("g", "ours", "ocistore", ["true"]),
        Job("g", "broken peer", "peer", ["sh", "-c", "echo boom >&2; exit 3"], prepare=count),
        Job("g", "absent peer", "peer", ["true"], needs=("no-such-tool-ocistore-bench",)),
        Job("g", "working peer", "peer", ["true"]),
        Job("g", "a limit", "limit", ["true"]),
    ]
    outcomes = run_rounds(jobs, rounds=3)
    by_name = {o.job.name: o for o in outcomes}
    assert len(by_name["ours"].samples) == 3
    assert by_name["broken peer"].samples == []
    assert by_name["broken peer"].error is not None
    assert "exit 3" in by_name["broken peer"].error and "boom" in by_name["broken peer"].error
    assert calls.read_text() == "x"  # failed once, then left out
    assert by_name["absent peer"].error == "not installed: no-such-tool-ocistore-bench"
    results = report.summarize(outcomes, INFO, {"openssl": None, "ocistore": 900.0})
    results["rounds"] = 3
    rows = {row["job"]: row for row in results["rows"]}
    assert rows["working peer"]["speedup"] > 0
    assert rows["a limit"]["limit_fraction"] > 0
    assert "speedup" not in rows["broken peer"]
    assert report.ocistore_failures(results) == []
    text = report.table(results)
    assert "| g | broken peer | n/a |" in text
    assert "n/a: not installed: no-such-tool-ocistore-bench" in text
    assert "900 vs n/a" in text  # no openssl figure: no fraction, no failure
    assert results["sha256_mbps"]["limit_fraction"] is None


def test_failure_of_ocistore_itself_is_reported(tmp_path: Path) -> None:
    jobs = [
        Job("g", "ours", "ocistore", ["false"]),
        Job("g", "peer", "peer", ["true"]),
    ]
    results = report.summarize(run_rounds(jobs, rounds=2), INFO, {})
    failures = report.ocistore_failures(results)
    assert len(failures) == 1 and failures[0].startswith("g / ours: exit 1")
    assert "n/a (ocistore failed)" in report.table(results)


def test_rounds_alternate_the_order_within_a_group(tmp_path: Path) -> None:
    order: list[str] = []
    jobs = [
        Job(group, name, "peer", ["true"], prepare=lambda n=f"{group}{name}": order.append(n))
        for group in ("A", "B")
        for name in ("1", "2", "3")
    ]
    run_rounds(jobs, rounds=2)
    assert order == ["A1", "A2", "A3", "B1", "B2", "B3", "A3", "A2", "A1", "B3", "B2", "B1"]


def test_peak_rss_and_requests_are_measured(tmp_path: Path) -> None:
    counter = iter(range(0, 100, 7))
    jobs = [
        Job(
            "g",
            "allocates",
            "ocistore",
            ["python3", "-c", "b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096])"],
            count_requests=True,
        )
    ]
    (outcome,) = run_rounds(jobs, rounds=1, request_counter=lambda: next(counter))
    (sample,) = outcome.samples
    assert sample.peak_rss_mib >= 64  # GNU time's figure for the child, not this process
    assert sample.requests == 7


def test_cpu_of_the_job_and_of_the_registry_are_counted() -> None:
    import subprocess
    import sys

    from peerbench.measure import process_cpu_seconds

    burn = [
        sys.executable,
        "-c",
        "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass",
    ]
    # Stand-ins for the registry and for a daemon doing a client's work: processes spinning
    # while the jobs run.
    server = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    daemon = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        jobs = [
            Job("g", "ours", "ocistore", burn),
            Job("g", "idle", "peer", ["sleep", "0.3"]),
            Job("g", "daemon's client", "peer", ["true"], cpu_elsewhere="containerd"),
            Job(
                "g",
                "daemon's client, daemon read",
                "peer",
                ["sleep", "0.3"],
                cpu_elsewhere="containerd",
                daemon_cpu=lambda: process_cpu_seconds(daemon.pid),
            ),
        ]
        outcomes = run_rounds(jobs, 1, server_cpu=lambda: process_cpu_seconds(server.pid))
    finally:
        for spinner in (server, daemon):
            spinner.kill()
            spinner.wait()
    results = report.summarize(outcomes, INFO, {})
    rows = {row["job"]: row for row in results["rows"]}
    assert rows["ours"]["cpu_s"] >= 0.25
    # The whole machine was busy at least with the job itself.
    assert rows["ours"]["machine_cpu_s"] >= rows["ours"]["cpu_s"] - 0.02
    assert rows["idle"]["cpu_s"] < 0.1
    # The spinning "registry" ran on a core throughout the sleeping job.
    assert rows["idle"]["server_cpu_s"] >= 0.1
    assert rows["daemon's client"]["cpu_s"] is None
    # The daemon's CPU while its client ran is counted as the client's.
    read = rows["daemon's client, daemon read"]
    assert read["daemon_cpu_s"] >= 0.1
    assert read["cpu_s"] >= read["daemon_cpu_s"]
    text = report.table(results)
    assert "| in containerd |" in text
    assert f"(containerd {read['daemon_cpu_s']:.2f} of it) |" in text
    assert f"| {rows['ours']['cpu_s']:.2f} + {rows['ours']['server_cpu_s']:.2f} |" in text


def test_floor_table_spreads_the_cpu_over_two_cores_after_the_start_up() -> None:
    from peerbench.measure import Outcome, Sample

    group = "pull+unpack (gzip)"

    def outcome(name: str, tool: str, seconds: float, cpu: float, **extra: float) -> Outcome:
        daemon = "containerd" if "daemon_cpu_s" in extra else ""
        job = Job(group, name, tool, ["true"], cpu_elsewhere=daemon)
        return Outcome(job, [Sample(seconds, 10.0, None, cpu, **extra)])

    outcomes = [
        outcome(report.OURS_PULL_UNPACK, "ocistore", 0.60, 0.90, server_cpu_s=0.10),
        outcome("containerd 1.6 ctr pull", "containerd", 2.40, 0.05, daemon_cpu_s=1.0),
        outcome("podman 4.3 pull (overlay)", "podman", 2.00, 3.0),
        outcome(report.PULL_STARTUP, "limit", 0.06, 0.05),
    ]
    run = report.summarize(outcomes, INFO, {})
    run["rounds"] = 1
    (line,) = [row for row in report.floor_table([run]).splitlines() if row.startswith("| 1 |")]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    # start-up 0.06 on one core, then (0.90 + 0.10 - 0.06) / 2 = 0.47 on two: 0.53.
    assert cells[-3:] == ["0.53", "0.50", "1.06"]  # floor, faster peer / 4, their ratio
    # containerd's CPU is its client's and its daemon's.
    assert cells[6] == "0.90 / 1.05 / 3.00"
    assert cells[5] == "4.00x, 3.33x"
    # Where the machine's busy CPU was read, it is what the floor spreads: (1.20 - 0.06) / 2.
    ours = next(row for row in run["rows"] if row["job"] == report.OURS_PULL_UNPACK)
    ours["machine_cpu_s"] = 1.20
    (line,) = [row for row in report.floor_table([run]).splitlines() if row.startswith("| 1 |")]
    assert [cell.strip() for cell in line.strip("|").split("|")][-5:] == [
        "1.20",
        "0.06",
        "0.63",
        "0.50",
        "1.26",
    ]


def test_a_daemons_cpu_includes_the_children_it_ran() -> None:
    import subprocess
    import sys
    import time

    from peerbench.measure import process_cpu_seconds

    # Like containerd running unpigz: the work is in a child, waited for, then the daemon idles.
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {burn!r}])\n"
            "print('done', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline() == b"done\n"
        time.sleep(0.05)
        assert process_cpu_seconds(daemon.pid) >= 0.35
    finally:
        daemon.kill()
        daemon.communicate()
