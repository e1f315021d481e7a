"""Connectome datasets: schema, importers, transforms, splits, merging, collator, publishing, demo.

A connectome set is a ``datasets.Dataset`` (one row per scan, or per window) with
``subject_id``, ``dataset``, ``site``, ``timeseries`` (``Array2D((None, N))``, T x N) or
``connectivity`` (``Array2D((N, N))``) and phenotype columns (:mod:`.schema`).

Typical pipeline (what ``training/`` does)::

    from lcm_hf.data import (make_demo_cohort, demo_vocabularies, merge_connectome_datasets,
                             add_connectivity, grouped_split, LcmDataCollator, DEMO_PSEUDO_LABELS)
    cohort = make_demo_cohort(seed=0)                       # DatasetDict: hcp_like, abide_like, adni_like, ppmi_like
    vocabs = demo_vocabularies(cohort)                      # name -> BeiVocabulary
    pretrain, vocab = merge_connectome_datasets(
        {k: cohort[k] for k in PRETRAIN_DATASETS}, vocabs, pseudo_labels=DEMO_PSEUDO_LABELS)
    pretrain = add_connectivity(pretrain)                   # FC once, batched (timeseries -> connectivity)
    splits = grouped_split(pretrain, 0.2, 0.1, stratify_by="dataset")   # subject-grouped, no leakage
    collator = LcmDataCollator(vocab)                       # rows -> {"connectivity", "labels"}

- :func:`make_demo_cohort`: SIMULATED multi-site cohort (see :mod:`.demo` for the model and effects).
- :func:`import_timeseries_folder`, :func:`import_nifti_folder`, :func:`import_abide_pcp`,
  :func:`read_timeseries_file`, :func:`nifti_to_timeseries`: from user files.
- :func:`expand_windows` (keeps ``subject_id``, adds ``window_index``), :func:`add_connectivity`,
  :func:`add_labels` (a ``labels`` column so ``Trainer(remove_unused_columns=True)`` works;
  ``fill=`` adds e.g. confident model predictions where a label is missing).
- :func:`grouped_split` / :func:`grouped_kfold`: by subject (``group_by="subject_id"``) or by
  site (``group_by="site"``), stratified; :func:`check_no_leakage`.
- :func:`merge_connectome_datasets`: union vocabulary + declared pseudo-labels;
  :func:`union_vocabulary`: that vocabulary from the BEI columns' pooled values (user data).
- :class:`LcmDataCollator`: rows -> ``{"connectivity": (B, N, N), "labels": (B, K)}`` only;
  subject ids stay in the dataset column (row order = prediction order) for subject-level metrics.
- :func:`publish_dataset` / :func:`load_published`: parquet shards + dataset card;
  :func:`load_connectome_dataset`: one split of a ``save_to_disk`` folder, published folder or parquet file.
"""

from .collator import LcmDataCollator
from .demo import (
    DEMO_DATASETS,
    DEMO_EFFECTS,
    DEMO_NETWORKS,
    DEMO_PSEUDO_LABELS,
    FINETUNE_DATASETS,
    PRETRAIN_DATASETS,
    demo_bei_columns,
    demo_vocabularies,
    make_demo_cohort,
)
from .importers import ABIDE_DEFAULT_MAPPING, import_abide_pcp, import_nifti_folder, import_timeseries_folder
from .merge import merge_connectome_datasets, union_vocabulary
from .nifti import make_kmeans_atlas, make_synthetic_bold, nifti_to_timeseries
from .publishing import load_connectome_dataset, load_published, publish_dataset
from .readers import parse_bids_name, read_phenotypes, read_timeseries_file
from .schema import connectome_column, connectome_features, num_rois_of, validate_connectome_dataset
from .splits import check_no_leakage, grouped_kfold, grouped_split
from .transforms import add_connectivity, add_labels, expand_windows

__all__ = [
    "ABIDE_DEFAULT_MAPPING",
    "DEMO_DATASETS",
    "DEMO_EFFECTS",
    "DEMO_NETWORKS",
    "DEMO_PSEUDO_LABELS",
    "FINETUNE_DATASETS",
    "PRETRAIN_DATASETS",
    "LcmDataCollator",
    "add_connectivity",
    "add_labels",
    "check_no_leakage",
    "connectome_column",
    "connectome_features",
    "demo_bei_columns",
    "demo_vocabularies",
    "expand_windows",
    "grouped_kfold",
    "grouped_split",
    "import_abide_pcp",
    "import_nifti_folder",
    "import_timeseries_folder",
    "load_connectome_dataset",
    "load_published",
    "make_demo_cohort",
    "make_kmeans_atlas",
    "make_synthetic_bold",
    "merge_connectome_datasets",
    "nifti_to_timeseries",
    "num_rois_of",
    "parse_bids_name",
    "publish_dataset",
    "read_phenotypes",
    "read_timeseries_file",
    "union_vocabulary",
    "validate_connectome_dataset",
]
