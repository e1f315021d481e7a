"""Configuration of the Large Connectome Model (LCM).

This module imports only ``transformers`` so that it can be exported as Hub remote
code (``trust_remote_code=True``) next to ``modeling_lcm.py``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from transformers import PretrainedConfig

from .errors_lcm import LcmInputError, LcmInputTypeError

READOUT_POLICIES = ("max", "best_layer", "mean", "last")
# The one default of each schedule setting: the training arguments and scripts default to None ("the model config's"),
# a value given explicitly wins, and training records the value used in the config.
DEFAULT_READOUT_POLICY = "max"  # the reference code's
DEFAULT_MOMENTUM_EPOCHS = 5  # the paper's stage 1
BEI_KINDS = ("categorical", "continuous")
NORM_POSITIONS = ("post", "pre")
FC_NORMS = ("batchnorm", "layernorm")
ACTIVATIONS = ("relu", "gelu", "silu")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")

NA_CLASS = "n/a"  # the explicit missing-value class a categorical BEI may carry, always its last class
DEFAULT_CATEGORICAL_LOSS_WEIGHT = 1.0
DEFAULT_CONTINUOUS_LOSS_WEIGHT = 1e-4

# Sizes of the paper's reference code (N=116 AAL ROIs, E=2048, 8 heads, FFN 768), named by
# parameter count: the summary's "Small 8L/147M" contradicts the code, where 4 layers give
# 147.19M parameters and 8 layers 294.1M.
PRESETS: dict[str, dict[str, int]] = {
    "small": {"num_hidden_layers": 4},  # 147.19M
    "base": {"num_hidden_layers": 8},  # 294.1M
    "mid": {"num_hidden_layers": 20},  # 734.9M
    "big": {"num_hidden_layers": 32},  # 1175.7M
}
PRESET_DEFAULTS = {"num_rois": 116, "hidden_size": 2048, "num_attention_heads": 8, "intermediate_size": 768}


def _check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise LcmInputError(f"`{field}` must be one of {list(allowed)}, got {value!r}")


def _check_positive_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LcmInputError(f"`{field}` must be a positive integer, got {value!r}")


def _check_probability(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise LcmInputError(f"`{field}` must be a float in [0, 1), got {value!r}")


def bei_token_slices(beis: list[dict]) -> list[slice]:
    """The token slice of every BEI, in list order: a categorical BEI owns one token per class,
    a continuous BEI one token."""
    slices, start = [], 0
    for bei in beis:
        width = len(bei["classes"]) if bei["kind"] == "categorical" else 1
        slices.append(slice(start, start + width))
        start += width
    return slices


def normalize_bei(bei: Mapping, index: int = 0) -> dict:
    """Validate one BEI entry (see `normalize_beis`) and return a new dict with defaults filled in;
    errors name the entry as ``beis[index]``."""
    if not isinstance(bei, Mapping):
        raise LcmInputTypeError(f"`beis[{index}]` must be a dict, got {type(bei).__name__}")
    name = bei.get("name")
    if not isinstance(name, str) or not name:
        raise LcmInputError(f"`beis[{index}]['name']` must be a non-empty string, got {name!r}")
    kind = bei.get("kind")
    _check_choice(f"beis[{index}]['kind']", kind, BEI_KINDS)
    entry: dict[str, Any] = {"name": name, "kind": kind}
    if kind == "categorical":
        classes = bei.get("classes")
        if not isinstance(classes, (list, tuple)) or len(classes) < 2:
            raise LcmInputError(
                f"`beis[{index}]['classes']` ({name!r}) must list at least 2 class names, got {classes!r}"
            )
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise LcmInputError(f"`beis[{index}]['classes']` ({name!r}) has duplicates: {classes}")
        entry["classes"] = classes
        default_weight = DEFAULT_CATEGORICAL_LOSS_WEIGHT
    else:
        if bei.get("classes"):
            raise LcmInputError(f"`beis[{index}]` ({name!r}) is continuous and cannot have `classes`")
        default_weight = DEFAULT_CONTINUOUS_LOSS_WEIGHT
        if "scale" in bei or "center" in bei:
            center, scale = bei.get("center", 0.0), bei.get("scale", 1.0)
            for key, value in (("center", center), ("scale", scale)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise LcmInputError(f"`beis[{index}]['{key}']` ({name!r}) must be a finite float, got {value!r}")
            if scale <= 0:
                raise LcmInputError(f"`beis[{index}]['scale']` ({name!r}) must be > 0, got {scale!r}")
            entry["center"], entry["scale"] = float(center), float(scale)
            default_weight = DEFAULT_CATEGORICAL_LOSS_WEIGHT  # standardised targets: unit scale
    weight = bei.get("loss_weight", default_weight)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise LcmInputError(f"`beis[{index}]['loss_weight']` ({name!r}) must be a float >= 0, got {weight!r}")
    entry["loss_weight"] = float(weight)
    return entry


def normalize_beis(beis: list[dict] | None) -> list[dict]:
    """Validate a BEI list and fill in defaults.

    Parameters
    ----------
    beis : list of dict or None
        Each entry is ``{"name": str, "kind": "categorical" | "continuous",
        "classes": [str, ...] (categorical only), "loss_weight": float (optional)}``. A continuous
        BEI may also give ``"center"`` and ``"scale"``: the model then predicts
        ``(value - center) / scale``, so targets in any unit train at unit scale, and reports values.

    Returns
    -------
    list of dict
        New dicts with ``loss_weight`` filled in: 1.0 for categorical BEIs; for continuous ones 1e-4
        (the reference code's weight for age in raw years), or 1.0 when ``scale`` standardises them.
    """
    if beis is None:
        return []
    if not isinstance(beis, (list, tuple)):
        raise LcmInputTypeError(f"`beis` must be a list of dicts, got {type(beis).__name__}")
    normalized, seen = [], set()
    for index, bei in enumerate(beis):
        entry = normalize_bei(bei, index)
        if entry["name"] in seen:
            raise LcmInputError(f"`beis` has the BEI name {entry['name']!r} twice; names must be unique")
        seen.add(entry["name"])
        normalized.append(entry)
    return normalized


class LcmConfig(PretrainedConfig):
    r"""Configuration of an [`LcmModel`] / [`LcmForBeiPrediction`].

    The model reads an N x N functional-connectivity (FC) matrix, one token per FC row, and
    decodes one learnable token per brain-environment-interaction (BEI) class (DETR style)
    with a scalar prediction read out at every layer.

    Args:
        num_rois (`int`, *optional*, defaults to 116):
            N, the number of regions of interest (rows and columns of the FC matrix).
        hidden_size (`int`, *optional*, defaults to 2048):
            E, the width of the FC row embeddings and of the BEI tokens.
        num_hidden_layers (`int`, *optional*, defaults to 4):
            L, the number of decoder layers (and of per-layer predictions).
        num_attention_heads (`int`, *optional*, defaults to 8):
            Heads of self- and cross-attention; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 768):
            Width of the feed-forward block (E -> intermediate_size -> E).
        hidden_act (`str`, *optional*, defaults to `"relu"`):
            Activation of the feed-forward block: "relu", "gelu" or "silu".
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout after attention and feed-forward blocks (and inside the feed-forward block).
        attention_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on attention weights.
        norm_position (`str`, *optional*, defaults to `"post"`):
            "post" (reference code) or "pre" LayerNorm placement in decoder layers.
        fc_norm (`str`, *optional*, defaults to `"batchnorm"`):
            Norm of the FC row encoder: "batchnorm" (reference code, BatchNorm1d over all rows of
            the batch) or "layernorm" (batch-independent).
        layer_norm_eps (`float`, *optional*, defaults to 1e-5)
        bei_init_std (`float`, *optional*, defaults to 1.0):
            Standard deviation of the BEI token embeddings at initialisation (and of tokens added by
            `add_beis`): N(0, 1) as `nn.Embedding` in the reference code. Other weights use PyTorch's
            default initialisation, as the reference code does.
        beis (`list[dict]`, *optional*):
            The BEI vocabulary in token order: `{"name", "kind": "categorical"|"continuous",
            "classes" (categorical only), "loss_weight"}`. Each categorical BEI owns one token per
            class, each continuous BEI one token.
        readout_policy (`str`, *optional*, defaults to `"max"`):
            How the L per-layer predictions of a BEI are reduced: "max" (reference code),
            "best_layer" (paper text), "mean" or "last" (ablations). See `LcmForBeiPrediction`.
        momentum_epochs (`int`, *optional*, defaults to 5):
            Epochs of training stage 1 ("momentum", mean over layers) before stage 2 (adaptive): the one
            default of the schedule (`LcmTrainer` uses it unless the training arguments give one, and records
            the value it ran here).
        readout_layers (`dict[str, int]`, *optional*):
            With `readout_policy="best_layer"`: the 0-based layer selected for each BEI.
        temperatures (`dict[str, float]`, *optional*):
            Calibration temperature T > 0 of categorical BEIs (fitted on validation after training):
            predicted probabilities are softmax(logits / T). Absent BEIs use T = 1.

    Example:

    ```python
    >>> from lcm_hf import LcmConfig, LcmForBeiPrediction
    >>> beis = [{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}, {"name": "age", "kind": "continuous"}]
    >>> config = LcmConfig.from_preset("small", beis=beis)
    >>> config.num_bei_tokens
    3
    ```
    """

    model_type = "lcm"

    def __init__(
        self,
        num_rois: int = 116,
        hidden_size: int = 2048,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 8,
        intermediate_size: int = 768,
        hidden_act: str = "relu",
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        norm_position: str = "post",
        fc_norm: str = "batchnorm",
        layer_norm_eps: float = 1e-5,
        bei_init_std: float = 1.0,
        beis: list[dict] | None = None,
        readout_policy: str = DEFAULT_READOUT_POLICY,
        momentum_epochs: int = DEFAULT_MOMENTUM_EPOCHS,
        readout_layers: dict[str, int] | None = None,
        temperatures: dict[str, float] | None = None,
        **kwargs,
    ):
        for field, value in (
            ("num_rois", num_rois),
            ("hidden_size", hidden_size),
            ("num_hidden_layers", num_hidden_layers),
            ("num_attention_heads", num_attention_heads),
            ("intermediate_size", intermediate_size),
        ):
            _check_positive_int(field, value)
        if hidden_size % num_attention_heads:
            raise LcmInputError(
                f"`hidden_size` must be divisible by `num_attention_heads`, got {hidden_size} and {num_attention_heads}"
            )
        _check_choice("hidden_act", hidden_act, ACTIVATIONS)
        _check_choice("norm_position", norm_position, NORM_POSITIONS)
        _check_choice("fc_norm", fc_norm, FC_NORMS)
        _check_choice("readout_policy", readout_policy, READOUT_POLICIES)
        _check_probability("dropout", dropout)
        _check_probability("attention_dropout", attention_dropout)
        if isinstance(momentum_epochs, bool) or not isinstance(momentum_epochs, int) or momentum_epochs < 0:
            raise LcmInputError(f"`momentum_epochs` must be an integer >= 0, got {momentum_epochs!r}")

        self.num_rois = num_rois
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.norm_position = norm_position
        self.fc_norm = fc_norm
        self.layer_norm_eps = layer_norm_eps
        self.bei_init_std = bei_init_std
        self.beis = normalize_beis(beis)
        self.readout_policy = readout_policy
        self.momentum_epochs = momentum_epochs
        self.readout_layers = self._validated_readout_layers(readout_layers)
        self.temperatures = self._validated_temperatures(temperatures)
        kwargs.setdefault("attn_implementation", None)
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, name: str, **kwargs) -> LcmConfig:
        """Build the config of a named size: "small" (4 layers, 147M parameters at N=116),
        "base" (8 layers, 294M), "mid" (20 layers, 735M) or "big" (32 layers, 1176M).

        Any keyword overrides the preset (e.g. ``num_rois=200``, ``beis=...``).
        """
        if name not in PRESETS:
            raise LcmInputError(f"`name` must be one of {list(PRESETS)}, got {name!r}")
        return cls(**{**PRESET_DEFAULTS, **PRESETS[name], **kwargs})

    # ------------------------------------------------------------------ BEI layout
    @property
    def num_beis(self) -> int:
        """K, the number of BEIs (columns of `labels`)."""
        return len(self.beis)

    @property
    def num_bei_tokens(self) -> int:
        """P, the number of BEI tokens (one per class of each categorical BEI, one per continuous BEI)."""
        slices = bei_token_slices(self.beis)
        return slices[-1].stop if slices else 0

    @property
    def bei_names(self) -> list[str]:
        return [bei["name"] for bei in self.beis]

    def bei_token_slices(self) -> list[slice]:
        """The token slice of every BEI, in `beis` order."""
        return bei_token_slices(self.beis)

    def _validated_readout_layers(self, readout_layers: dict | None) -> dict[str, int] | None:
        if readout_layers is None:
            return None
        if not isinstance(readout_layers, dict):
            raise LcmInputTypeError(f"`readout_layers` must be a dict {{bei name: layer}}, got {type(readout_layers).__name__}")
        names = {bei["name"] for bei in self.beis}
        checked = {}
        for name, layer in readout_layers.items():
            if name not in names:
                raise LcmInputError(f"`readout_layers` names an unknown BEI {name!r}; known BEIs: {sorted(names)}")
            if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < self.num_hidden_layers:
                raise LcmInputError(
                    f"`readout_layers[{name!r}]` must be a layer index in [0, {self.num_hidden_layers}), got {layer!r}"
                )
            checked[name] = layer
        return checked

    def _validated_temperatures(self, temperatures: dict | None) -> dict[str, float] | None:
        if temperatures is None:
            return None
        if not isinstance(temperatures, dict):
            raise LcmInputTypeError(f"`temperatures` must be a dict {{bei name: T}}, got {type(temperatures).__name__}")
        kinds = {bei["name"]: bei["kind"] for bei in self.beis}
        checked = {}
        for name, value in temperatures.items():
            if kinds.get(name) != "categorical":
                known = sorted(n for n, k in kinds.items() if k == "categorical")
                raise LcmInputError(f"`temperatures` must name categorical BEIs {known}, got {name!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise LcmInputError(f"`temperatures[{name!r}]` must be a finite float > 0, got {value!r}")
            checked[name] = float(value)
        return checked

    def set_temperatures(self, temperatures: dict[str, float] | None) -> None:
        """Validate and store the per-BEI calibration temperatures (used by `logits_to_bei_predictions`)."""
        self.temperatures = self._validated_temperatures(temperatures)

    def set_readout_layers(self, readout_layers: dict[str, int] | None) -> None:
        """Validate and store the per-BEI readout layers (used by `readout_policy="best_layer"`)."""
        self.readout_layers = self._validated_readout_layers(readout_layers)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["beis"] = copy.deepcopy(self.beis)
        return output


def _without_na(classes: list[str]) -> list[str]:
    return [c for c in classes if c != NA_CLASS]


def grow_beis(old: list[dict], new: list[dict]) -> list[dict]:
    """The one BEI growth rule (`BeiVocabulary.extend` and `LcmForBeiPrediction.add_beis` call it).

    - A BEI of a new name is appended (after every existing BEI, in the order given).
    - An existing categorical BEI given with more classes grows: its class list (``"n/a"`` aside) must start
      with the existing classes (``"n/a"`` aside) in their order; the extra classes are appended before a
      trailing ``"n/a"`` class, which stays last (``[A, B, n/a] + C -> [A, B, C, n/a]``). A BEI may also gain
      ``"n/a"`` this way (appended last).
    - An existing BEI given unchanged (same kind, the same classes or a prefix of them) is left as it is, so the
      full grown list (``vocab.extend(new).to_config()``) may be passed again.
    Anything else that changes an existing BEI (its kind, the order of its classes, the ``center``/``scale`` of a
    continuous one) raises ``ValueError``. Existing entries keep their other fields (``loss_weight``, ``bins``).

    Parameters
    ----------
    old, new : list of dict
        BEIs in the ``config.beis`` layout (extra keys such as ``bins`` are kept in ``old``'s entries).

    Returns
    -------
    list of dict
        New dicts: ``old``'s BEIs in their order (grown), then the new ones. :func:`bei_token_mapping` maps its
        tokens to ``old``'s.
    """
    result = [copy.deepcopy(bei) for bei in old]
    by_name = {bei["name"]: bei for bei in result}
    for index, given in enumerate(new):
        bei = normalize_bei(given, index)
        existing = by_name.get(bei["name"])
        if existing is None:
            entry = {**copy.deepcopy(dict(given)), **bei}
            result.append(entry)
            by_name[bei["name"]] = entry
            continue
        if existing["kind"] != bei["kind"]:
            raise LcmInputError(f"BEI {bei['name']!r} exists as {existing['kind']}; cannot add it as {bei['kind']}")
        if bei["kind"] == "continuous":
            for key in ("center", "scale"):
                if existing.get(key) != bei.get(key):
                    raise LcmInputError(f"BEI {bei['name']!r} exists with {key}={existing.get(key)!r}; cannot add it "
                                        f"again with {key}={bei.get(key)!r}")
            continue
        old_classes, given_classes = _without_na(existing["classes"]), _without_na(bei["classes"])
        if given_classes[: len(old_classes)] != old_classes and not old_classes[: len(given_classes)] == given_classes:
            raise LcmInputError(f"BEI {bei['name']!r}: expected a class list extending {existing['classes']}, got "
                                f"{bei['classes']} (new classes go after the existing ones, 'n/a' last)")
        extra = given_classes[len(old_classes):]
        with_na = NA_CLASS in existing["classes"] or NA_CLASS in bei["classes"]
        existing["classes"] = old_classes + extra + ([NA_CLASS] if with_na else [])
    return result


def bei_token_mapping(beis: list[dict], old: list[dict]) -> list[int]:
    """For each token of ``beis``, the index of the same token (BEI name and class) in ``old``, or -1 if new.

    Parameters
    ----------
    beis, old : list of dict
        BEIs in the ``config.beis`` layout, e.g. ``grow_beis(old, new)`` and ``old``.

    Returns
    -------
    list of int, one per token of ``beis``
    """
    def token_keys(entries):
        keys = []
        for bei in entries:
            if bei["kind"] == "categorical":
                keys.extend((bei["name"], c) for c in bei["classes"])
            else:
                keys.append((bei["name"], None))
        return keys

    old_tokens = {key: i for i, key in enumerate(token_keys(old))}
    return [old_tokens.get(key, -1) for key in token_keys(beis)]


__all__ = [
    "DEFAULT_MOMENTUM_EPOCHS",
    "DEFAULT_READOUT_POLICY",
    "LcmConfig",
    "PRESETS",
    "READOUT_POLICIES",
    "NA_CLASS",
    "bei_token_mapping",
    "bei_token_slices",
    "grow_beis",
    "normalize_bei",
    "normalize_beis",
]
