"""A multilayer perceptron for tables, in PyTorch, as a scikit-learn estimator (the torch_mlp and
torch_darts families; tabpilot.families.torch_mlp declares them and imports this only when a trial
needs it: torch takes 2 s to import).

It takes the tree preprocessing's output (numbers with gaps, categorical columns as ordinal codes
named in `categorical`; tabpilot.families.net_blocks.Inputs makes the network's inputs of them).
Hidden layers are Linear -> normalisation -> activation -> dropout, with residual connections if
`skip`; AdamW; early stopping on a held-out tenth of the rows, keeping the best epoch's weights.

The architecture is a string, one `width:activation` per hidden layer ("256:relu,128:gelu"), or
"darts": found for these rows by differentiable search (tabpilot.families.darts) before training.
With `hypergradient`, the learning rate follows the hypergradient of the training loss (Baydin et
al., 2018) and the weight decay the one-step hypergradient of the validation loss (Luketina et al.,
2016), from the given starting values.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from tabpilot.families.darts import search_architecture
from tabpilot.families.net_blocks import Inputs, Network, batches, loss_function, parse_architecture

VALID_SHARE = 0.1  # rows held out for early stopping (and the weight decay's hypergradient)
HYPER_LR_RATE = 0.02  # multiplicative step of the learning rate per unit of cosine (Baydin's beta)
HYPER_WD_RATE = 0.05  # step of log(weight decay) per hypergradient step (Adam-normalised)
HYPER_EVERY = 4  # steps between two validation hypergradients of the weight decay


def holdout(y: np.ndarray, classify: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows (stratified for classes), VALID_SHARE of them for validation."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    n_valid = max(1, int(round(VALID_SHARE * len(y))))
    stratify = classify and np.bincount(y).min() >= 2 and n_valid >= len(np.unique(y))
    splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(n_splits=1, test_size=n_valid, random_state=seed)
    train, valid = next(splitter.split(np.zeros(len(y)), y if stratify else None))
    return train, valid


class TabularNet(BaseEstimator):
    """See the module's docstring. `task` is binary, multiclass or regression. `max_seconds` caps a fit
    (half of it for DARTS); `darts_*` size the supernet."""

    def __init__(self, task: str = "binary", categorical: tuple[str, ...] = (), architecture: str = "128:relu,64:relu",
                 norm: str = "none", dropout: float = 0.1, skip: bool = False, lr: float = 1e-3,
                 weight_decay: float = 1e-4, batch_size: int = 256, max_epochs: int = 200, patience: int = 12,
                 hypergradient: bool = False, darts_width: int = 128, darts_depth: int = 3, darts_epochs: int = 20,
                 max_seconds: float = 600.0, seed: int = 0) -> None:
        self.task = task
        self.categorical = categorical
        self.architecture = architecture
        self.norm = norm
        self.dropout = dropout
        self.skip = skip
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.hypergradient = hypergradient
        self.darts_width = darts_width
        self.darts_depth = darts_depth
        self.darts_epochs = darts_epochs
        self.max_seconds = max_seconds
        self.seed = seed

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor" if self.task == "regression" else "classifier"
        tags.input_tags.allow_nan = True
        return tags

    def _data(self, X: Any, y: np.ndarray | None = None, dtype: torch.dtype = torch.float32) -> tuple[Any, Any, Any]:
        numbers, codes = self.inputs_.tensors(np.asarray(X, dtype=np.float64), dtype)
        if y is None:
            return numbers, codes, None
        if self.task == "regression":
            target = torch.as_tensor((y - self.y_mean_) / self.y_scale_, dtype=torch.float32).reshape(-1, 1)
        else:
            target = torch.as_tensor(y, dtype=torch.int64)
        return numbers, codes, target

    def fit(self, X: Any, y: Any) -> TabularNet:
        started = time.time()
        names = [str(c) for c in getattr(X, "columns", [])]
        positions = [names.index(c) for c in self.categorical if c in names]
        matrix = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        self.n_features_in_ = matrix.shape[1]
        classify = self.task != "regression"
        if classify:
            self.classes_ = np.unique(y)
            y = np.searchsorted(self.classes_, y)
        else:
            y = y.astype(np.float64)
            self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        self.inputs_ = Inputs(matrix, positions, self.seed)
        train, valid = holdout(y, classify, self.seed)
        n_out = len(self.classes_) if classify else 1
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a search worker has one core
        try:
            torch.manual_seed(self.seed)
            data = self._data(matrix, y)
            if self.architecture == "darts":
                # on the training rows only: the validation rows stay for early stopping
                self.architecture_, self.darts_weights_ = search_architecture(
                    self, data, train, n_out, deadline=started + self.max_seconds / 2)
                torch.manual_seed(self.seed)
            else:
                self.architecture_ = self.architecture
            layers = parse_architecture(self.architecture_)
            self.network_ = Network(self.inputs_.levels, self.inputs_.n_numeric, layers, self.norm, self.dropout,
                                    self.skip, n_out)
            self.history_ = train_network(self, self.network_, data, train, valid, started + self.max_seconds)
        finally:
            torch.set_num_threads(threads)
        self.network_.eval().double()
        return self

    def _forward(self, X: Any) -> np.ndarray:
        # In float64: float32 sums differ with the batch's shape (7e-5 on values near 1,400), and a row
        # served alone must get what it gets in a file.
        numbers, codes, _ = self._data(X, dtype=torch.float64)
        with torch.no_grad():
            return self.network_(numbers, codes).numpy().astype(np.float64)

    @available_if(lambda self: self.task != "regression")
    def predict_proba(self, X: Any) -> np.ndarray:
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "regression":
            return self._forward(X)[:, 0] * self.y_scale_ + self.y_mean_
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _flat(tensors: list[Any]) -> Any:
    return torch.cat([t.reshape(-1) for t in tensors])


def _cosine(a: Any, b: Any) -> float:
    norm = float(torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
    return float(torch.dot(a, b)) / norm if norm > 0 else 0.0


def train_network(model: TabularNet, network: Any, data: tuple[Any, Any, Any], train: np.ndarray,
                  valid: np.ndarray, deadline: float) -> dict[str, Any]:
    """AdamW with early stopping on the validation rows; the best epoch's weights are kept.
    With `model.hypergradient`, the learning rate and weight decay adapt by their hypergradients."""
    numbers, codes, target = data
    loss_of = loss_function(model.task)
    optimizer = torch.optim.AdamW(network.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    params = [p for p in network.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(model.seed)
    size = int(min(model.batch_size, max(16, len(train) // 4)))
    best, best_state, stale, epoch = math.inf, None, 0, 0
    previous_update = None  # Adam's last step direction, for the learning rate's hypergradient
    lr, weight_decay, step = model.lr, model.weight_decay, 0
    decay = LogAdam(weight_decay, HYPER_WD_RATE, model.weight_decay / 1000, model.weight_decay * 1000)
    valid_rows = torch.as_tensor(valid)
    while epoch < model.max_epochs:
        epoch += 1
        network.train()
        for rows in batches(train, size, generator):
            index = torch.as_tensor(rows)
            optimizer.zero_grad()
            loss = loss_of(network(numbers[index], codes[index]), target[index])
            loss.backward()
            if model.hypergradient:
                gradient = _flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])
                if previous_update is not None:  # d loss / d lr = -g . u_prev: step lr by the cosine
                    lr = float(np.clip(lr * (1 + HYPER_LR_RATE * _cosine(gradient, previous_update)),
                                       model.lr / 100, model.lr * 100))
                before = _flat([p.detach().clone() for p in params])
            for group in optimizer.param_groups:
                group["lr"], group["weight_decay"] = lr, weight_decay
            optimizer.step()
            step += 1
            if model.hypergradient:
                after = _flat([p.detach() for p in params])
                # the step's direction without its weight decay part: theta_t = theta(1 - lr wd) - lr u
                previous_update = (before * (1 - lr * weight_decay) - after) / lr
                if step % HYPER_EVERY == 0:
                    held = valid_rows[torch.randperm(len(valid_rows), generator=generator)[:size]]
                    weight_decay = decay.step(_weight_decay_gradient(network, loss_of, data, held, params, before))
        network.eval()
        with torch.no_grad():
            score = float(loss_of(network(numbers[valid_rows], codes[valid_rows]), target[valid_rows]))
        if score < best - 1e-6:
            best, stale = score, 0
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        else:
            stale += 1
        if stale >= model.patience or time.time() > deadline:
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    return {"epochs": epoch, "best_valid_loss": best, "lr": lr, "weight_decay": weight_decay}


def _weight_decay_gradient(network: Any, loss_of: Any, data: tuple[Any, Any, Any], rows: Any, params: list[Any],
                           before: Any) -> float:
    """Minus the weight decay's hypergradient on a batch of validation rows, as a cosine: with decoupled
    decay theta_t = theta(1 - lr wd) - lr u, d L_valid / d wd = -lr grad L_valid(theta_t) . theta
    (positive: more decay lowers the validation loss)."""
    numbers, codes, target = data
    network.zero_grad()
    loss_of(network(numbers[rows], codes[rows]), target[rows]).backward()
    gradient = _flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])
    network.zero_grad()
    return _cosine(gradient, before)


class LogAdam:
    """Adam ascent on the logarithm of a positive hyperparameter: the hypergradient's cosines are
    small and noisy, and Adam's normalisation gives them a step size of `rate` in log space."""

    def __init__(self, value: float, rate: float, low: float, high: float) -> None:
        self.log, self.rate, self.low, self.high = math.log(value), rate, math.log(low), math.log(high)
        self.m = self.v = 0.0
        self.t = 0

    def step(self, ascent: float) -> float:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * ascent
        self.v = 0.999 * self.v + 0.001 * ascent * ascent
        m, v = self.m / (1 - 0.9 ** self.t), self.v / (1 - 0.999 ** self.t)
        self.log = min(self.high, max(self.low, self.log + self.rate * m / (math.sqrt(v) + 1e-12)))
        return math.exp(self.log)
