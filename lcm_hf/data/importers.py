"""Importers: the file layouts users have -> a connectome ``datasets.Dataset``.

- :func:`import_timeseries_folder`: a folder of per-subject time-series files (.1D, .tsv,
  .csv, .txt, .npy, .mat) matched to rows of a phenotype CSV/TSV by an id column, with
  BIDS-like names (``sub-XX[_ses-YY][_task-ZZ][_run-NN]``) parsed into ``session``, ``task``
  and ``run`` columns.
- :func:`import_nifti_folder`: the same for preprocessed 4-D NIfTI scans (``.nii``/``.nii.gz``),
  parcellated with a labels atlas image through :func:`~lcm_hf.data.nifti_to_timeseries`.
- :func:`import_abide_pcp`: ABIDE preprocessed-connectomes files
  (``ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_<atlas>.1D``) with their phenotypic CSV,
  codes mapped to readable classes (:data:`ABIDE_DEFAULT_MAPPING`).

Every file must have the same ROI count as the first one; otherwise ``ValueError`` names the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .readers import TIMESERIES_SUFFIXES, parse_bids_name, read_phenotypes, read_timeseries_file
from .schema import connectome_features

ABIDE_DEFAULT_MAPPING: dict[str, dict] = {
    "DX_GROUP": {"column": "diagnosis", "values": {1: "autism", 2: "control"}},
    "SEX": {"column": "sex", "values": {1: "M", 2: "F"}},
    "AGE_AT_SCAN": {"column": "age"},
}
"""ABIDE phenotype codes -> readable columns (``values`` maps codes to class names)."""

ABIDE_PHENOTYPE_FILE = "Phenotypic_V1_0b_preprocessed1.csv"


def _progress(iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total)


def _clean(value):
    """pandas cell -> plain Python (NaN stays NaN for numbers, None for strings)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _phenotype_dtype(values) -> str:
    present = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float32"
    return "string"


def _build_dataset(records: list[dict], arrays: list[np.ndarray], phenotype_columns: Sequence[str],
                   extra: Mapping[str, str] | None = None):
    import datasets as hfds

    num_rois = arrays[0].shape[1]
    dtypes = {c: _phenotype_dtype([r.get(c) for r in records]) for c in phenotype_columns}
    columns: dict[str, list] = {c: [r.get(c) for r in records] for c in ("subject_id", "dataset", "site")}
    for column, dtype in {**(extra or {}), **dtypes}.items():
        values = [r.get(column) for r in records]
        if dtype == "string":
            values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
        else:
            values = [np.nan if v is None else float(v) for v in values]
        columns[column] = values
    columns["timeseries"] = arrays
    features = connectome_features(num_rois, dtypes, extra=extra)
    return hfds.Dataset.from_dict(columns, features=features)


def _check_rois(path: Path, array: np.ndarray, expected: int | None, first: Path | None) -> int:
    if expected is not None and array.shape[1] != expected:
        where = f" (as in the first file {first.name})" if first is not None else ""
        raise ValueError(f"expected {expected} ROIs{where}, got {array.shape[1]} in {path}")
    return array.shape[1]


def _match_row(path: Path, entities: dict, ids: dict[str, int]) -> int | None:
    stem = path.name.split(".")[0]
    candidates = []
    if "sub" in entities:
        candidates += [entities["sub"], f"sub-{entities['sub']}"]
        stripped = entities["sub"].lstrip("0") or "0"
        candidates.append(stripped)
    candidates.append(stem)
    for candidate in candidates:
        if candidate in ids:
            return ids[candidate]
    best = None
    for key, row in ids.items():  # an id appearing as a delimited token of the name
        if key and re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", stem):
            if best is None or len(key) > len(best[0]):
                best = (key, row)
    return best[1] if best else None


