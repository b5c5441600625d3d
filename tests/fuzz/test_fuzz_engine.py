"""The fuzz engine finds what it should: a planted crash is found and shrunk to its core, a
hang is reported, an allowed error is not a crash, and a seed replays the same inputs."""

from __future__ import annotations

import time

from tests.support.fuzz import engine


class Planted(Exception):
    pass


def _target(feed, allowed=(ValueError,), **kw) -> engine.Target:  # noqa: ANN001
    return engine.Target("toy", lambda: [b"hello world, a harmless seed"], feed, allowed,
                         tokens=[b"\xde\xad"], **kw)


def test_a_planted_crash_is_found_and_minimized() -> None:
    def feed(data: bytes) -> None:
        if b"\xde\xad" in data:
            raise Planted("boom")
        if b"\x00" in data:
            raise ValueError("an allowed error")

    stats = engine.run(_target(feed), seed=1, seconds=30, max_inputs=200_000)
    assert stats.crash is not None
    assert stats.crash.minimal == b"\xde\xad"
    assert "Planted: boom" in stats.crash.error and "NBCONTAINER_FUZZ_SEED=1" in \
        stats.crash.report()


def test_allowed_errors_are_not_crashes() -> None:
    def feed(data: bytes) -> None:
        raise ValueError("always refused")

    stats = engine.run(_target(feed), seed=2, seconds=0.2)
    assert stats.crash is None and stats.outcomes == {"ValueError": stats.inputs}


def test_a_multi_line_message_breaks_a_one_line_target() -> None:
    def feed(data: bytes) -> None:
        raise ValueError("line one\nline two")

    stats = engine.run(_target(feed, one_line=True), seed=3, seconds=5)
    assert stats.crash is not None and "not one line" in stats.crash.error


def test_a_slow_input_is_reported(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(engine, "SLOW_SECONDS", 0.05)

    def feed(data: bytes) -> None:
        if b"\xde\xad" in data:
            time.sleep(0.1)

    stats = engine.run(_target(feed), seed=4, seconds=30, max_inputs=200_000)
    assert stats.crash is not None and stats.crash.error.startswith("Slow")


def test_the_same_seed_replays_the_same_inputs() -> None:
    runs = []
    for _ in range(2):
        seen: list[bytes] = []
        engine.run(_target(lambda d: None), seed=5, seconds=60, max_inputs=500,
                   on_input=seen.append)
        runs.append(seen)
    assert runs[0] == runs[1] and len(set(runs[0])) > 100
