"""``%load_ext nbcontainer``: the magics, thin calls into ``nbcontainer.api``.

Conventions (IPython's own, see ``IPython/core/magics/osm.py``): ``magic_arguments`` for help
and parsing (``%%dockerfile?``), :class:`UsageError` for bad arguments, results returned as
objects that display themselves (so ``_`` and ``Out[n]`` hold them). IPython expands ``$var``
and ``{expr}`` on the magic line; a cell body is never expanded, so Dockerfile ``$VAR`` stays
Dockerfile syntax. Our errors show as a short message (see ``errors.py``), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .. import api
from ..errors import NbcontainerError
from ..image import Image
from . import errors
from .progress import ProgressArea
from .results import ImageList, InfoView, Message

ISOLATIONS = ("auto", "full", "reduced", "ptrace", "none")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    """``K=V`` options; a bare ``K`` takes the kernel's environment value (docker's rule)."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k:
            raise UsageError(f"{what} {item!r}: expected KEY=VALUE")
        if sep:
            out[k] = v
        elif k in os.environ:
            out[k] = os.environ[k]
    return out


def _bool(text: str) -> bool:
    try:
        return api.parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@contextlib.contextmanager
def guarded(what: str) -> Iterator[None]:
    """Our errors as short messages; Ctrl-C as one line after the work cleaned up."""
    try:
        yield
    except NbcontainerError as exc:
        raise errors.short(exc) from None
    except KeyboardInterrupt:
        raise errors.Interrupted(f"{what} stopped; nothing was tagged or half-written") \
            from None
    except OSError as exc:  # disk full, permissions: one line too
        where = f" ({exc.filename})" if exc.filename else ""
        raise errors.CellError(f"{exc.strerror or exc}{where}") from None


