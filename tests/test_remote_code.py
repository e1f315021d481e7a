"""An exported folder (config + safetensors + remote code with `auto_map`) loads through the Auto
classes with `trust_remote_code=True` in a fresh process where `lcm_hf` cannot be imported."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from lcm_hf import LcmConfig, LcmForBeiPrediction
from lcm_testing import make_tiny_config, random_connectivity

LOADER = textwrap.dedent(
    """
    import sys
    sys.modules["lcm_hf"] = None  # make `import lcm_hf` fail: only the exported files may be used
    try:
        import lcm_hf  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("lcm_hf is importable")
    import torch
    from transformers import AutoModel, AutoModelForPreTraining
    folder, connectivity_file, output_file = sys.argv[1:]
    connectivity = torch.load(connectivity_file, weights_only=True)
    head = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True).eval()
    backbone = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert "lcm_hf" not in type(head).__module__, type(head).__module__
    with torch.no_grad():
        torch.save({"logits": head(connectivity).logits,
                    "states": backbone(connectivity).last_hidden_state,
                    "class": type(head).__name__}, output_file)
    """
)


def export_with_remote_code(model, folder):
    """Save with the remote-code files; `save_pretrained` maps the saved class itself, the backbone is added."""
    classes = {LcmConfig: "AutoConfig", LcmForBeiPrediction: "AutoModelForPreTraining"}
    model.config.auto_map = {"AutoModel": "modeling_lcm.LcmModel"}
    try:
        for cls, auto_class in classes.items():
            cls.register_for_auto_class(auto_class)
        model.save_pretrained(folder)
    finally:
        for cls in classes:
            cls._auto_class = None


def test_trust_remote_code_round_trip_without_lcm_hf(tmp_path):
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config()).eval()
    folder = tmp_path / "exported"
    export_with_remote_code(model, folder)

    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_lcm.LcmConfig",
        "AutoModel": "modeling_lcm.LcmModel",
        "AutoModelForPreTraining": "modeling_lcm.LcmForBeiPrediction",
    }
    assert {"configuration_lcm.py", "modeling_lcm.py", "model.safetensors"} <= {p.name for p in folder.iterdir()}

    connectivity = random_connectivity(3, 16)
    torch.save(connectivity, tmp_path / "connectivity.pt")
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder), str(tmp_path / "connectivity.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = torch.load(tmp_path / "out.pt", weights_only=True)
    assert loaded["class"] == "LcmForBeiPrediction"
    with torch.no_grad():
        torch.testing.assert_close(loaded["logits"], model(connectivity).logits, rtol=0, atol=0)
        torch.testing.assert_close(loaded["states"], model.model(connectivity).last_hidden_state, rtol=0, atol=0)


PIPELINE_LOADER = textwrap.dedent(
    """
    import json, sys
    sys.modules["lcm_hf"] = None  # only the exported files may be used
    from transformers import pipeline
    folder, output_file, fc_file, *files = sys.argv[1:]
    predict = pipeline("phenotype-prediction", model=folder, trust_remote_code=True, device="cpu")
    inferred = pipeline(model=folder, trust_remote_code=True, device="cpu")  # the task from config.json
    assert "lcm_hf" not in type(predict).__module__, type(predict).__module__
    try:
        predict(fc_file)
        refused = None
    except ValueError as error:
        refused = str(error)
    json.dump({"class": type(predict).__name__, "task": inferred.task, "predictions": predict(files),
               "one": predict(files[0]), "refused": refused}, open(output_file, "w"))
    """
)


def test_exported_pipeline_without_lcm_hf_equals_lcm_hf_predict(tmp_path, capsys):
    import numpy as np

    from lcm_hf import LcmProcessor
    from lcm_hf.cli import main
    from lcm_hf.hub import export_model_repository

    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(temperatures={"sex": 3.0, "diagnosis": 0.5})).eval()
    labels = [f"roi{i}" for i in range(16)]
    processor = LcmProcessor(vocabulary=model.config.beis, num_rois=16, atlas="toy", roi_labels=labels,
                             window_size=30, window_stride=15)
    folder = tmp_path / "exported"
    files = export_model_repository(model, folder, processor=processor)
    assert "pipeline_lcm.py" in files
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == {"phenotype-prediction": {
        "impl": "pipeline_lcm.PhenotypePredictionPipeline", "pt": ["AutoModelForPreTraining"]}}
    rng = np.random.default_rng(0)
    inputs = [str(tmp_path / "sub-01.tsv"), str(tmp_path / "sub-02.npy"), str(tmp_path / "sub-03.mat")]
    np.savetxt(inputs[0], rng.standard_normal((100, 16)), delimiter="\t", header="\t".join(labels), comments="")
    np.save(inputs[1], rng.standard_normal((64, 16)).astype(np.float32))
    from scipy.io import savemat

    savemat(inputs[2], {"ts": rng.standard_normal((70, 16))})  # the core reader reads .mat in remote code too
    fc_file = str(tmp_path / "sub-04_fc.npy")
    np.save(fc_file, np.corrcoef(rng.standard_normal((16, 90))).astype(np.float32))

    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", PIPELINE_LOADER, str(folder), str(tmp_path / "out.json"), fc_file, *inputs],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads((tmp_path / "out.json").read_text())
    assert remote["class"] == "PhenotypePredictionPipeline" and remote["task"] == "phenotype-prediction"
    assert main(["predict", "--model", str(folder), "--timeseries", *inputs, "--json", "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["file"] for line in lines] == inputs
    assert [line["predictions"] for line in lines] == remote["predictions"]
    # the exported pipeline reads files with the same core reader: an FC matrix is refused as `lcm-hf predict` does
    with pytest.raises(SystemExit) as refused:
        main(["predict", "--model", str(folder), "--timeseries", fc_file, "--device", "cpu"])
    assert "sub-04_fc.npy looks like a connectivity matrix" in remote["refused"]
    assert str(refused.value) == f"error: {remote['refused']}"
    assert remote["one"] == remote["predictions"][0]
