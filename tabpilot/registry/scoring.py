"""Batch scoring of a file with any MLflow model URI (registry aliases included)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.core.errors import UserError
from tabpilot.data.files import normalise, read_table
from tabpilot.registry import tracking


def check_model_uri(uri: str) -> None:
    """Fail early, in one line, when a model URI names nothing that exists."""
    if uri.startswith("models:/"):
        ref = uri[len("models:/"):]
        name, sep, alias = ref.partition("@")
        if sep and tracking.alias_version(name, alias) is None:
            raise UserError(f"model {uri} not found: no version of '{name}' has alias '{alias}'; "
                            "train one first or check `mlflow ui`")
    elif "://" not in uri and not Path(uri).exists():
        raise UserError(f"model {uri} not found: pass models:/NAME@champion or an MLflow model directory")


def model_contract(model: Any) -> dict[str, Any] | None:
    """The data contract a loaded tabpilot model carries (None for other or older models)."""
    try:
        return getattr(model.unwrap_python_model(), "contract", None)
    except Exception:  # not a python-function model: nothing to check against
        return None


def load(model_uri: str) -> Any:
    """The MLflow model at `model_uri`; a one-line UserError when there is none."""
    check_model_uri(model_uri)
    try:
        return tracking.load_model(model_uri)
    except Exception as error:
        raise UserError(f"model {model_uri} could not be loaded ({type(error).__name__}): check the URI") from None


def score_frame(model: Any, rows: pd.DataFrame, check: bool = True, what: str = "the input",
                skip_check: str = "pass check=False") -> tuple[pd.DataFrame, Any]:
    """The model's prediction columns for `rows`, and the report of `rows` against the model's data
    contract (None when not checked). Rows that break the contract with severity `error` are refused
    before any prediction; `what` and `skip_check` name the input and the way around it in the error."""
    stored = model_contract(model)
    # The signature types columns as the training data was stored (numbers as float, the rest as
    # strings), so Parquet categories or integer columns are converted before MLflow checks them.
    features = normalise(rows, (stored or {}).get("columns"))
    contract = stored if check else None
    report = None
    if contract is not None:
        from tabpilot.data.request_check import check_request

        report = check_request(features, contract, warnings=True)
        if not report.success:
            raise UserError(f"{what} breaks the model's data contract, so nothing was scored. "
                            f"{report.summary()}. Fix those rows, or {skip_check} to score anyway")
    if stored is not None:
        features = features.drop(columns=[stored["target"]], errors="ignore")
    try:
        predictions = model.predict(features)
    except Exception as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"{what} does not fit the model's input ({first}): "
                        "pass rows with the training columns") from None
    return predictions, report


def predict_file(model_uri: str, input_path: Path, output_path: Path, check: bool = True) -> tuple[int, Any]:
    """Write the input rows plus the model's prediction columns; returns the number of rows and
    the validation report of the input against the model's data contract (None when not checked).

    Input that breaks the contract with severity `error` is refused before any prediction.
    """
    rows = read_table(input_path)
    predictions, report = score_frame(load(model_uri), rows, check, str(input_path), "pass --no-validate")
    out = pd.concat([rows.reset_index(drop=True), predictions.reset_index(drop=True)], axis=1)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(output_path, index=False)
    else:
        out.to_csv(output_path, index=False)
    return len(out), report


def export_model(model: Any, model_uri: str, output: Path) -> Path:
    """Write a loaded tabpilot model at `output` as a standalone script that fits its members on a
    table and predicts (tabpilot.ensemble.export)."""
    from tabpilot.ensemble.export import export_script
    from tabpilot.ensemble.source import ExportError

    contract = model_contract(model)
    if contract is None:
        raise UserError(f"model {model_uri} is not a tabpilot model with a data contract: export a model "
                        "tabpilot 0.2 or later trained")
    if output.is_dir():
        raise UserError(f"{output} is a directory: pass a file name, as --output pipeline.py")
    try:
        text = export_script(model.unwrap_python_model().model, contract["target"], contract.get("columns"),
                             title=f"{model_uri}")
    except (ExportError, ValueError) as error:
        raise UserError(f"model {model_uri} cannot be exported: {error}") from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return output
