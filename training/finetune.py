"""Finetune a pretrained LCM on a dataset with new BEIs.

    python training/finetune.py --model_name_or_path runs/pretrain --dataset_dirs data/my_cohort \
        --categorical_columns sex --new_beis diagnosis --output_dir runs/finetune
    python training/finetune.py --model_name_or_path runs/pretrain --demo --output_dir runs/finetune
    python training/finetune.py ... --mode linear_probe --output_dir runs/probe
    python training/finetune.py ... --mode scratch --output_dir runs/scratch
    python training/finetune.py ... --use_lora --lora_r 8 --output_dir runs/lora
    python training/finetune.py config.yaml
    accelerate launch [--config_file training/accelerate_configs/multi_gpu.yaml] training/finetune.py ...

Modes: `semi_supervised` (default: pretrained model + new BEI tokens, pretrained BEIs trained with true
labels, declared pseudo-labels and, with `--confident_pseudo_label_threshold 0.9`, the pretrained model's
confident predictions), `linear_probe` (frozen model; only the new BEIs' tokens and the readout train) and
`scratch` (same architecture, random init). The same subject-level split for the same `--split_seed`, so
the three can be compared. Same two-stage readout schedule as pretraining.

LoRA: `--use_lora` (with `semi_supervised`; `--lora_r`, `--lora_alpha`, `--lora_dropout`) trains LoRA adapters
on the attention projections plus the BEI tokens, readout and FC-encoder norm, and saves the adapter to
`--output_dir`; `lcm_hf.training.adapters.load_lora_adapter(LcmForBeiPrediction.from_pretrained(pretrained),
output_dir)` reloads it (`merge_lora` folds it into a plain model).
"""

import json

from pretrain import load_datasets

from lcm_hf.training.arguments import (
    FinetuneTrainingArguments,
    LcmDataArguments,
    LcmFinetuneArguments,
    parse_arguments,
)
from lcm_hf.training.recipes import finetune


def main(argv=None):
    data_args, finetune_args, training_args = parse_arguments(
        (LcmDataArguments, LcmFinetuneArguments, FinetuneTrainingArguments), argv
    )
    if finetune_args.model_name_or_path is None:
        finetune_args.model_name_or_path = "runs/pretrain"
    if finetune_args.mode == "linear_probe":
        training_args.weight_decay = 0.0  # frozen embedding rows must not decay
    datasets = load_datasets(data_args, "finetune")
    results = finetune(datasets, data_args, finetune_args, training_args)
    if training_args.should_log:
        summary = {
            k: v for k, v in results["test_metrics"].items() if "/layer_" not in k and "dataset/" not in k
        }
        print(
            json.dumps(
                {"mode": results["mode"], "new_beis": results["new_beis"], "test": summary}, default=str
            )
        )
    return results


if __name__ == "__main__":
    main()
