"""The flags of both skins, written once: ``nbcontainer build`` and ``%%dockerfile``, ``run``
and ``%container_run``, ``pull``/``push``/``login``/``logout``/``images``/``inspect`` and their
magics.

Each ``add_*_args(parser, skin)`` adds one verb's arguments to an argparse parser: the CLI's
subparser, or the parser IPython's ``magic_arguments`` builds for a magic (an argparse parser
too; ``notebook/magics.py`` applies a spec with its ``spec`` decorator). A flag exists in both
skins unless the concept it names does not exist in one of them; each such flag is marked
*skin-specific* here with its reason, and ``tests/cli/test_option_parity.py`` keeps the list.
Positional arguments may differ (a magic's cell is its input, a variable may name an image).

Values are checked at parse time, so both skins report a bad ``K=V`` or ``BOOL`` as a usage
error (exit 2 in the CLI, ``UsageError`` in a notebook).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from . import api
from .errors import NbcontainerError

Skin = Literal["cli", "magic"]
CLI: Skin = "cli"
MAGIC: Skin = "magic"

PROGRESS_MODES = ("auto", "plain", "quiet")
ISOLATIONS = ("auto", "full", "reduced", "ptrace", "none")


# ---------------------------------------------------------------------------- value types
def bool_value(text: str) -> bool:
    """``--tls-verify=BOOL``: true/false, 1/0, yes/no, on/off (docker's flags accept these)."""
    try:
        return api.parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def key_value(text: str) -> str:
    """``K=V`` or a bare ``K`` (whose value then comes from the environment, docker's rule)."""
    if not text.partition("=")[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return text


def pairs(items: Iterable[str]) -> dict[str, str]:
    """``--build-arg``/``-e`` values as a dict; a bare ``K`` takes this process's ``$K`` and is
    left out when that is unset (as docker does)."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if sep:
            out[k] = v
        elif k in os.environ:
            out[k] = os.environ[k]
    return out


class ProvenanceFlag(argparse.Action):
    """``--provenance[=VALUE]`` like buildx's (pflag's NoOptDefVal): ``--provenance CONTEXT``
    must not eat the context, so a following word that is no provenance value is handed back
    (argparse already consumed it) through :func:`stray_word`."""

    WORDS = ("true", "false", "1", "0", "min", "max", "yes", "no", "on", "off")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values is not None and "=" not in values and values.lower() not in self.WORDS:
            namespace._stray = values
            values = self.const
        setattr(namespace, self.dest, self.const if values is None else values)


def stray_word(args: argparse.Namespace) -> str | None:
    """The word ``--provenance`` did not take (see :class:`ProvenanceFlag`)."""
    return getattr(args, "_stray", None)


def _per_skin(skin: Skin, cli: str, magic: str) -> str:
    return cli if skin == CLI else magic


def _tls_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-verify", type=bool_value, default=None, metavar="BOOL",
                   help="verify the registry's TLS certificate (default: true)")


# ---------------------------------------------------------------------------- build
def add_build_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer build`` / ``%%dockerfile``."""
    if skin == CLI:
        p.add_argument("context", metavar="CONTEXT", nargs="?", default=".",
                       help="the build context directory (default: .)")
    else:  # skin-specific: the cell body is the magic's input, so the context is a flag
        p.add_argument("--context", metavar="DIR", default=None,
                       help="build context (default: the notebook's working directory; "
                            ".dockerignore is honoured)")
    p.add_argument("-f", "--file", metavar=_per_skin(skin, "FILE", "NAME"), help=_per_skin(
        skin, "the Dockerfile (default: CONTEXT/Dockerfile)",
        "save the cell as NAME in the context and build from it (an empty cell builds the "
        "existing file)"))
    p.add_argument("-t", "--tag", action="append", default=[], metavar="TAG",
                   help="name:tag for the image (repeatable)")
    p.add_argument("--build-arg", action="append", default=[], type=key_value, metavar="K=V",
                   help="set a build-time ARG (repeatable; a bare K takes $K)")
    p.add_argument("--target", metavar="STAGE", help="build this stage")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("--platform", metavar="P", help="target platform(s), comma-separated "
                   "(linux/amd64,linux/arm64): several give one image each and an index")
    p.add_argument("--secret", action="append", default=[], metavar="id=ID,src=FILE|env=VAR",
                   help="expose a secret to RUN --mount=type=secret (never stored in the image)")
    p.add_argument("--ssh", action="append", default=[], metavar="default|ID[=SOCKET|KEY,…]",
                   help="ssh agent socket or keys for RUN --mount=type=ssh")
    p.add_argument("--cache-to", action="append", default=[],
                   metavar="type=registry,ref=R[,mode=max]|type=inline",
                   help="export the build cache to a registry, or inline in the image")
    p.add_argument("--cache-from", action="append", default=[],
                   metavar="REF|type=registry,ref=R",
                   help="use the build cache in a registry (a cache or an inline-cache image)")
    p.add_argument("--provenance", nargs="?", const="mode=min", default=None,
                   action=ProvenanceFlag, metavar="true|false|mode=min|mode=max",
                   help="attach a SLSA provenance statement to the image (OCI referrer)")
    p.add_argument("-o", "--output", metavar="type=oci|docker|local,dest=PATH",
                   help="also write the result as an OCI or docker archive, or its files")
    p.add_argument("--iidfile", metavar="FILE", help="write the image id to this file")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                   help=_per_skin(skin, "auto and plain: BuildKit's plain log on stderr",
                                  "auto: a live summary; plain: BuildKit's plain log"))
    p.add_argument("-q", "--quiet", action="store_true", help=_per_skin(
        skin, "same as --progress=quiet; print only the image id", "same as --progress=quiet"))
    _isolation(p, skin)
    _host_ca(p, "RUN steps trust")
    _hardening(p, skin)
    kernel = p.add_argument_group("kernel", "install the image as a Jupyter kernel as well")
    kernel.add_argument("--kernel", metavar="NAME",
                        help="install the built image as the Jupyter kernel NAME (it needs "
                             "ipykernel); the other kernel flags are --kernel-…")
    _kernel_args(kernel, skin, prefix="kernel-")  # type: ignore[arg-type]


