"""Turning a request body into a request struct, and refusals into answers: what every
handler of :class:`~.api.Api` and its mixins shares (the status of each engine refusal,
SPEC §8)."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec

from ..config import parse_duration
from ..core import wholenum
from ..core.admission import PAYLOAD_MAX_DEPTH
from ..core.errors import AmbiguousId, Duplicate, EngineError, QueueFull, StoreUnavailable
from .request import Request
from .responses import Response, error_response

_T = TypeVar("_T")


def engine_error(exc: EngineError) -> Response:
    """The status of SPEC §8 for each engine refusal."""
    code = exc.code
    status = {
        "invalid_request": 400,
        "unknown_task_type": 400,
        "queue_full": 429,
        "not_found": 404,
        "already_finished": 409,
        "ambiguous_id": 409,
        "duplicate": 409,
        "read_only": 409,
        "already_exists": 409,
        "blocked": 409,
        "shutting_down": 503,
        "store_unavailable": 503,
    }.get(code, 400)
    headers = []
    if isinstance(exc, (QueueFull, StoreUnavailable)):
        headers.append((b"retry-after", b"%d" % max(1, math.ceil(exc.retry_after_s))))
    candidates = exc.candidates if isinstance(exc, AmbiguousId) else None
    existing = exc.existing_id if isinstance(exc, Duplicate) else None
    return error_response(
        status, code, str(exc), headers=headers, candidates=candidates, existing_id=existing
    )


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def invalid(message: str) -> Refused:
    return Refused(error_response(400, "invalid_request", message))


def duration(where: str, name: str, value: float | str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise invalid(f"{where}{name}: {exc}") from None


_JSON_TYPE = b"application/json"
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}
"""A decoder per request struct, made on its first use (cheaper than ``decode(type=)``)."""


def decode_body(request: Request, type_: type[_T]) -> _T:
    """The request's JSON body as ``type_``: 415, 400 ``invalid_json`` or
    ``invalid_request`` (as :class:`Refused`) otherwise."""
    ctype = request.header(b"content-type")
    if ctype != _JSON_TYPE and (
        ctype is None or ctype.partition(b";")[0].strip().lower() != _JSON_TYPE
    ):
        raise Refused(
            error_response(
                415,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            )
        )
    try:
        decoder = _decoders.get(type_)
        if decoder is None:
            decoder = _decoders[type_] = msgspec.json.Decoder(type_)
        try:
            return decoder.decode(request.body)  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            # JSON Schema's integers include 2.0: the slow path takes those too.
            first = exc
        try:
            return wholenum.convert(msgspec.json.decode(request.body), type_)
        except msgspec.ValidationError:
            raise invalid(str(first)) from None
    except msgspec.DecodeError as exc:
        raise Refused(error_response(400, "invalid_json", f"invalid JSON: {exc}")) from None
    except RecursionError:
        # msgspec stops near Python's recursion limit (about 1,000 levels); what it
        # decodes is then held to the payload limit by the engine.
        raise invalid(
            f"the body is nested too deeply (payloads: at most {PAYLOAD_MAX_DEPTH} levels)"
        ) from None
