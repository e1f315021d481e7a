"""NIfTI scans -> ROI time series through nilearn's ``NiftiLabelsMasker`` (nilearn imported lazily).

Also offline helpers for tests and docs: a KMeans labels atlas over nilearn's bundled MNI brain
mask (:func:`make_kmeans_atlas`) and synthetic 4-D images with known region signals
(:func:`make_synthetic_bold`). Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors_lcm import LcmInputError
from .atlases import is_sphere_atlas, sphere_masker


def nifti_to_timeseries(
    imgs,
    labels_img,
    *,
    labels: Sequence[str] | None = None,
    confounds=None,
    standardize: bool | str | None = None,
    detrend: bool = False,
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    mask_img=None,
    **masker_kwargs,
):
    """Extract ROI time series from 4-D NIfTI images with a labels atlas.

    Parameters
    ----------
    imgs : Niimg-like or sequence of Niimg-like
        4-D scans (paths or ``nibabel`` images).
    labels_img : Niimg-like or str
        3-D integer atlas (0 = background), resampled to the scans by nilearn; or the name of a coordinate
        atlas nilearn ships (``"power_2011"``, ``"dosenbach_2010"``, ``"seitzman_2018"``: spheres through
        ``NiftiSpheresMasker``, see :mod:`lcm_hf.data.atlases`).
    labels : sequence of str, optional
        ROI names (background first, as nilearn expects).
    confounds : array-like, path, or sequence of them (one per image), optional
        Regressed out by nilearn.
    standardize, detrend, low_pass, high_pass, t_r
        Signal cleaning, as in ``nilearn.maskers.NiftiLabelsMasker`` (band-pass needs ``t_r``;
        ``standardize=None`` keeps the signal scale, ``"zscore_sample"`` z-scores).
    mask_img : Niimg-like, optional
    **masker_kwargs
        Any other ``NiftiLabelsMasker`` argument.

    Returns
    -------
    numpy.ndarray (T, N) float32 for one image, or a list of them for a sequence.
    """
    from nilearn.maskers import NiftiLabelsMasker

    if (low_pass is not None or high_pass is not None) and t_r is None:
        raise LcmInputError(f"expected t_r for band-pass filtering, got t_r=None (low_pass={low_pass}, high_pass={high_pass})")
    single = not isinstance(imgs, (list, tuple))
    imgs = [imgs] if single else list(imgs)
    if confounds is None or single:
        confounds_list = [confounds] * len(imgs)
    else:
        confounds_list = list(confounds)
        if len(confounds_list) != len(imgs):
            raise LcmInputError(f"expected one confounds entry per image ({len(imgs)}), got {len(confounds_list)}")
    cleaning = dict(standardize=standardize, detrend=detrend, low_pass=low_pass, high_pass=high_pass, t_r=t_r)
    if is_sphere_atlas(labels_img):  # a named coordinate atlas (power_2011...): spheres around its ROIs
        masker = sphere_masker(labels_img, mask_img=mask_img, **cleaning, **masker_kwargs)
    else:
        masker = NiftiLabelsMasker(labels_img=labels_img, labels=labels, mask_img=mask_img, **cleaning, **masker_kwargs)
    masker.fit()
    out = [np.asarray(masker.transform(img, confounds=conf), dtype=np.float32) for img, conf in zip(imgs, confounds_list)]
    return out[0] if single else out


def make_kmeans_atlas(n_regions: int = 8, resolution: int = 8, seed: int = 0):
    """An offline labels atlas: KMeans over voxel coordinates of nilearn's bundled MNI brain mask.

    Parameters
    ----------
    n_regions : int
        Number of labels (1..n_regions; 0 is background).
    resolution : int
        Voxel size in mm of the mask (8 gives a 26 x 30 x 25 grid).
    seed : int

    Returns
    -------
    nibabel.Nifti1Image (3-D, int32 labels)
    """
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask
    from sklearn.cluster import KMeans

    mask = load_mni152_brain_mask(resolution=resolution)
    inside = np.asarray(mask.get_fdata()) > 0
    coords = np.argwhere(inside)
    km = KMeans(n_clusters=n_regions, n_init=3, random_state=seed).fit(coords)
    labels = np.zeros(inside.shape, dtype=np.int32)
    labels[inside] = km.labels_ + 1
    return nib.Nifti1Image(labels, mask.affine)


def make_synthetic_bold(atlas_img, n_timepoints: int = 60, noise: float = 0.1, seed: int = 0):
    """A 4-D image whose voxels carry their region's signal plus noise.

    Returns
    -------
    img : nibabel.Nifti1Image, 4-D (X, Y, Z, T) float32
    signals : numpy.ndarray (T, n_regions), the region signals (label order 1..n)
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    labels = np.asarray(atlas_img.get_fdata()).astype(int)
    n_regions = int(labels.max())
    signals = rng.standard_normal((n_timepoints, n_regions)).astype(np.float32)
    data = np.zeros(labels.shape + (n_timepoints,), dtype=np.float32)
    inside = labels > 0
    data[inside] = signals[:, labels[inside] - 1].T
    data[inside] += noise * rng.standard_normal((int(inside.sum()), n_timepoints)).astype(np.float32)
    return nib.Nifti1Image(data, atlas_img.affine), signals


__all__ = ["make_kmeans_atlas", "make_synthetic_bold", "nifti_to_timeseries"]
