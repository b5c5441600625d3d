"""Registry throughput, side by side with ``skopeo copy`` and ``docker push``/``docker pull``,
against one local registry.

    .venv/bin/python benchmarks/registry.py [--runs 3] [--big-mb 200] [--layers 10 --layer-mb 20]

Starts Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP), then times push and pull of
(a) one 200 MB random layer and (b) a 10-layer image of 20 MB each, for nbcontainer and for
skopeo. Every run uses a fresh repository (so nothing is skipped or mounted) and a fresh
destination directory; skopeo's blob-info cache is deleted before each skopeo run, otherwise
its warm runs turn into cross-repo mounts and look unrealistically fast (nbcontainer's own
blob-location cache is cleared for the same reason). Both tools run as
child processes; wall time includes process start-up, and peak RSS comes from wait4().
Prints MB/s per tool, the ratio nbcontainer/skopeo (targets: ≥ 1.5 single layer and ten
layers), the in-process push of the single layer (target 250 MB/s) beside the registry's own
limit on this machine (one raw PUT of the blob from memory: what distribution can take), and
nbcontainer's peak RSS (target < 150 MB).

Docker rows (a private dockerd, Debian's docker.io 20.10; skipped when it is not installed):
the same sizes as uncompressed *tar* layers (one random file each: docker unpacks what it
pulls, so a layer must be a tar), pushed once by nbcontainer to a source repository. Then,
per run, each from a clean state (not timed):

- pull: ``docker pull`` after ``docker rmi`` (no layer left: its data root is as fresh as
  an empty one) against nbcontainer's pull into an empty store, same repository. Not like for
  like in one way, said in the output: docker also unpacks every layer into its overlay2
  store and hashes it twice (digest and diff_id); nbcontainer stores the blob and unpacks
  lazily, at the first build or run that needs it.
- push: ``docker push`` to a fresh repository after clearing the engine's distribution
  metadata (``image/overlay2/distribution``, its equivalent of skopeo's blob-info cache:
  otherwise it mounts from the source repository) against nbcontainer's push of the same
  image to another fresh repository. Docker stores layers uncompressed and always gzips them
  on push, so its push includes that compression (nbcontainer uploads the stored blob); the
  row is printed for reference, without a target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import dockerd  # noqa: E402
from nbcontainer.localregistry import free_port  # noqa: E402

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


def registry_limit(host: str, mb: int, runs: int) -> float:
    """MB/s of the registry itself: one monolithic upload (POST, then PUT of the whole blob
    from memory, the digest known) over one plain http.client connection, fresh random data
    per run. No client can push faster than the registry takes bytes."""
    import http.client

    rates = []
    for i in range(runs):
        data = os.urandom(mb << 20)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        name, port = host.rsplit(":", 1)
        conn = http.client.HTTPConnection(name, int(port))
        t0 = time.perf_counter()
        conn.request("POST", f"/v2/bench/raw-{i}/blobs/uploads/")
        resp = conn.getresponse()
        resp.read()
        loc = resp.getheader("Location") or ""
        conn.request("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={digest}",
                     body=memoryview(data), headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        resp.read()
        rates.append(mb / (time.perf_counter() - t0))
        conn.close()
        if resp.status != 201:
            raise SystemExit(f"the registry refused the raw upload: {resp.status}")
    return statistics.median(rates)


def report(title: str, r: dict, target: float, limit: float | None = None) -> list[str]:
    """Rows with targets: the ratio to skopeo by CLI; with ``limit`` (the registry's own
    MB/s), the in-process push against 250 MB/s and against that limit."""
    mb, m = r["mb"], r["med"]
    lines = [f"\n{title} ({mb} MB), median of runs, wall time incl. process start-up"]
    for op in ("push", "pull"):
        ours, sko = mb / m[f"ours_{op}"], mb / m[f"sko_{op}"]
        ratio = ours / sko
        ok = "OK " if ratio >= target else "LOW"
        lines.append(f"  {op:4}: nbcontainer {ours:7.1f} MB/s ({mb / m[f'ours_{op}_in']:7.1f} "
                     f"in-process)   skopeo {sko:7.1f} MB/s   ratio {ratio:4.2f}x "
                     f"[{ok} target {target}x]")
    if limit is not None:
        inproc = mb / m["ours_push_in"]
        lines.append(f"  push in-process {inproc:7.1f} MB/s [{'OK ' if inproc >= 250 else 'LOW'} "
                     f"target 250 MB/s]; the registry's own limit (one raw PUT from memory) "
                     f"{limit:7.1f} MB/s: {inproc / limit:4.0%} of it")
    lines.append(f"  nbcontainer peak RSS: {r['rss']:.0f} MB [{'OK' if r['rss'] < 150 else 'HIGH'}"
                 " target < 150 MB]")
    return lines


def make_tar_image(work: Path, name: str, sizes_mb: list[int]) -> Path:
    """An image of uncompressed tar layers, one random file each, in a store of its own."""
    import io
    import tarfile

    from nbcontainer.oci import mediatypes as mt
    from nbcontainer.store import Store

    store = Store(work / f"store-{name.replace('/', '-').replace(':', '-')}")
    layers, diff_ids = [], []
    for i, mb in enumerate(sizes_mb):
        tmp = work / "layer.tar"
        with tarfile.open(tmp, "w") as tar:
            info = tarfile.TarInfo(f"data/blob{i}")
            info.size, info.mode = mb << 20, 0o644
            tar.addfile(info, io.BytesIO(os.urandom(mb << 20)))
        with open(tmp, "rb") as f:
            digest = store.blobs.put_file(f)
        layers.append({"mediaType": mt.OCI_LAYER, "digest": str(digest),
                       "size": tmp.stat().st_size})
        diff_ids.append(str(digest))
        tmp.unlink()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/data"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd = store.blobs.put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": str(cd),
                                      "size": len(config)},
                           "layers": layers}).encode()
    store.add_image(manifest, tags=[name])
    return store.home


def clear_docker_distribution_cache(engine: dockerd.PrivateDockerd) -> None:
    for sub in ("v2metadata-by-diffid", "diffid-by-digest"):
        shutil.rmtree(engine.data_root / "image" / "overlay2" / "distribution" / sub,
                      ignore_errors=True)


def bench_docker(host: str, work: Path, engine: dockerd.PrivateDockerd, title: str,
                 sizes_mb: list[int], runs: int) -> dict:
    """docker pull/push against nbcontainer's, on tar layers (see the module doc)."""
    name = f"bench/tar-{len(sizes_mb)}:1"
    home = make_tar_image(work, name, sizes_mb)
    src = f"{host}/bench/dsrc-{len(sizes_mb)}:1"
    py = sys.executable
    run([py, "-c", CHILD, "push", str(home), name, src])  # the source repository, once
    res: dict[str, list[float]] = {k: [] for k in
                                   ("ours_pull", "docker_pull", "ours_push", "docker_push")}
    for i in range(runs):
        tag = f"{int(time.time() * 1000)}-{i}"
        fresh = work / f"dpull-store-{tag}"
        res["ours_pull"].append(run([py, "-c", CHILD, "pull", str(fresh), src, "-"])[0])
        shutil.rmtree(fresh)
        engine.docker("rmi", "-f", src, check=False)
        engine.docker("image", "prune", "-f")
        res["docker_pull"].append(engine.timed("pull", src))

        shutil.rmtree(home / "registry", ignore_errors=True)
        res["ours_push"].append(run([py, "-c", CHILD, "push", str(home), name,
                                     f"{host}/bench/ours-t-{tag}:1"])[0])
        dest = f"{host}/bench/docker-{tag}:1"
        engine.docker("tag", src, dest)
        clear_docker_distribution_cache(engine)
        res["docker_push"].append(engine.timed("push", dest))
        engine.docker("rmi", dest)
    return {"mb": sum(sizes_mb), "med": {k: statistics.median(v) for k, v in res.items()}}


