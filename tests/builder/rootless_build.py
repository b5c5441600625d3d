"""Run as the unprivileged test user: build and run an image in a store of its own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nbcontainer.api import build, run
from nbcontainer.store import Store


def main() -> None:
    req = json.load(sys.stdin)
    st = Store(req["store"])
    out: list[bytes] = []
    host_ca = req.get("host_ca")
    img = build(req["dockerfile"], req["context"], tags=["rl:1"], store=st, host_ca=host_ca)
    again = build(req["dockerfile"], req["context"], tags=["rl:1"], store=st)
    code = run("rl:1", store=st, output=out.append)
    print(json.dumps({"digest": str(img.digest), "same": again.digest == img.digest,
                      "code": code, "output": b"".join(out).decode(),
                      "layers": [str(layer.digest) for layer in img.manifest.layers],
                      "blobs": str(Path(req["store"]) / "blobs" / "sha256")}))


if __name__ == "__main__":
    main()
