"""`tabpilot serve`: a registered model behind MLflow's scoring protocol, as a small FastAPI app.

MLflow's own scoring server converts every request through its schema machinery and answers
errors with the server's stack trace; this app takes the same request formats (`dataframe_split`,
`dataframe_records`, `inputs`/`instances`, CSV), checks them against the model's data contract as
`tabpilot predict` does (tabpilot.data.request_check), predicts with the compiled ensemble and answers
`{"predictions": [...]}` as MLflow does. Client mistakes get a 400 with one line naming the fix.
"""
from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import Response

from tabpilot.data.files import normalise, request_problem
from tabpilot.data.request_columns import Columns, from_payload

log = logging.getLogger("tabpilot.serve")
FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


class BadRequest(ValueError):
    """A request the model cannot score; its text is the whole answer to the client."""


def parse(body: bytes, content_type: str, contract: dict[str, Any] | None = None) -> pd.DataFrame | Columns:
    """The rows of one /invocations request, in any of MLflow's formats: a small plain request under
    a data contract as arrays (tabpilot.data.request_columns), anything else as a DataFrame."""
    if content_type.split(";")[0].strip().lower() == "text/csv":
        try:
            return pd.read_csv(io.BytesIO(body))
        except (ValueError, pd.errors.ParserError) as error:
            raise BadRequest(f"the CSV body could not be read ({str(error).splitlines()[0][:120]})") from None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = _lenient_json(body)
    columns = from_payload(payload, contract) if contract is not None else None
    return _table(payload) if columns is None else columns


def _lenient_json(body: bytes) -> Any:
    """JSON as Python's own json module writes it: with NaN and Infinity, which orjson refuses."""
    import json

    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the body is not valid JSON ({error}): send "
                         '{"dataframe_split": {"columns": [...], "data": [[...]]}}') from None


def _table(payload: Any) -> pd.DataFrame:
    keys = [k for k in FORMATS if isinstance(payload, dict) and k in payload]
    if len(keys) != 1:
        raise BadRequest(f"the JSON body needs exactly one of {', '.join(FORMATS)}")
    value = payload[keys[0]]
    try:
        if keys[0] == "dataframe_split":
            if not isinstance(value, dict) or "columns" not in value:
                raise BadRequest('dataframe_split needs "columns" and "data"')
            return pd.DataFrame(value.get("data") or [], columns=value["columns"])
        if isinstance(value, dict):
            return pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in value.items()})
        if isinstance(value, list) and all(isinstance(r, dict) for r in value):
            return pd.DataFrame.from_records(value) if value else pd.DataFrame()
    except (ValueError, TypeError) as error:
        raise BadRequest(f"{keys[0]} does not make a table ({str(error).splitlines()[0][:120]})") from None
    raise BadRequest(f"{keys[0]} must be a list of row objects or an object of columns")


class Scorer:
    """A loaded model and its contract: rows in, the prediction records out (or BadRequest)."""

    def __init__(self, model: Any, contract: dict[str, Any] | None) -> None:
        self.model, self.contract = model, contract
        self.columns = [c for c in (contract or {}).get("columns", {}) if c != (contract or {}).get("target")]

    def score(self, frame: pd.DataFrame | Columns) -> list[dict[str, Any]]:
        if len(frame) == 0:
            return []
        if isinstance(frame, pd.DataFrame):
            frame = normalise(frame, (self.contract or {}).get("columns"))
        if self.contract is not None:
            from tabpilot.data.request_check import check_request

            problem = request_problem(frame, self.contract)
            if problem:
                raise BadRequest(f"input breaks the model's data contract: {problem}")
            report = check_request(frame, self.contract)
            if not report.success:
                raise BadRequest(f"input breaks the model's data contract, so nothing was scored: {report.summary()}")
            kept = [c for c in self.columns if c in frame.columns]
            frame = frame.select(kept) if isinstance(frame, Columns) else frame[kept]
        if isinstance(frame, Columns) and hasattr(self.model, "records"):
            return self.model.records(frame)  # type: ignore[no-any-return]
        out = self.model.predict_frame(frame)
        return [{k: _plain(v) for k, v in row.items()} for row in out.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def load(model_uri: str) -> Scorer:
    from tabpilot.registry import tracking

    python_model = tracking.load_model(model_uri).unwrap_python_model()
    return Scorer(python_model.model, getattr(python_model, "contract", None))


def app(scorer: Scorer) -> FastAPI:
    """The ASGI app: /ping and /health, /version, and POST /invocations."""
    from tabpilot import __version__

    api = FastAPI(title="tabpilot", docs_url=None, redoc_url=None, openapi_url=None)

    def answer(status: int, content: Any) -> Response:
        return Response(orjson.dumps(content), status_code=status, media_type="application/json")

    @api.get("/ping")
    @api.get("/health")
    async def ping() -> Response:
        return Response("\n", media_type="application/json")

    @api.get("/version")
    async def version() -> Response:
        return Response(__version__, media_type="text/plain")

    # `async` on purpose: the work is CPU-bound either way, and a thread hop per request costs more.
    @api.post("/invocations")
    async def invocations(request: Request) -> Response:
        try:
            rows = parse(await request.body(), request.headers.get("content-type", "application/json"),
                         scorer.contract)
            return answer(200, {"predictions": scorer.score(rows)})
        except BadRequest as error:
            return answer(400, {"error_code": "BAD_REQUEST", "message": str(error)})
        except Exception as error:  # the trace goes to the server's log, never to the client
            log.exception("prediction failed")
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            return answer(500, {"error_code": "INTERNAL_ERROR",
                                "message": f"prediction failed ({type(error).__name__}: {first})"})

    return api


def serve(scorer: Scorer, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app(scorer), host=host, port=port, log_level="warning", access_log=False)
