"""The connectome dataset schema (DESIGN §5) as ``datasets.Features``.

A connectome set has one row per scan (or per window after :func:`expand_windows`):

- ``subject_id`` (string): the subject (BIDS ``sub-`` label or the phenotype table's subject
  column); splits never put one subject in two splits.
- ``scan_id`` (string): the scan of that subject (``ses-1_task-rest_run-1``, or the file stem);
  several rows (runs, sessions, windows) may share a subject. Written by every importer;
  :func:`~lcm_hf.data.add_scan_ids` adds it to older datasets.
- ``dataset`` (string), ``site`` (string).
- ``timeseries``: ``Array2D(shape=(None, N), dtype="float32")`` (T x N, T may vary per row), or
  ``connectivity``: ``Array2D(shape=(N, N), dtype="float32")``.
- phenotype columns (strings for categorical BEIs, float32 for continuous ones).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors_lcm import LcmInputError

REQUIRED_COLUMNS = ("subject_id", "dataset", "site")
IDENTITY_COLUMNS = ("subject_id", "scan_id", "dataset", "site")
"""The identity columns every row written by the package carries (``scan_id`` optional in older sets)."""
DATA_COLUMNS = ("timeseries", "connectivity")


def connectome_features(num_rois: int, phenotypes: Mapping[str, str] | None = None, *,
                        representation: str = "timeseries", extra: Mapping[str, str] | None = None,
                        scan_id: bool = False):
    """Features of a connectome dataset.

    Parameters
    ----------
    num_rois : int
        N, the number of ROIs.
    phenotypes : mapping column -> dtype string ("string", "float32", "int64"...), optional
    representation : {"timeseries", "connectivity"}
        ``timeseries`` is ``Array2D((None, N))`` (variable T), ``connectivity`` ``Array2D((N, N))``.
    extra : mapping column -> dtype string, optional
        More scalar columns (e.g. ``window_index``: "int32").
    scan_id : bool
        Include the ``scan_id`` string column (:data:`IDENTITY_COLUMNS`; the importers do).

    Returns
    -------
    datasets.Features
    """
    from datasets import Array2D, Features, Value

    if representation not in DATA_COLUMNS:
        raise LcmInputError(f"expected representation 'timeseries' or 'connectivity', got {representation!r}")
    shape = (None, num_rois) if representation == "timeseries" else (num_rois, num_rois)
    features = {c: Value("string") for c in (IDENTITY_COLUMNS if scan_id else REQUIRED_COLUMNS)}
    features[representation] = Array2D(shape=shape, dtype="float32")
    for column, dtype in {**(extra or {}), **(phenotypes or {})}.items():
        features[column] = Value(dtype)
    return Features(features)


def connectome_column(dataset) -> str:
    """``"timeseries"`` or ``"connectivity"``: the data column of a connectome dataset."""
    for column in DATA_COLUMNS:
        if column in dataset.column_names:
            return column
    raise LcmInputError(
        f"expected a connectome dataset with a 'timeseries' or 'connectivity' column, got {dataset.column_names}"
    )


def validate_connectome_dataset(dataset) -> None:
    """Raise ``ValueError`` naming what is missing when ``dataset`` does not follow the schema."""
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise LcmInputError(f"expected columns {list(REQUIRED_COLUMNS)} in the connectome dataset, missing {missing}")
    connectome_column(dataset)


def num_rois_of(dataset) -> int:
    """N of a connectome dataset (from its Array2D feature, or its first row)."""
    column = connectome_column(dataset)
    shape = getattr(dataset.features[column], "shape", None)
    if shape is not None and shape[-1] is not None:
        return int(shape[-1])
    import numpy as np

    return int(np.asarray(dataset[0][column]).shape[-1])


__all__ = ["DATA_COLUMNS", "IDENTITY_COLUMNS", "REQUIRED_COLUMNS", "connectome_column", "connectome_features",
           "num_rois_of", "validate_connectome_dataset"]
