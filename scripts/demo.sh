#!/usr/bin/env bash
# Set up (idempotent) and run the main job: execute notebooks/01-quickstart.ipynb end to end
# (it starts a local registry and a debootstrap Debian base served as debian:bookworm) and
# write its HTML rendering with the layer tree; prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m scripts.notebook_demo "$@"
