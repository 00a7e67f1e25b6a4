"""Shared layers: self-attention (softmax, and blocked sigmoid), spectral normalisation,
conditional BN, residual blocks."""

from sagan.nn.attention import SelfAttention2d, attention_gammas
from sagan.nn.blocks import DBlock, GBlock
from sagan.nn.norm import ConditionalBatchNorm2d, VectorConditionalBatchNorm2d
from sagan.nn.sigmoid_attention import sigmoid_attention, sigmoid_attention_explicit
from sagan.nn.spectral import (
    maybe_spectral_norm,
    sn_conv2d,
    sn_conv_transpose2d,
    sn_embedding,
    sn_linear,
    spectrally_normalised,
)

__all__ = [
    "ConditionalBatchNorm2d",
    "DBlock",
    "GBlock",
    "SelfAttention2d",
    "VectorConditionalBatchNorm2d",
    "attention_gammas",
    "maybe_spectral_norm",
    "sigmoid_attention",
    "sigmoid_attention_explicit",
    "sn_conv2d",
    "sn_conv_transpose2d",
    "sn_embedding",
    "sn_linear",
    "spectrally_normalised",
]
