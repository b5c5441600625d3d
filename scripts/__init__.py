"""Developer scripts (set-up, tests, the demo). A package so that the notebook tests can use
the demo's environment (``scripts.notebook_env``); nothing here imports ``tests``."""
