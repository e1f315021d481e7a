"""Complete-or-absent outputs and overwriting only what lcm-hf wrote.

- :func:`atomic_write_text` / :func:`atomic_write_json`: a file is written to a temporary sibling
  ``.<name>.tmp-<pid>`` and renamed into place, so a kill or a full disk leaves the previous file intact.
- :func:`staged_folder`: a folder (a published dataset) is filled in a temporary sibling and swapped in
  (old folder renamed aside, new one renamed in, old one deleted); on failure the old folder is untouched.
- :data:`MARKER_NAME` (``.lcm_hf_output.json``, ``{"kind", "version"}``) marks a folder the package wrote;
  :func:`check_output_folder` lets ``overwrite`` replace only such a folder, and never one that holds the
  inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors_lcm import LcmInputError
from .saving_lcm import staging_path

MARKER_NAME = ".lcm_hf_output.json"
KINDS = ("dataset", "model", "report")


def _version() -> str:
    from . import __version__

    return __version__


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` through a temporary sibling and an atomic rename; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    temporary = Path(staging_path(path))
    try:
        with open(temporary, "w", encoding=encoding) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | os.PathLike, value, **dump_kwargs) -> Path:
    """:func:`atomic_write_text` of ``json.dumps(value, **dump_kwargs)``."""
    return atomic_write_text(path, json.dumps(value, **dump_kwargs))


def write_marker(folder: str | os.PathLike, kind: str) -> Path:
    """Mark `folder` as written by lcm-hf: ``.lcm_hf_output.json`` = ``{"kind": kind, "version": ...}``."""
    if kind not in KINDS:
        raise LcmInputError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    return atomic_write_json(Path(folder) / MARKER_NAME, {"kind": kind, "version": _version()})


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The marker of `folder` (``{"kind", "version"}``), or None if it has none (or an unreadable one)."""
    try:
        with open(Path(folder) / MARKER_NAME, encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _legacy_dataset(folder: Path) -> bool:
    """A dataset `publish_dataset` wrote before markers existed: a card tagged lcm-hf and parquet shards only."""
    card = folder / "README.md"
    if not card.is_file() or not (folder / "data").is_dir():
        return False
    head = card.read_text(encoding="utf-8", errors="replace")[:4000]
    if not head.startswith("---") or "- lcm-hf" not in head.split("\n---", 1)[0]:
        return False
    allowed = {"README.md", "data", "bei_vocabulary.json"}
    data_ok = all(p.suffix == ".parquet" for p in (folder / "data").iterdir())
    return data_ok and {p.name for p in folder.iterdir()} <= allowed


def written_by_lcm_hf(folder: str | os.PathLike, kind: str) -> bool:
    """Whether `folder` holds a `kind` output lcm-hf wrote (its marker, or a pre-marker published dataset)."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is not None:
        return marker.get("kind") == kind
    return kind == "dataset" and _legacy_dataset(folder)


def check_output_folder(
    folder: str | os.PathLike,
    *,
    kind: str,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    flag: str = "output folder",
) -> Path:
    """Refuse an output folder that would destroy something: raises ValueError, else returns the folder.

    Parameters
    ----------
    folder : path-like
        The output folder.
    kind : {"dataset", "model", "report"}
        What is written there.
    overwrite : bool
        Whether a non-empty `folder` may be replaced; only one holding a `kind` lcm-hf wrote is.
    inputs : iterable of path-like
        Input files/folders: `folder` must neither be nor contain any of them (None entries are skipped).
    flag : str
        How the error names the output (e.g. ``"--output"``).
    """
    folder = Path(folder)
    resolved = folder.resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if source == resolved or resolved in source.parents:
            raise LcmInputError(
                f"{flag}: expected a folder apart from the inputs, got {folder}, which holds the input "
                f"{item}; choose another output folder (nothing was written)"
            )
    if folder.exists() and not folder.is_dir():
        raise LcmInputError(f"{flag}: expected a folder, got the file {folder}")
    check_writable(folder, flag=flag)  # before any (long) import work, not after it
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise LcmInputError(
                f"{flag}: expected an empty or new output folder, got non-empty {folder} "
                f"(pass overwrite=True / --overwrite to replace a {kind} lcm-hf wrote)"
            )
        if not written_by_lcm_hf(folder, kind):
            raise LcmInputError(
                f"{flag}: --overwrite replaces only a {kind} lcm-hf wrote (a folder with {MARKER_NAME}), "
                f"got {folder}, which has no such {kind}; refusing to replace it: choose a new output folder "
                "or remove it yourself"
            )
    return folder


def _remove_stale(target: Path) -> list[str]:
    from .saving_lcm import remove_stale_staging

    return remove_stale_staging(target)


def check_writable(path: str | os.PathLike, *, flag: str = "output") -> Path:
    """Refuse (ValueError naming `flag`) an output path that cannot be written: its nearest existing folder is a file
    or does not let us create anything (read-only, no permission). Checked with a probe folder, before any work."""
    path = Path(path).absolute()
    existing = path.parent  # outputs are staged beside their place
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LcmInputError(f"{flag}: expected a writable place, got {path}, under the file {existing}")
    import tempfile

    try:
        probe = tempfile.mkdtemp(prefix=".lcm_hf-write-check-", dir=existing)
    except OSError as error:
        raise LcmInputError(f"{flag}: expected a writable place, got {path}: {existing} is not writable "
                            f"({error.strerror or error}); choose another output (nothing was read or written)") from None
    os.rmdir(probe)
    return path


def _holds(outer: Path, inner: Path) -> bool:
    return outer == inner or outer in inner.parents


def looks_like_dataset(folder: str | os.PathLike) -> bool:
    """A connectome dataset folder: written by lcm-hf as one, or a `save_to_disk` / parquet dataset layout."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if written_by_lcm_hf(folder, "dataset") or (folder / "dataset_dict.json").is_file():
        return True
    if (folder / "dataset_info.json").is_file() and (folder / "state.json").is_file():
        return True
    data = folder / "data"
    return (folder / "README.md").is_file() and data.is_dir() and any(data.glob("*.parquet"))


def check_output_file(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    flag: str = "output",
) -> Path:
    """Refuse an output file that is one of the command's inputs (whatever `overwrite` says), a folder, an existing
    file without `overwrite`, or an unwritable place. Returns the path.

    Parameters
    ----------
    path : path-like
        The file to write.
    inputs : iterable of path-like
        The command's input files and folders (None entries skipped): `path` may be none of them.
    overwrite : bool
        Whether an existing file (not an input) may be replaced.
    flag : str
        How the error names the output (e.g. ``"--output"``).
    """
    path = Path(path)
    resolved = path.resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if source == resolved:
            raise LcmInputError(f"{flag}: expected a file apart from the inputs, got {path}, which is the input {item}; "
                                "choose another output file (--overwrite never replaces an input; nothing was written)")
    if path.is_dir():
        raise LcmInputError(f"{flag}: expected a file to write, got the folder {path}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    check_writable(path, flag=flag)
    return path


def check_training_output(
    folder: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    flag: str = "--output_dir",
) -> Path:
    """Refuse a training output folder that would write over data or a model it reads: a dataset folder, one of
    the `inputs` (dataset folders, the model finetuned), a folder holding one, or a folder inside an input; or an
    unwritable place. Returns the folder.
    """
    folder = Path(folder)
    resolved = folder.resolve()
    for item in inputs:
        if item is None or not os.path.exists(item):
            continue
        source = Path(item).resolve()
        if _holds(resolved, source) or _holds(source, resolved):
            where = "is" if source == resolved else ("holds" if _holds(resolved, source) else "is inside")
            raise LcmInputError(f"{flag}: expected a folder apart from the inputs, got {folder}, which {where} the input "
                                f"{item}; choose another output folder (nothing was written)")
    if looks_like_dataset(folder):
        raise LcmInputError(f"{flag}: expected a folder for the model, got {folder}, which holds a dataset "
                            "(build_dataset.py output); choose another output folder (nothing was written)")
    check_writable(folder, flag=flag)
    return folder


def replace_folder(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the folder `staging` at `target`: the old `target` is renamed aside, `staging` renamed in, the old
    one deleted. If the swap fails, the old `target` is put back."""
    staging, target = os.fspath(staging), os.fspath(target)
    if not os.path.lexists(target):
        os.replace(staging, target)
        return
    parent, name = os.path.split(os.path.abspath(target))
    aside = os.path.join(parent, f".{name}.old-{os.getpid()}")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(target, aside)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike, kind: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of `folder` to fill; on success it replaces `folder` (marked as `kind`).

    On an exception (a kill, a full disk) the temporary folder is removed and `folder` is as it was.
    """
    folder = Path(folder).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder)  # .<name>.tmp-<pid> / .<name>.old-<pid> of killed writes
    staging = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if kind is not None:
            write_marker(staging, kind)
        replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = [
    "MARKER_NAME",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_file",
    "check_output_folder",
    "check_training_output",
    "check_writable",
    "looks_like_dataset",
    "read_marker",
    "replace_folder",
    "staged_folder",
    "write_marker",
    "written_by_lcm_hf",
]
