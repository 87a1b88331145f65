"""Errors a user can cause: caught at the edge and printed as one line, never a traceback."""


class UserError(Exception):
    """A problem with the user's input or configuration; the message names the fix."""


class ServiceError(RuntimeError):
    """An outside service (Prefect's server, a tracking server) that did not answer; not the user's
    mistake, but still one line naming what to do, and exit code 1."""


class TrackingUnavailable(ServiceError):
    """The MLflow tracking server stopped answering during a run: nothing more can be logged to it,
    including the run's failure."""
