"""The building blocks of the LCM decoder: the FC encoder, attention, feed-forward and the decoder layer.

Part of the model core shipped as Hub remote code: imports only torch, transformers and `configuration_lcm`.
Shapes: B batch, N ROIs, E `config.hidden_size`, H heads, P BEI tokens.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_lcm import LcmConfig

ACT2FN = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class LcmFcEncoder(nn.Module):
    """Embeds every FC row (N values) as a token: Linear(N -> E), norm, LeakyReLU. No positions."""

    def __init__(self, config: LcmConfig):
        super().__init__()
        self.projection = nn.Linear(config.num_rois, config.hidden_size)
        # BatchNorm1d normalises over all rows of the batch (reference code); LayerNorm per row.
        if config.fc_norm == "batchnorm":
            self.norm = nn.BatchNorm1d(config.hidden_size)
        else:
            self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.activation = nn.LeakyReLU()

    def forward(self, connectivity: torch.Tensor) -> torch.Tensor:
        batch_size, num_rois, _ = connectivity.shape
        rows = self.projection(connectivity.reshape(batch_size * num_rois, num_rois))  # (B*N, E)
        return self.activation(self.norm(rows)).reshape(batch_size, num_rois, -1)  # (B, N, E)


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Plain softmax attention. query (B, H, Q, D), key/value (B, H, S, D) -> (B, Q, H, D), weights (B, H, Q, S)."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.promote_types(weights.dtype, torch.float32)).to(query.dtype)
    output = torch.matmul(F.dropout(weights, p=dropout, training=module.training), value)
    return output.transpose(1, 2).contiguous(), weights


class LcmAttentionProjection(nn.Linear):
    """A q/k/v (`is_input_projection`) or output projection of `LcmAttention` (E -> E), initialised as
    `nn.MultiheadAttention` initialises its packed in-projection and its output projection."""

    def __init__(self, hidden_size: int, is_input_projection: bool):
        super().__init__(hidden_size, hidden_size)
        self.is_input_projection = is_input_projection


class LcmAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections (self- or cross-attention)."""

    is_causal = False

    def __init__(self, config: LcmConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.q_proj = LcmAttentionProjection(config.hidden_size, is_input_projection=True)
        self.k_proj = LcmAttentionProjection(config.hidden_size, is_input_projection=True)
        self.v_proj = LcmAttentionProjection(config.hidden_size, is_input_projection=True)
        self.out_proj = LcmAttentionProjection(config.hidden_size, is_input_projection=False)

    def forward(self, query, key, value, output_attentions: bool = False):
        """query (B, Q, E), key/value (B, S, E) -> output (B, Q, E), weights (B, H, Q, S) or None."""
        batch_size, query_len, _ = query.shape
        heads = (batch_size, -1, self.num_heads, self.head_dim)
        implementation = self.config._attn_implementation or "sdpa"
        plain = _plain_linears(self.q_proj, self.k_proj, self.v_proj)  # False under LoRA, quantization, hooks
        if plain and key is value and query is not key:
            hidden = self.num_heads * self.head_dim
            if implementation == "sdpa" and not output_attentions and absorption_pays(
                self.num_heads, hidden, query_len, key.shape[1]
            ):
                return self._absorbed_cross_attention(query, key), None
            # Cross-attention: k and v read the same memory, so one (E -> 2E) matmul computes both.
            query_states = self.q_proj(query)
            key_states, value_states = _fused_linear(key, self.k_proj, self.v_proj)
        elif plain and query is key and key is not value:
            # Self-attention with a query position: q and k read the same input, v does not.
            query_states, key_states = _fused_linear(query, self.q_proj, self.k_proj)
            value_states = self.v_proj(value)
        else:
            query_states, key_states, value_states = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        query_states = query_states.view(heads).transpose(1, 2)  # (B, H, Q, D)
        key_states = key_states.view(heads).transpose(1, 2)  # (B, H, S, D)
        value_states = value_states.view(heads).transpose(1, 2)  # (B, H, S, D)

        if output_attentions or implementation == "eager":
            attention = eager_attention_forward
        else:
            attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        output, weights = attention(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask=None,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        output = self.out_proj(output.reshape(batch_size, query_len, -1))  # (B, Q, E)
        return output, (weights if output_attentions else None)

    def _absorbed_cross_attention(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Cross-attention of Q queries over S memory rows without projecting the memory to keys and values.

        Per head h, with W_k,h, W_v,h the head's (D, E) rows of k_proj / v_proj:
        q_h . (W_k,h m + b_k,h) = (W_k,h^T q_h) . m + q_h . b_k,h (the last term is the same for every
        memory row) and sum_s a_s (W_v,h m_s + b_v,h) = W_v,h (sum_s a_s m_s) + b_v,h sum_s a_s.
        So the (B, S, E) x (E, E) key and value matmuls, the model's largest, become (B, Q, E) x (E, E) ones
        plus attention over the E-wide memory shared by all heads: the same function up to float rounding
        (the `eager` path computes it the usual way), the same parameters.

        query (B, Q, E), memory (B, S, E) -> (B, Q, E).
        """
        batch_size, query_len, hidden = query.shape
        num_heads, head_dim = self.num_heads, self.head_dim
        query_states = self.q_proj(query) * self.scaling  # (B, Q, E)
        key_weight = self.k_proj.weight.view(num_heads, head_dim, hidden)  # (H, D, E)
        value_weight = self.v_proj.weight.view(num_heads, head_dim, hidden)  # (H, D, E)
        query_heads = query_states.view(batch_size, query_len, num_heads, head_dim)  # (B, Q, H, D)
        # Queries moved into memory space: (B, H*Q, E); every head attends over the same memory rows.
        query_states = torch.einsum("bqhd,hde->bhqe", query_heads, key_weight).reshape(batch_size, -1, hidden)
        scores = torch.bmm(query_states, memory.transpose(1, 2))  # (B, H*Q, S)
        if self.k_proj.bias is not None:
            # q_h . b_k,h shifts a query's scores by a constant: no effect on the output, but kept so that
            # k_proj.bias gets its (vanishing) gradient as usual (DDP and optimizers expect one).
            key_bias = self.k_proj.bias.view(num_heads, head_dim)
            scores = scores + torch.einsum("bqhd,hd->bhq", query_heads, key_bias).reshape(batch_size, -1, 1)
        weights = F.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(scores.dtype)
        if self.training and self.attention_dropout > 0:
            weights = F.dropout(weights, p=self.attention_dropout, training=True)
            mass = weights.sum(-1).view(batch_size, num_heads, query_len).transpose(1, 2)  # (B, Q, H): sum_s a_s
        else:
            mass = None  # the weights sum to 1
        attended = torch.bmm(weights, memory).view(batch_size, num_heads, query_len, hidden)  # (B, H, Q, E)
        output = torch.einsum("bhqe,hde->bqhd", attended, value_weight)  # (B, Q, H, D)
        if self.v_proj.bias is not None:
            value_bias = self.v_proj.bias.view(num_heads, head_dim)
            output = output + (value_bias if mass is None else mass.unsqueeze(-1).to(output.dtype) * value_bias)
        return self.out_proj(output.reshape(batch_size, query_len, hidden))


def absorption_pays(num_heads: int, hidden_size: int, query_len: int, memory_len: int) -> bool:
    """Whether `LcmAttention._absorbed_cross_attention` needs fewer FLOPs than projecting the memory: per
    sample it costs ~Q*(E + H*S)*E multiply-adds against ~S*(E + Q)*E (true while Q is small next to S and E)."""
    return query_len * (hidden_size + num_heads * memory_len) < memory_len * (hidden_size + query_len)


def _plain_linears(*modules: nn.Module) -> bool:
    """Whether the modules are our own projections without hooks, so their weights may be used directly
    (not a LoRA wrapper, a quantized replacement or a module hooked by e.g. DeepSpeed ZeRO-3)."""
    return all(type(m) is LcmAttentionProjection and not (m._forward_hooks or m._forward_pre_hooks) for m in modules)


def _fused_linear(inputs: torch.Tensor, first: nn.Linear, second: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """`first(inputs), second(inputs)` as one matmul with the two weights stacked (the same values up to
    float rounding; the parameters stay separate, so names, shapes and checkpoints are unchanged)."""
    weight, bias = torch.cat([first.weight, second.weight]), torch.cat([first.bias, second.bias])
    return F.linear(inputs, weight, bias).chunk(2, dim=-1)


class LcmFeedForward(nn.Module):
    def __init__(self, config: LcmConfig):
        super().__init__()
        self.linear1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]()
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(hidden_states))))


class LcmDecoderLayer(GradientCheckpointingLayer):
    """Self-attention over BEI tokens, cross-attention to the FC memory, feed-forward.

    The BEI embedding (`query_position`) is added to the queries and keys of self-attention and
    to the queries of cross-attention (DETR). Post-norm by default, pre-norm as an option.
    """

    def __init__(self, config: LcmConfig):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.self_attn = LcmAttention(config)
        self.cross_attn = LcmAttention(config)
        self.feed_forward = LcmFeedForward(config)
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.norm3 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)

    def forward(self, hidden_states, query_position, memory, output_attentions: bool = False):
        """hidden_states (B, P, E), query_position (B, P, E), memory (B, N, E) -> (B, P, E), weights."""
        # Self-attention between BEI tokens.
        x = self.norm1(hidden_states) if self.pre_norm else hidden_states
        positioned = x + query_position
        update, self_weights = self.self_attn(positioned, positioned, x, output_attentions)
        hidden_states = hidden_states + self.dropout1(update)
        if not self.pre_norm:
            hidden_states = self.norm1(hidden_states)
        # Cross-attention from BEI tokens to FC rows.
        x = self.norm2(hidden_states) if self.pre_norm else hidden_states
        update, cross_weights = self.cross_attn(x + query_position, memory, memory, output_attentions)
        hidden_states = hidden_states + self.dropout2(update)
        if not self.pre_norm:
            hidden_states = self.norm2(hidden_states)
        # Feed-forward.
        x = self.norm3(hidden_states) if self.pre_norm else hidden_states
        hidden_states = hidden_states + self.dropout3(self.feed_forward(x))
        if not self.pre_norm:
            hidden_states = self.norm3(hidden_states)
        return hidden_states, self_weights, cross_weights


__all__ = [
    "LcmAttention",
    "LcmAttentionProjection",
    "LcmDecoderLayer",
    "LcmFcEncoder",
    "LcmFeedForward",
    "absorption_pays",
    "eager_attention_forward",
]
