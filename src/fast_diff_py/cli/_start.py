"""The console scripts ``difpy`` and ``fastdiffpy``: Ctrl-C at any moment ends them with one
line, also while they load their modules (before their own handling begins), never with the
traceback of an import under way."""

from __future__ import annotations

# the signal module's C core, loaded with the interpreter: signal itself takes a while to load
import _signal
import importlib
import os
import sys

TYPE_CHECKING = False  # typing is not loaded before the handling of Ctrl-C begins
if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["difpy", "fastdiffpy", "end_process"]


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


def end_process(status: int) -> NoReturn:
    """End a finished command with ``status``: its exit handlers run, its log and its output
    flushed, then the process ends without the interpreter's teardown of every loaded module
    (numpy, pyarrow, OpenCV, the decoders), which on a small folder is a noticeable part of
    the whole run and writes nothing. Every file the run wrote is closed by then (each is
    written in a ``with`` block); where another thread still runs, Python ends as usual and
    waits for it."""
    # loaded here, not before the interrupt handler is in place (all of them are loaded by now)
    import atexit
    import threading

    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()  # logging's shutdown (every handler flushed and closed) among them
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError) as exc:  # a full disk, a closed pipe: output was lost
            # as Python's own end says it: a message where one can go, and status 120
            try:
                print(f"{os.path.basename(sys.argv[0]) or 'fast-diff'}: output lost: {exc}", file=sys.__stderr__)
            except (OSError, ValueError):
                pass
            status = status or 120
    os._exit(status)


def difpy() -> NoReturn:
    end_process(_run("difpy", "fast_diff_py.cli.difpy"))


def fastdiffpy() -> NoReturn:
    end_process(_run("fastdiffpy", "fast_diff_py.cli.fastdiffpy"))
