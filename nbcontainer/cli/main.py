"""``nbcontainer``: a docker-compatible command line over the Python API.

Argument parsing and terminal rendering only; every verb calls into ``nbcontainer.api`` (or
the registry/builder APIs), so the notebook magics and the CLI behave the same. Each verb is a
``Command`` in ``COMMANDS``: adding ``build``/``push``/``pull``/``run`` means adding entries.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, api, humanize
from ..errors import NbcontainerError
from ..oci.reference import Reference
from ..store import Store


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Store], int]
    aliases: tuple[str, ...] = ()


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


# ---------------------------------------------------------------------------- verbs
ISOLATION_HELP = ("how RUN steps are contained: auto (default: $NBCONTAINER_ISOLATION, else the "
                  "strongest rung that works here, see `nbcontainer info`), full, reduced, "
                  "ptrace, none")


def _isolation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--isolation", choices=("auto", "full", "reduced", "ptrace", "none"),
                   default=None, help=ISOLATION_HELP)


def _conf_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="ROOTFS-DIR|TARBALL",
                   help="a root filesystem directory or a tarball (tar, tar.gz, tar.zst)")
    p.add_argument("tag", metavar="REPOSITORY[:TAG]", nargs="?")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, "
                        "EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)")
    p.add_argument("-m", "--message", help="commit message for the history entry")
    p.add_argument("--platform", help="os/arch[/variant] of the image (default: this machine)")


def _run_import(a: argparse.Namespace, st: Store) -> int:
    img = api.import_image(a.source, a.tag, changes=a.change, message=a.message,
                           platform=a.platform, store=st)
    _out(str(img.id))
    return 0


def _conf_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate ids")


def _run_images(a: argparse.Namespace, st: Store) -> int:
    records = api.images(store=st)
    # An index's untagged platform manifests are listed under the index's row (as docker
    # does), not as <none> rows of their own.
    children: set[str] = set()
    for r in records:
        if "index" in r.media_type or "manifest.list" in r.media_type:
            try:
                children.update(str(m.digest) for m in st.read_manifest(r.digest).manifests)
            except (NbcontainerError, AttributeError):
                pass
    records = [r for r in records if r.tags or str(r.digest) not in children]
    if a.quiet:
        seen: set[str] = set()
        for r in records:
            ident = str(r.config_digest or r.digest)
            ident = ident if a.no_trunc else ident.removeprefix("sha256:")[:12]
            if ident not in seen:
                seen.add(ident)
                _out(ident)
        return 0
    rows = []
    for r in records:
        ident = str(r.config_digest or r.digest)
        ident = ident if a.no_trunc else ident.removeprefix("sha256:")[:12]
        names = [Reference.parse(t) for t in r.tags] or [None]
        for ref in names:
            row = [ref.familiar_repository if ref else "<none>", (ref.tag if ref else None) or "<none>"]
            if a.digests:
                row.append(str(r.digest))
            row += [ident, humanize.ago(r.created), humanize.size(r.size)]
            rows.append(row)
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if a.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    _table([header, *rows])
    return 0


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        _out("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _conf_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", help="'json' (default) or a {{.Field}} path like {{.Config.Cmd}}")
    p.add_argument("--provenance", action="store_true",
                   help="print the build provenance statements (in-toto JSON) instead")


def _run_inspect(a: argparse.Namespace, st: Store) -> int:
    if a.provenance:
        statements = [doc for n in a.names for doc in api.provenance(n, store=st)]
        if not statements:
            raise NbcontainerError(f"no provenance attached to {', '.join(a.names)}",
                                   hint="build with --provenance to attach a statement")
        _out(json.dumps(statements if len(statements) > 1 else statements[0], indent=2))
        return 0
    docs = api.inspect(a.names, store=st)
    if a.format and a.format != "json":
        for d in docs:
            _out(_format_field(d, a.format))
        return 0
    _out(json.dumps(docs, indent=4))
    return 0


def _format_field(doc: dict, template: str) -> str:
    """The common ``{{.A.B}}`` and ``{{json .A}}`` subset of docker's Go templates."""
    t = template.strip()
    if not (t.startswith("{{") and t.endswith("}}")):
        raise NbcontainerError(f"unsupported --format {template!r}",
                               hint="use json, {{.Field.Sub}} or {{json .Field}}")
    expr = t[2:-2].strip()
    as_json = expr.startswith("json ")
    path = expr.removeprefix("json ").strip()
    val = doc
    for part in [p for p in path.split(".") if p]:
        if not isinstance(val, dict) or part not in val:
            raise NbcontainerError(f"--format: no field {part!r} in {path!r}")
        val = val[part]
    if as_json or isinstance(val, dict | list):
        return json.dumps(val)
    return "" if val is None else str(val)


