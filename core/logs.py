"""What the processes log, and what never reaches a log line (DESIGN §6: no log line holds
personal data).

By construction, log lines name ids, counts, kinds and timings, never a person's data. Two places
could still carry it, and are cut here for every process (`earlyhelp serve`, its worker, `earlyhelp
worker`, Prefect's handlers in the worker):
- the access log's request line: its query string (a search by name or СНИЛС) and the family-link
  token in /f/<token> paths;
- text that comes from outside the code: a database error's DETAIL (PostgreSQL writes the
  conflicting values), an SMTP server's refusal (it names the address), pydantic's input_value.
`ScrubFilter`, on every handler, masks what looks like an e-mail, a phone, a СНИЛС, a token or a
DETAIL line in the message, its arguments and its traceback, as a second line of defence.
SQL parameters are never logged: the engines hide them (core/db.py, hide_parameters).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

# Paths under the family router carry a signed token (api/routes/family.py).
FAMILY_PREFIX = "/f/"
_FAMILY_TOKEN = re.compile(r"/f/[^\s/?\"']+")
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (_FAMILY_TOKEN, "/f/[token]"),
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), "[jwt]"),
    (re.compile(r"\beh_[\w-]{8,}"), "eh_[token]"),
    # Bearer credentials of any other kind (a gateway's token in a logged header, say).
    (re.compile(r"(?i)\bbearer\s+[\w.~+/=-]{8,}"), "Bearer [token]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[e-mail]"),
    # СНИЛС: 123-456-789 01, 123-456-789-01, or 11 digits in a row.
    (re.compile(r"(?<!\d)\d{3}-\d{3}-\d{3}[ -]\d{2}(?!\d)"), "[снилс]"),
    (re.compile(r"(?<![\d.])\d{11}(?![\d.])"), "[number]"),
    # Russian phones: +7 900 123-45-67, 8 (900) 123 45 67, +79001234567.
    (re.compile(r"(?<![\w+])(?:\+7|8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)"), "[phone]"),
    # PostgreSQL's DETAIL holds the values of a failed row or key.
    (re.compile(r"DETAIL:[^\n]*"), "DETAIL: [hidden]"),
    (re.compile(r"\[parameters: [^\n]*"), "[parameters hidden]"),
    (re.compile(r"input_value=.*?(?=, input_type=|\]$|$)", re.MULTILINE), "input_value=[hidden]"),
]


def scrub(text: str) -> str:
    """`text` with anything that looks like a person's data or a credential masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def safe_path(path: str) -> str:
    """A request path fit for a log or the audit log: no query string, no family-link token."""
    path = path.split("?", 1)[0]
    return _FAMILY_TOKEN.sub("/f/[token]", path) if FAMILY_PREFIX in path else path


class AccessPathFilter(logging.Filter):
    """uvicorn's access line without the query string and without family-link tokens.

    uvicorn logs `'%s - "%s %s HTTP/%s" %d'` with (client, method, path?query, version, status);
    its AccessFormatter reads those five arguments, so they stay a tuple of five.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], safe_path(args[2]), args[3], args[4])
        return True


class ScrubFilter(logging.Filter):
    """Masks personal data and credentials in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_earlyhelp_scrubbed", False):
            record.msg = scrub(str(record.msg))
            if isinstance(record.args, tuple):
                record.args = tuple(_scrub_arg(a) for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: _scrub_arg(v) for k, v in record.args.items()}
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = scrub(record.exc_text)
            if record.stack_info:
                record.stack_info = scrub(record.stack_info)
            record._earlyhelp_scrubbed = True
        return True


def _scrub_arg(value: Any) -> Any:
    if value is None or isinstance(value, int | float | bool):
        return value
    return scrub(str(value))


def db_error_summary(error: BaseException) -> str:
    """A database error for the log, without the values it carries.

    PostgreSQL's message (DETAIL: Key (snils)=(…) already exists) and a driver's message may hold
    the row's data: name the error's class, SQLSTATE and constraint instead. SQLite's messages
    name only the constraint or the column.
    """
    orig = getattr(error, "orig", None) or error
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg
        parts = [type(orig).__name__, f"sqlstate={getattr(orig, 'sqlstate', None)}"]
        for name in ("table_name", "column_name", "constraint_name"):
            value = getattr(diag, name, None)
            if value:
                parts.append(f"{name.removesuffix('_name')}={value}")
        return " ".join(parts)
    return scrub(f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}")


def scrub_handlers(level: str | None = None) -> None:
    """Put ScrubFilter on every handler configured so far (the root's, Prefect's, uvicorn's).

    For processes whose logging someone else set up (Prefect configures its handlers on import):
    call it after those imports. With `level`, the project's own loggers log from that level.
    """
    scrub_filter = ScrubFilter()
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, ScrubFilter) for f in handler.filters):
                handler.addFilter(scrub_filter)
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(scrub_filter)
        logging.getLogger().addHandler(handler)
    if level is not None:
        logging.getLogger("earlyhelp").setLevel(level)


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's logging configuration, with the access line cut and every handler scrubbed; the
    project's loggers (earlyhelp.*) and any library's warnings go to the same stderr handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "scrub": {"()": "core.logs.ScrubFilter"},
        "access_path": {"()": "core.logs.AccessPathFilter"},
    }
    config["handlers"]["default"]["filters"] = ["scrub"]
    config["handlers"]["access"]["filters"] = ["access_path", "scrub"]
    config["loggers"]["earlyhelp"] = {"level": level}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
