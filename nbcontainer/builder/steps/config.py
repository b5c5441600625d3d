"""Steps that change the image config (and WORKDIR, which may create its directory).

``ARG`` records the value the stage sees; ``ENV``, ``LABEL``, ``CMD``… change the config and
add a history entry where Docker does; none of them runs anything.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...dockerfile import Arg, Cmd, Entrypoint, Instruction, Onbuild, Workdir
from ...store.buildcache import step_key
from .. import copyplan, metadata
from .. import history as hist
from ..commit import commit_ops
from ..fsview import StackView
from ..stage import StageRun
from ..state import ImageState

Result = tuple[ImageState, str]


def arg(run: StageRun, state: ImageState, key: str, pos: int, instr: Arg,
        is_trigger: bool) -> Result:
    """``ARG``: the value is the one the plan resolved for this point of the stage (an
    ONBUILD trigger keeps its own default)."""
    stage = run.stage
    after = stage.args_before[pos + 1] if pos + 1 < len(stage.args_before) else stage.args
    words = []
    for spec in instr.args:
        value = after.get(spec.key) if not is_trigger else spec.value
        run.args.append((spec.key, value))
        words.append(spec.key if value is None else f"{spec.key}={value}")
    new_key = step_key(key, "ARG", words)
    cached = run.cached(new_key)
    if cached is None:
        cached = run.history(state, "ARG " + " ".join(words), True)
        run.record(new_key, cached)
    return cached, new_key


def config(run: StageRun, state: ImageState, key: str, instr: Instruction,
           fields: dict[str, Any]) -> Result:
    """ENV, LABEL, CMD, ENTRYPOINT, EXPOSE, USER, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL,
    ONBUILD, MAINTAINER: a new config, no layer."""
    new_key = step_key(key, instr.keyword, fields)
    cached = run.cached(new_key)
    if cached is not None:
        return cached, new_key
    sc = metadata.apply(metadata.StageConfig(state.config, state.author, state.cmd_set), instr)
    cfg = sc.config
    if isinstance(instr, Cmd):
        cfg = replace(cfg, args_escaped=True)
    new = replace(state, config=cfg, author=sc.author, cmd_set=sc.cmd_set)
    argv = cfg.cmd if isinstance(instr, Cmd) else (
        cfg.entrypoint if isinstance(instr, Entrypoint) else None)
    created_by = hist.metadata_created_by(instr, argv)
    if created_by is not None and not isinstance(instr, Onbuild):
        new = run.history(new, created_by, True)
    run.record(new_key, new)
    return new, new_key


def workdir(run: StageRun, state: ImageState, key: str, instr: Workdir) -> Result:
    """``WORKDIR``: the config, plus the directory (owned by USER) when the image lacks it."""
    sc = metadata.apply(metadata.StageConfig(state.config, state.author, state.cmd_set), instr)
    wd = sc.config.working_dir or "/"
    user = state.config.user or ""
    with run.step(f"WORKDIR {wd}") as step:
        new_key = step_key(key, "WORKDIR", [wd, user])
        cached = run.cached(new_key)
        if cached is not None:
            step.cached()
            return cached, new_key
        new = replace(state, config=sc.config)
        ops = _workdir_ops(run, state, wd, user)
        if ops:
            new = commit_ops(run, new, ops, f"WORKDIR {wd}", buildkit=False)
        else:
            new = run.history(new, f"WORKDIR {wd}", True)
        run.record(new_key, new)
        return new, new_key


def _workdir_ops(run: StageRun, state: ImageState, wd: str, user: str) -> list[Any]:
    if wd == "/":
        return []
    view = StackView(run.lowers(state))
    if view.lookup(wd) is not None:
        return []
    owner = copyplan.resolve_chown(user.split(":")[0], view) if user else None
    session = run.session
    plan = copyplan.plan_copy([], wd + "/", view, chown=owner, chmod=None,
                              to_uid=session.to_uid, to_gid=session.to_gid, unpack=False,
                              created_mtime=run.now_ns(), multiple=False)
    return list(plan.ops)
