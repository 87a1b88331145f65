"""The pieces of tabpilot's PyTorch networks for tables (tabpilot.families.neural_net, .darts): the
inputs (numbers imputed, flagged and quantile-normalised; categorical codes for embeddings), the
encoder, hidden blocks, and the shuffled batches. Imports torch: only those two modules import this.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
NORMS = ("none", "batch", "layer")
MAX_EMBEDDING = 16


def parse_architecture(spec: str) -> list[tuple[int, str]]:
    """ "256:relu,128:gelu" -> [(256, "relu"), (128, "gelu")]; "" is no hidden layer (a linear model)."""
    layers = []
    for part in filter(None, spec.split(",")):
        width, _, activation = part.partition(":")
        if activation not in ACTIVATIONS or not width.isdigit() or int(width) < 1:
            raise ValueError(f"bad layer {part!r}: write width:activation with activation in {ACTIVATIONS}")
        layers.append((int(width), activation))
    return layers


def activation_module(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}[name]()


def norm_module(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    return nn.LayerNorm(width) if kind == "layer" else nn.Identity()


def embedding_sizes(levels: list[int]) -> list[int]:
    """fast.ai's rule of thumb, capped: 1.6 x levels^0.56."""
    return [max(2, min(MAX_EMBEDDING, round(1.6 * (n + 1) ** 0.56))) for n in levels]


class Encoder(nn.Module):
    """The numbers, and an embedding of each categorical code, side by side."""

    def __init__(self, levels: list[int], n_numeric: int) -> None:
        super().__init__()
        sizes = embedding_sizes(levels)
        self.embeddings = nn.ModuleList(nn.Embedding(n + 1, d) for n, d in zip(levels, sizes, strict=True))
        self.width = n_numeric + sum(sizes)

    def forward(self, numbers: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return torch.cat([numbers] + [e(codes[:, i]) for i, e in enumerate(self.embeddings)], dim=1)


class Block(nn.Module):
    """Linear -> normalisation -> activation -> dropout, with a residual connection if `skip`
    (through a projection where the width changes)."""

    def __init__(self, width_in: int, width: int, activation: str, norm: str, dropout: float, skip: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width_in, width), norm_module(norm, width), activation_module(activation),
                                  nn.Dropout(dropout))
        projection = nn.Identity() if width_in == width else nn.Linear(width_in, width, bias=False)
        self.shortcut = projection if skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class Network(nn.Module):
    """Encoder, hidden blocks, output layer (logits, or one standardised value)."""

    def __init__(self, levels: list[int], n_numeric: int, layers: list[tuple[int, str]], norm: str, dropout: float,
                 skip: bool, n_out: int) -> None:
        super().__init__()
        self.encoder = Encoder(levels, n_numeric)
        blocks, width = [], self.encoder.width
        for out, activation in layers:
            blocks.append(Block(width, out, activation, norm, dropout, skip))
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_out)

    def forward(self, numbers: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.encoder(numbers, codes)))


class Inputs:
    """A preprocessed matrix as the network's two inputs. Numbers: median-imputed, with a missing
    flag per column that had gaps, mapped to a normal shape by their quantiles (heavy tails would
    swamp the first layer). Codes: level k as k + 1, and 0 for a gap or a level not seen in training."""

    def __init__(self, X: np.ndarray, positions: list[int], seed: int) -> None:
        from sklearn.preprocessing import QuantileTransformer

        self.positions = positions
        self.numeric = [i for i in range(X.shape[1]) if i not in positions]
        values = X[:, self.numeric]
        with np.errstate(all="ignore"):
            medians = np.nanmedian(values, axis=0) if values.size else np.zeros(values.shape[1])
        self.medians = np.nan_to_num(medians, nan=0.0)
        self.flagged = [k for k in range(values.shape[1]) if np.isnan(values[:, k]).any()]
        codes = X[:, positions]
        self.levels = [int(np.nanmax(codes[:, k])) + 1 if np.isfinite(codes[:, k]).any() else 0
                       for k in range(codes.shape[1])]
        self.quantiles = QuantileTransformer(n_quantiles=max(2, min(1000, len(X))), output_distribution="normal",
                                             subsample=100_000, random_state=seed)
        if values.shape[1]:
            self.quantiles.fit(self._filled(values))

    def _filled(self, values: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(values), self.medians, values)

    @property
    def n_numeric(self) -> int:
        return len(self.numeric) + len(self.flagged)

    def tensors(self, X: np.ndarray, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        values = X[:, self.numeric]
        parts = [self.quantiles.transform(self._filled(values))] if values.shape[1] else []
        if self.flagged:
            parts.append(np.isnan(values[:, self.flagged]).astype(float))
        numbers = np.hstack(parts) if parts else np.zeros((len(X), 0))
        codes = X[:, self.positions]
        codes = np.where(np.isfinite(codes), codes + 1, 0)
        codes = np.where(codes > np.asarray(self.levels, dtype=float), 0, codes)
        return (torch.as_tensor(numbers, dtype=dtype),
                torch.as_tensor(codes.astype(np.int64).reshape(len(X), len(self.positions))))


def loss_function(task: str) -> nn.Module:
    return nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss()


def batches(rows: np.ndarray, size: int, generator: torch.Generator) -> list[np.ndarray]:
    """`rows` shuffled by `generator` into batches of `size`; a last batch of one row joins the one
    before (batch normalisation cannot train on one row)."""
    order = rows[torch.randperm(len(rows), generator=generator).numpy()]
    parts = [order[i:i + size] for i in range(0, len(order), size)]
    if len(parts) > 1 and len(parts[-1]) < 2:
        parts[-2] = np.concatenate([parts[-2], parts.pop()])
    return parts
