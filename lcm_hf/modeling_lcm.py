"""The Large Connectome Model (LCM): a DETR-style decoder whose brain-environment-interaction
(BEI) tokens self-attend and cross-attend to the rows of a functional-connectivity matrix.

This module imports only torch, transformers and its sibling core files (`configuration_lcm`, `layers_lcm`:
the decoder blocks, `readout_lcm`: losses and predictions), so that it can be exported as Hub remote code
(``trust_remote_code=True``).

Shapes: B batch, N ROIs (`config.num_rois`), E `config.hidden_size`, L layers, H heads,
P BEI tokens (`config.num_bei_tokens`), K BEIs (`config.num_beis`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_lcm import LcmConfig, bei_token_mapping, grow_beis, normalize_beis
from .errors_lcm import LcmInputError, LcmInputTypeError
from .layers_lcm import LcmAttentionProjection, LcmDecoderLayer, LcmFcEncoder
from .readout_lcm import (  # noqa: F401  (re-exported: the public readout rules)
    bei_loss_sums,
    logits_to_bei_predictions,
    true_class_layers,
    weighted_bei_loss,
)
from .saving_lcm import staged_save

READOUT_STAGES = ("momentum", "adaptive")


# ----------------------------------------------------------------------------- outputs
@dataclass
class LcmModelOutput(ModelOutput):
    """Output of [`LcmModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, P, E)`): BEI-token states after the last computed layer.
        layer_hidden_states (`torch.FloatTensor` of shape `(B, L, P, E)`): BEI-token states after every computed layer.
        memory (`torch.FloatTensor` of shape `(B, N, E)`): the encoded FC rows the tokens cross-attend to.
        attentions (`torch.FloatTensor` of shape `(B, L, H, P, P)`, *optional*): self-attention weights.
        cross_attentions (`torch.FloatTensor` of shape `(B, L, H, P, N)`, *optional*): cross-attention weights
            of every BEI token over the ROIs, returned with `output_attentions=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    layer_hidden_states: torch.FloatTensor | None = None
    memory: torch.FloatTensor | None = None
    attentions: torch.FloatTensor | None = None
    cross_attentions: torch.FloatTensor | None = None


@dataclass
class LcmForBeiPredictionOutput(ModelOutput):
    """Output of [`LcmForBeiPrediction`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): sum over BEIs of `loss_weight` times the
            BEI's mean loss over its labelled samples (returned when `labels` are given).
        logits (`torch.FloatTensor` of shape `(B, P)`): one logit per BEI token, reduced over layers by
            the readout policy. Categorical BEIs: softmax over their tokens; continuous ones: the value.
        layer_logits (`torch.FloatTensor` of shape `(B, L, P)`): the logits read out at every computed layer.
        readout_layers (`torch.LongTensor` of shape `(B, K)`): the layer each BEI was read from per
            sample, -1 where the prediction averages all layers.
        bei_loss_sums (`torch.FloatTensor` of shape `(K,)`, *optional*): unweighted loss summed over the
            labelled samples of each BEI (for exact normalisation across gradient accumulation).
        bei_label_counts (`torch.LongTensor` of shape `(K,)`, *optional*): labelled samples per BEI.
        attentions, cross_attentions: as in [`LcmModelOutput`], with `output_attentions=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    layer_logits: torch.FloatTensor | None = None
    readout_layers: torch.LongTensor | None = None
    bei_loss_sums: torch.FloatTensor | None = None
    bei_label_counts: torch.LongTensor | None = None
    attentions: torch.FloatTensor | None = None
    cross_attentions: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------- input checks
