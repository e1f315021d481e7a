"""LcmTrainer: stage and selected layers are checkpoint state; resuming equals not stopping."""

import json
import os

import pytest
import torch
from trainer_helpers import collate, synthetic_dataset, tiny_model, training_args
from transformers import TrainerCallback

from lcm_hf.training.trainer import LcmReadoutScheduleCallback, LcmTrainer


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(num_subjects=12, seed=0), synthetic_dataset(num_subjects=6, seed=1)


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path, data):
    train, evaluation = data  # 24 windows, batch 4 -> 6 steps per epoch; stage 2 from step 7

    def run(output_dir, init_seed=0, stop_at=None, resume=None):
        model = tiny_model(seed=init_seed, momentum_epochs=1, readout_policy="best_layer")
        args = training_args(output_dir, num_train_epochs=2, save_strategy="steps", save_steps=4)
        trainer = LcmTrainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=evaluation,
            data_collator=collate,
            callbacks=[StopAt(stop_at)] if stop_at else None,
        )
        trainer.train(resume_from_checkpoint=resume)
        return trainer, model

    full_trainer, full = run(tmp_path / "full")
    interrupted_trainer, _ = run(
        tmp_path / "resumed", stop_at=8
    )  # mid epoch 2, in stage 2, after a selection
    assert interrupted_trainer.state.global_step == 8
    assert interrupted_trainer.schedule.readout_layers  # selected at the end of epoch 1
    # A fresh process: another init (weights come from the checkpoint), no selection in its config.
    resumed_trainer, resumed = run(
        tmp_path / "resumed", init_seed=123, resume=str(tmp_path / "resumed" / "checkpoint-8")
    )

    assert resumed_trainer.state.global_step == full_trainer.state.global_step == 12
    assert resumed_trainer.schedule.stage == full_trainer.schedule.stage == "adaptive"
    assert resumed.config.readout_layers == full.config.readout_layers
    assert resumed_trainer.schedule.selection_history == full_trainer.schedule.selection_history
    full_state, resumed_state = full.state_dict(), resumed.state_dict()
    for name, tensor in full_state.items():
        torch.testing.assert_close(resumed_state[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_resume_restores_selection_before_stage_two_training(tmp_path, data):
    """The restored layers must be in the config before the first resumed step (not only after an eval)."""
    train, evaluation = data
    model = tiny_model(momentum_epochs=1, readout_policy="best_layer")
    args = training_args(tmp_path, num_train_epochs=2, save_strategy="steps", save_steps=7)
    trainer = LcmTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collate,
        callbacks=[StopAt(7)],
    )
    trainer.train()
    with open(os.path.join(tmp_path, "checkpoint-7", "config.json")) as handle:
        selected = json.load(handle)["readout_layers"]
    assert selected

    fresh = tiny_model(seed=5, momentum_epochs=1, readout_policy="best_layer")
    seen = []

    class Probe(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            seen.append((state.global_step, dict(model.config.readout_layers or {})))

    resumed = LcmTrainer(
        model=fresh,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collate,
        callbacks=[Probe()],
    )
    resumed.train(resume_from_checkpoint=True)
    assert seen[0] == (7, selected)
    assert isinstance(resumed.schedule, LcmReadoutScheduleCallback) and resumed.schedule.stage == "adaptive"
