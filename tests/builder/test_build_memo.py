"""The build memo: an unchanged rebuild is answered without solving, anything that may
change the result solves again, and the answer is the image a solved build gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.builder import driver, memo
from nbcontainer.progress import Collector
from tests.support.builds import write
from tests.support.marks import needs_root

pytestmark = needs_root

DF = "FROM busybox\nARG V=1\nRUN echo $V > /v\nCOPY a /a\nCMD [\"sh\"]\n"


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the builds that were solved (not answered by the memo); a context written a
    moment ago counts as settled here (the memo waits a moment otherwise)."""
    monkeypatch.setattr(memo, "RACY_NS", 0)
    monkeypatch.setattr(memo, "FINE_RACY_NS", 0)
    count: list[int] = []
    real = driver._solve

    def solve(*args, **kw):  # noqa: ANN002, ANN003
        count.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(driver, "_solve", solve)
    return count


def test_an_unchanged_rebuild_is_answered_by_the_memo(do_build, ctx: Path, solves) -> None:
    write(ctx, {"a": "a\n"})
    first = Collector()
    img = do_build(DF, tags=["m:1"], progress=first)
    second = Collector()
    again = do_build(DF, tags=["m:2"], progress=second)
    assert len(solves) == 1
    assert again.digest == img.digest
    assert api.image("m:2", store=img.store).digest == img.digest  # the new tag is applied
    titles = [(e.stage, e.step, e.steps, e.text) for e in first.kinds("start")]
    assert [(e.stage, e.step, e.steps, e.text) for e in second.kinds("start")] == titles
    assert len(second.kinds("cached")) == len(titles) and not second.kinds("done")


@pytest.mark.parametrize("change", ["dockerfile", "build-arg", "content", "new-file",
                                    "epoch", "no-cache", "base", "pruned-cache"])
def test_anything_that_may_change_the_result_solves_again(do_build, ctx: Path, solves,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          change: str) -> None:
    write(ctx, {"a": "a\n"})
    img = do_build(DF)
    kw: dict = {}
    dockerfile = DF
    if change == "dockerfile":
        dockerfile = DF + "ENV X=1\n"
    elif change == "build-arg":
        kw["build_args"] = {"V": "2"}
    elif change == "content":
        (ctx / "a").write_text("b\n")  # the same size
    elif change == "new-file":
        (ctx / "b").write_text("b\n")
    elif change == "epoch":
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    elif change == "no-cache":
        kw["no_cache"] = True
    elif change == "base":
        other = api.build("FROM busybox\nENV OTHER=1\n", ctx, store=img.store)
        api.tag(str(other.digest), "busybox:latest", store=img.store)
    else:
        import shutil

        from nbcontainer.store.buildcache import cache_dir

        shutil.rmtree(cache_dir(img.store))
    solved_before = len(solves)
    again = do_build(dockerfile, **kw)
    assert len(solves) == solved_before + 1
    if change in ("dockerfile", "build-arg", "content", "base"):
        assert again.digest != img.digest


def test_a_removed_result_is_built_again(do_build, ctx: Path, solves) -> None:
    write(ctx, {"a": "a\n"})
    img = do_build(DF, tags=["gone:1"])
    api.rmi(["gone:1"], store=img.store)
    api.prune(store=img.store)
    again = do_build(DF, tags=["gone:1"])
    assert len(solves) == 2
    assert again.store.has_image(again.digest)


def test_a_context_changed_a_moment_ago_is_not_remembered(do_build, ctx: Path, solves,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # "a moment ago": everything is recent
    monkeypatch.setattr(memo, "RACY_NS", 3600 * 10**9)
    monkeypatch.setattr(memo, "FINE_RACY_NS", 3600 * 10**9)
    write(ctx, {"a": "a\n"})
    img = do_build(DF)
    do_build(DF)
    assert len(solves) == 2
    assert not memo.memo_dir(img.store).is_dir() or not os.listdir(memo.memo_dir(img.store))


def test_a_context_changed_while_it_built_is_not_remembered(do_build, ctx: Path, solves,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A file saved while the build ran: the image holds what the build read, not what the
    context holds now, so the build is not remembered."""
    real = driver._remember

    def remember(*args, **kw):  # noqa: ANN002, ANN003
        (ctx / "a").write_text("saved meanwhile\n")
        return real(*args, **kw)

    monkeypatch.setattr(driver, "_remember", remember)
    write(ctx, {"a": "a\n"})
    img = do_build(DF)
    assert not memo.memo_dir(img.store).is_dir() or not os.listdir(memo.memo_dir(img.store))


def test_network_sources_are_never_remembered() -> None:
    from nbcontainer.dockerfile import parse

    assert driver._memorable(parse("FROM busybox\nADD a /a\nRUN true\n"))
    assert not driver._memorable(parse("FROM busybox\nADD https://example.com/x /x\n"))
    assert not driver._memorable(parse("FROM busybox\nADD https://github.com/a/b.git /b\n"))
    assert driver._memorable(parse("FROM busybox AS a\nADD https://example.com/x /x\n"
                                   "FROM busybox\nRUN true\n"))  # a stage not built


def test_prune_forgets_the_memo_of_removed_images(do_build, ctx: Path, solves) -> None:
    write(ctx, {"a": "a\n"})
    img = do_build(DF, tags=["keep:1"])
    do_build("FROM busybox\nENV GONE=1\n", tags=["gone:1"])
    assert len(os.listdir(memo.memo_dir(img.store))) == 2
    api.rmi(["gone:1"], store=img.store)
    api.prune(store=img.store)
    assert len(os.listdir(memo.memo_dir(img.store))) == 1
    do_build(DF, tags=["keep:1"])
    assert len(solves) == 2  # the kept one still answers


def test_a_step_re_run_without_cache_is_what_the_memo_answers(do_build, ctx: Path,
                                                               solves) -> None:
    df = ("FROM busybox\nRUN --mount=type=cache,target=/c echo run >> /c/log && "
          "cp /c/log /count\n")
    first = do_build(df)
    second = do_build(df, no_cache=True)  # re-runs the step: the cache entry now differs
    assert second.digest != first.digest
    third = do_build(df)
    assert third.digest == second.digest
