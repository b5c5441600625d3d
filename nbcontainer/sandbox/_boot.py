"""Entry point of the helper process: ``python -I -S _boot.py serve|run|probe|userns ...``.

Run as a script in isolated mode, so neither the caller's environment nor site-packages nor
``nbcontainer/__init__`` are loaded: the sandbox modules are imported as a private package
``_nbsandbox`` straight from this directory (they use only the stdlib and relative imports).
The command lines are defined in ``messages.py``.
"""

import os
import sys
import types


def main(argv: list[str]) -> int:
    package = types.ModuleType("_nbsandbox")
    package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules["_nbsandbox"] = package
    from _nbsandbox import _helper

    return int(_helper.main(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
