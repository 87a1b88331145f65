"""Regularized evolution (Real et al., 2019) over whole pipelines: family, hyperparameters and
feature settings.

The population is the POPULATION configurations told last. Each proposal draws SAMPLE of them at
random, takes the best as the parent and mutates one of its genes, chosen uniformly: the family (a
random configuration of another family, the feature settings kept), one hyperparameter (a numeric
one moves by a normal step of STEP on its unit scale, a choice takes another value) or one feature
setting. A told child joins the population and the oldest member dies ("aging": a configuration
must keep being rediscovered to survive, which guards against one lucky fold score). Until the
population is full, proposals are random; the warm start's configurations, told like any trial,
seed it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tabpilot.search.strategy import PointSearch

POPULATION, SAMPLE, STEP = 20, 5, 0.2
ATTEMPTS = 10  # mutations tried before a child already run is given up for a random configuration


class EvolutionSearch(PointSearch):
    def propose(self) -> dict[str, Any]:
        population = self.told[-POPULATION:]
        if len(population) < POPULATION:
            return self.encoder.sample(self.rng)
        drawn = self.rng.choice(len(population), size=min(SAMPLE, len(population)), replace=False)
        parent = min((population[i] for i in drawn), key=lambda member: member[1])[0]
        for _ in range(ATTEMPTS):
            child = self.mutate(parent)
            if not self.seen(child):
                return child
        return self.encoder.sample(self.rng)

    def mutate(self, parent: dict[str, Any]) -> dict[str, Any]:
        family = parent["family"]
        dims = self.encoder.dims(family)
        genes = (["family"] if len(self.encoder.families) > 1 else []) + [name for name, _ in dims]
        gene = genes[int(self.rng.integers(len(genes)))]
        x = self.encoder.encode(parent)
        if gene == "family":
            others = [f for f in self.encoder.families if f != family]
            other = others[int(self.rng.integers(len(others)))]
            child = self.encoder.sample(self.rng, other)
            kept = [i for i, (name, _) in enumerate(dims) if name.startswith("features.")]
            y = self.encoder.encode(child)
            width = len(self.encoder.dims(other))
            y[width - len(kept):] = x[kept]  # feature settings are the last dimensions of every cube
            return self.encoder.decode(other, y)
        i = [name for name, _ in dims].index(gene)
        dim = dims[i][1]
        if dim[0] == "choice":
            n = len(dim[1])
            current = min(int(x[i] * n), n - 1)
            others = [j for j in range(n) if j != current] or [current]
            x[i] = (others[int(self.rng.integers(len(others)))] + 0.5) / n
        else:
            x[i] = float(np.clip(x[i] + self.rng.normal(0.0, STEP), 0.0, 1.0))
        return self.encoder.decode(family, x)
