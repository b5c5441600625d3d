#!/usr/bin/env bash
# Idempotent set-up on Debian 12 as root: system packages the tools and tests need, and the
# project virtualenv (.venv) with nbcontainer installed editable plus its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # interop and differential peers (docker.io: the Docker engine 20.10 with its BuildKit; the
  # tests start a private dockerd, see tests/support/docker.py)
  skopeo umoci oci-image-tool podman buildah runc crun docker.io
  # registry tests
  docker-registry apache2-utils openssl curl
  # sandbox and base images; proot for the ptrace rung, moby's seccomp profile for the pods
  bubblewrap uidmap fuse-overlayfs debootstrap busybox-static util-linux proot
  golang-github-docker-docker-dev
  # RUN's private network (user-mode stack), its seccomp profile's compiler (libseccomp2, in
  # the base anyway); the security tests' capsh and static probe
  slirp4netns libseccomp2 libcap2-bin gcc libc6-dev
  # multi-platform builds: RUN for foreign platforms through binfmt_misc (F-flagged entries)
  qemu-user-static
  # notebook browser test (Playwright drives Debian's chromium; nothing is downloaded)
  chromium
  # build tooling
  python3-venv git tar gzip zstd
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # docker.io's postinst runs `invoke-rc.d docker start` (no systemd here, so the sysvinit
  # script would start a system-wide dockerd on /var/run/docker.sock): a policy-rc.d that
  # denies every service start, only for this install and only if there is none already.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  for attempt in 1 2 3; do  # the dpkg lock can be held briefly by another apt
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && break
    echo "setup: apt attempt $attempt failed, retrying" >&2; sleep 5
  done
fi
# Never a system-wide Docker daemon: the tests run their own, on a private socket.
if [[ -S /var/run/docker.sock ]]; then
  echo "setup: a system-wide dockerd listens on /var/run/docker.sock; the tests do not use it" >&2
fi

# /dev/net/tun in its standard mode (0666, what udev sets on a Debian system): these machines
# run no udev and have it 0600, so no unprivileged user-mode network stack (slirp4netns,
# rootless podman) could run. Where it is missing or stays unusable, RUN steps on the default
# network get none, and `nbcontainer info` and every build say so.
if [[ ! -e /dev/net/tun ]]; then
  mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200 || echo "setup: cannot create /dev/net/tun" >&2
elif [[ $(stat -c %a /dev/net/tun) != 666 ]]; then
  chmod 0666 /dev/net/tun || echo "setup: cannot chmod /dev/net/tun" >&2
fi

# Multi-platform: qemu's binfmt_misc entries (no systemd runs here to register them) and an
# arm64 busybox for the test base images (Debian's busybox-static:arm64, cached).
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || echo "setup: cannot mount binfmt_misc" >&2
fi
for arch in aarch64 arm; do
  if [[ -e /proc/sys/fs/binfmt_misc/register && ! -e /proc/sys/fs/binfmt_misc/qemu-$arch ]]; then
    /usr/lib/systemd/systemd-binfmt "/usr/lib/binfmt.d/qemu-$arch.conf" ||
      echo "setup: cannot register qemu-$arch" >&2
  fi
done
bb_arm64=/var/cache/nbcontainer-test/busybox-arm64/busybox
if [[ ! -x $bb_arm64 ]]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 2>/dev/null && dpkg-deb -x busybox-static_*_arm64.deb x)
  mkdir -p "$(dirname "$bb_arm64")" && install -m 0755 "$tmp/x/bin/busybox" "$bb_arm64.tmp" && mv "$bb_arm64.tmp" "$bb_arm64"
  rm -rf "$tmp"
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.nbcontainer-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) path-editable"
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # Editable as a plain path entry: setuptools' default editable finder is imported by every
  # interpreter start and costs ~12 ms (pathlib, re, urllib) that an installed package never
  # pays; the command line's start-up is measured (benchmarks/startup.py). Falls back to the
  # default mode should setuptools drop this one.
  # (setuptools warns that this mode is transitional: expected)
  .venv/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat ||
    .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
# Byte-code for the package, as a non-editable pip install would have: with
# PYTHONDONTWRITEBYTECODE set (it is on these machines) every CLI start would otherwise
# recompile ~90 ms of modules. Only changed sources are recompiled.
.venv/bin/python -m compileall -q -j 0 nbcontainer >/dev/null
