"""Medians, ratios and the machine, as a console table, JSON and Markdown."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peerbench.image import ImageInfo
from peerbench.jobs import OURS_PULL_UNPACK, PULL_STARTUP
from peerbench.measure import Job, Outcome, Sample


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "absent"
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def machine(filesystem: str) -> dict[str, str]:
    """The machine and tools the numbers were measured with, on ``filesystem`` (described)."""
    cpu = "unknown"
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} CPUs, SHA-NI {'yes' if ' sha_ni' in flags else 'no'}",
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "filesystem": filesystem,
        "load at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "ocistore": _package("ocistore"),
        "skopeo": _version(["skopeo", "--version"]),
        "umoci": _version(["umoci", "--version"]),
        "registry": _version(["docker-registry", "--version"]),
        "GNU tar": _version(["tar", "--version"]),
        "python-dxf": _package("python-dxf"),
        "oras-py": _package("oras"),
        "openssl": _version(["openssl", "version"]),
    }


def summarize(
    outcomes: list[Outcome], info: ImageInfo, sha256: dict[str, float | None]
) -> dict[str, Any]:
    """The results as plain data: per job the samples, medians and its ratio to ocistore."""
    rows: list[dict[str, Any]] = []
    ours: dict[str, float] = {}
    for outcome in outcomes:
        if outcome.job.ours and outcome.samples:
            ours[outcome.job.group] = statistics.median(s.seconds for s in outcome.samples)
    for outcome in outcomes:
        job = outcome.job
        row: dict[str, Any] = {
            "group": job.group,
            "job": job.name,
            "tool": job.tool,
            "note": job.note,
            "error": outcome.error,
            "seconds": [round(s.seconds, 4) for s in outcome.samples],
        }
        if outcome.samples:
            median = statistics.median(s.seconds for s in outcome.samples)
            requests = [s.requests for s in outcome.samples if s.requests is not None]
            cpu, daemon = _job_cpu(job, outcome.samples)
            server = [s.server_cpu_s for s in outcome.samples if s.server_cpu_s is not None]
            machine = [s.machine_cpu_s for s in outcome.samples if s.machine_cpu_s is not None]
            row |= {
                "median_s": median,
                "min_s": min(s.seconds for s in outcome.samples),
                "peak_rss_mib": max(s.peak_rss_mib for s in outcome.samples),
                "requests": statistics.median(requests) if requests else None,
                "mb_per_s": info.uncompressed / 1e6 / median,
                "cpu_s": statistics.median(cpu) if cpu else None,
                "cpu_elsewhere": job.cpu_elsewhere,
                "daemon_cpu_s": statistics.median(daemon) if daemon else None,
                "machine_cpu_s": statistics.median(machine) if machine else None,
                "server_cpu_s": statistics.median(server) if server else None,
            }
            base = ours.get(job.group)
            if base and not job.ours:
                # peers: how many times faster ocistore is; limits: the fraction reached
                key = "limit_fraction" if job.tool == "limit" else "speedup"
                row[key] = median / base
        rows.append(row)
    openssl, mine = sha256.get("openssl"), sha256.get("ocistore")
    return {
        "image": asdict(info),
        "rows": rows,
        "sha256_mbps": {
            "openssl": openssl,
            "ocistore": mine,
            "limit_fraction": (mine / openssl) if openssl and mine else None,
        },
    }


def ocistore_failures(results: dict[str, Any]) -> list[str]:
    """ocistore's own jobs that failed (a peer failing is only "n/a")."""
    return [
        f"{row['group']} / {row['job']}: {row['error']}"
        for row in results["rows"]
        if row["tool"] == "ocistore" and row["error"]
    ]


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _reason(row: dict[str, Any]) -> str:
    reason = str(row["error"] or "did not run").replace("|", "/").replace("\n", " ")
    return reason if len(reason) <= 90 else "..." + reason[-87:]


def _ratio(row: dict[str, Any]) -> str:
    if "speedup" in row:
        return f"{row['speedup']:.2f}x"
    if "limit_fraction" in row:
        return f"limit: ocistore at {row['limit_fraction']:.0%}"
    return "(ocistore)" if row["tool"] == "ocistore" else "n/a (ocistore failed)"


def _job_cpu(job: Job, samples: list[Sample]) -> tuple[list[float], list[float]]:
    """Per run, the job's CPU seconds, its daemon's included (and the daemon's alone): a job
    whose work a daemon does has no CPU figure unless the daemon's was read every run."""
    cpu = [s.cpu_s for s in samples if s.cpu_s is not None]
    if not job.cpu_elsewhere:
        return cpu, []
    daemon = [s.daemon_cpu_s for s in samples if s.daemon_cpu_s is not None]
    if len(daemon) != len(samples) or len(cpu) != len(samples):
        return [], []
    return [c + d for c, d in zip(cpu, daemon, strict=True)], daemon


