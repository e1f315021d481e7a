"""Hub export: the exported folder loads in a fresh interpreter where `lcm_hf` is NOT importable,
offline, through the Auto classes with trust_remote_code=True, and predicts the same."""

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
import torch
import yaml

from lcm_hf import LcmForBeiPrediction
from lcm_hf.hub import AUTO_MAP, export_model_repository, load_eval_results, render_model_card, text_or_file
from lcm_testing import TINY_BEIS, make_tiny_config, random_connectivity

try:
    from lcm_hf import LcmProcessor
except ImportError:  # pragma: no cover - the processor lands separately
    try:
        from lcm_hf.processing_lcm import LcmProcessor
    except ImportError:
        LcmProcessor = None

CARD_INFO = {
    "model_name": "lcm-tiny-test",
    "datasets": ["simulated-demo-cohort"],
    "eval_results": {"sex": {"balanced_accuracy": 0.61, "auroc": 0.66}, "age": {"mae": 7.5}},
    "eval_dataset": "simulated-demo-cohort (held-out subjects)",
    "training_data": "SIMULATED connectomes from `lcm_hf.demo.make_demo_cohort`.",
}


def trained_tiny_model():
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config())
    model.train()
    with torch.no_grad():  # move the BatchNorm running stats away from their initial values
        model(random_connectivity(8, 16, seed=1) * 3 + 0.5)
    return model.eval()


