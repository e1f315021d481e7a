"""Ready connectivity (matrices and triangle vectors), refusal of FC files by the time-series importer,
and read errors that name the file (issue 9, item 2)."""

import importlib.util
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from lcm_hf.data import (
    import_connectivity_folder,
    import_timeseries_folder,
    matrix_to_vector,
    read_connectivity_file,
    read_timeseries_file,
    vector_to_matrix,
)

RNG = np.random.default_rng(0)
ROOT = Path(__file__).resolve().parents[1]


def correlation(n=5, t=40):
    return np.corrcoef(RNG.standard_normal((t, n)).T)


def test_vector_round_trip_and_conventions():
    fc = correlation(6)
    without = matrix_to_vector(fc)
    assert without.shape == (15,)  # N(N-1)/2, upper triangle row-major
    np.testing.assert_allclose(without[:5], fc[0, 1:])  # row 0 first: numpy.triu_indices order
    np.testing.assert_allclose(vector_to_matrix(without), fc, atol=1e-6)
    with_diagonal = matrix_to_vector(fc, diagonal=True)
    assert with_diagonal.shape == (21,)  # N(N+1)/2
    np.testing.assert_allclose(vector_to_matrix(with_diagonal, diagonal=True), fc, atol=1e-6)
    z = vector_to_matrix(np.arctanh(without), fill=0.0)
    assert np.all(np.diag(z) == 0) and z[0, 1] == pytest.approx(np.arctanh(fc[0, 1]), abs=1e-6)
    with pytest.raises(ValueError, match=r"expected an upper-triangle vector of length N\(N-1\)/2, without the "
                                         r"diagonal, got length 14 in the vector"):
        vector_to_matrix(np.zeros(14))


def test_import_matrices_and_vectors_of_every_format(tmp_path):
    folder = tmp_path / "fc"
    folder.mkdir()
    fcs = {f"sub-0{i}": correlation() for i in range(1, 7)}
    np.save(folder / "sub-01_task-rest_fc.npy", fcs["sub-01"])
    labels = [f"roi{k}" for k in range(5)]
    pd.DataFrame(fcs["sub-02"], index=labels, columns=labels).to_csv(folder / "sub-02_task-rest_fc.csv")
    np.savetxt(folder / "sub-03_task-rest_fc.tsv", fcs["sub-03"], delimiter="\t")
    savemat(folder / "sub-04_task-rest_fc.mat", {"fc": fcs["sub-04"], "n": np.array([[5]])})
    np.save(folder / "sub-05_task-rest_fc.npy", matrix_to_vector(fcs["sub-05"]))  # 1-D, no diagonal
    np.savetxt(folder / "sub-06_task-rest_fc.csv", matrix_to_vector(fcs["sub-06"])[None], delimiter=",")  # one row
    table = pd.DataFrame({"participant_id": [f"sub-0{i}" for i in range(1, 7)], "dx": list("abcabc")})
    table.to_csv(folder / "participants.csv", index=False)
    ds = import_connectivity_folder(folder, folder / "participants.csv", unmatched="error")
    assert ds.column_names[:4] == ["subject_id", "scan_id", "dataset", "site"]
    assert ds.features["connectivity"].shape == (5, 5) and ds["scan_id"] == ["task-rest"] * 6
    got = np.asarray(ds.with_format("numpy")["connectivity"])
    for i, subject in enumerate(ds["subject_id"]):
        np.testing.assert_allclose(got[i], fcs[subject], atol=1e-5)
        assert np.all(np.diag(got[i]) == 1.0)

    zfolder = tmp_path / "z"
    zfolder.mkdir()
    z = np.arctanh(np.clip(fcs["sub-01"], -0.999, 0.999))
    np.fill_diagonal(z, np.inf)  # as arctanh(1) writes it: replaced by the convention, 0
    np.save(zfolder / "sub-01_fc.npy", z)
    np.save(zfolder / "sub-02_fc.npy", matrix_to_vector(np.where(np.isinf(z), 0.0, z), diagonal=True))
    zs = import_connectivity_folder(zfolder, values="fisher_z", vector_diagonal=True)
    zarr = np.asarray(zs.with_format("numpy")["connectivity"])
    assert np.all(zarr[:, np.arange(5), np.arange(5)] == 0)
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(zarr[0][off], z[off], atol=1e-5)
    np.testing.assert_allclose(zarr[1][off], z[off], atol=1e-5)


