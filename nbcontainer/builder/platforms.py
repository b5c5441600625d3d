"""Target platforms of a build: parsing ``--platform`` lists and finding out whether a RUN
for a foreign platform can execute here (a binfmt_misc emulator such as qemu-user-static).

A foreign RUN works in the sandbox only when the kernel knows the emulator for the image's
ELF binaries *and* the entry has the F (fix-binary) flag: the interpreter is then opened at
registration time, so it stays usable after ``pivot_root`` into a rootfs that has no qemu.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError, ReferenceFormatError
from ..oci.platform import Platform

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# An override for the binfmt_misc directory (tests point it at an empty dir to get the
# "no emulation" answer end to end; it is never needed in normal use).
BINFMT_ENV = "NBCONTAINER_BINFMT_DIR"

# architecture → (ELF class 1=32/2=64, data 1=LE/2=BE, e_machine): enough of an ELF header
# to test it against a binfmt_misc entry's magic/mask, whatever the emulator is called.
_ELF = {
    "amd64": (2, 1, 62),
    "386": (1, 1, 3),
    "arm64": (2, 1, 183),
    "arm": (1, 1, 40),
    "ppc64le": (2, 1, 21),
    "s390x": (2, 2, 22),
    "riscv64": (2, 1, 243),
    "mips64le": (2, 1, 8),
    "loong64": (2, 1, 258),
}
# What an amd64 or arm64 CPU runs without help (BuildKit's list of native platforms).
_NATIVE_EXTRA = {"amd64": ("386",)}


def parse_platforms(spec: str | Platform | Sequence[str | Platform] | None) -> list[Platform]:
    """``linux/amd64,linux/arm64`` (or a list of such) → normalized platforms, duplicates
    dropped (``linux/aarch64`` and ``linux/arm64/v8`` are one platform, as in BuildKit);
    None or empty means the host."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return [Platform.host()]
    items: list[str | Platform] = []
    for part in [spec] if isinstance(spec, (str, Platform)) else list(spec):
        if isinstance(part, Platform):
            items.append(part)
        else:
            items.extend(p.strip() for p in str(part).split(","))
    out: list[Platform] = []
    for item in items:
        if isinstance(item, Platform):
            plat = item
        else:
            if not item:
                raise BuildError(f"invalid platform list {_show(spec)!r}: empty entry",
                                 hint="separate platforms with single commas, e.g. "
                                      "linux/amd64,linux/arm64")
            try:
                plat = Platform.parse(item)
            except ReferenceFormatError:
                raise BuildError(f"invalid platform {item!r} in {_show(spec)!r}",
                                 hint="use os/arch[/variant], e.g. linux/amd64,linux/arm64"
                                 ) from None
        if plat.os != "linux":
            raise BuildError(f"cannot build for {plat}: only linux images are supported",
                             hint="use linux/<arch>, e.g. linux/arm64")
        if plat not in out:
            out.append(plat)
    if not out:
        return [Platform.host()]
    return out


def _show(spec: object) -> str:
    if isinstance(spec, (str, Platform)):
        return str(spec)
    return ",".join(str(s) for s in spec)  # type: ignore[union-attr]


def runs_natively(platform: Platform, host: Platform | None = None) -> bool:
    """Whether this machine's CPU executes ``platform``'s binaries without an emulator."""
    host = host or Platform.host()
    if platform.os != host.os:
        return False
    if platform.architecture == host.architecture:
        return not platform.variant or not host.variant or host.matches(platform)
    return platform.architecture in _NATIVE_EXTRA.get(host.architecture, ())


@dataclass(frozen=True)
class Emulator:
    """A binfmt_misc entry that handles a platform's binaries."""

    name: str
    interpreter: str
    flags: str

    @property
    def fix_binary(self) -> bool:
        return "F" in self.flags


def _elf_header(arch: str) -> bytes | None:
    spec = _ELF.get(arch)
    if spec is None:
        return None
    cls, data, machine = spec
    order = "little" if data == 1 else "big"
    return (b"\x7fELF" + bytes([cls, data, 1]) + bytes(9)
            + (2).to_bytes(2, order) + machine.to_bytes(2, order))  # e_type EXEC, e_machine


def _parse_entry(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line in ("enabled", "disabled"):
            out["state"] = line
        elif " " in line:
            k, v = line.split(" ", 1)
            out[k.rstrip(":")] = v.strip()
    return out


def find_emulator(platform: Platform, binfmt_dir: Path | str | None = None) -> Emulator | None:
    """The enabled binfmt_misc entry whose magic/mask matches ``platform``'s ELF header."""
    header = _elf_header(platform.architecture)
    d = Path(binfmt_dir if binfmt_dir is not None else os.environ.get(BINFMT_ENV) or BINFMT_DIR)
    if header is None:
        return None
    try:
        if (d / "status").read_text().strip() != "enabled":
            return None
        names = sorted(os.listdir(d))
    except OSError:
        return None
    for name in names:
        if name in ("status", "register"):
            continue
        try:
            entry = _parse_entry((d / name).read_text())
        except OSError:
            continue
        if entry.get("state") != "enabled" or "magic" not in entry:
            continue
        try:
            magic = bytes.fromhex(entry["magic"])
            mask = bytes.fromhex(entry.get("mask", "ff" * len(magic)))
            offset = int(entry.get("offset", "0"))
        except ValueError:
            continue
        window = header[offset:offset + len(magic)]
        if len(window) < len(magic):
            continue
        if all((b & m) == (g & m) for b, m, g in zip(window, mask, magic, strict=False)):
            return Emulator(name, entry.get("interpreter", ""), entry.get("flags", ""))
    return None


def check_can_run(platform: Platform, *, host: Platform | None = None,
                  binfmt_dir: Path | str | None = None, where: str = "") -> None:
    """Raise the clear error when a RUN for ``platform`` cannot execute on this machine.
    ``where`` names the Dockerfile line (``Dockerfile:3: RUN uname -m``) when known."""
    host = host or Platform.host()
    if runs_natively(platform, host):
        return
    emulator = find_emulator(platform, binfmt_dir)
    if emulator is not None and emulator.fix_binary:
        return
    at = f"{where}: " if where else ""
    if emulator is None:
        why = f"no emulator for {platform.architecture} binaries is registered in binfmt_misc"
    else:
        why = (f"the binfmt_misc entry {emulator.name!r} ({emulator.interpreter}) lacks the "
               f"F (fix-binary) flag, so it cannot start inside the build's root filesystem")
    raise BuildError(
        f"{at}cannot RUN for platform {platform} on this {host} machine: {why}",
        hint="install qemu-user-static (apt-get install qemu-user-static; it registers its "
             "emulators with the F flag), or build that stage with "
             "`FROM --platform=$BUILDPLATFORM` and cross-compile for $TARGETARCH",
    )


def state_platform(os_: str, architecture: str, variant: str | None) -> Platform:
    """The platform of a stage's image state (what its binaries are built for)."""
    return Platform.normalized(os_ or "linux", architecture, variant or "")
