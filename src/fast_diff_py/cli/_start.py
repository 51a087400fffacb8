"""The console scripts ``difpy`` and ``fastdiffpy``: Ctrl-C at any moment ends them with one
line, also while they load their modules (before their own handling begins), never with the
traceback of an import under way."""

from __future__ import annotations

# the signal module's C core, loaded with the interpreter: signal itself takes a while to load
import _signal
import importlib
import os
import sys

__all__ = ["difpy", "fastdiffpy"]


def _run(prog: str, module: str) -> int:
    quiet = _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler  # not where ignored

    def stop(signum, frame):
        # at once: an exception raised here can land where an import swallows it; nothing is
        # written before the modules are loaded
        print(f"{prog}: interrupted while starting; nothing was done", file=sys.stderr, flush=True)
        os._exit(130)

    if quiet:
        _signal.signal(_signal.SIGINT, stop)
    try:
        main = importlib.import_module(module).main
    finally:
        if quiet:
            _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    try:
        return main()
    except KeyboardInterrupt:  # outside the run itself (its arguments, an undo)
        print(f"{prog}: interrupted; run the same command again to go on", file=sys.stderr)
        return 130
    finally:  # it has ended and said so: an interrupt now, while Python exits, changes nothing
        if quiet:
            _signal.signal(_signal.SIGINT, _signal.SIG_IGN)


def difpy() -> int:
    return _run("difpy", "fast_diff_py.cli.difpy")


def fastdiffpy() -> int:
    return _run("fastdiffpy", "fast_diff_py.cli.fastdiffpy")