def _conf_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def _run_tag(a: argparse.Namespace, st: Store) -> int:
    api.tag(a.source, a.target, store=st)
    return 0


def _conf_rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="remove an image with several tags")


def _run_rmi(a: argparse.Namespace, st: Store) -> int:
    for line in api.rmi(a.names, force=a.force, store=st):
        _out(line)
    return 0


def _conf_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="write to this file (or directory for oci-dir)")
    p.add_argument("--format", default="docker-archive", choices=api.SAVE_FORMATS,
                   help="archive format (default: docker-archive, what `docker load` reads)")


def _run_save(a: argparse.Namespace, st: Store) -> int:
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


def _run_load(a: argparse.Namespace, st: Store) -> int:
    for digest, tags in api.load(a.input, store=st):
        if a.quiet:
            continue
        if tags:
            for t in tags:
                _out(f"Loaded image: {Reference.parse(t).familiar}")
        else:
            _out(f"Loaded image ID: {digest}")
    return 0


def _conf_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility")
    p.add_argument("--cache", action="store_true",
                   help="also remove the RUN --mount=type=cache directories")


def _run_prune(a: argparse.Namespace, st: Store) -> int:
    if a.cache:
        n, freed = api.prune_cache_mounts(store=st)
        _out(f"Deleted {n} build cache mount(s) ({humanize.size(freed)})")
    r = api.prune(store=st)
    _out(f"Deleted {r.blobs_removed} unreferenced blob(s) and {r.temp_files_removed} "
         f"temporary file(s)\nTotal reclaimed space: {humanize.size(r.bytes_freed)}")
    return 0


def _conf_fsck(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-quarantine", action="store_true",
                   help="report corrupt blobs without moving them to the quarantine")


def _run_fsck(a: argparse.Namespace, st: Store) -> int:
    r = api.fsck(store=st, quarantine=not a.no_quarantine)
    _out(f"checked {r.blobs_checked} blob(s)")
    for name, actual in r.corrupt:
        _out(f"corrupt: {name} (content hashes to {actual})")
    for path in r.quarantined:
        _out(f"quarantined: {path}")
    for image, blob in r.missing:
        _out(f"missing: {blob} (needed by image {image})")
    for t in r.dangling_tags:
        _out(f"dangling tag: {t}")
    for p in r.stray_files:
        _out(f"stray file: {p}")
    _out("store is consistent" if r.ok else "store has problems (see above)")
    return 0 if r.ok else 1


def _transfer_printer():  # noqa: ANN202 - a progress sink
    from .render import TransferPrinter

    return TransferPrinter(sys.stdout)


def _conf_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    p.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform index")
    p.add_argument("-a", "--all-platforms", action="store_true",
                   help="keep the whole index with every platform's image")
    p.add_argument("--tls-verify", default=None, type=_bool, metavar="BOOL",
                   help="verify the registry's TLS certificate (default: true)")


def _bool(text: str) -> bool:
    try:
        return api.parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _run_pull(a: argparse.Namespace, st: Store) -> int:
    api.pull(a.ref, platform=a.platform, all_platforms=a.all_platforms,
             progress=None if a.quiet else _transfer_printer(), tls_verify=a.tls_verify,
             store=st)
    _out(str(Reference.parse(a.ref)) if a.quiet else "")
    return 0


