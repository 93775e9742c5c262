"""Tests for the JSON codec: round trips with type fidelity, structuring, refusals."""

from __future__ import annotations

import ast
import collections
import copy
import dataclasses
import enum
import inspect
import json
import math
import os
import re
import socket
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reactor
from reactor import _codec
from reactor.errors import SerializationError

# --------------------------------------------------------------------------- fixtures


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


@attrs.define
class Event:
    name: str
    when: datetime
    until: date | None = None


@attrs.frozen
class Money:
    amount: Decimal
    currency: str = "EUR"


@dataclasses.dataclass
class Timeline:
    title: str
    events: list[Event]
    tags: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Counted:
    value: int
    double: int = dataclasses.field(init=False)
    calls = 0

    def __post_init__(self) -> None:
        Counted.calls += 1
        self.double = self.value * 2


@dataclasses.dataclass
class Order:
    id: int
    placed_at: datetime
    lines: tuple[int, ...]
    color: Color
    price: Decimal
    ref: uuid.UUID
    note: str | None = None


@dataclasses.dataclass
class Holder:
    items: list[Any]


class Pair(NamedTuple):
    left: int
    right: int


def deep_types(value: Any) -> Any:
    """The value's structure with every leaf replaced by its exact type."""
    kind = type(value)
    if kind in (list, tuple):
        return kind, [deep_types(item) for item in value]
    if kind in (set, frozenset):
        return kind, sorted(map(repr, map(deep_types, value)))
    if kind is dict:
        return kind, [(deep_types(k), deep_types(v)) for k, v in value.items()]
    if dataclasses.is_dataclass(value) or attrs.has(kind):
        fields = (
            dataclasses.fields(value) if dataclasses.is_dataclass(value) else attrs.fields(kind)
        )
        return kind, [(f.name, deep_types(getattr(value, f.name))) for f in fields]
    if kind in (datetime, time):
        return kind, value.tzinfo, value.fold
    return kind


def assert_round_trip(value: Any) -> Any:
    """Checks both round trips (text and tree) give back an equal value of the same types."""
    text = _codec.dumps(value)
    assert json.loads(text) == _codec.encode(value)  # the text is plain JSON
    for back in (_codec.loads(text), _codec.decode(_codec.encode(value))):
        assert back == value
        assert deep_types(back) == deep_types(value)
    return _codec.loads(text)


# --------------------------------------------------------------------------- round trips

NOW = datetime(2024, 5, 17, 13, 45, 12, 123456)

SCALARS = [
    "text",
    "",
    "ünïcode ✓ 😀",
    0,
    -7,
    2**80,
    1.5,
    -0.0,
    1e308,
    True,
    False,
    None,
]

