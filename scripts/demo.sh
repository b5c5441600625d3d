#!/usr/bin/env bash
# Set up (idempotent) and run the main job: make a small root filesystem, import it as an
# image into a fresh store, export it, and print its layers and manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