def _hardening(p: argparse.ArgumentParser, skin: Skin) -> None:
    """Containment options of build and run (the sandbox's defaults are Docker's)."""
    p.add_argument("--allow", action="append", default=[],
                   choices=("network.host", "security.insecure"), metavar="ENTITLEMENT",
                   help="grant an entitlement, as buildx does: network.host (RUN "
                        "--network=host, run --network host), security.insecure (RUN "
                        "--security=insecure: no seccomp, every capability)")
    p.add_argument("--security-opt", action="append", default=[],
                   metavar="seccomp=unconfined|PROFILE.json",
                   help="the seccomp profile (default: Docker's)")
    p.add_argument("-m", "--memory", metavar="BYTES",
                   help="memory limit of the RUN steps / the container (e.g. 512m, 2g)")
    p.add_argument("--pids-limit", type=int, metavar="N",
                   help="process limit (default 2048; 0 or -1: unlimited)")


def hardening(args: argparse.Namespace) -> dict[str, object]:
    """The containment keywords of ``api.build``/``api.run`` from the parsed flags."""
    return {"allow": tuple(args.allow), "security_opt": tuple(args.security_opt),
            "memory": args.memory, "pids_limit": args.pids_limit}


def _isolation(p: argparse.ArgumentParser, skin: Skin) -> None:
    p.add_argument("--isolation", choices=ISOLATIONS, default=None, help=(
        "how RUN steps are contained: auto (default: $NBCONTAINER_ISOLATION, else the "
        "strongest rung that works here, see " + _per_skin(skin, "`nbcontainer info`",
                                                           "%%nbcontainer_info") +
        "), full, reduced, ptrace or none"))


