"""What every console entry shares: one-line user errors, ``--debug``, ``--version``, quiet warnings, threads.

Every entry (``lcm-hf``, ``processing/build_dataset.py``, ``training/*.py``, ``modeling/*.py``) runs its
``main(argv)`` through :func:`run_main`:

- A user error (:class:`~lcm_hf.errors_lcm.LcmInputError`, raised wherever input is checked; ``OSError`` such as
  ``FileNotFoundError``; an argparse usage error; ``SystemExit("message")``) is printed as one line ``error: ...``
  on stderr, exit status 2 (argparse's convention). Any other exception (a ``KeyError``, a ``TypeError`` or a
  ``ValueError`` from inside a library) is a bug and keeps its traceback. ``--debug`` anywhere on the command line (it is removed before parsing) or the
  environment variable ``LCM_HF_DEBUG=1`` shows the full traceback instead.
- Warnings print as one line ``warning: ...`` (no source line), each message once.
- Threads, one rule (:func:`thread_policy`): OpenMP's idle threads sleep instead of spinning
  (``OMP_WAIT_POLICY=PASSIVE`` unless the user set a waiting variable), set before the entry loads torch
  (:func:`prepare_thread_environment`); the count (``--num_threads``, else ``OMP_NUM_THREADS``, else the CPUs
  available, reduced on a busy machine) is set in torch by :func:`configure_threads`.

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
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

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


HEADER_HELP = ("text files: is the first line that does not start with '#' a header row of ROI labels? auto (default): "
               "a row of names, or of ROI codes (whole numbers, all distinct, e.g. 2001 2002 ...) above decimal data; "
               "codes above whole numbers are refused as ambiguous; yes: always; no: never (it is data)")


def add_threads_argument(parser) -> None:
    """``--num-threads N``: torch's CPU threads, by the one rule (:func:`thread_policy`) when not given; one flag for
    `lcm-hf demo`, `lcm-hf predict` and `lcm-hf embed`."""
    def positive_threads(text: str) -> int:
        if not text.strip().isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"expected a positive number of threads, got {text!r}")
        return int(text)

    parser.add_argument("--num-threads", type=positive_threads, default=None,
                        help="torch CPU threads (default: OMP_NUM_THREADS, else the CPUs available to the "
                        "process, reduced to those a busy machine's load leaves free)")


def add_header_argument(parser) -> None:
    """``--header auto|yes|no``: the text reader's header rule (:func:`lcm_hf.text_tables_lcm.read_text_table`),
    one flag for build_dataset.py, `lcm-hf predict` and `lcm-hf embed`."""
    parser.add_argument("--header", choices=("auto", "yes", "no"), default="auto", help=HEADER_HELP)


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


# OpenMP's waiting between parallel regions: set by the user (any of these), else passive (sleep, don't spin).
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _local_world_size(environ=None) -> int:
    environ = os.environ if environ is None else environ
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        try:
            return max(1, int(environ[name]))
        except (KeyError, ValueError):
            continue
    return 1


def available_cpus() -> int | None:
    """CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``); None when unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _runnable_now(samples: int = 5, interval: float = 0.02) -> float | None:
    """Runnable tasks on the machine now, this one excluded (``/proc/loadavg``'s 4th field; the median of a few
    reads); None where there is no such file."""
    import statistics
    import time

    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as file:
                counts.append(int(file.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return float(statistics.median(counts))


def machine_load() -> float | None:
    """How many CPUs other work keeps busy: the larger of the machine's 1-minute load average and the tasks
    runnable now (the average lags by a minute behind jobs that just started); None where the OS has neither."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        average = None
    now = _runnable_now()
    known = [value for value in (average, now) if value is not None]
    return max(known) if known else None


def wait_environment(environ) -> dict:
    """``{"OMP_WAIT_POLICY": "PASSIVE"}`` unless ``environ`` sets one of :data:`WAIT_VARIABLES` (then ``{}``): idle
    OpenMP threads sleep instead of spinning on CPUs other processes need (torch's default spins a while)."""
    return {} if any(environ.get(name) for name in WAIT_VARIABLES) else {"OMP_WAIT_POLICY": "PASSIVE"}


class ThreadPolicy(NamedTuple):
    """The threads a process uses and why (:func:`thread_policy`).

    Attributes
    ----------
    threads : int
        torch intra-op threads per process (interop: 1).
    source : str
        Why, in words for the start line (``"--num_threads"``, ``"OMP_NUM_THREADS"``, ``"2 CPUs available, load
        1.3"``).
    env : dict
        Environment variables to set before torch (its OpenMP runtime) loads: ``OMP_WAIT_POLICY=PASSIVE`` unless
        the user set one of :data:`WAIT_VARIABLES`.
    """

    threads: int
    source: str
    env: dict


def thread_policy(num_threads: int | None = None, *, environ=None, cpus: int | None = None,
                  machine_cpus: int | None = None, load: float | None = None,
                  local_world_size: int | None = None) -> ThreadPolicy:
    """The one thread rule of every script and the demo (a pure function of what it is given).

    An explicit count wins: ``num_threads`` (``--num_threads``), else ``OMP_NUM_THREADS``. Otherwise the CPUs
    this process may use (``cpus``, ``os.sched_getaffinity``) divided by the processes on this machine, and, on a
    machine already busy, no more than the CPUs left free (``machine_cpus - load``, rounded, shared by the local
    processes), at least 1: threads that outnumber free CPUs wait for each other at every parallel region.

    Parameters
    ----------
    num_threads : int, optional
        The ``--num_threads`` flag.
    environ : mapping, optional
        The environment (default ``os.environ``): ``OMP_NUM_THREADS``, :data:`WAIT_VARIABLES`,
        ``LOCAL_WORLD_SIZE`` / ``WORLD_SIZE`` when ``local_world_size`` is None.
    cpus : int, optional
        CPUs this process may use (unknown: 1).
    machine_cpus : int, optional
        CPUs of the machine the load is counted on (default ``cpus``).
    load : float, optional
        The machine's 1-minute load average before this process starts working (None: not reduced).
    local_world_size : int, optional
        Processes of this run on this machine.

    Returns
    -------
    ThreadPolicy

    Raises
    ------
    LcmInputError
        ``num_threads`` below 1, or an ``OMP_NUM_THREADS`` that is not a positive whole number.
    """
    environ = os.environ if environ is None else environ
    env = wait_environment(environ)
    if num_threads is not None:
        if num_threads < 1:
            raise LcmInputError(f"--num_threads: expected a positive number of threads, got {num_threads}")
        return ThreadPolicy(num_threads, "--num_threads", env)
    explicit = environ.get("OMP_NUM_THREADS", "").strip()
    if explicit:
        first = explicit.split(",")[0].strip()  # OpenMP's nested list "4,2": the outer level
        if not first.isdigit() or int(first) < 1:
            raise LcmInputError(f"OMP_NUM_THREADS: expected a positive whole number of threads, got {explicit!r}; "
                                "unset it for the default")
        return ThreadPolicy(int(first), "OMP_NUM_THREADS", env)
    local = _local_world_size(environ) if local_world_size is None else max(1, local_world_size)
    threads = max(1, (cpus or 1) // local)
    source = f"{cpus or 'unknown'} CPUs available" + (f" / {local} processes" if local > 1 else "")
    if load is not None:
        free = (machine_cpus or cpus or 1) - load
        threads = min(threads, max(1, math.floor(free / local + 0.5)))
        source += f", load {load:.1f}"
    return ThreadPolicy(threads, source, env)


def current_thread_policy(num_threads: int | None = None) -> ThreadPolicy:
    """:func:`thread_policy` for this process now (its CPU affinity, the machine's load, ``os.environ``)."""
    explicit = num_threads is not None or os.environ.get("OMP_NUM_THREADS", "").strip()
    load = None if explicit else machine_load()  # read only when it decides (it samples for ~0.1 s)
    return thread_policy(num_threads, cpus=available_cpus(), machine_cpus=os.cpu_count(), load=load)


def configure_threads(num_threads: int | None = None, announce: bool = True, flag: str | None = "--num_threads") -> int:
    """Set torch's threads by the one rule, :func:`thread_policy` (intra-op: the count; interop: 1).

    Parameters
    ----------
    num_threads : int, optional
        Threads per process (``--num_threads``); default: ``OMP_NUM_THREADS``, else the CPUs available to the
        process (``os.sched_getaffinity``) divided by the local world size, no more than the CPUs the machine's
        load leaves free, at least 1.
    announce : bool
        Print one line saying the count and why (on the local main process only).
    flag : str, optional
        The entry's flag for ``num_threads``, named in that line (None: the entry has none).

    Returns
    -------
    int
        The torch intra-op threads set.
    """
    policy = current_thread_policy(num_threads)
    for name, value in policy.env.items():  # for processes started from here (torch here has read its own)
        os.environ.setdefault(name, value)
    import torch

    torch.set_num_threads(policy.threads)
    try:
        torch.set_num_interop_threads(1)  # no inter-op parallelism is used; fewer threads to wake on a busy machine
    except RuntimeError:  # set already, or inter-op work started: keep torch's
        pass
    if announce and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        source = flag if flag and policy.source == "--num_threads" else policy.source
        change = f"{flag} N or OMP_NUM_THREADS=N" if flag else "OMP_NUM_THREADS=N"
        print(f"torch threads: {policy.threads} per process ({source}; {change} to change)", flush=True)
    return policy.threads


def prepare_thread_environment() -> dict:
    """Set the OpenMP waiting policy (passive unless the user chose one) while torch is not loaded yet: OpenMP
    reads it once, when torch loads. Every console entry calls it first (`lcm_hf.console.run_main`); returns the
    variables set (none once torch is loaded: too late for this process)."""
    if "torch" in sys.modules:
        return {}
    env = wait_environment(os.environ)
    os.environ.update(env)
    return env


__all__ = [
    "EXIT_USAGE",
    "ArgumentParser",
    "ThreadPolicy",
    "WAIT_VARIABLES",
    "add_console_arguments",
    "add_header_argument",
    "add_threads_argument",
    "available_cpus",
    "configure_threads",
    "current_thread_policy",
    "debug_enabled",
    "error_exit",
    "exit_if_version",
    "machine_load",
    "one_line",
    "one_line_errors",
    "package_version",
    "prepare_thread_environment",
    "quiet_warnings",
    "run_main",
    "strip_debug",
    "thread_policy",
    "wait_environment",
]
