"""HTML forms generated from an interrupt's JSON Schema, and the payload a posted form means.

Field names are JSON Pointers into the payload (``/amount``, ``/address/city``), the same
paths a schema violation reports, so errors land next to their fields.

Widgets by schema:

- ``boolean`` -> a checkbox; but a top-level ``approved`` boolean (``schemas.confirmation()``)
  -> "Approve" / "Reject" submit buttons;
- ``enum`` -> radio buttons (a few options) or a select;
- ``array`` of an ``enum`` -> checkboxes;
- ``string`` -> a text input, or a textarea for free text (``text``, ``comment``... or long);
- ``number`` / ``integer`` -> a number input;
- ``object`` with ``properties`` -> a fieldset of its fields;
- anything else -> a textarea holding JSON.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from starlette.datastructures import FormData

__all__ = ["DECISION", "Field", "Form", "build_form", "parse_form"]

DECISION = "/approved"
"""Pointer of the member a confirmation's Approve/Reject buttons set."""

_FREE_TEXT = frozenset({"text", "comment", "comments", "description", "reason", "notes"})
_FEW_OPTIONS = 5
_REQUIRED = re.compile(r"^'(?P<name>.+)' is a required property$")


class _Missing:
    """Marks a field left empty: its member is left out of the payload."""


_MISSING = _Missing()


@attrs.define
class Field:
    """One form control (or a fieldset of them).

    Attributes:
        pointer: JSON Pointer of the payload member; also the control's ``name``.
        id: The control's HTML id.
        label: Its visible label.
        widget: ``text``, ``textarea``, ``number``, ``integer``, ``checkbox``, ``radio``,
            ``select``, ``checkboxes``, ``fieldset`` or ``json``.
        required: Whether the schema requires it.
        description: Help text shown under it.
        options: The allowed values (radio, select, checkboxes), as text.
        value: What to show in it (a posted value after an invalid submission).
        errors: Messages of the schema violations at this member.
        children: A fieldset's fields.
        attributes: Extra HTML attributes (``min``, ``maxlength``...).
    """

    pointer: str
    id: str
    label: str
    widget: str
    required: bool = False
    description: str | None = None
    options: list[str] = attrs.Factory(list)
    value: Any = None
    errors: list[str] = attrs.Factory(list)
    children: list[Field] = attrs.Factory(list)
    attributes: dict[str, Any] = attrs.Factory(dict)

    def selected(self, option: str) -> bool:
        """Whether ``option`` is the value (or among the values) shown."""
        if isinstance(self.value, list):
            return option in [_text(v) for v in self.value]
        return self.value is not None and _text(self.value) == option


@attrs.define
class Form:
    """A form for one interrupt.

    Attributes:
        fields: The controls, in schema order.
        decision: Whether it is a confirmation (Approve/Reject buttons).
        errors: Violations that belong to no field (unknown members...).
        decision_errors: Violations of the decision itself (e.g. it is missing).
    """

    fields: list[Field]
    decision: bool = False
    errors: list[str] = attrs.Factory(list)
    decision_errors: list[str] = attrs.Factory(list)

    def walk(self) -> Iterator[Field]:
        """Every field, fieldsets' children included, depth first."""
        stack = list(reversed(self.fields))
        while stack:
            field = stack.pop()
            yield field
            stack.extend(reversed(field.children))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _label(name: str, schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str) and title:
        return title
    return name.replace("_", " ").strip().capitalize() or "Answer"


def _is_decision(schema: Mapping[str, Any] | None) -> bool:
    if not schema or _type(schema) != "object":
        return False
    approved = schema.get("properties", {}).get("approved")
    return isinstance(approved, Mapping) and _type(approved) == "boolean"