def _host_ca(p: argparse.ArgumentParser, who: str) -> None:
    p.add_argument("--host-ca", action=argparse.BooleanOptionalAction, default=None, help=(
        f"{who} the CAs this host trusts (a TLS-inspecting proxy's) besides the image's own, "
        "without adding them to the image (default: $NBCONTAINER_HOST_CA)"))


def progress_mode(args: argparse.Namespace) -> str:
    """``auto``/``plain``/``quiet`` from ``--progress`` and ``-q``."""
    return "quiet" if args.quiet else args.progress


# ---------------------------------------------------------------------------- run
def add_run_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer run`` / ``%container_run``."""
    p.add_argument("image", metavar="IMAGE", help=_per_skin(
        skin, "the image (pulled first when the store lacks it)",
        "an image name or a variable holding an Image"))
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="command and arguments (default: the image's entrypoint/cmd)")
    p.add_argument("--rm", action="store_true",
                   help="accepted for docker compatibility: containers are always removed")
    _env(p)
    p.add_argument("--network", choices=("default", "host", "none"),
                   default="default", help="default: a private network with outbound "
                   "access; host needs --allow network.host")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("--entrypoint", metavar="CMD")
    _volumes(p)
    p.add_argument("--mount", action="append", default=[], metavar="type=bind,source=S,target=T",
                   help="bind-mount a host path (docker's --mount; add ,readonly)")
    p.add_argument("--name", metavar="NAME",
                   help="a name for the container; two running containers cannot share one")
    if skin == CLI:
        # skin-specific: a kernel has no standard input and no terminal to hand over
        p.add_argument("-i", "--interactive", action="store_true",
                       help="keep standard input open (pass it to the container)")
        p.add_argument("-t", "--tty", action="store_true",
                       help="give the container a terminal (a pty); with -i an interactive "
                            "shell: nbcontainer run -it IMAGE sh")
    _isolation(p, skin)
    _host_ca(p, "the container trusts")
    _hardening(p, skin)


def _volumes(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:CONTAINER[:ro]",
                   help="bind-mount a host path (repeatable; read-write unless :ro; the host "
                        "path must exist)")


def _env(p: argparse.ArgumentParser) -> None:
    p.add_argument("-e", "--env", action="append", default=[], type=key_value, metavar="K=V",
                   help="set an environment variable (repeatable; a bare K takes $K)")


# ---------------------------------------------------------------------------- kernels
def add_kernel_install_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer kernel install`` / ``%kernel_install``."""
    p.add_argument("image", metavar="IMAGE", help=_per_skin(
        skin, "the image (it needs ipykernel)",
        "an image name or a variable holding an Image (it needs ipykernel)"))
    _kernel_args(p, skin)


def _kernel_args(p: argparse.ArgumentParser, skin: Skin, *, prefix: str = "") -> None:
    """The kernel's settings (``%%dockerfile --kernel`` shares them, as ``--kernel-…``)."""
    if not prefix:
        p.add_argument("--name", metavar="NAME",
                       help="the kernel's name (default: from the image name)")
    p.add_argument(f"--{prefix}display-name", dest="display_name", metavar="TEXT",
                   help="what Jupyter's launcher and kernel picker show")
    where = p.add_mutually_exclusive_group()
    where.add_argument(f"--{prefix}user", dest="kernel_user", action="store_true",
                       help="install for this user (the default)")
    where.add_argument(f"--{prefix}sys-prefix", dest="sys_prefix", action="store_true",
                       help="install into this Python's prefix (sys.prefix)")
    where.add_argument(f"--{prefix}prefix", dest="prefix", metavar="P",
                       help="install into P/share/jupyter/kernels")
    if not prefix:
        _volumes(p)
        _env(p)
    p.add_argument(f"--{prefix}workdir-mount", dest="workdir_mount",
                   action=argparse.BooleanOptionalAction, default=True,
                   help="mount the notebook's directory at the same path as the working "
                        "directory (default: yes)")
    # (as --kernel-allow beside build's own --allow: a dest of its own)
    p.add_argument(f"--{prefix}allow", dest="kernel_allow" if prefix else "allow",
                   action="append", default=[],
                   choices=("network.host",),
                   help="network.host: the kernel shares the host's network and loopback "
                        "(default: a network of its own)")


