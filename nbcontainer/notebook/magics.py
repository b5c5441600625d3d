"""``%load_ext nbcontainer``: the magics, thin calls into ``nbcontainer.api``.

Conventions (IPython's own, see ``IPython/core/magics/osm.py``): ``magic_arguments`` for help
and parsing (``%%dockerfile?``), :class:`UsageError` for bad arguments, results returned as
objects that display themselves (so ``_`` and ``Out[n]`` hold them). IPython expands ``$var``
and ``{expr}`` on the magic line; a cell body is never expanded, so Dockerfile ``$VAR`` stays
Dockerfile syntax. The flags the CLI has too come from the shared spec (``options.py``). No
failure shows a traceback (see ``errors.py``) unless ``NBCONTAINER_DEBUG`` is set.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import ArgDecorator, argument, magic_arguments

from .. import api, options
from ..errors import NbcontainerError, SourceExcerpt, bug_message
from ..image import Image, ImageIndex
from ..wording import kernel_installed, kernel_rows
from . import display, errors
from .progress import PlainProgress, ProgressArea
from .results import CheckResult, ImageList, InfoView, Message

F = TypeVar("F", bound=Callable[..., Any])


class spec(ArgDecorator):  # lower case, like IPython's own ``argument`` decorator
    """A magic's arguments from the option spec the CLI shares (``options.py``): IPython's
    ``magic_arguments`` parser is an argparse parser, so the spec adds to it directly."""

    def __init__(self, add: Callable[[argparse.ArgumentParser, options.Skin], None]) -> None:
        self.add = add

    def add_to_parser(self, parser: argparse.ArgumentParser, group: Any) -> None:
        self.add(parser, options.MAGIC)


@contextlib.contextmanager
def _short_errors(what: str) -> Iterator[None]:
    """Our errors as short messages; Ctrl-C as one line after the work cleaned up; anything
    unexpected as one line saying it is a bug. ``NBCONTAINER_DEBUG`` keeps the traceback."""
    try:
        yield
    except (UsageError, errors.CellError):
        raise
    except NbcontainerError as exc:
        raise errors.short(exc) from None
    except KeyboardInterrupt as exc:
        if errors.is_short(exc):
            raise
        raise errors.Interrupted(f"{what} stopped; nothing was tagged or half-written") \
            from None
    except OSError as exc:  # disk full, permissions: one line too
        where = f" ({exc.filename})" if exc.filename else ""
        raise errors.CellError(f"{exc.strerror or exc}{where}") from None
    except Exception as exc:
        if os.environ.get("NBCONTAINER_DEBUG") or errors.is_short(exc):
            raise
        raise errors.InternalError(bug_message(what, exc, errors.DEBUG_HOW)) from exc


def guarded(what: str) -> Callable[[F], F]:
    """Run a whole magic under :func:`_short_errors`: no failure shows a traceback."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kw: Any) -> Any:
            with _short_errors(what):
                return fn(*args, **kw)
        return run  # type: ignore[return-value]
    return wrap


def _progress(args: argparse.Namespace, title: str) -> ProgressArea | PlainProgress:
    """``--progress``: the live area (auto), BuildKit's plain log in the cell, or nothing."""
    mode = options.progress_mode(args)
    if mode == "plain":
        return PlainProgress()
    return ProgressArea(title, enabled=mode == "auto")


