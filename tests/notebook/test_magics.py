"""The magics in IPython's in-process test shell: registration, help, usage errors, line
expansion, the untouched cell body, error rendering and the mimebundle of each display."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from nbcontainer import api
from nbcontainer.dockerfile import DockerfileError
from nbcontainer.errors import RegistryError
from nbcontainer.image import Image
from nbcontainer.notebook import errors, magics
from tests.support.marks import needs_root_busybox

LINE = ["push", "pull", "login", "logout", "images", "layers", "manifest", "inspect",
        "container_run", "image_diff", "freeze_image"]


def bundle(ip, obj) -> dict:
    return ip.display_formatter.format(obj)[0]


# ---------------------------------------------------------------------- registration / help
def test_registered_without_shadowing(ip) -> None:
    line = ip.magics_manager.magics["line"]
    cell = ip.magics_manager.magics["cell"]
    assert "dockerfile" in cell
    for name in LINE:
        assert isinstance(line[name].__self__, magics.ContainerMagics), name
    for name in ("run", "load", "save", "pushd", "popd", "env", "time", "writefile"):
        owner = (line.get(name) or cell.get(name)).__self__
        assert not isinstance(owner, magics.ContainerMagics), name


def test_existing_magic_is_not_replaced(ip) -> None:
    from IPython.core.magic import Magics, line_magic, magics_class

    @magics_class
    class Other(Magics):
        @line_magic
        def images(self, line: str) -> str:
            return "theirs"

    ip.register_magics(Other)
    try:
        with pytest.warns(UserWarning, match="%images is already defined"):
            names = magics.register(ip)
        assert "%images" not in names and "%%dockerfile" in names
        assert ip.run_line_magic("images", "") == "theirs"
    finally:
        ip.magics_manager.magics["line"].pop("images")
        ip.register_magics(magics.ContainerMagics(shell=ip))


@pytest.mark.parametrize("name", ["dockerfile", *LINE])
def test_help_from_magic_arguments(ip, name: str) -> None:
    kind = "cell" if name == "dockerfile" else "line"
    fn = ip.magics_manager.magics[kind][name]
    doc = fn.__doc__
    assert doc.startswith("::") and f"  %{name}" in doc  # the usage line, as %%writefile?
    assert fn.__func__.parser.description.split("\n")[0] in doc


def test_dockerfile_help_lists_options(ip) -> None:
    doc = ip.magics_manager.magics["cell"]["dockerfile"].__doc__
    for flag in ("-t TAG", "--build-arg", "--target", "--no-cache", "--secret", "--platform",
                 "--context", "-f NAME", "--quiet"):
        assert flag in doc, flag


@pytest.mark.parametrize("cell", [
    "%push",  # missing argument
    "%pull a b c",
    "%layers x --bogus",
    "%container_run --network bridge img",
    "%image_diff onlyone",
    "%push 'unbalanced",
    "%%dockerfile --no-such-flag\nFROM scratch\n",
    "%%dockerfile\n\n",
])
def test_usage_errors(ip, cell: str) -> None:
    r = ip.run_cell(cell)
    assert isinstance(r.error_in_exec, UsageError), r.error_in_exec


def test_build_arg_needs_a_key(ip) -> None:
    r = ip.run_cell("%%dockerfile --build-arg =1\nFROM scratch\n")
    assert isinstance(r.error_in_exec, UsageError)


# ---------------------------------------------------------------------- expansion
def test_line_is_expanded_body_is_not(ip, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    def fake_build(source, context, **kw):
        seen.update(source=source, **kw)
        raise DockerfileError("stop here", line=1, column=1, source="x")

    monkeypatch.setattr(api, "build", fake_build)
    ip.user_ns.update(name="demo", ver=3)
    ip.run_cell("%%dockerfile -t registry.local/$name:{ver+1} --build-arg V=$name\n"
                "FROM scratch\nENV A=$V B=${name} C={ver}\n")
    assert seen["tags"] == ["registry.local/demo:4"]
    assert seen["build_args"] == {"V": "demo"}
    assert seen["source"] == "FROM scratch\nENV A=$V B=${name} C={ver}\n"


def test_push_line_expansion(ip, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []

    class Fake:
        ref = None

        def push(self, dest, **kw):
            calls.append(dest)
            return "sha256:" + "0" * 64

    monkeypatch.setattr(magics.ContainerMagics, "_image", lambda self, name: Fake())
    ip.user_ns.update(registry="127.0.0.1:5000", version="1.2")
    r = ip.run_cell("%push local {registry}/demo:{version} -q")
    assert r.error_in_exec is None
    assert calls == ["127.0.0.1:5000/demo:1.2"]
    assert str(r.result) == f"Pushed 127.0.0.1:5000/demo:1.2@sha256:{'0' * 64}"


# ---------------------------------------------------------------------- errors
def test_dockerfile_error_is_short(ip, capsys) -> None:
    r = ip.run_cell("%%dockerfile -q\nFROM scratch\nFROMM x\n")
    exc = r.error_in_exec
    assert isinstance(exc, DockerfileError)  # still catchable as what it is
    lines = exc._render_traceback_()
    text = "\n".join(lines)
    assert "DockerfileError" in lines[0] and "Dockerfile:2" in lines[0]
    # BuildKit's excerpt, numbered as in the cell (the %%dockerfile line is line 1)
    assert "cell line 3 (Dockerfile:2)" in text
    assert "   1 |     %%dockerfile -q\n   2 |     FROM scratch\n   3 | >>> FROMM x" in text
    assert "Traceback" not in text and "File " not in text
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


@needs_root_busybox
def test_a_failed_step_shows_the_cell_excerpt(ip, bb_store) -> None:
    """BuildKit's excerpt under a failed RUN, numbered as the cell is (the magic's line is
    line 1); a missing COPY source names the folder the build reads and a close match."""
    Path("my-app.py").write_text("print(1)\n")
    r = ip.run_cell("%%dockerfile -q -t bad\nFROM busybox\nRUN echo hi && false\n")
    text = "\n".join(r.error_in_exec._render_traceback_())
    assert "Dockerfile:2: RUN: process" in text and "last 1 line of output" in text
    assert "cell line 3 (Dockerfile:2)\n--------------------\n   1 |     %%dockerfile -q -t bad" \
        in text
    assert "   3 | >>> RUN echo hi && false" in text
    r = ip.run_cell("%%dockerfile -q -t bad\nFROM busybox\nCOPY my-ap.py /app/\n")
    text = "\n".join(r.error_in_exec._render_traceback_())
    assert f"not found in the build context ({Path.cwd().resolve()})" in text
    assert "hint: did you mean my-app.py?" in text and "   3 | >>> COPY my-ap.py /app/" in text


def test_registry_error_is_one_line_with_hint(ip, bb_store) -> None:
    r = ip.run_cell("%push busybox:latest 127.0.0.1:9/nothing:1 -q")
    exc = r.error_in_exec
    assert isinstance(exc, RegistryError)
    lines = exc._render_traceback_()
    assert len(lines) == 2 and lines[1].lstrip("\x1b[2m").startswith("hint: ")
    assert "127.0.0.1:9" in lines[0]
    # no library object names (urllib3's ``HTTPConnection(host=…)``) in what a user reads
    assert "HTTPConnection" not in lines[0] and "object at 0x" not in lines[0]
    assert "cannot connect" in lines[0]


def test_unknown_image_is_short(ip, home) -> None:
    r = ip.run_cell("%layers no-such-image")
    assert r.error_in_exec is not None
    assert "no-such-image" in r.error_in_exec._render_traceback_()[0]


def test_debug_env_keeps_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBCONTAINER_DEBUG", "1")
    exc = RegistryError("x")
    assert errors.short(exc) is exc


def test_login_asks_with_getpass_and_never_shows_the_password(ip, monkeypatch, capsys) -> None:
    from nbcontainer import registry

    seen = {}
    monkeypatch.setattr("getpass.getpass", lambda prompt: "hunter2-secret")

    def fake_login(reg, user, password, **kw):
        seen.update(reg=reg, user=user, password=password)
        return "config.json"

    monkeypatch.setattr(registry, "login", fake_login)
    r = ip.run_cell("%login 127.0.0.1:5000 -u alice")
    assert r.error_in_exec is None
    assert seen == {"reg": "127.0.0.1:5000", "user": "alice", "password": "hunter2-secret"}
    out = capsys.readouterr()
    assert "Login Succeeded: alice@127.0.0.1:5000" in out.out
    assert "hunter2" not in out.out + out.err and r.result is None


def test_login_password_env(ip, monkeypatch) -> None:
    from nbcontainer import registry

    monkeypatch.setattr(registry, "login", lambda reg, user, pw, **kw: seen.append(pw))
    seen: list = []
    monkeypatch.setenv("NB_PW", "from-env")
    assert ip.run_cell("%login r.example -u bob --password-env NB_PW").error_in_exec is None
    assert seen == ["from-env"]
    monkeypatch.delenv("NB_PW")
    r = ip.run_cell("%login r.example -u bob --password-env NB_PW")
    assert isinstance(r.error_in_exec, UsageError)


# ---------------------------------------------------------------------- real builds
@needs_root_busybox
def test_dockerfile_builds_and_result_is_the_image(ip, bb_store, capsys) -> None:
    Path("hello.txt").write_text("hi\n")  # %%writefile's files are in the context
    r = ip.run_cell("%%dockerfile -t demo/app:1 --build-arg WHO=notebook\n"
                    "FROM busybox\nARG WHO\nCOPY hello.txt /app/\nRUN echo \"$WHO\" > /app/who\n"
                    'CMD ["cat", "/app/who"]\n')
    assert r.error_in_exec is None, r.error_in_exec
    img = r.result
    assert isinstance(img, Image) and ip.user_ns["_"] is img
    assert api.image("demo/app:1").digest == img.digest
    data = bundle(ip, img)
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/plain"].startswith("demo/app:1: 3 layers, ")
    assert "<details" in data["text/html"] and "<script" not in data["text/html"]
    assert "hello.txt" in data["text/html"]
    out = capsys.readouterr().out
    assert "[+] Building" in out  # the progress area (the terminal shell prints displays)


@needs_root_busybox
def test_dockerfile_file_option_and_dockerignore(ip, bb_store) -> None:
    Path("keep.txt").write_text("k")
    Path("secret.txt").write_text("s")
    Path("Dockerfile.app.dockerignore").write_text("secret.txt\n")
    r = ip.run_cell("%%dockerfile -q -f Dockerfile.app -t ign\nFROM busybox\nCOPY . /ctx/\n")
    assert r.error_in_exec is None, r.error_in_exec
    names = {p for p in r.result.files() if p.startswith("ctx/")}
    assert "ctx/keep.txt" in names and "ctx/secret.txt" not in names
    assert Path("Dockerfile.app").read_text().startswith("FROM busybox")


@needs_root_busybox
def test_layers_manifest_inspect_images_diff(ip, bb_store) -> None:
    r = ip.run_cell("%%dockerfile -q -t two\nFROM busybox\nRUN rm /bin/ls && echo x > /new\n")
    assert r.error_in_exec is None
    layers = ip.run_cell("%layers two").result
    data = bundle(ip, layers)
    assert set(data) == {"text/plain", "text/html"}
    assert "RUN rm /bin/ls && echo x > /new" in data["text/plain"]
    assert "reclaimable" in data["text/html"] and "dive" in data["text/html"]

    m = ip.run_cell("%manifest two").result
    data, meta = ip.display_formatter.format(m)
    assert set(data) == {"application/json", "text/plain"}  # never with HTML
    assert isinstance(data["application/json"], dict)
    assert set(data["application/json"]) == {"manifest", "config"}
    assert meta["application/json"]["expanded"] is False

    linked = bundle(ip, ip.run_cell("%manifest two --html").result)
    assert set(linked) == {"text/plain", "text/html"}
    first = api.image("two").layers[0].digest.hex[:12]
    assert f'href="#nbc-layer-{first}"' in linked["text/html"]

    insp = bundle(ip, ip.run_cell("%inspect two").result)
    assert insp["application/json"]["RepoTags"] == ["two:latest"]

    imgs = bundle(ip, ip.run_cell("%images").result)
    assert "busybox" in imgs["text/plain"] and "<table" in imgs["text/html"]

    diff = ip.run_cell("%image_diff busybox two").result
    text = bundle(ip, diff)["text/plain"]
    assert "1 file added" in text and "1 removed" in text and "+ new" in text and \
        "- bin/ls" in text

    ip.user_ns["img"] = api.image("two")  # a variable works where a name does
    assert ip.run_cell("%layers img").error_in_exec is None


@needs_root_busybox
def test_layers_widget_is_hybrid(ip, bb_store) -> None:
    r = ip.run_cell("%layers busybox --widget")
    data = bundle(ip, r.result)
    assert {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"} <= set(data)
    assert "<details" in data["text/html"]
    w = r.result
    w.search.value = "bin/sh"
    assert "sh" in w.view.value and "nslookup" not in w.view.value
    w.show["+"].value = False
    assert "nothing matches" in w.view.value


@needs_root_busybox
def test_the_explorer_searches_sorts_expands_and_shows_the_image_at_a_layer(ip, bb_store
                                                                            ) -> None:
    r = ip.run_cell("%%dockerfile -q -t three\nFROM busybox\n"
                    "RUN mkdir -p /opt/deep/er/still && echo hi > /opt/deep/er/still/needle.txt\n"
                    "RUN rm /bin/ls\n")
    assert r.error_in_exec is None
    w = ip.run_cell("%layers three --widget").result
    assert w.layer_list.value == 2 and "changes of" in w.heading.value
    assert "efficiency" in w.children[0].value  # the scores, the bars and the junk list
    # this layer's changes: the removal only
    assert "ls" in w.view.value and "needle" not in w.view.value
    # the image as it stands at this layer: the lower layers' files too, marked
    w.mode.value = "image"
    assert "needle.txt" in w.view.value  # from a lower layer, in a closed directory ...
    assert "<details><summary>deep/" in w.view.value
    w.search.value = "NEEDLE"  # ... a search opens the way to it and highlights it
    assert "<mark>needle</mark>.txt" in w.view.value
    assert "<details open><summary>deep/" in w.view.value
    assert w.view.value.count("<details open>") >= 4  # opt/ deep/ er/ still/
    assert 'title="/opt/deep/er/still/needle.txt"' in w.view.value  # the full path on hover
    w.search.value = ""
    w.show[""].value = False  # hide what this layer did not touch: its removal is left
    assert ">- ls" in w.view.value.replace('"r">', ">") and "opt/" not in w.view.value
    w.show[""].value = True
    w.expand_all.click()
    assert "needle.txt" in w.view.value and "<details>" not in w.view.value  # all open
    w.collapse_all.click()
    assert "<details open>" not in w.view.value
    w.sort.value = "name"
    names = re.findall(r"<li[^>]*>(?:<details>)?(?:<summary>)?(?:. )?([a-z]+)/", w.view.value)
    assert names[:3] == sorted(names[:3])


@needs_root_busybox
def test_layers_check_fails_the_cell_with_the_table(ip, bb_store, capsys) -> None:
    r = ip.run_cell("%%dockerfile -q -t cached\nFROM busybox\n"
                    "RUN mkdir -p /var/cache/apt && head -c 300000 /dev/zero > "
                    "/var/cache/apt/pkgcache.bin\n")
    assert r.error_in_exec is None
    r = ip.run_cell("%layers cached --check")
    assert isinstance(r.error_in_exec, errors.CellError)
    assert "fails 3 of 15 rules: lowestEfficiency, highestUserWastedPercent, junk:apt-cache" \
        in r.error_in_exec._render_traceback_()[0]
    assert "FAIL    junk:apt-cache" in capsys.readouterr().out  # the table was shown first
    r = ip.run_cell("%layers busybox --check")
    assert r.error_in_exec is None and r.result.passed
    data = bundle(ip, r.result)
    assert "Result: PASS" in data["text/plain"] and ">PASS</b>" in data["text/html"]


@needs_root_busybox
def test_container_run_streams_and_fails_on_status(ip, bb_store, capsys) -> None:
    assert ip.run_cell("%container_run busybox echo hello 'two words'").error_in_exec is None
    assert "hello two words" in capsys.readouterr().out
    r = ip.run_cell("%container_run busybox sh -c 'exit 3'")
    assert isinstance(r.error_in_exec, errors.CellError)
    assert "status 3" in r.error_in_exec._render_traceback_()[0]
    r = ip.run_cell("%container_run -e GREETING=hi busybox sh -c 'echo $GREETING'")
    assert "hi" in capsys.readouterr().out


@needs_root_busybox
def test_ctrl_c_stops_a_build_cleanly(ip, bb_store, capsys) -> None:
    def interrupt() -> None:
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    # (a duration no other process on the machine is likely to sleep: the check below
    # looks for it in the whole process table)
    r = ip.run_cell("%%dockerfile -t slow\nFROM busybox\nRUN sleep 3593\n")
    assert time.monotonic() - t0 < 20
    assert isinstance(r.error_in_exec, KeyboardInterrupt)
    assert "Interrupted" in r.error_in_exec._render_traceback_()[0]
    out = capsys.readouterr().out
    assert "INTERRUPTED" in out
    assert "CANCELED [2/2] RUN sleep 3593" in out or \
        "CANCELED [2/2] RUN /bin/sh -c sleep 3593" in out
    with pytest.raises(Exception, match="slow"):
        api.image("slow")
    assert api.fsck().ok
    procs = os.popen("ps -eo args").read()
    assert "sleep 3593" not in procs
    with open("/proc/self/mountinfo") as f:  # the RUN's overlay and scratch are unmounted
        assert str(api.get_store().home) not in f.read()
    assert ip.run_cell("%%dockerfile -q -t after\nFROM busybox\nRUN true\n").error_in_exec is None


@needs_root_busybox
def test_ctrl_c_taken_by_another_thread_stops_a_build(ip, bb_store) -> None:
    """The kernel may hand SIGINT to any thread that does not block it; Python then runs
    its handler only when the main thread runs again. The build's waits wake up often
    enough for that: here the main thread blocks SIGINT, so another thread must take it."""
    def interrupt() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGINT)

    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        t0 = time.monotonic()
        r = ip.run_cell("%%dockerfile -t slow2\nFROM busybox\nRUN sleep 3571\n")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert time.monotonic() - t0 < 10
    assert isinstance(r.error_in_exec, KeyboardInterrupt)
    assert "sleep 3571" not in os.popen("ps -eo args").read()


# ---------------------------------------------------------------------- Ctrl-C in transfers
def _interrupt_after(seconds: float) -> None:
    def fire() -> None:
        time.sleep(seconds)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=fire, daemon=True).start()


def _assert_interrupted(r, t0: float) -> None:
    assert time.monotonic() - t0 < 20  # not the stall's 60 s, nor a retry loop
    assert isinstance(r.error_in_exec, KeyboardInterrupt)
    assert "Interrupted" in r.error_in_exec._render_traceback_()[0]


@needs_root_busybox
def test_ctrl_c_stops_a_pull_mid_blob(ip, bb_store, tmp_path) -> None:
    """A registry that stops sending in the middle of a layer: Ctrl-C ends ``%pull`` at once,
    nothing is tagged, no partial blob is left, and the same pull then works."""
    from tests.support.registry import Fault, FaultProxy, Registry

    reg = Registry("plain", tmp_path / "registry").start()
    proxy = FaultProxy(reg.port).start()
    try:
        (tmp_path / "root").mkdir()
        (tmp_path / "root" / "big.bin").write_bytes(os.urandom(4 << 20))
        api.import_image(tmp_path / "root", f"{reg.host}/big:1")
        api.push(f"{reg.host}/big:1")
        layer = api.image(f"{reg.host}/big:1").manifest.layers[0]
        api.rmi([f"{reg.host}/big:1"])
        api.prune()
        proxy.faults.append(Fault("GET", f"/blobs/{layer.digest}", "stall",
                                  after_bytes=1 << 20, stall=60))
        _interrupt_after(1.5)
        t0 = time.monotonic()
        r = ip.run_cell(f"%pull {proxy.host}/big:1")
        _assert_interrupted(r, t0)
        with pytest.raises(Exception, match="big"):
            api.image(f"{proxy.host}/big:1")
        store = api.get_store()
        assert not store.blobs.has(layer.digest)
        assert not list(store.blobs.tmp_dir.iterdir())
        assert api.fsck().ok
        proxy.faults.clear()
        assert ip.run_cell(f"%pull -q {proxy.host}/big:1").error_in_exec is None
        assert store.blobs.has(layer.digest)
    finally:
        proxy.stop()
        reg.stop()


@needs_root_busybox
def test_ctrl_c_stops_a_push_to_a_hung_registry(ip, bb_store, tmp_path) -> None:
    """A registry that accepts connections and never answers: Ctrl-C ends ``%push`` at once
    and the local image is untouched."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # hold every connection open, read nothing back
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        before = api.image("busybox").digest
        _interrupt_after(1.5)
        t0 = time.monotonic()
        r = ip.run_cell(f"%push busybox {host}/busybox:1")
        _assert_interrupted(r, t0)
        assert api.image("busybox").digest == before
        assert api.fsck().ok
    finally:
        stop.set()
        for s in held:
            s.close()
        listener.close()