def import_timeseries_folder(
    folder: str | os.PathLike,
    phenotypes=None,
    *,
    id_column: str = "subject_id",
    dataset_name: str | None = None,
    site_column: str | None = None,
    phenotype_columns: Sequence[str] | None = None,
    pattern: str = "*",
    recursive: bool = True,
    mat_key: str | None = None,
    transpose: bool = False,
    num_rois: int | None = None,
    unmatched: str = "warn",
    progress: bool = False,
):
    """Import a folder of per-subject ROI time-series files.

    Parameters
    ----------
    folder : path-like
        Holds the time-series files (searched recursively by default).
    phenotypes : path-like or pandas.DataFrame, optional
        CSV/TSV with one row per subject (or per scan) and an ``id_column``.
    id_column : str
        Column matched to file names: the BIDS ``sub-`` label (with or without ``sub-`` and
        leading zeros), else the whole stem, else an id appearing as a delimited token of it.
    dataset_name : str, optional
        Value of the ``dataset`` column (default: the folder name).
    site_column : str, optional
        Phenotype column copied to ``site`` (default: a ``site``/``SITE_ID`` column, else "unknown").
    phenotype_columns : sequence of str, optional
        Phenotype columns to keep (default: all but the id and site columns).
    pattern : str
        Glob for file names (only files ending in a supported suffix are read).
    mat_key : str, optional
        Variable name in ``.mat`` files.
    transpose : bool
        Files are ROI x time.
    num_rois : int, optional
        Expected N (default: the first file's).
    unmatched : {"warn", "error", "keep"}
        Files without a phenotype row: skipped with a warning, raise, or kept with missing phenotypes.
    progress : bool
        Show a progress bar.

    Returns
    -------
    datasets.Dataset
        Columns ``subject_id``, ``dataset``, ``site``, ``timeseries`` (Array2D (None, N)),
        ``session``/``task``/``run`` when file names carry them, and the phenotype columns.

    Raises
    ------
    ValueError
        No files, a file with a different ROI count (named), unmatched files with ``unmatched="error"``.
    """
    folder = Path(folder)
    _check_unmatched(unmatched)
    files = _list_files(folder, pattern, recursive, TIMESERIES_SUFFIXES, "time-series", exclude=[phenotypes])
    return _import_files(
        folder, files, lambda path: read_timeseries_file(path, mat_key=mat_key, transpose=transpose), phenotypes,
        id_column=id_column, dataset_name=dataset_name, site_column=site_column,
        phenotype_columns=phenotype_columns, num_rois=num_rois, unmatched=unmatched, progress=progress,
        desc="reading time series", what="time-series")


def _check_unmatched(unmatched: str) -> None:
    if unmatched not in ("warn", "error", "keep"):
        raise ValueError(f"expected unmatched 'warn', 'error' or 'keep', got {unmatched!r}")


