"""Modules (layer 4): ``Parameter``, ``Module`` and the layers that wrap the functional
pairs. The names mirror PyTorch's so that skills transfer, but there is no autograd:
``forward`` caches, ``backward`` accumulates gradients."""

from tinylm.nn.activation import GELU, ReLU, Sigmoid, Tanh
from tinylm.nn.attention import KVCache, MultiHeadAttention
from tinylm.nn.containers import ModuleList, Sequential
from tinylm.nn.cross_attention import CrossAttention
from tinylm.nn.decoder_block import DecoderBlock
from tinylm.nn.dropout import Dropout, TokenDropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.layernorm import LayerNorm
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter
from tinylm.nn.recurrent import GRU, LSTM, RNN
from tinylm.nn.transformer import MLP, Block

__all__ = ["Block", "CrossAttention", "DecoderBlock", "Dropout", "Embedding", "GELU", "GRU",
           "KVCache", "LSTM", "LayerNorm", "Linear", "MLP", "Module", "ModuleList", "MultiHeadAttention", "Parameter", "RNN",
           "ReLU", "Sequential", "Sigmoid", "Tanh", "TokenDropout"]