def _conf_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[:TAG]", help="a local image (its name is the destination)")
    p.add_argument("dest", metavar="DESTINATION", nargs="?",
                   help="push under another name (like skopeo copy)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--digestfile", help="write the pushed manifest digest to this file")
    p.add_argument("--tls-verify", default=None, type=_bool, metavar="BOOL")


def _run_push(a: argparse.Namespace, st: Store) -> int:
    digest = api.push(a.name, a.dest, progress=None if a.quiet else _transfer_printer(),
                      digestfile=a.digestfile, tls_verify=a.tls_verify, store=st)
    if a.quiet:
        _out(digest)
    return 0


def _conf_login(p: argparse.ArgumentParser) -> None:
    p.add_argument("registry", metavar="SERVER", nargs="?", default="docker.io")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password", help="insecure: prefer --password-stdin")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--tls-verify", default=None, type=_bool, metavar="BOOL")


def _run_login(a: argparse.Namespace, st: Store) -> int:
    from getpass import getpass

    from .. import registry

    user = a.username or (input("Username: ") if sys.stdin.isatty() else None)
    if not user:
        raise NbcontainerError("a username is required", hint="pass -u USER")
    if a.password_stdin:
        password = sys.stdin.read().rstrip("\n")
    elif a.password is not None:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. "
                         "Use --password-stdin.\n")
        password = a.password
    elif sys.stdin.isatty():
        password = getpass("Password: ")
    else:
        raise NbcontainerError("no password given", hint="use --password-stdin")
    where = registry.login(a.registry, user, password, tls_verify=a.tls_verify)
    _out(f"Login Succeeded ({where})")
    return 0


def _conf_logout(p: argparse.ArgumentParser) -> None:
    p.add_argument("registry", metavar="SERVER", nargs="?", default="docker.io")


def _run_logout(a: argparse.Namespace, st: Store) -> int:
    from .. import registry

    if registry.logout(a.registry):
        _out(f"Removing login credentials for {a.registry}")
    else:
        _out(f"Not logged in to {a.registry}")
    return 0


def _conf_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", metavar="REPOSITORY", help="e.g. localhost:5000/app")
    p.add_argument("--tls-verify", default=None, type=_bool, metavar="BOOL")


def _run_ls(a: argparse.Namespace, st: Store) -> int:
    from .. import registry

    for t in registry.list_tags(a.repository, tls_verify=a.tls_verify):
        _out(t)
    return 0


def _conf_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("context", metavar="CONTEXT", nargs="?", default=".")
    p.add_argument("-t", "--tag", action="append", default=[], help="name:tag (repeatable)")
    p.add_argument("-f", "--file", help="Dockerfile (default: CONTEXT/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    p.add_argument("--target", help="build this stage")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--platform", help="target platform(s), comma-separated (linux/amd64,"
                   "linux/arm64): several give one image each and an index")
    p.add_argument("--secret", action="append", default=[],
                   help="id=ID,src=FILE or id=ID,env=VAR (RUN --mount=type=secret)")
    p.add_argument("--ssh", action="append", default=[], metavar="default|ID[=SOCKET|KEY,…]",
                   help="ssh agent socket or keys for RUN --mount=type=ssh")
    p.add_argument("--cache-to", action="append", default=[],
                   metavar="type=registry,ref=R[,mode=max]|type=inline",
                   help="export the build cache to a registry, or inline in the image")
    p.add_argument("--cache-from", action="append", default=[],
                   metavar="REF|type=registry,ref=R",
                   help="use the build cache in a registry (a cache or an inline-cache image)")
    p.add_argument("--output", "-o", help="type=oci|docker|local,dest=PATH")
    p.add_argument("--iidfile", help="write the image id to this file")
    p.add_argument("--progress", choices=("auto", "plain", "quiet"), default="auto")
    p.add_argument("-q", "--quiet", action="store_true", help="same as --progress=quiet")
    p.add_argument("--provenance", nargs="?", const="mode=min", default=None,
                   action=_ProvenanceFlag, metavar="true|false|mode=min|mode=max",
                   help="attach a SLSA provenance statement to the image (OCI referrer)")
    _isolation(p)


