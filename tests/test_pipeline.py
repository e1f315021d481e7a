"""The "phenotype-prediction" pipeline and `lcm-hf predict`: windows as in training, one prediction per subject,
the preprocessing contract enforced (ROI labels, TR, short series, BEIs)."""

import json
import warnings

import numpy as np
import pytest
import torch
from transformers import pipeline

from lcm_hf import LcmForBeiPrediction, LcmProcessor, PhenotypePredictionPipeline
from lcm_hf.cli import main
from lcm_hf.pipeline_lcm import read_timeseries
from lcm_testing import TINY_BEIS, make_tiny_config

N, WINDOW, STRIDE = 16, 30, 20
LABELS = [f"r{i}" for i in range(N)]


@pytest.fixture
def model():
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config())
    model.train()
    with torch.no_grad():  # move the BatchNorm running statistics off their initial values
        model(torch.rand(8, N, N))
    return model.eval()


@pytest.fixture
def folder(model, tmp_path):
    processor = LcmProcessor(vocabulary=TINY_BEIS, num_rois=N, atlas="toy", roi_labels=LABELS, repetition_time=2.0,
                             window_size=WINDOW, window_stride=STRIDE)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def write_tsv(path, series, labels=LABELS):
    np.savetxt(path, series, delimiter="\t", header="\t".join(labels), comments="")
    return path


def series(length, seed=0):
    return np.random.default_rng(seed).standard_normal((length, N)).astype(np.float32)


