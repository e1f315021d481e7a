"""`BeiVocabulary`: phenotype columns <-> BEI tokens and label columns.

A BEI (brain-environment interaction) is a named phenotype or environment variable:
categorical (sex, diagnosis, task state, an age bin, site...) or continuous (age).

Token layout (shared with ``LcmConfig.beis``): BEIs in vocabulary order, each categorical BEI
takes ``len(classes)`` consecutive tokens, each continuous BEI one token. Labels are a float
``(B, K)`` array, one column per BEI: the class index for categorical BEIs, the raw value for
continuous ones, NaN where missing.

Conventions
-----------
- Missing values (``None``, NaN, ``pd.NA``, ``""``, or an absent key) are never an error: they
  encode to NaN, or to the ``"n/a"`` class when the BEI has one (``na_class=True``).
- Class names are strings; values are matched by ``str(value)`` with integral floats
  written as ints (``1.0`` -> ``"1"``), so numeric codes work.
- An unknown class raises ``ValueError`` listing the known classes.
- ``bins``: a continuous column may be cut into classes by edges ``[e0, e1, ..., em]``
  (class ``i`` is ``[e_i, e_{i+1})``, named like ``"[20, 30)"``); the edges are kept in the
  vocabulary JSON. ``LcmConfig.beis`` keeps only name/kind/classes/loss_weight, so a vocabulary
  rebuilt with :meth:`from_config` from a model config has no bins: save the processor (which
  writes ``bei_vocabulary.json``) to keep them.
- Merging: identical BEIs (same name, kind and classes) share tokens; the same name with
  different classes raises ``ValueError`` unless ``on_conflict="union"`` (classes are united,
  in first-seen order) or ``on_conflict="rename"`` (the later one becomes ``"<name>_2"``...).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .configuration_lcm import NA_CLASS, bei_token_mapping, bei_token_slices, grow_beis, normalize_bei
from .errors_lcm import LcmInputError, LcmInputTypeError

VOCABULARY_NAME = "bei_vocabulary.json"


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas NA/NaT and the empty string."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    return False


def class_name(value: Any) -> str:
    """The class name of a raw value: ``str`` with integral floats as ints (1.0 -> "1")."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _bin_label(lo: float, hi: float) -> str:
    return f"[{lo:g}, {hi:g})"


def _validate_bei(bei: Mapping, index: int) -> dict:
    """`configuration_lcm.normalize_bei` (the config's BEI format and errors), with class names normalised
    like table values, plus the vocabulary's own field: the ``bins`` edges of a binned numeric column."""
    if isinstance(bei, Mapping) and bei.get("kind") == "categorical" and isinstance(bei.get("classes"), (list, tuple)):
        bei = {**bei, "classes": [class_name(c) for c in bei["classes"]]}
    entry = normalize_bei(bei, index)
    if entry["kind"] == "categorical" and bei.get("bins") is not None:
        edges = [float(e) for e in bei["bins"]]
        classes = entry["classes"]
        if len(edges) != len(classes) + 1 - (NA_CLASS in classes) or any(b <= a for a, b in zip(edges, edges[1:])):
            raise LcmInputError(
                f"expected BEI {entry['name']!r} 'bins' to be increasing edges, one more than the classes, got {edges}"
            )
        entry["bins"] = edges
    return entry


