"""LcmTrainer behaviour: the two-stage schedule and best_layer selection."""

import functools
import json
import math
import os

import pytest
import torch
from trainer_helpers import collate, synthetic_dataset, tiny_model, training_args

from lcm_hf import LcmForBeiPrediction
from lcm_hf.training.metrics import best_layers
from lcm_hf.training.trainer import LcmTrainer


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(num_subjects=12, seed=0), synthetic_dataset(num_subjects=6, seed=1)


def record_stages(model):
    """Wrap `model.forward` to record the `readout_stage` of every training forward pass."""
    stages, forward = [], model.forward

    @functools.wraps(forward)  # keeps the signature the Trainer inspects for its columns
    def spy(*args, **kwargs):
        if model.training:
            stages.append(kwargs.get("readout_stage"))
        return forward(*args, **kwargs)

    model.forward = spy
    return stages


def test_stage_switches_after_momentum_epochs(tmp_path, data):
    train, _ = data
    model = tiny_model(momentum_epochs=2, readout_policy="max")
    stages = record_stages(model)
    args = training_args(tmp_path, num_train_epochs=3, eval_strategy="no")
    trainer = LcmTrainer(model=model, args=args, train_dataset=train, data_collator=collate)
    trainer.train()
    steps_per_epoch = math.ceil(len(train) / 4)
    assert stages == ["momentum"] * (2 * steps_per_epoch) + ["adaptive"] * steps_per_epoch
    assert trainer.schedule.stage == "adaptive"
    assert trainer.schedule.stage_history == [[0, "momentum"], [1, "momentum"], [2, "adaptive"]]
    assert trainer.readout_stage == "adaptive"  # outside training: inference behaviour


def test_zero_momentum_epochs_trains_adaptive_from_the_start(tmp_path, data):
    train, _ = data
    model = tiny_model(momentum_epochs=0, readout_policy="max")
    stages = record_stages(model)
    trainer = LcmTrainer(
        model=model,
        args=training_args(tmp_path, num_train_epochs=1, eval_strategy="no"),
        train_dataset=train,
        data_collator=collate,
    )
    trainer.train()
    assert set(stages) == {"adaptive"}


def test_best_layer_selected_from_eval_metrics_and_saved(tmp_path, data):
    train, evaluation = data
    model = tiny_model(momentum_epochs=1, readout_policy="best_layer")
    args = training_args(tmp_path, num_train_epochs=3, save_strategy="epoch")
    trainer = LcmTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collate
    )
    trainer.train()

    evals = [log for log in trainer.state.log_history if "eval_loss" in log]
    assert len(evals) == 3
    # Selection happens from the stage switch on (the eval closing the last momentum epoch included).
    history = trainer.schedule.selection_history
    assert [entry["epoch"] for entry in history] == [1.0, 2.0, 3.0]
    for entry, log in zip(history, evals):
        assert entry["layers"] == best_layers(log, model.config.beis)
    expected = best_layers(evals[-1], model.config.beis)
    assert set(expected) == {"sex", "diagnosis"}  # categorical BEIs only
    assert model.config.readout_layers == expected

    # The checkpoint holds the selection in its config and in the trainer state.
    checkpoint = os.path.join(tmp_path, f"checkpoint-{trainer.state.global_step}")
    with open(os.path.join(checkpoint, "config.json")) as handle:
        assert json.load(handle)["readout_layers"] == expected
    with open(os.path.join(checkpoint, "trainer_state.json")) as handle:
        stored = json.load(handle)["stateful_callbacks"]["LcmReadoutScheduleCallback"]
    assert stored["attributes"]["readout_layers"] == expected
    assert stored["attributes"]["stage"] == "adaptive"

    # save_pretrained / from_pretrained keeps them, and inference reads the selected layer.
    trainer.save_model(str(tmp_path / "final"))
    reloaded = LcmForBeiPrediction.from_pretrained(str(tmp_path / "final")).eval()
    assert reloaded.config.readout_layers == expected
    batch = collate([evaluation[i] for i in range(4)])
    with torch.no_grad():
        out = reloaded(connectivity=batch["connectivity"])
    sex_slice = reloaded.config.bei_token_slices()[0]
    torch.testing.assert_close(out.logits[:, sex_slice], out.layer_logits[:, expected["sex"], sex_slice])