class _ProvenanceFlag(argparse.Action):
    """``--provenance[=VALUE]`` like buildx's (pflag's NoOptDefVal): ``--provenance CONTEXT``
    must not eat the context, so a following word that is no provenance value is left for
    the positional (argparse already consumed it: hand it back via ``_context``)."""

    _WORDS = ("true", "false", "1", "0", "min", "max", "yes", "no", "on", "off")

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        if values is not None and "=" not in values and values.lower() not in self._WORDS:
            namespace._context = values
            values = self.const
        setattr(namespace, self.dest, self.const if values is None else values)


def _run_build(a: argparse.Namespace, st: Store) -> int:
    if getattr(a, "_context", None):  # see _ProvenanceFlag
        if a.context != ".":
            raise NbcontainerError(f"build takes one context, got {a._context!r} and "
                                   f"{a.context!r}")
        a.context = a._context
    from .render import PlainRenderer

    args = {}
    for item in a.build_arg:
        k, sep, v = item.partition("=")
        if sep:
            args[k] = v
        elif k in os.environ:
            args[k] = os.environ[k]
    dockerfile = a.file or str(Path(a.context) / "Dockerfile")
    quiet = a.quiet or a.progress == "quiet"
    img = api.build(Path(dockerfile), a.context, tags=a.tag, build_args=args, target=a.target,
                    no_cache=a.no_cache, store=st, secrets=a.secret, platform=a.platform, ssh=a.ssh,
                    cache_from=a.cache_from, cache_to=a.cache_to,
                    provenance=a.provenance or False, isolation=a.isolation,
                    progress=None if quiet else PlainRenderer())
    if a.output:
        _build_output(img, a.output, st)
    if a.iidfile:
        Path(a.iidfile).write_text(str(img.id))
    built = f"Successfully built {img.id.short}"
    if hasattr(img, "images"):  # several platforms: each image, then the index (its id)
        built = "".join(f"Built {plat} {i.digest}\n" for plat, i in
                        zip(img.platforms, img.images, strict=True))
        built += f"Successfully built index {img.digest}"
    _out(str(img.id) if quiet else built +
         "".join(f"\nSuccessfully tagged {Reference.parse(t).familiar}" for t in a.tag))
    return 0


def _build_output(img, spec: str, st: Store) -> None:
    fields = dict(p.partition("=")[::2] for p in spec.split(","))
    kind, dest = fields.get("type", "local"), fields.get("dest")
    if not dest:
        raise NbcontainerError(f"--output {spec!r} needs dest=PATH")
    name = str(img.ref) if img.ref else str(img.digest)
    if kind == "oci":
        api.save([name], dest, format="oci-archive", store=st)
    elif kind == "docker":
        api.save([name], dest, format="docker-archive", store=st)
    elif kind == "local":
        from ..layers import apply_layers

        if hasattr(img, "images"):  # one dir per platform, as buildx does: dest/linux_arm64
            for plat, one in zip(img.platforms, img.images, strict=True):
                apply_layers(Path(dest) / plat.replace("/", "_"),
                             [st.blobs.path(layer.digest) for layer in one.manifest.layers])
            return
        apply_layers(dest, [st.blobs.path(layer.digest) for layer in img.manifest.layers])
    else:
        raise NbcontainerError(f"unknown output type {kind!r}", hint="use oci, docker or local")


def _conf_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.add_argument("--rm", action="store_true", help="accepted; containers are always removed")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("--network", choices=("host", "none"), default="host")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--entrypoint")
    _isolation(p)


