"""The finetuning initialisation guard (lcm_hf.training.init_guard): inner folds on the training subjects only,
the choice rule, and on a tiny simulated cohort the choice between a pretrained start that harms and one that
helps."""

import numpy as np
import pytest
import torch

from lcm_hf.errors_lcm import LcmInputError
from lcm_hf.training import init_guard
from lcm_hf.training.arguments import FinetuneTrainingArguments, LcmFinetuneArguments
from lcm_hf.training.recipes import finetuning_model


def _windows(subjects: int, windows: int = 2, dataset: str = "d"):
    """A labelled window split: `windows` rows per subject, `target` (BEI 1) alternating by subject."""
    from datasets import Dataset

    rows = {"subject_id": [], "dataset": [], "labels": [], "connectivity": []}
    for s in range(subjects):
        for _ in range(windows):
            rows["subject_id"].append(f"s{s}")
            rows["dataset"].append(dataset)
            rows["labels"].append([float("nan"), float(s % 2)])
            rows["connectivity"].append(np.eye(3, dtype=np.float32).tolist())
    return Dataset.from_dict(rows)


BEIS = [{"name": "old", "kind": "categorical", "classes": ["a", "b"]},
        {"name": "target", "kind": "categorical", "classes": ["neg", "pos"]}]


def test_inner_folds_keep_subjects_whole_and_stratify_on_the_new_bei():
    data = _windows(30, windows=3)
    folds = init_guard.inner_folds(data, BEIS, ["target"], 3, seed=0)
    subjects = np.array(data["subject_id"])
    labels = np.array([row[1] for row in data["labels"]])
    held_all = np.concatenate([held for _, held in folds])
    assert sorted(held_all.tolist()) == list(range(len(data)))  # every window held out exactly once
    for fit, held in folds:
        assert not set(subjects[fit]) & set(subjects[held])  # a subject's windows stay in one fold
        assert len(set(subjects[held])) == 10
        assert labels[held].mean() == pytest.approx(0.5, abs=0.11)  # 5 of each class (stratified)


def _args(folds=3, **kwargs):
    return LcmFinetuneArguments(model_name_or_path="unused", new_beis=["target"], init_guard_folds=folds, **kwargs)


class _Vocabulary:
    def to_config(self):
        return BEIS


@pytest.mark.parametrize("pretrained, scratch, choice", [(0.6, 0.8, "scratch"), (0.8, 0.6, "pretrained"),
                                                         (0.7, 0.7, "pretrained")])
def test_scratch_chosen_only_where_it_scores_higher_and_never_on_the_test_split(monkeypatch, tmp_path, pretrained,
                                                                                scratch, choice):
    seen = []

    def keys(split):
        return {f"{d}::{s}" for d, s in zip(split["dataset"], split["subject_id"])}

    def fake_score(finetune_args, vocabulary, fit, held, training_args, seed, metric, build_model):
        seen.append(keys(fit) | keys(held))
        assert not keys(fit) & keys(held)
        return scratch if finetune_args.mode == "scratch" else pretrained

    monkeypatch.setattr(init_guard, "_inner_score", fake_score)
    splits = {"train": _windows(24), "validation": _windows(6, dataset="v"), "test": _windows(8, dataset="t")}
    training_args = FinetuneTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    args = _args(use_lora=True)
    chosen, record = init_guard.choose_initialisation(args, _Vocabulary(), splits, training_args, ["target"],
                                                      build_model=finetuning_model)
    assert record["choice"] == choice and record["subjects"] == 30
    assert record["pretrained"] == [pretrained] * 3 and record["scratch"] == [scratch] * 3
    assert record["metric"] == "mean/subject/roc_auc"
    assert all(len(s) == 30 for s in seen) and len(seen) == 6  # 3 folds x (pretrained, scratch)
    assert not any(name.startswith("t::") for s in seen for name in s)  # no test subject in any inner fold
    if choice == "scratch":
        assert (chosen.mode, chosen.use_lora, chosen.confident_pseudo_label_threshold) == ("scratch", False, None)
        assert "does not help this cohort" in init_guard.guard_sentence(record)
    else:
        assert chosen is args
        assert "pretrained start is kept" in init_guard.guard_sentence(record)
    assert f"{scratch:.3f}" in record["reason"] and f"{pretrained:.3f}" in record["reason"]


def test_guard_off_scratch_mode_and_too_few_subjects_run_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(init_guard, "_inner_score", lambda *a: pytest.fail("no inner fit expected"))
    splits = {"train": _windows(10), "validation": None, "test": _windows(4)}
    training_args = FinetuneTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    for args, words in ((_args(0), "--init_guard_folds 0"), (_args(mode="scratch"), "--mode scratch"),
                        (_args(3), "10 training subjects, fewer than 3 inner folds x 4")):
        chosen, record = init_guard.choose_initialisation(args, _Vocabulary(), splits, training_args, ["target"],
                                                          folds=args.init_guard_folds)
        assert chosen is args and record["choice"] is None and words in record["reason"]
    with pytest.raises(LcmInputError, match="--init_guard_folds: expected an integer >= 0"):
        init_guard.choose_initialisation(_args(), _Vocabulary(), splits, training_args, ["target"], folds=-1)


