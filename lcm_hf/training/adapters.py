"""Adapters for finetuning LCM: LoRA (through `peft`) on the attention projections, and linear probing.

```python
from lcm_hf.training.adapters import apply_lora, save_lora_adapter, load_lora_adapter

model = LcmForBeiPrediction.from_pretrained(pretrained_dir)
model.add_beis([{"name": "parkinson", "kind": "categorical", "classes": ["PD", "control"]}])
peft_model = apply_lora(model, r=8)            # only LoRA A/B + the modules to save are trainable
... train peft_model like the model (LcmTrainer or a plain loop) ...
save_lora_adapter(peft_model, adapter_dir)     # adapter weights + the finetuned BEI vocabulary

base = LcmForBeiPrediction.from_pretrained(pretrained_dir)
peft_model = load_lora_adapter(base, adapter_dir)   # grows the vocabulary as in finetuning, loads the adapter
merged = merge_lora(peft_model)                     # a plain LcmForBeiPrediction again
```

LoRA adapts ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` of every self- and cross-attention.
Fully trained and saved with the adapter (``modules_to_save``) by default: the BEI token embeddings
(new tokens must be learnt), the readout LayerNorm + Linear, and the FC encoder's BatchNorm (whose
running statistics change in training mode even when frozen).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors_lcm import LcmInputError, LcmInputTypeError

LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")
DEFAULT_MODULES_TO_SAVE = ("bei_embeddings", "readout_norm", "readout", "fc_encoder.norm")
LCM_STATE_FILE = "lcm_finetune_config.json"


def _require_peft():
    try:
        import peft
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("LoRA finetuning needs `peft`: pip install 'lcm-hf[peft]'") from error
    return peft


def lora_config(
    r: int = 8,
    lora_alpha: int | None = None,
    lora_dropout: float = 0.0,
    target_modules: Sequence[str] = LORA_TARGET_MODULES,
    modules_to_save: Sequence[str] | None = DEFAULT_MODULES_TO_SAVE,
):
    """The `peft.LoraConfig` used by `apply_lora` (alpha defaults to 2 * r)."""
    peft = _require_peft()
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise LcmInputError(f"expected the LoRA rank `r` to be a positive int, got {r!r}")
    unknown = set(target_modules) - set(LORA_TARGET_MODULES)
    if unknown:
        raise LcmInputError(f"expected `target_modules` among {list(LORA_TARGET_MODULES)}, got {sorted(unknown)}")
    return peft.LoraConfig(
        r=r,
        lora_alpha=lora_alpha if lora_alpha is not None else 2 * r,
        lora_dropout=lora_dropout,
        target_modules=list(target_modules),
        modules_to_save=list(modules_to_save) if modules_to_save else None,
        bias="none",
    )


def apply_lora(
    model,
    r: int = 8,
    lora_alpha: int | None = None,
    lora_dropout: float = 0.0,
    target_modules: Sequence[str] = LORA_TARGET_MODULES,
    modules_to_save: Sequence[str] | None = DEFAULT_MODULES_TO_SAVE,
):
    """Wrap an `LcmForBeiPrediction` in a `peft.PeftModel` with LoRA on the attention projections.

    Everything but the LoRA matrices and `modules_to_save` is frozen. Call `model.add_beis(...)` before
    this when finetuning adds BEIs. The wrapper's forward takes the model's arguments
    (``connectivity``, ``labels``, ``readout_stage``...).

    Returns:
        `peft.PeftModel`.
    """
    from ..modeling_lcm import LcmForBeiPrediction

    peft = _require_peft()
    if not isinstance(model, LcmForBeiPrediction):
        raise LcmInputTypeError(f"expected an LcmForBeiPrediction, got {type(model).__name__}")
    config = lora_config(r, lora_alpha, lora_dropout, target_modules, modules_to_save)
    return peft.get_peft_model(model, config)


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_lora_adapter(peft_model, directory: str | os.PathLike) -> list[str]:
    """Save the adapter (``adapter_config.json`` + ``adapter_model.safetensors``) and the finetuned
    LCM settings (BEI vocabulary, readout policy and selected layers) that `load_lora_adapter` needs."""
    directory = Path(directory)
    peft_model.save_pretrained(str(directory), safe_serialization=True)
    config = peft_model.get_base_model().config
    state = {"beis": config.beis, "readout_policy": config.readout_policy, "readout_layers": config.readout_layers,
             "temperatures": config.temperatures}
    (directory / LCM_STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def load_lora_adapter(base_model, directory: str | os.PathLike, is_trainable: bool = False):
    """Load a saved adapter onto `base_model` (the pretrained `LcmForBeiPrediction` the adapter was
    trained from). BEIs added during finetuning are added to the base model first (their embeddings
    come from the adapter), and the readout policy / selected layers / calibration temperatures of the finetune
    are restored (the base model's temperatures are dropped: they were fitted to the base model's logits).

    Returns:
        `peft.PeftModel` (eval mode unless `is_trainable`).
    """
    from ..configuration_lcm import normalize_beis

    peft = _require_peft()
    directory = Path(directory)
    state_path = directory / LCM_STATE_FILE
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        saved_beis = normalize_beis(state["beis"])
        if saved_beis != base_model.config.beis:
            new = [b for b in saved_beis if b not in base_model.config.beis]
            try:
                base_model.add_beis(new)
            except ValueError as error:
                raise LcmInputError(
                    f"the adapter in {directory} was trained with BEIs {[b['name'] for b in saved_beis]}, which do not "
                    f"extend the base model's {base_model.config.bei_names}: {error}"
                ) from error
            if base_model.config.beis != saved_beis:
                raise LcmInputError(
                    f"the adapter's BEI order {[b['name'] for b in saved_beis]} differs from the base model's after "
                    f"adding its new BEIs: {base_model.config.bei_names}"
                )
        base_model.config.readout_policy = state.get("readout_policy", base_model.config.readout_policy)
        base_model.config.set_readout_layers(state.get("readout_layers"))
        base_model.config.set_temperatures(state.get("temperatures"))  # the finetune's (or none), not the base's
    model = peft.PeftModel.from_pretrained(base_model, str(directory), is_trainable=is_trainable)
    if not is_trainable:
        model.eval()
    return model


def merge_lora(peft_model):
    """Fold the LoRA matrices into the attention weights: a plain `LcmForBeiPrediction` with the
    finetuned weights (saveable with `save_pretrained`, no `peft` needed to load)."""
    return peft_model.merge_and_unload()


MERGED_DIR = "merged"  # the merged model of a LoRA finetune, next to its adapter


def save_merged_lora(peft_model, directory: str | os.PathLike, processor=None) -> str:
    """Save the LoRA finetune as a plain model: the adapter folded into a copy (the trained `peft_model` is left
    as it is), with the processor, so `lcm-hf predict`, the pipeline, the Hub export and attention maps load
    `directory` like any model folder. Returns `directory`."""
    import copy

    merged = merge_lora(copy.deepcopy(peft_model)).eval()
    merged.save_pretrained(directory)
    if processor is not None:
        processor.save_pretrained(directory)
    return os.fspath(directory)


def freeze_for_linear_probe(model, trainable_beis: list[str]) -> list[str]:
    """Linear probing: freeze the whole model except the BEI-token embeddings of `trainable_beis` (rows of the
    embedding, through a gradient mask) and the shared readout (`readout_norm`, `readout`).

    Returns the names of the parameters left trainable. Use with ``weight_decay=0`` so frozen embedding rows
    stay bit-identical.
    """
    config = model.config
    names = config.bei_names
    unknown = [name for name in trainable_beis if name not in names]
    if unknown:
        raise LcmInputError(f"unknown BEIs {unknown} for linear probing; the model has {names}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    embedding = model.get_input_embeddings().weight
    embedding.requires_grad_(True)
    mask = torch.zeros(embedding.shape[0], 1, dtype=embedding.dtype, device=embedding.device)
    for name, token_slice in zip(names, config.bei_token_slices()):
        if name in trainable_beis:
            mask[token_slice] = 1.0
    embedding.register_hook(lambda grad: grad * mask)
    trainable = ["embedding rows of " + ", ".join(trainable_beis)]
    for module_name in ("readout_norm", "readout"):
        for name, parameter in getattr(model, module_name).named_parameters():
            parameter.requires_grad_(True)
            trainable.append(f"{module_name}.{name}")
    return trainable


__all__ = [
    "DEFAULT_MODULES_TO_SAVE",
    "MERGED_DIR",
    "LORA_TARGET_MODULES",
    "apply_lora",
    "freeze_for_linear_probe",
    "load_lora_adapter",
    "lora_config",
    "merge_lora",
    "save_lora_adapter",
    "save_merged_lora",
    "trainable_parameters",
]