BUILT_INS = [
    [],
    [1, "a", None, 2.5, True],
    {},
    {"a": 1, "b": [1, 2]},
    (),
    (1,),
    (1, "a", (2, 3)),
    set(),
    {1, 2, 3},
    {"b", "a"},
    frozenset({(1, 2), (3, 4)}),
    b"\x00\xffbytes",
    NOW,
    NOW.replace(tzinfo=UTC),
    NOW.replace(tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    NOW.replace(tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),  # skipped by DST
    date(2024, 2, 29),
    time(23, 59, 59, 999999),
    time(8, 0, tzinfo=timezone(timedelta(hours=2))),
    timedelta(days=-1, seconds=5, microseconds=7),
    timedelta(0),
    Decimal("1.10"),
    Decimal("-0.000001"),
    Decimal("1E+30"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Fraction(1, 3),
    Fraction(-7, 2),
    Fraction(5),
    complex(1, 2),
    complex(-0.5, 1e300),
    1j,
    Color.RED,
    Priority.HIGH,
    Mode.FAST,
    Perm.READ,
    Perm.READ | Perm.WRITE,
    Point(1, 2),
    Money(Decimal("9.99")),
    Event("launch", NOW),
]


@pytest.mark.parametrize("value", SCALARS + BUILT_INS, ids=repr)
def test_round_trip_keeps_value_and_type(value: Any) -> None:
    assert_round_trip(value)


@pytest.mark.parametrize("value", SCALARS + BUILT_INS, ids=repr)
def test_round_trip_nested_in_containers(value: Any) -> None:
    assert_round_trip({"x": [value, (value,)], "y": {"deep": [[value]]}})


def test_nested_dataclass_with_attrs_instances_and_datetimes() -> None:
    paris = ZoneInfo("Europe/Paris")
    value = Timeline(
        title="release",
        events=[
            Event("freeze", datetime(2024, 6, 1, 9, 0, tzinfo=paris), date(2024, 6, 3)),
            Event("ship", datetime(2024, 6, 4, 12, 0, tzinfo=UTC)),
        ],
        tags={"q2", "major"},
    )
    back = assert_round_trip(value)
    assert back.events[0].when.tzinfo is paris
    assert back.events[1].until is None


def test_dict_with_non_str_keys() -> None:
    value = {1: "one", (2, "b"): [2], None: 0, Color.RED: "r", 2.5: "f", "s": "str"}
    back = assert_round_trip(value)
    assert list(back) == list(value)  # key order kept


def test_user_dict_containing_tag_key_is_escaped() -> None:
    value = {"$t": "datetime", "v": "2024-01-01T00:00:00"}
    assert _codec.encode(value) == {
        "$t": "dict",
        "v": [["$t", "datetime"], ["v", "2024-01-01T00:00:00"]],
    }
    back = assert_round_trip(value)
    assert type(back) is dict
    assert_round_trip({"outer": [{"$t": "tuple", "v": [1]}]})


def test_json_native_values_pass_through_unchanged() -> None:
    value = {"a": [1, 2, {"b": None, "c": "x", "d": 1.5}], "e": True}
    assert _codec.encode(value) is value
    assert _codec.dumps(value) == json.dumps(value, separators=(",", ":"))
    ints = list(range(10))
    assert _codec.encode(ints) is ints
    assert _codec.dumps("é") == '"é"'  # ensure_ascii=False


def test_decode_does_not_modify_the_tree() -> None:
    tree = _codec.encode({"a": [(1, 2), {3}], "b": {1: NOW}})
    snapshot = copy.deepcopy(tree)
    _codec.decode(tree)
    assert tree == snapshot


def test_encoded_form_is_stable() -> None:
    # Stored executions depend on these exact shapes: change them only with a migration.
    assert _codec.encode((1, 2)) == {"$t": "tuple", "v": [1, 2]}
    assert _codec.encode({2, 1}) == {"$t": "set", "v": [1, 2]}
    assert _codec.encode(frozenset({"a"})) == {"$t": "frozenset", "v": ["a"]}
    assert _codec.encode({1: "a"}) == {"$t": "dict", "v": [[1, "a"]]}
    assert _codec.encode(datetime(2024, 1, 1, tzinfo=UTC)) == {
        "$t": "datetime",
        "v": "2024-01-01T00:00:00+00:00",
    }
    assert _codec.encode(datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))) == {
        "$t": "datetime",
        "v": "2024-01-01T00:00:00+01:00",
        "tz": "Europe/Paris",
    }
    assert _codec.encode(date(2024, 1, 2)) == {"$t": "date", "v": "2024-01-02"}
    assert _codec.encode(time(1, 2)) == {"$t": "time", "v": "01:02:00"}
    assert _codec.encode(timedelta(days=1, seconds=2, microseconds=3)) == {
        "$t": "timedelta",
        "v": [1, 2, 3],
    }
    assert _codec.encode(Decimal("1.10")) == {"$t": "decimal", "v": "1.10"}
    assert _codec.encode(uuid.UUID(int=1)) == {
        "$t": "uuid",
        "v": "00000000-0000-0000-0000-000000000001",
    }
    assert _codec.encode(b"hi") == {"$t": "bytes", "v": "aGk="}
    assert _codec.encode(Fraction(-1, 3)) == {"$t": "fraction", "v": "-1/3"}
    assert _codec.encode(complex(1.5, -2)) == {"$t": "complex", "v": "(1.5-2j)"}
    assert _codec.encode(Color.RED) == {"$t": "enum", "c": f"{__name__}:Color", "n": "RED"}
    assert _codec.encode(Perm.READ | Perm.WRITE) == {"$t": "enum", "c": f"{__name__}:Perm", "v": 3}
    assert _codec.encode(Point(1, 2)) == {
        "$t": "dataclass",
        "c": f"{__name__}:Point",
        "v": {"x": 1, "y": 2},
    }
    assert _codec.encode(Money(Decimal(1))) == {
        "$t": "attrs",
        "c": f"{__name__}:Money",
        "v": {"amount": {"$t": "decimal", "v": "1"}, "currency": "EUR"},
    }


def test_set_encoding_is_deterministic_when_sortable() -> None:
    assert _codec.dumps({3, 1, 2}) == _codec.dumps({2, 3, 1})
    assert_round_trip({1, "a", None})  # unsortable: still round trips


def test_decoding_restores_state_without_calling_init() -> None:
    value = Counted(5)
    assert (value.double, Counted.calls) == (10, 1)
    text = _codec.dumps(value)
    back = _codec.loads(text)
    assert back == value
    assert back.double == 10
    assert Counted.calls == 1  # no __init__ / __post_init__ on decoding