def _run_run(a: argparse.Namespace, st: Store) -> int:
    env = {}
    for item in a.env:
        k, sep, v = item.partition("=")
        if sep:
            env[k] = v
        elif k in os.environ:
            env[k] = os.environ[k]
    sys.stdout.flush()
    return api.run(a.image, a.cmd or None, store=st, env=env, network=a.network, user=a.user,
                   workdir=a.workdir, entrypoint=[a.entrypoint] if a.entrypoint else None,
                   isolation=a.isolation)


def _conf_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("text", "json"), default="text")
    _isolation(p)


def _run_info(a: argparse.Namespace, st: Store) -> int:
    from ..wording import info_lines

    found = api.info(store=st, isolation=a.isolation).to_dict()
    _out(json.dumps(found, indent=2) if a.format == "json" else "\n".join(info_lines(found)))
    return 0


def _conf_system(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    reset = sub.add_parser("reset", help="delete the whole store (images, cache, build area), "
                           "files owned by subordinate ids included")
    reset.add_argument("-f", "--force", action="store_true", help="do not ask")


def _run_system(a: argparse.Namespace, st: Store) -> int:
    if not a.force:
        if not sys.stdin.isatty():
            raise NbcontainerError(f"system reset deletes {st.home} and everything in it",
                                   hint="pass -f to confirm")
        answer = input(f"Delete {st.home} with every image and the build cache? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    _out(f"Deleted {api.reset(store=st)}")
    return 0


COMMANDS: list[Command] = [
    Command("images", "list images in the local store", _conf_images, _run_images),
    Command("import", "create an image from a root filesystem directory or tarball",
            _conf_import, _run_import),
    Command("inspect", "show low-level information on images (JSON)", _conf_inspect, _run_inspect),
    Command("tag", "create a tag TARGET that refers to SOURCE", _conf_tag, _run_tag),
    Command("rmi", "remove one or more images", _conf_rmi, _run_rmi),
    Command("save", "save images to a tar archive (or OCI layout directory)", _conf_save, _run_save),
    Command("load", "load images from a tar archive or OCI layout directory", _conf_load, _run_load),
    Command("prune", "remove blobs no image references", _conf_prune, _run_prune),
    Command("fsck", "verify every blob in the store; quarantine corrupt ones", _conf_fsck, _run_fsck),
    Command("pull", "download an image from a registry", _conf_pull, _run_pull),
    Command("push", "upload an image to a registry", _conf_push, _run_push),
    Command("login", "log in to a registry (stores credentials like docker login)",
            _conf_login, _run_login),
    Command("logout", "remove stored credentials for a registry", _conf_logout, _run_logout),
    Command("ls", "list the tags of a repository in a registry", _conf_ls, _run_ls),
    Command("build", "build an image from a Dockerfile", _conf_build, _run_build),
    Command("run", "run a command in a new container from an image", _conf_run, _run_run),
    Command("info", "show the store and how builds are isolated here (rung, reasons, probe)",
            _conf_info, _run_info),
    Command("system", "manage the store as a whole (reset)", _conf_system, _run_system),
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # docker-style usage errors, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbcontainer", description=(
        "Daemonless OCI image toolkit: docker-compatible verbs over a local content store."))
    parser.add_argument("--version", action="version", version=f"nbcontainer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--root", metavar="DIR",
                        help="store location (default: $NBCONTAINER_HOME or ~/.local/share/nbcontainer)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, aliases=list(cmd.aliases))
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("NBCONTAINER_DEBUG"))
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        store = Store(args.root) if args.root else api.get_store()
        return args._run(args, store)
    except NbcontainerError as e:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"Error: {e.message}\n")
        if e.hint:
            sys.stderr.write(f"hint: {e.hint}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:  # disk full, permissions: still one line, not a traceback
        if debug:
            traceback.print_exc()
        where = f" ({e.filename})" if e.filename else ""
        sys.stderr.write(f"Error: {e.strerror or e}{where}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
