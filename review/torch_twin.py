"""The PyTorch twin of `sentiment_jax.models.Classifier`, and the weight copy.

The same architecture built from `torch.nn.TransformerEncoderLayer`
(pre-LayerNorm, batch first), so the review can check that ours computes what
PyTorch computes and time the two side by side. Three conventions differ
between the libraries, and each had to be matched for the logits to agree
(findings 13-16 in `review/findings.py`): LayerNorm's epsilon (Flax 1e-6,
PyTorch 1e-5), GELU's form (ours is the tanh approximation, PyTorch's default
is exact erf, and PyTorch's fused inference path ignores the tanh flag),
and the padding mask (ours: True = real token; PyTorch's
`src_key_padding_mask`: True = padding).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sentiment_jax import models

# Flax's LayerNorm default; PyTorch's is 1e-5 (finding 13).
LAYER_NORM_EPS = 1e-6


class TorchClassifier(nn.Module):
  """Token + position embeddings, pre-LN encoder layers, masked mean, head."""

  def __init__(self, config: models.TransformerConfig):
    super().__init__()
    self.config = config
    d = config.embed_dim
    self.token_embed = nn.Embedding(config.vocab_size, d)
    self.position_embed = nn.Parameter(torch.zeros(config.max_len, d))
    self.dropout = nn.Dropout(config.dropout_rate)
    # Finding 14: PyTorch's 'gelu' is exact; ours is the tanh approximation.
    # Finding 16: given an `nn.GELU` module, the layer's fused inference path
    # computes exact GELU whatever its `approximate`; a plain function keeps
    # the layer off that path.
    activation = (functools.partial(F.gelu, approximate='tanh')
                  if config.activation == 'gelu' else nn.ReLU())
    self.layers = nn.ModuleList(
        nn.TransformerEncoderLayer(
            d, config.num_heads, config.mlp_dim, config.dropout_rate,
            activation=activation, layer_norm_eps=LAYER_NORM_EPS,
            batch_first=True, norm_first=True)
        for _ in range(config.num_layers))
    for layer in self.layers:
      # Ours drops attention probabilities at its own rate and has no
      # dropout inside the MLP; PyTorch's layer uses `dropout` for both.
      layer.self_attn.dropout = config.attention_dropout_rate
      layer.dropout = nn.Identity()
    self.final_norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
    self.head = nn.Linear(d, config.num_classes)
    self.pooling = config.pooling

  def forward(self, tokens: torch.Tensor) -> torch.Tensor:
    """tokens: `[batch, seq]` int64 ids. Returns logits `[batch, classes]`."""
    real = tokens != models.PAD_ID
    x = self.token_embed(tokens) + self.position_embed[:tokens.shape[1]]
    x = self.dropout(x)
    for layer in self.layers:
      # Finding 15: PyTorch marks padding with True; we mark real tokens.
      x = layer(x, src_key_padding_mask=~real)
    x = self.final_norm(x)
    if self.pooling == 'cls':
      return self.head(x[:, 0])
    weights = real.unsqueeze(-1).to(x.dtype)
    pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1)
    return self.head(pooled)


def _tensor(value: Any, transpose: bool = False) -> torch.Tensor:
  array = np.array(value, np.float32)  # A writable copy PyTorch can own.
  return torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))


def load_flax_params(twin: TorchClassifier, params: Any) -> TorchClassifier:
  """Copies a `models.Classifier`'s params into `twin` (Dense kernels are
  `[in, out]`, PyTorch weights `[out, in]`; the fused QKV kernel's output axis
  is ordered (q|k|v, head, head_dim), as `in_proj_weight`'s rows are)."""
  encoder = params['encoder']
  state = {'token_embed.weight': _tensor(encoder['token_embed']['embedding']),
           'position_embed': _tensor(encoder['position_embed']),
           'final_norm.weight': _tensor(encoder['final_norm']['scale']),
           'final_norm.bias': _tensor(encoder['final_norm']['bias']),
           'head.weight': _tensor(params['head']['kernel'], True),
           'head.bias': _tensor(params['head']['bias'])}
  for i in range(len(twin.layers)):
    layer, prefix = encoder[f'layer_{i}'], f'layers.{i}.'
    pairs = {'self_attn.in_proj_': layer['attention']['qkv'],
             'self_attn.out_proj.': layer['attention']['out'],
             'linear1.': layer['Dense_0'], 'linear2.': layer['Dense_1']}
    for name, dense in pairs.items():
      state[prefix + name + 'weight'] = _tensor(dense['kernel'], True)
      state[prefix + name + 'bias'] = _tensor(dense['bias'])
    for name, norm in (('norm1.', layer['LayerNorm_0']),
                       ('norm2.', layer['LayerNorm_1'])):
      state[prefix + name + 'weight'] = _tensor(norm['scale'])
      state[prefix + name + 'bias'] = _tensor(norm['bias'])
  twin.load_state_dict(state, strict=True)
  return twin


def make_optimizer(twin: TorchClassifier, learning_rate: float = 1e-3
                   ) -> torch.optim.Optimizer:
  """AdamW as in `steps.create_train_state`: decay on matrices only."""
  matrices = [p for p in twin.parameters() if p.ndim >= 2]
  vectors = [p for p in twin.parameters() if p.ndim < 2]
  return torch.optim.AdamW(
      [{'params': matrices, 'weight_decay': 0.1},
       {'params': vectors, 'weight_decay': 0.0}],
      lr=learning_rate, betas=(0.9, 0.98), eps=1e-8)


def train_step(twin: nn.Module, optimizer: torch.optim.Optimizer,
               tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
  """One clipped AdamW step; returns the loss (a 0-d tensor)."""
  optimizer.zero_grad(set_to_none=True)
  loss = nn.functional.cross_entropy(twin(tokens), labels)
  loss.backward()
  torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
  optimizer.step()
  return loss
