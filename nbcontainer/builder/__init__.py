"""The embedded builder: Dockerfile + context → OCI image, daemonless.

Organised by role, as BuildKit is: ``driver`` (the entry point), ``session`` (what one build
shares), ``solver`` (stages, scheduling, cache lookup), ``steps/`` (RUN, COPY/ADD, config
instructions), ``sources/`` (context, images, git, http), ``mounts`` and ``ssh`` (RUN
--mount), ``export`` (image, index, provenance), ``remote_cache`` (--cache-from/--cache-to).
"""

from .driver import BuildOutput, build

__all__ = ["BuildOutput", "build"]