def test_decoding_fills_fields_added_since_with_their_defaults() -> None:
    stored = {"$t": "dataclass", "c": f"{__name__}:Timeline", "v": {"title": "t", "events": []}}
    assert _codec.decode(stored) == Timeline("t", [], set())
    stored = {"$t": "attrs", "c": f"{__name__}:Money", "v": {"amount": "1", "gone": 1}}
    assert _codec.decode(stored) == Money("1")  # type: ignore[arg-type]
    stored = {"$t": "attrs", "c": f"{__name__}:Money", "v": {"currency": "USD"}}
    with pytest.raises(SerializationError, match="no value for field 'amount'"):
        _codec.decode(stored)


def test_dumps_without_the_reusable_c_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": [1, 2.5, None, "é"], "b": (1, {2})}
    reused = _codec._standard_dump(_codec.encode(value))
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert _codec._make_standard_dumper()(_codec.encode(value)) == reused


# Plain JSON data as encode() leaves it, with the values at the edges of orjson's range.
_json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@pytest.mark.skipif(_codec.orjson is None, reason="reactor[fast] (orjson) not installed")
@settings(max_examples=300, deadline=None)
@given(_json_data)
def test_the_fast_writer_writes_what_the_standard_one_does(tree: Any) -> None:
    """orjson writes the tree (or hands it to the standard writer): the text reads back as
    the standard writer's text does, every int staying an int."""
    fast = _codec._make_dumper(_codec.orjson)(tree)
    standard = _codec._make_dumper(None)(tree)
    assert _codec.parse_tree(fast) == _codec.parse_tree(standard) == tree
    assert deep_types(_codec.parse_tree(fast)) == deep_types(tree)


@pytest.mark.skipif(_codec.orjson is None, reason="reactor[fast] (orjson) not installed")
@settings(max_examples=300, deadline=None)
@given(_json_data)
def test_the_fast_reader_reads_what_the_standard_one_does(tree: Any) -> None:
    """orjson reads the text (or hands it to the standard reader): the same value, every
    int beyond 64 bits staying an exact int."""
    text = _codec._make_dumper(None)(tree)
    fast = _codec._make_loader(_codec.orjson)(text)
    assert fast == _codec._make_loader(None)(text) == tree
    assert deep_types(fast) == deep_types(tree)


@pytest.mark.skipif(_codec.orjson is None, reason="reactor[fast] (orjson) not installed")
@pytest.mark.parametrize(
    "text",
    [
        "-9223372036854775809",  # 19 digits, below -2**63
        "[18446744073709551616]",  # 20 digits, 2**64
        '{"id": "1234567890123456789012"}',  # digits in a string: read the standard way
        "1e400",
        '"\\ud800"',
        "NaN",
        "[1, 2",
        "[1] [2]",
    ],
    ids=[
        "below-i64",
        "u64+1",
        "digit-string",
        "huge-float",
        "lone-surrogate",
        "nan",
        "cut",
        "extra",
    ],
)
def test_the_fast_reader_gives_the_standard_value_or_error(text: str) -> None:
    fast, standard = _codec._make_loader(_codec.orjson), _codec._make_loader(None)
    try:
        expected = standard(text)
    except Exception as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            fast(text)
    else:
        assert fast(text) == expected
        assert deep_types(fast(text)) == deep_types(expected)


@pytest.mark.parametrize("value", [math.nan, -math.inf, [1.0, {"x": math.inf}]])
def test_nan_never_reaches_the_writer(value: Any) -> None:
    """orjson would write NaN as null: encode() refuses it first."""
    with pytest.raises(SerializationError, match="no NaN or infinity"):
        _codec.dumps(value)


class _Word(enum.StrEnum):
    A = "a"


@pytest.mark.skipif(_codec.orjson is None, reason="reactor[fast] (orjson) not installed")
@pytest.mark.parametrize(
    "tree",
    [
        {"when": datetime(2024, 1, 1, tzinfo=UTC)},
        {"m": Money(Decimal(1))},
        {1: "a"},
        [_Word.A],
        [2**64],
        {"deep": json.loads("[" * 300 + "]" * 300)},
    ],
    ids=["datetime", "attrs", "int-key", "str-enum", "big-int", "deep"],
)
def test_the_fast_writer_hands_what_is_not_plain_json_to_the_standard_one(tree: Any) -> None:
    """Same text or same error as the standard writer for what orjson would write its own
    way (a datetime as ISO text, say) or not at all."""
    fast, standard = _codec._make_dumper(_codec.orjson), _codec._make_dumper(None)
    try:
        expected = standard(tree)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            fast(tree)
    else:
        assert fast(tree) == expected


def test_bytes_input_to_loads() -> None:
    assert _codec.loads(_codec.dumps((1, "é")).encode()) == (1, "é")