@magics_class
class ContainerMagics(Magics):
    """Build, inspect, move and run OCI images from a notebook, without a Docker daemon."""

    # ------------------------------------------------------------------ helpers
    def _image(self, name: str) -> Image:
        """An image by reference, or a variable of the notebook holding one (``%layers img``)."""
        value = self.shell.user_ns.get(name) if name.isidentifier() else None
        if isinstance(value, Image):
            return value
        with guarded("lookup"):
            return api.image(name)

    @staticmethod
    def _args(method: Any, line: str) -> argparse.Namespace:
        """Parse like a shell (IPython's own splitter keeps the quotes: ``'exit 3'``)."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{exc} in {line!r}") from None
        return method.parser.parse_args(argv)

    # ------------------------------------------------------------------ build
    @magic_arguments()
    @argument("-t", "--tag", action="append", default=[], metavar="TAG",
              help="name:tag for the image (repeatable)")
    @argument("-f", "--file", metavar="NAME",
              help="save the cell as NAME in the context and build from it (an empty cell "
                   "builds the existing file)")
    @argument("--context", metavar="DIR", default=None,
              help="build context (default: the notebook's working directory; "
                   ".dockerignore is honoured)")
    @argument("--build-arg", action="append", default=[], metavar="K=V",
              help="set a build-time ARG (repeatable)")
    @argument("--target", metavar="STAGE", help="build this stage")
    @argument("--no-cache", action="store_true", help="do not use the build cache")
    @argument("--secret", action="append", default=[], metavar="id=ID,src=FILE|env=VAR",
              help="expose a secret to RUN --mount=type=secret (never stored in the image)")
    @argument("--platform", metavar="P",
              help="target platform(s), comma-separated: several give an image index")
    @argument("--cache-to", action="append", default=[],
              metavar="type=registry,ref=R[,mode=max]|type=inline",
              help="export the build cache to a registry, or inline in the image")
    @argument("--cache-from", action="append", default=[], metavar="REF",
              help="use the build cache in a registry (a cache or an inline-cache image)")
    @argument("--provenance", nargs="?", const="mode=min", default=None,
              metavar="true|false|mode=min|mode=max",
              help="attach a SLSA provenance statement to the image (OCI referrer)")
    @argument("--isolation", choices=ISOLATIONS, default=None,
              help="how RUN steps are contained (default: $NBCONTAINER_ISOLATION, else the "
                   "strongest rung that works here; see %%nbcontainer_info)")
    @argument("-q", "--quiet", action="store_true", help="no progress output")
    @cell_magic
    def dockerfile(self, line: str, cell: str) -> Image:
        """Build the cell (a Dockerfile) into an image; the image is the cell's result."""
        a = self._args(self.dockerfile, line)
        context = Path(a.context) if a.context else Path.cwd()
        if not context.is_dir():
            raise UsageError(f"--context {str(context)!r} is not a directory")
        source: str | Path = cell
        if a.file:
            path = context / a.file
            if cell.strip():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(cell)
            elif not path.is_file():
                raise UsageError(f"the cell is empty and {str(path)!r} does not exist")
            source = path
        elif not cell.strip():
            raise UsageError("the cell is empty: write a Dockerfile below %%dockerfile")
        args = _pairs(a.build_arg, "--build-arg")
        with guarded("build"), ProgressArea("Building", enabled=not a.quiet) as progress:
            return api.build(source, context, tags=a.tag, build_args=args, target=a.target,
                             no_cache=a.no_cache, progress=progress, secrets=a.secret,
                             platform=a.platform, cache_from=a.cache_from,
                             cache_to=a.cache_to, provenance=a.provenance or False,
                             isolation=a.isolation)

    # ------------------------------------------------------------------ registries
    @magic_arguments()
    @argument("ref", metavar="IMAGE", help="a local image (its name is the destination)")
    @argument("dest", metavar="DESTINATION", nargs="?", help="push under another name")
    @argument("-q", "--quiet", action="store_true", help="no progress output")
    @argument("--tls-verify", type=_bool, default=None, metavar="BOOL")
    @line_magic
    def push(self, line: str) -> Message:
        """Upload an image to a registry; blobs the registry has are skipped or mounted."""
        a = self._args(self.push, line)
        img = self._image(a.ref)
        dest = a.dest or (str(img.ref) if img.ref else None)
        if dest is None:
            raise UsageError("the image has no name: give a DESTINATION")
        with guarded("push"), ProgressArea(f"Pushing {dest}", kind="transfer",
                                           enabled=not a.quiet) as progress:
            digest = img.push(dest, progress=progress, tls_verify=a.tls_verify)
        return Message(f"Pushed {dest}@{digest}")

    @magic_arguments()
    @argument("ref", metavar="NAME[:TAG|@DIGEST]")
    @argument("--platform", metavar="P", help="os/arch[/variant] to pick from an index")
    @argument("-a", "--all-platforms", action="store_true", help="keep every platform")
    @argument("-q", "--quiet", action="store_true", help="no progress output")
    @argument("--tls-verify", type=_bool, default=None, metavar="BOOL")
    @line_magic
    def pull(self, line: str) -> Image:
        """Download an image from a registry; the image is the cell's result."""
        a = self._args(self.pull, line)
        with guarded("pull"), ProgressArea(f"Pulling {a.ref}", kind="transfer",
                                           enabled=not a.quiet) as progress:
            return api.pull(a.ref, platform=a.platform, all_platforms=a.all_platforms,
                            progress=progress, tls_verify=a.tls_verify)

    @magic_arguments()
    @argument("registry", metavar="REGISTRY", nargs="?", default="docker.io")
    @argument("-u", "--username", metavar="USER")
    @argument("--password-env", metavar="VAR",
              help="read the password from this environment variable (CI, JupyterHub "
                   "secrets) instead of asking")
    @argument("--tls-verify", type=_bool, default=None, metavar="BOOL")
    @line_magic
    def login(self, line: str) -> None:
        """Log in to a registry. The password is asked for (not echoed) and never stored in
        the notebook; credentials are saved like ``docker login`` does."""
        from getpass import getpass

        from .. import registry

        a = self._args(self.login, line)
        user = a.username or input("Username: ").strip()
        if not user:
            raise UsageError("a user name is required: -u USER")
        if a.password_env:
            password = os.environ.get(a.password_env, "")
            if not password:
                raise UsageError(f"environment variable {a.password_env} is empty or unset")
        else:
            password = getpass(f"Password for {user}@{a.registry}: ")
        with guarded("login"):
            registry.login(a.registry, user, password, tls_verify=a.tls_verify)
        del password
        print(f"Login Succeeded: {user}@{registry.registry_domain(a.registry)}")

    @magic_arguments()
    @argument("registry", metavar="REGISTRY", nargs="?", default="docker.io")
    @line_magic
    def logout(self, line: str) -> None:
        """Forget the saved credentials for a registry."""
        from .. import registry

        a = self._args(self.logout, line)
        with guarded("logout"):
            gone = registry.logout(a.registry)
        print(f"Removed login credentials for {a.registry}" if gone
              else f"Not logged in to {a.registry}")

    # ------------------------------------------------------------------ local images
    @magic_arguments()
    @line_magic
    def images(self, line: str) -> ImageList:
        """List the images in the local store."""
        self._args(self.images, line)
        with guarded("images"):
            return ImageList(api.images())

    @magic_arguments()
    @argument("ref", metavar="IMAGE", help="an image name or a variable holding an Image")
    @argument("--widget", action="store_true",
              help="a live explorer (the static tree is kept for saved notebooks)")
    @line_magic
    def layers(self, line: str) -> Any:
        """The layers of an image (dive's view): sizes, commands, added/modified/removed
        files per layer, efficiency and reclaimable space."""
        a = self._args(self.layers, line)
        img = self._image(a.ref)
        with guarded("layers"):
            if a.widget:
                return img.widget()
            view = img.layer_view()
            view.tree  # noqa: B018 - read the layers now, inside the error guard
            return view

    @magic_arguments()
    @argument("ref", metavar="IMAGE")
    @argument("--html", action="store_true",
              help="an HTML <pre> whose layer digests link to the layer tree")
    @line_magic
    def manifest(self, line: str) -> Any:
        """The manifest, config (and index) as JSON, in its own output."""
        a = self._args(self.manifest, line)
        img = self._image(a.ref)
        with guarded("manifest"):
            return img.manifest_view(html=a.html)

    @magic_arguments()
    @argument("ref", metavar="IMAGE")
    @argument("--provenance", action="store_true",
              help="show the full build provenance statements (in-toto JSON)")
    @argument("--html", action="store_true", help="an HTML <pre> instead of the JSON viewer")
    @line_magic
    def inspect(self, line: str) -> Any:
        """``docker inspect``'s JSON (plus the manifest, and a ``Provenance`` summary when a
        statement is attached)."""
        from .views import ManifestView

        a = self._args(self.inspect, line)
        img = self._image(a.ref)
        with guarded("inspect"):
            if a.provenance:
                from ..store.referrers import statements

                docs = [doc for _, doc in statements(img.store, img.digest)]
                if not docs:
                    raise UsageError(f"no provenance attached to {a.ref}: build it with "
                                     "%%dockerfile --provenance")
                return ManifestView({"statements": docs}, f"{img.name} provenance",
                                    html=a.html)
            return ManifestView(img.inspect(), img.name, html=a.html)

    @magic_arguments()
    @argument("a", metavar="IMAGE_A")
    @argument("b", metavar="IMAGE_B")
    @line_magic
    def image_diff(self, line: str) -> Any:
        """Files added, changed and removed going from IMAGE_A to IMAGE_B."""
        a = self._args(self.image_diff, line)
        first, second = self._image(a.a), self._image(a.b)
        with guarded("diff"):
            return first.diff(second)

    @magic_arguments()
    @argument("ref", metavar="IMAGE")
    @argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND",
              help="command and arguments (default: the image's entrypoint/cmd)")
    @argument("-e", "--env", action="append", default=[], metavar="K=V")
    @argument("--network", choices=("host", "none"), default="host")
    @argument("-u", "--user", metavar="USER[:GROUP]")
    @argument("-w", "--workdir", metavar="DIR")
    @argument("--entrypoint", metavar="CMD")
    @argument("--isolation", choices=ISOLATIONS, default=None,
              help="how the container is contained (see %%nbcontainer_info)")
    @line_magic
    def container_run(self, line: str) -> None:
        """Run a container from an image (like ``docker run --rm``), output streamed into
        the cell. A non-zero exit status fails the cell."""
        a = self._args(self.container_run, line)
        img = self._image(a.ref)
        env = _pairs(a.env, "-e")
        sys.stdout.flush()
        with guarded("run"):
            code = img.run(a.cmd or None, env=env, network=a.network, user=a.user,
                           workdir=a.workdir,
                           entrypoint=[a.entrypoint] if a.entrypoint else None,
                           output=_write_stdout, isolation=a.isolation)
        sys.stdout.flush()
        if code:
            raise errors.CellError(f"the container exited with status {code}")

    @magic_arguments()
    @argument("--isolation", choices=ISOLATIONS, default=None,
              help="show what this rung would give instead of the automatic choice")
    @line_magic
    def nbcontainer_info(self, line: str) -> InfoView:
        """The store and how builds are isolated here: the rung builds will use, each missing
        rung with its reason and remedy, the hardening in force, the probe's findings."""
        a = self._args(self.nbcontainer_info, line)
        with guarded("info"):
            return InfoView(api.info(isolation=a.isolation).to_dict())

    # ------------------------------------------------------------------ environments
    @magic_arguments()
    @argument("-t", "--tag", action="append", default=[], metavar="TAG")
    @argument("--base", metavar="IMAGE",
              help="base image (default: python:<this kernel's version>-slim)")
    @argument("-p", "--package", action="append", default=[], metavar="NAME",
              help="pin only these distributions (default: all installed in the kernel)")
    @argument("--notebook", metavar="PATH", help="the notebook file to include")
    @argument("-o", "--output", metavar="DIR", default="freeze",
              help="where the Dockerfile and requirements.txt are written")
    @argument("--wheels", action="store_true",
              help="download the wheels here (with this kernel's pip settings) and install "
                   "them offline in the build")
    @argument("--no-build", action="store_true", help="only write the Dockerfile")
    @argument("-q", "--quiet", action="store_true", help="no build progress")
    @line_magic
    def freeze_image(self, line: str) -> Any:
        """Write (and build) a Dockerfile that reproduces this kernel's environment."""
        from .freeze import freeze

        a = self._args(self.freeze_image, line)
        with guarded("freeze"):
            return freeze(tags=a.tag, base=a.base, packages=a.package, notebook=a.notebook,
                          output=Path(a.output), build=not a.no_build, quiet=a.quiet,
                          wheels=a.wheels, user_ns=self.shell.user_ns)


def _write_stdout(chunk: bytes) -> None:
    sys.stdout.write(chunk.decode("utf-8", "replace"))
    sys.stdout.flush()


def register(ipython: Any) -> list[str]:
    """Register the magics, skipping any name that is already taken (IPython's own magics
    and other extensions win); returns the names registered."""
    magics = ContainerMagics(shell=ipython)
    taken = ipython.magics_manager.magics
    registered = []
    for kind in ("line", "cell"):
        for name in list(magics.magics[kind]):
            owner = getattr(taken[kind].get(name), "__self__", None)
            if name in taken[kind] and not isinstance(owner, ContainerMagics):
                warnings.warn(f"nbcontainer: %{name} is already defined; not replacing it",
                              stacklevel=2)
                del magics.magics[kind][name]
            else:
                registered.append(("%%" if kind == "cell" else "%") + name)
    ipython.register_magics(magics)
    return registered
