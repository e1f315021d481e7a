"""The demo cohort as training-script inputs: what `--demo` (and `lcm-hf demo`) hand the recipes, and
:func:`script_datasets`, the datasets of the training scripts (``--demo`` or ``--dataset_dirs``).

The recipes take data explicitly; these helpers build the simulated datasets and fill the data arguments
(BEI columns, declared pseudo-labels, stratification) a user would pass for their own data.
"""

from __future__ import annotations

import json

from ..errors_lcm import LcmInputError
from .cohort import (
    DEMO_DATASETS,
    DEMO_PSEUDO_LABELS,
    FINETUNE_DATASETS,
    PRETRAIN_DATASETS,
    demo_bei_columns,
    make_demo_cohort,
)


def demo_datasets(stage: str, data_args) -> dict:
    """``{name: Dataset}`` of the simulated cohort for ``stage`` ("pretrain" or "finetune"), or the
    ``--demo_datasets`` named, with ``--demo_seed`` and ``--demo_subjects``."""
    if stage not in ("pretrain", "finetune"):
        raise LcmInputError(f"expected stage 'pretrain' or 'finetune', got {stage!r}")
    names = tuple(data_args.demo_datasets or (PRETRAIN_DATASETS if stage == "pretrain" else FINETUNE_DATASETS))
    cohort = make_demo_cohort(seed=data_args.demo_seed, n_subjects=data_args.demo_subjects, datasets=names)
    return dict(cohort.items())


def apply_demo_defaults(data_args, datasets: dict) -> None:
    """Fill the data arguments the user left unset with the demo cohort's: its BEI columns, the declared
    pseudo-label ``task = rest`` and stratification on each dataset's specific BEI."""
    if not (data_args.categorical_columns or data_args.continuous_columns):
        categorical, continuous = [], []
        for name in datasets:
            columns = demo_bei_columns(name)
            categorical += [c for c in columns["categorical"] if c not in categorical]
            continuous += [c for c in columns["continuous"] if c not in continuous]
        data_args.categorical_columns, data_args.continuous_columns = categorical, continuous
    if not data_args.pseudo_labels:
        data_args.pseudo_labels = json.dumps({k: v for k, v in DEMO_PSEUDO_LABELS.items() if k in datasets})
    if not data_args.stratify_column:
        data_args.stratify_column = list(dict.fromkeys(DEMO_DATASETS[name]["bei"][0] for name in datasets))


def script_datasets(data_args, stage: str) -> dict:
    """The datasets a training script (``training/pretrain.py``, ``training/finetune.py``) trains on.

    Parameters
    ----------
    data_args : LcmDataArguments
        ``--demo`` (the simulated cohort, whose data defaults are then filled in) or ``--dataset_dirs`` (folders
        written by ``processing/build_dataset.py``).
    stage : {"pretrain", "finetune"}
        Which demo datasets (with ``--demo``).

    Returns
    -------
    dict
        ``{name: Dataset | DatasetDict}``.
    """
    if data_args.demo:
        datasets = demo_datasets(stage, data_args)
        apply_demo_defaults(data_args, datasets)
        return datasets
    if not data_args.dataset_dirs:
        raise SystemExit(
            "error: no data: pass --dataset_dirs FOLDER [FOLDER ...] (written by processing/build_dataset.py), "
            "or --demo for the simulated demo cohort"
        )
    from ..training.data import load_connectome_datasets

    return load_connectome_datasets(data_args.dataset_dirs)


__all__ = ["apply_demo_defaults", "demo_datasets", "script_datasets"]
