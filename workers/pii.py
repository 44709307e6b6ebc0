"""Customer contact details never reach Flower or the worker logs.

Celery shows a task's arguments (``argsrepr``/``kwargsrepr``, in events, logs and ``celery
inspect``) and a string form of its result (the ``task-succeeded`` event, the success log line).
``mask`` hides every ``email`` and ``phone`` value, and any email address written inside other
text, keeping just enough for support staff to recognise a customer (``j***@e***.com``,
``+*******89``). What a task receives, returns to the result backend or stores is never masked.

The worker side is the app's task base class, :class:`MaskingTask` (set in ``workers.app``): its
request masks the argument reprs whatever the publisher sent (a non-Python publisher may send
none, or the raw values) and the exception text of failure events, and its result is shown
through :func:`masked_repr`. :class:`MaskingLogFilter`, on the worker's log handlers, masks any
email address a log line or traceback quotes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from itertools import islice
from typing import Any

from celery import Task
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

MASKED_KEYS = frozenset({"email", "phone"})
REPR_MAXSIZE = 1024
"""Celery's own limit for ``argsrepr``, ``kwargsrepr`` and the result repr."""

MAX_DEPTH = 32
"""How deep any value the worker walks may nest: no command comes close, and a hostile message of
a thousand nested lists must not exhaust a stack. The worker refuses messages nested deeper
(``workers.inbound``); deeper values are shown as ``…``."""
_LONGEST_EMAIL = 254

# An address starts only where no address character precedes it: without the lookbehind, every
# position of a long run of word characters would start a scan to its end (quadratic time).
_EMAIL_IN_TEXT = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")


def mask(value: Any) -> Any:
    """A deep copy of ``value`` (JSON-like data) safe to show: every ``email`` or ``phone`` value
    at any depth is masked, and so is any email address inside other strings."""
    return _mask(value, limit=None)


def masked_repr(value: Any, maxlen: int = REPR_MAXSIZE) -> str:
    """Celery's truncated repr of ``mask(value)``. Only the part that fits in ``maxlen`` is
    masked, so a chunk of thousands of commands costs no more than a short one."""
    return saferepr(_mask(value, limit=maxlen), maxlen)


def masked_result_repr(result: Mapping[str, Any], maxlen: int = REPR_MAXSIZE) -> str:
    """A command's result, masked, as its plain repr cut at ``maxlen``: a result is small and of
    the project's own making, and Celery's safe repr would cost four times the masking."""
    text = repr(mask(result))
    return text if len(text) <= maxlen else text[: maxlen - 3] + "..."


def mask_text(text: str) -> str:
    """``text`` with every email address in it masked."""
    return _EMAIL_IN_TEXT.sub(lambda found: mask_email(found.group()), text)


def mask_email(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "***"
    name, dot, suffix = domain.rpartition(".")
    if not dot or not name:
        return f"{local[0]}***@{domain[0]}***"
    return f"{local[0]}***@{name[0]}***.{suffix}"


def mask_phone(number: str) -> str:
    """The international prefix sign and the last two digits; every other digit is a star."""
    digits = [char for char in number if char.isdigit()]
    shown = digits[-2:] if len(digits) >= 6 else []
    prefix = "+" if number.lstrip().startswith("+") else ""
    return prefix + "*" * (len(digits) - len(shown)) + "".join(shown)


def _mask(value: Any, limit: int | None, depth: int = 0) -> Any:
    # A sequence longer than ``limit`` items cannot fit in a repr of ``limit`` characters (each
    # item takes at least one character and a separator), so the rest is never shown; nor is the
    # part of a string past ``limit``, but an address that starts before it is masked whole.
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        items = value.items() if limit is None else islice(value.items(), limit + 1)
        return {key: _mask_entry(key, item, limit, depth + 1) for key, item in items}
    if isinstance(value, list | tuple):
        shown = value if limit is None else value[: limit + 1]
        masked = [_mask(item, limit, depth + 1) for item in shown]
        return masked if isinstance(value, list) else tuple(masked)
    if isinstance(value, str):
        return mask_text(value if limit is None else value[: limit + _LONGEST_EMAIL])
    return value


def _mask_entry(key: Any, value: Any, limit: int | None, depth: int) -> Any:
    if not (isinstance(key, str) and key.lower() in MASKED_KEYS) or value is None:
        return _mask(value, limit, depth)
    if not isinstance(value, str):
        return "***"
    return mask_phone(value) if key.lower() == "phone" else mask_email(value)


class MaskedRequest(Request):
    """A received task message whose argument reprs are computed here, from the decoded
    arguments, instead of trusted from the publisher. ``info()`` (what ``celery inspect``
    reserved, scheduled, active and query_task report) never carries the raw arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._argsrepr = masked_repr(self.args)
        self._kwargsrepr = masked_repr(self.kwargs)
        # The pool process logs from the request dict: the success and failure lines.
        self.request_dict["argsrepr"] = self._argsrepr
        self.request_dict["kwargsrepr"] = self._kwargsrepr

    def info(self, safe: bool = False) -> Any:
        return super().info(safe=True)

    def send_event(self, type: str, **fields: Any) -> None:
        # A failure's or a retry's exception may quote an address (SQL parameters, a refusal).
        for name in ("exception", "traceback"):
            if isinstance(fields.get(name), str):
                fields[name] = mask_text(fields[name])
        super().send_event(type, **fields)


class MaskedResult:
    """A task's return value on its way out of the worker's pool process: the result backend
    stores the value itself (kombu's JSON encoder calls ``__json__``), while Celery's repr of
    it, which feeds the success log line and the ``task-succeeded`` event, is masked."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __json__(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return masked_repr(self.value)


class MaskingTask(Task):  # type: ignore[type-arg]
    """The app's task base class. Called by the worker, a task returns its value wrapped in
    :class:`MaskedResult` (``on_success``/``after_return`` hooks get the wrapper; its
    ``value`` is the result). Called directly or with ``apply()``, it returns the plain value."""

    Request = "workers.pii:MaskedRequest"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        # The worker's tracer has pushed the request already (like Task.__call__ would).
        result = self.run(*args, **kwargs)
        return result if self.request.is_eager else MaskedResult(result)


class MaskingLogFilter(logging.Filter):
    """Masks email addresses in whatever a log handler writes, message and traceback alike: an
    error can quote one (an SMTP refusal names the recipient, a database error its parameters).
    ``workers.app`` puts it on the worker's handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True
