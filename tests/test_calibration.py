"""Temperature scaling (lcm_hf.training.calibration), config.temperatures and where they are applied."""

import json

import numpy as np
import pytest
import torch

from lcm_hf import LcmConfig
from lcm_hf.training.calibration import (
    calibrate_trainer,
    expected_calibration_error,
    fit_temperature,
    fit_temperatures,
    reliability_diagram,
)
from lcm_hf.training.metrics import softmax

BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "site", "kind": "categorical", "classes": ["a", "b", "c"]},
    {"name": "age", "kind": "continuous"},
]


def overconfident(n=4000, scale=3.0, seed=0):
    """Calibrated logits z (labels drawn from softmax(z)), returned multiplied by `scale`."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(z)])
    return scale * z, labels


def test_fit_temperature_recovers_the_scale():
    logits, labels = overconfident(scale=3.0)
    assert fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.1)
    logits, labels = overconfident(scale=0.5, seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(0.5, rel=0.1)


def test_fit_temperature_minimises_the_nll():
    logits, labels = overconfident(n=500)
    t = fit_temperature(logits, labels)

    def nll(temperature):
        p = softmax(logits / temperature)
        return -np.log(p[np.arange(len(labels)), labels]).mean()

    assert all(nll(t) <= nll(t * f) + 1e-9 for f in (0.8, 0.95, 1.05, 1.25))


def test_expected_calibration_error_against_hand_computation():
    probabilities = np.array([[0.94, 0.06], [0.96, 0.04], [0.38, 0.62], [0.29, 0.71]])
    labels = np.array([0, 1, 1, 0])
    # 15 bins of width 1/15: 0.94 and 0.96 share (14/15, 1] (confidence 0.95, accuracy 0.5); 0.62 is alone in
    # (9/15, 10/15] (accuracy 1), 0.71 in (10/15, 11/15] (accuracy 0).
    expected = (2 * abs(0.5 - 0.95) + abs(1 - 0.62) + abs(0 - 0.71)) / 4
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)


def test_fit_temperatures_lowers_ece_and_skips_continuous_and_single_class():
    logits, labels = overconfident(n=1000)
    full = np.concatenate([np.stack([logits[:, 0], -logits[:, 0]], 1), logits, np.zeros((1000, 1))], axis=1)
    targets = np.stack([(labels == 0).astype(float), labels.astype(float), np.ones(1000)], axis=1)
    targets[:, 0] = 0.0  # one class only: no temperature for sex
    result = fit_temperatures(full, targets, BEIS, subject_ids=[f"s{i // 4}" for i in range(1000)])
    assert set(result["temperatures"]) == {"site"}
    ece = result["ece"]["site"]
    assert ece["window"]["after"] < ece["window"]["before"] and set(ece) == {"window", "subject"}


def test_temperatures_config_round_trip_and_validation(tmp_path):
    config = LcmConfig(num_rois=8, hidden_size=16, num_attention_heads=2, beis=BEIS, temperatures={"sex": 2.5})
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["temperatures"] == {"sex": 2.5}
    assert LcmConfig.from_pretrained(tmp_path).temperatures == {"sex": 2.5}
    with pytest.raises(ValueError, match=r"`temperatures` must name categorical BEIs \['sex', 'site'\], got 'age'"):
        config.set_temperatures({"age": 2.0})
    with pytest.raises(ValueError, match=r"`temperatures\['sex'\]` must be a finite float > 0, got 0"):
        config.set_temperatures({"sex": 0})
    with pytest.raises(TypeError, match="`temperatures` must be a dict"):
        LcmConfig(num_rois=8, hidden_size=16, num_attention_heads=2, beis=BEIS, temperatures=[2.0])


def test_temperatures_change_post_process_and_predictions():
    from lcm_hf.processing_lcm import LcmProcessor
    from lcm_hf.readout_lcm import logits_to_bei_predictions

    processor = LcmProcessor(vocabulary=BEIS, num_rois=8)
    logits = torch.tensor([[2.0, 0.0, 1.0, 0.0, -1.0, 40.0], [1.0, 0.0, 0.0, 2.0, 0.0, 42.0]])
    plain = processor.post_process(logits, subject_index=[0, 0])[0]
    scaled = processor.post_process(logits, subject_index=[0, 0], temperatures={"sex": 2.0})[0]
    expected = torch.tensor([[2.0, 0.0], [1.0, 0.0]]).div(2.0).softmax(-1).mean(0)[0].item()
    assert scaled["sex"]["score"] == pytest.approx(expected)
    assert plain["sex"]["score"] > scaled["sex"]["score"] and plain["site"] == scaled["site"]
    assert plain["age"] == scaled["age"]
    window = logits_to_bei_predictions(logits[:1], BEIS, temperatures={"sex": 2.0})[0]
    assert window["sex"]["score"] == pytest.approx(torch.tensor([1.0, 0.0]).softmax(-1)[0].item())


def test_reliability_diagram_written_atomically(tmp_path):
    logits, labels = overconfident(n=300)
    result = fit_temperatures(logits, labels[:, None].astype(float), [BEIS[1]])
    path = reliability_diagram(result, str(tmp_path / "figures" / "calibration.png"))
    assert path and (tmp_path / "figures" / "calibration.png").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["calibration.png"]


def test_calibration_lowers_validation_ece_on_the_demo_cohort(tmp_path):
    """A small seeded model trained briefly on the demo cohort, made over-confident (a forward hook scales its
    logits so that the best temperature is 5): calibrate_trainer finds T = 5 on the validation windows, lowers
    their ECE, stores T in the config and draws the reliability diagram."""
    from transformers import TrainingArguments

    from lcm_hf import LcmForBeiPrediction
    from lcm_hf.demo import make_demo_cohort
    from lcm_hf.training.trainer import LcmTrainer

    cohort = make_demo_cohort(seed=0, n_subjects={"ppmi_like": 64}, datasets=("ppmi_like",),
                              representation="connectivity", effect_scale=2.0)["ppmi_like"]
    keep = [i for i, value in enumerate(cohort["parkinson"]) if value is not None]
    labels = [[1.0 if cohort["parkinson"][i] == "PD" else 0.0] for i in keep]
    cohort = cohort.select(keep).add_column("labels", labels).select_columns(["connectivity", "labels", "subject_id"])
    cohort = cohort.with_format("torch", columns=["connectivity", "labels"], output_all_columns=True)
    train, validation = cohort.select(range(24)), cohort.select(range(24, len(cohort)))
    beis = [{"name": "parkinson", "kind": "categorical", "classes": ["control", "PD"]}]
    torch.manual_seed(0)
    model = LcmForBeiPrediction(LcmConfig(num_rois=116, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=32, beis=beis, momentum_epochs=0))
    args = TrainingArguments(str(tmp_path), num_train_epochs=12, per_device_train_batch_size=8, learning_rate=3e-3,
                             eval_strategy="no", save_strategy="no", report_to=[], disable_tqdm=True, seed=0,
                             use_cpu=True, logging_strategy="no")
    trainer = LcmTrainer(model=model, args=args, train_dataset=train, layer_metrics=False)
    trainer.train()

    raw = calibrate_trainer(trainer, validation)["temperatures"]["parkinson"]
    scale = 5.0 / raw  # the scaled model's best temperature is 5: over-confident

    def overconfident(module, inputs, outputs):
        outputs.logits = outputs.logits * scale
        outputs.layer_logits = outputs.layer_logits * scale
        return outputs

    model.register_forward_hook(overconfident)
    summary = calibrate_trainer(trainer, validation, str(tmp_path))
    ece = summary["ece"]["parkinson"]["window"]
    assert summary["windows"]["parkinson"] == len(validation)
    assert summary["temperatures"]["parkinson"] == pytest.approx(5.0, rel=1e-2)
    assert ece["after"] < ece["before"]
    assert model.config.temperatures == summary["temperatures"]
    assert (tmp_path / "figures" / "calibration.png").is_file()


# ----------------------------------------------------------------------------- calibration on every path (issue 17)
def calibrated_folder(folder):
    """A tiny model with temperatures far from 1, saved with a windowed processor; returns its series too."""
    from lcm_hf import LcmForBeiPrediction, LcmProcessor
    from lcm_testing import make_tiny_config

    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(temperatures={"sex": 4.0, "diagnosis": 0.25})).eval()
    LcmProcessor(vocabulary=model.config.beis, num_rois=16, window_size=30).save_pretrained(folder)
    model.save_pretrained(folder)
    series = np.random.default_rng(3).standard_normal((95, 16)).astype(np.float32)  # windows at 0, 30, 60
    np.save(folder / "sub-01.npy", series)
    return series


def by_hand(model, series, temperatures):
    """softmax(logits / T) of each 30-TR window's Pearson FC (numpy float64), averaged over the windows."""
    windows = [series[start:start + 30] for start in (0, 30, 60)]
    fc = torch.tensor(np.stack([np.corrcoef(w.T.astype(np.float64)) for w in windows]), dtype=torch.float32)
    with torch.no_grad():
        logits = model(connectivity=fc).logits.double().numpy()
    expected = {}
    for name, tokens in (("sex", slice(0, 2)), ("diagnosis", slice(2, 5))):
        expected[name] = softmax(logits[:, tokens] / temperatures.get(name, 1.0)).mean(0)
    return expected


