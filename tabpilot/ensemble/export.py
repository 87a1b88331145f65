"""A fitted ensemble as a readable, standalone Python script (`tabpilot export`, `AutoML.export()`).

The script holds the imports, tabpilot's own transformers copied from their source
(tabpilot.ensemble.source), each member as a scikit-learn Pipeline with its hyperparameters, and how
the members' predictions are combined (Caruana's weights, or the fitted stacker's coefficients, and
the temperature). Run on a table, it fits every member on all of its rows (a bagged member as the
same k-fold bag) and predicts another table. Fitted on the rows the model was trained on
(runs/NAME/data/prepared/train.parquet), in the same order, it gives the model's predictions.
"""
from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from tabpilot.data.files import _as_kind, label_kind, normalise
from tabpilot.ensemble.model import EnsembleModel, apply_temperature, stack_features
from tabpilot.ensemble.source import Source
from tabpilot.search.evaluate import make_folds
from tabpilot.search.fold_bag import FoldBag

_RUN = '''
def read(path):
    """A CSV or Parquet table, its columns typed as tabpilot types them (numbers as float64)."""
    path = str(path)
    frame = pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    return normalise(frame, KINDS)


def encode(y):
    """The target as the members learned it: class labels as 0..k-1 in CLASSES' order, or floats."""
    if TASK == "regression":
        return y.to_numpy(dtype=float)
    index = {label: i for i, label in enumerate(CLASSES)}
    codes = [index.get(_as_kind(v, LABEL_KIND)) for v in y.dropna()]
    if len(codes) != len(y) or None in codes:
        raise SystemExit(f"the target column {TARGET!r} holds missing values or labels other than {CLASSES}")
    return np.asarray(codes, dtype=np.int64)


def bag_rows(y, bag):
    """The training rows of each model of a bagged member: its k-folds, as tabpilot drew them."""
    folds = []
    for seed, repeats in bag["groups"]:
        folds += make_folds(y, TASK, bag["n_folds"], seed, repeats)
    return [train for train, _ in folds[: bag["count"]]]


def fit(frame):
    """Every member fitted on all rows of `frame` (a bagged member: one model per fold)."""
    y = encode(frame[TARGET])
    X = frame.drop(columns=[TARGET])
    fitted = []
    for i, member in enumerate(MEMBERS):
        bag = BAGS.get(i)
        if bag is None:
            fitted.append([member().fit(X, y)])
        else:
            fitted.append([member().fit(X.iloc[rows], y[rows]) for rows in bag_rows(y, bag)])
    return fitted


def combine(outputs):
    """The members' predictions combined: weighted, or by the stacker; then the temperature."""
    if STACKER is None:
        total = sum(w * p for p, w in zip(outputs, WEIGHTS))
    elif TASK == "regression":
        total = stack_features(outputs, TASK) @ np.asarray(STACKER["coef"]) + STACKER["intercept"]
    else:
        Z = (stack_features(outputs, TASK) - np.asarray(STACKER["mean"])) / np.asarray(STACKER["scale"])
        decision = Z @ np.asarray(STACKER["coef"]).T + np.asarray(STACKER["intercept"])
        if decision.shape[1] == 1:  # binary: the logistic of one decision value
            positive = 1.0 / (1.0 + np.exp(-decision[:, 0]))
            total = np.column_stack([1.0 - positive, positive])
        else:
            decision = np.exp(decision - decision.max(axis=1, keepdims=True))
            total = decision / decision.sum(axis=1, keepdims=True)
    return total if TASK == "regression" else apply_temperature(total, TEMPERATURE)


def predict(fitted, frame):
    """`prediction` for each row of `frame`, and `proba_<class>` per class for a classifier."""
    X = frame.drop(columns=[TARGET], errors="ignore")
    method = "predict" if TASK == "regression" else "predict_proba"
    outputs = [np.mean([np.asarray(getattr(m, method)(X), dtype=float) for m in models], axis=0)
               for models in fitted]
    combined = combine(outputs)
    if TASK == "regression":
        return pd.DataFrame({"prediction": combined}, index=frame.index)
    out = pd.DataFrame({"prediction": np.asarray(CLASSES, dtype=object)[combined.argmax(axis=1)]}, index=frame.index)
    for i, label in enumerate(CLASSES):
        out[f"proba_{label}"] = combined[:, i]
    return out


def main(argv):
    if len(argv) not in (3, 4):
        raise SystemExit(f"usage: python {argv[0]} TRAIN.csv INPUT.csv [OUTPUT.csv]")
    fitted = fit(read(argv[1]))
    predictions = predict(fitted, read(argv[2]))
    if len(argv) == 4:
        predictions.to_csv(argv[3], index=False)
    else:
        print(predictions.to_csv(index=False), end="")


if __name__ == "__main__":
    main(sys.argv)
'''


