"""`tabpilot validate`: check a file against a data contract, from a path or from a registered model."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tabpilot.core.errors import UserError
from tabpilot.data.files import normalise, read_table
from tabpilot.registry import tracking

MODEL_CONTRACT = "model_contract/contract.json"


def load_contract(contract: Path | None, model_uri: str | None) -> dict[str, Any]:
    """The contract at a path, or the one stored with a registered model version."""
    if (contract is None) == (model_uri is None):
        raise UserError("pass exactly one of --contract PATH or --model URI")
    if contract is not None:
        if not contract.is_file():
            raise UserError(f"contract {contract} not found: pass the contract.json a training run wrote")
        return json.loads(contract.read_text())
    if not (model_uri or "").startswith("models:/"):  # a model directory or run URI carries its contract
        from tabpilot.registry.scoring import model_contract

        try:
            carried = model_contract(tracking.load_model(model_uri or ""))
        except Exception:
            raise UserError(f"model {model_uri} could not be loaded: pass models:/NAME@ALIAS or a model "
                            "directory") from None
        if carried is None:
            raise UserError(f"model {model_uri} carries no data contract: retrain it")
        return carried
    version = tracking.model_version(model_uri or "")
    if version is None:
        raise UserError(f"model {model_uri} not found in the registry: use models:/NAME@ALIAS or models:/NAME/N")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = tracking.download_run_artifact(version.run_id, MODEL_CONTRACT, Path(tmp))
        except Exception:
            raise UserError(f"model {model_uri} has no data contract stored with it: retrain it") from None
        return json.loads(path.read_text())


def validate_file(data: Path, contract: Path | None = None, model_uri: str | None = None,
                  docs_dir: Path | None = None) -> Any:
    """Validate a table against a contract; the target is checked only when the table has it."""
    from tabpilot.data import validation

    rules = load_contract(contract, model_uri)
    frame = normalise(read_table(data))
    return validation.validate(frame, rules, docs_dir=docs_dir, require_target=rules["target"] in frame.columns)
