"""The demo: a SIMULATED cohort and the main job run on it (`lcm-hf demo`), a user of the library like any other.

Nothing in ``lcm_hf`` outside this package imports it.

- :mod:`.cohort`: :func:`make_demo_cohort` (the simulated multi-dataset cohort) and its constants.
- :mod:`.inputs`: the cohort as training-script inputs (``--demo``).
- :mod:`.run`: :func:`run_demo`, pretrain -> finetune -> baseline -> report; :mod:`.report`, :mod:`.figures`.
- :mod:`.cli`: the `lcm-hf demo` subcommand (an ``lcm_hf.commands`` entry point).
"""

from ..lazy_imports import lazy_getattr

# Loaded on first use (PEP 562): `lcm-hf --help` lists the `demo` subcommand (.cli) without torch.
_LAZY = {
    "DEMO_DATASETS": "cohort",
    "DEMO_EFFECTS": "cohort",
    "DEMO_NETWORKS": "cohort",
    "DEMO_PSEUDO_LABELS": "cohort",
    "FINETUNE_DATASETS": "cohort",
    "PRETRAIN_DATASETS": "cohort",
    "demo_bei_columns": "cohort",
    "demo_roi_names": "cohort",
    "demo_training_data": "cohort",
    "demo_vocabularies": "cohort",
    "make_demo_cohort": "cohort",
    "simulate_timeseries": "cohort",
    "apply_demo_defaults": "inputs",
    "demo_datasets": "inputs",
    "script_datasets": "inputs",
    "DemoSettings": "run",
    "run_demo": "run",
}


__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = sorted(_LAZY)
