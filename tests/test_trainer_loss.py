"""LcmTrainer loss: missing labels are ignored; gradient accumulation equals the full batch."""

import torch
from trainer_helpers import collate, synthetic_dataset, tiny_model, training_args

from lcm_hf.training.trainer import LcmTrainer


def _batch_with_holes():
    data = synthetic_dataset(num_subjects=4, windows=2, seed=3, missing=0.0)
    batch = collate([data[i] for i in range(8)])
    batch["labels"][:, 1] = float("nan")  # diagnosis missing everywhere
    batch["labels"][:5, 0] = float("nan")  # sex known for 3 samples only
    return batch


def test_missing_labels_contribute_nothing(tmp_path):
    batch = _batch_with_holes()
    model = tiny_model(fc_norm="layernorm", dropout=0.0, attention_dropout=0.0, readout_policy="mean")
    trainer = LcmTrainer(model=model, args=training_args(tmp_path, eval_strategy="no"), data_collator=collate)
    model.train()
    counts = (~torch.isnan(batch["labels"])).sum(0)
    loss = trainer.compute_loss(model, batch, num_items_in_batch=counts)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    # Equal to the loss of a model that does not weigh diagnosis at all...
    out = model(connectivity=batch["connectivity"], labels=batch["labels"], readout_stage="momentum")
    assert out.bei_label_counts.tolist() == [3, 0, 8]
    assert out.bei_loss_sums[1].item() == 0.0
    # ... and to the per-BEI means over the labelled samples only.
    logits = out.logits
    sex = torch.nn.functional.cross_entropy(logits[5:, 0:2], batch["labels"][5:, 0].long())
    age = torch.nn.functional.mse_loss(logits[:, 5], batch["labels"][:, 2])
    torch.testing.assert_close(loss, sex + 0.01 * age)


def test_training_with_a_bei_never_labelled_equals_training_without_its_loss(tmp_path):
    train = synthetic_dataset(num_subjects=12, seed=0)
    unlabelled = train.map(lambda row: {"labels": [row["labels"][0], float("nan"), row["labels"][2]]})

    def run(dataset, beis_weights):
        model = tiny_model(fc_norm="layernorm", dropout=0.0, attention_dropout=0.0, readout_policy="mean")
        for bei, weight in zip(model.config.beis, beis_weights):
            bei["loss_weight"] = weight
        args = training_args(tmp_path, num_train_epochs=1, eval_strategy="no", optim="sgd", learning_rate=0.1)
        LcmTrainer(model=model, args=args, train_dataset=dataset, data_collator=collate).train()
        return model

    a = run(unlabelled, [1.0, 1.0, 0.01])
    b = run(train, [1.0, 0.0, 0.01])  # diagnosis labelled but weighted 0
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


def _train_with_accumulation(tmp_path, batch_size, accumulation, trainer_class=LcmTrainer):
    data = synthetic_dataset(num_subjects=8, windows=2, seed=4, missing=0.4)  # 16 windows, uneven holes
    model = tiny_model(fc_norm="layernorm", dropout=0.0, attention_dropout=0.0, readout_policy="mean")
    args = training_args(
        tmp_path / f"ga{batch_size}x{accumulation}",
        num_train_epochs=1,
        eval_strategy="no",
        optim="sgd",
        learning_rate=0.05,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_grad_norm=0.0,
        lr_scheduler_type="constant",
    )
    trainer_class(model=model, args=args, train_dataset=data, data_collator=collate).train()
    return model


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    full = _train_with_accumulation(tmp_path, 8, 1)
    for batch_size, accumulation in ((4, 2), (2, 4)):
        split = _train_with_accumulation(tmp_path, batch_size, accumulation)
        for (name, x), y in zip(full.state_dict().items(), split.state_dict().values()):
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-6, msg=f"{batch_size}x{accumulation}: {name}")


class MeanOfMicroBatchMeans(LcmTrainer):
    """The naive scheme: each micro-batch's own per-BEI means, divided by the accumulation steps."""

    loss_is_scaled_for_ga = False

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        return super().get_batch_samples(epoch_iterator, num_batches, device)[0], None


def test_naive_accumulation_differs_so_the_equivalence_test_can_fail(tmp_path):
    full = _train_with_accumulation(tmp_path, 8, 1)
    naive = _train_with_accumulation(tmp_path, 2, 4, trainer_class=MeanOfMicroBatchMeans)
    differences = [
        (x - y).abs().max().item() for x, y in zip(full.state_dict().values(), naive.state_dict().values())
    ]
    assert max(differences) > 1e-4
