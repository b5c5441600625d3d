"""The build steps: what each Dockerfile instruction does to the image state.

Every step takes the stage's :class:`~..stage.StageRun`, the state and cache key before it,
and returns the state and key after it (a cache hit returns the recorded state unchanged).
"""

from __future__ import annotations

from ...dockerfile import Add, Arg, Copy, Instruction, Run, Workdir
from ...dockerfile.instructions import instruction_fields
from ..stage import StageRun
from ..state import ImageState
from .config import arg, config, workdir
from .copy import copy_step
from .run import run_step


def execute(run: StageRun, state: ImageState, key: str, pos: int, instr: Instruction,
            is_trigger: bool) -> tuple[ImageState, str]:
    """Run one instruction (``pos`` is its index in the stage; triggers are ONBUILD's)."""
    fields = {k: v for k, v in instruction_fields(instr).items() if k != "trigger"}
    if isinstance(instr, Arg):
        return arg(run, state, key, pos, instr, is_trigger)
    if isinstance(instr, Run):
        return run_step(run, state, key, instr, fields)
    if isinstance(instr, (Copy, Add)):
        return copy_step(run, state, key, instr, fields)
    if isinstance(instr, Workdir):
        return workdir(run, state, key, instr)
    return config(run, state, key, instr, fields)


def numbered(instr: Instruction) -> bool:
    """Whether an instruction shows as a numbered progress step (as in BuildKit)."""
    return isinstance(instr, (Run, Copy, Add, Workdir))
