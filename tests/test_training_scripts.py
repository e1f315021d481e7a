"""training/pretrain.py and training/finetune.py: options from a YAML/JSON file, pretrain -> finetune."""

import importlib.util
import json
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "demo": True,
    "demo_subjects": 24,
    "readout_policy": "best_layer",
    "num_train_epochs": 2,
    "momentum_epochs": 1,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "use_cpu": True,
    "report_to": "none",
    "save_strategy": "no",
    "disable_tqdm": True,
    # ~10 validation subjects: these tests check selection, best_layer and calibration, which the size-aware
    # small-cohort policy (issue 18) would switch off; tests/test_small_cohort_policy.py covers the policy.
    "small_cohort_policy": "off",
}


def load_script(name):
    """Import a script of training/ as `python training/<name>.py` would see it (its folder on sys.path)."""
    if os.path.join(ROOT, "training") not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, "training"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "training", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module




@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Run training/pretrain.py once from a YAML file; returns (folder, printed summary)."""
    import yaml

    tmp_path = tmp_path_factory.mktemp("pretrain")
    pretrain_dir = tmp_path / "model"
    config = tmp_path / "pretrain.yaml"
    config.write_text(yaml.safe_dump({**TINY, "output_dir": str(pretrain_dir)}))
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        load_script("pretrain").main([str(config)])
    return pretrain_dir, json.loads(out.getvalue().strip().splitlines()[-1])


def test_pretrain_from_yaml_then_finetune_from_json(tmp_path, pretrained):
    pretrain_dir, printed = pretrained
    finetune_dir = tmp_path / "finetune"
    assert set(printed["readout_layers"]) == {"sex", "task", "autism", "alzheimer"}
    assert "test_task/subject/balanced_accuracy" in printed["test"]
    results = json.loads((pretrain_dir / "results.json").read_text())
    assert results["stage_history"][0] == [0, "momentum"] and results["stage_history"][-1] == [1, "adaptive"]
    assert "test_dataset/hcp_like/task/accuracy" in results["test_metrics"]  # per-dataset metrics
    assert "test_sex/layer_1/subject/roc_auc" in results["test_metrics"]  # per-layer, subject level
    for name in ("config.json", "model.safetensors", "results.json"):
        assert (pretrain_dir / name).is_file()

    settings = {
        k: v
        for k, v in TINY.items()
        if k not in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    }
    config = tmp_path / "finetune.json"
    config.write_text(
        json.dumps({**settings, "output_dir": str(finetune_dir), "model_name_or_path": str(pretrain_dir)})
    )
    load_script("finetune").main([str(config)])
    results = json.loads((finetune_dir / "results.json").read_text())
    assert results["mode"] == "semi_supervised" and results["new_beis"] == ["parkinson"]
    saved = json.loads((finetune_dir / "config.json").read_text())
    assert [b["name"] for b in saved["beis"]] == ["sex", "task", "autism", "alzheimer", "age", "parkinson"]
    assert "test_parkinson/subject/balanced_accuracy" in results["test_metrics"]


def test_command_line_flags_and_help(tmp_path, capsys):
    module = load_script("pretrain")
    with pytest.raises(SystemExit):
        module.main(["--help"])
    assert "--readout_policy" in capsys.readouterr().out
    argv = [f"--{k}={v}" for k, v in TINY.items() if k != "use_cpu"] + [
        "--use_cpu",
        "--output_dir",
        str(tmp_path),
    ]
    argv += ["--readout_policy", "max", "--num_train_epochs", "1", "--momentum_epochs", "0"]
    module.main(argv)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["readout_policy"] == "max" and saved["readout_layers"] is None


def test_linear_probe_keeps_the_pretrained_weights(tmp_path, pretrained):
    from lcm_hf import LcmForBeiPrediction

    pretrain_dir = pretrained[0]
    settings = [
        f"--{k}={v}"
        for k in (
            "demo",
            "demo_subjects",
            "num_train_epochs",
            "momentum_epochs",
            "report_to",
            "save_strategy",
            "disable_tqdm",
        )
        for v in [TINY[k]]
    ]
    load_script("finetune").main(
        settings
        + [
            "--use_cpu",
            "--mode",
            "linear_probe",
            "--model_name_or_path",
            str(pretrain_dir),
            "--output_dir",
            str(tmp_path / "probe"),
        ]
    )
    before = LcmForBeiPrediction.from_pretrained(str(pretrain_dir)).state_dict()
    after = LcmForBeiPrediction.from_pretrained(str(tmp_path / "probe")).state_dict()
    for name, tensor in before.items():
        if name.startswith("readout") or "bei_embeddings" in name or "num_batches_tracked" in name:
            continue
        if "running_" in name:
            continue  # BatchNorm statistics follow the data in train mode
        torch.testing.assert_close(after[name], tensor, msg=name)
    old = before["model.bei_embeddings.weight"]
    torch.testing.assert_close(after["model.bei_embeddings.weight"][: old.shape[0]], old)
    assert after["model.bei_embeddings.weight"].shape[0] == old.shape[0] + 2  # parkinson: PD, control


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_confident_pseudo_labels_fill_only_missing_labels_above_threshold(pretrained):
    import numpy as np

    from lcm_hf import LcmForBeiPrediction
    from lcm_hf.data import add_labels
    from lcm_hf.demo import apply_demo_defaults, demo_datasets
    from lcm_hf.training.arguments import LcmDataArguments
    from lcm_hf.training.recipes import confident_predictions, prepare_finetuning_data

    pretrain_dir = str(pretrained[0])
    data_args = LcmDataArguments(demo=True, demo_subjects=24)
    datasets = demo_datasets("finetune", data_args)
    apply_demo_defaults(data_args, datasets)
    vocabulary, splits, _ = prepare_finetuning_data(datasets, data_args, pretrain_dir)
    model = LcmForBeiPrediction.from_pretrained(pretrain_dir)
    train = splits["train"]
    before = np.stack(train.with_format("numpy")["labels"])
    autism = vocabulary.names.index("autism")
    assert np.isnan(before[:, autism]).all()  # ppmi_like has no autism label
    everything = confident_predictions(model, train, vocabulary, ["autism"], threshold=0.0)
    nothing = confident_predictions(model, train, vocabulary, ["autism"], threshold=1.01)
    assert not np.isnan(everything[:, autism]).any() and np.isnan(nothing).all()
    filled = np.stack(add_labels(train, vocabulary, fill=everything).with_format("numpy")["labels"])
    np.testing.assert_array_equal(filled[:, autism], everything[:, autism])
    known = ~np.isnan(before)
    np.testing.assert_array_equal(filled[known], before[known])  # true labels are never overwritten
    subjects = {name: set(split["subject_id"]) for name, split in splits.items()}
    assert not subjects["train"] & subjects["validation"] and not subjects["train"] & subjects["test"]
    assert not subjects["validation"] & subjects["test"]  # windows split by subject, never leaking


def test_finetune_with_lora_saves_an_adapter_that_reloads(tmp_path, pretrained):
    import numpy as np

    from lcm_hf import LcmForBeiPrediction
    from lcm_hf.data import LcmDataCollator
    from lcm_hf.training.adapters import load_lora_adapter

    pretrain_dir, output = pretrained[0], tmp_path / "lora"
    settings = [
        f"--{k}={TINY[k]}" for k in ("demo", "demo_subjects", "num_train_epochs", "momentum_epochs", "report_to")
    ]
    argv = settings + [
        "--save_strategy=no",
        "--disable_tqdm=True",
        "--use_cpu",
        "--use_lora",
        "--lora_r",
        "4",
        "--init_guard_folds",  # the adapter is under test, not the guard's choice (tests/test_init_guard.py)
        "0",
    ]
    argv += ["--model_name_or_path", str(pretrain_dir), "--output_dir", str(output)]
    results = load_script("finetune").main(argv)
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "lcm_finetune_config.json",
        "results.json",
    ):
        assert (output / name).is_file(), name
    assert not (output / "model.safetensors").exists()  # the adapter, not a copy of the model
    saved = json.loads((output / "results.json").read_text())
    assert saved["lora"]["r"] == 4 and 0 < saved["lora"]["trainable_parameters"] < saved["lora"]["parameters"]
    assert any("lora_A" in name for name in saved["trainable"])
    assert "test_parkinson/subject/balanced_accuracy" in saved["test_metrics"]

    model = load_lora_adapter(LcmForBeiPrediction.from_pretrained(str(pretrain_dir)), output)
    assert model.get_base_model().config.bei_names[-1] == "parkinson"
    test = results["test_dataset"]
    batch = LcmDataCollator()([test[i] for i in range(len(test))])
    with torch.no_grad():
        logits = model(connectivity=batch["connectivity"]).logits.numpy()
    np.testing.assert_allclose(logits, results["test_predictions"].predictions[0], rtol=1e-4, atol=1e-5)
    # the merged model next to the adapter loads as a plain model folder (predict, pipeline, export, attention)
    from lcm_hf.pipeline_lcm import load_phenotype_pipeline

    assert saved["merged_model"] == str(output / "merged")
    merged = load_phenotype_pipeline(output / "merged", device="cpu")
    with torch.no_grad():
        merged_logits = merged.model(connectivity=batch["connectivity"]).logits.numpy()
    np.testing.assert_allclose(merged_logits, logits, rtol=1e-4, atol=1e-5)
    assert set(merged({"connectivity": batch["connectivity"][0].numpy()})) == set(merged.model.config.bei_names)

    with pytest.raises(ValueError, match="--use_lora: expected --mode semi_supervised, got --mode scratch"):
        load_script("finetune").main(
            argv[:-4]
            + ["--mode", "scratch", "--model_name_or_path", str(pretrain_dir), "--output_dir", str(tmp_path)]
        )


def test_a_misspelt_key_of_a_config_file_is_refused_with_the_close_names(tmp_path):
    import yaml

    from lcm_hf.errors_lcm import LcmInputError
    from lcm_hf.training.arguments import SCRIPT_ARGUMENTS, parse_arguments

    config = tmp_path / "pretrain.yaml"
    config.write_text(yaml.safe_dump({"dataset_dirs": ["x"], "output_dir": str(tmp_path / "o"), "lerning_rate": 1e-3}))
    with pytest.raises(LcmInputError, match=r"^unknown key in .*pretrain\.yaml: lerning_rate: expected one of this "
                                            r"script's options \(--help lists them\); did you mean learning_rate"):
        parse_arguments(SCRIPT_ARGUMENTS["pretrain.py"], [str(config)])
    config.write_text(yaml.safe_dump({"dataset_dirs": ["x"], "output_dir": str(tmp_path / "o"), "learning_rate": 1e-3}))
    assert parse_arguments(SCRIPT_ARGUMENTS["pretrain.py"], [str(config)])[2].learning_rate == 1e-3