def test_inner_training_args_train_the_same_budget_without_choosing(tmp_path):
    args = FinetuneTrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to="none",
                                     num_train_epochs=7, learning_rate=0.02, early_stopping_patience=3)
    inner = init_guard.inner_training_args(args, str(tmp_path / "inner"))
    assert (inner.num_train_epochs, inner.learning_rate, inner.per_device_train_batch_size) == (7, 0.02, 16)
    assert inner.output_dir == str(tmp_path / "inner") and args.output_dir == str(tmp_path / "run")
    assert (inner.eval_strategy, inner.save_strategy, inner.load_best_model_at_end) == ("no", "no", False)
    assert inner.early_stopping_patience is None and inner.calibrate is False
    assert args.early_stopping_patience == 3 and args.load_best_model_at_end  # the run's own are untouched


# ----------------------------------------------------------------------------- end to end, tiny simulated cohort
@pytest.fixture(scope="module")
def cohort_and_models(tmp_path_factory):
    """A tiny positive-control cohort and two starting models of one vocabulary: `good` (briefly pretrained on a
    simulated corpus whose BEIs share the target's factors) and `harmful` (the same weights with the attention
    logits scaled x 50, so the softmax saturates and the few finetuning steps cannot move it)."""
    from lcm_hf.data.simulation import TransferWorld
    from lcm_hf.modeling_lcm import LcmForBeiPrediction
    from lcm_hf.processing_lcm import LcmProcessor
    from lcm_hf.training.arguments import LcmDataArguments, LcmModelArguments, LcmTrainingArguments
    from lcm_hf.training.recipes import pretrain

    world = TransferWorld(num_rois=12, num_networks=4, num_shared_factors=2, num_private_factors=2,
                          num_pretraining_datasets=2, beis_per_dataset=2, sites_per_dataset=1, sigma_factor=0.4,
                          noise_sd=0.1, seed=1)
    root = tmp_path_factory.mktemp("guard")
    good = str(root / "good")
    corpus = world.pretraining_corpus(400, seed=0)
    pretrain(corpus.datasets, LcmDataArguments(categorical_columns=world.pretraining_beis, baseline=False),
             LcmModelArguments(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
             LcmTrainingArguments(output_dir=good, num_train_epochs=4, learning_rate=3e-3, use_cpu=True,
                                  report_to="none", disable_tqdm=True, save_strategy="no", calibrate=False,
                                  logging_strategy="no", small_cohort_policy="on", load_best_model_at_end=False))
    harmful = str(root / "harmful")
    model = LcmForBeiPrediction.from_pretrained(good)
    with torch.no_grad():
        for layer in model.model.layers:
            for module in layer.modules():
                if hasattr(module, "q_proj"):
                    module.q_proj.weight.mul_(50.0)
                    module.q_proj.bias.mul_(50.0)
    model.save_pretrained(harmful)
    LcmProcessor.from_pretrained(good).save_pretrained(harmful)
    return world, good, harmful, root


@pytest.mark.slow
@pytest.mark.parametrize("start, expected", [("harmful", "scratch"), ("good", "pretrained")])
def test_guard_picks_scratch_over_a_harmful_start_and_keeps_a_helpful_one(cohort_and_models, start, expected):
    from datasets import DatasetDict

    from lcm_hf.data.simulation import TARGET
    from lcm_hf.training.arguments import LcmDataArguments
    from lcm_hf.training.recipes import prepare_finetuning_data

    world, good, harmful, root = cohort_and_models
    model_dir = good if start == "good" else harmful
    cohort = world.downstream_cohort(60, "positive", seed=0).datasets["positive"]
    splits = DatasetDict({"train": cohort.select(range(48)), "validation": cohort.select(range(48, 54)),
                          "test": cohort.select(range(54, 60))})
    prepared = prepare_finetuning_data({"positive": splits}, LcmDataArguments(baseline=False), model_dir, [TARGET])
    args = LcmFinetuneArguments(model_name_or_path=model_dir, new_beis=[TARGET])
    training_args = FinetuneTrainingArguments(output_dir=str(root / f"run-{start}"), use_cpu=True, report_to="none",
                                              disable_tqdm=True, seed=0, num_train_epochs=4)
    chosen, record = init_guard.choose_initialisation(args, prepared.vocabulary, prepared.splits, training_args,
                                                      [TARGET], build_model=finetuning_model)
    assert record["choice"] == expected, record["reason"]
    assert record["subjects"] == 54  # train + validation, never the 6 test subjects


def test_the_run_report_and_the_cv_summary_say_the_choice():
    from lcm_hf.training.cv_report import cv_summary
    from lcm_hf.training.report import notice_lines

    record = {"choice": "scratch", "reason": "inner 3-fold mean/subject/roc_auc on the 30 training subjects: "
              "pretrained start 0.600, scratch 0.800: the pretrained start does not help this cohort"}
    sentence = init_guard.guard_sentence(record)
    assert sentence.startswith("Initialisation guard: scratch start (inner 3-fold")
    assert sentence in notice_lines({"init_guard_sentence": sentence})
    assert init_guard.guard_sentence({"choice": None, "reason": "--init_guard_folds 0: x"}).startswith(
        "Initialisation guard: off (--init_guard_folds 0")
    cv = {"description": {"folds": 2}, "levels": [], "pooled": [], "init": ["scratch", "pretrained"]}
    assert cv_summary(cv)["init"] == ["scratch", "pretrained"]
