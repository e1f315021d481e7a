"""Which subjects' labels a trained model saw, recorded with the model, and the check that a finetuning run's
held-out subjects are not among them (no leakage through a starting model).

The record is ``config.training_subjects`` (:func:`training_record`): per dataset, hashed ids of the subjects
whose labels trained the model (``train``) or chose its checkpoint, readout layers and temperatures
(``validation``), accumulated over every run the weights went through (a finetuned model keeps its starting
model's subjects). It lives in the config because ``config.json`` travels with every copy of a model with no
extra code anywhere: ``save_pretrained`` / ``from_pretrained``, Trainer checkpoints, the merged LoRA model, Hub
exports and remote-code loading; a side file would have to be copied by each of those paths. Ids are hashed
(:func:`subject_hash`, a truncated sha256 of ``"<dataset>/<subject_id>"``) so an exported model carries no
subject id; the dataset name is the one training used (a ``--dataset_dirs`` folder's name), so the check
recognises a subject in a folder of the same name.

:func:`check_subject_overlap` (``training/finetune.py``, one run or every ``--cv_folds`` fold): a starting model
that saw the labels of test subjects (trained or selected on them), or trained on validation subjects, is refused
with one line naming the counts and the way out; ``--allow_subject_overlap`` proceeds and every report says
"optimistic: the starting model saw N of M test subjects".
"""

from __future__ import annotations

import hashlib
import logging

from ..errors_lcm import LcmInputError

logger = logging.getLogger(__name__)

HASH_CHARS = 16
"""Hex digits kept of each sha256 (64 bits: no collision to expect among millions of subjects)."""
RECORD_ID = f"sha256 of '<dataset>/<subject_id>', first {HASH_CHARS} hex digits"
ROLES = ("train", "validation")


def subject_hash(dataset: str, subject_id: str) -> str:
    """The hashed id of one subject of one dataset.

    >>> subject_hash("my_dataset", "01")
    'fe3a6baaffca2417'
    """
    return hashlib.sha256(f"{dataset}/{subject_id}".encode()).hexdigest()[:HASH_CHARS]


def split_subjects(split) -> dict[str, set[str]]:
    """``{dataset name: {hashed subject ids}}`` of a split (rows with ``subject_id`` and ``dataset``)."""
    if split is None or len(split) == 0:
        return {}
    names = split["dataset"] if "dataset" in split.column_names else [""] * len(split)
    out: dict[str, set[str]] = {}
    for name, subject in set(zip(names, split["subject_id"])):
        out.setdefault(str(name), set()).add(subject_hash(str(name), str(subject)))
    return out


def training_record(splits: dict, previous: dict | None = None, train_subjects: dict | None = None) -> dict:
    """``config.training_subjects`` of a model trained on ``splits["train"]`` and selected on
    ``splits["validation"]`` (None: none), merged with the starting model's record ``previous``.
    ``train_subjects`` (``{dataset: subject ids}``) names training subjects given otherwise (a streamed
    ``train`` split, which is None here).

    Returns
    -------
    dict
        ``{"id": RECORD_ID, "datasets": {name: {"train": [hash, ...], "validation": [hash, ...]}}}`` (sorted).
    """
    merged: dict[str, dict[str, set[str]]] = {}
    for name, roles in ((previous or {}).get("datasets") or {}).items():
        for role in ROLES:
            merged.setdefault(name, {r: set() for r in ROLES})[role].update(roles.get(role) or [])
    for role in ROLES:
        for name, hashes in split_subjects(splits.get(role)).items():
            merged.setdefault(name, {r: set() for r in ROLES})[role].update(hashes)
    for name, subjects in (train_subjects or {}).items():
        merged.setdefault(str(name), {r: set() for r in ROLES})["train"].update(
            subject_hash(str(name), str(s)) for s in subjects)
    return {"id": RECORD_ID,
            "datasets": {name: {role: sorted(roles[role]) for role in ROLES} for name, roles in sorted(merged.items())}}


def _seen(record: dict, roles=ROLES) -> set[str]:
    return {h for entry in (record.get("datasets") or {}).values() for role in roles for h in entry.get(role) or []}


def subject_overlap(record: dict, splits: dict) -> dict[str, list[int]]:
    """``{"test": [seen, all], "validation": [seen, all]}``: the test subjects whose labels the starting model
    trained or was selected on, and the validation subjects it trained on (a split that is None: [0, 0])."""
    seen_any, seen_train = _seen(record), _seen(record, ("train",))
    out = {}
    for split, seen in (("test", seen_any), ("validation", seen_train)):
        hashes = set().union(*split_subjects(splits.get(split)).values())
        out[split] = [len(hashes & seen), len(hashes)]
    return out


def optimistic_sentence(overlap: dict | None) -> str | None:
    """"optimistic: the starting model saw N of M test subjects", or None when it saw none."""
    if not overlap or not overlap["test"][0]:
        return None
    seen, total = overlap["test"]
    return f"optimistic: the starting model saw {seen} of {total} test subjects"


def check_subject_overlap(record: dict | None, splits: dict, allow: bool = False) -> dict | None:
    """Refuse (or, with ``allow``, warn about) a starting model that saw the held-out subjects of ``splits``.

    Parameters
    ----------
    record : dict or None
        The starting model's ``config.training_subjects`` (None: a model that records none; a warning says the
        check could not be made).
    splits : dict
        The run's ``{"train", "validation", "test"}`` window splits (``validation`` None: not used to choose).
    allow : bool
        ``--allow_subject_overlap``.

    Returns
    -------
    dict or None
        :func:`subject_overlap`'s counts, None without a record.

    Raises
    ------
    ValueError
        One line with the counts and the way out, when the model saw held-out subjects and ``allow`` is False.
    """
    if not record:
        logger.warning("the starting model records no training subjects (config.training_subjects): leakage "
                       "through it cannot be checked")
        return None
    overlap = subject_overlap(record, splits)
    parts = []
    if overlap["test"][0]:
        parts.append(f"the labels of {overlap['test'][0]} of {overlap['test'][1]} test subjects")
    if overlap["validation"][0]:
        parts.append(f"trained on {overlap['validation'][0]} of {overlap['validation'][1]} validation subjects")
    if not parts:
        return overlap
    what = "the starting model (--model_name_or_path) saw " + " and ".join(parts)
    if not allow:
        raise LcmInputError(
            f"{what}: its scores here would be optimistic; finetune on other subjects, cross-validate from scratch "
            "(training/pretrain.py --cv_folds K), or pass --allow_subject_overlap to go on with every report marked "
            "optimistic")
    logger.warning(f"{what} (--allow_subject_overlap): the reports are marked optimistic")
    return overlap


__all__ = ["HASH_CHARS", "RECORD_ID", "check_subject_overlap", "optimistic_sentence", "split_subjects",
           "subject_hash", "subject_overlap", "training_record"]