def test_predict_equals_mean_of_window_predictions_by_hand(model, folder, tmp_path, capsys):
    long = series(100)
    path = write_tsv(tmp_path / "sub-01_timeseries.tsv", long)
    assert main(["predict", "--model", str(folder), "--timeseries", str(path), "--json", "--device", "cpu"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["file"] == str(path)
    # by hand: windows of 30 TRs every 20 (starts 0, 20, 40, 60; the one past the end is dropped), Pearson FC
    windows = [long[start : start + WINDOW] for start in range(0, len(long) - WINDOW + 1, STRIDE)]
    assert len(windows) == 4
    fc = torch.tensor(np.stack([np.corrcoef(w.T) for w in windows]), dtype=torch.float32)
    with torch.no_grad():
        logits = model(connectivity=fc).logits
    sex, diagnosis = logits[:, :2].softmax(-1).mean(0), logits[:, 2:5].softmax(-1).mean(0)
    prediction = line["predictions"]
    np.testing.assert_allclose(list(prediction["sex"]["scores"].values()), sex.numpy(), atol=1e-5)
    np.testing.assert_allclose(list(prediction["diagnosis"]["scores"].values()), diagnosis.numpy(), atol=1e-5)
    assert prediction["diagnosis"]["label"] == ["control", "mci", "ad"][int(diagnosis.argmax())]
    assert prediction["diagnosis"]["score"] == pytest.approx(float(diagnosis.max()), abs=1e-5)
    assert prediction["age"]["value"] == pytest.approx(float(logits[:, 5].mean()), abs=1e-5)


def test_pipeline_inputs_and_outputs(folder, tmp_path):
    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    assert isinstance(predict, PhenotypePredictionPipeline)
    long = series(100)
    path = write_tsv(tmp_path / "a.tsv", long)
    np.save(tmp_path / "a.npy", long)
    from_file = predict(str(path))
    assert set(from_file) == {"sex", "diagnosis", "age"}
    assert set(from_file["sex"]) == {"label", "score", "scores"} and set(from_file["age"]) == {"value"}
    for same in (predict(long), predict(str(tmp_path / "a.npy")), predict(long.tolist()),
                 predict({"timeseries": long, "roi_labels": LABELS, "subject_id": "s1"})):
        assert same["sex"]["scores"] == pytest.approx(from_file["sex"]["scores"], abs=1e-6)
    several = predict([long, str(path), {"connectivity": np.corrcoef(long[:30].T)}])
    assert len(several) == 3 and several[1] == from_file
    first_window = predict(long[:30])
    assert several[2]["age"]["value"] == pytest.approx(first_window["age"]["value"], abs=1e-5)
    windows = predict(long, return_windows=True)
    assert len(windows["sex"]["windows"]) == 4 and len(windows["age"]["windows"]) == 4
    assert windows["age"]["value"] == pytest.approx(np.mean([w["value"] for w in windows["age"]["windows"]]))
    with pytest.raises(ValueError, match=r"expected one subject's time series \(T, N\), got shape \(2, 100, 16\)"):
        predict(np.stack([long, long]))
    with pytest.raises(ValueError, match=r"expected input keys among .*, got \['fc'\]"):
        predict({"fc": long})


def test_reordered_roi_labels_are_refused(folder, tmp_path):
    swapped = LABELS[1::-1] + LABELS[2:]  # r1, r0, r2, ...
    path = write_tsv(tmp_path / "swapped.tsv", series(60), swapped)
    assert read_timeseries(path)[1] == swapped
    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    message = (r"ROI labels differ from the processor's contract \(atlas 'toy'\) at 2 positions \(the same labels "
               r"in another order\); first: position 0: expected 'r0', got 'r1', position 1: expected 'r1', got 'r0'")
    with pytest.raises(ValueError, match=message):
        predict(str(path))
    with pytest.raises(SystemExit, match="error: .*swapped.tsv: ROI labels differ"):
        main(["predict", "--model", str(folder), "--timeseries", str(path), "--device", "cpu"])
    other = write_tsv(tmp_path / "other.tsv", series(60), [f"x{i}" for i in range(N)])
    with pytest.raises(ValueError, match=r"at 16 positions \(other labels\); first: position 0: expected 'r0'"):
        predict(str(other))


def test_other_repetition_time_warns_and_short_series_follow_the_contract(model, folder, tmp_path):
    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    path = write_tsv(tmp_path / "sub-02_bold.tsv", series(60))
    (tmp_path / "sub-02_bold.json").write_text(json.dumps({"RepetitionTime": 0.8}))
    with pytest.warns(UserWarning, match=r"repetition time 0.8 s differs from the training data's 2 s"):
        predict(str(path))
    short = series(20)
    # short_series="drop" (the folder's contract): training dropped such series, prediction refuses them (issue 17)
    message = r"expected at least one window of 30 TRs, got 20 TRs: the processor's contract \(short_series='drop'\)"
    with pytest.raises(ValueError, match=message):
        predict(short, return_windows=True)
    short_file = write_tsv(tmp_path / "sub-03_bold.tsv", short)
    with pytest.raises(SystemExit, match=f"error: subject '{short_file}': " + message):
        main(["predict", "--model", str(folder), "--timeseries", str(short_file), "--device", "cpu"])
    # short_series="pad": one window of all its TRs, as in training, without a warning
    LcmProcessor(vocabulary=TINY_BEIS, num_rois=N, window_size=WINDOW, short_series="pad").save_pretrained(folder)
    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = predict(short, return_windows=True)
    assert len(result["sex"]["windows"]) == 1
    with torch.no_grad():
        logits = model(connectivity=torch.tensor(np.corrcoef(short.T)[None], dtype=torch.float32)).logits
    np.testing.assert_allclose(list(result["sex"]["scores"].values()), logits[0, :2].softmax(-1), atol=1e-5)


def test_mismatched_vocabulary_is_refused(model, tmp_path):
    reordered = [TINY_BEIS[1], TINY_BEIS[0], TINY_BEIS[2]]
    processor = LcmProcessor(vocabulary=reordered, num_rois=N)
    message = (r"the BEI order differs: the model config has \['sex', 'diagnosis', 'age'\], the processor's "
               r"vocabulary \['diagnosis', 'sex', 'age'\]")
    with pytest.raises(ValueError, match=message):
        PhenotypePredictionPipeline(model=model, feature_extractor=processor, device="cpu")
    classes = [{**TINY_BEIS[0], "classes": ["M", "F"]}, *TINY_BEIS[1:]]
    with pytest.raises(ValueError, match=r"BEI 'sex' classes differs: the model config has \['F', 'M'\]"):
        LcmProcessor(vocabulary=classes, num_rois=N).check_model(model.config)
    # a folder whose bei_vocabulary.json disagrees with config.json
    model.save_pretrained(tmp_path / "m")
    LcmProcessor(vocabulary=reordered, num_rois=N).save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match=r"bei_vocabulary.json disagrees with the model's config.json: the BEI "
                                         r"order differs: config.json has \['sex', 'diagnosis', 'age'\]"):
        LcmProcessor.from_pretrained(tmp_path / "m")
    # a processor saved without BEIs takes the config's
    model.save_pretrained(tmp_path / "n")
    LcmProcessor(num_rois=N).save_pretrained(tmp_path / "n")
    assert LcmProcessor.from_pretrained(tmp_path / "n").vocabulary.to_config() == model.config.beis


def test_predict_folder_without_processor_uses_the_config(model, tmp_path, capsys):
    """Issue 17: no longer silently: a warning names what goes unchecked and how to save a processor."""
    model.save_pretrained(tmp_path / "bare")
    np.save(tmp_path / "s.npy", series(50))
    unchecked = (r"no processor \(preprocessor_config.json\) with this model: .* Unchecked: the training windows "
                 r"\(none are cut\), the ROI labels and their order, the repetition time, .* "
                 r"processor.save_pretrained\(folder\)")
    with pytest.warns(UserWarning, match=unchecked):
        assert main(["predict", "--model", str(tmp_path / "bare"), "--timeseries", str(tmp_path / "s.npy"), "--json",
                     "--device", "cpu"]) == 0
    prediction = json.loads(capsys.readouterr().out)["predictions"]
    fc = torch.tensor(np.corrcoef(series(50).T), dtype=torch.float32)[None]
    with torch.no_grad():
        assert prediction["age"]["value"] == pytest.approx(float(model(fc).logits[0, 5]), abs=1e-5)
    with pytest.warns(UserWarning, match=unchecked):  # transformers.pipeline on the folder: the same warning
        predict = pipeline("phenotype-prediction", model=str(tmp_path / "bare"), device="cpu")
    assert predict(str(tmp_path / "s.npy")) == prediction
    # a processor that is there but fails to load is an error, not a silent fallback to no contract
    LcmProcessor(vocabulary=[TINY_BEIS[1], TINY_BEIS[0], TINY_BEIS[2]], num_rois=N).save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match=r"the BEI order differs: .*config.* has \['sex', 'diagnosis', 'age'\]"):
        pipeline("phenotype-prediction", model=str(tmp_path / "bare"), device="cpu")


