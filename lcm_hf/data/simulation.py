"""SIMULATED connectome corpora with a known answer: does pretraining on many datasets' BEIs transfer?

Nothing here is real data. A :class:`TransferWorld` fixes the generative model (ROI networks, FC factor patterns,
every BEI's loadings) from one seed; :meth:`TransferWorld.pretraining_corpus` and
:meth:`TransferWorld.downstream_cohort` draw subjects from it, at any size, as connectome ``datasets.Dataset``s
(:func:`~lcm_hf.data.schema.connectome_features`, ``connectivity`` representation).

Generative model (Fisher-z space, N ROIs in contiguous network blocks)::

    z_s = B + sigma_factor * (sum_k h_sk P_k + sum_m g_sm Q_m) + D_d + S_{d,site} + E_s
    connectivity_s = tanh(z_s), with a unit diagonal

- ``B``: the group FC: ``within`` inside a network block, ``between`` across blocks, plus a fixed
  symmetric jitter (sd 0.05).
- ``P_k`` (k < ``num_shared_factors``): the SHARED factor patterns, ``Q_m`` (m < ``num_private_factors``)
  the PRIVATE ones. Each is one network block pair (a, b) (a == b: within a network) with ones on its
  edges, scaled to unit root-mean-square over the block; the pairs are drawn without replacement, so the
  shared and private patterns touch disjoint edges.
- ``h_s ~ N(0, I_K)``, ``g_s ~ N(0, I_M)``: the subject's factor scores (independent).
- ``D_d`` (sd ``dataset_sd``) and ``S_{d,site}`` (sd ``site_sd``): symmetric offsets of every edge, drawn
  once per dataset and per site; ``E_s``: symmetric subject noise of every edge (sd ``noise_sd``).

BEIs (categorical, classes ``["neg", "pos"]``): BEI ``b`` of subject ``s`` is ``pos`` when
``a_b . x_s + eps > 0`` with ``eps ~ N(0, label_noise_sd)``, where ``x_s`` is ``h_s`` (shared) or ``g_s``
(private) and ``a_b`` a unit loading vector (its "score" ``a_b . x_s`` is known, :attr:`SimulatedSet.scores`).

- Pretraining datasets ``pre_00`` ... each carry ``beis_per_dataset`` BEIs of their own (``pre_00_b0``...),
  all loading on the SHARED factors only: a model that predicts them must read ``h`` from the FC.
- A downstream cohort (a new dataset, its own offsets and sites) carries one new BEI ``target`` that loads
  either on the shared factors with a loading vector no pretraining BEI has (``control="positive"``: a
  pretrained representation of ``h`` should transfer) or on the private factors that no pretraining BEI
  touches (``control="negative"``: nothing to transfer; pretraining should at least do no harm).

Every draw is reproducible: the world from ``TransferWorld(seed=...)``, the subjects from the ``seed`` given
to each corpus (the pretraining datasets' and the downstream cohort's offsets come from the world, so cohorts
drawn with different seeds are new subjects of the same datasets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors_lcm import LcmInputError

CLASSES = ["neg", "pos"]
"""The classes of every simulated BEI (``pos``: latent score above the threshold)."""
TARGET = "target"
"""The downstream cohort's new BEI."""
CONTROLS = ("positive", "negative")


@dataclass
class SimulatedSet:
    """Subjects drawn from a :class:`TransferWorld`.

    Attributes
    ----------
    datasets : dict[str, datasets.Dataset]
        ``{dataset name: Dataset}`` with ``subject_id``, ``dataset``, ``site``, ``connectivity`` (N, N) float32
        and one string column per BEI of that dataset (``"neg"`` / ``"pos"``).
    shared : dict[str, np.ndarray]
        ``{dataset name: (n, K)}`` shared factor scores ``h`` of the rows.
    private : dict[str, np.ndarray]
        ``{dataset name: (n, M)}`` private factor scores ``g`` of the rows.
    scores : dict[str, dict[str, np.ndarray]]
        ``{dataset name: {bei: (n,)}}`` the latent score ``a_b . x`` of each of the dataset's BEIs.
    """

    datasets: dict
    shared: dict
    private: dict
    scores: dict


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LcmInputError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _unit(rng: np.random.Generator, size: int) -> np.ndarray:
    vector = rng.standard_normal(size)
    return vector / np.linalg.norm(vector)