@magics_class
class ContainerMagics(Magics):
    """Build, inspect, move and run OCI images from a notebook, without a Docker daemon."""

    # ------------------------------------------------------------------ helpers
    def _image(self, name: str) -> Image:
        """An image by reference, or a variable of the notebook holding one (``%layers img``)."""
        value = self._user_ns().get(name) if name.isidentifier() else None
        if isinstance(value, Image):
            return value
        return api.image(name)

    def _user_ns(self) -> dict[str, Any]:
        """The notebook's variables (the magics are always registered with a shell)."""
        assert self.shell is not None
        ns: dict[str, Any] = self.shell.user_ns
        return ns

    @staticmethod
    def _args(method: Any, line: str) -> argparse.Namespace:
        """Parse like a shell (IPython's own splitter keeps the quotes: ``'exit 3'``)."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{exc} in {line!r}") from None
        parsed: argparse.Namespace = method.parser.parse_args(argv)
        return parsed

    # ------------------------------------------------------------------ build
    @magic_arguments()
    @spec(options.add_build_args)
    @cell_magic
    @guarded("%%dockerfile")
    def dockerfile(self, line: str, cell: str) -> Image | ImageIndex:
        """Build the cell (a Dockerfile) into an image; the image is the cell's result."""
        a = self._args(self.dockerfile, line)
        if options.stray_word(a) is not None:
            raise UsageError(f"unrecognized arguments: {options.stray_word(a)}")
        context = Path(a.context) if a.context else Path.cwd()
        if not context.is_dir():
            raise UsageError(f"--context {str(context)!r} is not a directory")
        source = _dockerfile_source(cell, context, a.file)
        try:
            with _progress(a, "Building") as progress:
                built = api.build(source, context, tags=a.tag,
                                  build_args=options.pairs(a.build_arg), target=a.target,
                                  no_cache=a.no_cache, progress=progress, secrets=a.secret,
                                  ssh=a.ssh, platform=a.platform, cache_from=a.cache_from,
                                  cache_to=a.cache_to, provenance=a.provenance or False,
                                  output=a.output, iidfile=a.iidfile,
                                  isolation=a.isolation, host_ca=a.host_ca,
                                  **options.hardening(a))  # type: ignore[arg-type]
        except NbcontainerError as exc:
            if source is cell:
                _number_as_in_cell(exc, f"%%dockerfile {line}".rstrip(), cell)
            raise
        if a.kernel:
            if isinstance(built, ImageIndex):
                raise UsageError("--kernel needs one image, not an index of platforms")
            kernel = api.install_kernel(built, name=a.kernel, **options.kernel_options(a))
            print(kernel_installed(kernel))
        return built

    # ------------------------------------------------------------------ registries
    @magic_arguments()
    @spec(options.add_push_args)
    @line_magic
    @guarded("%push")
    def push(self, line: str) -> Message:
        """Upload an image to a registry; blobs the registry has are skipped or mounted."""
        a = self._args(self.push, line)
        img = self._image(a.ref)
        dest = a.dest or (str(img.ref) if img.ref else None)
        if dest is None:
            raise UsageError("the image has no name: give a DESTINATION")
        with ProgressArea(f"Pushing {dest}", kind="transfer", enabled=not a.quiet) as progress:
            digest = img.push(dest, progress=progress, tls_verify=a.tls_verify,
                              digestfile=a.digestfile)
        return Message(f"Pushed {dest}@{digest}")

    @magic_arguments()
    @spec(options.add_pull_args)
    @line_magic
    @guarded("%pull")
    def pull(self, line: str) -> Image:
        """Download an image from a registry; the image is the cell's result."""
        a = self._args(self.pull, line)
        with ProgressArea(f"Pulling {a.ref}", kind="transfer", enabled=not a.quiet) as progress:
            return api.pull(a.ref, platform=a.platform, all_platforms=a.all_platforms,
                            progress=progress, tls_verify=a.tls_verify)

    @magic_arguments()
    @spec(options.add_login_args)
    @line_magic
    @guarded("%login")
    def login(self, line: str) -> None:
        """Log in to a registry. The password is asked for (not echoed) and never stored in
        the notebook; credentials are saved like ``docker login`` does."""
        from getpass import getpass

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
        api.login(a.registry, user, password, tls_verify=a.tls_verify)
        del password
        print(f"Login Succeeded: {user}@{api.registry_domain(a.registry)}")

    @magic_arguments()
    @spec(options.add_logout_args)
    @line_magic
    @guarded("%logout")
    def logout(self, line: str) -> None:
        """Forget the saved credentials for a registry."""
        a = self._args(self.logout, line)
        gone = api.logout(a.registry)
        print(f"Removed login credentials for {a.registry}" if gone
              else f"Not logged in to {a.registry}")

    # ------------------------------------------------------------------ local images
    @magic_arguments()
    @spec(options.add_images_args)
    @line_magic
    @guarded("%images")
    def images(self, line: str) -> ImageList | Message:
        """List the images in the local store."""
        a = self._args(self.images, line)
        rows = api.images()
        if a.quiet:
            ids = (str(r.id) if a.no_trunc else r.id.short for r in rows)
            return Message("\n".join(dict.fromkeys(ids)))
        return ImageList(rows, digests=a.digests, no_trunc=a.no_trunc)

    @magic_arguments()
    @spec(options.add_layers_args)
    @line_magic
    @guarded("%layers")
    def layers(self, line: str) -> Any:
        """The layers of an image (dive's view): sizes, commands, added/modified/removed
        files per layer, the junk found with its fixes, the efficiency, the pictures.
        ``--check``: dive's CI mode; a failed rule fails the cell."""
        a = self._args(self.layers, line)
        img = self._image(a.ref)
        if a.check:
            rules = api.ci_rules(a.ci_config, ignore=a.ignore, **options.check_thresholds(a))
            report = api.check(img, rules)
            if report.passed:
                return CheckResult(report)
            from IPython.display import display as show

            show(CheckResult(report))
            failed = ", ".join(r.rule for r in report.failed)
            raise errors.CellError(f"{img.name} fails {len(report.failed)} of "
                                   f"{len(report.results)} rules: {failed}")
        if a.widget:
            return display.widget(img)
        view = display.layer_view(img)
        view.tree  # noqa: B018 - read the layers now, inside the error guard
        return view

    @magic_arguments()
    @argument("ref", metavar="IMAGE")
    @argument("--html", action="store_true",
              help="an HTML <pre> whose layer digests link to the layer tree")
    @line_magic
    @guarded("%manifest")
    def manifest(self, line: str) -> Any:
        """The manifest, config (and index) as JSON, in its own output."""
        a = self._args(self.manifest, line)
        return display.manifest_view(self._image(a.ref), html=a.html)

    @magic_arguments()
    @spec(options.add_inspect_args)
    @line_magic
    @guarded("%inspect")
    def inspect(self, line: str) -> Any:
        """``docker inspect``'s JSON (plus the manifest, and a ``Provenance`` summary when a
        statement is attached)."""
        from .views import ManifestView

        a = self._args(self.inspect, line)
        img = self._image(a.ref)
        if a.provenance:
            docs = api.provenance(img)
            if not docs:
                raise UsageError(f"no provenance attached to {a.ref}: build it with "
                                 "%%dockerfile --provenance")
            return ManifestView({"statements": docs}, f"{img.name} provenance", html=a.html)
        doc = img.inspect()
        if a.format and a.format != "json":
            return Message(api.inspect_field(doc, _go_template(a.format)))
        return ManifestView(doc, img.name, html=a.html)

    @magic_arguments()
    @argument("a", metavar="IMAGE_A")
    @argument("b", metavar="IMAGE_B")
    @line_magic
    @guarded("%image_diff")
    def image_diff(self, line: str) -> Any:
        """Files added, changed and removed going from IMAGE_A to IMAGE_B."""
        a = self._args(self.image_diff, line)
        first, second = self._image(a.a), self._image(a.b)
        return first.diff(second)

    @magic_arguments()
    @spec(options.add_run_args)
    @line_magic
    @guarded("%container_run")
    def container_run(self, line: str) -> None:
        """Run a container from an image (like ``docker run --rm``), output streamed into
        the cell. A non-zero exit status fails the cell."""
        a = self._args(self.container_run, line)
        img = self._image(a.image)
        sys.stdout.flush()
        code = api.run(img, a.cmd or None, env=options.pairs(a.env), network=a.network,
                       user=a.user, workdir=a.workdir, entrypoint=options.entrypoint(a),
                       output=_write_stdout, isolation=a.isolation, volumes=a.volume,
                       mounts=a.mount, name=a.name, host_ca=a.host_ca,
                       **options.hardening(a))  # type: ignore[arg-type]
        sys.stdout.flush()
        if code:
            raise errors.CellError(f"the container exited with status {code}")

    @magic_arguments()
    @spec(options.add_kernel_install_args)
    @line_magic
    @guarded("%kernel_install")
    def kernel_install(self, line: str) -> Message:
        """Install an image as a Jupyter kernel (pinned to its digest); then switch to it
        with Kernel > Change Kernel."""
        a = self._args(self.kernel_install, line)
        kernel = api.install_kernel(self._image(a.image), name=a.name,
                                    **options.kernel_options(a))
        return Message(kernel_installed(kernel))

    @magic_arguments()
    @spec(options.add_kernel_list_args)
    @line_magic
    @guarded("%kernel_list")
    def kernel_list(self, line: str) -> Message:
        """The installed kernels from images."""
        self._args(self.kernel_list, line)
        return Message("\n".join(kernel_rows(api.kernels())))

    @magic_arguments()
    @spec(options.add_kernel_remove_args)
    @line_magic
    @guarded("%kernel_remove")
    def kernel_remove(self, line: str) -> Message:
        """Remove kernels from images (the images stay)."""
        a = self._args(self.kernel_remove, line)
        return Message("\n".join(f"Removed kernel {api.remove_kernel(n).name}"
                                 for n in a.names))

    @magic_arguments()
    @spec(options.add_info_args)
    @line_magic
    @guarded("%nbcontainer_info")
    def nbcontainer_info(self, line: str) -> InfoView:
        """The store and how builds are isolated here: the rung builds will use, each missing
        rung with its reason and remedy, the hardening in force, the probe's findings."""
        a = self._args(self.nbcontainer_info, line)
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
    @guarded("%freeze_image")
    def freeze_image(self, line: str) -> Any:
        """Write (and build) a Dockerfile that reproduces this kernel's environment."""
        from .freeze import freeze

        a = self._args(self.freeze_image, line)
        return freeze(tags=a.tag, base=a.base, packages=a.package, notebook=a.notebook,
                      output=Path(a.output), build=not a.no_build, quiet=a.quiet,
                      wheels=a.wheels, user_ns=self._user_ns())