def test_module_functions_keep_the_keywords_of_the_codec_class() -> None:
    context = ["reactor", "execution_id", "step"]
    for function, own in [
        (_codec.encode, ["value"]),
        (_codec.dumps, ["value"]),
        (_codec.decode, ["tree", "hint"]),
        (_codec.loads, ["text", "hint"]),
        (_codec.structure, ["value", "hint"]),
        (_codec.check_size, ["text", "what", "limit"]),
    ]:
        parameters = inspect.signature(function).parameters
        assert list(parameters) == own + context
        assert {parameters[name].kind for name in context} == {inspect.Parameter.KEYWORD_ONLY}
    assert list(inspect.signature(_codec.dump_tree).parameters) == ["tree"]
    assert not hasattr(_codec, "Codec")
    assert not hasattr(_codec, "default_codec")


# --------------------------------------------------------------------------- structuring


@dataclasses.dataclass
class Webhook:
    order_id: int
    approved: bool
    at: datetime
    amount: Decimal
    lines: tuple[int, ...]
    color: Color
    money: Money | None = None


def test_structure_dict_to_dataclass() -> None:
    payload = {
        "order_id": 7,
        "approved": True,
        "at": "2024-01-01T10:00:00+02:00",
        "amount": "12.50",
        "lines": [1, 2],
        "color": "green",
        "money": {"amount": "3.20", "currency": "USD"},
    }
    value = _codec.structure(payload, Webhook)
    assert value == Webhook(
        order_id=7,
        approved=True,
        at=datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=2))),
        amount=Decimal("12.50"),
        lines=(1, 2),
        color=Color.GREEN,
        money=Money(Decimal("3.20"), "USD"),
    )


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        ("2024-01-01T00:00:00", datetime, datetime(2024, 1, 1)),
        ("2024-01-01T00:00:00Z", datetime, datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01", date, date(2024, 1, 1)),
        ("12:30:00", time, time(12, 30)),
        (90, timedelta, timedelta(seconds=90)),
        ([1, 2, 3], tuple[int, ...], (1, 2, 3)),
        ([1, 2], tuple[int, str], (1, "2")),
        (["a", "b"], set[str], {"a", "b"}),
        ({"1": "2024-01-01"}, dict[int, date], {1: date(2024, 1, 1)}),
        ("red", Color, Color.RED),
        (2, Priority, Priority.HIGH),
        ("1.10", Decimal, Decimal("1.10")),
        (0.1, Decimal, Decimal("0.1")),
        (str(uuid.UUID(int=5)), uuid.UUID, uuid.UUID(int=5)),
        ("1/3", Fraction, Fraction(1, 3)),
        (0.1, Fraction, Fraction(1, 10)),
        (2, Fraction, Fraction(2)),
        ("1+2j", complex, complex(1, 2)),
        (1.5, complex, complex(1.5)),
        (3, float, 3.0),
        (None, int | None, None),
        ([{"x": 1, "y": 2}], list[Point], [Point(1, 2)]),
    ],
    ids=repr,
)
def test_structure_plain_values(value: Any, hint: Any, expected: Any) -> None:
    result = _codec.structure(value, hint)
    assert result == expected
    assert deep_types(result) == deep_types(expected)


@pytest.mark.parametrize("hint", [None, Any, inspect.Parameter.empty])
def test_structure_without_hint_returns_value(hint: Any) -> None:
    value = {"a": [1]}
    assert _codec.structure(value, hint) is value
    assert _codec.decode(value, hint) is value


def test_structure_keeps_instances_of_the_hint() -> None:
    point = Point(1, 2)
    assert _codec.structure(point, Point) is point
    event = Event("e", NOW)
    assert _codec.structure([event], list[Event])[0] is event
    assert _codec.structure({"p": point}, dict[str, Point])["p"] is point


def test_decode_and_loads_with_hint() -> None:
    text = _codec.dumps({"x": 1, "y": 2})
    assert _codec.loads(text, Point) == Point(1, 2)
    assert _codec.decode([1, 2], tuple[int, int]) == (1, 2)
    assert _codec.loads(_codec.dumps(Point(3, 4)), Point) == Point(3, 4)


def test_structure_failure_names_the_problem() -> None:
    with pytest.raises(SerializationError) as info:
        _codec.structure({"x": "nope", "y": 2}, Point, step="fetch")
    message = str(info.value)
    assert "Point" in message
    assert "$.x" in message
    assert info.value.step == "fetch"
    with pytest.raises(SerializationError, match="ISO 8601"):
        _codec.structure(12, datetime)


# --------------------------------------------------------------------------- refusals


def test_unencodable_value_names_type_and_path() -> None:
    value = {"items": [1, 2, Holder(items=[{"when": object()}])]}
    with pytest.raises(SerializationError) as info:
        _codec.encode(value)
    assert "cannot encode object at $.items[2].items[0].when" in str(info.value)