def _list_files(folder: Path, pattern: str, recursive: bool, suffixes: Sequence[str], what: str,
                exclude: Sequence = ()) -> list[Path]:
    """Files under ``folder`` matching ``pattern`` whose name ends in one of ``suffixes`` (lower case),
    less the ``exclude`` paths (a phenotype table or atlas kept in the same folder)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a folder of {what} files at {folder}, found none")
    globber = folder.rglob if recursive else folder.glob
    files = sorted(p for p in globber(pattern) if p.is_file() and p.name.lower().endswith(tuple(suffixes)))
    excluded = {Path(e).resolve() for e in exclude if isinstance(e, (str, os.PathLike))}
    files = [p for p in files if p.resolve() not in excluded]
    if not files:
        raise ValueError(f"expected {what} files ({', '.join(suffixes)}) in {folder}, found none")
    return files


def _import_files(folder: Path, files: Sequence[Path], read, phenotypes, *, id_column: str,
                  dataset_name: str | None, site_column: str | None, phenotype_columns: Sequence[str] | None,
                  num_rois: int | None, unmatched: str, progress: bool, desc: str, what: str):
    """Match ``files`` to phenotype rows, ``read(path) -> (T, N)`` each, build the dataset
    (shared by :func:`import_timeseries_folder` and :func:`import_nifti_folder`)."""
    _check_unmatched(unmatched)
    table, ids = None, {}
    if phenotypes is not None:
        table = read_phenotypes(phenotypes, id_column=id_column)
        if id_column not in table.columns:
            raise ValueError(f"expected id column {id_column!r} in the phenotype table, got {list(table.columns)}")
        ids = {str(_clean(v)): i for i, v in enumerate(table[id_column])}
        if site_column is None:
            site_column = next((c for c in ("site", "SITE_ID", "site_id") if c in table.columns), None)
        elif site_column not in table.columns:
            raise ValueError(f"expected site column {site_column!r} in the phenotype table, got {list(table.columns)}")
        if phenotype_columns is None:
            phenotype_columns = [c for c in table.columns if c not in (id_column, site_column)]
        else:
            absent = [c for c in phenotype_columns if c not in table.columns]
            if absent:
                raise ValueError(f"expected phenotype columns {absent} in the table, got {list(table.columns)}")
    phenotype_columns = list(phenotype_columns or [])
    dataset_name = dataset_name or folder.name
    records, arrays, first = [], [], None
    entity_columns: set[str] = set()
    for path in _progress(files, progress, desc):
        entities = parse_bids_name(path)
        row = _match_row(path, entities, ids) if table is not None else None
        if table is not None and row is None:
            message = f"no phenotype row with {id_column} matching file {path.name}"
            if unmatched == "error":
                raise ValueError(f"expected a phenotype row for every file: {message}")
            if unmatched == "warn":
                warnings.warn(f"skipping {path}: {message}", RuntimeWarning, stacklevel=3)
                continue
        array = read(path)
        num_rois = _check_rois(path, array, num_rois, first)
        first = first or path
        subject = entities.get("sub") or path.name.split(".")[0]
        record = {"subject_id": subject, "dataset": dataset_name, "site": "unknown"}
        if row is not None:
            record["subject_id"] = str(_clean(table[id_column].iloc[row]))
            if site_column is not None:
                record["site"] = str(_clean(table[site_column].iloc[row]))
            for column in phenotype_columns:
                record[column] = _clean(table[column].iloc[row])
        for key, column in (("ses", "session"), ("task", "task"), ("run", "run")):
            if key in entities and column not in phenotype_columns:
                record[column] = entities[key]
                entity_columns.add(column)
        records.append(record)
        arrays.append(array)
    if not records:
        raise ValueError(f"expected at least one {what} file matched to the phenotypes in {folder}, got none")
    columns = [c for c in ("session", "task", "run") if c in entity_columns] + phenotype_columns
    return _build_dataset(records, arrays, columns)


NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _atlas_regions(atlas) -> tuple[object, int]:
    """The atlas as a loaded 3-D image and its number of non-zero labels."""
    from nilearn.image import load_img

    name = atlas if isinstance(atlas, (str, os.PathLike)) else "the atlas image"
    try:
        image = load_img(atlas)
    except Exception as error:  # nilearn raises several types for unreadable images
        raise ValueError(f"expected a readable 3-D labels atlas image, got {name}: {error}") from error
    data = np.asarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:  # a single-volume 4-D atlas
        import nibabel as nib

        data = data[..., 0]
        image = nib.Nifti1Image(data, image.affine, image.header)
    if data.ndim != 3:
        raise ValueError(f"expected a 3-D labels atlas image, got shape {data.shape} in {name}")
    if not np.allclose(data, np.round(data)):
        raise ValueError(f"expected integer region labels in the atlas {name}, got non-integer values")
    regions = np.unique(data)
    regions = regions[regions != 0]
    if regions.size == 0:
        raise ValueError(f"expected non-zero region labels in the atlas {name}, got only background")
    return image, int(regions.size)


def import_nifti_folder(
    folder: str | os.PathLike,
    atlas,
    phenotypes=None,
    *,
    id_column: str = "subject_id",
    dataset_name: str | None = None,
    site_column: str | None = None,
    phenotype_columns: Sequence[str] | None = None,
    pattern: str = "*.nii*",
    recursive: bool = True,
    t_r: float | None = None,
    standardize: bool | str | None = None,
    detrend: bool = False,
    low_pass: float | None = None,
    high_pass: float | None = None,
    confounds=None,
    masker_kwargs: Mapping | None = None,
    unmatched: str = "warn",
    progress: bool = False,
):
    """Import a folder of preprocessed 4-D NIfTI scans, parcellated with a labels atlas.

    Files are matched to phenotype rows exactly as in :func:`import_timeseries_folder`; each
    scan's ROI time series is extracted with :func:`~lcm_hf.data.nifti_to_timeseries`
    (nilearn's ``NiftiLabelsMasker``, the atlas resampled to the scan).

    Parameters
    ----------
    folder : path-like
        Holds the ``.nii`` / ``.nii.gz`` scans (searched recursively by default), BIDS-like names
        ``sub-XX[_ses-YY][_task-ZZ][_run-NN]_bold.nii.gz``.
    atlas : path-like or Niimg-like
        3-D integer labels image (0 = background); left out of the scans if it sits in ``folder``.
    phenotypes : path-like or pandas.DataFrame, optional
        CSV/TSV with one row per subject (or per scan) and an ``id_column``.
    id_column, dataset_name, site_column, phenotype_columns, unmatched, progress
        As in :func:`import_timeseries_folder`.
    pattern : str
        Glob for file names (only files ending in ``.nii`` or ``.nii.gz`` are read).
    recursive : bool
        Search sub-folders.
    t_r : float, optional
        Repetition time in seconds (needed for ``low_pass`` / ``high_pass``).
    standardize, detrend, low_pass, high_pass
        Signal cleaning, as in :func:`~lcm_hf.data.nifti_to_timeseries` (default: none; the
        signal keeps its scale, which Pearson FC ignores).
    confounds : callable or mapping, optional
        Per-scan confounds regressed out: ``confounds(path)`` or ``confounds[file name]``
        returning an array, a path to a confounds TSV, or ``None``.
    masker_kwargs : mapping, optional
        Any other ``NiftiLabelsMasker`` argument.

    Returns
    -------
    datasets.Dataset
        The schema of :func:`import_timeseries_folder`: ``subject_id``, ``dataset``, ``site``,
        ``timeseries`` (Array2D (None, N), N = the atlas regions), ``session``/``task``/``run``
        when file names carry them, and the phenotype columns.

    Raises
    ------
    ValueError
        No scans; an unreadable or non-integer atlas; a scan that is not 4-D, that nilearn cannot
        parcellate, or whose field of view misses atlas regions (the file is named); unmatched
        scans with ``unmatched="error"``.
    """
    import nibabel as nib

    from .nifti import nifti_to_timeseries

    folder = Path(folder)
    _check_unmatched(unmatched)
    files = _list_files(folder, pattern, recursive, NIFTI_SUFFIXES, "NIfTI",
                        exclude=[phenotypes, atlas])
    atlas_name = f"the atlas {Path(atlas).name}" if isinstance(atlas, (str, os.PathLike)) else "the atlas image"
    atlas_img, num_regions = _atlas_regions(atlas)
    masker_kwargs = dict(masker_kwargs or {})

    def read(path: Path) -> np.ndarray:
        try:
            shape = nib.load(path).shape
        except Exception as error:
            raise ValueError(f"expected a readable NIfTI scan, got {path}: {error}") from error
        if len(shape) != 4:
            raise ValueError(f"expected a 4-D NIfTI scan (X, Y, Z, T), got shape {shape} in {path}")
        if callable(confounds):
            scan_confounds = confounds(path)
        elif confounds is not None:
            scan_confounds = confounds.get(path.name)
        else:
            scan_confounds = None
        try:
            array = nifti_to_timeseries(str(path), atlas_img, confounds=scan_confounds, standardize=standardize,
                                        detrend=detrend, low_pass=low_pass, high_pass=high_pass, t_r=t_r,
                                        **masker_kwargs)
        except ValueError as error:
            raise ValueError(f"expected {atlas_name} to parcellate {path}: {error}") from error
        if array.ndim != 2 or array.shape[1] != num_regions:
            raise ValueError(f"expected {num_regions} regions of {atlas_name} in {path}, got "
                             f"{array.shape[1] if array.ndim == 2 else array.shape}: the atlas does not match "
                             "the scan's field of view")
        return array

    return _import_files(
        folder, files, read, phenotypes, id_column=id_column, dataset_name=dataset_name, site_column=site_column,
        phenotype_columns=phenotype_columns, num_rois=num_regions, unmatched=unmatched, progress=progress,
        desc="parcellating NIfTI scans", what="NIfTI")


def _find_abide_phenotypes(root: Path) -> Path | None:
    for base in [root, *root.parents][:4]:
        matches = sorted(base.rglob(ABIDE_PHENOTYPE_FILE)) if base == root else sorted(base.glob(ABIDE_PHENOTYPE_FILE))
        if matches:
            return matches[0]
    return None


def import_abide_pcp(
    root: str | os.PathLike,
    phenotypes=None,
    *,
    atlas: str = "aal",
    mapping: Mapping[str, Mapping] | None = None,
    dataset_name: str = "abide",
    keep_columns: Sequence[str] = (),
    progress: bool = False,
):
    """Import ABIDE preprocessed-connectomes ROI files (the layout of nilearn's ``fetch_abide_pcp``).

    Parameters
    ----------
    root : path-like
        ``ABIDE_pcp/<pipeline>/<strategy>/`` (or any folder above it) holding
        ``<FILE_ID>_rois_<atlas>.1D`` files: whitespace-separated, one row per TR, a header
        line of ``#``-prefixed ROI labels.
    phenotypes : path-like or DataFrame, optional
        The phenotypic CSV (default: ``Phenotypic_V1_0b_preprocessed1.csv`` found in ``root``
        or up to three folders above it) with ``SUB_ID``, ``FILE_ID``, ``SITE_ID``,
        ``DX_GROUP``, ``SEX``, ``AGE_AT_SCAN``.
    atlas : str
        Atlas suffix of the files (``aal``, ``cc200``, ``ho``...).
    mapping : mapping, optional
        ``{CODE_COLUMN: {"column": new_name, "values": {code: class}}}``; default
        :data:`ABIDE_DEFAULT_MAPPING` (DX_GROUP 1 autism / 2 control, SEX 1 M / 2 F, AGE_AT_SCAN age).
    dataset_name : str
    keep_columns : sequence of str
        More phenotype columns copied as they are.
    progress : bool

    Returns
    -------
    datasets.Dataset
        ``subject_id`` (SUB_ID), ``dataset``, ``site`` (SITE_ID), ``file_id``, ``timeseries``
        and the mapped columns (``diagnosis``, ``sex``, ``age`` by default).
    """
    root = Path(root)
    mapping = dict(ABIDE_DEFAULT_MAPPING if mapping is None else mapping)
    suffix = f"_rois_{atlas}.1D"
    files = sorted(p for p in root.rglob(f"*{suffix}") if p.is_file())
    if not files:
        raise ValueError(f"expected ABIDE files named '<FILE_ID>{suffix}' under {root}, found none")
    if phenotypes is None:
        phenotypes = _find_abide_phenotypes(root)
        if phenotypes is None:
            raise FileNotFoundError(f"expected {ABIDE_PHENOTYPE_FILE} in or above {root}; pass phenotypes=")
    table = read_phenotypes(phenotypes)
    needed = ["FILE_ID", "SUB_ID", "SITE_ID", *mapping, *keep_columns]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise ValueError(f"expected ABIDE phenotype columns {absent}, got {list(table.columns)}")
    by_file = {str(v): i for i, v in enumerate(table["FILE_ID"]) if str(v) != "no_filename"}
    records, arrays, num_rois, first = [], [], None, None
    for path in _progress(files, progress, "reading ABIDE"):
        file_id = path.name[: -len(suffix)]
        row = by_file.get(file_id)
        if row is None:
            warnings.warn(f"skipping {path}: FILE_ID {file_id!r} not in the phenotype table", RuntimeWarning,
                          stacklevel=2)
            continue
        array = read_timeseries_file(path)
        num_rois = _check_rois(path, array, num_rois, first)
        first = first or path
        record = {
            "subject_id": str(_clean(table["SUB_ID"].iloc[row])),
            "dataset": dataset_name,
            "site": str(_clean(table["SITE_ID"].iloc[row])),
            "file_id": file_id,
        }
        for code_column, spec in mapping.items():
            value = _clean(table[code_column].iloc[row])
            values = spec.get("values")
            if values is not None:
                value = values.get(value, values.get(str(value))) if value is not None else None
            elif isinstance(value, (int, float)) and value == -9999:  # ABIDE's missing code
                value = np.nan
            record[spec.get("column", code_column)] = value
        for column in keep_columns:
            record[column] = _clean(table[column].iloc[row])
        records.append(record)
        arrays.append(array)
    if not records:
        raise ValueError(f"expected ABIDE files with a FILE_ID in the phenotype table under {root}, got none")
    columns = [spec.get("column", code) for code, spec in mapping.items()] + list(keep_columns)
    return _build_dataset(records, arrays, columns, extra={"file_id": "string"})


__all__ = [
    "ABIDE_DEFAULT_MAPPING",
    "ABIDE_PHENOTYPE_FILE",
    "NIFTI_SUFFIXES",
    "import_abide_pcp",
    "import_nifti_folder",
    "import_timeseries_folder",
]