class TransferWorld:
    """The fixed generative model of a transfer study (see the module docstring).

    Parameters
    ----------
    num_rois : int
        N; split into ``num_networks`` contiguous blocks as evenly as possible.
    num_networks : int
        Network blocks (``num_networks * (num_networks + 1) / 2`` block pairs must cover the factors).
    num_shared_factors, num_private_factors : int
        K and M.
    num_pretraining_datasets, beis_per_dataset : int
        Pretraining datasets and the BEIs each carries (all on the shared factors).
    sites_per_dataset : int
        Sites of every dataset (subjects are spread evenly).
    sigma_factor, noise_sd, dataset_sd, site_sd, label_noise_sd : float
        Effect size of one unit of factor score on its block's edges (z), subject edge noise, dataset and site
        offsets, and the noise of the BEIs' thresholds.
    within, between : float
        Group FC (z) inside and across network blocks.
    seed : int
        Seed of the world (patterns, loadings, offsets).
    """

    def __init__(self, num_rois: int = 24, num_networks: int = 6, num_shared_factors: int = 4,
                 num_private_factors: int = 4, num_pretraining_datasets: int = 6, beis_per_dataset: int = 2,
                 sites_per_dataset: int = 3, sigma_factor: float = 0.2, noise_sd: float = 0.2,
                 dataset_sd: float = 0.1, site_sd: float = 0.05, label_noise_sd: float = 0.3,
                 within: float = 0.6, between: float = 0.1, seed: int = 0):
        self.num_rois = _check_positive_int("num_rois", num_rois, 2)
        self.num_networks = _check_positive_int("num_networks", num_networks)
        if self.num_networks > self.num_rois:
            raise LcmInputError(f"num_networks: expected at most num_rois={num_rois} networks, got {num_networks}")
        self.num_shared = _check_positive_int("num_shared_factors", num_shared_factors)
        self.num_private = _check_positive_int("num_private_factors", num_private_factors)
        pairs = [(a, b) for a in range(self.num_networks) for b in range(a, self.num_networks)]
        if self.num_shared + self.num_private > len(pairs):
            raise LcmInputError(
                f"num_shared_factors + num_private_factors: expected at most {len(pairs)} (the block pairs of "
                f"{num_networks} networks), got {self.num_shared + self.num_private}"
            )
        self.num_datasets = _check_positive_int("num_pretraining_datasets", num_pretraining_datasets)
        self.beis_per_dataset = _check_positive_int("beis_per_dataset", beis_per_dataset)
        self.sites_per_dataset = _check_positive_int("sites_per_dataset", sites_per_dataset)
        for name, value in (("sigma_factor", sigma_factor), ("noise_sd", noise_sd), ("dataset_sd", dataset_sd),
                            ("site_sd", site_sd), ("label_noise_sd", label_noise_sd)):
            if not np.isfinite(value) or value < 0:
                raise LcmInputError(f"{name}: expected a finite number >= 0, got {value!r}")
        self.sigma_factor, self.noise_sd = float(sigma_factor), float(noise_sd)
        self.dataset_sd, self.site_sd, self.label_noise_sd = float(dataset_sd), float(site_sd), float(label_noise_sd)
        self.seed = int(seed)

        rng = np.random.default_rng([self.seed, 0])
        n = self.num_rois
        self.networks = np.array_split(np.arange(n), self.num_networks)
        label = np.empty(n, dtype=int)
        for index, rois in enumerate(self.networks):
            label[rois] = index
        same = label[:, None] == label[None, :]
        self.base = np.where(same, within, between) + self._symmetric(rng, 0.05)
        chosen = rng.permutation(len(pairs))[: self.num_shared + self.num_private]
        patterns = np.stack([self._block(*pairs[i]) for i in chosen])
        self.shared_patterns = patterns[: self.num_shared]  # (K, N, N)
        self.private_patterns = patterns[self.num_shared:]  # (M, N, N)
        self.pretraining_names = [f"pre_{d:02d}" for d in range(self.num_datasets)]
        self.loadings = {  # {bei: ("shared" | "private", unit vector)}
            f"{name}_b{j}": ("shared", _unit(rng, self.num_shared))
            for name in self.pretraining_names for j in range(self.beis_per_dataset)
        }
        self.dataset_beis = {
            name: [f"{name}_b{j}" for j in range(self.beis_per_dataset)] for name in self.pretraining_names
        }
        # The positive control's loading: orthogonal to the first pretraining BEI's, so it is a new combination.
        first = self.loadings[self.dataset_beis[self.pretraining_names[0]][0]][1]
        positive = _unit(rng, self.num_shared)
        positive = positive - (positive @ first) * first if self.num_shared > 1 else positive
        self.target_loadings = {"positive": ("shared", positive / np.linalg.norm(positive)),
                                "negative": ("private", _unit(rng, self.num_private))}
        self.offsets = {name: self._symmetric(rng, self.dataset_sd) for name in [*self.pretraining_names,
                                                                                 *CONTROLS]}
        self.site_offsets = {name: [self._symmetric(rng, self.site_sd) for _ in range(self.sites_per_dataset)]
                             for name in self.offsets}

    # ------------------------------------------------------------------ pieces
    def _symmetric(self, rng: np.random.Generator, sd: float) -> np.ndarray:
        upper = np.triu(rng.standard_normal((self.num_rois, self.num_rois)) * sd, 1)
        return upper + upper.T

    def _block(self, a: int, b: int) -> np.ndarray:
        pattern = np.zeros((self.num_rois, self.num_rois))
        rows, cols = self.networks[a], self.networks[b]
        pattern[np.ix_(rows, cols)] = 1.0
        pattern[np.ix_(cols, rows)] = 1.0
        np.fill_diagonal(pattern, 0.0)
        return pattern

    def _draw(self, name: str, num_subjects: int, beis: dict, rng: np.random.Generator, id_prefix: str):
        """One dataset: ``(Dataset, h, g, scores)`` for `beis` ``{column: (kind, loading)}``."""
        from datasets import Dataset

        from .schema import connectome_features

        k, m, n = self.num_shared, self.num_private, self.num_rois
        h = rng.standard_normal((num_subjects, k))
        g = rng.standard_normal((num_subjects, m))
        sites = np.arange(num_subjects) % self.sites_per_dataset
        rng.shuffle(sites)
        upper = np.triu(rng.standard_normal((num_subjects, n, n)) * self.noise_sd, 1)
        z = (self.base + self.offsets[name]
             + self.sigma_factor * (np.einsum("sk,kij->sij", h, self.shared_patterns)
                                    + np.einsum("sm,mij->sij", g, self.private_patterns))
             + np.stack(self.site_offsets[name])[sites] + upper + upper.transpose(0, 2, 1))
        connectivity = np.tanh(z).astype(np.float32)
        connectivity[:, np.arange(n), np.arange(n)] = 1.0
        columns = {
            "subject_id": [f"{id_prefix}-{i:05d}" for i in range(num_subjects)],
            "dataset": [name] * num_subjects,
            "site": [f"{name}_site{s}" for s in sites],
            "connectivity": list(connectivity),
        }
        scores = {}
        for bei, (kind, loading) in beis.items():
            score = (h if kind == "shared" else g) @ loading
            noisy = score + rng.standard_normal(num_subjects) * self.label_noise_sd
            columns[bei] = [CLASSES[int(value > 0)] for value in noisy]
            scores[bei] = score
        features = connectome_features(n, {bei: "string" for bei in beis}, representation="connectivity")
        return Dataset.from_dict(columns, features=features), h, g, scores

    # ------------------------------------------------------------------ corpora
    def pretraining_corpus(self, num_subjects: int, seed: int = 0) -> SimulatedSet:
        """`num_subjects` subjects spread evenly over the pretraining datasets, each dataset labelled with its
        own BEIs (the others' are absent, as in a corpus of many studies)."""
        num_subjects = _check_positive_int("num_subjects", num_subjects, self.num_datasets)
        rng = np.random.default_rng([self.seed, 1, int(seed)])
        sizes = np.full(self.num_datasets, num_subjects // self.num_datasets)
        sizes[: num_subjects % self.num_datasets] += 1
        out = SimulatedSet({}, {}, {}, {})
        for name, size in zip(self.pretraining_names, sizes):
            beis = {bei: self.loadings[bei] for bei in self.dataset_beis[name]}
            dataset, h, g, scores = self._draw(name, int(size), beis, rng, f"{name}-s{seed}")
            out.datasets[name], out.shared[name], out.private[name], out.scores[name] = dataset, h, g, scores
        return out

    def downstream_cohort(self, num_subjects: int, control: str = "positive", seed: int = 0) -> SimulatedSet:
        """A new dataset (named `control`) of `num_subjects` subjects labelled with the new BEI :data:`TARGET`,
        which loads on the shared factors (``"positive"``) or on the private ones (``"negative"``)."""
        if control not in CONTROLS:
            raise LcmInputError(f"control: expected one of {list(CONTROLS)}, got {control!r}")
        num_subjects = _check_positive_int("num_subjects", num_subjects, 2)
        rng = np.random.default_rng([self.seed, 2, CONTROLS.index(control), int(seed)])
        dataset, h, g, scores = self._draw(control, num_subjects, {TARGET: self.target_loadings[control]}, rng,
                                           f"{control}-s{seed}")
        return SimulatedSet({control: dataset}, {control: h}, {control: g}, {control: scores})

    def pretraining_scores(self, shared: np.ndarray) -> np.ndarray:
        """``(n, beis)``: every pretraining BEI's latent score ``a_b . h`` for shared factor scores (n, K)."""
        shared = np.asarray(shared, dtype=float)
        if shared.ndim != 2 or shared.shape[1] != self.num_shared:
            raise LcmInputError(f"shared: expected factor scores of shape (n, {self.num_shared}), got {shared.shape}")
        return shared @ np.stack([loading for _, loading in self.loadings.values()]).T

    @property
    def pretraining_beis(self) -> list[str]:
        """Every pretraining BEI, dataset by dataset."""
        return list(self.loadings)


__all__ = ["CLASSES", "CONTROLS", "TARGET", "SimulatedSet", "TransferWorld"]