def _stacker(stacker: Any, task: str) -> dict[str, Any] | None:
    """The fitted stacker's numbers: a linear regression's, or a scaled logistic regression's."""
    if stacker is None:
        return None
    if task == "regression":
        return {"coef": stacker.coef_.tolist(), "intercept": float(stacker.intercept_)}
    scaler, logistic = stacker.steps[0][1], stacker.steps[-1][1]
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(), "coef": logistic.coef_.tolist(),
            "intercept": logistic.intercept_.tolist()}


def _members(model: EnsembleModel, source: Source) -> tuple[list[str], dict[int, dict[str, Any]]]:
    """The builder functions: one per distinct preprocessing, then one per member; and the fold
    bags' splits (by member position)."""
    preprocessors: dict[str, str] = {}  # code -> function name (members often share one)
    members, bags = [], {}
    for i, member in enumerate(model.members or []):
        pipeline, how = member, "one model on all rows"
        if isinstance(member, FoldBag):
            pipeline = member.models[0]  # type: ignore[index]
            split = getattr(member, "split", None)
            if split is None:
                raise ValueError("a bagged member does not record its folds (a model from before tabpilot "
                                 "0.3.1): retrain it to export it")
            bags[i] = {"n_folds": split["n_folds"], "groups": split["groups"], "count": len(member.models)}  # type: ignore[arg-type]
            how = f"a bag of {len(member.models)} models, one per fold"  # type: ignore[arg-type]
        steps = []
        for name, step in pipeline.steps:
            code = source.code(step, 8)
            if name == "preprocess":
                code = preprocessors.setdefault(code, f"preprocessing_{len(preprocessors) + 1}") + "()"
            steps.append(f"        ({name!r}, {code}),\n")
        members.append(f'def member_{i + 1}():\n    """Weight {model.weights_[i]:.4f}: {how}."""\n'
                       f"    return Pipeline([\n{''.join(steps)}    ])\n")
    source.name(Pipeline)
    shared = [f'def {name}():\n    """Raw columns to the model\'s inputs."""\n    return {_dedent(code)}\n'
              for code, name in preprocessors.items()]
    return shared + members, bags


def _dedent(code: str) -> str:
    """Code written for a member's step (8 spaces in) as a function's return value (4 spaces in)."""
    return code.replace("\n        ", "\n    ")


def export_script(model: EnsembleModel, target: str, kinds: dict[str, str] | None = None,
                  title: str = "a tabpilot ensemble") -> str:
    """The script's text. `kinds` are the data contract's column kinds (a column with no value in a
    table gets its type from them, as in tabpilot's own predict)."""
    from tabpilot import __version__

    source = Source()
    for helper in (normalise, _as_kind, apply_temperature, stack_features, make_folds):
        source.name(helper)
    for module in ("numpy", "pandas"):
        source.name(__import__(module))
    functions, bags = _members(model, source)
    n_members = len(model.members or [])
    classes = [] if model.task == "regression" else list(model.classes_)
    kind = label_kind(pd.Series(classes, dtype=object)) if classes else "float"
    constants = "\n".join([
        f"TARGET = {target!r}",
        f"TASK = {model.task!r}",
        f"CLASSES = {source.code([_as_kind(c, kind) for c in classes])}",
        f"LABEL_KIND = {kind!r}  # the labels' type, as the training table held them",
        f"KINDS = {source.code(dict(kinds or {}))}  # each column's kind in the training data",
        f"WEIGHTS = {source.code([float(w) for w in model.weights_])}",
        f"BAGS = {source.code(bags)}  # members fitted as fold bags: their folds (make_folds' arguments)",
        f"TEMPERATURE = {float(model.temperature)!r}",
        f"STACKER = {source.code(_stacker(model.stacker, model.task))}",
    ])
    libraries = sorted({line.split()[1].split(".")[0] for line in source.imports.values()} - {"__future__"})
    doc = textwrap.dedent(f'''\
        """{title}, exported by tabpilot {__version__} as a standalone script.

        It fits the {n_members} member(s) below on all rows of a table (target column {target!r}) and predicts
        another table's rows:

            python {{this file}} TRAIN.csv INPUT.csv [OUTPUT.csv]

        Fitted on the rows the model was trained on, in the same order (a run's
        data/prepared/train.parquet), it gives the model's own predictions. Needs: {", ".join(libraries)}.
        """''').replace("{this file}", "pipeline.py")
    return "\n".join([
        "#!/usr/bin/env python", doc, "from __future__ import annotations", "", "import sys", "",
        source.header(), "", "",
        "# ------------------------------------------------------------------ the ensemble", "",
        constants, "", "", "\n\n".join(functions), "",
        f"MEMBERS = [{', '.join(f'member_{i + 1}' for i in range(n_members))}]", "",
        _RUN.strip("\n"), "",
    ])
