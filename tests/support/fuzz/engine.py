"""A small mutation fuzzer: seeded, time-boxed, replayable, with crash minimization.

A :class:`Target` is one parser: seed inputs (a real corpus), a function that feeds it one
input, and the errors it may raise. :func:`run` mutates the seeds for a time budget; any other
exception (or an input that takes too long) is a :class:`Crash`, shrunk to a minimal input
that still fails the same way. The sequence of inputs depends only on the seed and the target
name, so a failure found in CI replays with ``NBCONTAINER_FUZZ_SEED=<seed>``.

Inputs that make a parser fail in a way not seen before join the corpus (a crude stand-in for
coverage feedback: new error messages usually mean new code paths were reached).
"""

from __future__ import annotations

import json
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# An input that takes this long is reported as a hang.
SLOW_SECONDS = 3.0
MAX_INPUT = 1 << 16
INTERESTING_INTS = (0, -1, 1, 2, 7, 8, 255, 256, 511, 512, 4096, 65535, 2**31 - 1, 2**31,
                    2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30)
INTERESTING_BYTES = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\n", b"\r\n", b"\\", b"%", b"\"",
                     b"'", b"{", b"}", b"[", b"]", b"..", b"/", b"\xc3\x28", b"\xf0\x9f\x92",
                     b"\xe2\x80\xa8", b"\x1b[31m")


@dataclass
class Target:
    """One parser under fuzzing.

    ``feed`` parses one input; it may raise only ``allowed`` errors (their ``str()`` must work
    and, when ``one_line`` is set, hold no newline: it becomes a one-line CLI error).
    ``tokens`` are inserted by the mutator (keywords, delimiters the format cares about);
    ``json`` mutates seeds structurally as JSON documents as well as byte by byte.
    """

    name: str
    seeds: Callable[[], list[bytes]]
    feed: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    tokens: Sequence[bytes] = ()
    json: bool = False
    one_line: bool = False
    weight: float = 1.0
    max_len: int = MAX_INPUT
    # A structure-aware mutator (None: the input is not worth it); used for most inputs.
    mutator: Callable[[random.Random, bytes, Sequence[bytes]], bytes | None] | None = None
    # Run once after the loop: an invariant over everything the inputs did (fsck clean).
    finish: Callable[[], None] | None = None
    close: Callable[[], None] | None = None


@dataclass
class Crash:
    target: str
    seed: int
    iteration: int
    data: bytes
    minimal: bytes
    error: str
    trace: str

    def report(self) -> str:
        return (
            f"fuzz target {self.target!r} failed on input #{self.iteration} "
            f"(replay: NBCONTAINER_FUZZ_SEED={self.seed} pytest tests/fuzz -k {self.target})\n"
            f"minimal input ({len(self.minimal)} bytes): {self.minimal!r}\n"
            f"error: {self.error}\n{self.trace}"
        )


@dataclass
class Stats:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    crash: Crash | None = None


class Slow(Exception):
    """An input that took longer than :data:`SLOW_SECONDS`."""


def _signature(exc: BaseException) -> tuple[str, str]:
    """Type and innermost frame: two failures are "the same" when both match."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    return type(exc).__name__, where


def check_one(target: Target, data: bytes) -> BaseException | None:
    """Feed one input: None when it parsed or failed as allowed, else the exception."""
    t0 = time.perf_counter()
    try:
        target.feed(data)
    except target.allowed as exc:
        try:
            text = str(exc)
        except Exception as bad:  # noqa: BLE001 - rendering must never fail
            return bad
        if target.one_line and "\n" in getattr(exc, "message", text):
            return AssertionError(f"error message is not one line: {text!r}")
    except Exception as exc:  # noqa: BLE001 - anything else is what we are looking for
        return exc
    if time.perf_counter() - t0 > SLOW_SECONDS:
        return Slow(f"input took {time.perf_counter() - t0:.1f} s")
    return None


def minimize(target: Target, data: bytes, failure: BaseException, budget: float = 5.0) -> bytes:
    """Delta debugging: drop chunks while the failure keeps its signature."""
    want = _signature(failure)
    deadline = time.monotonic() + budget
    best = data
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, shrunk = 0, False
        while i < len(best) and time.monotonic() < deadline:
            candidate = best[:i] + best[i + chunk:]
            exc = check_one(target, candidate) if candidate != best else None
            if exc is not None and _signature(exc) == want:
                best, shrunk = candidate, True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return best


# ---------------------------------------------------------------------------- mutators
def _mutate_bytes(rng: random.Random, data: bytes, corpus: Sequence[bytes],
                  tokens: Sequence[bytes], max_len: int) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
        op = rng.randrange(11)
        n = len(buf)
        i = rng.randrange(n + 1)
        j = min(n, i + rng.choice((1, 2, 4, 8, 32, 512)))
        if op == 0 and n:
            buf[min(i, n - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[min(i, n - 1)] = rng.choice((0, 0xFF, 0x7F, 0x80, 0x20, 0x30, 0x39))
        elif op == 2:
            buf[i:i] = rng.choice(INTERESTING_BYTES)
        elif op == 3:
            del buf[i:j]
        elif op == 4:
            buf[i:i] = buf[i:j] * rng.choice((1, 2, 16))
        elif op == 5 and tokens:
            buf[i:i] = rng.choice(tokens)
        elif op == 6 and corpus:
            other = rng.choice(corpus)
            k = rng.randrange(len(other) + 1)
            buf = buf[:i] + bytearray(other[k:k + rng.randrange(1, 256)]) + buf[j:]
        elif op == 7:
            buf = buf[:i]  # truncate
        elif op == 8:
            buf[i:i] = rng.randbytes(rng.randrange(1, 16))
        elif op == 9 and n:
            num = str(rng.choice(INTERESTING_INTS)).encode()
            buf[i:j] = num
        else:  # swap two lines
            lines = bytes(buf).split(b"\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            buf = bytearray(b"\n".join(lines))
    return bytes(buf[:max_len])


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(14 if depth < 3 else 11)
    values: list[object] = [
        None, True, False, "", "x" * rng.choice((1, 64, 5000)), rng.choice(INTERESTING_INTS),
        -0.5, 1e308, "sha256:" + "a" * 64, "application/vnd.oci.image.layer.v1.tar",
        "\u0000\n\u2028",
    ]
    if choice < len(values):
        return values[choice]
    if choice == 11:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if choice == 12:
        return {rng.choice(("a", "mediaType", "size", "digest", "os")): _random_json(rng, depth + 1)
                for _ in range(rng.randrange(3))}
    return "x" * 100  # a plain string


def _nodes(doc: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Paths to every node of a JSON document."""
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _nodes(v, (*path, i))
    return out


