"""Several processes on one store: no corruption; a SIGKILLed writer leaves nothing visible."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from nbcontainer.oci import Digest
from nbcontainer.store import Store, fsck, prune

# The workers run with ``python -c`` from the repository's root, so ``tests`` imports there.
REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import sys, os
    from tests.support.images import make_image
    from nbcontainer.store import Store
    store = Store({home!r})
    who = sys.argv[1]
    for i in range(40):
        # same content in both workers (shared blobs) and content of its own
        make_image(store, [{{"shared": b"S" * 5000 + str(i % 5).encode()}},
                           {{"own": (who * 3000 + str(i)).encode()}}], tag=f"w{{who}}/img:{{i}}")
        store.blobs.put(os.urandom(1 << 16))
""")


def test_two_processes_write_same_and_different_blobs(tmp_path):
    home = tmp_path / "store"
    Store(home)
    script = WORKER.format(home=str(home))
    procs = [subprocess.Popen([sys.executable, "-c", script, w], cwd=REPO) for w in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = Store(home)
    report = fsck(store)
    assert report.ok and report.blobs_checked > 200
    tags = {t for r in store.list_images() for t in r.tags}
    assert len(tags) == 80  # no lost update of the tag database
    for w in ("a", "b"):
        img = store.image(f"w{w}/img:39")
        assert len(img.manifest.layers) == 2


KILLED = textwrap.dedent("""
    import sys, time
    from nbcontainer.oci import Digest
    from nbcontainer.store import Store
    store = Store({home!r})
    data = b"z" * (4 << 20)
    w = store.blobs.writer(Digest.of(data), len(data))
    w.write(data[: 1 << 20])
    w.flush()
    print("ready", flush=True)
    time.sleep(60)
""")


def test_sigkill_mid_write_leaves_no_visible_blob(tmp_path):
    home = tmp_path / "store"
    data = b"z" * (4 << 20)
    digest = Digest.of(data)
    p = subprocess.Popen([sys.executable, "-c", KILLED.format(home=str(home))],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    store = Store(home)
    assert not store.blobs.has(digest)
    assert not store.blobs.path(digest).exists()
    partial = list(store.blobs.tmp_dir.iterdir())
    assert len(partial) == 1 and partial[0].stat().st_size == 1 << 20  # only a temp file
    # the next run succeeds, and prune clears the leftover
    assert store.blobs.put(data) == digest
    assert store.blobs.read(digest) == data
    assert prune(store).temp_files_removed == 1
    assert fsck(store).ok


def test_prune_waits_for_a_running_operation(tmp_path):
    """A blob written inside ``operation()`` is never pruned before its image is recorded."""
    home = tmp_path / "store"
    script = textwrap.dedent(f"""
        import time
        from tests.support.images import make_image
        from nbcontainer.store import Store
        store = Store({str(home)!r})
        with store.operation():
            store.blobs.put(b"early blob")
            print("written", flush=True)
            time.sleep(1.0)
            make_image(store, [{{"f": b"late"}}], tag="late:1")
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                         cwd=REPO)
    assert p.stdout.readline().strip() == "written"
    t0 = time.monotonic()
    report = prune(Store(home))  # blocks until the writer's operation ends
    assert time.monotonic() - t0 > 0.3
    assert p.wait(timeout=30) == 0
    store = Store(home)
    assert report.blobs_removed == 1  # only the unreferenced early blob
    assert fsck(store).ok and store.image("late:1")
