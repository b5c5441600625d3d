"""The sandbox's errors: what a failed setup step means for the user, and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbcontainer.errors import BuildError

if TYPE_CHECKING:
    from .messages import ErrorEvent

# A setup step that fails names a missing kernel feature: (feature, how to get it). The
# probe (``probe.py``) chose a rung where these worked, so a failure here is unexpected: the
# hints say what is known and point at ``nbcontainer info`` for the environment's own causes.
FEATURES = {
    "userns": ("user namespaces",
               "unprivileged user namespaces are disabled or unavailable; enable them "
               "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, "
               "kernel.apparmor_restrict_unprivileged_userns=0) or build as root"),
    "namespaces": ("mount/pid/uts/ipc namespaces",
                   "the kernel or a seccomp policy refuses unshare(); running inside a "
                   "container needs --privileged or equivalent"),
    "overlay": ("overlayfs",
                "`nbcontainer info` shows whether overlayfs accepts an upper dir on the "
                "store's filesystem (it refuses overlayfs itself, e.g. a container's root); "
                "put the store on another filesystem or build with --isolation reduced"),
    "network": ("network namespaces", "RUN --network=none needs CLONE_NEWNET"),
    "idmap": ("subordinate id mapping",
              "check this user's ranges in /etc/subuid and /etc/subgid and that newuidmap/"
              "newgidmap (package uidmap) are installed setuid root; or pass "
              "idmap=IdMap.single(uid, gid)"),
}


class SandboxError(BuildError):
    """The sandbox could not be set up (not the command failing)."""

    def __init__(self, message: str, *, hint: str | None = None, feature: str | None = None,
                 step: str | None = None, errno: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.feature = feature
        self.step = step
        self.errno = errno


def setup_error(event: ErrorEvent) -> SandboxError:
    """The error for a helper's report that setting up failed at ``event["step"]``."""
    step, message = event["step"], event["message"]
    if step == "user":
        return SandboxError(f"USER: {message}", step=step)
    if step == "overlay" and event["errno"] == 19:  # ENODEV: the kernel has no overlayfs
        return SandboxError(f"sandbox: overlayfs not available ({message})",
                            hint="the kernel has no overlay filesystem: load it (modprobe "
                                 "overlay), or build with --isolation reduced (tree copies)",
                            feature="overlayfs", step=step, errno=event["errno"])
    if step in FEATURES:
        feature, hint = FEATURES[step]
        return SandboxError(f"sandbox: {feature} not available ({message})", hint=hint,
                            feature=feature, step=step, errno=event["errno"])
    return SandboxError(f"sandbox setup failed at {step}: {message}", step=step,
                        errno=event["errno"])
