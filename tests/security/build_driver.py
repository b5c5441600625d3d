"""Builds the probe image in a store of its own and prints the RUN's output (JSON): run as
root under ``capsh --inh=cap_sys_admin`` or as the unprivileged test user."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nbcontainer import api
from nbcontainer.store import Store


def main() -> None:
    req = json.load(sys.stdin)
    if req.get("session_key"):  # a key of this user's session, which the RUN must not see
        from tests.support.bait import KEY_SPEC_SESSION_KEYRING, add_key

        add_key(req["session_key"], b"secret", KEY_SPEC_SESSION_KEYRING)
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    answer: dict[str, object] = {"cap_inh": status["CapInh"]}
    try:
        api.build(req["dockerfile"], req["context"], store=Store(req["store"]),
                  no_cache=True, output=f"type=local,dest={req['dest']}",
                  allow=req.get("allow", ()))
        answer["output"] = (Path(req["dest"]) / "result").read_text()
    except Exception as exc:  # reported: the test asserts on it
        answer["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
