"""Multitask LCM pretraining over several connectome datasets (default: the simulated demo cohort).

    python training/pretrain.py --output_dir runs/pretrain --num_train_epochs 30
    python training/pretrain.py config.yaml                       # every option from a JSON/YAML file
    accelerate launch training/pretrain.py ...                    # one process
    accelerate launch --multi_gpu --num_processes 2 training/pretrain.py ...   # DDP (gloo on CPU)
    accelerate launch --config_file training/accelerate_configs/multi_gpu.yaml training/pretrain.py ...

Options: `lcm_hf.training_pipeline.LcmDataArguments`, `LcmModelArguments` and `TrainingArguments`
(`--help` lists them). Writes the model + processor, `results.json` (test metrics per BEI, per layer,
per dataset, window and subject level) and TensorBoard logs to `--output_dir`.
"""

import json

from lcm_hf.training_cli import LcmTrainingArguments, parse_arguments
from lcm_hf.training_pipeline import LcmDataArguments, LcmModelArguments, pretrain


def main(argv=None):
    data_args, model_args, training_args = parse_arguments(
        (LcmDataArguments, LcmModelArguments, LcmTrainingArguments), argv
    )
    results = pretrain(data_args, model_args, training_args)
    if training_args.should_log:
        summary = {
            k: v for k, v in results["test_metrics"].items() if "/layer_" not in k and "dataset/" not in k
        }
        print(json.dumps({"readout_layers": results["readout_layers"], "test": summary}, default=str))
    return results


if __name__ == "__main__":
    main()
