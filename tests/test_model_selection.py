"""Model selection on validation (lcm_hf.training.selection): the kept checkpoint and its readout layers."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file
from trainer_helpers import BEIS, collate, synthetic_dataset, tiny_model, training_args

from lcm_hf.training.selection import checkpoint_readout_layers, resolve_selection_metric, selection_summary
from lcm_hf.training.trainer import LcmTrainer


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(num_subjects=12, seed=0), synthetic_dataset(num_subjects=6, seed=1)


def scripted(trainer_box, values):
    """compute_metrics: the LCM metrics plus a scripted `mean/subject/roc_auc`, one value per evaluation."""
    calls = iter(values)

    def compute(prediction):
        metrics = trainer_box[0]._compute_lcm_metrics(prediction)
        metrics["mean/subject/roc_auc"] = next(calls)
        return metrics

    return compute


def test_early_peak_is_kept_with_its_readout_layers(tmp_path, data):
    train, evaluation = data
    model = tiny_model(momentum_epochs=1, readout_policy="best_layer")
    # Epoch 1 (stage 1) scores highest but is not a candidate; epoch 2 is the best stage-2 evaluation.
    box = []
    args = training_args(
        tmp_path, num_train_epochs=4, save_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="mean/subject/roc_auc", save_total_limit=1,
    )
    trainer = LcmTrainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                         data_collator=collate, compute_metrics=scripted(box, [0.99, 0.9, 0.6, 0.7]))
    box.append(trainer)
    trainer.train()
    steps_per_epoch = trainer.state.global_step // 4
    best = os.path.join(str(tmp_path), f"checkpoint-{2 * steps_per_epoch}")
    assert trainer.state.best_model_checkpoint == best
    weights = load_file(os.path.join(best, "model.safetensors"))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[name], msg=name)
    # The readout layers are those selected at the kept evaluation (stored with the checkpoint).
    at_epoch_2 = next(e["layers"] for e in trainer.schedule.selection_history if e["epoch"] == 2.0)
    assert model.config.readout_layers == at_epoch_2
    assert checkpoint_readout_layers(best) == (True, at_epoch_2)
    summary = selection_summary(trainer)
    assert summary["kept"] == "best" and summary["best_epoch"] == 2.0 and summary["best_metric"] == 0.9
    assert summary["best_step"] == 2 * steps_per_epoch and summary["last_epoch"] == 4.0
    assert [epoch for epoch, _ in summary["validation_loss"]] == [1.0, 2.0, 3.0, 4.0]


def test_readout_layers_restored_from_the_checkpoint_config(tmp_path, data):
    train, evaluation = data
    model = tiny_model(momentum_epochs=0, readout_policy="best_layer")
    trainer = LcmTrainer(model=model, args=training_args(tmp_path), train_dataset=train,
                         eval_dataset=evaluation, data_collator=collate)
    checkpoint = tmp_path / "checkpoint-7"
    checkpoint.mkdir()
    model.config.set_readout_layers({"sex": 2, "diagnosis": 1})
    model.config.save_pretrained(checkpoint)
    model.config.set_readout_layers({"sex": 0, "diagnosis": 0})
    from lcm_hf.training.selection import restore_readout_layers

    restore_readout_layers(trainer, str(checkpoint))
    assert model.config.readout_layers == {"sex": 2, "diagnosis": 1}
    assert trainer.schedule.readout_layers == {"sex": 2, "diagnosis": 1}


def test_selection_ranks_the_readout_it_ships(tmp_path, data):
    """best_layer: every evaluation's reported score and loss (what ranks its checkpoint) are those of the readout
    layers saved in that checkpoint: re-evaluating each saved checkpoint, and the kept model, gives them back."""
    from lcm_hf import LcmForBeiPrediction

    train, evaluation = data
    model = tiny_model(momentum_epochs=1, readout_policy="best_layer")
    args = training_args(tmp_path / "run", num_train_epochs=4, save_strategy="epoch", load_best_model_at_end=True,
                         metric_for_best_model="mean/balanced_accuracy")
    trainer = LcmTrainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collate)
    trainer.train()
    logged = {entry["step"]: entry for entry in trainer.state.log_history if "eval_loss" in entry}
    keys = ["eval_sex/roc_auc", "eval_diagnosis/roc_auc", "eval_mean/balanced_accuracy", "eval_loss",
            "eval_sex/subject/roc_auc"]
    checkpoints = sorted((tmp_path / "run").glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    assert len(checkpoints) == 4
    for checkpoint in checkpoints:
        saved = LcmForBeiPrediction.from_pretrained(checkpoint)
        again = LcmTrainer(model=saved, args=training_args(tmp_path / "again"), eval_dataset=evaluation,
                           data_collator=collate).evaluate()
        step = int(checkpoint.name.split("-")[1])
        assert saved.config.readout_layers, checkpoint  # every checkpoint from the stage switch on ships layers
        for key in keys:
            assert logged[step][key] == pytest.approx(again[key], abs=1e-5), (checkpoint.name, key)
    kept = LcmTrainer(model=trainer.model, args=training_args(tmp_path / "kept"), eval_dataset=evaluation,
                      data_collator=collate).evaluate()
    assert trainer.state.best_metric == pytest.approx(kept["eval_mean/balanced_accuracy"], abs=1e-9)
    assert trainer.model.config.readout_layers == checkpoint_readout_layers(trainer.state.best_model_checkpoint)[1]


def test_early_stopping_stops_after_patience(tmp_path, data):
    train, evaluation = data
    model = tiny_model(momentum_epochs=0, readout_policy="max")
    box = []
    args = training_args(tmp_path, num_train_epochs=6, save_strategy="epoch", load_best_model_at_end=True,
                         metric_for_best_model="mean/subject/roc_auc", save_total_limit=1)
    args.early_stopping_patience = 2
    trainer = LcmTrainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                         data_collator=collate, compute_metrics=scripted(box, [0.8, 0.7, 0.6, 0.9, 0.9, 0.9]))
    box.append(trainer)
    trainer.train()
    summary = selection_summary(trainer)
    assert summary["stopped_early"] and summary["last_epoch"] == 3.0 and summary["best_epoch"] == 1.0


def test_selection_metric_falls_back_to_loss_without_categorical_beis(tmp_path):
    from lcm_hf import LcmConfig

    args = training_args(tmp_path, save_strategy="epoch", load_best_model_at_end=True,
                         metric_for_best_model="mean/subject/roc_auc")
    config = LcmConfig(num_rois=8, hidden_size=16, num_attention_heads=2, beis=[BEIS[2]])
    assert resolve_selection_metric(args, config) == "loss"
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False


def test_selection_metric_window_level_without_subject_ids(tmp_path, data):
    _, evaluation = data
    from lcm_hf import LcmConfig

    args = training_args(tmp_path, save_strategy="epoch", load_best_model_at_end=True,
                         metric_for_best_model="mean/subject/roc_auc")
    config = LcmConfig(num_rois=8, hidden_size=16, num_attention_heads=2, beis=BEIS)
    assert resolve_selection_metric(args, config, evaluation.remove_columns(["subject_id"])) == "mean/roc_auc"
    assert args.greater_is_better is True


def test_training_argument_defaults_select_on_validation():
    from lcm_hf.training.arguments import FinetuneTrainingArguments, LcmTrainingArguments

    for cls in (LcmTrainingArguments, FinetuneTrainingArguments):
        args = cls(output_dir="unused", report_to="none", use_cpu=True)
        assert args.load_best_model_at_end and args.metric_for_best_model == "mean/subject/roc_auc"
        assert args.save_strategy == args.eval_strategy == "epoch" and args.greater_is_better
        assert args.early_stopping_patience is None and args.calibrate


def test_early_stopping_needs_model_selection(tmp_path, data):
    train, evaluation = data
    args = training_args(tmp_path)
    args.early_stopping_patience = 2
    with pytest.raises(ValueError, match="--early_stopping_patience: expected --load_best_model_at_end true"):
        LcmTrainer(model=tiny_model(), args=args, train_dataset=train, eval_dataset=evaluation,
                   data_collator=collate)


@pytest.mark.slow
def test_pretrain_recipe_keeps_the_best_epoch_and_calibrates(tmp_path):
    """training/pretrain.py with the defaults: results.json says which epoch was kept; the saved config holds
    that checkpoint's readout layers and the validation temperatures; the reliability diagram is written."""
    import yaml
    from test_training_scripts import TINY, load_script

    output = tmp_path / "model"
    config = tmp_path / "pretrain.yaml"
    settings = {**TINY, "save_strategy": "epoch", "num_train_epochs": 4, "output_dir": str(output)}
    config.write_text(yaml.safe_dump(settings))
    load_script("pretrain").main([str(config)])
    results = json.loads((output / "results.json").read_text())
    selection = results["model_selection"]
    assert selection["kept"] == "best" and selection["metric"] == "mean/subject/roc_auc"
    assert selection["best_epoch"] in (2.0, 3.0, 4.0)  # stage 2 only (momentum_epochs=1)
    saved = json.loads((output / "config.json").read_text())
    kept = os.path.join(str(output), f"checkpoint-{selection['best_step']}")
    assert saved["readout_layers"] == json.loads(open(os.path.join(kept, "config.json")).read())["readout_layers"]
    calibration = results["calibration"]
    assert saved["temperatures"] == calibration["temperatures"] and set(calibration["temperatures"]) >= {"sex"}
    assert (output / "figures" / "calibration.png").is_file()


