"""Convert checkpoints of the paper's public reference code into `LcmForBeiPrediction`.

The reference code saves two state dicts per model (torch pickles):

- backbone (the FC encoder): ``lin.0.weight`` (E, N), ``lin.0.bias`` (E,), ``lin.1.*``
  (BatchNorm1d: ``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``);
- head (the decoder): ``object_query.weight`` (P, E); per layer ``i``
  ``decoder.layers.{i}.self_attn.{in_proj_weight (3E, E), in_proj_bias (3E,), out_proj.weight,
  out_proj.bias}``, the same under ``decoder.layers.{i}.multihead_attn.``,
  ``decoder.layers.{i}.linear1.{weight (F, E), bias}``, ``linear2.{weight (E, F), bias}``,
  ``decoder.layers.{i}.norm{1,2,3}.{weight,bias}``; ``decoder.norm.{weight,bias}``;
  ``class_embed.{weight (1, E), bias (1,)}`` shared by every token (``sex_embed`` / ``age_embed``
  exist but are unused); a finetuned head adds ``finetune_query.weight`` (P_new, E).

Token order of the reference: the dataset class tokens, then sex (2 tokens), then age (1 token);
a finetuned head inserts its ``finetune_query`` tokens before the last three. The reference
layers are post-norm DETR layers, exactly `LcmDecoderLayer` with ``norm_position="post"``.

Mapping (reference -> lcm_hf):

================================================  ==============================================
``lin.0.{weight,bias}``                           ``model.fc_encoder.projection.*``
``lin.1.*`` (with running stats)                  ``model.fc_encoder.norm.*``
``object_query.weight`` (+ ``finetune_query``)    ``model.bei_embeddings.weight``
``decoder.layers.i.self_attn.in_proj_*``          ``model.layers.i.self_attn.{q,k,v}_proj.*``
``decoder.layers.i.self_attn.out_proj.*``         ``model.layers.i.self_attn.out_proj.*``
``decoder.layers.i.multihead_attn.*``             ``model.layers.i.cross_attn.*`` (same split)
``decoder.layers.i.linear{1,2}.*``                ``model.layers.i.feed_forward.linear{1,2}.*``
``decoder.layers.i.norm{1,2,3}.*``                ``model.layers.i.norm{1,2,3}.*``
``decoder.norm.*``                                ``readout_norm.*``
``class_embed.*``                                 ``readout.*``
================================================  ==============================================
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from .configuration_lcm import LcmConfig, normalize_beis
from .modeling_lcm import LcmForBeiPrediction

#: Head keys the reference code saves but never uses for predictions.
UNUSED_HEAD_PREFIXES = ("sex_embed.", "age_embed.")
#: Prefixes that wrappers (DataParallel, DDP, torch.compile) add to every key.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
BATCHNORM_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_LAYER_KEY = re.compile(r"^decoder\.layers\.(\d+)\.")


class CheckpointConversionError(ValueError):
    """A reference checkpoint does not match the expected layout or the given vocabulary."""


def load_bei_list(path: str | os.PathLike) -> list[dict]:
    """The ``config.beis`` list, in reference token order, from a JSON file.

    Parameters
    ----------
    path : str or PathLike
        JSON: the list itself, or a ``config.json``-like object holding it under ``"beis"``.

    Returns
    -------
    list of dict

    Raises
    ------
    OSError, json.JSONDecodeError
        The file cannot be read or parsed.
    """
    beis = json.loads(Path(path).read_text())
    if isinstance(beis, dict) and "beis" in beis:
        beis = beis["beis"]
    return beis


def load_reference_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load one reference state dict with ``torch.load(weights_only=True)`` (no arbitrary pickles).

    Accepts a bare state dict or a dict wrapping it under ``"state_dict"`` / ``"model"``, and strips
    ``module.`` / ``_orig_mod.`` prefixes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return _as_state_dict(obj, source=path)


def _as_state_dict(obj, source: str = "state dict") -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and obj and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointConversionError(
            f"expected {source} to hold a state dict (a mapping of parameter names to tensors), "
            f"got {type(obj).__name__}"
        )
    state = {}
    for key, value in obj.items():
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        state[key] = value
    return state


def _get(state: Mapping[str, torch.Tensor], key: str, shape: tuple[int, ...], which: str) -> torch.Tensor:
    if key not in state:
        raise CheckpointConversionError(f"the {which} state dict has no `{key}`; expected shape {shape}")
    tensor = state[key]
    if tuple(tensor.shape) != tuple(shape):
        raise CheckpointConversionError(
            f"shape mismatch for `{key}` in the {which} state dict: expected {tuple(shape)}, got {tuple(tensor.shape)}"
        )
    return tensor


def infer_reference_config(
    backbone: Mapping[str, torch.Tensor],
    head: Mapping[str, torch.Tensor],
    beis: list[dict],
    num_attention_heads: int = 8,
    **config_kwargs,
) -> LcmConfig:
    """The `LcmConfig` of a reference checkpoint: N, E from ``lin.0.weight``, L from the decoder layer
    indices, the FFN width from ``linear1``; heads cannot be read from weights (default 8, as in the
    reference code). `beis` must list exactly as many tokens as the head has queries."""
    backbone, head = _as_state_dict(backbone, "the backbone"), _as_state_dict(head, "the head")
    if "lin.0.weight" not in backbone:
        raise CheckpointConversionError(
            "the backbone state dict has no `lin.0.weight` (the FC encoder Linear(N -> E)); "
            f"its keys start with {sorted(backbone)[:5]}"
        )
    hidden_size, num_rois = backbone["lin.0.weight"].shape
    layer_ids = sorted({int(m.group(1)) for key in head if (m := _LAYER_KEY.match(key))})
    if not layer_ids:
        raise CheckpointConversionError(
            f"the head state dict has no `decoder.layers.<i>.*` keys; its keys start with {sorted(head)[:5]}"
        )
    if layer_ids != list(range(len(layer_ids))):
        raise CheckpointConversionError(f"the head's decoder layers are not numbered 0..L-1: {layer_ids}")
    linear1 = "decoder.layers.0.linear1.weight"
    if linear1 not in head:
        raise CheckpointConversionError(f"the head state dict has no `{linear1}`")
    intermediate_size = head[linear1].shape[0]
    settings = dict(
        num_rois=int(num_rois),
        hidden_size=int(hidden_size),
        num_hidden_layers=len(layer_ids),
        num_attention_heads=num_attention_heads,
        intermediate_size=int(intermediate_size),
        norm_position="post",
        fc_norm="batchnorm",
        hidden_act="relu",
        beis=beis,
    )
    settings.update(config_kwargs)
    config = LcmConfig(**settings)
    num_queries = _query_rows(head, int(hidden_size))
    if config.num_bei_tokens != num_queries:
        raise CheckpointConversionError(
            f"the vocabulary lists {config.num_bei_tokens} BEI tokens ({_describe(config.beis)}) but the head has "
            f"{num_queries} query tokens (`object_query.weight`"
            + (" + `finetune_query.weight`" if "finetune_query.weight" in head else "")
            + "); give the BEIs in the reference token order: dataset classes, [finetune classes], sex (2), age (1)"
        )
    return config


def _describe(beis: list[dict]) -> str:
    return ", ".join(f"{b['name']}: {len(b['classes']) if b['kind'] == 'categorical' else 1}" for b in beis)


def _query_rows(head: Mapping[str, torch.Tensor], hidden_size: int) -> int:
    if "object_query.weight" not in head:
        raise CheckpointConversionError("the head state dict has no `object_query.weight` (P, E)")
    rows = 0
    for key in ("object_query.weight", "finetune_query.weight"):
        if key in head:
            tensor = head[key]
            if tensor.dim() != 2 or tensor.shape[1] != hidden_size:
                raise CheckpointConversionError(
                    f"shape mismatch for `{key}`: expected (P, {hidden_size}), got {tuple(tensor.shape)}"
                )
            rows += tensor.shape[0]
    return rows


def reference_token_embeddings(head: Mapping[str, torch.Tensor], hidden_size: int) -> torch.Tensor:
    """The BEI token embeddings (P, E) in lcm_hf order: ``object_query`` with ``finetune_query`` (if any)
    inserted before its last three tokens (sex, sex, age)."""
    _query_rows(head, hidden_size)
    queries = head["object_query.weight"]
    if "finetune_query.weight" not in head:
        return queries.clone()
    if queries.shape[0] < 3:
        raise CheckpointConversionError(
            f"a finetuned head needs `object_query.weight` with at least the 3 sex/age tokens, got {queries.shape[0]} rows"
        )
    return torch.cat([queries[:-3], head["finetune_query.weight"], queries[-3:]], dim=0)


def convert_reference_state_dicts(
    backbone: Mapping[str, torch.Tensor],
    head: Mapping[str, torch.Tensor],
    config: LcmConfig,
    strict: bool = True,
) -> dict[str, torch.Tensor]:
    """Map reference state dicts to an `LcmForBeiPrediction` state dict for `config`.

    Every tensor's shape is checked against `config` and a mismatch raises
    `CheckpointConversionError` naming the key, the expected and the given shape. With `strict`, keys
    that are neither mapped nor known to be unused (``sex_embed``, ``age_embed``) are an error too.
    """
    backbone, head = _as_state_dict(backbone, "the backbone"), _as_state_dict(head, "the head")
    e, n, f = config.hidden_size, config.num_rois, config.intermediate_size
    out: dict[str, torch.Tensor] = {}
    used_backbone, used_head = set(), set()

    def take(state, used, which, key, shape):
        used.add(key)
        return _get(state, key, shape, which).detach().clone()

    out["model.fc_encoder.projection.weight"] = take(backbone, used_backbone, "backbone", "lin.0.weight", (e, n))
    out["model.fc_encoder.projection.bias"] = take(backbone, used_backbone, "backbone", "lin.0.bias", (e,))
    for name in BATCHNORM_KEYS:
        key = f"lin.1.{name}"
        if name == "num_batches_tracked" and key not in backbone:
            continue
        shape = () if name == "num_batches_tracked" else (e,)
        out[f"model.fc_encoder.norm.{name}"] = take(backbone, used_backbone, "backbone", key, shape)

    tokens = reference_token_embeddings(head, e)
    used_head.update(k for k in ("object_query.weight", "finetune_query.weight") if k in head)
    if tuple(tokens.shape) != (config.num_bei_tokens, e):
        raise CheckpointConversionError(
            f"shape mismatch for the BEI tokens: the vocabulary needs ({config.num_bei_tokens}, {e}), "
            f"the head gives {tuple(tokens.shape)}"
        )
    out["model.bei_embeddings.weight"] = tokens

    num_layers = len({int(m.group(1)) for key in head if (m := _LAYER_KEY.match(key))})
    if num_layers != config.num_hidden_layers:
        raise CheckpointConversionError(
            f"the head has {num_layers} decoder layers, the config expects {config.num_hidden_layers}"
        )
    for i in range(config.num_hidden_layers):
        src, dst = f"decoder.layers.{i}.", f"model.layers.{i}."
        for ref_name, our_name in (("self_attn", "self_attn"), ("multihead_attn", "cross_attn")):
            weight = take(head, used_head, "head", f"{src}{ref_name}.in_proj_weight", (3 * e, e))
            bias = take(head, used_head, "head", f"{src}{ref_name}.in_proj_bias", (3 * e,))
            for part, w, b in zip(("q", "k", "v"), weight.chunk(3, dim=0), bias.chunk(3, dim=0)):
                out[f"{dst}{our_name}.{part}_proj.weight"] = w.contiguous()
                out[f"{dst}{our_name}.{part}_proj.bias"] = b.contiguous()
            out[f"{dst}{our_name}.out_proj.weight"] = take(head, used_head, "head", f"{src}{ref_name}.out_proj.weight", (e, e))
            out[f"{dst}{our_name}.out_proj.bias"] = take(head, used_head, "head", f"{src}{ref_name}.out_proj.bias", (e,))
        out[f"{dst}feed_forward.linear1.weight"] = take(head, used_head, "head", f"{src}linear1.weight", (f, e))
        out[f"{dst}feed_forward.linear1.bias"] = take(head, used_head, "head", f"{src}linear1.bias", (f,))
        out[f"{dst}feed_forward.linear2.weight"] = take(head, used_head, "head", f"{src}linear2.weight", (e, f))
        out[f"{dst}feed_forward.linear2.bias"] = take(head, used_head, "head", f"{src}linear2.bias", (e,))
        for k in (1, 2, 3):
            for name in ("weight", "bias"):
                out[f"{dst}norm{k}.{name}"] = take(head, used_head, "head", f"{src}norm{k}.{name}", (e,))
    for name in ("weight", "bias"):
        out[f"readout_norm.{name}"] = take(head, used_head, "head", f"decoder.norm.{name}", (e,))
    out["readout.weight"] = take(head, used_head, "head", "class_embed.weight", (1, e))
    out["readout.bias"] = take(head, used_head, "head", "class_embed.bias", (1,))

    if strict:
        extra_backbone = sorted(set(backbone) - used_backbone)
        extra_head = sorted(k for k in set(head) - used_head if not k.startswith(UNUSED_HEAD_PREFIXES))
        if extra_backbone or extra_head:
            raise CheckpointConversionError(
                "unexpected keys the converter does not know how to map "
                f"(backbone: {extra_backbone[:10]}, head: {extra_head[:10]}); pass strict=False to ignore them"
            )
    return out


def convert_reference_checkpoint(
    backbone: Mapping[str, torch.Tensor] | str | os.PathLike,
    head: Mapping[str, torch.Tensor] | str | os.PathLike,
    beis: list[dict],
    num_attention_heads: int = 8,
    strict: bool = True,
    **config_kwargs,
) -> LcmForBeiPrediction:
    """Build an `LcmForBeiPrediction` from a reference backbone + head (state dicts or file paths).

    Args:
        backbone, head: the two reference state dicts, or paths to their torch files
            (loaded with ``torch.load(weights_only=True)``).
        beis: the `config.beis` list in the reference token order (dataset classes, then the
            finetune classes if any, then sex with two classes, then age as continuous).
        num_attention_heads: heads of the reference model (8 in the reference code).
        strict: refuse keys the converter does not map.
        **config_kwargs: other `LcmConfig` fields (e.g. ``readout_policy``).

    Returns:
        The model in eval mode; its outputs equal the reference forward pass.
    """
    if not isinstance(backbone, Mapping):
        backbone = load_reference_state_dict(backbone)
    if not isinstance(head, Mapping):
        head = load_reference_state_dict(head)
    beis = normalize_beis(beis)
    config = infer_reference_config(backbone, head, beis, num_attention_heads=num_attention_heads, **config_kwargs)
    state = convert_reference_state_dicts(backbone, head, config, strict=strict)
    model = LcmForBeiPrediction(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:  # a bug in the mapping, not a user error
        raise RuntimeError(f"conversion left parameters unset: missing {missing}, unexpected {unexpected}")
    return model.eval()


__all__ = [
    "CheckpointConversionError",
    "convert_reference_checkpoint",
    "convert_reference_state_dicts",
    "infer_reference_config",
    "load_bei_list",
    "load_reference_state_dict",
    "reference_token_embeddings",
]