def test_read_timeseries_matches_the_data_reader(tmp_path):
    from lcm_hf.data.readers import read_timeseries_file

    data = series(12)
    np.savetxt(tmp_path / "a.1D", data, header=" ".join(f"#{i}" for i in range(N)))  # ABIDE style
    np.savetxt(tmp_path / "b.csv", data, delimiter=",", header=",".join(LABELS), comments="")
    with open(tmp_path / "c.txt", "w") as handle:  # a first column of time labels
        handle.write("time " + " ".join(LABELS) + "\n")
        for t, row in enumerate(data):
            handle.write(f"t{t} " + " ".join(map(str, row)) + "\n")
    for name, labels in (("a.1D", [str(i) for i in range(N)]), ("b.csv", LABELS), ("c.txt", LABELS)):
        array, read_labels, tr = read_timeseries(tmp_path / name)
        np.testing.assert_array_equal(array, read_timeseries_file(tmp_path / name))
        assert read_labels == labels and tr is None
    # issue 17: the pipeline reads .mat like the importers (it refused them before)
    from scipy.io import savemat

    savemat(tmp_path / "d.mat", {"ts": data})
    array, read_labels, tr = read_timeseries(tmp_path / "d.mat")
    np.testing.assert_array_equal(array, read_timeseries_file(tmp_path / "d.mat"))
    np.testing.assert_array_equal(array, data)
    assert read_labels is None and tr is None
    (tmp_path / "a.mat").write_bytes(b"MATLAB")
    with pytest.raises(ValueError, match=r"expected a readable MATLAB .mat file, got .*a\.mat"):
        read_timeseries(tmp_path / "a.mat")
    with pytest.raises(ValueError, match=r"expected a time-series file ending in \[.*'\.mat'\], got 'a\.nii'"):
        read_timeseries(tmp_path / "a.nii")


def test_pipeline_refuses_what_lcm_hf_predict_refuses(folder, tmp_path):
    """Issue 17: one reader for every path. An FC matrix saved as .npy used to be predicted by the pipeline as 16
    time points (only `lcm-hf predict` refused it); NaN too. Both now fail the same way on both paths, naming how
    to pass a ready FC matrix, and .mat files (refused by the pipeline before) read like the importers read them."""
    from scipy.io import savemat

    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    fc = np.corrcoef(series(60).T).astype(np.float32)
    np.save(tmp_path / "sub-01_fc.npy", fc)
    broken = series(60)
    broken[7, 3] = np.nan
    np.save(tmp_path / "sub-02.npy", broken)
    for name, message in (
        ("sub-01_fc.npy", r"sub-01_fc\.npy looks like a connectivity matrix \(16 x 16, symmetric, unit or zero "
                          r"diagonal\), not a \(T, N\) time series; .*pass one to the pipeline as "
                          r"\{'connectivity': matrix\}"),
        ("sub-02.npy", r"expected finite values in the time series .*sub-02\.npy, got 1 NaN/inf "
                       r"\(first at row 7, column 3\)"),
    ):
        with pytest.raises(ValueError, match=message) as from_pipeline:
            predict(str(tmp_path / name))
        with pytest.raises(SystemExit) as from_cli:
            main(["predict", "--model", str(folder), "--timeseries", str(tmp_path / name), "--device", "cpu"])
        assert str(from_cli.value) == f"error: {from_pipeline.value}"
    by_fc = predict({"connectivity": fc})  # the way the message says
    expected = torch.tensor(fc)[None]
    with torch.no_grad():
        logits = predict.model(connectivity=expected).logits
    assert by_fc["age"]["value"] == pytest.approx(float(logits[0, 5]), abs=1e-5)
    long = series(100)
    savemat(tmp_path / "sub-03.mat", {"bold": long.astype(np.float64)})
    (tmp_path / "sub-03.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    assert predict(str(tmp_path / "sub-03.mat")) == predict(long)
