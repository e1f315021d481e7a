"""What every console entry shares: one-line user errors, ``--debug``, ``--version``, quiet warnings, threads.

Every entry (``lcm-hf``, ``processing/build_dataset.py``, ``training/*.py``, ``modeling/*.py``) runs its
``main(argv)`` through :func:`run_main`:

- A user error (:class:`~lcm_hf.errors_lcm.LcmInputError`, raised wherever input is checked; ``OSError`` such as
  ``FileNotFoundError``; an argparse usage error; ``SystemExit("message")``) is printed as one line ``error: ...``
  on stderr, exit status 2 (argparse's convention). Any other exception (a ``KeyError``, a ``TypeError`` or a
  ``ValueError`` from inside a library) is a bug and keeps its traceback. ``--debug`` anywhere on the command line (it is removed before parsing) or the
  environment variable ``LCM_HF_DEBUG=1`` shows the full traceback instead.
- Warnings print as one line ``warning: ...`` (no source line), each message once.
- OpenMP's idle threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE`` unless the user set a waiting
  variable), set before the entry loads torch (`lcm_hf.training.runtime.prepare_thread_environment`); the entry's
  thread count is `lcm_hf.training.runtime.configure_threads`.

This module imports only the standard library, so ``--help`` and ``--version`` answer without loading torch.

>>> from lcm_hf.errors_lcm import LcmInputError
>>> def main(argv):
...     raise LcmInputError("--window-size: expected a positive number of TRs, got 0")
>>> run_main(main, [], prog="demo")  # doctest: +SKIP
error: --window-size: expected a positive number of TRs, got 0
2
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from .errors_lcm import LcmInputError

EXIT_USAGE = 2
DEBUG_FLAG = "--debug"
DEBUG_ENV = "LCM_HF_DEBUG"
# A user error: LcmInputError (raised where input is checked) and OSError (the OS on a path the user named: missing,
# unwritable, disk full). Any other exception is a bug and keeps its traceback.
USER_ERRORS = (LcmInputError, OSError)


def package_version() -> str:
    """The installed ``lcm-hf`` version (from the package metadata: no import of torch)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lcm-hf")
    except PackageNotFoundError:
        return "unknown"


def _one_line_usage_error(parser: argparse.ArgumentParser, message: str):
    parser.exit(EXIT_USAGE, f"error: {' '.join(message.split())} (see {parser.prog} --help)\n")


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line ``error: ... (see PROG --help)``, status 2
    (sub-command parsers inherit it)."""

    def error(self, message: str):
        _one_line_usage_error(self, message)


def one_line_errors(parser):
    """Make an existing parser instance (e.g. an ``HfArgumentParser``) report usage errors on one line."""
    parser.error = lambda message: _one_line_usage_error(parser, message)
    return parser


def add_console_arguments(parser) -> None:
    """Add ``--version`` and ``--debug`` to an ``argparse`` parser (``--debug`` is consumed by :func:`run_main`)."""
    parser.add_argument("--version", action="version", version=f"%(prog)s (lcm-hf) {package_version()}")
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"show the full traceback of an error (or set {DEBUG_ENV}=1)")


def exit_if_version(argv: Sequence[str] | None, prog: str) -> None:
    """``--version`` answered before any heavy import (for entries whose parser needs torch to be built)."""
    if "--version" in (sys.argv[1:] if argv is None else argv):
        print(f"{prog} (lcm-hf) {package_version()}")
        raise SystemExit(0)


def debug_enabled(argv: Sequence[str] = ()) -> bool:
    """True with ``--debug`` in ``argv`` or ``LCM_HF_DEBUG`` set to 1/true/yes."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def strip_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """(``argv`` without a bare ``--debug``, whether debugging was asked for).

    A ``--debug`` followed by a value (``TrainingArguments``' own ``--debug underflow_overflow``) is left in place.
    """
    argv = list(argv)
    bare = [i for i, arg in enumerate(argv) if arg == DEBUG_FLAG and (i + 1 == len(argv) or argv[i + 1].startswith("-"))]
    debug = bool(bare) or debug_enabled(())
    return [arg for i, arg in enumerate(argv) if i not in bare], debug


def one_line(error: BaseException) -> str:
    """The error's message on one line (a KeyError's key unquoted; the type name when there is no message)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        message = error.args[0]
    elif isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.filename}: {error.strerror}"
    else:
        message = str(error)
    message = " ".join(message.split())
    return message or type(error).__name__


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {' '.join(str(message).split())}\n"


def quiet_warnings() -> None:
    """Warnings as one line ``warning: ...`` each, each message once; library noise that says nothing to a
    user (``pin_memory`` without an accelerator, deprecations inside dependencies) silenced."""
    warnings.formatwarning = _format_warning
    warnings.simplefilter("default")  # once per message and location
    for pattern in (r".*pin_memory.*", r".*TypedStorage is deprecated.*", r".*`resume_download` is deprecated.*"):
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|accelerate|datasets|torch).*")
    if os.environ.get("RANK", "0") != "0":  # several processes: the main one speaks for all
        warnings.simplefilter("ignore")


def error_exit(message: str) -> int:
    """Print ``error: message`` (one line) to stderr and return the usage exit status 2."""
    message = " ".join(str(message).split())
    if not message.startswith("error:"):
        message = f"error: {message}"
    print(message, file=sys.stderr, flush=True)
    return EXIT_USAGE


def run_main(main: Callable[[list[str]], object], argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run a console entry's ``main(argv)``; user errors become one line ``error: ...`` and exit status 2.

    Parameters
    ----------
    main : callable
        The entry's ``main(argv: list[str])``; its return value is the exit status (None or a non-int: 0).
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``); ``--debug`` is removed before ``main`` sees them.
    prog : str, optional
        Unused; kept for messages of entries that want it.

    Returns
    -------
    int
        The exit status: ``main``'s, 2 for a user error, 130 when interrupted.
    """
    argv, debug = strip_debug(list(sys.argv[1:] if argv is None else argv))
    from .training.runtime import prepare_thread_environment

    prepare_thread_environment()  # OpenMP reads its waiting policy once, when torch loads: before the entry runs
    with warnings.catch_warnings():  # the warning style is the entry's, not the caller's (tests, notebooks)
        format_warning = warnings.formatwarning
        if not debug:
            quiet_warnings()
        try:
            return _run(main, argv, debug)
        finally:
            warnings.formatwarning = format_warning


def _run(main, argv: list[str], debug: bool) -> int:
    try:
        status = main(argv)
    except SystemExit as stop:
        if isinstance(stop.code, str):  # raise SystemExit("error: ...")
            if debug:
                raise
            return error_exit(stop.code)
        return 0 if stop.code is None else int(stop.code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if debug:
            raise
        return error_exit(one_line(error))
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


__all__ = [
    "EXIT_USAGE",
    "ArgumentParser",
    "add_console_arguments",
    "debug_enabled",
    "error_exit",
    "exit_if_version",
    "one_line",
    "one_line_errors",
    "package_version",
    "quiet_warnings",
    "run_main",
    "strip_debug",
]
