"""Run as the unprivileged test user: the seed example (apt-get in a user namespace with the
full subordinate id range) built from the local registry, run, rebuilt from the cache."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from nbcontainer.api import build, run
from nbcontainer.layers import open_layer
from nbcontainer.store import Store


def main() -> None:
    req = json.load(sys.stdin)
    st = Store(req["store"])
    ctx = Path(req["context"])
    img = build(ctx / "Dockerfile", ctx, tags=["my-python-image"], store=st)
    out: list[bytes] = []
    code = run("my-python-image", store=st, output=out.append)
    again = build(ctx / "Dockerfile", ctx, tags=["my-python-image"], store=st)
    owners: dict[str, list[int]] = {}
    for layer in img.manifest.layers[1:]:
        with open_layer(st.blobs.path(layer.digest)) as s, tarfile.open(fileobj=s, mode="r|") as t:
            for m in t:
                if m.name in req["paths"]:
                    owners[m.name] = [m.uid, m.gid]
    print(json.dumps({"code": code, "output": b"".join(out).decode(errors="replace"),
                      "layers": len(img.manifest.layers), "same": again.digest == img.digest,
                      "owners": owners}))


if __name__ == "__main__":
    main()