def _lookup(value: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _widget(name: str, schema: Mapping[str, Any]) -> str:
    kind = _type(schema)
    if isinstance(schema.get("enum"), list):
        return "radio" if len(schema["enum"]) <= _FEW_OPTIONS else "select"
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and isinstance(items.get("enum"), list):
            return "checkboxes"
        return "json"
    if kind == "string":
        limit = schema.get("maxLength")
        long = isinstance(limit, int) and limit > 200
        return "textarea" if name in _FREE_TEXT or long else "text"
    if kind in ("number", "integer", "boolean"):
        return "checkbox" if kind == "boolean" else kind
    if kind == "object" and isinstance(schema.get("properties"), Mapping):
        return "fieldset"
    return "json"


def _attributes(schema: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for keyword, attribute in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("maxLength", "maxlength"),
        ("multipleOf", "step"),
    ):
        if isinstance(schema.get(keyword), int | float):
            found[attribute] = schema[keyword]
    if _type(schema) == "number" and "step" not in found:
        found["step"] = "any"
    return found


def _fields(
    schema: Mapping[str, Any],
    pointer: str,
    values: Any,
    ids: Iterator[int],
    *,
    skip: frozenset[str] = frozenset(),
) -> list[Field]:
    required = set(schema.get("required", ()))
    fields = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{pointer}/{_escape(name)}"
        if path in skip or not isinstance(sub, Mapping):
            continue
        widget = _widget(name, sub)
        options: list[Any] = []
        if widget in ("radio", "select"):
            options = sub["enum"]
        elif widget == "checkboxes":
            options = sub["items"]["enum"]
        value = _lookup(values, path)
        field = Field(
            pointer=path,
            id=f"f{next(ids)}",
            label=_label(name, sub),
            widget=widget,
            required=name in required,
            description=sub.get("description") if isinstance(sub.get("description"), str) else None,
            options=[_text(option) for option in options],
            value=json.dumps(value, indent=2) if widget == "json" and value is not None else value,
            attributes=_attributes(sub),
        )
        if widget == "fieldset":
            field.children = _fields(sub, path, values, ids)
        fields.append(field)
    return fields


def build_form(
    schema: Mapping[str, Any] | None,
    *,
    values: Any = None,
    errors: Sequence[Mapping[str, str]] = (),
    principal: str | None = None,
) -> Form:
    """The form for an interrupt whose payload must satisfy ``schema``.

    Args:
        schema: The interrupt's JSON Schema (``None``: any JSON, one JSON textarea).
        values: A payload to fill the fields with (the one just refused).
        errors: ``{"path", "message"}`` violations to show next to their fields.
        principal: Who is answering; a confirmation's ``responded_by`` is then filled
            with it instead of being asked for.
    """
    ids = itertools.count(1)
    decision = _is_decision(schema)
    if schema and _type(schema) == "object" and isinstance(schema.get("properties"), Mapping):
        skip = {DECISION} if decision else set()
        if decision and principal is not None:
            skip.add("/responded_by")
        fields = _fields(schema, "", values, ids, skip=frozenset(skip))
    else:
        fields = [
            Field(
                pointer="",
                id=f"f{next(ids)}",
                label="Answer (JSON)",
                widget="json",
                required=True,
                value=json.dumps(values, indent=2) if values is not None else None,
            )
        ]
    form = Form(fields=fields, decision=decision)
    by_pointer = {field.pointer: field for field in form.walk()}
    for error in errors:
        path, message = error.get("path", ""), error.get("message", "")
        path = "" if path == "/" else path
        missing = _REQUIRED.match(message)
        if missing:
            path = f"{path}/{_escape(missing['name'])}"
            message = "This field is required."
        if decision and path == DECISION:
            form.decision_errors.append(message)
            continue
        # A violation deep inside a JSON field belongs to that field.
        while path and path not in by_pointer:
            path = path.rpartition("/")[0]
        if path in by_pointer:
            by_pointer[path].errors.append(message)
        else:
            form.errors.append(message)
    return form


def parse_form(
    schema: Mapping[str, Any] | None, data: FormData, *, principal: str | None = None
) -> Any:
    """The payload a posted form stands for.

    Values that do not parse (``"abc"`` in a number field) are kept as text, so the schema
    check reports them next to their field rather than this function guessing.
    """
    if not schema or _type(schema) != "object" or not isinstance(schema.get("properties"), Mapping):
        return _json(_field_text(data, ""))
    payload = _parse(schema, "", data)
    if not isinstance(payload, dict):
        payload = {}
    if (
        _is_decision(schema)
        and principal is not None
        and "responded_by" in schema["properties"]
        and "responded_by" not in payload
    ):
        payload["responded_by"] = principal
    return payload


def _field_text(data: FormData, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse(schema: Mapping[str, Any], pointer: str, data: FormData) -> Any:
    kind = _type(schema)
    name = pointer.rpartition("/")[2]
    widget = _widget(name, schema) if pointer else "fieldset"
    if widget == "fieldset":
        required = set(schema.get("required", ()))
        found: dict[str, Any] = {}
        for key, sub in schema.get("properties", {}).items():
            if not isinstance(sub, Mapping):
                continue
            value = _parse(sub, f"{pointer}/{_escape(key)}", data)
            if value is not _MISSING:
                found[key] = value
            elif key in required and _widget(key, sub) == "fieldset":
                found[key] = {}
        return found if found or not pointer else _MISSING
    if widget == "checkboxes":
        options = schema["items"]["enum"]
        chosen = [_enum_value(options, v) for v in data.getlist(pointer) if isinstance(v, str)]
        return chosen or _MISSING
    if widget == "checkbox" or (pointer == DECISION and kind == "boolean"):
        if pointer == DECISION and pointer not in data:
            return _MISSING
        return _field_text(data, pointer) in ("true", "on", "1")
    text = _field_text(data, pointer)
    if text == "":
        return _MISSING
    if widget in ("radio", "select"):
        return _enum_value(schema["enum"], text)
    if widget == "json":
        return _json(text)
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text else number
    return text


def _enum_value(options: Sequence[Any], text: str) -> Any:
    for option in options:
        if _text(option) == text:
            return option
    return text