def test_post_process_pipeline_and_predict_apply_the_stored_temperatures(tmp_path, capsys):
    """processor.post_process(model(**batch)) of a calibrated model loaded from its folder, the pipeline and
    `lcm-hf predict` give the same probabilities: softmax(logits / T) by hand; calibrated=False the plain ones."""
    from transformers import pipeline

    from lcm_hf import LcmForBeiPrediction, LcmProcessor
    from lcm_hf.cli import main

    series = calibrated_folder(tmp_path)
    model, processor = LcmForBeiPrediction.from_pretrained(tmp_path).eval(), LcmProcessor.from_pretrained(tmp_path)
    assert model.config.temperatures == {"sex": 4.0, "diagnosis": 0.25}
    batch = processor(timeseries=[series])
    with torch.no_grad():
        out = model(connectivity=batch["connectivity"])
    local = processor.post_process(out, subject_index=batch["subject_index"])[0]
    piped = pipeline("phenotype-prediction", model=str(tmp_path), device="cpu")(series)
    assert main(["predict", "--model", str(tmp_path), "--timeseries", str(tmp_path / "sub-01.npy"), "--json",
                 "--device", "cpu"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    calibrated, plain = by_hand(model, series, model.config.temperatures), by_hand(model, series, {})
    for name in ("sex", "diagnosis"):
        for prediction in (local, piped, predicted):
            np.testing.assert_allclose(list(prediction[name]["scores"].values()), calibrated[name], atol=1e-5)
        assert not np.allclose(calibrated[name], plain[name], atol=1e-3)  # the temperatures matter here
    uncalibrated = processor.post_process(out, subject_index=batch["subject_index"], calibrated=False)[0]
    np.testing.assert_allclose(list(uncalibrated["sex"]["scores"].values()), plain["sex"], atol=1e-5)
    # a processor built in code takes the temperatures of the model it is checked against, or of `config=`
    fresh = LcmProcessor(vocabulary=model.config.beis, num_rois=16, window_size=30)
    assert fresh.post_process(out, subject_index=batch["subject_index"], config=model.config)[0] == local
    fresh.check_model(model.config)
    assert fresh.post_process(out, subject_index=batch["subject_index"])[0] == local
    assert "_model_config" not in fresh.to_dict()  # the config stays the one home of the temperatures
    with pytest.raises(ValueError, match=r"expected either `temperatures` or calibrated=False, got both"):
        fresh.post_process(out, temperatures={"sex": 2.0}, calibrated=False)


@pytest.mark.slow
def test_finetuning_without_calibration_drops_the_pretrained_temperatures(tmp_path):
    """`finetune.py --calibrate false` saves a model without temperatures: the pretrained ones were fitted to
    logits that finetuning changed (they used to be inherited)."""
    from own_data import TINY_MODEL, TINY_TRAINING, load_script, write_cohort

    table = write_cohort(tmp_path / "raw", n_subjects=10, n_timepoints=60)
    load_script("processing/build_dataset.py").main([str(tmp_path / "raw"), "--phenotypes", table,
                                                     "--output", str(tmp_path / "calibration_cohort")])
    common = ["--dataset_dirs", str(tmp_path / "calibration_cohort"), "--window_size", "30", *TINY_TRAINING]
    load_script("training/pretrain.py").main([*common, "--categorical_columns", "sex", "--calibrate", "false",
                                              *TINY_MODEL, "--output_dir", str(tmp_path / "pretrained")])
    config_file = tmp_path / "pretrained" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "temperatures": {"sex": 3.0}}))
    load_script("training/finetune.py").main([*common, "--model_name_or_path", str(tmp_path / "pretrained"),
                                              "--categorical_columns", "sex", "--new_beis", "diagnosis",
                                              "--calibrate", "false", "--output_dir", str(tmp_path / "finetuned")])
    saved = json.loads((tmp_path / "finetuned" / "config.json").read_text())
    assert [bei["name"] for bei in saved["beis"]] == ["sex", "diagnosis"]
    assert saved["temperatures"] is None


