"""Commands that work on the local store: images, inspect, rm, gc, fsck, unpack, export, import."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ocistore.cli.app import cli, handle_errors, pass_state
from ocistore.cli.output import human_size
from ocistore.cli.state import State


@cli.command()
@pass_state
@handle_errors
def images(state: State) -> None:
    """List the images in the store.

    \b
    Examples:
      ocistore images
      ocistore --json images | jq '.[].digest'
    """
    records = state.store.images()
    if state.output.json:
        state.output.result(records)
        return
    rows = [
        (
            r.reference,
            r.digest.split(":", 1)[-1][:12],
            r.platform or "-",
            human_size(r.size),
            r.last_used.strftime("%Y-%m-%d %H:%M"),
            "pinned" if r.pinned else "",
        )
        for r in records
    ]
    state.output.table(["IMAGE", "ID", "PLATFORM", "SIZE", "LAST USED", ""], rows)


@cli.command()
@click.argument("image")
@pass_state
@handle_errors
def inspect(state: State, image: str) -> None:
    """Show an image's record, manifest, config, layers and (for an index) platforms.

    \b
    Examples:
      ocistore inspect nginx:1.27
      ocistore --json inspect 127.0.0.1:5000/app:v1
    """
    store = state.store
    record = store.image(image)
    manifest = json.loads(store.read_blob(record.digest))
    config = json.loads(store.read_blob(record.config_digest)) if record.config_digest else None
    platforms: list[dict[str, object]] = []
    if record.index_digest:
        index = json.loads(store.read_blob(record.index_digest))
        platforms = [
            {"digest": m.get("digest"), "platform": m.get("platform")}
            for m in index.get("manifests", [])
        ]
    document = {
        "record": record,
        "manifest": manifest,
        "config": config,
        "platforms": platforms,
    }
    if state.output.json:
        state.output.result(document)
        return
    out = state.output
    out.result(None, f"{record.reference}\n  digest:   {record.digest}")
    if record.index_digest:
        out.result(None, f"  index:    {record.index_digest}")
    out.result(None, f"  platform: {record.platform or '-'}\n  size:     {human_size(record.size)}")
    out.result(None, f"  config:   {manifest.get('config', {}).get('digest')}")
    for number, layer in enumerate(manifest.get("layers", []), 1):
        out.result(
            None,
            f"  layer {number}: {layer.get('digest')} {human_size(layer.get('size', 0))} "
            f"{layer.get('mediaType')}",
        )
    for entry in platforms:
        platform = entry["platform"] or {}
        assert isinstance(platform, dict)
        name = "/".join(
            str(p)
            for p in (platform.get("os"), platform.get("architecture"), platform.get("variant"))
            if p
        )
        out.result(None, f"  available: {name or 'unknown'} {entry['digest']}")


@cli.command()
@click.argument("image", nargs=-1, required=True)
@pass_state
@handle_errors
def rm(state: State, image: tuple[str, ...]) -> None:
    """Remove image names from the store (their blobs go at the next `gc`).

    \b
    Example:
      ocistore rm nginx:1.27 && ocistore gc
    """
    removed = []
    for name in image:
        state.store.remove(name)
        removed.append(name)
        state.output.say(f"Untagged: {name}")
    state.output.result({"removed": removed})


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@pass_state
@handle_errors
def gc(state: State, dry_run: bool) -> None:
    """Delete blobs and unpacked trees that no image references.

    \b
    Examples:
      ocistore gc --dry-run
      ocistore gc
    """
    report = state.store.gc(dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    state.output.result(
        report,
        f"{verb} {len(report.removed_blobs)} blobs, {len(report.removed_unpacked)} unpacked "
        f"trees, {len(report.removed_ingests)} stale ingests: {human_size(report.bytes_freed)}",
    )


@cli.command()
@click.option("--repair", is_flag=True, help="Fix what can be fixed (drop corrupt blobs, prune).")
@click.pass_context
@pass_state
@handle_errors
def fsck(state: State, ctx: click.Context, repair: bool) -> None:
    """Re-hash every blob and cross-check the index; exit 1 if problems remain.

    \b
    Examples:
      ocistore fsck
      ocistore fsck --repair
    """
    report = state.store.fsck(repair=repair)
    lines = [
        f"{p.kind}: {p.subject}: {p.detail}" + (" (repaired)" if p.repaired else "")
        for p in report.problems
    ]
    summary = f"checked {report.blobs_checked} blobs ({human_size(report.bytes_checked)}): " + (
        "ok" if report.ok else f"{len(report.unrepaired)} problems"
    )
    state.output.result({"ok": report.ok, "report": report}, "\n".join([*lines, summary]))
    if not report.ok:
        ctx.exit(1)


@cli.command()
@click.argument("image")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@pass_state
@handle_errors
def unpack(state: State, image: str, dest: Path) -> None:
    """Write an image's root filesystem (layers applied in order, diff_ids verified).

    \b
    Example:
      ocistore unpack nginx:1.27 ./rootfs
    """
    path = state.store.unpack(image, dest)
    state.output.result({"image": image, "path": str(path)}, f"Unpacked {image} into {path}")


platform_option = click.option(
    "--platform",
    "platforms",
    multiple=True,
    help="os/arch[/variant] of a multi-arch image to include; repeatable (default: stored one).",
)
all_platforms_option = click.option(
    "--all-platforms", is_flag=True, help="Include every platform of a multi-arch image."
)


@cli.command("export")
@click.argument("image", nargs=-1, required=True)
@click.option(
    "--oci-layout",
    "layout",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the OCI image layout to write (created or extended).",
)
@click.option(
    "--oci-archive",
    "archive",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="OCI archive (tar) to write; '-' writes it to stdout.",
)
@platform_option
@all_platforms_option
@pass_state
@handle_errors
def export_(
    state: State,
    image: tuple[str, ...],
    layout: Path | None,
    archive: Path | None,
    platforms: tuple[str, ...],
    all_platforms: bool,
) -> None:
    """Export images to an OCI image layout or archive, as `ctr images export` does.

    A multi-arch image keeps its index and digest, with the stored platform's manifest, the
    --platform ones, or all of them (--all-platforms).

    \b
    Examples:
      ocistore export nginx:1.27 redis:7 --oci-layout ./bundle
      ocistore export nginx:1.27 --oci-archive nginx.tar --all-platforms
      ocistore export registry.k8s.io/pause:3.9 --oci-archive - | ctr -n k8s.io images import -
    """
    if (layout is None) == (archive is None):
        raise click.UsageError("give exactly one of --oci-layout DIR and --oci-archive FILE")
    if layout is not None:
        state.store.export_layout(
            list(image), layout, platforms=platforms, all_platforms=all_platforms
        )
        target = str(layout)
    elif str(archive) == "-":
        stdout = sys.stdout.buffer
        state.store.export_archive(
            list(image), stdout, platforms=platforms, all_platforms=all_platforms
        )
        stdout.flush()
        return  # stdout carries the archive: nothing else may be written there
    else:
        assert archive is not None
        _export_file(state, list(image), archive, platforms, all_platforms)
        target = str(archive)
    state.output.result(
        {"images": list(image), "target": target},
        f"Exported {len(image)} image(s) to {target}",
    )


def _export_file(
    state: State, images: list[str], archive: Path, platforms: tuple[str, ...], all_platforms: bool
) -> None:
    """Writes the archive beside its final name and renames it: never a half-written file."""
    partial = archive.with_name(f".{archive.name}.partial")
    try:
        with partial.open("wb") as out:
            state.store.export_archive(
                images, out, platforms=platforms, all_platforms=all_platforms
            )
        partial.rename(archive)
    finally:
        partial.unlink(missing_ok=True)


@cli.command("import")
@click.argument("source", type=click.Path(exists=True, allow_dash=True, path_type=Path))
@click.option(
    "--base-name",
    "--name",
    "name",
    help="Repository for images whose ref.name is only a tag (ctr's --base-name).",
)
@click.option(
    "--platform", help="os/arch[/variant] to take from a multi-arch image (default: host)."
)
@all_platforms_option
@pass_state
@handle_errors
def import_(
    state: State, source: Path, name: str | None, platform: str | None, all_platforms: bool
) -> None:
    """Import images from an OCI layout, an OCI archive or a `docker save` tarball.

    Every blob is verified; on any error no image is added or changed. SOURCE '-' reads an
    archive from stdin.

    \b
    Examples:
      ocistore import ./bundle
      ocistore import nginx.tar
      docker save app:1 | ocistore import -
      ocistore import --base-name registry.example.com/team/app oci.tar
    """
    store = state.store
    where = sys.stdin.buffer if str(source) == "-" else source
    if isinstance(where, Path) and where.is_dir():
        records = store.import_layout(where, name, platform=platform, all_platforms=all_platforms)
    else:
        records = store.import_archive(where, name, platform=platform, all_platforms=all_platforms)
    state.output.result(
        records,
        "\n".join(f"Imported {r.reference} {r.index_digest or r.digest}" for r in records)
        or "Nothing imported",
    )