def add_kernel_list_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer kernel list`` / ``%kernel_list``."""


def add_kernel_remove_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer kernel remove`` / ``%kernel_remove``."""
    p.add_argument("names", nargs="+", metavar="NAME")


def kernel_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``api.install_kernel`` from parsed kernel flags."""
    return {"display_name": args.display_name, "user": args.kernel_user,
            "sys_prefix": args.sys_prefix, "prefix": args.prefix,
            "volumes": getattr(args, "volume", []), "env": pairs(getattr(args, "env", [])),
            "workdir_mount": args.workdir_mount,
            "allow": args.kernel_allow if hasattr(args, "kernel_allow") else args.allow,
            "isolation": getattr(args, "isolation", None)}


def entrypoint(args: argparse.Namespace) -> list[str] | None:
    return [args.entrypoint] if args.entrypoint else None


# ---------------------------------------------------------------------------- registries
def add_pull_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer pull`` / ``%pull``."""
    p.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", metavar="P",
                   help="os/arch[/variant] to pick from a multi-platform index")
    p.add_argument("-a", "--all-platforms", action="store_true",
                   help="keep the whole index with every platform's image")
    p.add_argument("-q", "--quiet", action="store_true", help=_per_skin(
        skin, "print only the image name", "no progress output"))
    _tls_verify(p)


def add_push_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer push`` / ``%push``."""
    p.add_argument("ref", metavar=_per_skin(skin, "NAME[:TAG]", "IMAGE"), help=_per_skin(
        skin, "a local image (its name is the destination)",
        "a local image or a variable holding one (its name is the destination)"))
    p.add_argument("dest", metavar="DESTINATION", nargs="?",
                   help="push under another name (like skopeo copy)")
    p.add_argument("-q", "--quiet", action="store_true", help=_per_skin(
        skin, "print only the pushed digest", "no progress output"))
    p.add_argument("--digestfile", metavar="FILE",
                   help="write the pushed manifest digest to this file")
    _tls_verify(p)


def add_login_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer login`` / ``%login``."""
    p.add_argument("registry", metavar="SERVER", nargs="?", default="docker.io")
    p.add_argument("-u", "--username", metavar="USER")
    p.add_argument("--password-env", metavar="VAR",
                   help="read the password from this environment variable (CI, JupyterHub "
                        "secrets) instead of asking")
    if skin == CLI:
        # skin-specific: a password written on a magic's line would be saved in the notebook
        p.add_argument("-p", "--password", help="insecure: prefer --password-stdin")
        # skin-specific: a kernel has no standard input to pipe a password into
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin")
    _tls_verify(p)


def add_logout_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer logout`` / ``%logout``."""
    p.add_argument("registry", metavar="SERVER", nargs="?", default="docker.io")


# ---------------------------------------------------------------------------- local images
def add_images_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer images`` / ``%images``."""
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate ids")


