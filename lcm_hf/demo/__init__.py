"""The demo: a SIMULATED cohort and the main job run on it (`lcm-hf demo`), a user of the library like any other.

Nothing in ``lcm_hf`` outside this package imports it.

- :mod:`.cohort`: :func:`make_demo_cohort` (the simulated multi-dataset cohort) and its constants.
- :mod:`.inputs`: the cohort as training-script inputs (``--demo``).
- :mod:`.run`: :func:`run_demo`, pretrain -> finetune -> baseline -> report; :mod:`.report`, :mod:`.figures`.
"""

from .cohort import (
    DEMO_DATASETS,
    DEMO_EFFECTS,
    DEMO_NETWORKS,
    DEMO_PSEUDO_LABELS,
    FINETUNE_DATASETS,
    PRETRAIN_DATASETS,
    demo_bei_columns,
    demo_roi_names,
    demo_training_data,
    demo_vocabularies,
    make_demo_cohort,
    simulate_timeseries,
)
from .inputs import apply_demo_defaults, demo_datasets
from .run import DemoSettings, run_demo

__all__ = [
    "DEMO_DATASETS",
    "DEMO_EFFECTS",
    "DEMO_NETWORKS",
    "DEMO_PSEUDO_LABELS",
    "FINETUNE_DATASETS",
    "PRETRAIN_DATASETS",
    "DemoSettings",
    "apply_demo_defaults",
    "demo_bei_columns",
    "demo_datasets",
    "demo_roi_names",
    "demo_training_data",
    "demo_vocabularies",
    "make_demo_cohort",
    "run_demo",
    "simulate_timeseries",
]