def test_small_cohort_recipe_fills_defaults_but_explicit_options_win(tmp_path):
    from lcm_hf.training.arguments import (
        LcmDataArguments,
        LcmModelArguments,
        LcmTrainingArguments,
        parse_arguments,
    )
    from lcm_hf.training.named_recipes import TRAINING_RECIPES

    types = (LcmDataArguments, LcmModelArguments, LcmTrainingArguments)
    _, model, training = parse_arguments(
        types, ["--demo", "--recipe", "small_cohort", "--dropout=0.2", "--report_to", "none", "--use_cpu"]
    )
    recipe = TRAINING_RECIPES["small_cohort"]
    assert (model.hidden_size, model.num_hidden_layers) == (recipe["hidden_size"], recipe["num_hidden_layers"])
    assert model.dropout == 0.2  # explicit
    assert training.small_cohort_policy == recipe["small_cohort_policy"] == "on"  # default auto
    assert "small_cohort_policy" not in training.explicit_options  # a recipe's value is not the user's
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"demo": True, "recipe": "small_cohort", "small_cohort_policy": "off",
                                   "report_to": "none"}))
    _, model, training = parse_arguments(types, [str(options)])
    assert training.small_cohort_policy == "off" and model.hidden_size == recipe["hidden_size"]
    with pytest.raises(ValueError, match=r"--recipe: expected one of \['small_cohort'\], got 'tiny'"):
        parse_arguments(types, ["--demo", "--recipe", "tiny", "--report_to", "none"])