def check_connectivity(connectivity, num_rois: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check the type and shape of `connectivity` (B, N, N) and return it in `dtype` (float64 input is cast).

    Cheap: no tensor value is read (no host sync), so it runs on every forward. Values (finite, magnitudes,
    blank scans) are checked once per batch where the data is prepared: `lcm_hf.connectivity_lcm.check_connectivity_values`
    in `LcmDataCollator` and the processor.
    """
    if not isinstance(connectivity, torch.Tensor):
        raise LcmInputTypeError(f"expected `connectivity` to be a torch.Tensor, got {type(connectivity).__name__}")
    if connectivity.is_complex():
        raise LcmInputTypeError(
            f"expected real `connectivity`, got complex values ({connectivity.dtype}): pass .real or .abs() explicitly"
        )
    if not connectivity.is_floating_point():
        raise LcmInputTypeError(f"expected `connectivity` of a floating-point dtype, got {connectivity.dtype}")
    expected = f"(B, {num_rois}, {num_rois})"
    if connectivity.dim() != 3:
        hint = " (add a batch dimension: connectivity[None])" if connectivity.dim() == 2 else ""
        raise LcmInputError(
            f"expected `connectivity` of shape {expected}, got {tuple(connectivity.shape)} "
            f"(rank {connectivity.dim()}){hint}"
        )
    if tuple(connectivity.shape[1:]) != (num_rois, num_rois):
        raise LcmInputError(f"expected `connectivity` of shape {expected}, got {tuple(connectivity.shape)}")
    if connectivity.shape[0] == 0:
        raise LcmInputError(f"expected at least one `connectivity` matrix (B >= 1), got an empty batch of shape "
                            f"{tuple(connectivity.shape)}")
    if dtype is not None and connectivity.dtype != dtype:
        connectivity = connectivity.to(dtype)
    return connectivity


def check_labels(labels, config: LcmConfig, batch_size: int) -> None:
    """Check the type and shape of `labels` (B, K); their values are `check_label_values`' (run by the collator)."""
    if not isinstance(labels, torch.Tensor):
        raise LcmInputTypeError(f"expected `labels` to be a torch.Tensor, got {type(labels).__name__}")
    if not labels.is_floating_point():
        raise LcmInputTypeError(f"expected `labels` of a floating-point dtype (NaN marks missing), got {labels.dtype}")
    expected = (batch_size, config.num_beis)
    if tuple(labels.shape) != expected:
        raise LcmInputError(
            f"expected `labels` of shape (B, K) = {expected} (one column per BEI: {config.bei_names}), "
            f"got {tuple(labels.shape)}"
        )


def check_label_values(labels: torch.Tensor, beis: list[dict]) -> None:
    """Raise a `ValueError` naming the BEI unless `labels` (B, K) hold class indices of categorical BEIs, finite
    values of continuous ones, or NaN (missing). Reads the values: run once per batch on the CPU side
    (`LcmDataCollator`), not inside the training step."""
    if labels.shape[-1] != len(beis):
        raise LcmInputError(f"expected `labels` with one column per BEI ({len(beis)}), got shape {tuple(labels.shape)}")
    for column, bei in zip(labels.unbind(-1), beis):
        known = column[~torch.isnan(column)]
        if torch.isinf(known).any():
            raise LcmInputError(f"expected finite `labels` for BEI {bei['name']!r} (NaN for missing), got inf")
        if bei["kind"] != "categorical" or known.numel() == 0:
            continue
        num_classes = len(bei["classes"])
        bad = (known < 0) | (known >= num_classes) | (known != known.round())
        if bad.any():
            raise LcmInputError(
                f"expected `labels` for BEI {bei['name']!r} to be class indices in [0, {num_classes - 1}] "
                f"({bei['classes']}) or NaN, got {known[bad][0].item()}"
            )


# ----------------------------------------------------------------------------- models
class LcmPreTrainedModel(PreTrainedModel):
    config_class = LcmConfig
    config: LcmConfig
    base_model_prefix = "model"
    main_input_name = "connectivity"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LcmDecoderLayer"]
    _supports_sdpa = True
    _can_compile_fullgraph = True  # inference and training trace into one graph (benchmarks/bench_compile.py)

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default initialisation, as the reference code (built from `nn.MultiheadAttention`,
        `nn.Linear` and `nn.Embedding`) has: Linear layers Kaiming-uniform, attention in-projections
        Xavier-uniform over the packed (3E, E) matrix, attention biases zero, BEI tokens N(0, `bei_init_std`^2)."""
        if isinstance(module, LcmAttentionProjection) and module.is_input_projection:
            bound = math.sqrt(6.0 / (4 * module.in_features))  # Xavier over the packed (3E, E) in-projection
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if isinstance(module, LcmAttentionProjection):
                init.zeros_(module.bias)
            elif module.bias is not None:
                bound = 1 / math.sqrt(module.in_features)
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=self.config.bei_init_std)
        else:
            super()._init_weights(module)  # norms: ones and zeros, BatchNorm running statistics reset

    def save_pretrained(self, save_directory, is_main_process: bool = True, **kwargs):
        """`PreTrainedModel.save_pretrained`, complete or absent: the files are written into a temporary
        sibling folder, then moved in, so a failure leaves the folder's previous model intact."""
        if not is_main_process or kwargs.get("push_to_hub") or kwargs.get("distributed_checkpoint"):
            return super().save_pretrained(save_directory, is_main_process=is_main_process, **kwargs)
        parent = super()
        return staged_save(save_directory, lambda folder: parent.save_pretrained(folder, **kwargs))

    def add_beis(self, beis: list[dict]) -> nn.Embedding:
        """Grow the BEI vocabulary, like `resize_token_embeddings`, by the one growth rule
        (`configuration_lcm.grow_beis`, which `BeiVocabulary.extend` applies too).

        New BEIs are appended; a categorical BEI given again with extra classes (its old classes first) grows
        by those classes, inserted before its `"n/a"` class, which stays last. Every existing token keeps its
        pretrained embedding bit-identical (rows are moved with their class), all other weights are untouched,
        and `config.beis` is updated. A BEI that gained classes loses its calibration temperature
        (`config.temperatures`) and its selected readout layer (`config.readout_layers`): both were fitted for
        the old classes. BEIs given unchanged are left as they are, so `model.add_beis(vocab.extend(new).to_config())`
        works.

        Args:
            beis (`list[dict]`): BEIs in the `config.beis` format.

        Returns:
            `nn.Embedding`: the new BEI embedding of shape (P_new, E).
        """
        model = self.base_model
        config = model.config
        old_beis = config.beis
        new_beis = normalize_beis(grow_beis(old_beis, beis))
        mapping = torch.tensor(bei_token_mapping(new_beis, old_beis), dtype=torch.long)
        old_embedding = model.bei_embeddings
        new_embedding = nn.Embedding(len(mapping), config.hidden_size)
        new_embedding.to(device=old_embedding.weight.device, dtype=old_embedding.weight.dtype)
        with torch.no_grad():
            nn.init.normal_(new_embedding.weight, std=config.bei_init_std)
            kept = (mapping >= 0).nonzero().squeeze(1)  # new token rows that existed: copied from their old row
            device = old_embedding.weight.device
            new_embedding.weight[kept.to(device)] = old_embedding.weight[mapping[kept].to(device)]
        grown = {old["name"] for old, new in zip(old_beis, new_beis) if old.get("classes") != new.get("classes")}
        model.bei_embeddings = new_embedding
        self.config.beis = new_beis  # shared by backbone and head
        if self.config.temperatures is not None:
            self.config.set_temperatures({k: v for k, v in self.config.temperatures.items() if k not in grown} or None)
        if self.config.readout_layers is not None:
            self.config.set_readout_layers(
                {k: v for k, v in self.config.readout_layers.items() if k not in grown} or None)
        return new_embedding


class LcmModel(LcmPreTrainedModel):
    """The LCM backbone: FC row encoder + decoder over BEI tokens, without readout.

    Example:

    ```python
    >>> import torch
    >>> from lcm_hf import LcmConfig, LcmModel
    >>> config = LcmConfig(num_rois=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                    beis=[{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}])
    >>> out = LcmModel(config)(torch.rand(3, 10, 10), output_attentions=True)
    >>> tuple(out.layer_hidden_states.shape), tuple(out.cross_attentions.shape)
    ((3, 2, 2, 32), (3, 2, 4, 2, 10))
    ```
    """

    def __init__(self, config: LcmConfig):
        super().__init__(config)
        self.fc_encoder = LcmFcEncoder(config)
        self.bei_embeddings = nn.Embedding(config.num_bei_tokens, config.hidden_size)
        self.layers = nn.ModuleList(LcmDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.bei_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.bei_embeddings = value

    def forward(
        self,
        connectivity: torch.Tensor,
        output_attentions: bool | None = None,
        num_layers: int | None = None,
        return_dict: bool | None = None,
        check_inputs: bool = True,
        **kwargs,
    ) -> LcmModelOutput | tuple:
        r"""
        Args:
            connectivity (`torch.FloatTensor` of shape `(B, N, N)`): functional-connectivity matrices (another
                float dtype is cast to the model's).
            output_attentions (`bool`, *optional*): also return self- and cross-attention weights.
            num_layers (`int`, *optional*): compute only the first `num_layers` layers (early exit).
            check_inputs (`bool`, *optional*): check the shape and dtype of `connectivity` (default True;
                `LcmForBeiPrediction` checks once and passes False).
        """
        if check_inputs:
            connectivity = check_connectivity(connectivity, self.config.num_rois, self.dtype)
        if self.config.num_bei_tokens == 0:
            raise LcmInputError("`config.beis` is empty: the model has no BEI token to decode; add BEIs first")
        output_attentions = bool(output_attentions if output_attentions is not None else self.config.output_attentions)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        num_layers = self.config.num_hidden_layers if num_layers is None else num_layers
        if not 1 <= num_layers <= self.config.num_hidden_layers:
            raise LcmInputError(f"expected `num_layers` in [1, {self.config.num_hidden_layers}], got {num_layers}")

        memory = self.fc_encoder(connectivity)  # (B, N, E)
        batch_size = connectivity.shape[0]
        query_position = self.bei_embeddings.weight.unsqueeze(0).expand(batch_size, -1, -1)  # (B, P, E)
        hidden_states = torch.zeros_like(query_position)  # token content starts at zeros (DETR)
        # Under autocast every layer's cross-attention would cast the (B, N, E) memory again: cast it once.
        layer_memory = memory
        if torch.is_autocast_enabled(memory.device.type):
            layer_memory = memory.to(torch.get_autocast_dtype(memory.device.type))
        layer_states, self_maps, cross_maps = [], [], []
        for layer in self.layers[:num_layers]:
            hidden_states, self_weights, cross_weights = layer(
                hidden_states, query_position, layer_memory, output_attentions
            )
            layer_states.append(hidden_states)
            if output_attentions:
                self_maps.append(self_weights)
                cross_maps.append(cross_weights)

        output = LcmModelOutput(
            last_hidden_state=hidden_states,
            layer_hidden_states=torch.stack(layer_states, dim=1),  # (B, L, P, E)
            memory=memory,
            attentions=torch.stack(self_maps, dim=1) if output_attentions else None,  # (B, L, H, P, P)
            cross_attentions=torch.stack(cross_maps, dim=1) if output_attentions else None,  # (B, L, H, P, N)
        )
        return output if return_dict else output.to_tuple()


class LcmForBeiPrediction(LcmPreTrainedModel):
    """LCM with its readout: a shared final LayerNorm and a shared `Linear(E -> 1)` give one logit per
    BEI token at every layer; the readout policy (`config.readout_policy`) reduces them over layers.

    Readout policies, per BEI (continuous BEIs always average the layers):

    - `"max"` (reference code): in training stage 2 each sample uses the layer whose logit for its true
      class is highest; at inference each class logit is its maximum over layers.
    - `"best_layer"` (paper text): the layer stored in `config.readout_layers[name]` (chosen by
      `LcmTrainer` on validation metrics); the mean over layers until one is selected. Inference
      computes no layer deeper than the deepest selected one when every BEI has a layer.
    - `"mean"` / `"last"`: the mean over layers / the last layer (ablations).

    In stage 1 (`readout_stage="momentum"`, the first `config.momentum_epochs` epochs) every policy but
    `"last"` averages the layers.

    Example:

    ```python
    >>> import torch
    >>> from lcm_hf import LcmConfig, LcmForBeiPrediction
    >>> beis = [{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}, {"name": "age", "kind": "continuous"}]
    >>> config = LcmConfig(num_rois=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, beis=beis)
    >>> out = LcmForBeiPrediction(config)(torch.rand(3, 10, 10), labels=torch.tensor([[0.0, 30.0], [1.0, float("nan")], [float("nan"), 41.0]]))
    >>> tuple(out.logits.shape), tuple(out.layer_logits.shape), out.loss.shape
    ((3, 3), (3, 2, 3), torch.Size([]))
    ```
    """

    def __init__(self, config: LcmConfig):
        super().__init__(config)
        self.model = LcmModel(config)
        self.readout_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.readout = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.bei_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.bei_embeddings = value

    def layers_needed(self) -> int:
        """How many layers inference must compute: with `best_layer` readout and a layer selected for
        every BEI, the deepest selected layer + 1; otherwise all of them."""
        selected = self.config.readout_layers or {}
        if self.config.readout_policy == "best_layer" and all(name in selected for name in self.config.bei_names):
            return max(selected.values()) + 1
        return self.config.num_hidden_layers

    def forward(
        self,
        connectivity: torch.Tensor,
        labels: torch.Tensor | None = None,
        readout_stage: str | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> LcmForBeiPredictionOutput | tuple:
        r"""
        Args:
            connectivity (`torch.FloatTensor` of shape `(B, N, N)`): functional-connectivity matrices.
            labels (`torch.FloatTensor` of shape `(B, K)`, *optional*): per BEI, the class index
                (categorical) or value (continuous); NaN where missing (ignored by the loss).
            readout_stage (`str`, *optional*): "momentum" (stage 1: mean over layers) or "adaptive"
                (stage 2, the default: the readout policy).
            output_attentions (`bool`, *optional*): also return attention weights.
        """
        if readout_stage is None:
            readout_stage = "adaptive"
        if readout_stage not in READOUT_STAGES:
            raise LcmInputError(f"expected `readout_stage` in {list(READOUT_STAGES)}, got {readout_stage!r}")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        connectivity = check_connectivity(connectivity, self.config.num_rois, self.dtype)  # once per forward
        if labels is not None:
            check_labels(labels, self.config, connectivity.shape[0])

        # Early exit only at inference: training and evaluation with labels score every layer.
        early_exit = not self.training and labels is None and readout_stage == "adaptive"
        backbone = self.model(
            connectivity,
            output_attentions=output_attentions,
            num_layers=self.layers_needed() if early_exit else None,
            return_dict=True,
            check_inputs=False,
        )
        layer_logits = self.readout(self.readout_norm(backbone.layer_hidden_states)).squeeze(-1)  # (B, L, P)
        layer_logits = self.to_values(layer_logits)
        true_labels = labels if self.training else None  # the "max" policy may peek only while training
        logits, readout_layers = self.reduce_layers(layer_logits, readout_stage, true_labels)

        loss = bei_loss_sums = bei_label_counts = None
        if labels is not None:
            sums, bei_label_counts = self.bei_losses(logits, labels)
            bei_loss_sums = sums
            loss = weighted_bei_loss(sums, bei_label_counts, self.config.beis)

        output = LcmForBeiPredictionOutput(
            loss=loss,
            logits=logits,
            layer_logits=layer_logits,
            readout_layers=readout_layers,
            bei_loss_sums=bei_loss_sums,
            bei_label_counts=bei_label_counts,
            attentions=backbone.attentions,
            cross_attentions=backbone.cross_attentions,
        )
        return output if return_dict else output.to_tuple()

    def to_values(self, layer_logits: torch.Tensor) -> torch.Tensor:
        """Map the readout of standardised continuous BEIs (those with `center`/`scale`) back to their
        units: token = token * scale + center. layer_logits (..., P) -> (..., P)."""
        standardised = [
            (token_slice.start, bei)
            for bei, token_slice in zip(self.config.beis, self.config.bei_token_slices())
            if "scale" in bei
        ]
        if not standardised:  # the reference setting: nothing to allocate on the training step
            return layer_logits
        scale = torch.ones(self.config.num_bei_tokens)
        center = torch.zeros(self.config.num_bei_tokens)
        for token, bei in standardised:
            scale[token], center[token] = bei["scale"], bei["center"]
        return torch.addcmul(center.to(layer_logits), layer_logits, scale.to(layer_logits))

    def reduce_layers(
        self, layer_logits: torch.Tensor, readout_stage: str = "adaptive", labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reduce per-layer logits (B, L, P) to logits (B, P) and the layer used per sample and BEI (B, K).

        `labels` (B, K), given only in training, lets the "max" policy pick each labelled sample's layer
        by its true-class logit.
        """
        batch_size, num_layers, _ = layer_logits.shape
        policy = self.config.readout_policy
        if readout_stage == "momentum" and policy != "last":
            policy = "mean"
        selected = self.config.readout_layers or {}
        logits, layers = [], []
        for index, (bei, token_slice) in enumerate(zip(self.config.beis, self.config.bei_token_slices())):
            per_layer = layer_logits[:, :, token_slice]  # (B, L, C)
            layer = torch.full((batch_size,), -1, dtype=torch.long, device=layer_logits.device)
            if bei["kind"] == "continuous" or policy == "mean" or (
                policy == "best_layer" and bei["name"] not in selected
            ):
                reduced = per_layer.mean(dim=1)
            elif policy == "last":
                reduced, layer = per_layer[:, -1], layer.fill_(num_layers - 1)
            elif policy == "best_layer":
                reduced, layer = per_layer[:, selected[bei["name"]]], layer.fill_(selected[bei["name"]])
            else:  # "max"
                reduced, layer = self._max_readout(per_layer, None if labels is None else labels[:, index])
            logits.append(reduced)
            layers.append(layer)
        return torch.cat(logits, dim=-1), torch.stack(layers, dim=-1)

    @staticmethod
    def _max_readout(per_layer: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """per_layer (B, L, C) -> logits (B, C), layer (B,). Each class takes its max over layers; with
        labels, a labelled sample takes the whole layer where its true-class logit is highest."""
        class_max, class_layer = per_layer.max(dim=1)  # (B, C)
        layer = class_layer.gather(1, class_max.argmax(dim=1, keepdim=True)).squeeze(1)  # (B,)
        if labels is None:
            return class_max, layer
        known = ~torch.isnan(labels)  # (B,)
        target = torch.where(known, labels, torch.zeros_like(labels)).long()  # (B,)
        true_layer = true_class_layers(per_layer, target)  # (B,)
        picked = per_layer[torch.arange(per_layer.shape[0], device=per_layer.device), true_layer]  # (B, C)
        return torch.where(known[:, None], picked, class_max), torch.where(known, true_layer, layer)

    def bei_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unweighted loss sums (K,) and label counts (K,) (:func:`bei_loss_sums` over this config's BEIs)."""
        return bei_loss_sums(logits, labels, self.config.beis)


__all__ = [
    "LcmForBeiPrediction",
    "LcmForBeiPredictionOutput",
    "LcmModel",
    "LcmModelOutput",
    "LcmPreTrainedModel",
    "bei_loss_sums",
    "logits_to_bei_predictions",
    "true_class_layers",
    "weighted_bei_loss",
]
