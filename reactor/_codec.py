"""JSON codec with type fidelity: what a step returned comes back as the same type.

Reactor stores step results, inputs and interrupt payloads as JSON, never pickle, so that
stored executions can be read by any process, any version of Python, or a human, and so that
decoding stored data can never run arbitrary code.

Encoding is self-describing. JSON-native values (``str``, ``int``, finite ``float``,
``bool``, ``None``, lists, and dicts with ``str`` keys) pass through unchanged; that is the
hot path. Every other supported value becomes a *tagged object*, a JSON object whose ``"$t"``
member names the type::

    (1, 2)                          {"$t": "tuple", "v": [1, 2]}
    {1: "a"}                        {"$t": "dict", "v": [[1, "a"]]}
    datetime(2024, 1, 1, tzinfo=…)  {"$t": "datetime", "v": "2024-01-01T00:00:00+00:00"}
    Color.RED                       {"$t": "enum", "c": "shop.models:Color", "n": "RED"}
    Order(id=1, …)                  {"$t": "dataclass", "c": "shop.models:Order", "v": {"id": 1, …}}

Escaping rule: a dict that cannot stand as a plain JSON object, because it has a key that is
not a ``str`` or has the key ``"$t"``, is always written as a ``"dict"`` tag holding its
``[key, value]`` pairs. Hence on decoding every JSON object with a ``"$t"`` member is a tag,
and every other object is a plain dict.

Classes are named ``module:QualName``. Decoding imports the module and looks the name up
without invoking anything; the result must be an ``Enum`` subclass, a dataclass or an attrs
class, and instances are restored field by field without calling ``__init__``. Anything else
is refused with :class:`~reactor.errors.SerializationError`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib
import inspect
import json
import math
import sys
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import Enum
from typing import Any, Final, NoReturn, get_origin
from zoneinfo import ZoneInfo

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

from .errors import SerializationError

__all__ = ["Codec", "default_codec"]

TAG: Final = "$t"
"""The member that marks a JSON object as a tagged value."""

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[dict[str, Any]], Any]

_isfinite = math.isfinite


# --------------------------------------------------------------------------- errors


class _Unencodable(Exception):
    """Raised inside the encoder; each container on the way up adds its path segment.

    Building the path only when something fails keeps the successful path free of any
    bookkeeping (``try`` costs nothing in Python 3.11 until it catches).
    """

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.type_name = _type_name(type(value))
        self.reason = reason
        self.path: list[str] = []

    def message(self) -> str:
        where = "$" + "".join(reversed(self.path))
        return f"cannot encode {self.type_name} at {where}: {self.reason}"


class _Undecodable(Exception):
    """Raised inside the decoder, turned into a SerializationError with context."""


def _type_name(kind: type) -> str:
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _key_segment(key: Any) -> str:
    if type(key) is str and key.isidentifier():
        return "." + key
    return f"[{_short_repr(key)}]"


def _short_repr(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{_type_name(type(value))}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- encoding


def _encode(value: Any) -> Any:
    kind = type(value)
    # Exact type checks, not isinstance: subclasses (IntEnum, StrEnum, OrderedDict...) are
    # not JSON-native as far as type fidelity goes.
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if _isfinite(value):
            return value
        raise _Unencodable(value, f"{value!r} is not valid JSON (no NaN or infinity)")
    if kind is list:
        return _encode_list(value)
    if kind is dict:
        return _encode_dict(value)
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        encoder = _encoder_for(kind, value)
    return encoder(value)


_SCALARS: Final = frozenset({str, int, bool, type(None)})
"""Types that are JSON-native as they are (floats also need a finiteness check)."""
_STR: Final = frozenset({str})


def _encode_list(items: list[Any]) -> list[Any]:
    # The hot path: a list of scalars is checked in one C-level pass (about 25 ns per item
    # against 40 for a Python loop) and returned as it is, without copying.
    if _SCALARS.issuperset(map(type, items)):
        return items
    out: list[Any] | None = None
    for index, item in enumerate(items):
        kind = type(item)
        if kind in _SCALARS or (kind is float and _isfinite(item)):
            encoded = item
        else:
            try:
                encoded = _encode(item)
            except _Unencodable as exc:
                exc.path.append(f"[{index}]")
                raise
        if out is not None:
            out.append(encoded)
        elif encoded is not item:
            out = items[:index]
            out.append(encoded)
    return items if out is None else out


def _encode_dict(mapping: dict[Any, Any]) -> Any:
    if TAG in mapping or not _STR.issuperset(map(type, mapping)):
        return _encode_pairs(mapping)
    if _SCALARS.issuperset(map(type, mapping.values())):
        return mapping
    out: dict[str, Any] | None = None
    for key, item in mapping.items():
        kind = type(item)
        if kind in _SCALARS or (kind is float and _isfinite(item)):
            encoded = item
        else:
            try:
                encoded = _encode(item)
            except _Unencodable as exc:
                exc.path.append(_key_segment(key))
                raise
        if out is not None:
            out[key] = encoded
        elif encoded is not item:
            # Copy once; the keys not visited yet are overwritten as the loop reaches them.
            out = dict(mapping)
            out[key] = encoded
    return mapping if out is None else out


def _encode_pairs(mapping: dict[Any, Any]) -> dict[str, Any]:
    pairs = []
    for key, item in mapping.items():
        try:
            encoded_key = _encode(key)
        except _Unencodable as exc:
            exc.path.append(f"<key {_short_repr(key)}>")
            raise
        try:
            pairs.append([encoded_key, _encode(item)])
        except _Unencodable as exc:
            exc.path.append(_key_segment(key))
            raise
    return {TAG: "dict", "v": pairs}


def _encode_items(items: Any) -> list[Any]:
    out = []
    for index, item in enumerate(items):
        try:
            out.append(_encode(item))
        except _Unencodable as exc:
            exc.path.append(f"[{index}]")
            raise
    return out


def _sorted_if_possible(items: set[Any] | frozenset[Any]) -> list[Any]:
    # Sorted when the elements allow it, so equal sets always produce the same JSON.
    try:
        return sorted(items)
    except TypeError:
        return list(items)


def _encode_tuple(value: tuple[Any, ...]) -> dict[str, Any]:
    return {TAG: "tuple", "v": _encode_items(value)}


def _encode_set(value: set[Any]) -> dict[str, Any]:
    return {TAG: "set", "v": _encode_items(_sorted_if_possible(value))}


def _encode_frozenset(value: frozenset[Any]) -> dict[str, Any]:
    return {TAG: "frozenset", "v": _encode_items(_sorted_if_possible(value))}


def _zone_key(zone: tzinfo | None) -> str | None:
    # A ZoneInfo is kept by name: an ISO offset alone would lose the DST rules.
    if isinstance(zone, ZoneInfo) and zone.key is not None:
        return zone.key
    return None


def _encode_datetime(value: datetime) -> dict[str, Any]:
    tree: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
    key = _zone_key(value.tzinfo)
    if key is not None:
        tree["tz"] = key
        if value.fold:
            tree["fold"] = 1
    return tree


def _encode_time(value: time) -> dict[str, Any]:
    tree: dict[str, Any] = {TAG: "time", "v": value.isoformat()}
    key = _zone_key(value.tzinfo)
    if key is not None:
        tree["tz"] = key
        if value.fold:
            tree["fold"] = 1
    return tree


def _encode_date(value: date) -> dict[str, Any]:
    return {TAG: "date", "v": value.isoformat()}


def _encode_timedelta(value: timedelta) -> dict[str, Any]:
    # The three normalized components are exact; total_seconds() as a float is not.
    return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}


def _encode_decimal(value: Decimal) -> dict[str, Any]:
    return {TAG: "decimal", "v": str(value)}


def _encode_uuid(value: uuid.UUID) -> dict[str, Any]:
    return {TAG: "uuid", "v": str(value)}


def _encode_bytes(value: bytes) -> dict[str, Any]:
    return {TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}


_ENCODERS: dict[type, _Encoder] = {
    tuple: _encode_tuple,
    set: _encode_set,
    frozenset: _encode_frozenset,
    datetime: _encode_datetime,
    date: _encode_date,
    time: _encode_time,
    timedelta: _encode_timedelta,
    Decimal: _encode_decimal,
    uuid.UUID: _encode_uuid,
    bytes: _encode_bytes,
}
"""Encoder per exact type; Enum, dataclass and attrs classes are added on first sight."""

_BUILTIN_BASES: Final = (str, int, float, list, dict, tuple, set, frozenset, bytes)
_SUPPORTED = (
    "str, int, float, bool, None, list, dict, tuple, set, frozenset, bytes, datetime, date, "
    "time, timedelta, Decimal, UUID, Enum members, dataclass and attrs instances"
)


def _encoder_for(kind: type, value: Any) -> _Encoder:
    """Builds (and caches) the encoder of an Enum, dataclass or attrs class."""
    encoder: _Encoder
    if issubclass(kind, Enum):
        encoder = _enum_encoder(kind, _class_path(kind, value))
    elif dataclasses.is_dataclass(kind):
        names = tuple(field.name for field in dataclasses.fields(kind))
        encoder = _record_encoder("dataclass", _class_path(kind, value), names)
    elif attrs.has(kind):
        names = tuple(field.name for field in attrs.fields(kind))
        encoder = _record_encoder("attrs", _class_path(kind, value), names)
    else:
        _refuse(kind, value)
    _ENCODERS[kind] = encoder
    return encoder


def _refuse(kind: type, value: Any) -> NoReturn:
    for base in (*_BUILTIN_BASES, datetime, date, time, timedelta, Decimal, uuid.UUID):
        if issubclass(kind, base):
            raise _Unencodable(
                value,
                f"subclasses of {base.__name__} are not supported, as they would come back "
                f"as plain {base.__name__}; convert it to {base.__name__} or use a dataclass",
            )
    raise _Unencodable(value, f"not JSON-serializable; supported are {_SUPPORTED}")


def _class_path(kind: type, value: Any) -> str:
    """Returns ``module:QualName`` after checking that it leads back to ``kind``.

    Checked when encoding so that a class that could never be decoded (defined inside a
    function, or shadowed) fails the step that produced it rather than a later resume.
    """
    path = f"{kind.__module__}:{kind.__qualname__}"
    if "<locals>" in kind.__qualname__:
        raise _Unencodable(
            value, "the class is defined inside a function; define it at module level"
        )
    module = sys.modules.get(kind.__module__)
    if module is None or _lookup(module, kind.__qualname__) is not kind:
        raise _Unencodable(value, f"the class cannot be found again as {path!r}")
    return path


def _enum_encoder(kind: type[Enum], path: str) -> _Encoder:
    def encode(member: Enum) -> dict[str, Any]:
        name = member.name
        if name is not None and kind.__members__.get(name) is member:
            return {TAG: "enum", "c": path, "n": name}
        # Members without a name of their own (combined Flag values) go by value.
        try:
            value = _encode(member.value)
        except _Unencodable as exc:
            exc.path.append(".value")
            raise
        return {TAG: "enum", "c": path, "v": value}

    return encode


_UNSET: Final = object()


def _record_encoder(tag: str, path: str, names: tuple[str, ...]) -> _Encoder:
    def encode(instance: Any) -> dict[str, Any]:
        fields = {}
        for name in names:
            value = getattr(instance, name, _UNSET)
            if type(value) in _SCALARS:
                fields[name] = value
                continue
            if value is _UNSET:
                # A field never set (an ``init=False`` field without default): leave it out.
                continue
            try:
                fields[name] = _encode(value)
            except _Unencodable as exc:
                exc.path.append("." + name)
                raise
        return {TAG: tag, "c": path, "v": fields}

    return encode


# --------------------------------------------------------------------------- decoding


def _decode(tree: Any) -> Any:
    kind = type(tree)
    if kind is list:
        return _decode_list(tree)
    if kind is dict:
        return _decode_dict(tree)
    return tree


_LEAVES: Final = frozenset({str, int, float, bool, type(None)})
"""JSON types with nothing inside to decode."""


def _decode_list(items: list[Any]) -> list[Any]:
    if _LEAVES.issuperset(map(type, items)):
        return items
    out: list[Any] | None = None
    for index, item in enumerate(items):
        kind = type(item)
        decoded = _decode(item) if kind is list or kind is dict else item
        if out is not None:
            out.append(decoded)
        elif decoded is not item:
            out = items[:index]
            out.append(decoded)
    return items if out is None else out


def _decode_dict(mapping: dict[str, Any]) -> Any:
    # Bottom-up, like json's object_hook: members first, then the object itself.
    if _LEAVES.issuperset(map(type, mapping.values())):
        return _untag(mapping) if TAG in mapping else mapping
    out: dict[str, Any] | None = None
    for key, item in mapping.items():
        kind = type(item)
        decoded = _decode(item) if kind is list or kind is dict else item
        if out is not None:
            out[key] = decoded
        elif decoded is not item:
            out = dict(mapping)
            out[key] = decoded
    result = mapping if out is None else out
    return _untag(result) if TAG in result else result


def _untag(tree: dict[str, Any]) -> Any:
    """Turns one tagged object, whose members are already decoded, into its value.

    Also the ``object_hook`` of :meth:`Codec.loads`.
    """
    if TAG not in tree:
        return tree
    tag = tree[TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise _Undecodable(f"unknown tag {tag!r}")
    try:
        return decoder(tree)
    except _Undecodable:
        raise
    except Exception as exc:
        # Malformed stored data must surface as SerializationError, whatever broke.
        raise _Undecodable(f"malformed {tag!r} value {tree!r}: {exc}") from exc


def _value(tree: dict[str, Any], kind: type) -> Any:
    value = tree["v"]
    if type(value) is not kind:
        raise TypeError(f"'v' must be a {kind.__name__}")
    return value


def _decode_pairs(tree: dict[str, Any]) -> dict[Any, Any]:
    return {key: value for key, value in _value(tree, list)}


def _decode_datetime(tree: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(_value(tree, str))
    key = tree.get("tz")
    # The stored wall time and fold put back in the zone, exactly as they were, even for
    # a wall time that the zone skips (converting the offset instead would move it).
    if key is None:
        return value
    return value.replace(tzinfo=ZoneInfo(key), fold=tree.get("fold", 0))


def _decode_time(tree: dict[str, Any]) -> time:
    value = time.fromisoformat(_value(tree, str))
    key = tree.get("tz")
    if key is None:
        return value
    return value.replace(tzinfo=ZoneInfo(key), fold=tree.get("fold", 0))


def _decode_timedelta(tree: dict[str, Any]) -> timedelta:
    days, seconds, microseconds = _value(tree, list)
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_bytes(tree: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(_value(tree, str), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def _decode_enum(tree: dict[str, Any]) -> Enum:
    kind = _resolve(tree["c"], "enum")
    if "n" in tree:
        member: Enum = kind.__members__[tree["n"]]
        return member
    return kind(tree["v"])  # type: ignore[no-any-return]


def _decode_record(tree: dict[str, Any]) -> Any:
    tag = tree[TAG]
    kind = _resolve(tree["c"], tag)
    stored = _value(tree, dict)
    fields = _FIELDS.get(kind)
    if fields is None:
        declared = dataclasses.fields(kind) if tag == "dataclass" else attrs.fields(kind)
        fields = _FIELDS[kind] = tuple((field.name, field) for field in declared)
    # Restores the stored state as it was, the way pickle would but without running any
    # code: no __init__, no __post_init__, no validators (frozen classes work too).
    instance = object.__new__(kind)
    missing = []
    for name, field in fields:
        if name in stored:
            object.__setattr__(instance, name, stored[name])
        else:
            missing.append((name, field))
    # Fields added to the class since the value was stored take their declared default.
    for name, field in missing:
        object.__setattr__(instance, name, _default(tag, kind, name, field, instance))
    return instance


_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}
"""The fields of each record class decoded so far, in declaration order."""


def _default(tag: str, kind: type, name: str, field: Any, instance: Any) -> Any:
    if tag == "dataclass":
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
    elif field.default is not attrs.NOTHING:
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            factory = field.default
            return factory.factory(instance) if factory.takes_self else factory.factory()
        return field.default
    raise _Undecodable(
        f"stored {_type_name(kind)} has no value for field {name!r}, which has no default"
    )


_DECODERS: dict[str, _Decoder] = {
    "dict": _decode_pairs,
    "tuple": lambda tree: tuple(_value(tree, list)),
    "set": lambda tree: set(_value(tree, list)),
    "frozenset": lambda tree: frozenset(_value(tree, list)),
    "datetime": _decode_datetime,
    "date": lambda tree: date.fromisoformat(_value(tree, str)),
    "time": _decode_time,
    "timedelta": _decode_timedelta,
    "decimal": lambda tree: Decimal(_value(tree, str)),
    "uuid": lambda tree: uuid.UUID(_value(tree, str)),
    "bytes": _decode_bytes,
    "enum": _decode_enum,
    "dataclass": _decode_record,
    "attrs": _decode_record,
}

_CLASSES: dict[tuple[str, str], type] = {}
"""Classes already resolved, by (tag, path)."""

_KIND_CHECKS: Final[dict[str, tuple[Callable[[type], bool], str]]] = {
    "enum": (lambda kind: issubclass(kind, Enum), "an Enum subclass"),
    "dataclass": (dataclasses.is_dataclass, "a dataclass"),
    "attrs": (attrs.has, "an attrs class"),
}


def _resolve(path: Any, tag: str) -> Any:
    """Imports the class a tag names and checks it is of the kind the tag allows.

    The named object is looked up statically and never called, so a tag such as
    ``"os:system"`` is refused without running anything.
    """
    cached = _CLASSES.get((tag, path))
    if cached is not None:
        return cached
    if type(path) is not str or path.count(":") != 1:
        raise _Undecodable(f"bad class path {path!r} in {tag!r} tag; expected 'module:QualName'")
    module_name, qualname = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _Undecodable(f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    found = _lookup(module, qualname)
    check, expected = _KIND_CHECKS[tag]
    if not isinstance(found, type) or not check(found):
        raise _Undecodable(f"{path!r} is not {expected}; refusing to decode it")
    _CLASSES[(tag, path)] = found
    return found


def _lookup(namespace: Any, qualname: str) -> Any:
    # getattr_static: no module __getattr__, no descriptor, no metaclass code runs.
    found = namespace
    for part in qualname.split("."):
        try:
            found = inspect.getattr_static(found, part)
        except AttributeError:
            return None
    return found


# --------------------------------------------------------------------------- structuring


def _from_iso(kind: type[date] | type[time], what: str) -> Callable[[Any, Any], Any]:
    """A structure hook for ``kind``: kept if it already is one, parsed from ISO 8601 text."""

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str):
            return kind.fromisoformat(value)
        raise TypeError(f"expected an ISO 8601 {what}, got {_type_name(type(value))}")

    return structure


def _structure_timedelta(value: Any, _: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise TypeError(f"expected a number of seconds, got {_type_name(type(value))}")


def _structure_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest exact form: 0.1 -> Decimal("0.1"), not 0.1000000000000000055…
        return Decimal(repr(value))
    raise TypeError(f"expected a decimal string or number, got {_type_name(type(value))}")


def _structure_uuid(value: Any, _: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        return uuid.UUID(value)
    raise TypeError(f"expected a UUID string, got {_type_name(type(value))}")


def _is_record(kind: Any) -> bool:
    return attrs.has(kind) or dataclasses.is_dataclass(kind)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    for kind, hook in (
        (datetime, _from_iso(datetime, "string")),
        (date, _from_iso(date, "date string")),
        (time, _from_iso(time, "time string")),
        (timedelta, _structure_timedelta),
        (Decimal, _structure_decimal),
        (uuid.UUID, _structure_uuid),
    ):
        converter.register_structure_hook(kind, hook)

    def record_hook(kind: Any) -> Callable[[Any, Any], Any]:
        from_dict = make_dict_structure_fn(kind, converter)
        origin = get_origin(kind) or kind

        # A value the codec already decoded is an instance; cattrs alone would want a dict.
        def structure(value: Any, hint: Any) -> Any:
            return value if isinstance(value, origin) else from_dict(value, hint)

        return structure

    converter.register_structure_hook_factory(_is_record, record_hook)
    return converter


_CONVERTER: Final = _make_converter()
"""The one converter behind every :meth:`Codec.structure` call (its hooks are cached)."""


def _no_hint(hint: Any) -> bool:
    return hint is None or hint is Any or hint is inspect.Parameter.empty


# --------------------------------------------------------------------------- JSON text


def _make_dumper() -> Callable[[Any], str]:
    # json.JSONEncoder.encode rebuilds its C encoder on every call (~0.8 µs here); the C
    # encoder itself is reusable as long as no circular-reference markers are kept, which
    # the tree walk in _encode makes unnecessary (a cycle fails there first).
    options = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
    fallback = json.JSONEncoder(check_circular=False, **options).encode  # type: ignore[arg-type]
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return fallback

    def refuse(value: Any) -> NoReturn:
        raise TypeError(f"{_type_name(type(value))} left in an encoded tree")

    try:
        chunks = make(
            None, refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
    except TypeError:  # a future signature change: stay correct, only slower
        return fallback

    def dump(tree: Any) -> str:
        return "".join(chunks(tree, 0))

    return dump


def _refuse_constant(name: str) -> NoReturn:
    raise _Undecodable(f"{name} is not valid JSON")


_dump: Final = _make_dumper()
_load: Final = json.JSONDecoder(object_hook=_untag, parse_constant=_refuse_constant).decode


# --------------------------------------------------------------------------- public


class Codec:
    """Turns values into JSON and back, keeping their Python types.

    Args:
        max_payload_bytes: Largest encoded value, in UTF-8 bytes, that :meth:`check_size`
            accepts.

    Example::

        codec = Codec()
        text = codec.dumps({"at": datetime(2024, 1, 1), "ids": (1, 2)})
        assert codec.loads(text) == {"at": datetime(2024, 1, 1), "ids": (1, 2)}
    """

    def __init__(self, *, max_payload_bytes: int = 1 << 20) -> None:
        if max_payload_bytes <= 0:
            raise ValueError(f"max_payload_bytes must be positive, got {max_payload_bytes}")
        self.max_payload_bytes = max_payload_bytes

    def __repr__(self) -> str:
        return f"Codec(max_payload_bytes={self.max_payload_bytes})"

    def encode(
        self,
        value: Any,
        *,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> Any:
        """Turns a value into a tree of JSON-compatible values.

        JSON-native parts of ``value`` are returned as they are, not copied.

        Args:
            value: The value to encode.
            reactor: Reactor name, for the error message.
            execution_id: Execution id, for the error message.
            step: Step name, for the error message.

        Returns:
            Something ``json.dumps`` accepts; :meth:`decode` turns it back into ``value``.

        Raises:
            SerializationError: A part of ``value`` cannot be encoded; the message names its
                type and where it is, e.g. ``at $.items[2].when``.
        """
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        try:
            return _encode(value)
        except _Unencodable as exc:
            message = exc.message()
        except RecursionError:
            message = "cannot encode a value nested too deeply or containing itself"
        raise SerializationError(
            message, reactor=reactor, execution_id=execution_id, step=step
        ) from None

    def dumps(
        self,
        value: Any,
        *,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> str:
        """Encodes a value as compact JSON text (UTF-8 characters kept as they are).

        Args:
            value: The value to encode.
            reactor: Reactor name, for the error message.
            execution_id: Execution id, for the error message.
            step: Step name, for the error message.

        Returns:
            The JSON text; :meth:`loads` turns it back into ``value``.

        Raises:
            SerializationError: As for :meth:`encode`.
        """
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return _dump(value)
        tree = self.encode(value, reactor=reactor, execution_id=execution_id, step=step)
        return _dump(tree)

    def dump_tree(self, tree: Any) -> str:
        """Compact JSON text of a tree made by :meth:`encode`, or of plain JSON data
        holding such trees (the fast way: the tree needs no more checks).

        Raises:
            TypeError: Something in ``tree`` is not plain JSON data.
            ValueError: ``tree`` holds NaN or an infinity.
        """
        return _dump(tree)

    def decode(
        self,
        tree: Any,
        hint: Any = None,
        *,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> Any:
        """Turns a tree made by :meth:`encode` back into the value, optionally structured.

        Args:
            tree: The JSON-compatible tree; it is not modified.
            hint: A type to convert the decoded value to with :meth:`structure`, e.g. the
                return annotation of a step. ``None`` leaves the value as decoded.
            reactor: Reactor name, for the error message.
            execution_id: Execution id, for the error message.
            step: Step name, for the error message.

        Returns:
            The decoded value.

        Raises:
            SerializationError: The tree has an unknown or malformed tag, names a class that
                is not an Enum, dataclass or attrs class, or does not fit ``hint``.
        """
        return self._decoded(
            lambda: _decode(tree), hint, reactor=reactor, execution_id=execution_id, step=step
        )

    def loads(
        self,
        text: str | bytes,
        hint: Any = None,
        *,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> Any:
        """Parses JSON text made by :meth:`dumps` back into the value.

        Args:
            text: The JSON text.
            hint: As for :meth:`decode`.
            reactor: Reactor name, for the error message.
            execution_id: Execution id, for the error message.
            step: Step name, for the error message.

        Returns:
            The decoded value.

        Raises:
            SerializationError: ``text`` is not valid JSON, or as for :meth:`decode`.
        """
        return self._decoded(
            lambda: _load(text if isinstance(text, str) else text.decode("utf-8")),
            hint,
            reactor=reactor,
            execution_id=execution_id,
            step=step,
        )

    def _decoded(
        self,
        parse: Callable[[], Any],
        hint: Any,
        *,
        reactor: str | None,
        execution_id: str | None,
        step: str | None,
    ) -> Any:
        """``parse()``, structured to ``hint``; what :meth:`decode` and :meth:`loads`
        share once they know how to read their input."""
        cause: BaseException | None
        try:
            value = parse()
        except _Undecodable as exc:
            message, cause = f"cannot decode value: {exc}", exc.__cause__
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            message, cause = f"cannot decode value: invalid JSON: {exc}", exc
        except RecursionError:
            message, cause = "cannot decode a value nested too deeply", None
        else:
            if hint is None:
                return value
            return self.structure(
                value, hint, reactor=reactor, execution_id=execution_id, step=step
            )
        raise SerializationError(
            message, reactor=reactor, execution_id=execution_id, step=step
        ) from cause

    def structure(
        self,
        value: Any,
        hint: Any,
        *,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> Any:
        """Converts a decoded plain value to the type ``hint`` describes, with cattrs.

        For values that arrive as plain JSON, such as webhook payloads: a dict becomes a
        dataclass or attrs instance, an ISO 8601 string a ``datetime``, a list a
        ``tuple[int, ...]``, a string an Enum member (by value), a number of seconds a
        ``timedelta``.

        Args:
            value: The value to convert.
            hint: The target type. ``None``, ``typing.Any`` and
                ``inspect.Parameter.empty`` return ``value`` unchanged, and so does a value
                that is already an instance of a plain class ``hint``.
            reactor: Reactor name, for the error message.
            execution_id: Execution id, for the error message.
            step: Step name, for the error message.

        Returns:
            The converted value.

        Raises:
            SerializationError: ``value`` does not fit ``hint``; the message lists each
                problem with its place, e.g. ``invalid value for type, expected int @ $.id``.
        """
        if _no_hint(hint):
            return value
        if isinstance(hint, type) and isinstance(value, hint):
            return value
        try:
            return _CONVERTER.structure(value, hint)
        except Exception as exc:
            problems = "; ".join(cattrs.transform_error(exc, path="$"))
            raise SerializationError(
                f"cannot convert {_type_name(type(value))} to {_hint_name(hint)}: {problems}",
                reactor=reactor,
                execution_id=execution_id,
                step=step,
            ) from exc

    def check_size(
        self,
        text: str,
        *,
        what: str,
        limit: int | None = None,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> None:
        """Refuses encoded text larger than ``max_payload_bytes`` once in UTF-8.

        Args:
            text: The encoded text, as returned by :meth:`dumps`.
            what: What the text is, for the message, e.g. ``"result of step 'fetch'"``.
            limit: The limit to apply instead of ``max_payload_bytes`` (the configured
                one, ``reactor.configure(max_payload_bytes=...)``).
            reactor: Reactor name, for the error message.
            execution_id: Execution id, for the error message.
            step: Step name, for the error message.

        Raises:
            SerializationError: The text is too large; the message names ``what``, its size
                and the limit.
        """
        limit = self.max_payload_bytes if limit is None else limit
        # A character takes at most 4 bytes in UTF-8: short texts need no encoding at all.
        if len(text) * 4 <= limit:
            return
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise SerializationError(
                f"{what} is {size} bytes once encoded, over the limit of {limit} bytes "
                "(max_payload_bytes)",
                reactor=reactor,
                execution_id=execution_id,
                step=step,
            )


def _hint_name(hint: Any) -> str:
    return _type_name(hint) if isinstance(hint, type) else repr(hint)


default_codec: Final = Codec()
"""The codec the rest of reactor uses."""

# TEMPORARY module-level faces (replaced by the codec rewrite)
encode = default_codec.encode
dumps = default_codec.dumps
dump_tree = default_codec.dump_tree
decode = default_codec.decode
loads = default_codec.loads
structure = default_codec.structure
check_size = default_codec.check_size
