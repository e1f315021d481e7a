"""Named coordinate atlases that nilearn ships with the package (nothing is downloaded).

- ``"power_2011"``: Power et al. 2011, 264 ROIs (5 mm spheres);
- ``"dosenbach_2010"``: Dosenbach et al. 2010, 160 ROIs (5 mm spheres);
- ``"seitzman_2018"``: Seitzman et al. 2019, 300 ROIs (4 mm spheres; the published set mixes 4 and 5 mm).

ROIs are in the published order (nilearn's ``ordered_regions=False``). :func:`atlas_coordinates` gives their MNI
coordinates and labels (what an `LcmProcessor` records as ``atlas`` / ``roi_labels``, and what glass-brain
attention figures need); :func:`sphere_masker` parcellates 4-D NIfTI scans with nilearn's ``NiftiSpheresMasker``
(``lcm_hf.data.nifti_to_timeseries(imgs, "power_2011")`` does it for you).
"""

from __future__ import annotations

import numpy as np

from ..errors_lcm import LcmInputError

SPHERE_ATLASES = {
    "power_2011": {"num_rois": 264, "radius": 5.0},
    "dosenbach_2010": {"num_rois": 160, "radius": 5.0},
    "seitzman_2018": {"num_rois": 300, "radius": 4.0},
}


def is_sphere_atlas(name) -> bool:
    """True for the name of a coordinate atlas of :data:`SPHERE_ATLASES`."""
    return isinstance(name, str) and name in SPHERE_ATLASES


def _check(name: str) -> None:
    if not is_sphere_atlas(name):
        raise LcmInputError(f"expected a named coordinate atlas among {sorted(SPHERE_ATLASES)}, got {name!r}")


def atlas_coordinates(name: str) -> tuple[np.ndarray, list[str]]:
    """MNI coordinates and labels of a named coordinate atlas, offline (files bundled with nilearn).

    Parameters
    ----------
    name : {"power_2011", "dosenbach_2010", "seitzman_2018"}

    Returns
    -------
    coordinates : numpy.ndarray (N, 3) float64, MNI x, y, z in mm, in the atlas's ROI order
    labels : list of N str (unique): ``"power_1"``..., Dosenbach's region names (``"vmPFC 1"``...),
        ``"seitzman_1"``...
    """
    _check(name)
    from nilearn import datasets

    if name == "power_2011":
        rois = datasets.fetch_coords_power_2011().rois
        labels = [f"power_{int(r)}" for r in rois["roi"]]
    elif name == "dosenbach_2010":
        bunch = datasets.fetch_coords_dosenbach_2010(ordered_regions=False)
        rois, labels = bunch.rois, [str(label) for label in bunch.labels]
    else:
        rois = datasets.fetch_coords_seitzman_2018(ordered_regions=False).rois
        labels = [f"seitzman_{i + 1}" for i in range(len(rois))]
    coordinates = rois[["x", "y", "z"]].to_numpy(dtype=np.float64)
    if coordinates.shape != (SPHERE_ATLASES[name]["num_rois"], 3) or len(set(labels)) != len(labels):
        raise LcmInputError(f"expected {SPHERE_ATLASES[name]['num_rois']} unique ROIs in nilearn's {name!r}, got "
                            f"{coordinates.shape[0]} ({len(set(labels))} unique labels)")
    return coordinates, labels


def sphere_masker(name: str, radius: float | None = None, **masker_kwargs):
    """A ``nilearn.maskers.NiftiSpheresMasker`` over a named coordinate atlas.

    Parameters
    ----------
    name : {"power_2011", "dosenbach_2010", "seitzman_2018"}
    radius : float, optional
        Sphere radius in mm (default: the atlas's, see :data:`SPHERE_ATLASES`).
    **masker_kwargs
        Other ``NiftiSpheresMasker`` arguments (``standardize``, ``detrend``, ``t_r``...); overlapping spheres
        are allowed (``allow_overlap=True``), as neighbouring ROIs of these sets touch.
    """
    _check(name)
    from nilearn.maskers import NiftiSpheresMasker

    coordinates, _ = atlas_coordinates(name)
    masker_kwargs.setdefault("allow_overlap", True)
    return NiftiSpheresMasker(seeds=[tuple(c) for c in coordinates],
                              radius=SPHERE_ATLASES[name]["radius"] if radius is None else radius, **masker_kwargs)


__all__ = ["SPHERE_ATLASES", "atlas_coordinates", "is_sphere_atlas", "sphere_masker"]