@pytest.mark.parametrize(
    ("value", "type_name", "path"),
    [
        (object(), "object", "$"),
        ({"callback": lambda: None}, "function", "$.callback"),
        ([1, (2, {"x y": print})], "builtin_function_or_method", "$[1][1]['x y']"),
        ({1: [2, range(3)]}, "range", "$[1][1]"),
        ({(1, object()): 2}, "object", "$<key (1, <object"),
        (Holder(items=[Point(1, 2), {"s": socket.socket}]), "type", "$.items[1].s"),
        (collections.OrderedDict(a=1), "collections.OrderedDict", "$"),
        ({"p": Pair(1, 2)}, "test_codec.Pair", "$.p"),
        (bytearray(b"x"), "bytearray", "$"),
    ],
    ids=repr,
)
def test_refusals(value: Any, type_name: str, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        _codec.dumps(value)
    message = str(info.value)
    assert f"cannot encode {type_name.replace('test_codec', __name__)} at {path}" in message


def test_refuses_a_socket_with_context() -> None:
    with socket.socket() as sock, pytest.raises(SerializationError) as info:
        _codec.encode({"conn": sock}, reactor="Shop", execution_id="ex1", step="connect")
    error = info.value
    assert "cannot encode socket.socket at $.conn" in str(error)
    assert (error.reactor, error.execution_id, error.step) == ("Shop", "ex1", "connect")
    assert "step='connect'" in str(error)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_refused(number: float) -> None:
    for value in (number, [1.0, number], {"a": {"b": number}}, (number,)):
        with pytest.raises(SerializationError, match="not valid JSON"):
            _codec.dumps(value)
    with pytest.raises(SerializationError, match=r"at \$\.a\.b"):
        _codec.encode({"a": {"b": number}})


def test_local_class_refused_when_encoding() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match="defined inside a function"):
        _codec.encode([Local(1)])


def test_reference_cycle_refused() -> None:
    value: list[Any] = [1]
    value.append(value)
    with pytest.raises(SerializationError, match="containing itself"):
        _codec.dumps(value)


@pytest.mark.parametrize("tag", ["dataclass", "attrs", "enum"])
def test_decoding_a_non_record_class_is_refused_without_calling_it(
    tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *args, **kwargs: calls.append(args))
    tree = {"$t": tag, "c": "os:system", "v": {"command": "echo pwned"}, "n": "X"}
    with pytest.raises(SerializationError, match="'os:system' is not"):
        _codec.decode(tree)
    with pytest.raises(SerializationError, match="'os:system' is not"):
        _codec.loads(json.dumps(tree))
    assert calls == []


@pytest.mark.parametrize(
    ("tree", "match"),
    [
        ({"$t": "dataclass", "c": f"{__name__}:Color", "v": {}}, "is not a dataclass"),
        ({"$t": "enum", "c": f"{__name__}:Point", "n": "x"}, "is not an Enum subclass"),
        ({"$t": "attrs", "c": "builtins:dict", "v": {}}, "is not an attrs class"),
        ({"$t": "dataclass", "c": "no_such_module_xyz:Thing", "v": {}}, "is not loaded"),
        ({"$t": "dataclass", "c": f"{__name__}:Missing", "v": {}}, "is not a dataclass"),
        ({"$t": "dataclass", "c": "nocolon", "v": {}}, "bad class path"),
        ({"$t": "pickle", "v": "gASV"}, "unknown tag 'pickle'"),
        ({"$t": 3}, "unknown tag 3"),
        ({"$t": "datetime", "v": "yesterday"}, "malformed 'datetime'"),
        ({"$t": "tuple", "v": "ab"}, "malformed 'tuple'"),
        ({"$t": "dict", "v": [[1]]}, "malformed 'dict'"),
        ({"$t": "bytes", "v": "!!"}, "malformed 'bytes'"),
        ({"$t": "enum", "c": f"{__name__}:Color", "n": "BLUE"}, "malformed 'enum'"),
    ],
    ids=repr,
)
def test_bad_trees_refused(tree: dict[str, Any], match: str) -> None:
    with pytest.raises(SerializationError, match=match):
        _codec.decode([tree])
    with pytest.raises(SerializationError, match=match) as info:
        _codec.loads(json.dumps({"a": tree}), execution_id="ex9")
    assert info.value.execution_id == "ex9"


@pytest.mark.parametrize("text", ["{", "NaN", "[Infinity]", b"\xff"])
def test_invalid_json_text_refused(text: str | bytes) -> None:
    with pytest.raises(SerializationError, match=r"not valid JSON|invalid JSON"):
        _codec.loads(text)


def test_complex_keeps_signed_zeros_nan_and_infinity() -> None:
    value = [complex(-0.0, -0.0), complex(math.nan, math.inf), Fraction(10**30, 3)]
    back = _codec.loads(_codec.dumps(value))
    assert list(map(repr, back)) == list(map(repr, value))
    assert math.copysign(1, back[0].real) == math.copysign(1, back[0].imag) == -1


