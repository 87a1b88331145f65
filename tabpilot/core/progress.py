"""Progress events: the library reports through logging; the CLI decides how to show them."""
from __future__ import annotations

import logging
from typing import Any

LOGGER = logging.getLogger("tabpilot.progress")


def report(stage: str, message: str, **fields: Any) -> None:
    LOGGER.info("%s: %s", stage, message, extra={"progress": {"stage": stage, **fields}})
