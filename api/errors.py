"""One shape for every error, with messages in Russian:

    {"error": "<code>", "message": "<for a person>", "field": "<dotted path or null>", ...}

Validation errors add "errors": [{"field", "message", "type"}].
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.headers import secure
from core.errors import DomainError
from statemachines.fire import PayloadInvalid

log = logging.getLogger("earlyhelp.api")

_MESSAGES: dict[str, str] = {
    "missing": "Обязательное поле",
    "extra_forbidden": "Неизвестное поле",
    "string_type": "Ожидается строка",
    "string_too_short": "Значение слишком короткое: не менее {min_length} симв.",
    "string_too_long": "Значение слишком длинное: не более {max_length} симв.",
    "too_short": "Нужно не менее {min_length} элем.",
    "too_long": "Слишком много элементов: не более {max_length}",
    "int_type": "Ожидается целое число",
    "int_parsing": "Ожидается целое число",
    "int_from_float": "Ожидается целое число",
    "float_parsing": "Ожидается число",
    "bool_type": "Ожидается true или false",
    "bool_parsing": "Ожидается true или false",
    "date_type": "Ожидается дата в формате ГГГГ-ММ-ДД",
    "date_parsing": "Ожидается дата в формате ГГГГ-ММ-ДД",
    "date_from_datetime_parsing": "Ожидается дата в формате ГГГГ-ММ-ДД",
    "date_from_datetime_inexact": "Ожидается дата без времени",
    "datetime_type": "Ожидаются дата и время в формате ISO 8601",
    "datetime_parsing": "Ожидаются дата и время в формате ISO 8601",
    "datetime_from_date_parsing": "Ожидаются дата и время в формате ISO 8601",
    "timezone_aware": "Укажите часовой пояс (например, 2026-05-01T10:00:00+03:00)",
    "enum": "Допустимые значения: {expected}",
    "literal_error": "Допустимые значения: {expected}",
    "dict_type": "Ожидается объект",
    "model_type": "Ожидается объект",
    "model_attributes_type": "Ожидается объект",
    "list_type": "Ожидается список",
    "greater_than": "Значение должно быть больше {gt}",
    "greater_than_equal": "Значение должно быть не меньше {ge}",
    "less_than": "Значение должно быть меньше {lt}",
    "less_than_equal": "Значение должно быть не больше {le}",
    "json_invalid": "Некорректный JSON",
    "json_type": "Некорректный JSON",
    "int_parsing_size": "Число слишком большое",
    "float_type": "Ожидается число",
    "finite_number": "Ожидается конечное число",
    "string_unicode": "Ожидается строка в кодировке UTF-8",
    "string_pattern_mismatch": "Значение не соответствует формату",
    "date_future": "Дата должна быть в будущем",
    "date_past": "Дата должна быть в прошлом",
    "timezone_naive": "Время указывается без часового пояса",
    "time_parsing": "Ожидается время в формате ЧЧ:ММ",
    "union_tag_invalid": "Недопустимое значение",
    "none_required": "Ожидается null",
    "recursion_loop": "Слишком глубокая вложенность",
    "date_range": "Дата должна быть в пределах {earliest}–{latest} гг.",
}


def _message(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "value_error":
        # Our validators raise ValueError with a Russian message; pydantic prefixes it.
        return str(error.get("msg", "")).removeprefix("Value error, ")
    template = _MESSAGES.get(kind)
    if template is None:
        return "Некорректное значение"
    ctx = dict(error.get("ctx") or {})
    if kind == "json_invalid":
        # FastAPI puts the character's position after "body" in loc; the decoder's text is English.
        position = [part for part in error.get("loc", ())[1:] if isinstance(part, int)]
        return f"{template}: ошибка в символе {position[0] + 1}" if position else template
    if "expected" in ctx:
        # pydantic lists the choices as "'a', 'b' or 'c'": the last separator is English.
        head, sep, tail = str(ctx["expected"]).rpartition(" or ")
        ctx["expected"] = f"{head} или {tail}" if sep else tail
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template.split(":")[0]


def _field(loc: Sequence[Any], drop_body: bool = True) -> str:
    parts = [str(p) for p in loc]
    if drop_body and parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def validation_errors(errors: Iterable[Any], prefix: str = "") -> list[dict[str, str]]:
    result = []
    for error in errors:
        # The position of a JSON syntax error is in the message, not a field.
        field = "" if error.get("type") == "json_invalid" else _field(error.get("loc", ()))
        if prefix:
            field = f"{prefix}.{field}" if field else prefix
        result.append({"field": field, "message": _message(error), "type": error.get("type", "")})
    return result


def _invalid(errors: list[dict[str, str]]) -> JSONResponse:
    first = errors[0] if errors else {"field": "", "message": "Некорректные данные"}
    return JSONResponse(
        status_code=422,
        content={
            "error": "validation_error",
            "message": f"{first['field']}: {first['message']}" if first["field"] else first["message"],
            "field": first["field"] or None,
            "errors": errors,
        },
    )


# Starlette's own HTTP errors (an unknown path, a wrong method, a body too large): code and message.
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Некорректный запрос"),
    401: ("unauthorized", "Требуется вход в систему"),
    403: ("forbidden", "Недостаточно прав"),
    404: ("not_found", "Не найдено"),
    405: ("method_not_allowed", "Метод не поддерживается"),
    413: ("too_large", "Слишком большой запрос"),
    415: ("unsupported_media_type", "Неподдерживаемый тип содержимого"),
}

# What FastAPI raises (in English) when a body that says it is JSON cannot be decoded: not UTF-8,
# nested too deep. Answered as any other unreadable body.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "sqlite_errorname", "") or "")


def _constraint(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    return str(getattr(diag, "constraint_name", None) or _sqlstate(exc))


_NOT_PAGES = ("/api/", "/static/", "/openapi.json", "/docs", "/redoc", "/healthz")

_PAGE_TITLES = {
    401: "Требуется вход",
    403: "Недостаточно прав",
    404: "Страница не найдена",
    409: "Конфликт",
    413: "Слишком большой запрос",
    422: "Проверьте данные",
    429: "Слишком много попыток",
}


def path_is_page(path: str) -> bool:
    """A staff page (api/pages/), answered in HTML; the API and the rest answer JSON."""
    return not path.startswith(_NOT_PAGES)


def is_page(request: Request) -> bool:
    return path_is_page(request.url.path)


def _page_error(request: Request, status: int, message: str) -> Response:
    from api.pages.web import login_redirect, render

    if status == 401:
        return login_redirect(request)
    if status == 404:
        # The same page whether the object does not exist or is not the caller's (DESIGN §6).
        message = "Такой страницы нет, или у вас нет к ней доступа."
    title = _PAGE_TITLES.get(status, "Ошибка")
    return render(request, "pages/error.html", {"title": title, "message": message}, status)


# A page about a failure must not need what may have failed (the templates, the database): static.
# Staff are told to report it; a family (its page, /f/...) only to try again later.
_UNEXPECTED_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Ошибка сервера</title></head>
<body><h1>Ошибка сервера</h1>
<p>{text}</p>{back}</body></html>
"""
UNEXPECTED_STAFF_PAGE = _UNEXPECTED_PAGE.format(
    text="Запрос не выполнен из-за внутренней ошибки. Проверьте, сохранилось ли то, что вы отправили, "
    "и попробуйте ещё раз через минуту; если ошибка повторяется, сообщите администратору время запроса.",
    back='\n<p><a href="/">На главную</a></p>',
)
UNEXPECTED_FAMILY_PAGE = _UNEXPECTED_PAGE.format(
    text="Не получилось открыть страницу. Попробуйте ещё раз через несколько минут по той же ссылке.",
    back="",
)
FAMILY_PREFIX = "/f/"


