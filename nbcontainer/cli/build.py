"""``nbcontainer build``: docker build's flags (from the shared spec), BuildKit's plain log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import api, options
from ..errors import NbcontainerError
from ..wording import kernel_installed
from .command import Command, spec
from .render import PlainRenderer, out


def _context(a: argparse.Namespace) -> str:
    """The context: the positional, or the word ``--provenance`` did not take."""
    stray = options.stray_word(a)
    if stray is None:
        return str(a.context)
    if a.context != ".":
        raise NbcontainerError(f"build takes one context, got {stray!r} and {a.context!r}")
    return stray


def _run_build(a: argparse.Namespace, st: api.Store) -> int:
    context = _context(a)
    quiet = options.progress_mode(a) == "quiet"
    img = api.build(Path(a.file or Path(context) / "Dockerfile"), context, tags=a.tag,
                    build_args=options.pairs(a.build_arg), target=a.target,
                    no_cache=a.no_cache, store=st, secrets=a.secret, platform=a.platform,
                    ssh=a.ssh, cache_from=a.cache_from, cache_to=a.cache_to,
                    provenance=a.provenance or False, output=a.output, iidfile=a.iidfile,
                    isolation=a.isolation, host_ca=a.host_ca,
                    progress=None if quiet else PlainRenderer(),
                    **options.hardening(a))  # type: ignore[arg-type]
    if a.kernel:
        if isinstance(img, api.ImageIndex):
            raise NbcontainerError("--kernel needs one image, not an index of platforms",
                                   hint="build for one --platform")
        kernel = api.install_kernel(img, name=a.kernel, **options.kernel_options(a))
        if not quiet:
            sys.stderr.write(kernel_installed(kernel) + "\n")
    if quiet:
        out(str(img.id))
        return 0
    built = f"Successfully built {img.id.short}"
    if isinstance(img, api.ImageIndex):  # each platform's image, then the index (its id)
        built = "".join(f"Built {plat} {i.digest}\n" for plat, i in
                        zip(img.platforms, img.images, strict=True))
        built += f"Successfully built index {img.digest}"
    out(built + "".join(f"\nSuccessfully tagged {api.familiar_name(t)}" for t in a.tag))
    return 0


COMMANDS: list[Command] = [
    Command("build", "build an image from a Dockerfile", spec(options.add_build_args),
            _run_build),
]