class BeiVocabulary:
    """An ordered set of BEIs with their classes and token layout.

    Parameters
    ----------
    beis : sequence of dict
        ``{"name": str, "kind": "categorical" | "continuous", "classes": [str, ...]
        (categorical only), "loss_weight": float (optional), "bins": [float, ...] (optional)}``.

    Examples
    --------
    >>> vocab = BeiVocabulary.from_dataframe(df, categorical=["sex"], continuous=["age"])
    >>> vocab.encode([{"sex": "F", "age": 31.0}, {"sex": "M"}])   # (2, 2), NaN for the missing age
    >>> config = LcmConfig.from_preset("small", beis=vocab.to_config())
    """

    def __init__(self, beis: Sequence[Mapping] = ()):
        if isinstance(beis, (str, bytes)) or not isinstance(beis, Iterable):
            raise LcmInputTypeError(f"expected `beis` as a list of dicts, got {type(beis).__name__}")
        self._beis = [_validate_bei(bei, i) for i, bei in enumerate(beis)]
        names = [bei["name"] for bei in self._beis]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LcmInputError(f"expected unique BEI names, got duplicates {duplicates}")
        self._index = {bei["name"]: i for i, bei in enumerate(self._beis)}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataframe(
        cls,
        df,
        categorical: Sequence[str] = (),
        continuous: Sequence[str] = (),
        *,
        na_class: bool | Mapping[str, bool] = False,
        bins: Mapping[str, Sequence[float]] | None = None,
        classes: Mapping[str, Sequence] | None = None,
        loss_weights: Mapping[str, float] | None = None,
        standardize: bool | Sequence[str] = False,
    ) -> BeiVocabulary:
        """Build a vocabulary from phenotype columns.

        Parameters
        ----------
        df : pandas.DataFrame, datasets.Dataset or mapping of column -> values
        categorical : sequence of str
            Columns whose distinct non-missing values (sorted) become classes.
        continuous : sequence of str
            Numeric columns predicted as values (one token each).
        na_class : bool or mapping column -> bool
            Add an explicit ``"n/a"`` class (last) that missing values encode to.
        bins : mapping column -> edges, optional
            Cut a numeric column into classes ``[e_i, e_{i+1})``; such a column becomes
            a categorical BEI (list it here only, not in ``continuous``).
        classes : mapping column -> list, optional
            Fixed class order for some categorical columns (values outside it raise on encode).
        loss_weights : mapping column -> float, optional
        standardize : bool or sequence of str
            Continuous columns (all with True) to standardise: their BEI gets the column's mean as
            ``center`` and standard deviation as ``scale``, so the model trains on unit-scale targets
            (loss weight 1.0) and still predicts values in the column's units.

        Returns
        -------
        BeiVocabulary
            BEIs in the order ``categorical``, then ``bins``, then ``continuous``.
        """
        bins = dict(bins or {})
        classes = dict(classes or {})
        loss_weights = dict(loss_weights or {})
        columns = _columns(df)
        order = list(categorical) + list(bins) + list(continuous)
        duplicates = sorted({c for c in order if order.count(c) > 1})
        if duplicates:
            raise LcmInputError(f"expected each column in one of categorical/bins/continuous, got {duplicates} twice")
        missing = [c for c in order if c not in columns]
        if missing:
            raise LcmInputError(f"expected columns {missing} in the phenotype table, got columns {sorted(columns)}")
        beis = []
        for name in order:
            with_na = na_class.get(name, False) if isinstance(na_class, Mapping) else bool(na_class)
            values = list(columns[name])
            if name in continuous:
                bad = [v for v in values if not is_missing(v) and not _is_number(v)]
                if bad:
                    raise LcmInputError(f"expected numbers in continuous column {name!r}, got {bad[0]!r}")
                bei = {"name": name, "kind": "continuous"}
                if standardize is True or (not isinstance(standardize, bool) and name in standardize):
                    known = np.asarray([float(v) for v in values if not is_missing(v)])
                    if known.size:
                        bei["center"], bei["scale"] = float(known.mean()), float(known.std()) or 1.0
            elif name in bins:
                edges = [float(e) for e in bins[name]]
                names = [_bin_label(a, b) for a, b in zip(edges, edges[1:])]
                bei = {"name": name, "kind": "categorical", "classes": names, "bins": edges}
            else:
                if name in classes:
                    names = [class_name(c) for c in classes[name]]
                else:
                    names = sorted({class_name(v) for v in values if not is_missing(v)})
                if with_na and NA_CLASS in names:
                    names.remove(NA_CLASS)
                bei = {"name": name, "kind": "categorical", "classes": names}
            if bei["kind"] == "categorical" and with_na:
                bei["classes"] = bei["classes"] + [NA_CLASS]
            if bei["kind"] == "categorical" and len(bei["classes"]) < 2:
                raise LcmInputError(
                    f"expected at least 2 classes in categorical column {name!r}, got {bei['classes']}"
                )
            if name in loss_weights:
                bei["loss_weight"] = loss_weights[name]
            beis.append(bei)
        return cls(beis)

    @classmethod
    def from_config(cls, beis: Sequence[Mapping]) -> BeiVocabulary:
        """From ``LcmConfig.beis`` (or :meth:`to_config` output)."""
        return cls(beis)

    def to_config(self) -> list[dict]:
        """The JSON-able BEI list for ``LcmConfig(beis=...)`` (name, kind, classes, loss_weight, and
        center/scale of standardised continuous BEIs)."""
        keys = ("name", "kind", "classes", "loss_weight", "center", "scale")
        return [{k: copy.deepcopy(bei[k]) for k in keys if k in bei} for bei in self._beis]

    def to_list(self) -> list[dict]:
        """All BEI fields, bins included (what the JSON file stores)."""
        return copy.deepcopy(self._beis)

    # ------------------------------------------------------------------ introspection
    def __len__(self) -> int:
        return len(self._beis)

    def __iter__(self):
        return iter(self.to_list())

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> dict:
        if name not in self._index:
            raise KeyError(f"unknown BEI {name!r}; known BEIs: {self.names}")
        return copy.deepcopy(self._beis[self._index[name]])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BeiVocabulary) and self._beis == other._beis

    def __repr__(self) -> str:
        parts = [
            f"{b['name']}({'/'.join(b['classes'])})" if b["kind"] == "categorical" else f"{b['name']}(continuous)"
            for b in self._beis
        ]
        return f"BeiVocabulary([{', '.join(parts)}], tokens={self.num_tokens})"

    @property
    def names(self) -> list[str]:
        """BEI names in order (the label columns)."""
        return [bei["name"] for bei in self._beis]

    @property
    def num_tokens(self) -> int:
        """P, the number of BEI tokens."""
        return sum(len(b["classes"]) if b["kind"] == "categorical" else 1 for b in self._beis)

    def token_slices(self) -> dict[str, slice]:
        """The token slice of each BEI (``configuration_lcm.bei_token_slices``, as the model uses)."""
        return dict(zip(self.names, bei_token_slices(self._beis)))

    def token_slice(self, name: str) -> slice:
        """The token slice of one BEI."""
        if name not in self._index:
            raise KeyError(f"unknown BEI {name!r}; known BEIs: {self.names}")
        return self.token_slices()[name]

    def token_names(self) -> list[str]:
        """One name per token: ``"sex=F"`` for classes, ``"age"`` for continuous BEIs."""
        names = []
        for bei in self._beis:
            if bei["kind"] == "categorical":
                names.extend(f"{bei['name']}={c}" for c in bei["classes"])
            else:
                names.append(bei["name"])
        return names

    # ------------------------------------------------------------------ encode / decode
    def encode_value(self, name: str, value: Any) -> float:
        """Encode one value of one BEI: class index, number, or NaN when missing."""
        bei = self._beis[self._index[name]]
        if bei["kind"] == "continuous":
            if is_missing(value):
                return math.nan
            if not _is_number(value):
                raise LcmInputError(f"expected a number for continuous BEI {name!r}, got {value!r}")
            return float(value)
        classes = bei["classes"]
        if is_missing(value):
            return float(classes.index(NA_CLASS)) if NA_CLASS in classes else math.nan
        if "bins" in bei and _is_number(value) and not isinstance(value, str):
            edges, v = bei["bins"], float(value)
            if math.isnan(v):
                return float(classes.index(NA_CLASS)) if NA_CLASS in classes else math.nan
            for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
                if lo <= v < hi:
                    return float(i)
            raise LcmInputError(f"expected {name!r} within the bins [{edges[0]:g}, {edges[-1]:g}), got {value!r}")
        label = class_name(value)
        if label not in classes:
            raise LcmInputError(f"unknown class {label!r} for BEI {name!r}; known classes: {classes}")
        return float(classes.index(label))

    def encode(self, rows, return_tensors: str | None = "pt"):
        """Encode phenotype rows into labels.

        Parameters
        ----------
        rows : dict, sequence of dicts, pandas.DataFrame, or dict of columns (a batch)
            Keys are BEI names; absent keys and missing values give NaN (or the "n/a" class).
            Extra keys are ignored.
        return_tensors : {"pt", "np", None}
            torch float32 tensor (default) or numpy float32 array.

        Returns
        -------
        torch.Tensor or numpy.ndarray, shape (B, K), float32

        Raises
        ------
        ValueError
            Unknown class (listing the known ones) or a non-number for a continuous BEI.
        """
        rows = _rows(rows)
        labels = np.full((len(rows), len(self._beis)), np.nan, dtype=np.float32)
        for i, row in enumerate(rows):
            for k, name in enumerate(self.names):
                labels[i, k] = self.encode_value(name, row.get(name))
        if return_tensors == "pt":
            return torch.from_numpy(labels)
        if return_tensors in ("np", None):
            return labels
        raise LcmInputError(f"expected return_tensors 'pt', 'np' or None, got {return_tensors!r}")

    def decode(self, labels) -> list[dict]:
        """Labels (B, K) back to rows ``{name: class name or value}``; NaN entries are left out."""
        array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels, float)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != len(self._beis):
            raise LcmInputError(f"expected labels of shape (B, {len(self._beis)}), got {array.shape}")
        rows = []
        for values in array:
            row = {}
            for bei, value in zip(self._beis, values):
                if math.isnan(value):
                    continue
                if bei["kind"] == "continuous":
                    row[bei["name"]] = float(value)
                else:
                    index = int(value)
                    if index != value or not 0 <= index < len(bei["classes"]):
                        raise LcmInputError(
                            f"expected a class index in [0, {len(bei['classes'])}) for {bei['name']!r}, got {value}"
                        )
                    row[bei["name"]] = bei["classes"][index]
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ growing
    def merge(self, *others: BeiVocabulary, on_conflict: str = "raise") -> BeiVocabulary:
        """The union vocabulary of ``self`` and ``others`` (also ``BeiVocabulary.merge(a, b, c)``).

        Identical BEIs are shared (one set of tokens). The same name with a different kind always
        raises. The same categorical name with different classes: ``on_conflict="raise"``
        (default) raises ``ValueError``; ``"union"`` keeps one BEI with the union of classes in
        first-seen order; ``"rename"`` keeps both, the later as ``"<name>_2"`` (``_3``...).
        Loss weights and bins come from the first vocabulary holding the BEI.
        """
        if on_conflict not in ("raise", "union", "rename"):
            raise LcmInputError(f"expected on_conflict 'raise', 'union' or 'rename', got {on_conflict!r}")
        merged = [copy.deepcopy(b) for b in self._beis]
        for other in others:
            if not isinstance(other, BeiVocabulary):
                raise LcmInputTypeError(f"expected BeiVocabulary objects to merge, got {type(other).__name__}")
            for bei in other._beis:
                existing = next((b for b in merged if b["name"] == bei["name"]), None)
                if existing is None:
                    merged.append(copy.deepcopy(bei))
                    continue
                if existing["kind"] != bei["kind"]:
                    raise LcmInputError(
                        f"cannot merge BEI {bei['name']!r}: expected kind {existing['kind']!r}, got {bei['kind']!r}"
                    )
                if bei["kind"] == "continuous" or existing["classes"] == bei["classes"]:
                    continue
                if on_conflict == "raise":
                    raise LcmInputError(
                        f"cannot merge BEI {bei['name']!r}: expected classes {existing['classes']}, "
                        f"got {bei['classes']}; pass on_conflict='union' or 'rename', or rename the column"
                    )
                if on_conflict == "union":
                    if "bins" in existing or "bins" in bei:
                        raise LcmInputError(f"cannot unite the classes of binned BEI {bei['name']!r}")
                    extra = [c for c in bei["classes"] if c not in existing["classes"]]  # "n/a" kept last:
                    united = {**bei, "classes": existing["classes"] + extra}  # the growth rule places it
                    existing["classes"] = grow_beis([existing], [united])[0]["classes"]
                else:
                    renamed = copy.deepcopy(bei)
                    suffix = 2
                    while any(b["name"] == f"{bei['name']}_{suffix}" for b in merged):
                        suffix += 1
                    renamed["name"] = f"{bei['name']}_{suffix}"
                    merged.append(renamed)
        return BeiVocabulary(merged)

    def extend(self, beis: BeiVocabulary | Sequence[Mapping]) -> BeiVocabulary:
        """Append new BEIs, or new classes to existing categorical BEIs: the one growth rule
        (``configuration_lcm.grow_beis``), the same as ``model.add_beis``.

        New BEIs go last; new classes go after the BEI's current classes and before its ``"n/a"`` class, which
        stays last (``[A, B, n/a] + C -> [A, B, C, n/a]``); later BEIs' tokens shift. Existing classes are never
        reordered, so :meth:`token_mapping` maps every old token to a new one, and
        ``model.add_beis(vocab.extend(new).to_config())`` grows the model the same way.

        Raises
        ------
        ValueError
            A class list that reorders the existing classes, another kind, or a binned BEI given new classes.
        """
        given = (beis if isinstance(beis, BeiVocabulary) else BeiVocabulary(beis)).to_list()
        grown = grow_beis(self._beis, given)
        for before, after in zip(self._beis, grown):
            if "bins" in before and after["classes"] != before["classes"]:
                raise LcmInputError(f"cannot add classes to the binned BEI {before['name']!r} (its classes are the "
                                    f"bins {before['bins']}); make a new BEI instead")
        return BeiVocabulary(grown)

    def token_mapping(self, old: BeiVocabulary) -> list[int]:
        """For each token of ``self``, the index of the same token in ``old`` (or -1 if new)."""
        return bei_token_mapping(self._beis, old._beis)

    # ------------------------------------------------------------------ persistence
    def to_json_string(self) -> str:
        return json.dumps({"beis": self._beis, "format": "lcm-hf/bei-vocabulary", "version": 1}, indent=2) + "\n"

    @classmethod
    def from_json_string(cls, text: str) -> BeiVocabulary:
        data = json.loads(text)
        if isinstance(data, list):
            return cls(data)
        if not isinstance(data, dict) or "beis" not in data:
            raise LcmInputError(f"expected a JSON object with a 'beis' list, got {type(data).__name__}")
        return cls(data["beis"])

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write ``bei_vocabulary.json`` into ``save_directory``; returns the file path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, VOCABULARY_NAME)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json_string())
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> BeiVocabulary:
        """Read ``bei_vocabulary.json`` from a directory (or a JSON file path)."""
        path = os.fspath(path)
        file = os.path.join(path, VOCABULARY_NAME) if os.path.isdir(path) else path
        if not os.path.isfile(file):
            raise FileNotFoundError(f"expected {VOCABULARY_NAME} in {path!r}, found none")
        with open(file, encoding="utf-8") as handle:
            return cls.from_json_string(handle.read())


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _columns(df) -> dict[str, list]:
    if hasattr(df, "to_dict") and hasattr(df, "columns") and hasattr(df, "iloc"):  # pandas
        return {c: df[c].tolist() for c in df.columns}
    if hasattr(df, "column_names") and hasattr(df, "features"):  # datasets.Dataset
        return {c: df[c] for c in df.column_names if c not in ("timeseries", "connectivity")}
    if isinstance(df, Mapping):
        return {k: list(v) for k, v in df.items()}
    raise LcmInputTypeError(f"expected a pandas DataFrame, a datasets.Dataset or a dict of columns, got {type(df).__name__}")


def _rows(rows) -> list[Mapping]:
    if isinstance(rows, Mapping):
        values = list(rows.values())
        if values and all(isinstance(v, (list, tuple, np.ndarray)) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) == 1:  # a batch: dict of equal-length columns
                n = lengths.pop()
                return [{k: v[i] for k, v in rows.items()} for i in range(n)]
        return [rows]
    if hasattr(rows, "to_dict") and hasattr(rows, "iloc"):  # pandas DataFrame
        return rows.to_dict("records")
    if isinstance(rows, (list, tuple)):
        for i, row in enumerate(rows):
            if row is not None and not isinstance(row, Mapping):
                raise LcmInputTypeError(f"expected phenotype rows as dicts, got {type(row).__name__} for row {i}")
        return [row if row is not None else {} for row in rows]
    raise LcmInputTypeError(f"expected phenotype rows as a dict, a list of dicts or a DataFrame, got {type(rows).__name__}")


__all__ = ["BeiVocabulary", "NA_CLASS", "VOCABULARY_NAME", "class_name", "is_missing"]