def install(app: FastAPI) -> None:
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette answers an unhandled exception from outside every middleware (and logs its
        # traceback after this): the security headers are set here, and the text names nothing of
        # the failure. The route's template is logged, not the path: a family link's is a secret.
        route = getattr(request.scope.get("route"), "path", "?")
        log.error("unexpected failure on %s %s: %s", request.method, route, type(exc).__name__)
        response: Response
        if request.url.path.startswith(FAMILY_PREFIX):
            response = HTMLResponse(UNEXPECTED_FAMILY_PAGE, status_code=500)
        elif is_page(request):
            response = HTMLResponse(UNEXPECTED_STAFF_PAGE, status_code=500)
        else:
            response = JSONResponse(
                status_code=500,
                content={
                    "error": "internal_error",
                    "message": "Внутренняя ошибка сервера; повторите запрос позже",
                    "field": None,
                },
            )
        secure(response.headers, static=False, https=request.url.scheme == "https")
        return response

    @app.exception_handler(PayloadInvalid)
    async def _payload(_: Request, exc: PayloadInvalid) -> JSONResponse:
        return _invalid(validation_errors(exc.error.errors(), prefix="payload"))

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if is_page(request):
            return _page_error(request, exc.status_code, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": exc.code, "message": exc.message, "field": exc.field, **exc.extra},
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> Response:
        errors = validation_errors(exc.errors())
        if is_page(request):
            first = errors[0] if errors else {"field": "", "message": "Некорректные данные"}
            return _page_error(request, 422, f"{first['field']}: {first['message']}")
        return _invalid(errors)

    @app.exception_handler(ValidationError)
    async def _pydantic(_: Request, exc: ValidationError) -> JSONResponse:
        return _invalid(validation_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_page(request) and exc.status_code in _PAGE_TITLES:
            return _page_error(request, exc.status_code, _HTTP_ERRORS.get(exc.status_code, ("", "Ошибка"))[1])
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_ERROR:
            return _invalid(
                [
                    {
                        "field": "",
                        "message": "Тело запроса не удалось прочитать: ожидается JSON в кодировке UTF-8",
                        "type": "body_unreadable",
                    }
                ]
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path only.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        code, message = _HTTP_ERRORS.get(exc.status_code, ("http_error", "Ошибка запроса"))
        # A Russian detail raised by our own code is kept; Starlette's English phrases are not.
        if isinstance(exc.detail, str) and exc.status_code not in _HTTP_ERRORS:
            message = exc.detail
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": code, "message": message, "field": None},
            headers=headers,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # The driver's text may quote the values (a СНИЛС in a unique key): name the constraint only.
        log.warning("integrity error: %s %s", type(exc.orig).__name__, _constraint(exc))
        return JSONResponse(
            status_code=409,
            content={
                "error": "conflict",
                "message": "Данные противоречат уже сохранённым; ничего не изменено",
                "field": None,
            },
        )

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # A value the schema let through but the column refuses (too long, out of range): the
        # request's fault, and never a 500 whose text would quote the value.
        log.warning("data error: %s %s", type(exc.orig).__name__, _sqlstate(exc))
        return JSONResponse(
            status_code=422,
            content={
                "error": "validation_error",
                "message": "Значение не помещается в поле базы данных; ничего не изменено",
                "field": None,
                "errors": [],
            },
        )

    @app.exception_handler(OperationalError)
    async def _busy(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s %s", type(exc.orig).__name__, _sqlstate(exc))
        return JSONResponse(
            status_code=503,
            content={
                "error": "unavailable",
                "message": "База данных временно недоступна; повторите запрос",
                "field": None,
            },
            headers={"Retry-After": "1"},
        )
