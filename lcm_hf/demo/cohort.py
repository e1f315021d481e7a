"""A SIMULATED multi-site, multi-dataset connectome cohort for demos and tests.

Nothing here is real data. ``make_demo_cohort`` draws ROI time series from a network factor
model on N=116 ROIs grouped into nine AAL-like networks (contiguous blocks, see
:data:`DEMO_NETWORKS`)::

    x_r(t) = lam_r * f_{net(r)}(t) + sqrt(1 - lam_r**2) * e_r(t) + a_site * g(t)

with network factors ``f ~ N(0, C)`` (C: between-network correlation, 9 x 9), ROI loadings
``lam_r`` (within-network coupling), white noise ``e`` and a site-specific global signal
``g``. The FC is then about ``lam_i * lam_j`` inside a network and ``lam_i * lam_j * C_ab``
between networks a and b. Each BEI shifts specific blocks (:data:`DEMO_EFFECTS`):
``("between", a, b, delta)`` adds ``delta`` to ``C_ab``; ``("within", a, delta)`` adds
``delta`` to the loadings of network a. Categorical effects apply per class (the reference
class has none); continuous ones per unit of ``(value - center)``. On top: subject
variability (``C_ab`` jitter sd 0.05, loading jitter sd 0.04), site effects (loading offset
sd 0.04, global-signal amplitude 0.1-0.5), finite-T sampling noise and ~5% missing sex/age.

Datasets (``DatasetDict`` keys), each with subject_id, dataset, site, timeseries, sex, age:
- ``hcp_like`` (pretraining): + ``task`` in {rest, wm, motor}
- ``abide_like`` (pretraining): + ``autism`` in {ASD, control}
- ``adni_like`` (pretraining): + ``alzheimer`` in {AD, CN, MCI}
- ``ppmi_like`` (held back for finetuning): + ``parkinson`` in {PD, control} (a BEI no
  pretraining dataset has)
With the defaults a logistic regression on FC reaches roughly 70-90% accuracy on the
diagnosis BEIs (see ``tests/test_data_demo.py``): learnable, not trivial.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors_lcm import LcmInputError

DEMO_NETWORKS: dict[str, int] = {
    "visual": 14,
    "somatomotor": 16,
    "dorsal_attention": 12,
    "ventral_attention": 12,
    "limbic": 10,
    "frontoparietal": 14,
    "default_mode": 18,
    "subcortical": 10,
    "cerebellum": 10,
}
"""ROIs per AAL-like network, in ROI order (contiguous blocks, 116 in total)."""

_NET = list(DEMO_NETWORKS)

# (kind, network[, network], delta) per class (categorical) or per unit (continuous).
DEMO_EFFECTS: dict[str, dict] = {
    "sex": {"M": [("between", "visual", "somatomotor", 0.16), ("within", "somatomotor", 0.03)]},
    "age": {  # per year from 50 (continuous)
        "per_unit": [("within", "default_mode", -0.004), ("between", "default_mode", "frontoparietal", -0.004)],
        "center": 50.0,
    },
    "task": {
        "wm": [("between", "dorsal_attention", "frontoparietal", 0.20), ("within", "default_mode", -0.05)],
        "motor": [("within", "somatomotor", 0.06), ("between", "somatomotor", "cerebellum", 0.20)],
    },
    "autism": {"ASD": [("between", "default_mode", "limbic", -0.18), ("within", "ventral_attention", -0.04)]},
    "alzheimer": {
        "MCI": [("within", "default_mode", -0.06), ("between", "default_mode", "frontoparietal", -0.12)],
        "AD": [("within", "default_mode", -0.16), ("between", "default_mode", "frontoparietal", -0.32)],
    },
    "parkinson": {"PD": [("between", "somatomotor", "subcortical", -0.20), ("within", "subcortical", -0.05)]},
}
"""The simulated effect of each BEI class (or unit of a continuous BEI) on the FC blocks."""

DEMO_DATASETS: dict[str, dict] = {
    "hcp_like": {"n_subjects": 200, "n_timepoints": 240, "sites": 2, "age": (22, 37),
                 "bei": ("task", ["rest", "wm", "motor"], [0.4, 0.3, 0.3])},
    "abide_like": {"n_subjects": 160, "n_timepoints": 180, "sites": 4, "age": (7, 40),
                   "bei": ("autism", ["ASD", "control"], [0.5, 0.5])},
    "adni_like": {"n_subjects": 180, "n_timepoints": 180, "sites": 3, "age": (55, 90),
                  "bei": ("alzheimer", ["AD", "CN", "MCI"], [0.3, 0.4, 0.3])},
    "ppmi_like": {"n_subjects": 120, "n_timepoints": 180, "sites": 2, "age": (50, 80),
                  "bei": ("parkinson", ["PD", "control"], [0.5, 0.5])},
}
"""Default size, sites, age range and specific BEI of each simulated dataset."""

PRETRAIN_DATASETS = ("hcp_like", "abide_like", "adni_like")
FINETUNE_DATASETS = ("ppmi_like",)
DEMO_PSEUDO_LABELS = {"abide_like": {"task": "rest"}, "adni_like": {"task": "rest"}, "ppmi_like": {"task": "rest"}}
"""Declared pseudo-labels: every non-HCP scan is resting state."""

_BASE_BETWEEN = {
    ("visual", "somatomotor"): 0.30,
    ("dorsal_attention", "ventral_attention"): 0.35,
    ("dorsal_attention", "frontoparietal"): 0.25,
    ("default_mode", "frontoparietal"): 0.30,
    ("default_mode", "limbic"): 0.30,
    ("default_mode", "dorsal_attention"): -0.20,
    ("somatomotor", "subcortical"): 0.30,
    ("somatomotor", "cerebellum"): 0.20,
    ("subcortical", "limbic"): 0.20,
}
_BASE_LOADING = 0.6


def demo_bei_columns(name: str) -> dict[str, list[str]]:
    """``{"categorical": [...], "continuous": [...]}`` BEI columns of one demo dataset."""
    if name not in DEMO_DATASETS:
        raise LcmInputError(f"expected a demo dataset name in {list(DEMO_DATASETS)}, got {name!r}")
    return {"categorical": ["sex", DEMO_DATASETS[name]["bei"][0]], "continuous": ["age"]}


def demo_vocabularies(cohort) -> dict:
    """One ``BeiVocabulary`` per dataset of a demo cohort (``DatasetDict``)."""
    from ..vocabulary_lcm import BeiVocabulary

    vocabularies = {}
    for name, ds in cohort.items():
        columns = demo_bei_columns(name)
        specific, classes = DEMO_DATASETS[name]["bei"][0], DEMO_DATASETS[name]["bei"][1]
        vocabularies[name] = BeiVocabulary.from_dataframe(
            {c: ds[c] for c in columns["categorical"] + columns["continuous"]},
            categorical=columns["categorical"],
            continuous=columns["continuous"],
            classes={"sex": ["F", "M"], specific: classes},
        )
    return vocabularies


def _nearest_correlation(c: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """Clip eigenvalues of a batch of symmetric matrices and rescale to unit diagonal."""
    w, v = np.linalg.eigh(c)
    c = (v * np.maximum(w, floor)[:, None, :]) @ np.swapaxes(v, 1, 2)
    d = 1.0 / np.sqrt(np.diagonal(c, axis1=1, axis2=2))
    return c * d[:, :, None] * d[:, None, :]


def simulate_timeseries(
    rng: np.random.Generator,
    phenotypes: dict[str, np.ndarray],
    site_index: np.ndarray,
    n_sites: int,
    n_timepoints: int,
    effect_scale: float = 1.0,
) -> np.ndarray:
    """Draw (S, T, 116) float32 time series for S subjects given their phenotypes (see module doc)."""
    n_subjects, n_net = len(site_index), len(_NET)
    between = np.eye(n_net)[None].repeat(n_subjects, 0)
    for (a, b), value in _BASE_BETWEEN.items():
        i, j = _NET.index(a), _NET.index(b)
        between[:, i, j] = between[:, j, i] = value
    loadings = np.full((n_subjects, n_net), _BASE_LOADING)
    for name, values in phenotypes.items():
        spec = DEMO_EFFECTS.get(name)
        if spec is None:
            continue
        if "per_unit" in spec:
            weight = np.nan_to_num(np.asarray(values, float) - spec["center"]) * effect_scale
            _apply_weighted(spec["per_unit"], weight, between, loadings)
        else:
            for cls, effects in spec.items():
                weight = np.array([v == cls for v in values], float) * effect_scale
                _apply_weighted(effects, weight, between, loadings)
    jitter = rng.normal(0, 0.05, (n_subjects, n_net, n_net))
    jitter = np.triu(jitter, 1)
    between += jitter + np.swapaxes(jitter, 1, 2)
    site_loading = rng.normal(0, 0.04, n_sites)
    site_global = rng.uniform(0.1, 0.5, n_sites)
    loadings += rng.normal(0, 0.04, (n_subjects, n_net)) + site_loading[site_index][:, None]
    between = _nearest_correlation(between)
    sizes = list(DEMO_NETWORKS.values())
    roi_net = np.repeat(np.arange(n_net), sizes)
    lam = np.clip(loadings[:, roi_net] + rng.normal(0, 0.05, (n_subjects, len(roi_net))), 0.05, 0.95)
    chol = np.linalg.cholesky(between)  # (S, 9, 9)
    factors = np.einsum("stk,sjk->stj", rng.standard_normal((n_subjects, n_timepoints, n_net)), chol)
    noise = rng.standard_normal((n_subjects, n_timepoints, len(roi_net)))
    glob = rng.standard_normal((n_subjects, n_timepoints, 1)) * site_global[site_index][:, None, None]
    x = factors[:, :, roi_net] * lam[:, None, :] + noise * np.sqrt(1 - lam**2)[:, None, :] + glob
    return x.astype(np.float32)


def _apply_weighted(effects, weight: np.ndarray, between: np.ndarray, loadings: np.ndarray) -> None:
    for effect in effects:
        if effect[0] == "between":
            a, b = _NET.index(effect[1]), _NET.index(effect[2])
            between[:, a, b] += weight * effect[3]
            between[:, b, a] += weight * effect[3]
        else:
            loadings[:, _NET.index(effect[1])] += weight * effect[2]


def make_demo_cohort(
    seed: int = 0,
    n_subjects: int | dict[str, int] | None = None,
    n_timepoints: int | dict[str, int] | None = None,
    datasets: tuple[str, ...] | None = None,
    representation: str = "timeseries",
    effect_scale: float = 1.0,
    missing_rate: float = 0.05,
):
    """Simulate the demo cohort (SIMULATED data; see the module docstring for the model).

    Parameters
    ----------
    seed : int
        Everything is deterministic for a seed.
    n_subjects : int or dict name -> int, optional
        Subjects per dataset (defaults in :data:`DEMO_DATASETS`: 200/160/180/120).
    n_timepoints : int or dict name -> int, optional
        TRs per scan (defaults 240 for hcp_like, 180 otherwise).
    datasets : tuple of str, optional
        Subset of ``("hcp_like", "abide_like", "adni_like", "ppmi_like")`` (default all four).
    representation : {"timeseries", "connectivity"}
        Store ``timeseries`` (T, 116) or precomputed Pearson ``connectivity`` (116, 116).
    effect_scale : float
        Multiplies every BEI effect (0 gives pure noise; 2 makes the task easy).
    missing_rate : float
        Fraction of sex and age values set missing (None / NaN).

    Returns
    -------
    datasets.DatasetDict
        One ``Dataset`` per simulated dataset, keyed by name. Columns: ``subject_id`` (str, one
        scan per subject), ``dataset``, ``site``, ``timeseries`` (Array2D (T, 116) float32) or
        ``connectivity`` (Array2D (116, 116) float32), ``sex`` (F/M or None), ``age`` (float or
        NaN) and the dataset's specific BEI column. Pretraining: :data:`PRETRAIN_DATASETS`;
        finetuning: :data:`FINETUNE_DATASETS`.
    """
    import datasets as hfds

    from ..data.schema import connectome_features

    if representation not in ("timeseries", "connectivity"):
        raise LcmInputError(f"expected representation 'timeseries' or 'connectivity', got {representation!r}")
    names = tuple(datasets) if datasets is not None else tuple(DEMO_DATASETS)
    unknown = [n for n in names if n not in DEMO_DATASETS]
    if unknown:
        raise LcmInputError(f"expected dataset names in {list(DEMO_DATASETS)}, got {unknown}")
    out = {}
    for d_index, name in enumerate(DEMO_DATASETS):
        if name not in names:
            continue
        spec = DEMO_DATASETS[name]
        rng = np.random.default_rng([seed, d_index])
        n = n_subjects.get(name, spec["n_subjects"]) if isinstance(n_subjects, dict) else (
            n_subjects or spec["n_subjects"])
        t = n_timepoints.get(name, spec["n_timepoints"]) if isinstance(n_timepoints, dict) else (
            n_timepoints or spec["n_timepoints"])
        specific, classes, probs = spec["bei"]
        sex = rng.choice(["F", "M"], n).astype(object)
        age = rng.uniform(*spec["age"], n).round(1)
        label = rng.choice(classes, n, p=probs).astype(object)
        site_index = rng.integers(0, spec["sites"], n)
        x = simulate_timeseries(rng, {"sex": sex, "age": age, specific: label}, site_index, spec["sites"], t,
                                effect_scale)
        sex[rng.random(n) < missing_rate] = None
        age[rng.random(n) < missing_rate] = np.nan
        columns = {
            "subject_id": [f"{name}-{i:04d}" for i in range(n)],
            "dataset": [name] * n,
            "site": [f"{name}-site{s}" for s in site_index],
        }
        if representation == "timeseries":
            columns["timeseries"] = x
        else:
            from ..connectivity_lcm import pearson_connectivity

            columns["connectivity"] = pearson_connectivity(x).numpy()
        columns.update({"sex": list(sex), "age": age.tolist(), specific: list(label)})
        features = connectome_features(
            x.shape[2], {"sex": "string", "age": "float32", specific: "string"}, representation=representation
        )
        out[name] = hfds.Dataset.from_dict(columns, features=features)
    return hfds.DatasetDict(out)


def demo_training_data(num_subjects: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Connectivity and labels of the SIMULATED demo cohort's pretraining datasets.

    Parameters
    ----------
    num_subjects : int
        Subjects per demo dataset.
    seed : int
        Seed of the simulated cohort.

    Returns
    -------
    fc : torch.Tensor
        (S, 116, 116) Pearson FC.
    labels : torch.Tensor
        (S, K) labels in the merged vocabulary's order (NaN where missing).
    beis : list of dict
        The merged vocabulary as a ``config.beis`` list.
    """
    from ..vocabulary_lcm import BeiVocabulary

    cohort = make_demo_cohort(seed=seed, n_subjects=num_subjects, datasets=PRETRAIN_DATASETS,
                              representation="connectivity")
    vocabularies = demo_vocabularies(cohort)
    vocabulary = BeiVocabulary.merge(*[vocabularies[name] for name in PRETRAIN_DATASETS])
    fcs, labels = [], []
    for ds in cohort.values():
        fcs.append(torch.as_tensor(np.asarray(ds["connectivity"], dtype=np.float32)))  # (S_d, N, N)
        columns = {c: list(ds[c]) if c in ds.column_names else [None] * len(ds) for c in vocabulary.names}
        labels.append(vocabulary.encode(columns))  # (S_d, K)
    return torch.cat(fcs), torch.cat(labels), vocabulary.to_config()


def demo_roi_names() -> list[str]:
    """Names of the simulated demo cohort's ROIs: ``{network}_{index:02d}`` in ROI order."""
    return [f"{network}_{i + 1:02d}" for network, size in DEMO_NETWORKS.items() for i in range(size)]


__all__ = [
    "DEMO_DATASETS",
    "DEMO_EFFECTS",
    "DEMO_NETWORKS",
    "DEMO_PSEUDO_LABELS",
    "FINETUNE_DATASETS",
    "PRETRAIN_DATASETS",
    "demo_bei_columns",
    "demo_roi_names",
    "demo_training_data",
    "demo_vocabularies",
    "make_demo_cohort",
    "simulate_timeseries",
]
