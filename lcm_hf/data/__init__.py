"""Connectome datasets: schema, importers, transforms, splits, merging, collator, publishing.

A connectome set is a ``datasets.Dataset`` (one row per scan, or per window) with
``subject_id``, ``dataset``, ``site``, ``timeseries`` (``Array2D((None, N))``, T x N) or
``connectivity`` (``Array2D((N, N))``) and phenotype columns (:mod:`.schema`).

Typical pipeline (what ``training/`` does)::

    from lcm_hf.data import (import_timeseries_folder, union_vocabulary, merge_connectome_datasets,
                             add_connectivity, grouped_split, LcmDataCollator)
    datasets = {"site_a": import_timeseries_folder("site_a/", phenotypes="site_a/participants.tsv"),
                "site_b": import_timeseries_folder("site_b/", phenotypes="site_b/participants.tsv")}
    vocab = union_vocabulary(datasets, categorical=["sex", "diagnosis"], continuous=["age"])
    pretrain, vocab = merge_connectome_datasets(datasets, vocab, pseudo_labels={"site_b": {"task": "rest"}})
    pretrain = add_connectivity(pretrain)                   # FC once, batched (timeseries -> connectivity)
    splits = grouped_split(pretrain, 0.2, 0.1, stratify_by="dataset")   # subject-grouped, no leakage
    collator = LcmDataCollator(vocab)                       # rows -> {"connectivity", "labels"}

- :func:`import_timeseries_folder`, :func:`import_nifti_folder`, :func:`import_connectivity_folder`
  (ready N x N matrices or triangle vectors), :func:`import_edge_table` (one table, a row per subject with
  upper-triangle edge columns), :func:`import_abide_pcp`, :func:`read_timeseries_file`,
  :func:`nifti_to_timeseries`: from user files. Identity: ``subject_id`` from the subject, ``scan_id``
  per scan, exact matching to per-subject or per-scan phenotype tables, one :class:`MatchReport`.
- :func:`expand_windows` (keeps ``subject_id``, adds ``window_index``), :func:`add_connectivity`,
  :func:`add_labels` (a ``labels`` column so ``Trainer(remove_unused_columns=True)`` works;
  ``fill=`` adds e.g. confident model predictions where a label is missing).
- :func:`grouped_split` / :func:`grouped_kfold` (seeded, shuffled): by subject (``group_by="subject_id"``) or
  by site (``group_by="site"``), stratified; :func:`split_by_column` (a ``split`` column, as given);
  :func:`check_no_leakage`; :func:`add_scan_ids` (``scan_id`` for sets written without one).
- :func:`merge_connectome_datasets`: union vocabulary + declared pseudo-labels (colliding dataset names
  raise; ``rename=True``); :func:`union_vocabulary`: that vocabulary from the BEI columns' pooled values
  (missing columns raise with close matches; ``class_aliases`` merge spellings, look-alike classes warn).
- :class:`LcmDataCollator`: rows -> ``{"connectivity": (B, N, N), "labels": (B, K)}`` only;
  subject ids stay in the dataset column (row order = prediction order) for subject-level metrics.
- :func:`publish_dataset` / :func:`load_published`: parquet shards + dataset card;
  :func:`load_connectome_dataset`: one split of a ``save_to_disk`` folder, published folder or parquet file.
"""

from .collator import LcmDataCollator
from .columns import apply_class_aliases, similar_classes
from .connectivity_import import (
    import_connectivity_folder,
    matrix_to_vector,
    read_connectivity_file,
    vector_to_matrix,
)
from .edge_table import import_edge_table
from .identity import add_scan_ids
from .importers import ABIDE_DEFAULT_MAPPING, import_abide_pcp, import_nifti_folder, import_timeseries_folder
from .matching import MatchReport, file_identity, normalize_id
from .merge import merge_connectome_datasets, union_vocabulary
from .nifti import make_kmeans_atlas, make_synthetic_bold, nifti_to_timeseries
from .publishing import load_connectome_dataset, load_published, publish_dataset
from .readers import parse_bids_name, read_phenotypes, read_timeseries_file
from .schema import connectome_column, connectome_features, num_rois_of, validate_connectome_dataset
from .splits import (
    check_no_leakage,
    class_counts,
    default_stratify_column,
    grouped_kfold,
    grouped_split,
    split_by_column,
)
from .transforms import add_connectivity, add_labels, expand_windows

__all__ = [
    "ABIDE_DEFAULT_MAPPING",
    "LcmDataCollator",
    "MatchReport",
    "add_connectivity",
    "add_labels",
    "add_scan_ids",
    "apply_class_aliases",
    "check_no_leakage",
    "class_counts",
    "connectome_column",
    "connectome_features",
    "default_stratify_column",
    "expand_windows",
    "file_identity",
    "grouped_kfold",
    "grouped_split",
    "import_abide_pcp",
    "import_connectivity_folder",
    "import_edge_table",
    "import_nifti_folder",
    "import_timeseries_folder",
    "load_connectome_dataset",
    "load_published",
    "make_kmeans_atlas",
    "make_synthetic_bold",
    "matrix_to_vector",
    "merge_connectome_datasets",
    "nifti_to_timeseries",
    "normalize_id",
    "num_rois_of",
    "parse_bids_name",
    "publish_dataset",
    "read_connectivity_file",
    "read_phenotypes",
    "read_timeseries_file",
    "similar_classes",
    "split_by_column",
    "union_vocabulary",
    "validate_connectome_dataset",
    "vector_to_matrix",
]
