"""Entry point of the helper process: ``python -I -S _boot.py serve|run|probe|userns ...``.

Run as a script in isolated mode, so neither the caller's environment nor site-packages nor
``nbcontainer/__init__`` are loaded: the sandbox modules are imported as a private package
``_nbsandbox`` straight from this directory (they use only the stdlib and relative imports).
"""

import os
import sys
import types


def _load() -> types.ModuleType:
    package = types.ModuleType("_nbsandbox")
    package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules["_nbsandbox"] = package
    from _nbsandbox import _helper

    return _helper


def main(argv: list[str]) -> int:
    helper = _load()
    mode = argv[0]
    if mode == "serve":
        userns = None if argv[2] == "none" else argv[2]
        return helper.serve(int(argv[1]), userns, int(argv[3]), int(argv[4]), argv[5], argv[6])
    if mode == "run":
        return helper.child_main(int(argv[1]), int(argv[2]))
    if mode == "probe":
        import marshal

        result = helper.probe(argv[1], argv[2] == "1", int(argv[3]), int(argv[4]))
        os.write(1, marshal.dumps(result))
        return 0
    if mode == "userns":
        return helper.userns_exec(int(argv[1]), argv[2:])
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
