"""Column and class-name checks shared by the importers, splits and the vocabulary union.

- :func:`close_matches` / :func:`require_columns`: a requested column that does not exist is a
  ``ValueError`` listing the close matches (``Sex`` for ``sex``).
- :func:`similar_classes`: class names of one BEI that differ only by case or spelling
  (``F`` / ``female``, ``control`` / ``Control``, ``control`` / ``controls``).
- :func:`column_array`: one column of every row of a dataset as one numpy array (one batch read).
- :func:`apply_class_aliases`: an explicit alias map ``{"sex": {"female": "F", "male": "M"}}``
  applied to a dataset's columns (class names are otherwise matched exactly).

Examples
--------
>>> close_matches("Sex", ["sex", "age", "site"])
['sex']
>>> similar_classes(["F", "M", "female", "male"])
[('F', 'female'), ('M', 'male')]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from ..errors_lcm import LcmInputError, LcmInputTypeError


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Candidates equal to ``name`` up to case first, then ``difflib`` close matches (at most ``n``)."""
    candidates = [str(c) for c in candidates]
    same_case = [c for c in candidates if c.lower() == name.lower() and c != name]
    others = difflib.get_close_matches(name, [c for c in candidates if c not in same_case], n=n, cutoff=0.6)
    return (same_case + [c for c in others if c != name])[:n]


def missing_column_message(what: str, name: str, columns: Sequence[str], where: str = "the dataset") -> str:
    """``expected <what> column 'x' in <where>, got none; close matches: [...]; columns: [...]``."""
    close = close_matches(name, columns)
    hint = f"; close matches: {close}" if close else ""
    return f"expected {what} column {name!r} in {where}, got none{hint}; columns: {list(columns)}"


def require_columns(names: Iterable[str], columns: Sequence[str], what: str = "a", where: str = "the dataset") -> None:
    """Raise ``ValueError`` (with close matches) for the first of ``names`` not in ``columns``."""
    for name in names:
        if name not in columns:
            raise LcmInputError(missing_column_message(what, name, columns, where))


def _similar(a: str, b: str) -> bool:
    x, y = a.strip().lower(), b.strip().lower()
    if x == y:
        return True
    if x.isalpha() and y.isalpha() and (x.startswith(y) or y.startswith(x)):
        return True
    return min(len(x), len(y)) >= 4 and difflib.SequenceMatcher(None, x, y).ratio() >= 0.85


def similar_classes(classes: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of distinct class names that look like spellings of one class.

    Same up to case, one (alphabetic) a prefix of the other (``F`` / ``female``), or nearly equal
    (``difflib`` ratio >= 0.85, names of 4+ characters: ``control`` / ``controls``).
    """
    names = sorted({str(c) for c in classes})
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if _similar(a, b)]


def check_class_aliases(class_aliases: Mapping | None) -> dict[str, dict[str, str]]:
    """Validate ``{bei: {spelling: class}}`` and return it as plain dicts of strings."""
    if class_aliases is None:
        return {}
    if not isinstance(class_aliases, Mapping):
        raise LcmInputTypeError(f"expected class_aliases as {{bei: {{spelling: class}}}}, got {type(class_aliases).__name__}")
    out = {}
    for bei, aliases in class_aliases.items():
        if not isinstance(aliases, Mapping):
            raise LcmInputTypeError(f"expected class_aliases[{bei!r}] as {{spelling: class}}, got {type(aliases).__name__}")
        out[str(bei)] = {str(k): str(v) for k, v in aliases.items()}
    return out


def alias_value(value, aliases: Mapping[str, str]):
    """``aliases[str(value)]`` when present, else ``value`` unchanged (exact match, missing values kept)."""
    if value is None:
        return None
    from ..vocabulary_lcm import class_name, is_missing

    if is_missing(value):
        return value
    return aliases.get(class_name(value), value)


def apply_class_aliases(dataset, class_aliases: Mapping | None):
    """``dataset`` with the spellings of ``class_aliases`` replaced in the named columns.

    Parameters
    ----------
    dataset : datasets.Dataset
    class_aliases : mapping bei -> {spelling: class}, optional
        Columns absent from ``dataset`` are skipped; values not in a map are kept as they are.

    Returns
    -------
    datasets.Dataset (the same object when nothing applies)

    Examples
    --------
    >>> from datasets import Dataset
    >>> list(apply_class_aliases(Dataset.from_dict({"sex": ["female", "M"]}), {"sex": {"female": "F"}})["sex"])
    ['F', 'M']
    """
    aliases = {k: v for k, v in check_class_aliases(class_aliases).items() if k in dataset.column_names and v}
    if not aliases:
        return dataset
    from datasets import Value

    features = dataset.features.copy()
    for column in aliases:
        if isinstance(features[column], Value) and features[column].dtype != "string":
            features[column] = Value("string")

    def rename(*columns):
        return {c: [alias_value(v, aliases[c]) for v in values] for c, values in zip(aliases, columns)}

    return dataset.map(rename, batched=True, batch_size=1000, input_columns=list(aliases), features=features,
                       desc="class aliases")


def column_array(dataset, column: str, dtype=None):
    """``column`` of every row of a `datasets.Dataset` as one numpy array (n, ...), read as one batch.

    Iterating a column row by row (``np.stack(dataset["connectivity"])``) decodes every row on its own: 40 times
    slower on 48 connectivity matrices. Rows of different shapes are stacked as before (ValueError).
    """
    import numpy as np

    values = dataset.with_format("numpy", columns=[column])[:][column]
    array = values if isinstance(values, np.ndarray) and values.dtype != object else np.stack(
        [np.asarray(value) for value in values])
    return array if dtype is None else array.astype(dtype)


__all__ = ["alias_value", "apply_class_aliases", "check_class_aliases", "close_matches", "column_array",
           "missing_column_message", "require_columns", "similar_classes"]