def test_nbcontainer_info(ip) -> None:
    """``%nbcontainer_info``: the same data as ``nbcontainer info``, as text and JSON."""
    view = ip.run_line_magic("nbcontainer_info", "")
    assert view.data["sandbox"]["rung"] in ("full", "reduced", "ptrace", "none")
    bundle = view._repr_mimebundle_()
    assert "Rung: " in bundle["text/plain"] and bundle["application/json"] is view.data
    asked = ip.run_line_magic("nbcontainer_info", "--isolation ptrace")
    assert asked.data["sandbox"]["rung"] == "ptrace"


@needs_root_busybox
def test_host_ca_in_both_magics(ip, bb_store, capsys) -> None:
    """``%%dockerfile --host-ca`` and ``%container_run --host-ca``: the host's CAs at the
    image's usual bundle path, for the step (the container) only."""
    check = "grep -q 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt"
    r = ip.run_cell(f"%%dockerfile -q --host-ca -t ca:1\nFROM busybox\nRUN {check}\n")
    assert r.error_in_exec is None
    assert ip.run_cell(f"%%dockerfile -q -t ca:2\nFROM busybox\nRUN {check} # off\n"
                       ).error_in_exec is not None
    assert ip.run_cell(f'%container_run --host-ca ca:1 sh -c "{check}"').error_in_exec is None
    assert ip.run_cell(f'%container_run ca:1 sh -c "{check}"').error_in_exec is not None
    capsys.readouterr()
