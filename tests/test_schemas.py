"""Tests for the ready-made interrupt payload schemas."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reactor import schemas


def accepts(schema: dict[str, Any], payload: Any) -> bool:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema).is_valid(payload)


# --------------------------------------------------------------------------- confirmation


@pytest.mark.parametrize(
    "payload",
    [
        {"approved": True},
        {"approved": False, "comment": "over budget"},
        {"approved": True, "comment": "", "responded_by": "ana@example.com"},
    ],
)
def test_confirmation_accepts(payload: Any) -> None:
    assert accepts(schemas.confirmation(), payload)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"approved": "yes"},
        {"approved": 1},
        {"approved": None},
        {"approved": True, "comment": 3},
        {"approved": True, "responded_by": ["ana"]},
        {"approved": True, "extra": 1},
        [True],
        True,
    ],
)
def test_confirmation_rejects(payload: Any) -> None:
    assert not accepts(schemas.confirmation(), payload)


def test_helpers_return_fresh_dicts() -> None:
    first = schemas.confirmation()
    first["required"].append("comment")
    assert schemas.confirmation()["required"] == ["approved"]


# --------------------------------------------------------------------------- choice

OPTIONS = ["ship", "refund", "hold"]


@pytest.mark.parametrize("payload", [{"choice": "ship"}, {"choice": "hold"}])
def test_choice_accepts(payload: Any) -> None:
    assert accepts(schemas.choice(OPTIONS), payload)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"choice": "cancel"},
        {"choice": "Ship"},
        {"choice": ["ship"]},
        {"choices": ["ship"]},
        {"choice": "ship", "note": "x"},
        "ship",
    ],
)
def test_choice_rejects(payload: Any) -> None:
    assert not accepts(schemas.choice(OPTIONS), payload)


@pytest.mark.parametrize("payload", [{"choices": ["ship"]}, {"choices": ["hold", "refund"]}])
def test_multiple_choice_accepts(payload: Any) -> None:
    assert accepts(schemas.choice(OPTIONS, multiple=True), payload)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"choices": []},
        {"choices": ["ship", "ship"]},
        {"choices": ["cancel"]},
        {"choices": "ship"},
        {"choice": "ship"},
        {"choices": ["ship"], "extra": True},
    ],
)
def test_multiple_choice_rejects(payload: Any) -> None:
    assert not accepts(schemas.choice(OPTIONS, multiple=True), payload)


def test_choice_keeps_option_order_and_accepts_any_sequence() -> None:
    schema = schemas.choice(("b", "a"))
    assert schema["properties"]["choice"]["enum"] == ["b", "a"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ([], "at least one option"),
        ((), "at least one option"),
        (["a", "a"], "duplicate options: 'a'"),
        (["a", 1], "must be strings"),
        ("ab", "not a single string"),
    ],
)
def test_choice_refuses_bad_options(options: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schemas.choice(options)


# --------------------------------------------------------------------------- text


def test_text_defaults() -> None:
    schema = schemas.text()
    assert accepts(schema, {"text": "ok"})
    assert accepts(schema, {"text": "x" * 10_000})
    for payload in ({"text": ""}, {}, {"text": 5}, {"text": "ok", "more": 1}, "ok"):
        assert not accepts(schema, payload)


def test_text_limits_and_pattern() -> None:
    schema = schemas.text(min_length=2, max_length=5, pattern=r"^[A-Z]+-\d+$")
    assert accepts(schema, {"text": "AB-12"})
    for text in ("A", "ABC-123", "ab-12", "AB12"):
        assert not accepts(schema, {"text": text})


def test_text_may_allow_empty() -> None:
    assert accepts(schemas.text(min_length=0), {"text": ""})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_length": -1}, "min_length"),
        ({"min_length": 3, "max_length": 2}, "less than min_length"),
        ({"pattern": "("}, "invalid pattern"),
    ],
)
def test_text_refuses_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schemas.text(**kwargs)


# --------------------------------------------------------------------------- form

AMOUNT_FORM = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 1},
        "currency": {"enum": ["EUR", "USD"]},
    },
    "required": ["amount"],
}


def test_form_accepts_and_rejects() -> None:
    schema = schemas.form(AMOUNT_FORM)
    assert accepts(schema, {"amount": 120, "currency": "EUR"})
    assert accepts(schema, {"amount": 1})
    for payload in ({}, {"amount": 0}, {"amount": "120"}, {"amount": 5, "currency": "GBP"}, [1]):
        assert not accepts(schema, payload)


def test_form_returns_a_deep_copy() -> None:
    schema = schemas.form(AMOUNT_FORM)
    assert schema == AMOUNT_FORM
    schema["properties"]["amount"]["minimum"] = 100
    assert AMOUNT_FORM["properties"]["amount"]["minimum"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "objekt"}, "invalid JSON Schema"),
        ({"type": "object", "properties": {"a": {"minLength": -1}}}, "invalid JSON Schema"),
        ({"type": "object", "required": "amount"}, "invalid JSON Schema"),
        ({"type": "string"}, '"type": "object"'),
        ({"properties": {"a": {}}}, '"type": "object"'),
    ],
)
def test_form_refuses_bad_schemas(schema: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schemas.form(schema)