def report_docker(title: str, r: dict) -> list[str]:
    mb, m = r["mb"], r["med"]
    lines = [f"\n{title} ({mb} MB of uncompressed tar layers) against docker 20.10, median, "
             "wall time by CLI/child process"]
    for op, note in (("pull", "docker also unpacks into overlay2; we unpack lazily"),
                     ("push", "docker also gzips every layer (it cannot push them as stored)")):
        ours, theirs = mb / m[f"ours_{op}"], mb / m[f"docker_{op}"]
        lines.append(f"  {op:4}: nbcontainer {ours:7.1f} MB/s   docker {theirs:7.1f} MB/s   "
                     f"ratio {ours / theirs:5.2f}x   ({note})")
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
        limit = registry_limit(host, args.big_mb, args.runs)
        out += report("single layer", single, 1.5, limit)
        out += report(f"{args.layers} layers", multi, 1.5)
        print("\n".join(out), flush=True)
        if dockerd.available():
            with dockerd.PrivateDockerd(work / "dockerd") as engine:
                for title, sizes in (("single layer", [args.big_mb]),
                                     (f"{args.layers} layers", [args.layer_mb] * args.layers)):
                    r = bench_docker(host, work, engine, title, sizes, args.runs)
                    print("\n".join(report_docker(title, r)), flush=True)
        else:
            print("\ndocker.io is not installed (scripts/setup.sh): no docker rows")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
