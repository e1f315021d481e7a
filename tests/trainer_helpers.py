"""Small synthetic connectome datasets and trainer factories for the LcmTrainer tests."""

from __future__ import annotations

import numpy as np

NUM_ROIS = 8
BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "diagnosis", "kind": "categorical", "classes": ["control", "patient", "other"]},
    {"name": "age", "kind": "continuous", "loss_weight": 0.01},
]


def synthetic_dataset(
    num_subjects=12, windows=2, seed=0, missing=0.25, num_rois=NUM_ROIS, datasets=("a", "b")
):
    """FC matrices whose blocks depend on sex and diagnosis; labels (n, 3) with NaN holes; subject ids and
    dataset names as columns."""
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    rows = {"connectivity": [], "labels": [], "subject_id": [], "dataset": []}
    for subject in range(num_subjects):
        sex, diagnosis, age = subject % 2, (subject // 2) % 3, 20.0 + 3.0 * subject
        label = np.array([sex, diagnosis, age], dtype=np.float32)
        label[rng.random(3) < missing] = np.nan
        for _ in range(windows):
            series = rng.standard_normal((40, num_rois))
            series[:, 1] += (1.5 * sex) * series[:, 0]
            series[:, 3] += (1.0 * diagnosis) * series[:, 2]
            fc = np.corrcoef(series.T).astype(np.float32)
            rows["connectivity"].append(fc.tolist())
            rows["labels"].append(label.tolist())
            rows["subject_id"].append(f"sub-{subject:02d}")
            rows["dataset"].append(datasets[(subject // 3) % len(datasets)])
    return Dataset.from_dict(rows).with_format(
        "torch", columns=["connectivity", "labels"], output_all_columns=True
    )


def tiny_model(seed=0, **overrides):
    import torch

    from lcm_hf import LcmConfig, LcmForBeiPrediction

    settings = dict(
        num_rois=NUM_ROIS,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        beis=BEIS,
        momentum_epochs=1,
        readout_policy="best_layer",
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    return LcmForBeiPrediction(LcmConfig(**settings))


def training_args(output_dir, **overrides):
    from transformers import TrainingArguments

    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        num_train_epochs=3,
        learning_rate=1e-2,
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=1,
        report_to=[],
        disable_tqdm=True,
        seed=0,
        data_seed=0,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    settings.update(overrides)
    return TrainingArguments(**settings)


def collate(features):
    import torch

    return {
        "connectivity": torch.stack(
            [torch.as_tensor(f["connectivity"], dtype=torch.float32) for f in features]
        ),
        "labels": torch.stack([torch.as_tensor(f["labels"], dtype=torch.float32) for f in features]),
    }
