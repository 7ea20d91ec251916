"""Throughput and time by image size (matplotlib PNG): how the cost grows with the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (group, job) pairs drawn, with their styles: ocistore solid, peers dashed, limits dotted.
SERIES = [
    ("pull+unpack (gzip)", "ocistore pull --unpack"),
    ("pull+unpack (gzip)", "skopeo copy + umoci unpack"),
    ("pull+unpack (gzip)", "containerd 1.6 ctr pull"),
    ("pull+unpack (gzip)", "podman 4.3 pull (overlay)"),
    ("unpack (gzip)", "ocistore unpack"),
    ("unpack (gzip)", "GNU tar (per layer)"),
    ("unpack (gzip)", "Python tarfile"),
    ("unpack (gzip)", "umoci unpack"),
    ("unpack (gzip)", "gzip -dc > /dev/null"),
    ("unpack (zstd)", "ocistore unpack"),
    ("unpack (zstd)", "GNU tar (per layer)"),
    ("pull (gzip)", "ocistore pull"),
    ("pull (gzip)", "skopeo copy docker:// oci:"),
]


def plot(runs: list[dict[str, Any]], out: Path) -> None:
    """Draws time and throughput against image size for every series present in ``runs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(runs, key=lambda r: r["image"]["uncompressed"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    palette = matplotlib.colormaps["tab20"].colors
    for index, (group, job) in enumerate(SERIES):
        sizes, seconds, rates = [], [], []
        tool = ""
        for run in runs:
            for row in run["rows"]:
                if row["group"] == group and row["job"] == job and row.get("median_s"):
                    sizes.append(run["image"]["uncompressed"] / 1e6)
                    seconds.append(row["median_s"])
                    rates.append(row["mb_per_s"])
                    tool = row["tool"]
        if not sizes:
            continue
        style = "-" if tool == "ocistore" else (":" if tool == "limit" else "--")
        label = f"{group}: {job}"
        color = palette[(index * 2) % 20 + (index * 2) // 20]  # 11 distinct colours
        left.plot(sizes, seconds, style, marker="o", label=label, color=color)
        right.plot(sizes, rates, style, marker="o", label=label, color=color)
    left.set_xlabel("image size, MB uncompressed")
    left.set_ylabel("median wall time, s")
    left.set_title("Cost by image size")
    right.set_xlabel("image size, MB uncompressed")
    right.set_ylabel("MB/s (uncompressed image bytes / time)")
    right.set_title("Throughput by image size")
    for axes in (left, right):
        axes.grid(True, alpha=0.3)
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
