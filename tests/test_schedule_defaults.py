"""One source for the readout schedule's defaults: the model config's `momentum_epochs` (5, the paper's) and
`readout_policy`; a value given explicitly wins and the config records the value that ran."""

import pytest
import torch
from trainer_helpers import BEIS, NUM_ROIS, collate, synthetic_dataset, training_args

from lcm_hf import LcmConfig, LcmForBeiPrediction
from lcm_hf.configuration_lcm import DEFAULT_MOMENTUM_EPOCHS, DEFAULT_READOUT_POLICY
from lcm_hf.training.arguments import (
    LcmDataArguments,
    LcmModelArguments,
    LcmTrainingArguments,
    parse_arguments,
)
from lcm_hf.training.trainer import LcmTrainer

PAPER_MOMENTUM_EPOCHS = 5  # the paper's stage 1 (an independent reference for the config's default)


@pytest.fixture(scope="module")
def train():
    return synthetic_dataset(num_subjects=4, windows=2, seed=0)  # 8 windows: one step per epoch


def default_model():
    """A model whose config leaves momentum_epochs and readout_policy at their defaults."""
    torch.manual_seed(0)
    return LcmForBeiPrediction(LcmConfig(num_rois=NUM_ROIS, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=32, beis=BEIS))


def lcm_arguments(output_dir, **overrides):
    """`LcmTrainingArguments` with the settings of `training_args` (no evaluation, one step per epoch)."""
    settings = dict(output_dir=str(output_dir), num_train_epochs=PAPER_MOMENTUM_EPOCHS + 1, eval_strategy="no",
                    save_strategy="no", per_device_train_batch_size=8, learning_rate=1e-2, logging_steps=1,
                    report_to=[], disable_tqdm=True, seed=0, data_seed=0, use_cpu=True, dataloader_num_workers=0)
    return LcmTrainingArguments(**{**settings, **overrides})


def stage_2_start(trainer) -> int:
    """The first epoch the schedule trained in stage 2."""
    return next(epoch for epoch, stage in trainer.schedule.stage_history if stage == "adaptive")


def test_lcm_and_plain_training_arguments_run_the_same_stage_1(tmp_path, train):
    assert DEFAULT_MOMENTUM_EPOCHS == PAPER_MOMENTUM_EPOCHS and LcmConfig().momentum_epochs == PAPER_MOMENTUM_EPOCHS
    assert LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]).momentum_epochs is None
    starts, recorded = [], []
    for name, make in (("lcm", lcm_arguments), ("plain", lambda d: training_args(
            d, num_train_epochs=PAPER_MOMENTUM_EPOCHS + 1, eval_strategy="no", per_device_train_batch_size=8))):
        model = default_model()
        trainer = LcmTrainer(model=model, args=make(tmp_path / name), train_dataset=train, data_collator=collate)
        trainer.train()
        starts.append(stage_2_start(trainer))
        recorded.append(model.config.momentum_epochs)
        assert trainer.schedule.ran(model.config)["momentum_from"] == "the model config"
    assert starts == [PAPER_MOMENTUM_EPOCHS, PAPER_MOMENTUM_EPOCHS]
    assert recorded == [PAPER_MOMENTUM_EPOCHS, PAPER_MOMENTUM_EPOCHS]


def test_explicit_momentum_epochs_wins_and_the_config_records_it(tmp_path, train):
    model = default_model()
    args = lcm_arguments(tmp_path, momentum_epochs=2)
    trainer = LcmTrainer(model=model, args=args, train_dataset=train, data_collator=collate)
    trainer.train()
    assert stage_2_start(trainer) == 2
    assert model.config.momentum_epochs == 2
    ran = trainer.schedule.ran(model.config)
    assert ran["momentum_epochs"] == 2 and ran["momentum_from"] == "the training arguments"
    assert ran["readout_policy"] == model.config.readout_policy
    reloaded = tmp_path / "saved"
    trainer.save_model(str(reloaded))
    assert LcmConfig.from_pretrained(reloaded).momentum_epochs == 2


def test_negative_momentum_epochs_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"--momentum_epochs: expected an integer >= 0, got -1"):
        LcmTrainingArguments(output_dir=str(tmp_path), momentum_epochs=-1, use_cpu=True, report_to=[])


def test_script_options_default_to_the_config(tmp_path):
    """The scripts' parsed options leave the schedule to the config; a flag given wins; the small_cohort recipe
    leaves stage 1 to the config (its study ran the config's 5 momentum epochs), and a flag still wins."""
    from lcm_hf import BeiVocabulary
    from lcm_hf.training.recipes import pretrain_model

    types = (LcmDataArguments, LcmModelArguments, LcmTrainingArguments)
    base = ["--demo", "--output_dir", str(tmp_path), "--use_cpu", "--report_to", "none"]
    _, model_args, training = parse_arguments(types, base)
    assert model_args.readout_policy is None and training.momentum_epochs is None
    vocabulary = BeiVocabulary(BEIS[:1])
    config = pretrain_model(NUM_ROIS, vocabulary, model_args, seed=0).config
    assert (config.readout_policy, config.momentum_epochs) == (DEFAULT_READOUT_POLICY, PAPER_MOMENTUM_EPOCHS)

    _, model_args, training = parse_arguments(types, base + ["--readout_policy", "best_layer", "--momentum_epochs", "3"])
    assert training.momentum_epochs == 3
    assert pretrain_model(NUM_ROIS, vocabulary, model_args, seed=0).config.readout_policy == "best_layer"

    assert parse_arguments(types, base + ["--recipe", "small_cohort"])[2].momentum_epochs is None  # the config's
    assert parse_arguments(types, base + ["--recipe", "small_cohort", "--momentum_epochs", "4"])[2].momentum_epochs == 4


def test_a_stage_1_as_long_as_the_run_is_said(tmp_path, train):
    """A run no longer than the config's stage 1 never reaches the readout policy: one warning says so."""
    model = default_model()
    trainer = LcmTrainer(model=model, args=lcm_arguments(tmp_path, num_train_epochs=2), train_dataset=train,
                         data_collator=collate)
    with pytest.warns(UserWarning, match=r"stage 1 \(5 momentum epochs, from the model config\) covers all 2 training"):
        trainer.train()
    assert all(stage == "momentum" for _, stage in trainer.schedule.stage_history)
