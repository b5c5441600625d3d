"""``RUN``: a command in the sandbox over the stage's layers; its upper dir is the layer.

The step's cache key holds what the command can see and that the user controls: the
instruction, the argv after SHELL, the environment (the config's, the declared build args';
BuildKit's predefined proxy args only when declared), USER, WORKDIR, the network mode and the
mounts' specs (never a secret's value nor a cache mount's contents). ``--host-ca`` is not part
of it (``hostca.py``: what it presents never reaches the layer), nor are proxies found in the
environment or docker's config.json (``proxies.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ...dockerfile import Run
from ...store.buildcache import step_key
from .. import history as hist
from .. import metadata
from ..commit import BUILDKIT, commit_dir, root_mode
from ..mounts import prepare, run_with_mounts
from ..platforms import check_can_run, state_platform
from ..stage import StageRun
from ..state import ImageState

if TYPE_CHECKING:
    from ...sandbox import Mount

_PURE_HEREDOC = re.compile(r"^\s*<<(-?)([\"']?)([A-Za-z_][\w.-]*)\2\s*$")

Result = tuple[ImageState, str]


def run_step(run: StageRun, state: ImageState, key: str, instr: Run,
             fields: dict[str, Any]) -> Result:
    config = state.config
    mounts: list[Mount] = []
    argv = run_argv(instr, metadata.shell_of(config), mounts)
    proxy_env = run.target.proxy_env
    arg_values = {k: v for k, v in run.args if v is not None}
    env = {**proxy_env, **arg_values, **config.env_dict()}
    key_env = {k: v for k, v in env.items() if k not in proxy_env or k in arg_values}
    prep = prepare(run, instr, mounts)
    created_by = hist.run_created_by(argv, [(k, v if v is not None else "")
                                            for k, v in run.args])
    shown = created_by.removesuffix(BUILDKIT).removeprefix("RUN ")
    network: Literal["default", "host", "none"] = \
        "none" if instr.network == "none" else "host" if instr.network == "host" else "default"
    security: Literal["sandbox", "insecure"] = \
        "insecure" if instr.security == "insecure" else "sandbox"
    if network == "host" or security == "insecure":
        # BuildKit's entitlements, checked before the cache is asked (the sandbox's module
        # loads only here: a cached build of ordinary RUN steps loads none of it)
        run.session.hardening.network(network)
        run.session.hardening.security(security)
    with run.step(f"RUN {shown}") as step:
        new_key = step_key(key, "RUN", [fields, list(argv), key_env, config.user or "",
                                        config.working_dir or "/", network, prep.keys]
                            + ([security] if security != "sandbox" else []))
        cached = run.cached(new_key)
        if cached is not None:
            step.cached()
            return cached, new_key
        # A RUN that really executes needs the stage's CPU, natively or through binfmt_misc.
        check_can_run(state_platform(state.os, state.architecture, state.variant))
        from ...sandbox import RunSpec  # (a cached build loads no sandbox)
        from ..hostca import ForRun

        scratch = run.session.scratch
        work = scratch.take()
        ok = False
        private = None
        try:
            upper = work / "upper"
            lowers = run.lowers(state)
            os.chmod(upper, root_mode(run, state, lowers))
            snapshots = run.session.snapshots
            private = snapshots.take_private(state.layer_pairs)  # tree-copy rungs only
            lowerdirs = [private] if private else lowers
            ca = ForRun(lowerdirs, env, lambda: run.session.host_trust,
                        on=run.session.options.host_ca, eager=private is not None)
            spec = RunSpec(lowerdirs=lowerdirs, upperdir=upper,
                           workdir=work / "work", mountpoint=scratch.mountpoint(),
                           argv=list(argv), env={**env, **ca.variables, **prep.env},
                           user=config.user or "", cwd=config.working_dir or "/",
                           network=network, mounts=[*mounts, *ca.mounts],
                           lower_files=ca.lower_files, security=security,
                           output=step.output, private_lower=private is not None)
            result = run_with_mounts(run, spec, prep)  # takes cache locks, rw copies
            if not result.ok:
                raise ca.failure(argv, result)  # the --host-ca hint where it applies
            unchecked: list[str] = []
            ca.scrub(upper, result.tree, unchecked)  # what --host-ca presented, if copied
            if unchecked:
                step.warn(f"--host-ca: {len(unchecked)} file(s) of this step's layer could not "
                          "be read to check that no host CA is copied in them "
                          f"(/{unchecked[0]}, …)")
            new = commit_dir(run, state, upper, created_by, full_tree=result.tree)
            if result.tree is not None and result.tree.exists():  # changed nothing
                snapshots.offer_spare(state.layer_pairs, result.tree)
            ok = True
        finally:
            if private is not None and private.exists():  # not taken over: a failure first
                scratch.discard(private)
            scratch.recycle(work, ok)
        run.record(new_key, new)
        return new, new_key


def run_argv(instr: Run, shell: Sequence[str], mounts: list[Mount]) -> list[str]:
    """The argv a RUN executes (SHELL applied); a heredoc script with a shebang runs as a
    file mounted at ``/dev/pipes/<name>`` as BuildKit does."""
    if not instr.files:
        return list(metadata.command_argv_for(shell, instr.command, instr.prepend_shell))
    cmd = instr.command[0] if instr.command else ""
    m = _PURE_HEREDOC.match(cmd)
    if m and len(instr.files) == 1:
        body = instr.files[0].content
        if body.startswith("#!"):
            from ...sandbox import SecretMount

            path = f"/dev/pipes/{instr.files[0].name}"
            mounts.append(SecretMount(path, body.encode(), 0o755))
            return [path]
        return [*shell, body]
    full = cmd + "".join("\n" + f.content + f.name for f in instr.files)
    return [*shell, full]
