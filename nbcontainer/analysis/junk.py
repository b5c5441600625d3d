"""Junk rules: bytes an image carries that nothing in it needs, each rule a small record.

A rule says which paths it matches (globs over image paths: ``*`` stays within one name,
``**`` crosses directories), why those bytes are waste and the Dockerfile change that
removes them. The first matching rule wins, so the specific caches come before the general
"package archive" and ``/tmp`` rules. Two rules match no path: ``shadowed`` (a copy a later
layer overwrote or deleted) and ``duplicate`` (the same content stored again in a later
layer); :mod:`.insight` applies them.

``floor`` is the size below which a rule reports without flagging: a cache that exists is
junk at any size, while a few kB of package-manager bookkeeping that a later layer rewrites
(``/var/lib/dpkg/status``) is churn every apt install makes (dive's CI mode raises false
alarms on small images for exactly that reason).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

KB, MB = 1000, 1000 * 1000


@dataclass(frozen=True, slots=True)
class JunkRule:
    """One kind of waste: ``id`` (stable, for ``check --ignore`` and tests), a short
    ``title``, the ``paths`` it matches, ``why`` the bytes are waste, the ``fix`` in the
    Dockerfile, and the ``floor`` below which it does not flag."""

    id: str
    title: str
    paths: tuple[str, ...]
    why: str
    fix: str
    floor: int = 0


RULES: tuple[JunkRule, ...] = (
    JunkRule(
        "apt-cache", "apt package cache", ("var/cache/apt/**",),
        "downloaded .deb files (archives/) and apt's binary indexes (pkgcache.bin, "
        "srcpkgcache.bin): apt rebuilds them on the next update",
        "end the RUN that installs with `&& apt-get clean` (or mount a cache: "
        "`RUN --mount=type=cache,target=/var/cache/apt …`)"),
    JunkRule(
        "apt-lists", "apt package lists", ("var/lib/apt/lists/**",),
        "the package indexes `apt-get update` downloads: stale once the image is built, and "
        "every install starts with an update anyway",
        "end the RUN that runs `apt-get update` with `&& rm -rf /var/lib/apt/lists/*`"),
    JunkRule(
        "apk-cache", "apk package cache", ("var/cache/apk/**",),
        "Alpine's downloaded packages and indexes",
        "install with `apk add --no-cache …`"),
    JunkRule(
        "dnf-cache", "dnf/yum package cache",
        ("var/cache/dnf/**", "var/cache/yum/**", "var/cache/zypp/**"),
        "downloaded RPMs and repository metadata",
        "end the RUN that installs with `&& dnf clean all` (`yum clean all`, `zypper clean "
        "--all`)"),
    JunkRule(
        "pip-cache", "pip cache",
        ("root/.cache/pip/**", "home/*/.cache/pip/**", "tmp/pip-*/**"),
        "pip's HTTP and wheel cache: only a later `pip install` on this machine could use it",
        "`pip install --no-cache-dir …` (or `RUN --mount=type=cache,target=/root/.cache/pip "
        "pip install …`)"),
    JunkRule(
        "npm-cache", "npm cache", ("root/.npm/**", "home/*/.npm/**"),
        "npm's content cache and logs",
        "end the RUN with `&& npm cache clean --force` (or `RUN --mount=type=cache,"
        "target=/root/.npm …`)"),
    JunkRule(
        "yarn-cache", "yarn cache",
        ("usr/local/share/.cache/yarn/**", "root/.cache/yarn/**", "home/*/.cache/yarn/**",
         "root/.yarn/berry/cache/**"),
        "yarn's package cache",
        "end the RUN with `&& yarn cache clean`"),
    JunkRule(
        "conda-pkgs", "conda package cache",
        ("opt/*conda*/pkgs/**", "opt/*mamba*/pkgs/**", "root/*conda*/pkgs/**",
         "root/*mamba*/pkgs/**", "home/*/*conda*/pkgs/**", "root/.conda/pkgs/**"),
        "downloaded and extracted conda packages, kept after they were linked into the "
        "environment",
        "end the RUN with `&& conda clean --all --yes` (`mamba clean -afy`)"),
    JunkRule(
        "package-archives", "leftover package archives",
        ("*.deb", "*.rpm", "*.apk", "*.whl", "*.tar.gz", "*.tgz", "*.tar.xz", "*.tar.bz2",
         "*.zip", "root/**.deb", "root/**.rpm", "root/**.whl", "root/**.tar.gz",
         "root/**.tgz", "root/**.zip", "opt/*.deb", "opt/*.rpm", "opt/*.whl",
         "opt/*.tar.gz", "opt/*.tgz", "opt/*.tar.xz", "opt/*.zip", "usr/src/*.tar.*",
         "usr/local/src/*.tar.*", "var/cache/**.deb", "var/cache/**.rpm", "srv/**.deb"),
        "installers and source archives that were unpacked or installed and then left behind",
        "download, install and delete them in one RUN, or use a build stage (or "
        "`RUN --mount=type=bind` for a file from the context)"),
    JunkRule(
        "tmp", "temporary files", ("tmp/**", "var/tmp/**"),
        "files a build step left in /tmp or /var/tmp: nothing reads them later",
        "delete them in the RUN that made them (`&& rm -rf /tmp/*`), or use "
        "`RUN --mount=type=tmpfs,target=/tmp …`", floor=4 * KB),
)
"""The path rules, in matching order."""

SHADOWED = JunkRule(
    "shadowed", "overwritten or deleted later", (),
    "a later layer overwrote or deleted these files, but the earlier layer still carries "
    "their bytes: a layer can only add to an image",
    "create and remove them in the same RUN (or in a build stage and COPY --from only what "
    "is needed)", floor=1 * MB)

DUPLICATE = JunkRule(
    "duplicate", "same content in two layers", (),
    "a later layer stores bytes an earlier layer already holds (at another path, or "
    "rewritten unchanged by chmod/chown/touch)",
    "copy it once: `COPY --chown/--chmod` instead of a later chown/chmod RUN, or one COPY "
    "from a build stage", floor=1 * MB)

ALL_RULES: tuple[JunkRule, ...] = (*RULES, SHADOWED, DUPLICATE)
BY_ID = {r.id: r for r in ALL_RULES}


def glob_regex(glob: str) -> str:
    """A path glob as a regular expression: ``**`` any characters, ``*`` any characters
    but ``/``, ``?`` one such character."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


class Matcher:
    """All path rules as one regular expression (one ``match`` per path, whatever the
    number of rules): a named group per rule, in rule order."""

    def __init__(self, rules: Sequence[JunkRule] = RULES) -> None:
        self.rules = {f"r{i}": r for i, r in enumerate(rules)}
        parts = [f"(?P<{name}>{'|'.join(glob_regex(g) for g in r.paths)})"
                 for name, r in self.rules.items() if r.paths]
        self._regex = re.compile("(?:" + "|".join(parts) + r")\Z")

    def rule(self, path: str) -> JunkRule | None:
        """The first rule whose globs match ``path`` (an image path: no leading ``/``)."""
        m = self._regex.match(path)
        return self.rules[m.lastgroup] if m is not None and m.lastgroup else None


MATCHER = Matcher()