def run_isolated(script: str, cwd) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter that sees site-packages but not lcm_hf: `-S` skips the .pth
    files (the editable finder of lcm_hf lives in one), PYTHONPATH lists only site-packages, cwd is tmp."""
    paths = sysconfig.get_paths()
    site_dirs = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        PYTHONPATH=os.pathsep.join(site_dirs),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_MODULES_CACHE=str(cwd / "hf_modules"),
        HF_HOME=str(cwd / "hf_home"),
    )
    return subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(script)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_model_card_has_metadata_and_required_sections():
    card = render_model_card(make_tiny_config(), num_parameters=12345, **CARD_INFO)
    assert card.startswith("---\n")
    metadata = yaml.safe_load(card.split("---\n")[1])
    assert metadata["library_name"] == "transformers"
    assert "lcm" in metadata["tags"] and "custom_code" in metadata["tags"]
    assert metadata["datasets"] == ["simulated-demo-cohort"]
    assert {"balanced_accuracy", "auroc", "mae"} <= set(metadata["metrics"])
    assert metadata["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.61
    for heading in ("## Intended use", "## Training data", "## Evaluation", "## Limitations", "## Citation"):
        assert heading in card
    assert "| sex | 0.61 | 0.66 |" in card
    assert "not a medical or diagnostic device" in card
    assert "2510.18910" in card


def test_export_writes_a_complete_repository(tmp_path):
    model = trained_tiny_model()
    files = export_model_repository(model, tmp_path / "repo", model_card_info=CARD_INFO)
    for name in ("config.json", "model.safetensors", "configuration_lcm.py", "modeling_lcm.py", "README.md"):
        assert name in files
    assert not any(name.endswith(".bin") for name in files)
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP and config["model_type"] == "lcm"
    # the export leaves no global registration behind: a plain save writes no code files
    assert getattr(model.config, "auto_map", None) is None
    model.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / "modeling_lcm.py").exists()
    with pytest.raises(ValueError, match="unknown `model_card_info` keys"):
        export_model_repository(model, tmp_path / "bad", model_card_info={"modelname": "x"})


def test_exported_model_loads_without_lcm_hf(tmp_path):
    model = trained_tiny_model()
    processor = None
    if LcmProcessor is not None:
        processor = LcmProcessor(vocabulary=TINY_BEIS, num_rois=16)
    repo = tmp_path / "repo"
    files = export_model_repository(model, repo, processor=processor, model_card_info=CARD_INFO)
    rng = np.random.default_rng(0)
    timeseries = rng.standard_normal((3, 50, 16)).astype(np.float32)
    np.save(tmp_path / "timeseries.npy", timeseries)
    fc = random_connectivity(3, 16, seed=5)
    np.save(tmp_path / "fc.npy", fc.numpy())
    with torch.no_grad():
        expected_logits = model(fc).logits.numpy()
        expected_hidden = model.model(fc).last_hidden_state.numpy()

    script = f"""
    import json, sys
    import numpy as np, torch
    try:
        import lcm_hf
        sys.exit("lcm_hf is importable in the isolated interpreter: " + str(lcm_hf.__file__))
    except ImportError:
        pass
    from transformers import AutoModel, AutoModelForPreTraining
    repo = {str(repo)!r}
    fc = torch.from_numpy(np.load("fc.npy"))
    model = AutoModelForPreTraining.from_pretrained(repo, trust_remote_code=True).eval()
    backbone = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
    assert type(model).__name__ == "LcmForBeiPrediction" and type(backbone).__name__ == "LcmModel"
    assert not type(model).__module__.startswith("lcm_hf"), type(model).__module__
    with torch.no_grad():
        np.save("logits.npy", model(fc).logits.numpy())
        np.save("hidden.npy", backbone(fc).last_hidden_state.numpy())
    if {processor is not None!r}:
        from transformers import AutoFeatureExtractor
        processor = AutoFeatureExtractor.from_pretrained(repo, trust_remote_code=True)
        assert type(processor).__name__ == "LcmProcessor", type(processor)
        batch = processor(timeseries=list(np.load("timeseries.npy")), return_tensors="pt")
        with torch.no_grad():
            out = model(**batch)
        np.save("ts_logits.npy", out.logits.numpy())
        json.dump(processor.post_process(out), open("predictions.json", "w"))
    assert "lcm_hf" not in sys.modules
    print("ok")
    """
    result = run_isolated(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected_logits, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "hidden.npy"), expected_hidden, atol=1e-6, rtol=1e-5)
    if processor is None:
        pytest.skip("LcmProcessor not available: processor part of the export test pending")
    assert {"preprocessor_config.json", "processing_lcm.py", "vocabulary_lcm.py", "connectivity_lcm.py"} <= set(files)
    batch = processor(timeseries=list(timeseries), return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    np.testing.assert_allclose(np.load(tmp_path / "ts_logits.npy"), out.logits.numpy(), atol=1e-6, rtol=1e-5)
    remote = json.loads((tmp_path / "predictions.json").read_text())
    local = processor.post_process(out)
    assert [p["sex"]["label"] for p in remote] == [p["sex"]["label"] for p in local]
    np.testing.assert_allclose([p["age"]["value"] for p in remote], [p["age"]["value"] for p in local], rtol=1e-5)


def test_load_eval_results_reads_trainer_metrics_and_results_json(tmp_path):
    metrics = {"eval_sex/accuracy": 0.75, "eval_sex/subject/accuracy": 0.8, "eval_sex/layer_0/accuracy": 0.5,
               "eval_other/accuracy": 0.1, "eval_loss": 1.0}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert load_eval_results(tmp_path / "metrics.json", [{"name": "sex"}]) == {"sex": {"accuracy": 0.75}}
    assert load_eval_results(tmp_path / "metrics.json", [{"name": "sex"}], subject_level=True) == {
        "sex": {"accuracy": 0.8}}
    results = {"test_metrics": {"test_sex/accuracy": 0.6}, "mode": "semi_supervised"}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert load_eval_results(tmp_path / "results.json", [{"name": "sex"}]) == {"sex": {"accuracy": 0.6}}
    (tmp_path / "rows.json").write_text(json.dumps({"sex": {"accuracy": 0.9}}))
    assert load_eval_results(tmp_path / "rows.json") == {"sex": {"accuracy": 0.9}}
    (tmp_path / "card.md").write_text("# data")
    assert text_or_file(str(tmp_path / "card.md")) == "# data"
    assert text_or_file("plain words") == "plain words" and text_or_file(None) is None


def test_export_carries_the_pipeline_and_refuses_a_wrong_processor(tmp_path):
    from lcm_hf.hub import MODEL_CARD_OPTIONS

    model = trained_tiny_model()
    assert {"model_name", "eval_results", "repo_id", "num_parameters"} <= MODEL_CARD_OPTIONS
    assert "config" not in MODEL_CARD_OPTIONS
    reordered = [TINY_BEIS[2], TINY_BEIS[0], TINY_BEIS[1]]
    with pytest.raises(ValueError, match=r"the BEI order differs: the model config has \['sex', 'diagnosis', 'age'\]"):
        export_model_repository(model, tmp_path / "a", processor=LcmProcessor(vocabulary=reordered, num_rois=16))
    tangent = LcmProcessor(vocabulary=TINY_BEIS, num_rois=16, kind="tangent")
    with pytest.raises(ValueError, match=r"expected a fitted processor for the group kind 'tangent'"):
        export_model_repository(model, tmp_path / "b", processor=tangent)
    files = export_model_repository(model, tmp_path / "c", processor=LcmProcessor(vocabulary=TINY_BEIS, num_rois=16))
    assert {"pipeline_lcm.py", "processing_lcm.py", "group_connectivity_lcm.py"} <= set(files)
    assert 'pipeline("phenotype-prediction"' in (tmp_path / "c" / "README.md").read_text()
