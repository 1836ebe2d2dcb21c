"""What the app refuses before a route sees it: oversized bodies, bodies that are not JSON, and
control characters anywhere in the input.

Each refusal is an error of the one shape (api/errors.py), never a 500 and never English.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import DomainError, Unprocessable
from models.common import control_character, control_characters_in

TOO_LARGE_MESSAGE = "Слишком большой запрос"
_TOO_LARGE = json.dumps(
    {"error": "too_large", "message": TOO_LARGE_MESSAGE, "field": None}, ensure_ascii=False
).encode()
# A staff page's form (a CSV upload) refused before any page runs: a page, not JSON, in the site's style.
_TOO_LARGE_PAGE = (
    '<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Слишком большой запрос</title>'
    '<link rel="stylesheet" href="/static/app/app.css"></head><body><div class="width-container">'
    '<main id="main"><h1>Слишком большой файл или форма</h1><p class="lead">Сервер не принял запрос: '
    "он больше допустимого размера. Ничего не сохранено. Уменьшите файл (например, разделите его на "
    'части) и отправьте снова.</p><p><a href="{back}">Вернуться к форме</a></p>'
    "</main></div></body></html>"
)


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body (chunked, without Content-Length) grows past the limit.

    An HTTPException, because FastAPI turns any other exception raised while it reads the body into
    its own English 400 ("There was an error parsing the body"); an HTTPException it passes on to the
    app's handler, which answers 413 in the one shape.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=TOO_LARGE_MESSAGE)


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send, scope)
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            # Read outside the app's exception handlers (e.g. by a middleware): answer here.
            if started:
                raise
            await self._refuse(send, scope)

    @staticmethod
    async def _refuse(send: Send, scope: Scope) -> None:
        from api.errors import path_is_page

        page = path_is_page(str(scope.get("path", "")))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"text/html; charset=utf-8" if page else b"application/json")],
            }
        )
        # Back to the form's own address (a GET of it shows the form again); escaped, it is the client's.
        body = (
            _TOO_LARGE_PAGE.format(back=html.escape(str(scope.get("path", "/")))).encode()
            if page
            else _TOO_LARGE
        )
        await send({"type": "http.response.body", "body": body})


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


# Request headers the app reads; the others never reach the database or a log.
READ_HEADERS = ("authorization", "idempotency-key", "if-match", "x-forwarded-for")


class ControlCharacter(Unprocessable):
    code = "control_character"


def _refuse_control(field: str, char: str) -> ControlCharacter:
    if not field:
        return ControlCharacter(f"Недопустимый управляющий символ {char} в теле запроса")
    return ControlCharacter(
        f"{field}: недопустимый управляющий символ {char}; уберите его из значения", field=field
    )


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without Content-Type as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def check_input(request: Request) -> None:
    """An app-wide dependency: refuses control characters (C0 but tab, LF, CR; and DEL) in path
    parameters, query parameters, the headers the app reads and every string of a JSON body, and a
    body that is not JSON where the route takes JSON.

    PostgreSQL cannot store NUL at all (the driver raises, and its traceback would log the SQL
    parameters: a child's name); the others have no place in a name, a note or an id either. One
    place for every route, present and future.
    """
    for name, value in request.path_params.items():
        if isinstance(value, str) and (char := control_character(value)):
            raise _refuse_control(name, char)
    for name, value in request.query_params.multi_items():
        if char := control_character(name):
            raise _refuse_control("query", char)
        if char := control_character(value):
            raise _refuse_control(name, char)
    for name in READ_HEADERS:
        value = request.headers.get(name)
        if value is not None and (char := control_character(value)):
            raise _refuse_control(name.title(), char)
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return
    body = await request.body()
    if not body:
        return
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            "Тело запроса должно быть в формате JSON (заголовок Content-Type: application/json)"
        )
    # FastAPI has parsed the body already (an unparsable one never gets here); this is its cache.
    parsed: Any = await request.json()
    for field, char in control_characters_in(parsed):
        raise _refuse_control(field, char)