@pytest.mark.parametrize("base", [Fraction, complex])
def test_subclasses_of_fraction_and_complex_refused(base: type) -> None:
    subclass = type("Sub", (base,), {})
    with pytest.raises(SerializationError, match=f"subclasses of {base.__name__}"):
        _codec.encode(subclass(1))


@pytest.mark.parametrize(
    ("tree", "match"),
    [
        ({"$t": "fraction", "v": "1/0"}, "malformed 'fraction'"),
        ({"$t": "fraction", "v": 3}, "malformed 'fraction'"),
        ({"$t": "complex", "v": "1+"}, "malformed 'complex'"),
    ],
    ids=repr,
)
def test_bad_fraction_and_complex_trees_refused(tree: dict[str, Any], match: str) -> None:
    with pytest.raises(SerializationError, match=match):
        _codec.decode(tree)


# --------------------------------------------------------------------------- stored data

# Written by the codec of reactor 0.x (the ``Codec`` class); stored executions hold such
# text, so it must decode to the same values, and today's codec must write it the same way.
STORED: list[tuple[str, Any]] = [
    (
        '{"ids":{"$t":"tuple","v":[1,2]},"tags":{"$t":"set","v":["a","b"]},'
        '"frozen":{"$t":"frozenset","v":[3]},"by_int":{"$t":"dict","v":[[1,"one"],'
        '[{"$t":"tuple","v":[2,"b"]},null]]},"escaped":{"$t":"dict","v":[["$t","x"]]}}',
        {
            "ids": (1, 2),
            "tags": {"a", "b"},
            "frozen": frozenset({3}),
            "by_int": {1: "one", (2, "b"): None},
            "escaped": {"$t": "x"},
        },
    ),
    (
        '[{"$t":"datetime","v":"2024-10-27T02:30:00+01:00","tz":"Europe/Paris","fold":1},'
        '{"$t":"datetime","v":"2024-01-01T00:00:00+00:00"},{"$t":"date","v":"2024-02-29"},'
        '{"$t":"time","v":"08:00:00","tz":"Europe/Paris"},{"$t":"timedelta","v":[-1,5,7]}]',
        [
            datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
            datetime(2024, 1, 1, tzinfo=UTC),
            date(2024, 2, 29),
            time(8, 0, tzinfo=ZoneInfo("Europe/Paris")),
            timedelta(days=-1, seconds=5, microseconds=7),
        ],
    ),
    (
        '[{"$t":"decimal","v":"1.10"},{"$t":"uuid","v":"00000000-0000-0000-0000-000000000001"},'
        '{"$t":"bytes","v":"aGk="},{"$t":"enum","c":"MODULE:Color","n":"RED"},'
        '{"$t":"enum","c":"MODULE:Perm","v":3}]',
        [Decimal("1.10"), uuid.UUID(int=1), b"hi", Color.RED, Perm.READ | Perm.WRITE],
    ),
    (
        '{"point":{"$t":"dataclass","c":"MODULE:Point","v":{"x":1,"y":2}},'
        '"money":{"$t":"attrs","c":"MODULE:Money","v":{"amount":{"$t":"decimal","v":"9.99"},'
        '"currency":"EUR"}}}',
        {"point": Point(1, 2), "money": Money(Decimal("9.99"))},
    ),
]


@pytest.mark.parametrize(("text", "expected"), STORED)
def test_data_stored_by_the_codec_class_still_decodes(text: str, expected: Any) -> None:
    text = text.replace("MODULE", __name__)
    for back in (_codec.loads(text), _codec.decode(json.loads(text))):
        assert back == expected
        assert deep_types(back) == deep_types(expected)
    assert _codec.dumps(expected) == text


def test_decoding_never_imports_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "codec_probe_module.py").write_text(
        "import dataclasses\nIMPORTED = True\n@dataclasses.dataclass\nclass Thing:\n    x: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "codec_probe_module", raising=False)
    tree = {"$t": "dataclass", "c": "codec_probe_module:Thing", "v": {"x": 1}}
    with pytest.raises(SerializationError, match=r"'codec_probe_module' .* is not loaded"):
        _codec.decode(tree)
    assert "codec_probe_module" not in sys.modules
    module = __import__("codec_probe_module")  # once the application imports it, it decodes
    assert _codec.decode(tree) == module.Thing(1)


# --------------------------------------------------------------------------- text

SURROGATE = "\ud800"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (SURROGATE, "$"),
        ("ok \udfff", "$"),
        ("\ud83d\ude00", "$"),  # a pair spelled as two code points is still two lone halves
        (["a", "é", SURROGATE], "$[2]"),
        (["a", "b", SURROGATE], "$[2]"),
        ({"note": SURROGATE}, "$.note"),
        ({"é": 1, "ok": [SURROGATE]}, "$.ok[0]"),
        ({SURROGATE: 1}, "$<key '\\ud800'>"),
        ({"é": 1, "a\udfff": 2}, "$<key 'a\\udfff'>"),
        ((1, SURROGATE), "$[1]"),
        ({SURROGATE}, "$[0]"),
        ({1: SURROGATE}, "$[1]"),
        ({(SURROGATE,): 1}, "$<key ('\\ud800',)>[0]"),
        (Holder(items=[SURROGATE]), "$.items[0]"),
        (Event(SURROGATE, NOW), "$.name"),
    ],
    ids=repr,
)
def test_lone_surrogates_refused_when_encoding(value: Any, path: str) -> None:
    for function in (_codec.encode, _codec.dumps):
        with pytest.raises(SerializationError, match="lone surrogate") as info:
            function(value, step="fetch")
        assert f" at {path}: " in str(info.value)
        assert info.value.step == "fetch"


