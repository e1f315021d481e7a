"""Censored (scrubbed) volumes (issue 19, item 3): one policy whatever the spelling (an empty cell, `NaN`, BIDS `n/a`,
R's `NA`, a NaN row of an array file), in the one reader every path calls and in the one window rule.

Refused by default, naming the file, the rows and the flag; with `censored_volumes="drop"` (`--censored-volumes
drop`) the FC of a whole series is the float64 correlation of its valid rows, no window holds a censored volume, and
the published dataset counts them per scan. A row with only some ROIs missing is refused either way.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from own_data import ROOT, load_script

from lcm_hf.errors_lcm import LcmInputError
from lcm_hf.processing_lcm import LcmProcessor
from lcm_hf.timeseries_files_lcm import read_timeseries
from lcm_hf.windows_lcm import censored_rows, sliding_windows, window_spans

N, T = 5, 120
LABELS = [f"roi_{i}" for i in range(N)]
CENSORED = [0, 7, 8, 40, 41, 42, 95]  # TR 0 too: a first row of missing cells is data, never a header
REFUSED = (r"expected no censored volumes \(rows of empty, NaN or n/a cells\) in the time series .*{name}, got 7 of "
           r"120 \(TRs 0, 7, 8, 40, 41 \.\.\.; 0-based\): pass --censored-volumes drop \(censored_volumes='drop' in "
           r"Python\) to compute FC on the valid volumes only")


def series(length=T, seed=0, censored=CENSORED):
    """(T, N) float64 with NaN rows at `censored`."""
    x = np.random.default_rng(seed).standard_normal((length, N)) + 10.0
    x[list(censored)] = np.nan
    return x


def write(path, x, cell, header=True):
    """`x` as a text table (values as `repr`), its NaN cells spelled `cell`; .npy as an array."""
    path = str(path)
    if path.endswith(".npy"):
        np.save(path, x)
        return path
    sep = {".tsv": "\t", ".csv": ","}.get(os.path.splitext(path)[1].lower(), " ")
    lines = [sep.join(LABELS)] if header else []
    lines += [sep.join(cell if np.isnan(v) else repr(float(v)) for v in row) for row in x]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


SPELLINGS = [  # (file name, cell, header)
    ("empty.tsv", "", True), ("empty_noheader.tsv", "", False), ("empty.csv", "", True), ("nan.tsv", "NaN", True),
    ("nan_lower.1D", "nan", False), ("bids.tsv", "n/a", True), ("bids_noheader.tsv", "n/a", False),
    ("r_na.csv", "NA", True), ("array.npy", None, False),
]


@pytest.mark.parametrize("name,cell,header", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_every_spelling_is_refused_naming_file_rows_and_flag(tmp_path, name, cell, header):
    path = write(tmp_path / name, series(), cell, header)
    with pytest.raises(LcmInputError, match=REFUSED.format(name=re.escape(name))) as error:
        read_timeseries(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name,cell,header", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_every_spelling_drops_the_same_rows(tmp_path, name, cell, header):
    x = series()
    read = read_timeseries(write(tmp_path / name, x, cell, header), censored_volumes="drop")
    assert np.flatnonzero(censored_rows(read.timeseries)).tolist() == CENSORED  # in their place in time
    valid = np.setdiff1d(np.arange(T), CENSORED)
    np.testing.assert_allclose(read.timeseries[valid], x[valid], rtol=1e-6)
    assert read.roi_labels == (LABELS if header and cell is not None else None)


def test_a_tsv_pandas_wrote_with_nan_rows(tmp_path):
    """pandas writes NaN as empty cells: a censored row is `\\t\\t\\t\\t` (it was dropped and the series joined)."""
    import pandas as pd

    x = series()
    pd.DataFrame(x, columns=LABELS).to_csv(tmp_path / "sub-01.tsv", sep="\t", index=False)
    assert "\t\t\t\t\n" in open(tmp_path / "sub-01.tsv").read()
    with pytest.raises(LcmInputError, match=REFUSED.format(name="sub-01.tsv")):
        read_timeseries(tmp_path / "sub-01.tsv")
    read = read_timeseries(tmp_path / "sub-01.tsv", censored_volumes="drop")
    assert read.timeseries.shape == (T, N) and np.flatnonzero(censored_rows(read.timeseries)).tolist() == CENSORED


@pytest.mark.parametrize("policy", ["refuse", "drop"])
def test_partly_missing_rows_are_refused_under_either_policy(tmp_path, policy):
    x = series(censored=[])
    x[5, [1, 3]] = np.nan
    x[9, 0] = np.nan
    path = write(tmp_path / "partial.tsv", x, "n/a")
    with pytest.raises(LcmInputError, match=r"expected finite values in the time series .*partial\.tsv, got 3 NaN/inf "
                                            r"\(first at row 5, column 1\); 2 rows with only some ROIs missing "
                                            r"\(TRs 5, 9\): a censored volume is a whole row of missing cells"):
        read_timeseries(path, censored_volumes=policy)


def test_no_valid_volume_and_an_unknown_policy_are_refused(tmp_path):
    path = write(tmp_path / "all.tsv", series(length=6, censored=range(6)), "")
    with pytest.raises(LcmInputError, match=r"expected valid volumes in the time series .*all\.tsv, got all 6 censored"):
        read_timeseries(path, censored_volumes="drop")
    with pytest.raises(LcmInputError, match=r"expected censored_volumes to be one of \['refuse', 'drop'\], got 'keep'"):
        read_timeseries(write(tmp_path / "ok.tsv", series(), "n/a"), censored_volumes="keep")


def test_a_delimiter_ending_every_line_is_no_column(tmp_path):
    x = series(length=10, censored=[])
    for name, header in (("with_header.tsv", "\t".join(LABELS) + "\t"), ("plain_header.tsv", "\t".join(LABELS)),
                         ("no_header.tsv", None)):
        lines = ([header] if header else []) + ["\t".join(repr(float(v)) for v in row) + "\t" for row in x]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        read = read_timeseries(tmp_path / name)
        np.testing.assert_allclose(read.timeseries, x, rtol=1e-6)
        assert read.roi_labels == (LABELS if header else None)


# ------------------------------------------------------------------------------------------------- FC and windows
def test_whole_series_fc_is_the_correlation_of_the_valid_rows():
    x = series()
    kept = x[~np.isnan(x).all(axis=1)]
    fc = LcmProcessor(num_rois=N)(timeseries=[x.astype(np.float32)])["connectivity"][0].numpy()
    np.testing.assert_allclose(fc, np.corrcoef(kept.T), atol=1e-5)
    np.testing.assert_allclose(fc, np.corrcoef(np.delete(x, CENSORED, axis=0).T), atol=1e-5)


def test_window_spans_never_hold_a_censored_volume():
    mask = np.zeros(T, dtype=bool)
    mask[CENSORED] = True
    spans = window_spans(T, 20, 10, censored=mask)
    every = window_spans(T, 20, 10)
    assert spans == [(s, n) for s, n in every if not mask[s:s + n].any()]  # the same grid, less those windows
    assert spans == [(10, 20), (20, 20), (50, 20), (60, 20), (70, 20), (100, 20)]
    for seed in range(20):  # random crops: the shifted grid, still no censored volume
        for start, length in window_spans(T, 20, 7, censored=mask, rng=np.random.default_rng(seed)):
            assert length == 20 and not mask[start:start + length].any()
    assert window_spans(15, 20, short_series="pad", censored=mask[:15]) == []  # a padded short window holds TR 0, 7
    assert window_spans(15, 20, short_series="pad") == [(0, 15)]
    with pytest.raises(LcmInputError, match=r"expected a censored-volume mask of 120 TRs, got shape \(10,\)"):
        window_spans(T, 20, censored=mask[:10])


def test_windows_of_a_censored_series_are_consecutive_valid_trs_and_their_fc_is_numpy():
    x = series()
    processor = LcmProcessor(num_rois=N, window_size=20, window_stride=10)
    assert processor.window_spans(x) == [(10, 20), (20, 20), (50, 20), (60, 20), (70, 20), (100, 20)]
    assert processor.window_spans(x, rng=np.random.default_rng(0)) == processor.window_spans(x)  # no slack here
    windows, lengths = sliding_windows(torch.as_tensor(x), 20, 10)
    assert windows.shape == (6, 20, N) and not torch.isnan(windows).any() and lengths.tolist() == [20] * 6
    batch = processor(timeseries=[x.astype(np.float32)])
    expected = np.stack([np.corrcoef(x[s:s + 20].T) for s in (10, 20, 50, 60, 70, 100)])
    np.testing.assert_allclose(batch["connectivity"].numpy(), expected, atol=1e-5)
    assert batch["subject_index"].tolist() == [0] * 6


def test_prediction_refuses_a_series_whose_every_window_holds_a_censored_volume():
    x = series(length=40, censored=[5, 25])
    processor = LcmProcessor(num_rois=N, window_size=20)
    with pytest.raises(LcmInputError, match=r"subject 's1': expected at least one window of 20 consecutive valid TRs, "
                                            r"got 40 TRs of which 2 censored, one in every window"):
        processor(timeseries=[x.astype(np.float32)], subject_ids=["s1"])
    assert processor.split_windows(x.astype(np.float32), training=True)[0].shape[0] == 0


def test_expand_windows_and_add_connectivity_leave_the_censored_volumes_out(tmp_path):
    from lcm_hf.data import add_connectivity, expand_windows, import_timeseries_folder

    for s, censored in ((1, []), (2, CENSORED), (3, [60])):
        write(tmp_path / f"sub-0{s}_bold.tsv", series(seed=s, censored=censored), "n/a")
    ds = import_timeseries_folder(tmp_path, censored_volumes="drop")
    assert ds["subject_id"] == ["01", "02", "03"] and ds["censored_volumes"] == [0, 7, 1]
    whole = add_connectivity(ds, "correlation")
    for s, censored in ((1, []), (2, CENSORED), (3, [60])):
        x = series(seed=s, censored=censored)
        np.testing.assert_allclose(np.asarray(whole[s - 1]["connectivity"]), np.corrcoef(np.delete(x, censored, 0).T),
                                   atol=1e-5)
    with pytest.warns(RuntimeWarning, match=r"7 windows of 30 TRs in 2 of 3 series hold censored volumes and were "
                                            r"dropped \(no window straddles a gap\): 02/sub-02_bold \(5\), "
                                            r"03/sub-03_bold \(2\)"):
        windows = expand_windows(ds, 30, 15)
    assert [row["window_length"] for row in windows] == [30] * len(windows)
    assert not np.isnan(np.stack([np.asarray(w) for w in windows["timeseries"]])).any()
    assert windows["censored_volumes"] == [0] * 7 + [7] * 2 + [1] * 5  # the scan's count, on each of its windows


# ------------------------------------------------------------------------------------------------- build_dataset
def test_build_dataset_publishes_the_count_and_prints_it(tmp_path, capsys):
    from lcm_hf.data import load_published

    folder = tmp_path / "scans"
    folder.mkdir()
    for s, (cell, censored) in enumerate((("", []), ("NaN", CENSORED), ("n/a", [3, 4]), ("NA", [])), start=1):
        write(folder / f"sub-0{s}_task-rest_bold.{'csv' if cell in ('', 'NA') else 'tsv'}", series(seed=s,
              censored=censored), cell)
    (folder / "participants.tsv").write_text("participant_id\tsex\n" + "".join(f"sub-0{s}\t{'FM'[s % 2]}\n"
                                                                            for s in range(1, 5)))
    build = load_script("processing/build_dataset.py").main
    argv = [str(folder), "--phenotypes", str(folder / "participants.tsv"), "--connectivity"]
    with pytest.raises(LcmInputError, match=REFUSED.format(name="sub-02_task-rest_bold.tsv")):
        build([*argv, "--output", str(tmp_path / "refused")])
    assert not os.path.exists(tmp_path / "refused")
    assert build([*argv, "--censored-volumes", "drop", "--output", str(tmp_path / "out")]) == 0
    assert ("censored volumes (--censored-volumes drop): 9 of 480 TRs in 2 of 4 scans: sub-02/task-rest (7), "
            "sub-03/task-rest (2); FC uses the valid volumes") in capsys.readouterr().err
    train = load_published(tmp_path / "out")["train"]
    assert train["subject_id"] == ["sub-01", "sub-02", "sub-03", "sub-04"] and train["censored_volumes"] == [0, 7, 2, 0]
    assert train.features["censored_volumes"].dtype == "int32"
    for s, (row, censored) in enumerate(zip(train, ([], CENSORED, [3, 4], [])), start=1):
        x = series(seed=s, censored=censored)
        np.testing.assert_allclose(np.asarray(row["connectivity"]), np.corrcoef(np.delete(x, censored, 0).T), atol=1e-5)


# ------------------------------------------------------------------------------------------------- prediction
@pytest.fixture
def model_folder(tmp_path):
    from lcm_hf import LcmForBeiPrediction
    from lcm_testing import TINY_BEIS, make_tiny_config

    torch.manual_seed(0)
    config = make_tiny_config()
    model = LcmForBeiPrediction(config).eval()
    n = config.num_rois
    LcmProcessor(vocabulary=TINY_BEIS, num_rois=n, window_size=30, window_stride=20).save_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "m")
    return tmp_path / "m", model, n


def test_prediction_says_the_same_words_and_drops_the_same_windows(model_folder, tmp_path, capsys):
    from transformers import pipeline

    from lcm_hf.cli import main
    from lcm_hf.embeddings import read_embeddings

    folder, model, n = model_folder
    x = np.random.default_rng(3).standard_normal((100, n)).astype(np.float32)
    x[[25, 26]] = np.nan  # in the windows starting at 0 and 20: kept windows start at 40 and 60
    path = tmp_path / "sub-01_bold.tsv"
    np.savetxt(path, x, delimiter="\t")
    text = path.read_text().replace("nan", "n/a")
    path.write_text(text)
    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    with pytest.raises(LcmInputError) as from_pipeline:
        predict(str(path))
    assert re.search(r"expected no censored volumes .* got 2 of 100 \(TRs 25, 26; 0-based\): pass --censored-volumes "
                     r"drop", str(from_pipeline.value))
    for command in (["predict"], ["embed", "--output", str(tmp_path / "e.parquet")]):
        with pytest.raises(SystemExit) as from_cli:
            main([*command, "--model", str(folder), "--timeseries", str(path), "--device", "cpu"])
        assert str(from_cli.value) == f"error: {from_pipeline.value}"
    assert main(["predict", "--model", str(folder), "--timeseries", str(path), "--json", "--device", "cpu",
                 "--censored-volumes", "drop"]) == 0
    line = json.loads(capsys.readouterr().out)
    fc = torch.tensor(np.stack([np.corrcoef(x[s:s + 30].T) for s in (40, 60)]), dtype=torch.float32)
    with torch.no_grad():
        logits = model(connectivity=fc).logits
    np.testing.assert_allclose(list(line["predictions"]["sex"]["scores"].values()),
                               logits[:, :2].softmax(-1).mean(0).numpy(), atol=1e-5)
    by_pipeline = predict(str(path), censored_volumes="drop", return_windows=True)
    assert len(by_pipeline["sex"]["windows"]) == 2
    assert main(["embed", "--model", str(folder), "--timeseries", str(path), "--output", str(tmp_path / "e.parquet"),
                 "--device", "cpu", "--censored-volumes", "drop"]) == 0
    assert read_embeddings(tmp_path / "e.parquet")["num_windows"].tolist() == [2]


# ------------------------------------------------------------------------------------------------- README
def test_readme_censored_volumes_block_runs_as_written(tmp_path):
    from test_readme_own_data import readme_block

    from lcm_hf.data import load_published

    folder = tmp_path / "my_scrubbed"
    folder.mkdir()
    counts = {1: [], 2: [10, 11, 12], 3: [0, 50], 4: []}
    for s, censored in counts.items():
        write(folder / f"sub-0{s}_task-rest_bold.tsv", series(seed=s, censored=censored), "n/a")
    (folder / "participants.tsv").write_text("participant_id\tsex\n" + "".join(f"sub-0{s}\t{'FM'[s % 2]}\n"
                                                                            for s in counts))
    os.symlink(os.path.join(ROOT, "processing"), tmp_path / "processing")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    block = readme_block("### Censored (scrubbed) volumes")
    assert "--censored-volumes drop" in block
    process = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "censored volumes (--censored-volumes drop): 5 of 480 TRs in 2 of 4 scans" in process.stderr
    assert "windows of 40 TRs in 2 of 4 series hold censored volumes and were dropped" in process.stderr
    train = load_published(tmp_path / "my_scrubbed_dataset")["train"]
    # windows of 40 TRs at 0, 40, 80: sub-02 loses its first, sub-03 its first and second
    assert train["censored_volumes"] == [0, 0, 0, 3, 3, 2, 0, 0, 0]
    assert process.stdout.strip().endswith("[0, 0, 0, 3, 3, 2, 0, 0, 0]")
    expected = []
    for s, censored in counts.items():
        x = series(seed=s, censored=censored)
        expected += [x[start:start + 40] for start in (0, 40, 80) if not set(censored) & set(range(start, start + 40))]
    np.testing.assert_allclose(np.stack([np.asarray(w, dtype=np.float64) for w in train["timeseries"]]),
                               np.stack(expected), rtol=1e-6)


def test_streamed_training_windows_never_hold_a_censored_volume(tmp_path):
    """Training on a stored series with censored volumes (built without --window-size): the windows the stream cuts
    on the fly, random crops included, are the window rule's."""
    import itertools

    from lcm_hf.data import import_timeseries_folder
    from lcm_hf.training.streaming import WindowStream

    for s, censored in ((1, CENSORED), (2, [])):
        write(tmp_path / f"sub-0{s}_bold.tsv", series(seed=s, censored=censored), "")
    scans = import_timeseries_folder(tmp_path, censored_volumes="drop").to_iterable_dataset()
    stream = WindowStream(scans, 20, 10, seed=0)
    rows = list(itertools.islice(iter(stream), 60))
    assert all(not np.isnan(np.asarray(row["timeseries"])).any() and row["window_length"] == 20 for row in rows)
    per_pass = [row["subject_id"] for row in rows[:17]]
    assert per_pass.count("01") == 6 and per_pass.count("02") == 11  # no slack at stride 10: the grid of the rule
