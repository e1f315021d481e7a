"""Importers: the file layouts users have -> a connectome ``datasets.Dataset``.

- :func:`import_timeseries_folder`: a folder of per-scan time-series files (.1D, .tsv, .csv,
  .txt, .npy, .mat) matched to the rows of a phenotype CSV/TSV (per subject, or per scan).
- :func:`import_nifti_folder`: the same for preprocessed 4-D NIfTI scans (``.nii``/``.nii.gz``),
  parcellated with a labels atlas image through :func:`~lcm_hf.data.nifti_to_timeseries`.
- :func:`~lcm_hf.data.import_connectivity_folder` (module :mod:`.connectivity_import`): ready
  N x N FC matrices or their upper-triangle vectors.
- :func:`import_abide_pcp`: ABIDE preprocessed-connectomes files
  (``ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_<atlas>.1D``) with their phenotypic CSV,
  codes mapped to readable classes (:data:`ABIDE_DEFAULT_MAPPING`).

Identity (:mod:`.matching`): ``subject_id`` comes from the subject (the table's subject column,
else the BIDS ``sub-`` label of the name), ``scan_id`` from the scan entities
(``ses-1_task-rest_run-1``) or the file stem; matching is exact, problems are reported in one
summary. Every file must have the ROI count of the first one; otherwise ``ValueError`` names it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors_lcm import LcmInputError
from ..timeseries_files_lcm import CENSORED_POLICIES
from ..windows_lcm import censored_rows
from .contract import add_contract_columns
from .folders import build_dataset, check_roi_counts, import_files, list_files, progress_bar
from .matching import check_unmatched, clean_value
from .readers import (
    TIMESERIES_SUFFIXES,
    read_phenotypes,
    read_roi_labels,
    read_timeseries,
    read_timeseries_file,
)

ABIDE_DEFAULT_MAPPING: dict[str, dict] = {
    "DX_GROUP": {"column": "diagnosis", "values": {1: "autism", 2: "control"}},
    "SEX": {"column": "sex", "values": {1: "M", 2: "F"}},
    "AGE_AT_SCAN": {"column": "age"},
}
"""ABIDE phenotype codes -> readable columns (``values`` maps codes to class names)."""

ABIDE_PHENOTYPE_FILE = "Phenotypic_V1_0b_preprocessed1.csv"


def import_timeseries_folder(
    folder: str | os.PathLike,
    phenotypes=None,
    *,
    subject_column: str | None = None,
    scan_column: str | None = None,
    id_column: str | None = None,
    dataset_name: str | None = None,
    site_column: str | None = None,
    phenotype_columns: Sequence[str] | None = None,
    pattern: str = "*",
    recursive: bool = True,
    mat_key: str | None = None,
    transpose: bool = False,
    num_rois: int | None = None,
    subject_pattern: str | None = None,
    unmatched: str = "warn",
    progress: bool = False,
    header: str = "auto",
    censored_volumes: str = "refuse",
):
    """Import a folder of per-scan ROI time-series files.

    Parameters
    ----------
    folder : path-like
        Holds the time-series files (searched recursively by default), ideally with BIDS-like
        names ``sub-XX[_ses-YY][_task-ZZ][_run-NN]_*.tsv``.
    phenotypes : path-like or pandas.DataFrame, optional
        CSV/TSV with one row per subject (applied to all of the subject's scans) or one row per
        scan (then name its ``scan_column``).
    subject_column : str, optional
        Column of subject ids, matched exactly to the ``sub-`` label of file names (a ``sub-``
        prefix and leading zeros of numeric ids ignored: ``sub-007`` = ``7``; never a substring:
        ``sub-13`` is not subject ``1``). Names without ``sub-`` match on their whole stem or
        first ``_`` token, or through ``subject_pattern``. Default: the first of ``subject_id``,
        ``participant_id``, ``subject``, ``SUB_ID`` present.
    scan_column : str, optional
        Column naming the scan of a per-scan table: entities (``ses-1_task-rest_run-1``,
        ``run-2``: compared exactly with the file's scan entities), the file stem or the file name.
        Rows with an empty cell apply to the subject's other scans.
    id_column : str, optional
        Old name of ``subject_column`` (still accepted).
    dataset_name : str, optional
        Value of the ``dataset`` column (default: the folder name; see
        ``lcm_hf.training.data.unique_dataset_names`` for several folders).
    site_column : str, optional
        Phenotype column copied to ``site`` (default: a ``site``/``SITE_ID`` column, else "unknown").
    phenotype_columns : sequence of str, optional
        Phenotype columns to keep (default: all but the subject, scan and site columns). A name
        not in the table is a ``ValueError`` listing close matches.
    pattern : str
        Glob for file names (only files ending in a supported suffix are read).
    recursive : bool
        Search sub-folders.
    mat_key : str, optional
        Variable name in ``.mat`` files.
    transpose : bool
        Files are ROI x time.
    num_rois : int, optional
        Expected N (default: the first file's).
    subject_pattern : str, optional
        Regex searched in file stems, group ``subject`` (or the first group) = the subject, optional
        group ``scan`` = the scan id: e.g. ``r"ROISignals_(?P<subject>\\d+)"``.
    unmatched : {"warn", "error", "keep"}
        Files without a row, rows without a file and duplicate ids are reported in one summary:
        a ``RuntimeWarning`` (unmatched files skipped), a ``ValueError``, or a warning with
        unmatched files kept (missing phenotypes). Files of a duplicated id are unmatched: no row
        is ever chosen among duplicates.
    progress : bool
        Show a progress bar.
    header : {"auto", "yes", "no"}
        Text files: whether the first line that does not start with ``#`` is a header row of ROI labels
        (:func:`lcm_hf.text_tables_lcm.read_text_table`: auto takes a row of names, or of ROI codes such as
        ``2001 2002 ...`` above decimal data, and refuses codes above whole numbers as ambiguous). The labels are
        the dataset's ``roi_labels``; files with a header row beside files without one are refused (naming one of
        each), never imported without their labels.
    censored_volumes : {"refuse", "drop"}
        Censored (scrubbed) volumes, rows of empty, ``NaN``, ``n/a`` or ``NA`` cells: a file holding one is refused
        (default, naming it, the rows and the flag), or they are kept as NaN rows in their place in time and counted
        in a ``censored_volumes`` column: FC uses the valid volumes and no window holds a censored one
        (:mod:`lcm_hf.windows_lcm`). A row with only some ROIs missing is refused either way.

    Returns
    -------
    datasets.Dataset
        One row per scan: ``subject_id``, ``scan_id``, ``dataset``, ``site``, ``timeseries``
        (Array2D (None, N), T x N), ``session``/``task``/``run`` when file names carry them, the
        phenotype columns, and with ``censored_volumes="drop"`` the int32 ``censored_volumes`` of each scan.

    Raises
    ------
    ValueError
        No files; a file with a different ROI count, unreadable, or holding a connectivity matrix
        (named); two files for one scan; missing columns; problems with ``unmatched="error"``.

    Examples
    --------
    >>> ds = import_timeseries_folder("bids_derivatives/", "participants.tsv",     # doctest: +SKIP
    ...                               subject_column="participant_id")
    >>> ds = import_timeseries_folder("runs/", "scans.csv", subject_column="subject",  # doctest: +SKIP
    ...                               scan_column="run", unmatched="error")
    """
    folder = Path(folder)
    check_unmatched(unmatched)
    files = list_files(folder, pattern, recursive, TIMESERIES_SUFFIXES, "time-series", exclude=[phenotypes])
    labelled: list[tuple[Path, list[str] | None]] = []  # the files imported, with their header's labels

    def read(path: Path) -> np.ndarray:
        item = read_timeseries(path, mat_key=mat_key, transpose=transpose, censored_volumes=censored_volumes,
                               header=header)
        labelled.append((path, item.roi_labels))
        return item.timeseries

    if censored_volumes not in CENSORED_POLICIES:  # before any file is read
        raise LcmInputError(f"expected censored_volumes to be one of {list(CENSORED_POLICIES)}, got {censored_volumes!r}")
    dataset = import_files(
        folder, files, read, phenotypes,
        subject_column=subject_column, scan_column=scan_column, id_column=id_column, dataset_name=dataset_name,
        site_column=site_column, phenotype_columns=phenotype_columns, num_rois=num_rois,
        subject_pattern=subject_pattern, unmatched=unmatched, progress=progress, desc="reading time series",
        what="time-series")
    if censored_volumes == "drop":
        dataset = add_censored_column(dataset)
    return add_contract_columns(dataset, roi_labels=None if transpose else common_roi_labels(labelled))


def add_censored_column(dataset):
    """The dataset with an int32 ``censored_volumes`` column: the censored volumes (rows of NaN,
    :func:`lcm_hf.windows_lcm.censored_rows`) of each scan's series."""
    from datasets import Value

    counts = [int(censored_rows(np.asarray(ts, dtype=np.float32)).sum())
              for ts in dataset.with_format("numpy")["timeseries"]]
    if "censored_volumes" in dataset.column_names:
        dataset = dataset.remove_columns("censored_volumes")
    return dataset.add_column("censored_volumes", counts, feature=Value("int32"))


def header_roi_labels(files: Sequence[Path], header: str = "auto") -> list[str] | None:
    """The ROI labels the files' headers name (:func:`common_roi_labels` of :func:`~lcm_hf.data.readers.read_roi_labels`)."""
    return common_roi_labels([(path, read_roi_labels(path, header=header)) for path in files])


def common_roi_labels(labelled: Sequence[tuple[Path, list[str] | None]]) -> list[str] | None:
    """The ROI labels of ``(file, labels or None)`` pairs, when every file names the same ones; None when no file
    names any.

    Raises
    ------
    ValueError
        Files with a header of labels beside files without one (one of each named: importing them would drop the
        labels, and with them the column-order check at prediction), or the first file whose labels (names or
        order) differ.
    """
    with_labels = next((path for path, found in labelled if found is not None), None)
    without = next((path for path, found in labelled if found is None), None)
    if with_labels is not None and without is not None:
        raise LcmInputError(
            f"expected a header row of ROI labels in every file or in none, got one in {with_labels} and none in "
            f"{without}; give every file the same header row (a .npy/.mat file names no labels: save it as .tsv "
            "with one), else the labels would be dropped for the whole dataset")
    labels, first = None, None
    for path, found in labelled:
        if found is None:
            return None
        if labels is None:
            labels, first = found, path
        elif found != labels:
            position = next((i for i, (a, b) in enumerate(zip(labels, found)) if a != b), min(len(labels), len(found)))
            raise LcmInputError(f"expected the ROI labels of {first.name} in every file (one column order), got "
                                f"{found[position:position + 1]} at column {position} of {path} where {first.name} has "
                                f"{labels[position:position + 1]}")
    return labels


NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _atlas_regions(atlas) -> tuple[object, int]:
    """The atlas as a loaded 3-D image and its number of non-zero labels."""
    from nilearn.image import load_img

    name = atlas if isinstance(atlas, (str, os.PathLike)) else "the atlas image"
    try:
        image = load_img(atlas)
    except Exception as error:  # nilearn raises several types for unreadable images
        raise LcmInputError(f"expected a readable 3-D labels atlas image, got {name}: {error}") from error
    data = np.asarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:  # a single-volume 4-D atlas
        import nibabel as nib

        data = data[..., 0]
        image = nib.Nifti1Image(data, image.affine, image.header)
    if data.ndim != 3:
        raise LcmInputError(f"expected a 3-D labels atlas image, got shape {data.shape} in {name}")
    if not np.allclose(data, np.round(data)):
        raise LcmInputError(f"expected integer region labels in the atlas {name}, got non-integer values")
    regions = np.unique(data)
    regions = regions[regions != 0]
    if regions.size == 0:
        raise LcmInputError(f"expected non-zero region labels in the atlas {name}, got only background")
    return image, int(regions.size)


def import_nifti_folder(
    folder: str | os.PathLike,
    atlas,
    phenotypes=None,
    *,
    subject_column: str | None = None,
    scan_column: str | None = None,
    id_column: str | None = None,
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
    subject_pattern: str | None = None,
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
    subject_column, scan_column, id_column, dataset_name, site_column, phenotype_columns, subject_pattern,
    unmatched, progress
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
    check_unmatched(unmatched)
    files = list_files(folder, pattern, recursive, NIFTI_SUFFIXES, "NIfTI",
                        exclude=[phenotypes, atlas])
    atlas_name = f"the atlas {Path(atlas).name}" if isinstance(atlas, (str, os.PathLike)) else "the atlas image"
    atlas_img, num_regions = _atlas_regions(atlas)
    masker_kwargs = dict(masker_kwargs or {})

    def read(path: Path) -> np.ndarray:
        try:
            shape = nib.load(path).shape
        except Exception as error:
            raise LcmInputError(f"expected a readable NIfTI scan, got {path}: {error}") from error
        if len(shape) != 4:
            raise LcmInputError(f"expected a 4-D NIfTI scan (X, Y, Z, T), got shape {shape} in {path}")
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
            raise LcmInputError(f"expected {atlas_name} to parcellate {path}: {error}") from error
        if array.ndim != 2 or array.shape[1] != num_regions:
            raise LcmInputError(f"expected {num_regions} regions of {atlas_name} in {path}, got "
                                f"{array.shape[1] if array.ndim == 2 else array.shape}: the atlas does not match "
                                "the scan's field of view")
        return array

    dataset = import_files(
        folder, files, read, phenotypes, subject_column=subject_column, scan_column=scan_column,
        id_column=id_column, dataset_name=dataset_name, site_column=site_column,
        phenotype_columns=phenotype_columns, num_rois=num_regions, subject_pattern=subject_pattern,
        unmatched=unmatched, progress=progress, desc="parcellating NIfTI scans", what="NIfTI")
    name = Path(atlas).name if isinstance(atlas, (str, os.PathLike)) else None
    return add_contract_columns(dataset, atlas=name, repetition_time=t_r)


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
        ``subject_id`` (SUB_ID), ``scan_id`` and ``file_id`` (FILE_ID), ``dataset``, ``site`` (SITE_ID), ``timeseries``
        and the mapped columns (``diagnosis``, ``sex``, ``age`` by default).
    """
    root = Path(root)
    mapping = dict(ABIDE_DEFAULT_MAPPING if mapping is None else mapping)
    suffix = f"_rois_{atlas}.1D"
    files = sorted(p for p in root.rglob(f"*{suffix}") if p.is_file())
    if not files:
        raise LcmInputError(f"expected ABIDE files named '<FILE_ID>{suffix}' under {root}, found none")
    if phenotypes is None:
        phenotypes = _find_abide_phenotypes(root)
        if phenotypes is None:
            raise FileNotFoundError(f"expected {ABIDE_PHENOTYPE_FILE} in or above {root}; pass phenotypes=")
    table = read_phenotypes(phenotypes)
    needed = ["FILE_ID", "SUB_ID", "SITE_ID", *mapping, *keep_columns]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise LcmInputError(f"expected ABIDE phenotype columns {absent}, got {list(table.columns)}")
    by_file = {str(v): i for i, v in enumerate(table["FILE_ID"]) if str(v) != "no_filename"}
    skipped = [p.name for p in files if p.name[: -len(suffix)] not in by_file]
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"skipping {len(skipped)} of {len(files)} ABIDE files whose FILE_ID is not in the phenotype "
                      f"table: {shown}", RuntimeWarning, stacklevel=2)
    records, arrays, counts = [], [], []
    for path in progress_bar(files, progress, "reading ABIDE"):
        file_id = path.name[: -len(suffix)]
        row = by_file.get(file_id)
        if row is None:
            continue
        array = read_timeseries_file(path)
        counts.append((path, array.shape[1]))
        record = {
            "subject_id": str(clean_value(table["SUB_ID"].iloc[row])),
            "scan_id": file_id,
            "dataset": dataset_name,
            "site": str(clean_value(table["SITE_ID"].iloc[row])),
            "file_id": file_id,
        }
        for code_column, spec in mapping.items():
            value = clean_value(table[code_column].iloc[row])
            values = spec.get("values")
            if values is not None:
                value = values.get(value, values.get(str(value))) if value is not None else None
            elif isinstance(value, (int, float)) and value == -9999:  # ABIDE's missing code
                value = np.nan
            record[spec.get("column", code_column)] = value
        for column in keep_columns:
            record[column] = clean_value(table[column].iloc[row])
        records.append(record)
        arrays.append(array)
    if not records:
        raise LcmInputError(f"expected ABIDE files with a FILE_ID in the phenotype table under {root}, got none")
    check_roi_counts(counts)  # the odd files named, not the first file's followers
    columns = [spec.get("column", code) for code, spec in mapping.items()] + list(keep_columns)
    dataset = build_dataset(records, arrays, columns, extra={"file_id": "string"})
    return add_contract_columns(dataset, atlas=atlas, roi_labels=header_roi_labels(files[:1]))


__all__ = [
    "ABIDE_DEFAULT_MAPPING",
    "add_censored_column",
    "ABIDE_PHENOTYPE_FILE",
    "NIFTI_SUFFIXES",
    "import_abide_pcp",
    "import_nifti_folder",
    "import_timeseries_folder",
]
