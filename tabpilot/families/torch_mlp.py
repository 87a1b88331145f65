"""A PyTorch MLP for tables (tabpilot.families.neural_net), in two families that differ in how its
architecture is found:

- `torch_mlp`: depth, width per layer, activation, normalisation, dropout and residual connections
  are hyperparameters, searched as the others are (TPE by default; `search.strategy: evolution` is
  regularized evolution over them);
- `torch_darts`: each trial finds depth, width per layer and activation by DARTS on its training rows
  (tabpilot.families.darts), then trains that network; the search tunes the rest.

In both, `hypergradient` lets the learning rate and weight decay adapt during training by their
hypergradients. Neither is searched by default: opt in with `search.families` (docs/search.md).
"""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family

MAX_LAYERS = 4
WIDTHS = [32, 64, 128, 256, 512]
# torch's activation and normalisation names (tabpilot.families.net_blocks, which imports torch)
ACTIVATIONS = ["relu", "gelu", "silu", "tanh"]
NORMS = ["none", "batch", "layer"]
MAX_ROWS = 200_000  # one core: an epoch of 200,000 rows takes seconds; past it the trees win on time
# A fit stops (with its best epoch so far) after this share of the run's budget: the first trial has
# no deadline (every search delivers a model), and a neural fit can take any time. Without a clock
# (trial-count mode), FIT_SECONDS: the same seed and trials must give the same model on any machine.
FIT_SHARE = 0.1
FIT_SECONDS = 600.0


def _training(p: dict[str, Any], c: Context) -> dict[str, Any]:
    return {"task": c.task, "categorical": c.categorical, "norm": p["norm"], "dropout": p["dropout"],
            "lr": p["lr"], "weight_decay": p["weight_decay"], "batch_size": p["batch_size"],
            "hypergradient": p["hypergradient"], "seed": c.seed,
            "max_seconds": FIT_SHARE * c.budget if c.budget else FIT_SECONDS}


def _torch_mlp(p: dict[str, Any], c: Context) -> Any:
    layers = ",".join(f"{p[f'width_{i}']}:{p['activation']}" for i in range(1, p["depth"] + 1))
    settings = {**_training(p, c), "architecture": layers, "skip": p["skip"]}
    from tabpilot.families.neural_net import TabularNet  # after the parameters: the warm server skips torch

    return TabularNet(**settings)


def _torch_darts(p: dict[str, Any], c: Context) -> Any:
    settings = {**_training(p, c), "architecture": "darts", "darts_width": p["darts_width"],
                "darts_depth": p["darts_depth"]}
    from tabpilot.families.neural_net import TabularNet

    return TabularNet(**settings)


TRAINING = {
    "norm": ("choice", NORMS),
    "dropout": ("uniform", 0.0, 0.5),
    "lr": ("loguniform", 3e-4, 1e-2),
    "weight_decay": ("loguniform", 1e-6, 1e-1),
    "batch_size": ("choice", [64, 128, 256, 512]),
    "hypergradient": ("choice", [False, True]),
}
TRAINING_DEFAULT = {"norm": "none", "dropout": 0.1, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 256,
                    "hypergradient": False}

TORCH_MLP = Family(
    "torch_mlp", _torch_mlp,
    space={"depth": ("int", 1, MAX_LAYERS), **{f"width_{i}": ("choice", WIDTHS) for i in range(1, MAX_LAYERS + 1)},
           "activation": ("choice", ACTIVATIONS), "skip": ("choice", [False, True]), **TRAINING},
    default={"depth": 2, "width_1": 256, "width_2": 128, "width_3": 128, "width_4": 128, "activation": "relu",
             "skip": False, **TRAINING_DEFAULT},
    cost_rank=11, max_rows=MAX_ROWS, searched_by_default=False)

TORCH_DARTS = Family(
    "torch_darts", _torch_darts,
    space={"darts_width": ("choice", [64, 128, 256]), "darts_depth": ("int", 1, MAX_LAYERS), **TRAINING},
    default={"darts_width": 128, "darts_depth": 3, **TRAINING_DEFAULT},
    cost_rank=12, max_rows=MAX_ROWS, searched_by_default=False)
