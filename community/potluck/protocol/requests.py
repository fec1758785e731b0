# SPDX-License-Identifier: Apache-2.0
"""The shape of inference request bodies, checked the way OpenAI checks them.

Every field that Potluck (the gateway, a policy, the batch runner) or an OpenAI client
relies on is type-checked before anything else happens, so no code path ever decides
by the Python truthiness of a client's value, and a wrong type is a 400 naming the
parameter — never a 500. Fields OpenAI does not define (vLLM's own sampling extensions
such as ``top_k``) pass through unchecked: the replica checks them.

Source: OpenAI's API reference for ``POST /v1/chat/completions``, ``/v1/completions``
and ``/v1/embeddings`` (types and ranges), and the shape of its errors: ``param`` is the
path of the field, e.g. ``messages.[0].content``; ``code`` is e.g. ``invalid_type``,
``missing_required_parameter``, ``empty_array``, ``integer_below_min_value``,
``decimal_above_max_value``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from potluck.protocol.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, Endpoint

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_N = 128
MAX_STOP = 4


class InvalidRequest(ValueError):
    """A body that breaks the protocol: ``message``, ``param`` (its path), ``code``."""

    def __init__(self, message: str, param: str | None, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _kind(value: Any) -> str:
    """OpenAI's word for a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown type"


def _wrong(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got "
                          f"{_kind(value)} instead.", param, "invalid_type")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- field rules --------------------------------------------------------------------------
Rule = Callable[[Any, str], None]


def string(value: Any, param: str) -> None:
    if not isinstance(value, str):
        raise _wrong(param, "a string", value)


def boolean(value: Any, param: str) -> None:
    if not isinstance(value, bool):
        raise _wrong(param, "a boolean", value)