@pytest.mark.parametrize("name, content, message", [
    ("sub-01_fc.npy", np.zeros((4, 5)), r"expected a square \(N, N\) connectivity matrix or an upper-triangle "
                                        r"vector, got shape \(4, 5\) in .*sub-01_fc\.npy"),
    ("sub-02_fc.npy", np.triu(np.full((4, 4), 0.5)),
     r"expected a symmetric connectivity matrix, got max \|A - A.T\| = 0.5 in .*sub-02_fc\.npy"),
    ("sub-03_fc.npy", np.where(np.eye(4) > 0, 1.0, np.nan),
     r"expected finite connectivity values, got 12 NaN/inf off the diagonal \(first at row 0, column 1\) in "
     r".*sub-03_fc\.npy"),
    ("sub-04_fc.npy", np.full((4, 4), 2.0), r"expected correlations in \[-1, 1\] in .*sub-04_fc\.npy, got max "
                                            r"\|r\| = 2 \(Fisher z values\? pass values='fisher_z'"),
    ("sub-05_fc.npy", np.zeros(10), None),  # a vector of 5 ROIs: not the first file's 4
    ("sub-06_fc.npy", np.zeros(7), r"expected an upper-triangle vector of length N\(N-1\)/2, without the "
                                   r"diagonal, got length 7 in .*sub-06_fc\.npy"),
])
def test_connectivity_checks_name_the_file(tmp_path, name, content, message):
    folder = tmp_path / "fc"
    folder.mkdir()
    np.save(folder / "sub-00_fc.npy", correlation(4))
    np.save(folder / name, content)
    message = message or r"expected 4 ROIs \(as in the first file sub-00_fc\.npy\), got 5 in .*sub-05_fc\.npy"
    with pytest.raises(ValueError, match=message):
        import_connectivity_folder(folder)


def test_vector_length_hint_and_mat_vectors(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(6))  # fits N=4 without, N=3 with the diagonal
    assert read_connectivity_file(tmp_path / "v.npy").shape == (4, 4)
    assert read_connectivity_file(tmp_path / "v.npy", vector_diagonal=True).shape == (3, 3)
    np.save(tmp_path / "w.npy", np.zeros(5))
    with pytest.raises(ValueError, match=r"got length 5 .*w\.npy"):
        read_connectivity_file(tmp_path / "w.npy")
    savemat(tmp_path / "m.mat", {"vec": matrix_to_vector(correlation(4))[None]})
    assert read_connectivity_file(tmp_path / "m.mat").shape == (4, 4)
    with pytest.raises(ValueError, match=r"expected values 'correlation' or 'fisher_z', got 'r'"):
        read_connectivity_file(tmp_path / "m.mat", values="r")


def test_timeseries_importer_refuses_connectivity_files(tmp_path):
    """Today a folder of FC matrices is silently read as N-TR time series and correlated again."""
    folder = tmp_path / "fc"
    folder.mkdir()
    for i in range(3):
        np.savetxt(folder / f"sub-0{i}_fc.tsv", correlation(6), delimiter="\t")
    with pytest.raises(ValueError, match=r"sub-00_fc\.tsv looks like a connectivity matrix \(6 x 6, symmetric, unit "
                                         r"or zero diagonal\), not a \(T, N\) time series; use --format connectivity"):
        import_timeseries_folder(folder)


@pytest.mark.parametrize("name, payload", [
    ("bad.npy", b"not a numpy file at all"),
    ("bad.tsv", b"\xff\xfe\x00\x81binary\x00"),
    ("bad.mat", b"MATLAB garbage"),
    ("bad.csv", b"1,2\n3,oops\n"),
])
def test_timeseries_read_errors_name_the_file(tmp_path, name, payload):
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(ValueError, match=rf"{name.replace('.', r'[.]')}"):
        read_timeseries_file(tmp_path / name)


def test_timeseries_non_finite_values_name_the_file(tmp_path):
    data = RNG.standard_normal((10, 3))
    data[4, 2] = np.nan
    np.save(tmp_path / "sub-01.npy", data)
    with pytest.raises(ValueError, match=r"expected finite values in the time series .*sub-01\.npy, got 1 NaN/inf "
                                         r"\(first at row 4, column 2\)"):
        read_timeseries_file(tmp_path / "sub-01.npy")


def test_build_dataset_format_connectivity(tmp_path):
    folder = tmp_path / "fc"
    folder.mkdir()
    fcs = [correlation(4) for _ in range(4)]
    for i, fc in enumerate(fcs):
        np.save(folder / f"sub-{i:02d}_fc.npy", matrix_to_vector(fc))
    pd.DataFrame({"participant_id": [f"{i:02d}" for i in range(4)], "dx": ["a", "b"] * 2,
                  "split": ["train", "train", "train", "test"]}).to_csv(folder / "phenotypes.csv", index=False)
    spec = importlib.util.spec_from_file_location("build_dataset", ROOT / "processing" / "build_dataset.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    out = tmp_path / "built"
    assert build.main([str(folder), "--format", "connectivity", "--phenotypes", str(folder / "phenotypes.csv"),
                       "--subject-column", "participant_id", "--unmatched", "error", "--output", str(out)]) == 0
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train", "test"] and loaded["test"]["subject_id"] == ["03"]
    np.testing.assert_allclose(np.asarray(loaded["test"].with_format("numpy")[0]["connectivity"]), fcs[3], atol=1e-6)
    with pytest.raises(SystemExit):
        build.main([str(folder), "--format", "connectivity", "--window-size", "10", "--output", str(out)])
