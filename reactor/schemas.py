"""Ready-made JSON Schemas for interrupt payloads.

Each helper returns a new JSON Schema (Draft 2020-12) dict for the payload a resume must
carry; pass it as an interrupt's ``schema``. The payload is checked against it before the
execution changes in any way, and an invalid one raises
:class:`~reactor.errors.PayloadInvalid` with one error per violation.

Example::

    from reactor import Reactor, interrupt, schemas, step

    class Expense(Reactor):
        @interrupt(schema=schemas.confirmation())
        def manager_approval(self): ...

        @step
        def pay(self, manager_approval):
            if manager_approval["approved"]:
                ...

    Expense.resume(execution_id, {"approved": True, "responded_by": "ana"})
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

__all__ = ["choice", "confirmation", "form", "text"]


def confirmation() -> dict[str, Any]:
    """A yes/no decision, optionally with a comment and who made it.

    Example payload::

        {"approved": False, "comment": "over budget", "responded_by": "ana@example.com"}

    Only ``approved`` (a boolean) is required; ``comment`` and ``responded_by`` are strings.
    No other member is allowed.

    Returns:
        The JSON Schema.
    """
    return {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean"},
            "comment": {"type": "string"},
            "responded_by": {"type": "string"},
        },
        "required": ["approved"],
        "additionalProperties": False,
    }


def choice(options: Sequence[str], *, multiple: bool = False) -> dict[str, Any]:
    """A pick among fixed options.

    Example payloads, for ``choice(["ship", "refund", "hold"])``::

        {"choice": "refund"}

    and for ``choice(["ship", "refund", "hold"], multiple=True)``::

        {"choices": ["refund", "hold"]}

    With ``multiple=True`` at least one option must be picked, and each at most once. No
    other member is allowed.

    Args:
        options: The allowed values, in the order a user interface should show them.
        multiple: Whether several options may be picked (member ``"choices"``, a list)
            rather than exactly one (member ``"choice"``, a string).

    Returns:
        The JSON Schema.

    Raises:
        ValueError: ``options`` is empty, has duplicates, or holds something not a string.
    """
    if isinstance(options, str):
        raise ValueError("options must be a sequence of strings, not a single string")
    allowed = list(options)
    if not allowed:
        raise ValueError("choice() needs at least one option")
    for option in allowed:
        if not isinstance(option, str):
            raise ValueError(f"options must be strings, got {option!r}")
    duplicates = sorted({option for option in allowed if allowed.count(option) > 1})
    if duplicates:
        raise ValueError(f"duplicate options: {', '.join(map(repr, duplicates))}")
    item = {"type": "string", "enum": allowed}
    if multiple:
        member = "choices"
        schema: dict[str, Any] = {
            "type": "array",
            "items": item,
            "uniqueItems": True,
            "minItems": 1,
        }
    else:
        member, schema = "choice", item
    return {
        "type": "object",
        "properties": {member: schema},
        "required": [member],
        "additionalProperties": False,
    }


def text(
    *, min_length: int = 1, max_length: int | None = None, pattern: str | None = None
) -> dict[str, Any]:
    """A free-text answer.

    Example payload, for ``text(max_length=500)``::

        {"text": "Approved for Q3, see ticket FIN-1234."}

    No other member is allowed.

    Args:
        min_length: Fewest characters allowed; the default 1 refuses an empty answer.
        max_length: Most characters allowed, or ``None`` for no limit.
        pattern: A regular expression the text must match somewhere (JSON Schema
            ``pattern`` is not anchored: use ``^...$`` to match the whole text).

    Returns:
        The JSON Schema.

    Raises:
        ValueError: A length is negative, ``max_length < min_length``, or ``pattern`` is
            not a valid regular expression.
    """
    if min_length < 0:
        raise ValueError(f"min_length must be >= 0, got {min_length}")
    member: dict[str, Any] = {"type": "string", "minLength": min_length}
    if max_length is not None:
        if max_length < min_length:
            raise ValueError(f"max_length ({max_length}) is less than min_length ({min_length})")
        member["maxLength"] = max_length
    if pattern is not None:
        # jsonschema evaluates "pattern" with Python's re, so this is the check that counts.
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid pattern {pattern!r}: {exc}") from exc
        member["pattern"] = pattern
    return {
        "type": "object",
        "properties": {"text": member},
        "required": ["text"],
        "additionalProperties": False,
    }


def form(json_schema: Mapping[str, Any]) -> dict[str, Any]:
    """A structured answer described by your own object schema.

    Example, for a schema with a required integer ``amount`` and a string ``currency``::

        form({
            "type": "object",
            "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
            "required": ["amount"],
        })

    accepts the payload::

        {"amount": 120, "currency": "EUR"}

    Args:
        json_schema: A JSON Schema (Draft 2020-12) whose ``type`` is ``"object"``.

    Returns:
        A deep copy of ``json_schema``, so later changes to the original do not affect it.

    Raises:
        ValueError: ``json_schema`` is not a valid JSON Schema, or does not describe an
            object.
    """
    schema = copy.deepcopy(dict(json_schema))
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise ValueError(f'form() needs a schema with "type": "object", got {schema.get("type")!r}')
    return schema