def test_valid_text_of_every_plane_round_trips() -> None:
    assert_round_trip({"clé": "é", "ключ": ["日本", "😀"], "\U0010ffff": "\ue000"})


# --------------------------------------------------------------------------- depth


def nested(levels: int, wrap: Any, leaf: Any = 0) -> Any:
    value = leaf
    for _ in range(levels):
        value = wrap(value)
    return value


def json_depth(tree: Any) -> int:
    """How many JSON arrays and objects deep ``tree`` is (iteratively: trees may be deep)."""
    deepest, todo = 0, [(tree, 0)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, list | dict):
            deepest = max(deepest, depth + 1)
            items = node.values() if isinstance(node, dict) else node
            todo.extend((item, depth + 1) for item in items)
    return deepest


def test_depth_limit_is_exact_for_plain_json() -> None:
    limit = _codec.MAX_DEPTH
    deepest = nested(limit, lambda value: [value])
    assert json_depth(deepest) == limit
    assert _codec.loads(_codec.dumps(deepest)) == deepest
    assert _codec.decode(deepest) == deepest
    too_deep = [deepest]
    for refuse in (_codec.encode, _codec.dumps, _codec.decode):
        with pytest.raises(SerializationError, match=f"nested more than {limit} levels deep"):
            refuse(too_deep)
    with pytest.raises(SerializationError, match=f"nested more than {limit} levels deep"):
        _codec.loads("[" * (limit + 1) + "]" * (limit + 1))
    # Deeper than the standard reader's recursion (orjson reads it; decode refuses it).
    with pytest.raises(SerializationError):
        _codec.loads("[" * 5000 + "]" * 5000)


WRAPPERS = {
    "list": lambda value: [value],
    "dict": lambda value: {"k": value},
    "tuple": lambda value: (value,),
    "pairs": lambda value: {1: value},
    "record": lambda value: Holder([value]),
    "frozenset": lambda value: frozenset({value}),
}


@pytest.mark.parametrize("leaf", [0, NOW, timedelta(1), Perm.READ | Perm.WRITE, (), Point(1, 2)])
@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=list(WRAPPERS))
def test_whatever_encodes_also_decodes(wrap: Any, leaf: Any) -> None:
    levels = 0
    while True:
        try:
            tree = _codec.encode(nested(levels + 1, wrap, leaf))
        except SerializationError as exc:
            assert "nested more than" in str(exc)
            break
        levels += 1
    deepest = nested(levels, wrap, leaf)
    tree = _codec.encode(deepest)
    # As deep as the limit allows, give or take the wrapper's own levels.
    assert _codec.MAX_DEPTH - 4 < json_depth(tree) <= _codec.MAX_DEPTH
    assert _codec.decode(tree) == deepest
    assert _codec.loads(_codec.dumps(deepest)) == deepest


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_far_too_deep_is_refused_without_recursion_error(depth: int) -> None:
    deep = nested(depth, lambda value: [value])
    for refuse in (_codec.encode, _codec.dumps, _codec.decode):
        with pytest.raises(SerializationError, match="nested more than"):
            refuse(deep)
    with pytest.raises(SerializationError, match=r"nested more than|Python stack"):
        _codec.loads("[" * depth + "]" * depth)
    with pytest.raises(SerializationError):
        _codec.dump_tree(deep)


def test_a_caller_deep_in_its_stack_gets_a_serialization_error() -> None:
    value = nested(150, lambda value: [value])
    tree, text = _codec.encode(value), _codec.dumps(value)
    frames, frame = 0, sys._getframe()
    while frame is not None:
        frames, frame = frames + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frames + 100)  # room for the call, not for the value's depth
    try:
        for call, argument in [(_codec.encode, value), (_codec.decode, tree), (_codec.loads, text)]:
            with pytest.raises(SerializationError, match="Python stack"):
                call(argument)
    finally:
        sys.setrecursionlimit(limit)