def _cpu(row: dict[str, Any]) -> str:
    cpu, server, daemon = row.get("cpu_s"), row.get("server_cpu_s"), row.get("daemon_cpu_s")
    if cpu is None:
        return f"in {row['cpu_elsewhere']}" if row.get("cpu_elsewhere") else ""
    text = f"{cpu:.2f}" if server is None else f"{cpu:.2f} + {server:.2f}"
    if daemon is not None:
        text += f" ({row['cpu_elsewhere']} {daemon:.2f} of it)"
    return text


def table(results: dict[str, Any]) -> str:
    """A Markdown table of medians and ratios (readable as plain text too)."""
    caption = [f"Tools' output on: {results['filesystem']}", ""] if "filesystem" in results else []
    lines = [
        *caption,
        "| group | job | median s | min s | MB/s | peak RSS MiB | requests "
        "| CPU s: job + registry | ocistore speed-up (peer s / ocistore s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in results["rows"]:
        if row.get("median_s") is None:
            lines.append(f"| {row['group']} | {row['job']} | n/a | | | | | | n/a: {_reason(row)} |")
            continue
        requests = row.get("requests")
        # A re-pull moves no image bytes: a rate would mean nothing there.
        rate = "" if row["group"].startswith("re-pull") else f"{row['mb_per_s']:.0f}"
        lines.append(
            f"| {row['group']} | {row['job']} | {row['median_s']:.2f} | {row['min_s']:.2f} | "
            f"{rate} | {row['peak_rss_mib']:.0f} | "
            f"{'' if requests is None else f'{requests:.0f}'} | {_cpu(row)} | {_ratio(row)} |"
        )
    sha = results["sha256_mbps"]
    fraction = sha["limit_fraction"]
    if sha["ocistore"] is not None or sha["openssl"] is not None:
        lines.append(
            f"| sha256 | ocistore.Digester vs openssl speed -evp sha256 (1 MiB blocks, "
            "MB per CPU second) | | | "
            f"{_cell(sha['ocistore'], '.0f')} vs {_cell(sha['openssl'], '.0f')} | | | | "
            f"{'n/a' if fraction is None else f'limit: ocistore at {fraction:.0%}'} |"
        )
    warm = results.get("warm_in_process_ms")
    if warm:
        lines.append(
            f"| warm re-pull in one process | ensure_image(Always) vs one `curl -I` process, ms "
            f"| {warm['ocistore_ms']:.1f} vs {warm['curl_ms']:.1f} | | | | | | "
            f"{warm['curl_ms'] / warm['ocistore_ms']:.2f}x |"
        )
    return "\n".join(lines)


KEY_ROWS = [
    ("pull+unpack (gzip)", "containerd 1.6 ctr pull"),
    ("pull+unpack (gzip)", "podman 4.3 pull (overlay)"),
    ("pull+unpack (zstd)", "containerd 1.6 ctr pull"),
    ("pull+unpack (zstd)", "podman 4.3 pull (overlay)"),
    ("pull+unpack (gzip)", "skopeo copy + umoci unpack"),
    ("unpack (gzip)", "umoci unpack"),
    ("unpack (gzip)", "GNU tar (per layer)"),
    ("unpack (gzip)", "Python tarfile"),
    ("unpack (zstd)", "GNU tar (per layer)"),
    ("unpack (zstd)", "Python tarfile"),
    ("pull (gzip)", "skopeo copy docker:// oci:"),
    ("unpack (gzip)", "gzip -dc > /dev/null"),
]


def sizes_table(runs: list[dict[str, Any]]) -> str:
    """Key ratios by image size: how they move as the work grows."""
    header = " | ".join(f"{group}: {job}" for group, job in KEY_ROWS)
    lines = [
        f"| MB uncompressed | rounds | ocistore pull+unpack gzip, s | {header} |",
        "|---:|---:|---:|" + "---:|" * len(KEY_ROWS),
    ]
    for run in runs:
        rows = {(row["group"], row["job"]): row for row in run["rows"]}
        ours = rows.get(("pull+unpack (gzip)", OURS_PULL_UNPACK), {}).get("median_s")
        cells = []
        for key in KEY_ROWS:
            row = rows.get(key, {})
            value = row.get("speedup", row.get("limit_fraction"))
            cells.append("n/a" if value is None else f"{value:.2f}")
        lines.append(
            f"| {run['image']['uncompressed'] / 1e6:.0f} | {run['rounds']} | "
            f"{_cell(ours, '.2f')} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


#: The peers' pull + unpack rows the floor table compares (their job names start with these).
PEERS_FOR_TARGET = ("containerd", "podman")

#: How :func:`floor_table` computes its floor and target (printed above the table).
FLOOR_METHOD = (
    f'The floor counts Python\'s start-up (the "{PULL_STARTUP}" row) on one '
    "core, then the rest of the machine's busy CPU seconds during ocistore's run (its own, the "
    "registry's, the kernel threads' writing its data back; ocistore's and the registry's alone "
    "in runs that did not read it) spread over both: start-up + (CPU - start-up) / 2. The "
    "target is the faster peer's median / 4 (goal 4)."
)


def floor_table(runs: list[dict[str, Any]]) -> str:
    """Pull + unpack per size and compression: times, CPU and the least wall time 2 cores
    need, as :data:`FLOOR_METHOD` says."""
    lines = [
        "| MB | comp | ocistore median / min s | containerd median / min s | podman median / min s "
        "| speed-up vs containerd, podman | CPU s: ocistore / containerd (ctr + daemon) / podman "
        "| registry CPU s | machine busy CPU s | start-up s | floor s | 4x target s "
        "| floor / target |",
        "|---:|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for compression in ("gzip", "zstd"):
            group = f"pull+unpack ({compression})"
            rows = [row for row in run["rows"] if row["group"] == group]
            ours = next((r for r in rows if r["job"] == OURS_PULL_UNPACK), None)
            if ours is None or ours.get("median_s") is None:
                continue
            peers = [
                next((r for r in rows if r["job"].startswith(name)), {})
                for name in PEERS_FOR_TARGET
            ]
            start = next((r for r in rows if r["job"] == PULL_STARTUP), {}).get("median_s")
            cpu, server, machine = (
                ours.get("cpu_s"),
                ours.get("server_cpu_s"),
                ours.get("machine_cpu_s"),
            )
            spent = machine
            if spent is None and cpu is not None and server is not None:
                spent = cpu + server  # a run from before the machine's CPU was read
            floor = None if spent is None or start is None else start + (spent - start) / 2
            medians = [p["median_s"] for p in peers if p.get("median_s") is not None]
            target = min(medians) / 4 if medians else None
            times = [_times(row) for row in (ours, *peers)]
            speedups = ", ".join(_cell(p.get("speedup"), ".2f") + "x" for p in peers)
            cpus = " / ".join(_cell(row.get("cpu_s"), ".2f") for row in (ours, *peers))
            ratio = floor / target if floor is not None and target else None
            lines.append(
                f"| {run['image']['uncompressed'] / 1e6:.0f} | {compression} | "
                + " | ".join(times)
                + f" | {speedups} | {cpus} | {_cell(server, '.2f')} | {_cell(machine, '.2f')} | "
                f"{_cell(start, '.2f')} | "
                f"{_cell(floor, '.2f')} | {_cell(target, '.2f')} | {_cell(ratio, '.2f')} |"
            )
    return "\n".join(lines)


def _times(row: dict[str, Any]) -> str:
    if row.get("median_s") is None:
        return "n/a"
    return f"{row['median_s']:.2f} / {row['min_s']:.2f}"


def markdown(results: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """The whole report: image, machine, method, table (and by size, when several)."""
    image = results["image"]
    parts = [
        "# ocistore against its peers",
        "",
        f"Image: {image['layers']} layers of real files, {image['uncompressed'] / 1e6:.0f} MB "
        f"uncompressed, {image['compressed']['gzip'] / 1e6:.0f} MB gzip, "
        f"{image['compressed']['zstd'] / 1e6:.0f} MB zstd; {results['rounds']} rounds "
        "alternating the order within each group; medians. MB/s = uncompressed image bytes / "
        "median. Speed-up = peer median / ocistore median; limit fraction = limit median / "
        "ocistore median (above 100%: ocistore beats that one-core ceiling by using both cores).",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in results["machine"].items()],
        "",
        "## Results",
        "",
        table(results),
        "",
        f"Root filesystem check: {results.get('rootfs_check', 'not run')}.",
        "",
    ]
    if len(runs) > 1:
        parts += [
            "## By image size",
            "",
            "Speed-ups (peer s / ocistore s) and, for gzip -dc, the limit fraction, per size:",
            "",
            sizes_table(runs),
            "",
            "![time and throughput by image size](throughput.png)",
            "",
            "## Pull + unpack by size: CPU and the 2-core floor",
            "",
            FLOOR_METHOD,
            "",
            floor_table(runs),
            "",
        ]
    return "\n".join(parts)
