"""Images as build sources: ``FROM``, ``COPY --from`` and ``--mount from=`` an image.

A base is taken from the store, pulled from its registry when missing (a numbered
``[internal] pull`` step), and turned into the image state a stage starts from. Every base
a build reads is recorded with its digest: provenance names them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ...errors import BuildError, ImageNotFound, NbcontainerError
from ...oci.config import ContainerConfig
from ...oci.platform import Platform
from ...store import Store, StoredImage
from ...store.buildcache import step_key
from ..state import ImageState, LayerRef

if TYPE_CHECKING:
    from ..reporter import StepReporter

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

BaseKey = tuple[str, str]  # (image name, platform)


class BaseImages:
    """Resolves image names to stage states, once per (name, platform) and build."""

    def __init__(self, store: Store, reporter: StepReporter) -> None:
        self.store = store
        self.reporter = reporter
        self._lock = threading.Lock()
        self._states: dict[BaseKey, tuple[ImageState, str]] = {}
        self.used: dict[BaseKey, StoredImage] = {}  # what provenance records

    def state(self, name: str, platform: Platform) -> tuple[ImageState, str]:
        """(state, cache key) of image ``name`` for ``platform`` (an index resolves to it)."""
        key = (name, str(platform))
        with self._lock:
            found = self._states.get(key)
        if found is not None:
            return found
        stored = self._stored(name, platform)
        result = (image_state(name, stored), step_key("", "image", str(stored.digest)))
        with self._lock:
            self.used[key] = stored
            self._states[key] = result
        return result

    def _stored(self, name: str, platform: Platform) -> StoredImage:
        try:
            return self.store.image(name, platform)
        except ImageNotFound:
            pass
        from ...registry import pull

        with self.reporter.internal(f"pull {name}"):
            try:
                pull(self.store, name, platform)
            except NbcontainerError as exc:
                raise BuildError(f"failed to resolve source metadata for {name}: "
                                 f"{exc.message}", hint=exc.hint) from exc
        return self.store.image(name, platform)


def image_state(name: str, stored: StoredImage) -> ImageState:
    """The state a stage built ``FROM`` ``stored`` starts in."""
    cfg = stored.config
    if len(cfg.diff_ids) != len(stored.manifest.layers):
        raise BuildError(f"image {name}: config has {len(cfg.diff_ids)} diff_ids for "
                         f"{len(stored.manifest.layers)} layers")
    layers = tuple(LayerRef(d.digest, diff, d.size, d.media_type)
                   for d, diff in zip(stored.manifest.layers, cfg.diff_ids, strict=True))
    config = cfg.config
    if "PATH" not in config.env_dict():  # BuildKit and buildah give a base a default PATH
        config = config.with_env("PATH", DEFAULT_PATH)
    return ImageState(architecture=cfg.architecture, os=cfg.os, variant=cfg.variant,
                      config=config, layers=layers, history=cfg.history, created=cfg.created,
                      author=cfg.author)


def scratch_state(platform: Platform) -> tuple[ImageState, str]:
    """``FROM scratch``: no layers, Docker's default PATH."""
    state = ImageState(architecture=platform.architecture, os=platform.os,
                       variant=platform.variant or None,
                       config=ContainerConfig(env=(f"PATH={DEFAULT_PATH}",)))
    return state, step_key("", "scratch", str(platform))
