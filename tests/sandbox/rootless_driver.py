"""Runs one sandbox request as the unprivileged test user (started by the tests through
``runuser``); reads a JSON request on stdin and answers JSON on stdout."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from nbcontainer.sandbox import IdMap, RunSpec, Sandbox, detect_capabilities


def main() -> None:
    req = json.load(sys.stdin)
    if req.get("probe"):
        caps = detect_capabilities()
        print(json.dumps({"ok": caps.ok, "problem": caps.problem,
                          "subordinate_ids": caps.subordinate_ids}))
        return
    idmap = IdMap.single(os.getuid(), os.getgid()) if req.get("single") else None
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(req.get("threads", 0))]
    for t in threads:
        t.start()
    answer: dict = {"threads": threading.active_count()}
    try:
        with Sandbox(idmap=idmap) as sandbox:
            if req.get("remove"):
                answer["rm"] = sandbox.run_in_userns(["rm", "-rf", "--", req["remove"]])
                answer["exists"] = os.path.exists(req["remove"])
            else:
                spec = RunSpec(lowerdirs=[Path(p) for p in req["lowers"]],
                               upperdir=Path(req["upper"]), workdir=Path(req["work"]),
                               argv=req["argv"], user=req.get("user", ""),
                               network=req.get("network", "default"))
                result = sandbox.run(spec)
                answer.update(exit_code=result.exit_code, output=result.output_tail.decode(),
                              uid_map=[[r.container, r.host, r.count]
                                       for r in result.idmap.uids])
    except Exception as exc:  # reported, not raised: the test asserts on it
        answer["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stop.set()
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
