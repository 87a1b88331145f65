"""DARTS for a table's MLP (Liu et al., 2019, first-order): which depth, width per layer and
activation, found by gradient descent on the validation loss.

A supernet of `depth` layers of `width` units; each layer is a softmax-weighted mix of every candidate
operation: Linear -> normalisation -> activation for each activation, its output kept on the first
quarter, half or all of the units (the width choice: a narrower layer is a wider one with units
masked, as FBNet masks channels), and `skip` (the layer left out; a projection on the first layer,
whose input width differs). The architecture weights step on a batch of the architecture rows, the
network weights on a batch of the weight rows, in turn. Then each layer keeps its strongest
operation (a `skip` drops the layer) and the caller trains that network from scratch.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from tabpilot.families.net_blocks import Encoder, activation_module, batches, loss_function, norm_module

DARTS_ACTIVATIONS = ("relu", "gelu", "tanh")
FRACTIONS = (0.25, 0.5, 1.0)
OPERATIONS = [(a, f) for a in DARTS_ACTIVATIONS for f in FRACTIONS] + [("skip", 0.0)]
# The DARTS paper's Adam settings for the architecture weights, with a 10x learning rate: a small
# table gives a few hundred steps where an image set gives tens of thousands.
ARCH_LR = 3e-2
ARCH_WEIGHT_DECAY = 1e-3
MIN_STEPS = 300  # steps of each kind, whatever the epochs come to on a small table


class MixedLayer(nn.Module):
    """Every candidate operation of one layer; `forward` mixes them by the given weights."""

    def __init__(self, width_in: int, width: int, norm: str, dropout: float) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(width_in, width) for _ in DARTS_ACTIVATIONS)
        self.norms = nn.ModuleList(norm_module(norm, width) for _ in DARTS_ACTIVATIONS)
        self.activations = nn.ModuleList(activation_module(a) for a in DARTS_ACTIVATIONS)
        masks = torch.zeros(len(FRACTIONS), width)
        for i, fraction in enumerate(FRACTIONS):
            masks[i, : max(1, round(fraction * width))] = 1.0
        self.register_buffer("masks", masks)
        self.skip = nn.Identity() if width_in == width else nn.Linear(width_in, width, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        outputs = []
        for linear, norm, activation in zip(self.linears, self.norms, self.activations, strict=True):
            z = activation(norm(linear(x)))
            outputs.extend(z * mask for mask in self.masks)
        outputs.append(self.skip(x))
        return self.dropout(sum(w * out for w, out in zip(weights, outputs, strict=True)))


class SuperNet(nn.Module):
    def __init__(self, levels: list[int], n_numeric: int, width: int, depth: int, norm: str, dropout: float,
                 n_out: int) -> None:
        super().__init__()
        self.encoder = Encoder(levels, n_numeric)
        widths = [self.encoder.width] + [width] * depth
        self.layers = nn.ModuleList(MixedLayer(widths[i], width, norm, dropout) for i in range(depth))
        self.head = nn.Linear(width, n_out)
        self.alphas = nn.Parameter(torch.zeros(depth, len(OPERATIONS)))

    def weights(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def forward(self, numbers: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        x = self.encoder(numbers, codes)
        mix = torch.softmax(self.alphas, dim=1)
        for i, layer in enumerate(self.layers):
            x = layer(x, mix[i])
        return self.head(x)

    def architecture(self) -> str:
        """The strongest operation of each layer as `width:activation`, skipped layers left out."""
        layers = []
        for row in self.alphas.detach():
            activation, fraction = OPERATIONS[int(torch.argmax(row))]
            if activation != "skip":
                layers.append(f"{max(1, round(fraction * self.head.in_features))}:{activation}")
        return ",".join(layers)


def search_architecture(model: Any, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], rows: np.ndarray,
                        n_out: int, deadline: float) -> tuple[str, list[list[float]]]:
    """The architecture DARTS finds on `rows` (half train the weights, half the architecture) in
    `model.darts_epochs` epochs (or MIN_STEPS steps) or by `deadline`; and the final operation
    weights per layer."""
    numbers, codes, target = data
    order = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(model.seed + 1)).numpy()]
    weight_rows, arch_rows = order[: len(order) // 2], order[len(order) // 2:]
    net = SuperNet(model.inputs_.levels, model.inputs_.n_numeric, model.darts_width, model.darts_depth, model.norm,
                   model.dropout, n_out)
    weights = torch.optim.AdamW(net.weights(), lr=model.lr, weight_decay=model.weight_decay)
    arch = torch.optim.Adam([net.alphas], lr=ARCH_LR, betas=(0.5, 0.999), weight_decay=ARCH_WEIGHT_DECAY)
    loss_of = loss_function(model.task)
    generator = torch.Generator().manual_seed(model.seed)
    size = int(min(model.batch_size, max(16, len(weight_rows) // 4)))
    net.train()
    per_epoch = -(-len(weight_rows) // size)
    for _ in range(max(model.darts_epochs, -(-MIN_STEPS // per_epoch))):
        arch_batches = batches(arch_rows, size, generator)
        for k, batch in enumerate(batches(weight_rows, size, generator)):
            held = torch.as_tensor(arch_batches[k % len(arch_batches)])
            arch.zero_grad()
            loss_of(net(numbers[held], codes[held]), target[held]).backward()
            arch.step()
            index = torch.as_tensor(batch)
            weights.zero_grad()
            loss_of(net(numbers[index], codes[index]), target[index]).backward()
            weights.step()
        if time.time() > deadline:
            break
    return net.architecture(), torch.softmax(net.alphas.detach(), dim=1).tolist()