def _get(doc: object, path: tuple[object, ...]) -> object:
    for p in path:
        doc = doc[p]  # type: ignore[index]
    return doc


def _mutate_json(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes | None:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    root: list[object] = [doc]  # a holder so the root itself can be replaced
    for _ in range(rng.choice((1, 1, 2, 3))):
        paths = _nodes(root[0])
        path = rng.choice(paths)
        parent_path, key = (path[:-1], path[-1]) if path else ((), None)
        parent = _get(root[0], parent_path) if path else root
        if key is None:
            key = 0
        op = rng.randrange(7)
        if op <= 2:  # replace with another type or value
            parent[key] = _random_json(rng)  # type: ignore[index]
        elif op == 3 and isinstance(parent, dict):
            del parent[key]
        elif op == 4:  # wrap in a list, or nest deeper
            parent[key] = [parent[key]] if rng.random() < 0.5 else {"x": parent[key]}  # type: ignore[index]
        elif op == 5:  # copy another node here (a digest into a size, a list into a map)
            other = _get(root[0], rng.choice(paths))
            parent[key] = json.loads(json.dumps(other))  # type: ignore[index]
        else:  # add an unknown field
            node = _get(root[0], path)
            if isinstance(node, dict):
                node[f"unknown{rng.randrange(9)}"] = _random_json(rng)
            elif isinstance(node, list):
                node.append(_random_json(rng))
    return json.dumps(root[0], allow_nan=True).encode()


def mutate(rng: random.Random, target: Target, corpus: Sequence[bytes]) -> bytes:
    seed = rng.choice(corpus)
    if target.mutator is not None and rng.random() < 0.8:
        out = target.mutator(rng, seed, corpus)
        if out is not None:
            return out[: target.max_len]
    if target.json and rng.random() < 0.6:
        out = _mutate_json(rng, seed, corpus)
        if out is not None:
            return out[: target.max_len]
    return _mutate_bytes(rng, seed, corpus, target.tokens, target.max_len)


# ---------------------------------------------------------------------------- the loop
def run(target: Target, seed: int, seconds: float, *, max_inputs: int | None = None,
        on_input: Callable[[bytes], None] | None = None) -> Stats:
    """Fuzz ``target`` for ``seconds``; stops at the first crash (minimized)."""
    rng = random.Random(f"{seed}:{target.name}")
    corpus = [s[: target.max_len] for s in target.seeds()]
    if not corpus:
        raise ValueError(f"fuzz target {target.name!r} has no seed inputs")
    stats = Stats(target.name)
    seen: set[str] = set()
    t0 = time.monotonic()
    # The seeds themselves first: a parser must accept (or cleanly refuse) its own corpus.
    pending = list(corpus)
    while True:
        if max_inputs is not None and stats.inputs >= max_inputs:
            break
        if time.monotonic() - t0 >= seconds and not pending:
            break
        data = pending.pop(0) if pending else mutate(rng, target, corpus)
        if on_input is not None:
            on_input(data)
        exc = _feed_and_classify(target, data, stats, seen, corpus)
        stats.inputs += 1
        if exc is not None:
            minimal = minimize(target, data, exc)
            stats.crash = Crash(target.name, seed, stats.inputs, data, minimal,
                                f"{type(exc).__name__}: {exc}",
                                "".join(traceback.format_exception(exc)))
            break
    stats.seconds = time.monotonic() - t0
    return stats


def _feed_and_classify(target: Target, data: bytes, stats: Stats, seen: set[str],
                       corpus: list[bytes]) -> BaseException | None:
    t0 = time.perf_counter()
    try:
        target.feed(data)
        outcome = "ok"
    except target.allowed as exc:
        outcome = type(exc).__name__
        message = getattr(exc, "message", None) or str(exc)
        key = f"{outcome}:{message[:24]}"
        if key not in seen and len(corpus) < 2000:
            seen.add(key)
            corpus.append(data)  # it reached a new error: mutate it further
        if target.one_line and "\n" in message:
            return AssertionError(f"error message is not one line: {message!r}")
    except Exception as exc:  # noqa: BLE001 - a crash
        return exc
    if time.perf_counter() - t0 > SLOW_SECONDS:
        return Slow(f"input took {time.perf_counter() - t0:.1f} s")
    stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
    return None
