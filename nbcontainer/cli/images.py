"""The local store's verbs: images, import, inspect, tag, rmi, save, load, prune, fsck."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from .. import api, humanize, options
from ..errors import NbcontainerError
from .command import Command, spec
from .render import out, table


def _conf_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="ROOTFS-DIR|TARBALL",
                   help="a root filesystem directory or a tarball (tar, tar.gz, tar.zst)")
    p.add_argument("tag", metavar="REPOSITORY[:TAG]", nargs="?")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, "
                        "EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)")
    p.add_argument("-m", "--message", help="commit message for the history entry")
    p.add_argument("--platform", help="os/arch[/variant] of the image (default: this machine)")


def _run_import(a: argparse.Namespace, st: api.Store) -> int:
    img = api.import_image(a.source, a.tag, changes=a.change, message=a.message,
                           platform=a.platform, store=st)
    out(str(img.id))
    return 0


def _run_images(a: argparse.Namespace, st: api.Store) -> int:
    rows = api.images(store=st)
    if a.quiet:
        seen: set[str] = set()
        for r in rows:
            ident = str(r.id) if a.no_trunc else r.id.short
            if ident not in seen:
                seen.add(ident)
                out(ident)
        return 0
    lines = []
    for r in rows:
        line = [r.repository, r.tag] + ([str(r.digest)] if a.digests else [])
        line += [str(r.id) if a.no_trunc else r.id.short, humanize.ago(r.created),
                 humanize.size(r.size)]
        lines.append(line)
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if a.digests else []) + \
        ["IMAGE ID", "CREATED", "SIZE"]
    table([header, *lines])
    return 0


def _run_inspect(a: argparse.Namespace, st: api.Store) -> int:
    if a.provenance:
        statements = [doc for n in a.names for doc in api.provenance(n, store=st)]
        if not statements:
            raise NbcontainerError(f"no provenance attached to {', '.join(a.names)}",
                                   hint="build with --provenance to attach a statement")
        out(json.dumps(statements if len(statements) > 1 else statements[0], indent=2))
        return 0
    docs = api.inspect(a.names, store=st)
    if a.format and a.format != "json":
        for d in docs:
            out(api.inspect_field(d, a.format))
        return 0
    out(json.dumps(docs, indent=4))
    return 0


def _conf_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def _run_tag(a: argparse.Namespace, st: api.Store) -> int:
    api.tag(a.source, a.target, store=st)
    return 0


def _conf_rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="remove an image with several tags")


def _run_rmi(a: argparse.Namespace, st: api.Store) -> int:
    for line in api.rmi(a.names, force=a.force, store=st):
        out(line)
    return 0


def _conf_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="write to this file (or directory for oci-dir)")
    p.add_argument("--format", default="docker-archive", choices=api.SAVE_FORMATS,
                   help="archive format (default: docker-archive, what `docker load` reads)")


def _run_save(a: argparse.Namespace, st: api.Store) -> int:
    if a.output:
        api.save(a.names, a.output, format=a.format, store=st)
        return 0
    if a.format == "oci-dir":
        raise NbcontainerError("--format oci-dir needs -o DIRECTORY")
    if sys.stdout.isatty():
        raise NbcontainerError("cowardly refusing to save to a terminal",
                               hint="use the -o flag or redirect the output")
    with tempfile.TemporaryDirectory(prefix="nbcontainer-save-") as tmp:
        path = api.save(a.names, Path(tmp) / "out.tar", format=a.format, store=st)
        sys.stdout.flush()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
    return 0


def _conf_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", required=True,
                   help="a docker-archive or oci-archive tar, or an OCI layout directory")
    p.add_argument("-q", "--quiet", action="store_true")


def _run_load(a: argparse.Namespace, st: api.Store) -> int:
    for digest, tags in api.load(a.input, store=st):
        if a.quiet:
            continue
        if tags:
            for t in tags:
                out(f"Loaded image: {api.familiar_name(t)}")
        else:
            out(f"Loaded image ID: {digest}")
    return 0


def _conf_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility")
    p.add_argument("--cache", action="store_true",
                   help="also remove the RUN --mount=type=cache directories")


def _run_prune(a: argparse.Namespace, st: api.Store) -> int:
    if a.cache:
        n, freed = api.prune_cache_mounts(store=st)
        out(f"Deleted {n} build cache mount(s) ({humanize.size(freed)})")
    r = api.prune(store=st)
    out(f"Deleted {r.blobs_removed} unreferenced blob(s) and {r.temp_files_removed} "
        f"temporary file(s)\nTotal reclaimed space: {humanize.size(r.bytes_freed)}")
    return 0


def _conf_fsck(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-quarantine", action="store_true",
                   help="report corrupt blobs without moving them to the quarantine")


def _run_fsck(a: argparse.Namespace, st: api.Store) -> int:
    r = api.fsck(store=st, quarantine=not a.no_quarantine)
    out(f"checked {r.blobs_checked} blob(s)")
    for name, actual in r.corrupt:
        out(f"corrupt: {name} (content hashes to {actual})")
    for path in r.quarantined:
        out(f"quarantined: {path}")
    for image, blob in r.missing:
        out(f"missing: {blob} (needed by image {image})")
    for t in r.dangling_tags:
        out(f"dangling tag: {t}")
    for p in r.stray_files:
        out(f"stray file: {p}")
    out("store is consistent" if r.ok else "store has problems (see above)")
    return 0 if r.ok else 1


COMMANDS: list[Command] = [
    Command("images", "list images in the local store", spec(options.add_images_args),
            _run_images),
    Command("import", "create an image from a root filesystem directory or tarball",
            _conf_import, _run_import),
    Command("inspect", "show low-level information on images (JSON)",
            spec(options.add_inspect_args), _run_inspect),
    Command("tag", "create a tag TARGET that refers to SOURCE", _conf_tag, _run_tag),
    Command("rmi", "remove one or more images", _conf_rmi, _run_rmi),
    Command("save", "save images to a tar archive (or OCI layout directory)", _conf_save, _run_save),
    Command("load", "load images from a tar archive or OCI layout directory", _conf_load, _run_load),
    Command("prune", "remove blobs no image references", _conf_prune, _run_prune),
    Command("fsck", "verify every blob in the store; quarantine corrupt ones", _conf_fsck, _run_fsck),
]
