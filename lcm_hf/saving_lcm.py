"""Complete-or-absent saving for `save_pretrained`: write into a temporary sibling folder, then move in.

A kill or a full disk while writing leaves the previous files of the folder intact (and never a folder with
only ``config.json``). Standard library only: this file ships with the model as Hub remote code.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from typing import Any

# Weight files of an older save that a new save (with other names, e.g. sharded vs single) makes stale.
_WEIGHT_FILE = re.compile(
    r"^(model|pytorch_model|adapter_model)(-\d{5}-of-\d{5})?\.(safetensors|bin)(\.index\.json)?$"
)


def staging_path(target: str | os.PathLike) -> str:
    """The temporary sibling ``.<name>.tmp-<pid>`` of `target` (same folder, so renames are atomic)."""
    target = os.path.realpath(os.fspath(target))
    parent, name = os.path.split(target)
    return os.path.join(parent, f".{name}.tmp-{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's live process (or a platform that cannot tell)
        return True
    return True


def remove_stale_staging(target: str | os.PathLike) -> list[str]:
    """Remove the temporary siblings of `target` left by killed writes of this package: ``.<name>.tmp-<pid>``
    (:func:`staging_path`) and ``.<name>.old-<pid>`` (a folder swapped aside), when process `pid` is no longer
    running. Returns the removed paths. Called before each new write to `target`."""
    target = os.path.realpath(os.fspath(target))
    parent, name = os.path.split(target)
    pattern = re.compile(r"^\." + re.escape(name) + r"\.(?:tmp|old)-(\d+)$")
    try:
        siblings = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for sibling in siblings:
        match = pattern.match(sibling)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        path = os.path.join(parent, sibling)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                continue
        removed.append(path)
    return removed


def move_into(staging: str, target: str) -> list[str]:
    """Move every file of `staging` into folder `target` (created if needed), each by an atomic rename.

    A new folder (or an empty one) is renamed into place whole. Weight files of `target` that the new save
    does not have are removed afterwards, so `from_pretrained` never mixes two saves. Returns the moved
    files' paths in `target`.
    """
    names = sorted(os.listdir(staging))
    try:  # a missing or empty target: the whole folder appears at once
        os.replace(staging, target)
        return [os.path.join(target, name) for name in names]
    except OSError:
        pass
    os.makedirs(target, exist_ok=True)
    moved = []
    for name in names:
        source, destination = os.path.join(staging, name), os.path.join(target, name)
        if os.path.isdir(source):
            if os.path.isdir(destination):
                move_into(source, destination)
            else:
                os.replace(source, destination)
        else:
            os.replace(source, destination)
        moved.append(destination)
    new = set(names)
    if not any(_WEIGHT_FILE.match(name) for name in new):  # not a model save (e.g. a processor): keep the weights
        return moved
    for name in os.listdir(target):
        if name not in new and _WEIGHT_FILE.match(name) and os.path.isfile(os.path.join(target, name)):
            os.remove(os.path.join(target, name))
    return moved


def staged_save(save_directory: str | os.PathLike, write: Callable[[str], Any]) -> Any:
    """Run ``write(folder)`` on a temporary sibling of `save_directory`, then move its files in.

    Parameters
    ----------
    save_directory : str or PathLike
        The folder the files end up in (it may hold other files: those are kept).
    write : callable
        ``write(folder)`` writes the files into ``folder`` and returns anything (returned here, with the
        temporary folder's paths in a returned list or tuple mapped to `save_directory`).

    Returns
    -------
    What `write` returned. If `write` fails, nothing of `save_directory` has changed.
    """
    target = os.path.realpath(os.fspath(save_directory))  # a symlinked folder: stage beside its target
    if os.path.isfile(target):  # let the library report it as it does
        return write(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    remove_stale_staging(target)  # of killed saves
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = write(staging)
        move_into(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if isinstance(result, (list, tuple)):
        mapped = [
            os.path.join(target, os.path.relpath(item, staging))
            if isinstance(item, (str, os.PathLike)) and os.path.abspath(item).startswith(staging + os.sep)
            else item
            for item in result
        ]
        return type(result)(mapped)
    return result


__all__ = ["move_into", "remove_stale_staging", "staged_save", "staging_path"]
