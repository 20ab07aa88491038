"""One mapping from library errors to HTTP, and the request id every answer and log line carries.

Every endpoint answers an error through ``error_response``; the guard answers its own refusals through ``body``.
Bodies are ``{"error": message, "request_id": id}``; messages go through ``redact`` (no credentials, no absolute
paths), and anything unexpected is logged (with its trace) and answered with a generic 500.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from starlette.responses import JSONResponse

from openstack_rca.errors import (DependencyDown, InputNotFound, InvalidInput, StorageFull, StoreBusy,
                                  redact)

log = logging.getLogger("openstack_rca.serve")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("rca_request_id", default="-")
RETRY_AFTER_S = 10
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(given: bytes | None) -> str:
    """The caller's X-Request-ID when it is short and plain, else a fresh one."""
    if given:
        text = given.decode("latin-1")
        if _SANE_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def body(message: str) -> dict:
    return {"error": redact(message), "request_id": REQUEST_ID.get()}


def status_for(exc: BaseException) -> tuple[int, str, dict[str, str]]:
    """(status, message, extra headers) for ``exc``: the one place an exception type becomes a status."""
    from openstack_rca.registry import ModelNotReady

    retry = {"Retry-After": str(RETRY_AFTER_S)}
    if isinstance(exc, InputNotFound):
        return 404, str(exc), {}
    if isinstance(exc, (InvalidInput, ValueError)):
        return 422, str(exc), {}
    if isinstance(exc, StoreBusy):
        return 409, str(exc), retry
    if isinstance(exc, StorageFull):
        return 507, str(exc), {}
    if isinstance(exc, (DependencyDown, ModelNotReady)):
        return 503, str(exc), retry
    return 500, "internal error (see the service log for this request id)", {}


def error_response(exc: BaseException, endpoint: str = "-") -> JSONResponse:
    status, message, headers = status_for(exc)
    if status == 500:
        log.error("%s failed: %s", endpoint, redact(f"{type(exc).__name__}: {exc}"), exc_info=exc)
    return JSONResponse(body(message), status_code=status, headers=headers)


class RequestIdFilter(logging.Filter):
    """Puts ``[request_id=...]`` in front of every log line written while a request is handled (with
    RCA_LOG_FORMAT=json it is a field of the line instead)."""

    def __init__(self) -> None:
        super().__init__()
        from openstack_rca.telemetry import log_format

        self.prefix = log_format() != "json"

    def filter(self, record: logging.LogRecord) -> bool:
        rid = REQUEST_ID.get()
        record.request_id = rid
        if self.prefix and rid != "-" and not getattr(record, "_rca_rid", False):
            record.msg = f"[request_id={rid}] {record.msg}"
            record._rca_rid = True
        return True


def install_log_filter() -> None:
    """On every handler there is now (BentoML's included), so records from any logger get the id."""
    flt = RequestIdFilter()
    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    for lg in loggers:
        for h in getattr(lg, "handlers", []):
            if not any(isinstance(f, RequestIdFilter) for f in h.filters):
                h.addFilter(flt)
