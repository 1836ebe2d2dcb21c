"""The error answers in the OpenAPI document, so that a generated client can rely on them.

Every error has the shape of `ErrorOut` (api/errors.py writes it). Two sources of statuses:

- what a route itself raises (403 for a role, 404 for an id, 409 for a conflict, 428, 429): each
  router and route names them with `responses(...)`;
- what the app's own machinery answers on any operation, documented here once for all of them
  (`document_common_errors`): 422 (the input checks of api/limits.py and validation), 503 (the
  database unavailable), 401 on an operation that needs a token, 413 and 415 on one that takes a
  body. It also replaces FastAPI's default 422 schema (`HTTPValidationError`), which is not what the
  app answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field


class FieldErrorOut(BaseModel):
    field: str = Field(description="Поле (путь через точку); пустая строка — запрос целиком")
    message: str = Field(description="Что не так, по-русски")
    type: str = Field(description="Вид ошибки (для программ)")


class ErrorOut(BaseModel):
    """An error answer; some carry more keys (e.g. `allowed_events`, `current_version`)."""

    model_config = ConfigDict(extra="allow", title="ErrorOut")

    error: str = Field(description="Код ошибки (для программ), например validation_error, not_found")
    message: str = Field(description="Сообщение для человека, по-русски")
    field: str | None = Field(description="Поле, к которому относится ошибка (путь через точку), или null")
    errors: list[FieldErrorOut] | None = Field(
        default=None, description="Все ошибки проверки данных (только для 422 validation_error)"
    )


_RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Через сколько секунд повторить запрос",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}

_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    401: ("Требуется вход: токена нет, он истёк, отозван или пользователь отключён", {}),
    403: ("Действие недоступно для вашей роли или организации", {}),
    404: ("Не найдено (или вне вашей области видимости)", {}),
    409: ("Конфликт с текущим состоянием данных (см. error)", {}),
    413: ("Слишком большой запрос", {}),
    415: ("Тело запроса не в формате JSON", {}),
    422: ("Некорректные данные: поле и причина в field, message и errors", {}),
    428: ("Не указана версия (поле version или заголовок If-Match)", {}),
    429: ("Слишком много попыток; повторите позже", _RETRY_AFTER),
    503: ("База данных временно недоступна; повторите запрос", _RETRY_AFTER),
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or a route: the error statuses it answers, with their schema."""
    result: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, headers = _ERRORS[status]
        result[status] = {"model": ErrorOut, "description": description}
        if headers:
            result[status]["headers"] = headers
    return result


# What api/limits.py refuses in every string of a request, as a JSON Schema pattern: no C0 control
# character but tab, line feed and carriage return, and no DEL.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]*$"

_REF = "#/components/schemas/ErrorOut"
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _error_response(status: int) -> dict[str, Any]:
    description, headers = _ERRORS[status]
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def _restrict_strings(node: Any, components: dict[str, Any], seen: set[str]) -> None:
    """Give every free-text string of a request schema the NO_CONTROL_CHARACTERS pattern."""
    if isinstance(node, list):
        for item in node:
            _restrict_strings(item, components, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen and name in components:
            seen.add(name)
            _restrict_strings(components[name], components, seen)
        return
    kind = node.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_string and not ({"pattern", "enum", "const", "format"} & node.keys()):
        node["pattern"] = NO_CONTROL_CHARACTERS
    for key in ("properties", "$defs"):
        for child in (node.get(key) or {}).values():
            _restrict_strings(child, components, seen)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in node:
            _restrict_strings(node[key], components, seen)


def document_common_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add what the app's machinery does on every operation: the statuses it answers (with the
    error schemas), and the strings it refuses (control characters, as a pattern)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FieldErrorOut, ErrorOut):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        definition.pop("$defs", None)
        components[model.__name__] = definition
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    seen: set[str] = set()
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            for parameter in operation.get("parameters", []):
                _restrict_strings(parameter.get("schema"), components, seen)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _restrict_strings(media.get("schema"), components, seen)
            answers = operation.setdefault("responses", {})
            common = [422, 503]
            if operation.get("security"):
                common.append(401)
            if "requestBody" in operation:
                common += [413, 415]
            for status in common:
                answers.setdefault(str(status), _error_response(status))
            # FastAPI's default 422 where a route named none: replace it with the real one.
            default_422 = answers.get("422", {}).get("content", {}).get("application/json", {})
            if default_422.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                answers["422"] = _error_response(422)
    return schema


def install(app: FastAPI) -> None:
    """Serve the OpenAPI document with the common error answers (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_common_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
