"""Row identity helpers: ``scan_id`` for sets written without one, and row names for messages.

(Distinct dataset names for several folders: ``lcm_hf.training.data.unique_dataset_names``.)

- :func:`add_scan_ids`: a ``scan_id`` column for a dataset without one (older published sets,
  the demo cohort): one scan per row, or per run of windows (``window_index`` restarting at 0).
- :func:`scan_labels`: ``subject/scan`` names of rows, for messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors_lcm import LcmInputError


def add_scan_ids(dataset, column: str = "scan_id"):
    """``dataset`` with a ``scan_id`` column when it has none (else unchanged).

    Rows of one subject get ``scan-1``, ``scan-2``... in order: one scan per row, or, when a
    ``window_index`` column exists (rows written by :func:`~lcm_hf.data.expand_windows`), one scan
    per run of windows starting at ``window_index == 0``.

    Parameters
    ----------
    dataset : datasets.Dataset
        With a ``subject_id`` column.
    column : str

    Returns
    -------
    datasets.Dataset

    Examples
    --------
    >>> from datasets import Dataset
    >>> list(add_scan_ids(Dataset.from_dict({"subject_id": ["a", "a", "b"]}))["scan_id"])
    ['scan-1', 'scan-2', 'scan-1']
    """
    if column in dataset.column_names:
        return dataset
    if "subject_id" not in dataset.column_names:
        raise LcmInputError(f"expected a 'subject_id' column to number scans, got {dataset.column_names}")
    subjects = [str(s) for s in dataset["subject_id"]]
    windows = dataset["window_index"] if "window_index" in dataset.column_names else None
    counts: dict[str, int] = {}
    ids = []
    for i, subject in enumerate(subjects):
        if windows is None or int(windows[i]) == 0 or subject not in counts:
            counts[subject] = counts.get(subject, 0) + 1
        ids.append(f"scan-{counts[subject]}")
    from datasets import Value

    return dataset.add_column(column, ids, feature=Value("string"))


def scan_labels(dataset, indices: Sequence[int] | None = None) -> list[str]:
    """``subject_id/scan_id`` (or ``subject_id``) of rows, for messages."""
    rows = range(len(dataset)) if indices is None else indices
    subjects = dataset["subject_id"] if "subject_id" in dataset.column_names else None
    scans = dataset["scan_id"] if "scan_id" in dataset.column_names else None
    out = []
    for i in rows:
        name = str(subjects[i]) if subjects is not None else f"row {i}"
        out.append(f"{name}/{scans[i]}" if scans is not None else name)
    return out


__all__ = ["add_scan_ids", "scan_labels"]