def test_a_temperature_at_a_search_bound_is_dropped_with_a_warning(caplog):
    """Validation windows separated perfectly: the NLL keeps falling as T -> 0, the search ends at its bound
    0.01; such a temperature would turn every score into 0 or 1, so it is not saved (issue 18)."""
    from lcm_hf.training.calibration import TEMPERATURE_BOUNDS, at_bound
    from lcm_hf.training.report import notice_lines

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    separated = np.stack([np.where(labels == 0, 1.0, -1.0), np.where(labels == 1, 1.0, -1.0)], axis=1)
    assert fit_temperature(separated, labels) == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-3)
    logits, site = overconfident(n=300)  # a BEI with an interior optimum keeps its temperature
    full = np.concatenate([separated.repeat(8, axis=0)[:300], logits, np.zeros((300, 1))], axis=1)
    targets = np.stack([labels.repeat(8)[:300], site, np.full(300, np.nan)], axis=1).astype(float)
    with caplog.at_level("WARNING", logger="lcm_hf.training.calibration"):
        result = fit_temperatures(full, targets, BEIS)
    assert set(result["temperatures"]) == {"site"} and not at_bound(result["temperatures"]["site"])
    assert list(result["dropped_at_bound"]) == ["sex"] and at_bound(result["dropped_at_bound"]["sex"])
    assert "calibration sex: the fitted temperature 0.01" in caplog.text and "not saved" in caplog.text
    line = notice_lines({"calibration": {"dropped_at_bound": result["dropped_at_bound"]}})[0]
    assert line.startswith("No temperature saved for sex (fitted T = 0.01") and "at the search bound" in line
