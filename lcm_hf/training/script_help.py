"""``--help`` of the training scripts in well under a second: their option list, rendered ahead of time.

Building the scripts' parser needs transformers' `TrainingArguments` (torch, transformers, peft: seconds). The
help it prints is stored, rendered at :data:`WIDTH` columns, in ``help_texts/<script>.txt`` with a first line
naming what it was rendered with (the transformers and torch versions and whether TensorBoard is installed,
which set defaults the help shows); :func:`exit_if_help` prints it when that matches the installed environment, and
otherwise lets the live parser answer. `tests/test_imports.py` checks the stored text against the live parser;
``python -m lcm_hf.training.script_help`` renders it again (after an option or transformers changed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

HELP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "help_texts")
SCRIPTS = ("pretrain.py", "finetune.py")
WIDTH = 100


def environment_stamp() -> str:
    """What the stored help depends on, read without importing transformers or torch."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("transformers", "torch"):  # the default optimizer follows the torch version
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} none")
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    return f"# --help of lcm-hf training scripts: {', '.join(versions)}, tensorboard {tensorboard}"


def stored_help(script: str) -> str | None:
    """The stored help of `script` (e.g. ``"pretrain.py"``), or None if there is none for this environment."""
    try:
        with open(os.path.join(HELP_DIR, f"{script}.txt"), encoding="utf-8") as handle:
            stamp, text = handle.read().split("\n", 1)
    except (OSError, ValueError):
        return None
    return text if stamp == environment_stamp() else None


def exit_if_help(argv: Sequence[str] | None, script: str) -> None:
    """Print the stored help and exit 0 when ``-h`` / ``--help`` is asked for and a stored help fits."""
    argv = sys.argv[1:] if argv is None else argv
    if not any(token in ("-h", "--help") for token in argv):
        return
    text = stored_help(script)
    if text is not None:
        sys.stdout.write(text)
        raise SystemExit(0)


def render_help(script: str) -> str:
    """The live parser's help of `script`, at :data:`WIDTH` columns (imports transformers)."""
    from .arguments import SCRIPT_ARGUMENTS, build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        return build_parser(SCRIPT_ARGUMENTS[script], prog=script).format_help()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def write_help_texts() -> list[str]:
    """Render and store the help of every training script; returns the files written."""
    from ..atomic import atomic_write_text

    written = []
    for script in SCRIPTS:
        path = os.path.join(HELP_DIR, f"{script}.txt")
        atomic_write_text(path, f"{environment_stamp()}\n{render_help(script)}")
        written.append(path)
    return written


if __name__ == "__main__":
    print("\n".join(write_help_texts()))


__all__ = ["exit_if_help", "render_help", "stored_help", "write_help_texts"]