def test_cycles_through_dicts_and_records_refused() -> None:
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    holder = Holder([])
    holder.items.append(holder)
    for value in (mapping, holder):
        with pytest.raises(SerializationError, match="containing itself") as info:
            _codec.encode(value)
        assert "…" in str(info.value)  # the path, hundreds of segments long, is shortened


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("text", [123, None, 1.5, ["[]"], {"a": 1}])
def test_loads_refuses_what_is_not_text(text: Any) -> None:
    with pytest.raises(SerializationError, match="expected JSON text") as info:
        _codec.loads(text, reactor="Shop")
    assert info.value.reactor == "Shop"


@pytest.mark.parametrize(
    "tree", [object(), {1, 2}, (1,), [b"bytes"], {"a": {"b": object()}}, Point(1, 2)], ids=repr
)
def test_decode_refuses_what_is_not_json_data(tree: Any) -> None:
    with pytest.raises(SerializationError, match="is not JSON data"):
        _codec.decode(tree)


@pytest.mark.parametrize("tree", [object(), {"a": {1, 2}}, {1: object()}], ids=repr)
def test_dump_tree_refuses_what_is_not_json_data(tree: Any) -> None:
    with pytest.raises(SerializationError, match="cannot write JSON text"):
        _codec.dump_tree(tree)


def test_ints_too_long_for_text_refused() -> None:
    digits = sys.get_int_max_str_digits() + 1
    with pytest.raises(SerializationError, match="cannot write JSON text"):
        _codec.dumps(10**digits, step="count")
    with pytest.raises(SerializationError, match="invalid JSON"):
        _codec.loads("1" * digits)


@pytest.mark.parametrize("text", [123, b"bytes", None])
def test_check_size_refuses_what_is_not_text(text: Any) -> None:
    with pytest.raises(SerializationError, match="not encoded text"):
        _codec.check_size(text, what="the result", limit=10)


# --------------------------------------------------------------------------- properties

# Text of any code point, lone surrogates included (plain st.text() never draws them).
TEXTS = st.text(st.characters(exclude_categories=())) | st.builds(
    "".join, st.lists(st.text() | st.characters(categories=["Cs"]), min_size=1, max_size=3)
)
JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXTS,
    lambda children: st.lists(children) | st.dictionaries(TEXTS, children),
    max_leaves=25,
)


def holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(holds_surrogate(key) or holds_surrogate(item) for key, item in value.items())
    return isinstance(value, list) and any(map(holds_surrogate, value))


@settings(database=None, deadline=None)
@given(JSON_LIKE)
def test_json_like_values_round_trip_or_are_refused(value: Any) -> None:
    try:
        text = _codec.dumps(value)
    except SerializationError as exc:
        assert "lone surrogate" in str(exc)
        assert holds_surrogate(value)
        return
    assert not holds_surrogate(value)
    back = _codec.loads(text)
    assert back == value
    assert deep_types(back) == deep_types(value)


# --------------------------------------------------------------------------- size


def test_check_size() -> None:
    _codec.check_size("x" * 10, what="the result", limit=10)
    _codec.check_size("é" * 5, what="the result", limit=10)  # 10 bytes in UTF-8
    with pytest.raises(SerializationError) as info:
        _codec.check_size("é" * 6, what="the result of 'fetch'", limit=10, step="fetch")
    message = str(info.value)
    assert "the result of 'fetch' is 12 bytes" in message
    assert "limit of 10 bytes" in message
    assert info.value.step == "fetch"
    with pytest.raises(SerializationError, match="11 bytes"):
        _codec.check_size("x" * 11, what="the payload", limit=10)
    _codec.check_size("x" * (1 << 20), what="a payload", limit=1 << 20)
    with pytest.raises(SerializationError):
        _codec.check_size("x" * ((1 << 20) + 1), what="a payload", limit=1 << 20)


# --------------------------------------------------------------------------- no pickle

FORBIDDEN = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}


def _python_files() -> Iterator[Path]:
    yield from Path(reactor.__file__).parent.rglob("*.py")


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def test_no_module_imports_pickle() -> None:
    files = list(_python_files())
    assert len(files) > 3
    offenders = [
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


@pytest.mark.parametrize("size", [0, 1, _codec.SLICE, _codec.SLICE + 1, 3 * _codec.SLICE + 7])
def test_a_body_written_a_slice_at_a_time_is_the_same_text(size: int) -> None:
    body = {
        "results": {f"each[{i}].x": {"n": i} for i in range(size)},
        "undo": [f"each[{i}].x" for i in range(size)],
        "empty": {},
        "small": [1, "two", None],
    }
    assert _codec.dump_sliced(body) == _codec.dump_tree(body)
    assert _codec.dump_sliced({}) == "{}"
    with pytest.raises(SerializationError):
        _codec.dump_sliced({"results": {str(i): object() for i in range(size + 1)}})
