"""Registry throughput, side by side with ``skopeo copy``, against one local registry.

    .venv/bin/python benchmarks/registry.py [--runs 3] [--big-mb 200] [--layers 10 --layer-mb 20]

Starts Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP), then times push and pull of
(a) one 200 MB random layer and (b) a 10-layer image of 20 MB each, for nbcontainer and for
skopeo. Every run uses a fresh repository (so nothing is skipped or mounted) and a fresh
destination directory; skopeo's blob-info cache is deleted before each skopeo run, otherwise
its warm runs turn into cross-repo mounts and look unrealistically fast (nbcontainer's own
blob-location cache is cleared for the same reason). Both tools run as
child processes; wall time includes process start-up, and peak RSS comes from wait4().
Prints MB/s per tool, the ratio nbcontainer/skopeo (targets: ≥ 1.0 single layer, ≥ 1.5
ten layers) and nbcontainer's peak RSS (target < 150 MB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKOPEO_CACHES = [
    Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),
    Path.home() / ".local/share/containers/cache/blob-info-cache-v1.boltdb",
    Path.home() / ".local/share/containers/cache/blob-info-cache-v1.sqlite",
    Path("/var/lib/containers/cache/blob-info-cache-v1.sqlite"),
]

CHILD = r"""
import json, resource, sys, time
from nbcontainer.store import Store
from nbcontainer.registry import pull, push
mode, home, a, b = sys.argv[1:5]
store = Store(home)
t0 = time.perf_counter()
if mode == "push":
    push(store, a, b, credential=None)
else:
    pull(store, a, credential=None)
dt = time.perf_counter() - t0
print(json.dumps({"inproc": dt}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(d: Path) -> tuple[subprocess.Popen, str]:
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(d / "storage")},
                        "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}}
    (d / "config.yml").write_text(json.dumps(conf))
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
            return proc, host
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("registry did not start")


def make_image(work: Path, name: str, sizes_mb: list[int]) -> tuple[Path, str]:
    """The same image twice: in an nbcontainer store (tag ``name``) and an OCI layout."""
    sys.path.insert(0, str(ROOT))
    from nbcontainer.oci import mediatypes as mt
    from nbcontainer.store import Store

    layout = work / f"layout-{name.replace('/', '-').replace(':', '-')}"
    blobs_dir = layout / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True)
    store = Store(work / "store")
    layers, diff_ids = [], []
    for mb in sizes_mb:
        h = hashlib.sha256()
        tmp = blobs_dir / "tmp"
        with open(tmp, "wb") as f:
            for _ in range(mb):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                f.write(chunk)
        hexd = h.hexdigest()
        tmp.rename(blobs_dir / hexd)
        with open(blobs_dir / hexd, "rb") as f:
            store.blobs.put_file(f)
        layers.append({"mediaType": mt.OCI_LAYER, "digest": f"sha256:{hexd}",
                       "size": mb << 20})
        diff_ids.append(f"sha256:{hexd}")
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd = hashlib.sha256(config).hexdigest()
    (blobs_dir / cd).write_bytes(config)
    store.blobs.put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": f"sha256:{cd}",
                                      "size": len(config)},
                           "layers": layers}).encode()
    md = hashlib.sha256(manifest).hexdigest()
    (blobs_dir / md).write_bytes(manifest)
    store.add_image(manifest, tags=[name])
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": mt.OCI_MANIFEST, "digest": f"sha256:{md}", "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "t"}}]}))
    return layout, f"sha256:{md}"


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out


def clear_skopeo_cache() -> None:
    for p in SKOPEO_CACHES:
        p.unlink(missing_ok=True)


def drop_page_cache_hint() -> None:
    # Not dropping the kernel page cache: both tools read the same warm files.
    pass


def bench(host: str, work: Path, store_home: Path, name: str, layout: Path, total_mb: int,
          runs: int) -> dict:
    res: dict[str, list[float]] = {k: [] for k in
                                   ("ours_push", "sko_push", "ours_pull", "sko_pull",
                                    "ours_push_in", "ours_pull_in")}
    rss: list[float] = []
    py = sys.executable
    for i in range(runs):
        tag = f"{int(time.time() * 1000)}-{i}"
        ours_repo = f"{host}/bench/ours-{tag}:1"
        sko_repo = f"{host}/bench/skopeo-{tag}:1"
        # our blob-location cache would turn the push into mounts, as skopeo's would
        shutil.rmtree(store_home / "registry", ignore_errors=True)
        wall, peak, out = run([py, "-c", CHILD, "push", str(store_home), name, ours_repo])
        res["ours_push"].append(wall)
        res["ours_push_in"].append(json.loads(out)["inproc"])
        rss.append(peak)
        clear_skopeo_cache()
        wall, _, _ = run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                          f"oci:{layout}:t", f"docker://{sko_repo}"])
        res["sko_push"].append(wall)

        fresh = work / f"pull-store-{tag}"
        wall, peak, out = run([py, "-c", CHILD, "pull", str(fresh), sko_repo, "-"])
        res["ours_pull"].append(wall)
        res["ours_pull_in"].append(json.loads(out)["inproc"])
        rss.append(peak)
        shutil.rmtree(fresh)
        clear_skopeo_cache()
        dest = work / f"pull-oci-{tag}"
        wall, _, _ = run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                          f"docker://{ours_repo}", f"oci:{dest}:t"])
        res["sko_pull"].append(wall)
        shutil.rmtree(dest)
    med = {k: statistics.median(v) for k, v in res.items()}
    return {"mb": total_mb, "med": med, "rss": max(rss)}


def report(title: str, r: dict, target: float) -> list[str]:
    mb, m = r["mb"], r["med"]
    lines = [f"\n{title} ({mb} MB), median of runs, wall time incl. process start-up"]
    for op in ("push", "pull"):
        ours, sko = mb / m[f"ours_{op}"], mb / m[f"sko_{op}"]
        ratio = ours / sko
        ok = "OK " if ratio >= target else "LOW"
        lines.append(f"  {op:4}: nbcontainer {ours:7.1f} MB/s ({mb / m[f'ours_{op}_in']:7.1f} "
                     f"in-process)   skopeo {sko:7.1f} MB/s   ratio {ratio:4.2f}x "
                     f"[{ok} target {target}x]")
    lines.append(f"  nbcontainer peak RSS: {r['rss']:.0f} MB [{'OK' if r['rss'] < 150 else 'HIGH'}"
                 " target < 150 MB]")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--layer-mb", type=int, default=20)
    args = ap.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required (apt-get install docker-registry skopeo)")
    # Measure the installed state: byte-code compiled (pip compiles at install; an editable
    # install under PYTHONDONTWRITEBYTECODE would recompile every module at every start).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(ROOT / "nbcontainer")],
                   check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="nbc-bench-"))
    proc, host = start_registry(work / "registry")
    try:
        os.environ.setdefault("PYTHONPATH", str(ROOT))
        big_layout, _ = make_image(work, "bench/big:1", [args.big_mb])
        multi_layout, _ = make_image(work, "bench/multi:1", [args.layer_mb] * args.layers)
        store_home = work / "store"
        single = bench(host, work, store_home, "bench/big:1", big_layout, args.big_mb, args.runs)
        multi = bench(host, work, store_home, "bench/multi:1", multi_layout,
                      args.layer_mb * args.layers, args.runs)
        out = [f"registry {host} (distribution 2.8, plain HTTP, loopback); "
               f"{os.cpu_count()} CPUs; {args.runs} runs"]
        out += report("single layer", single, 1.0)
        out += report(f"{args.layers} layers", multi, 1.5)
        print("\n".join(out))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
