"""What the scripts' subject splits and ``--cv_folds`` folds stratify on, and the class counts every report prints.

- :func:`stratify_columns`: ``--stratify_column`` when given, else the first categorical target
  (``--categorical_columns``' first; a pretraining and a finetuning run on the same data with the same first
  column and ``--split_seed`` get the same test subjects), grouped by subject (or ``--group_by site``).
- :func:`split_class_counts`: per categorical BEI and split, the number of subjects of each class.
- :func:`too_few_lines`: the report's sentence where a test split holds too few subjects of a class to score.
"""

from __future__ import annotations

import numpy as np

from .evaluation import MIN_CLASS_SUBJECTS


def stratify_columns(data_args) -> tuple[list[str], bool]:
    """(columns to stratify subject splits and folds on, whether they are the default).

    ``--stratify_column`` when given; else the first of ``--categorical_columns`` (empty without one)."""
    given = list(getattr(data_args, "stratify_column", None) or [])
    if given:
        return given, False
    return list(getattr(data_args, "categorical_columns", None) or [])[:1], True


def split_class_counts(splits: dict, beis: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """``{bei: {split: {class: subjects}}}`` for the categorical BEIs of labelled window splits.

    A subject is counted once per class its windows carry (a label varying within a subject counts it under
    each); splits that are None are skipped.
    """
    from ..data.columns import column_array

    out: dict = {}
    for split, dataset in splits.items():
        if dataset is None or len(dataset) == 0:
            continue
        labels = column_array(dataset, "labels", np.float64)
        subjects = [f"{d}::{s}" for d, s in zip(
            dataset["dataset"] if "dataset" in dataset.column_names else [""] * len(dataset), dataset["subject_id"])]
        for index, bei in enumerate(beis):
            if bei["kind"] != "categorical":
                continue
            seen = {(subject, int(value)) for subject, value in zip(subjects, labels[:, index]) if not np.isnan(value)}
            counts = {name: sum(1 for _, c in seen if c == k) for k, name in enumerate(bei["classes"])}
            out.setdefault(bei["name"], {})[split] = {name: n for name, n in counts.items() if n}
    return out


def class_count_lines(counts: dict) -> list[str]:
    """Markdown lines: per categorical BEI, the subjects of each class in each split."""
    if not counts:
        return []
    lines = ["Subjects per class in each split:", ""]
    for bei, splits in counts.items():
        parts = [f"{split} " + (", ".join(f"{name} {n}" for name, n in classes.items()) or "none")
                 for split, classes in splits.items()]
        lines.append(f"- {bei}: " + "; ".join(parts))
    return lines + [""]


def too_few(counts: dict[str, int], minimum: int = MIN_CLASS_SUBJECTS) -> dict[str, int]:
    """The classes of one BEI's test split with fewer than `minimum` subjects (a class absent there is not
    listed: a single-class split is not scored at all)."""
    return {name: n for name, n in counts.items() if n < minimum}


def too_few_lines(counts: dict, split: str = "test", minimum: int = MIN_CLASS_SUBJECTS) -> list[str]:
    """One sentence per categorical BEI whose `split` has too few subjects of a class to score."""
    lines = []
    for bei, splits in counts.items():
        classes = splits.get(split) or {}
        if len(classes) < 2:
            held = ", ".join(f"{c} {n}" for c, n in classes.items()) or "no subjects"
            lines += [f"**{bei}: the {split} split holds one class only ({held}): not scored.**", ""]
            continue
        short = too_few(classes, minimum)
        if short:
            lines += [
                f"**{bei}: the {split} split has too few subjects of " + ", ".join(f"{c} ({n})" for c, n in short.items())
                + f" to score (fewer than {minimum} of a class): values are shown without intervals or verdicts.**",
                ""]
    return lines


__all__ = ["MIN_CLASS_SUBJECTS", "class_count_lines", "split_class_counts", "stratify_columns", "too_few",
           "too_few_lines"]