def _go_template(text: str) -> str:
    """``-f {{.Os}}`` reaches the magic as ``{.Os}``: IPython's line expansion reads ``{{``
    as a literal ``{``. Put the second pair of braces back."""
    t = text.strip()
    if t.startswith("{") and not t.startswith("{{") and t.endswith("}"):
        return "{" + t + "}"
    return t


def _dockerfile_source(cell: str, context: Path, name: str | None) -> str | Path:
    """The cell's text, or with ``-f NAME`` the file it is saved as in the context (an empty
    cell builds the file already there)."""
    if name is None:
        if not cell.strip():
            raise UsageError("the cell is empty: write a Dockerfile below %%dockerfile")
        return cell
    path = context / name
    if cell.strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cell)
    elif not path.is_file():
        raise UsageError(f"the cell is empty and {str(path)!r} does not exist")
    return path


def _number_as_in_cell(exc: NbcontainerError, magic_line: str, cell: str) -> None:
    """Point an error's Dockerfile excerpt at the cell's own lines (the magic's line is line
    1): a step's excerpt, or one made for a syntax error (which knows its line)."""
    if exc.excerpt is not None:
        exc.excerpt = exc.excerpt.in_cell(magic_line)
        return
    line = getattr(exc, "line", None)
    if isinstance(line, int) and line > 0:
        end = getattr(exc, "end_line", None) or line
        exc.excerpt = SourceExcerpt(getattr(exc, "file", None) or "Dockerfile",
                                    tuple(cell.split("\n")), line, max(line, end)
                                    ).in_cell(magic_line)


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