def add_inspect_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer inspect`` / ``%inspect``."""
    if skin == CLI:
        p.add_argument("names", nargs="+", metavar="IMAGE")
    else:
        p.add_argument("ref", metavar="IMAGE", help="an image name or a variable holding an Image")
    p.add_argument("-f", "--format",
                   help="'json' (default) or a {{.Field}} path like {{.Config.Cmd}}")
    p.add_argument("--provenance", action="store_true",
                   help="the full build provenance statements (in-toto JSON) instead")
    if skin == MAGIC:
        # skin-specific: a terminal shows no HTML
        p.add_argument("--html", action="store_true",
                       help="an HTML <pre> instead of the JSON viewer")


# ---------------------------------------------------------------------------- layer insight
def _ratio(text: str) -> float | None:
    """A ratio (``0.9``, ``90%``) or ``disabled``."""
    if text.strip().lower() == "disabled":
        return None
    try:
        return api.parse_ratio(text)
    except NbcontainerError as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _bytes(text: str) -> int | None:
    """A size (``20MB``, ``1GiB``) or ``disabled``."""
    if text.strip().lower() == "disabled":
        return None
    try:
        return api.parse_bytes(text)
    except NbcontainerError as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _check_args(p: argparse.ArgumentParser) -> None:
    """dive's CI thresholds (defaults from ``--ci-config``, else dive's own) and the junk
    rules to leave out."""
    p.add_argument("--ci-config", metavar="FILE", default=None,
                   help="dive's .dive-ci rules file (default: ./.dive-ci when it exists)")
    p.add_argument("--lowest-efficiency", type=_ratio, default=argparse.SUPPRESS,
                   metavar="RATIO", help="fail below this efficiency (default 0.9; 'disabled')")
    p.add_argument("--highest-wasted-bytes", type=_bytes, default=argparse.SUPPRESS,
                   metavar="SIZE", help="fail above this much waste, e.g. 20MB (default: "
                                        "disabled)")
    p.add_argument("--highest-user-wasted-percent", type=_ratio, default=argparse.SUPPRESS,
                   metavar="RATIO", help="fail when waste is this share of the image's own "
                                         "layers or more (default 0.1; 'disabled')")
    p.add_argument("--ignore", action="append", default=[], metavar="RULE",
                   help="leave a junk rule out (repeatable): its id as the report names it, "
                        "e.g. apt-cache, pip-cache, tmp")


def check_thresholds(args: argparse.Namespace) -> dict[str, Any]:
    """The thresholds given on the command line (only those: the rest come from the
    ``.dive-ci`` file or dive's defaults)."""
    names = ("lowest_efficiency", "highest_wasted_bytes", "highest_user_wasted_percent")
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def add_check_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer check`` (the magic's spelling is ``%layers --check``)."""
    p.add_argument("ref", metavar="IMAGE", help="the image to check")
    _check_args(p)


def add_layers_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer layers`` / ``%layers``."""
    p.add_argument("ref", metavar="IMAGE", help=_per_skin(
        skin, "the image", "an image name or a variable holding an Image"))
    p.add_argument("--check", action="store_true",
                   help="dive's CI mode: the rules' verdict (a failed rule fails the "
                        + _per_skin(skin, "command: exit code 1)", "cell)"))
    _check_args(p)
    if skin == MAGIC:
        # skin-specific: a terminal has no widgets
        p.add_argument("--widget", action="store_true",
                       help="a live explorer (the static view is kept for saved notebooks)")


# ---------------------------------------------------------------------------- system
def add_info_args(p: argparse.ArgumentParser, skin: Skin) -> None:
    """``nbcontainer info`` / ``%nbcontainer_info``."""
    if skin == CLI:  # skin-specific: the magic's result carries its JSON itself
        p.add_argument("-f", "--format", choices=("text", "json"), default="text")
    p.add_argument("--isolation", choices=ISOLATIONS, default=None,
                   help="what this rung would give, instead of the automatic choice")


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag a parser accepts (``-h``/``--help`` aside): what the parity test compares."""
    return {s for a in parser._actions if not isinstance(a, argparse._HelpAction)
            for s in a.option_strings}


__all__: Sequence[str] = [
    "CLI", "ISOLATIONS", "MAGIC", "PROGRESS_MODES", "ProvenanceFlag", "add_build_args",
    "add_check_args", "add_images_args", "add_info_args", "add_inspect_args",
    "add_kernel_install_args", "add_kernel_list_args", "add_kernel_remove_args",
    "add_layers_args", "add_login_args", "add_logout_args", "add_pull_args", "add_push_args",
    "add_run_args", "bool_value", "check_thresholds", "entrypoint", "kernel_options",
    "key_value", "option_strings", "pairs",
    "progress_mode", "stray_word",
]
