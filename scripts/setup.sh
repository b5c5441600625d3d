#!/usr/bin/env bash
# Idempotent set-up on Debian 12 as root: system packages the tools and tests need, and the
# project virtualenv (.venv) with nbcontainer installed editable plus its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # interop and differential peers
  skopeo umoci oci-image-tool podman buildah runc crun
  # registry tests
  docker-registry apache2-utils openssl curl
  # sandbox and base images
  bubblewrap uidmap fuse-overlayfs debootstrap busybox-static util-linux
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
  for attempt in 1 2 3; do  # the dpkg lock can be held briefly by another apt
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && break
    echo "setup: apt attempt $attempt failed, retrying" >&2; sleep 5
  done
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.nbcontainer-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