def obj(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise _wrong(param, "an object", value)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    def check(value: Any, param: str) -> None:
        if not _is_int(value):
            raise _wrong(param, "an integer", value)
        if low is not None and value < low:
            raise InvalidRequest(f"Invalid '{param}': integer below minimum value. Expected "
                                 f"a value >= {low}, but got {value} instead.", param,
                                 "integer_below_min_value")
        if high is not None and value > high:
            raise InvalidRequest(f"Invalid '{param}': integer above maximum value. Expected "
                                 f"a value <= {high}, but got {value} instead.", param,
                                 "integer_above_max_value")
    return check


def number(low: float, high: float) -> Rule:
    def check(value: Any, param: str) -> None:
        if not _is_number(value):
            raise _wrong(param, "a number", value)
        if value < low:
            raise InvalidRequest(f"Invalid '{param}': decimal below minimum value. Expected "
                                 f"a value >= {low:g}, but got {value} instead.", param,
                                 "decimal_below_min_value")
        if value > high:
            raise InvalidRequest(f"Invalid '{param}': decimal above maximum value. Expected "
                                 f"a value <= {high:g}, but got {value} instead.", param,
                                 "decimal_above_max_value")
    return check


def one_of(*values: str) -> Rule:
    def check(value: Any, param: str) -> None:
        string(value, param)
        if value not in values:
            shown = ", ".join(f"'{v}'" for v in values)
            raise InvalidRequest(f"Invalid value: '{value[:80]}'. Supported values are: "
                                 f"{shown}.", param, "invalid_value")
    return check


def array_of(item: Rule, *, non_empty: bool = False, most: int | None = None) -> Rule:
    def check(value: Any, param: str) -> None:
        if not isinstance(value, list):
            raise _wrong(param, "an array", value)
        if non_empty and not value:
            raise InvalidRequest(f"Invalid '{param}': empty array. Expected an array with "
                                 "minimum length 1, but got an empty array instead.", param,
                                 "empty_array")
        if most is not None and len(value) > most:
            raise InvalidRequest(f"Invalid '{param}': array too long. Expected an array with "
                                 f"maximum length {most}, but got an array with length "
                                 f"{len(value)} instead.", param, "array_above_max_length")
        for i, element in enumerate(value):
            item(element, f"{param}.[{i}]")
    return check


def either(*rules: Rule, expected: str) -> Rule:
    """The first rule whose type the value has decides; a type error naming ``expected``
    when none has it."""
    def check(value: Any, param: str) -> None:
        for rule in rules:
            try:
                rule(value, param)
                return
            except InvalidRequest as error:
                if error.code == "invalid_type" and error.param == param:
                    continue  # not this rule's type: try the next
                raise
        raise _wrong(param, expected, value)
    return check


def texts_or_tokens(*, non_empty: bool = False) -> Rule:
    """A prompt or embeddings input: a string, or an array of strings, of token ids, or of
    arrays of token ids (OpenAI's four forms)."""
    def token_ids(value: Any) -> bool:
        return isinstance(value, list) and all(_is_int(t) and t >= 0 for t in value)

    def check(value: Any, param: str) -> None:
        if isinstance(value, str):
            return
        if isinstance(value, list):
            if non_empty and not value:
                raise InvalidRequest(f"Invalid '{param}': empty array. Expected an array with "
                                     "minimum length 1, but got an empty array instead.",
                                     param, "empty_array")
            if (all(isinstance(x, str) for x in value) or token_ids(value)
                    or all(token_ids(x) for x in value)):
                return
        raise _wrong(param, "a string, an array of strings or an array of token ids", value)
    return check


def fields(rules: dict[str, Rule], *, required: tuple[str, ...] = ()) -> Rule:
    """An object whose listed fields (when present and not null) follow their rules."""
    def check(value: Any, param: str) -> None:
        obj(value, param)
        for name in required:
            if name not in value:
                raise InvalidRequest(f"Missing required parameter: '{_join(param, name)}'.",
                                     _join(param, name), "missing_required_parameter")
        for name, rule in rules.items():
            field = value.get(name)
            if field is not None:
                rule(field, _join(param, name))
    return check


def _join(param: str, name: str) -> str:
    return f"{param}.{name}" if param else name


# -- the three endpoints ------------------------------------------------------------------
_content_part = fields({"type": string}, required=("type",))
_content = either(string, array_of(_content_part), expected="a string or an array")
_message = fields({"role": one_of(*ROLES), "content": _content, "name": string,
                   "tool_calls": array_of(obj), "tool_call_id": string},
                  required=("role",))
_stop = either(string, array_of(string, most=MAX_STOP), expected="a string or an array")

_SAMPLING: dict[str, Rule] = {
    "model": string,
    "stream": boolean,
    "stream_options": fields({"include_usage": boolean}),
    "max_tokens": integer(1),
    "n": integer(1, MAX_N),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "stop": _stop,
    "seed": integer(),
    "user": string,
    "logit_bias": obj,
}

SCHEMAS: dict[Endpoint, Rule] = {
    CHAT: fields({**_SAMPLING, "messages": array_of(_message, non_empty=True),
                  "max_completion_tokens": integer(1), "logprobs": boolean,
                  "top_logprobs": integer(0, 20), "tools": array_of(obj),
                  "tool_choice": either(string, obj, expected="a string or an object"),
                  "parallel_tool_calls": boolean, "response_format": obj},
                 required=("model", "messages")),
    COMPLETIONS: fields({**_SAMPLING, "prompt": texts_or_tokens(), "echo": boolean,
                         "logprobs": integer(0, 5), "best_of": integer(1, 20),
                         "suffix": string},
                        required=("model", "prompt")),
    EMBEDDINGS: fields({"model": string, "user": string,
                        "input": texts_or_tokens(non_empty=True),
                        "encoding_format": one_of("float", "base64"),
                        "dimensions": integer(1)},
                       required=("model", "input")),
}


def check_request(endpoint: Endpoint, body: Any) -> None:
    """Raise ``InvalidRequest`` for the first way ``body`` breaks ``endpoint``'s protocol."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model")
    if "model" not in body or model is None or model == "":
        raise InvalidRequest("You must provide a model parameter.", "model",
                             "missing_required_parameter")
    SCHEMAS[endpoint](body, "")
