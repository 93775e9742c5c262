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
    Fraction(1, 3)                  {"$t": "fraction", "v": "1/3"}
    Color.RED                       {"$t": "enum", "c": "shop.models:Color", "n": "RED"}
    Order(id=1, …)                  {"$t": "dataclass", "c": "shop.models:Order", "v": {"id": 1, …}}

Escaping rule: a dict that cannot stand as a plain JSON object, because it has a key that is
not a ``str`` or has the key ``"$t"``, is always written as a ``"dict"`` tag holding its
``[key, value]`` pairs. Hence on decoding every JSON object with a ``"$t"`` member is a tag,
and every other object is a plain dict.

Classes are named ``module:QualName``. Decoding looks the name up, without invoking anything,
in a module that is already imported: stored data never makes reactor import a module. The
result must be an ``Enum`` subclass, a dataclass or an attrs class, and instances are restored
field by field without calling ``__init__``. Anything else is refused.

Encoding refuses text that is not valid Unicode (lone surrogates such as ``"\\ud800"``,
which no store could write), and both directions refuse trees nested deeper than
:data:`MAX_DEPTH`, so that whatever encodes also decodes. Every failure, whatever the input,
is a :class:`~reactor.errors.SerializationError` naming the reactor, execution and step
given to the call that failed.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import itertools
import json
import math
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any, Final, NoReturn, TypeVar, get_origin
from zoneinfo import ZoneInfo

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

try:
    import orjson
except ImportError:  # reactor[fast] not installed: the standard library writes JSON alone
    orjson = None  # type: ignore[assignment]

from .errors import SerializationError

__all__ = [
    "MAX_DEPTH",
    "PLAIN",
    "TAG",
    "check_size",
    "decode",
    "dump_tree",
    "dumps",
    "encode",
    "loads",
    "parse_tree",
    "structure",
    "surely_within",
    "text_problem",
]

TAG: Final = "$t"
"""The member that marks a JSON object as a tagged value."""

MAX_DEPTH: Final = 200
"""How many JSON arrays and objects deep an encoded tree may nest (the outermost is 1).

One limit for both directions: :func:`encode` refuses a value whose tree would be deeper,
and :func:`decode` and :func:`loads` refuse deeper trees, so whatever encodes also decodes,
well within Python's recursion limit (which a deeper tree would hit as ``RecursionError``).
"""

_Encoder = Callable[[Any, int], Any]
_C = TypeVar("_C", list[Any], dict[Any, Any])
_Decoder = Callable[[dict[str, Any]], Any]

_isfinite = math.isfinite
_surrogate = re.compile("[\ud800-\udfff]").search

_TOO_DEEP: Final = f"nested more than {MAX_DEPTH} levels deep"
_TOO_DEEP_OR_CYCLE: Final = _TOO_DEEP + ", or containing itself"
_NOT_UNICODE: Final = "the text holds a lone surrogate, which is not valid Unicode"


# --------------------------------------------------------------------------- errors


class _Failure(Exception):
    """A value cannot be encoded, decoded or converted; :func:`_fail` adds the context."""


class _Unencodable(_Failure):
    """Raised inside the encoder; each container on the way up adds its path segment.

    Building the path only when something fails keeps the successful path free of any
    bookkeeping (``try`` costs nothing in Python 3.11 until it catches).
    """

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.type_name = _type_name(type(value))
        self.reason = reason
        self.path: list[str] = []

    def __str__(self) -> str:
        path = self.path[::-1]
        if len(path) > 12:  # a value nested too deeply has a path hundreds of segments long
            path = [*path[:6], "…", *path[-6:]]
        return f"cannot encode {self.type_name} at ${''.join(path)}: {self.reason}"


class _Undecodable(_Failure):
    """Raised inside the decoder."""

    def __str__(self) -> str:
        return f"cannot decode value: {self.args[0]}"


def _fail(
    error: BaseException, reactor: str | None, execution_id: str | None, step: str | None
) -> NoReturn:
    """Raises the :class:`SerializationError` for a failure, naming where it happened.

    The one place where what went wrong below (a :class:`_Failure`, or an error of the JSON
    writer or of the Python stack) becomes the error reactor reports.
    """
    cause = error.__cause__ if isinstance(error, _Failure) else error
    if isinstance(error, RecursionError):
        # MAX_DEPTH keeps trees shallower than the stack unless the caller's stack is already
        # deep, or the JSON parser (which has no such limit) reads text far deeper.
        message = "a value nested too deeply for the Python stack left at this call"
    elif isinstance(error, _Failure):
        message = str(error)
    else:
        message = f"cannot write JSON text: {error}"
    raise SerializationError(
        message, reactor=reactor, execution_id=execution_id, step=step
    ) from cause


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

PLAIN: Final = frozenset({int, bool, type(None)})
"""Types that are JSON-native as they are: :func:`encode` returns their values unchanged,
as their own tree (str also needs a Unicode check, float a finiteness check)."""
_STR: Final = frozenset({str})


def _encode(value: Any, depth: int) -> Any:
    """Encodes ``value``, which becomes a JSON value inside ``depth - 1`` containers."""
    kind = type(value)
    # Exact type checks, not isinstance: subclasses (IntEnum, StrEnum, OrderedDict...) are
    # not JSON-native as far as type fidelity goes.
    if kind in PLAIN:
        return value
    if kind is str:
        if value.isascii() or _surrogate(value) is None:
            return value
        raise _Unencodable(value, _NOT_UNICODE)
    if kind is float:
        if _isfinite(value):
            return value
        raise _Unencodable(value, f"{value!r} is not valid JSON (no NaN or infinity)")
    if kind is list:
        return _encode_list(value, depth)
    if kind is dict:
        return _encode_dict(value, depth)
    if depth > MAX_DEPTH:  # every other value becomes a tagged object
        raise _Unencodable(value, _TOO_DEEP_OR_CYCLE)
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        encoder = _encoder_for(kind, value)
    return encoder(value, depth)


def _encode_members(
    container: _C, members: Iterable[tuple[Any, Any]], depth: int, *, text_keys: bool = False
) -> _C:
    """Encodes the members of a list or dict at ``depth``, given as (index or key, member).

    Returns ``container`` itself when every member is JSON-native as it is (the hot path:
    nothing is copied), else a copy holding the encoded members.

    With ``text_keys``, each key is also checked to be a ``str`` holding valid text (the
    keys of a plain JSON object); :class:`_NotPlain` is raised on the first that is not.
    """
    out = container
    for key, item in members:
        if text_keys and not (type(key) is str and key.isascii()):
            _check_key(key)
        kind = type(item)
        if (kind is str and item.isascii()) or kind in PLAIN or (kind is float and _isfinite(item)):
            continue
        try:
            encoded = _encode(item, depth + 1)
        except _Unencodable as exc:
            exc.path.append(_key_segment(key))
            raise
        if encoded is not item:
            if out is container:  # copied on the first change only
                out = container.copy()
            out[key] = encoded
    return out


class _NotPlain(Exception):
    """A dict has a key that is not a ``str``, so it must be written as pairs."""


def _check_key(key: Any) -> None:
    """Lets a non-ASCII ``str`` key pass if it is valid text (the rare, slow path)."""
    if type(key) is not str:
        raise _NotPlain
    if _surrogate(key) is not None:
        exc = _Unencodable(key, _NOT_UNICODE)
        exc.path.append(f"<key {_short_repr(key)}>")
        raise exc


def _encode_list(items: list[Any], depth: int) -> list[Any]:
    if depth > MAX_DEPTH:
        raise _Unencodable(items, _TOO_DEEP_OR_CYCLE)
    # A list of numbers, or of ASCII text, is checked in C-level passes and kept as it is.
    if PLAIN.issuperset(map(type, items)) or (
        _STR.issuperset(map(type, items)) and "".join(items).isascii()
    ):
        return items
    return _encode_members(items, enumerate(items), depth)


def _encode_dict(mapping: dict[Any, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Unencodable(mapping, _TOO_DEEP_OR_CYCLE)
    if TAG not in mapping:
        try:
            return _encode_members(mapping, mapping.items(), depth, text_keys=True)
        except _NotPlain:
            pass
    return _encode_pairs(mapping, depth)


def _encode_pairs(mapping: dict[Any, Any], depth: int) -> dict[str, Any]:
    # {"$t": "dict", "v": [[key, value], ...]}: never empty (an empty dict is plain), so
    # the pairs are lists two levels down.
    if depth + 2 > MAX_DEPTH:
        raise _Unencodable(mapping, _TOO_DEEP_OR_CYCLE)
    pairs = []
    for key, item in mapping.items():
        segment = f"<key {_short_repr(key)}>"  # names the key until it is encoded
        try:
            encoded_key = _encode(key, depth + 3)
            segment = _key_segment(key)
            pairs.append([encoded_key, _encode(item, depth + 3)])
        except _Unencodable as exc:
            exc.path.append(segment)
            raise
    return {TAG: "dict", "v": pairs}


def _sorted_if_possible(items: set[Any] | frozenset[Any]) -> list[Any]:
    # Sorted when the elements allow it, so equal sets always produce the same JSON.
    try:
        return sorted(items)
    except Exception:  # unorderable elements, or a user __lt__ that fails
        return list(items)


def _as_list(tag: str, members: Callable[[Any], list[Any]]) -> _Encoder:
    """The encoder of a type written as ``{"$t": tag, "v": [...]}``."""

    def encode(value: Any, depth: int) -> dict[str, Any]:
        return {TAG: tag, "v": _encode_list(members(value), depth + 1)}

    return encode


def _as_text(tag: str, text: Callable[[Any], str]) -> _Encoder:
    """The encoder of a type written as ``{"$t": tag, "v": "text"}``."""

    def encode(value: Any, depth: int) -> dict[str, Any]:
        return {TAG: tag, "v": text(value)}

    return encode


def _encode_clock(value: datetime | time, depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = {TAG: _CLOCK_TAGS[type(value)], "v": value.isoformat()}
    zone = value.tzinfo
    # A ZoneInfo is kept by name: an ISO offset alone would lose the DST rules.
    if isinstance(zone, ZoneInfo) and zone.key is not None:
        tree["tz"] = zone.key
        if value.fold:
            tree["fold"] = 1
    return tree


_CLOCK_TAGS: Final = {datetime: "datetime", time: "time"}

_ENCODERS: dict[type, _Encoder] = {
    tuple: _as_list("tuple", list),
    set: _as_list("set", _sorted_if_possible),
    frozenset: _as_list("frozenset", _sorted_if_possible),
    # The three normalized components are exact; total_seconds() as a float is not.
    timedelta: _as_list("timedelta", lambda value: [value.days, value.seconds, value.microseconds]),
    datetime: _encode_clock,
    time: _encode_clock,
    date: _as_text("date", date.isoformat),
    Decimal: _as_text("decimal", str),
    Fraction: _as_text("fraction", str),
    complex: _as_text("complex", repr),  # the shortest exact form, NaN and infinity too
    uuid.UUID: _as_text("uuid", str),
    bytes: _as_text("bytes", lambda value: base64.b64encode(value).decode("ascii")),
}
"""Encoder per exact type; Enum, dataclass and attrs classes are added on first sight."""

_BUILT_IN: Final = (str, int, float, list, dict, *_ENCODERS)
"""The types whose subclasses are refused by name (as they would lose their class)."""

_SUPPORTED = (
    "str, int, float, complex, bool, None, list, dict, tuple, set, frozenset, bytes, "
    "datetime, date, time, timedelta, Decimal, Fraction, UUID, Enum members, dataclass and "
    "attrs instances"
)


def _encoder_for(kind: type, value: Any) -> _Encoder:
    """Builds (and caches) the encoder of an Enum, dataclass or attrs class."""
    encoder: _Encoder
    if issubclass(kind, Enum):
        encoder = _enum_encoder(kind, _class_path(kind, value))
    elif dataclasses.is_dataclass(kind):
        encoder = _record_encoder("dataclass", _class_path(kind, value), dataclasses.fields(kind))
    elif attrs.has(kind):
        encoder = _record_encoder("attrs", _class_path(kind, value), attrs.fields(kind))
    else:
        _refuse(kind, value)
    _ENCODERS[kind] = encoder
    return encoder


def _refuse(kind: type, value: Any) -> NoReturn:
    for base in _BUILT_IN:
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
    if _lookup(kind.__module__, kind.__qualname__) is not kind:
        raise _Unencodable(value, f"the class cannot be found again as {path!r}")
    return path


def _enum_encoder(kind: type[Enum], path: str) -> _Encoder:
    def encode(member: Enum, depth: int) -> dict[str, Any]:
        name = member.name
        if name is not None and kind.__members__.get(name) is member:
            return {TAG: "enum", "c": path, "n": name}
        # Members without a name of their own (combined Flag values) go by value.
        try:
            value = _encode(member.value, depth + 1)
        except _Unencodable as exc:
            exc.path.append(".value")
            raise
        return {TAG: "enum", "c": path, "v": value}

    return encode


_UNSET: Final = object()


def _record_encoder(tag: str, path: str, fields: Iterable[Any]) -> _Encoder:
    names = tuple(field.name for field in fields)

    def encode(instance: Any, depth: int) -> dict[str, Any]:
        if depth + 1 > MAX_DEPTH:  # the fields' object
            raise _Unencodable(instance, _TOO_DEEP_OR_CYCLE)
        values = {}
        for name in names:
            value = getattr(instance, name, _UNSET)
            # A field never set (an ``init=False`` field without default) is left out.
            if value is not _UNSET:
                values[name] = value
        return {TAG: tag, "c": path, "v": _encode_members(values, values.items(), depth + 1)}

    return encode


# --------------------------------------------------------------------------- decoding

_LEAVES: Final = frozenset({str, int, float, bool, type(None)})
"""JSON types with nothing inside to decode."""


def _decode(tree: Any, depth: int) -> Any:
    kind = type(tree)
    if kind is list:
        return _decode_list(tree, depth)
    if kind is dict:
        return _decode_dict(tree, depth)
    if kind in _LEAVES:
        return tree
    raise _Undecodable(f"{_type_name(kind)} is not JSON data")


def _decode_members(container: _C, members: Iterable[tuple[Any, Any]], depth: int) -> _C:
    """Decodes the members of a list or dict at ``depth``, given as (index or key, member);
    ``container`` itself when none of them changes."""
    out = container
    for key, item in members:
        if type(item) not in _LEAVES:
            decoded = _decode(item, depth + 1)
            if decoded is not item:
                if out is container:
                    out = container.copy()
                out[key] = decoded
    return out


def _decode_list(items: list[Any], depth: int) -> list[Any]:
    if depth > MAX_DEPTH:
        raise _Undecodable(_TOO_DEEP)
    if _LEAVES.issuperset(map(type, items)):
        return items
    return _decode_members(items, enumerate(items), depth)


def _decode_dict(mapping: dict[str, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Undecodable(_TOO_DEEP)
    # Bottom-up, like json's object_hook: members first, then the object itself.
    if not _LEAVES.issuperset(map(type, mapping.values())):
        mapping = _decode_members(mapping, mapping.items(), depth)
    return _untag(mapping) if TAG in mapping else mapping


def _untag(tree: dict[str, Any]) -> Any:
    """Turns one tagged object, whose members are already decoded, into its value."""
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
        raise _Undecodable(f"malformed {tag!r} value {_short_repr(tree, 200)}: {exc}") from exc


def _from(kind: type, make: Callable[[Any], Any]) -> _Decoder:
    """The decoder of a tag whose ``"v"`` member is a ``kind`` (str or list)."""

    def decode(tree: dict[str, Any]) -> Any:
        value = tree["v"]
        if type(value) is not kind:
            raise TypeError(f"'v' must be a {kind.__name__}")
        return make(value)

    return decode


def _clock_decoder(kind: type[datetime] | type[time]) -> _Decoder:
    read = _from(str, kind.fromisoformat)

    def decode(tree: dict[str, Any]) -> Any:
        value = read(tree)
        key = tree.get("tz")
        # The stored wall time and fold put back in the zone, exactly as they were, even
        # for a wall time that the zone skips (converting the offset instead would move it).
        if key is None:
            return value
        return value.replace(tzinfo=ZoneInfo(key), fold=tree.get("fold", 0))

    return decode


def _timedelta(parts: list[Any]) -> timedelta:
    days, seconds, microseconds = parts
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_enum(tree: dict[str, Any]) -> Enum:
    kind = _resolve(tree["c"], "enum")
    if "n" in tree:
        member: Enum = kind.__members__[tree["n"]]
        return member
    return kind(tree["v"])  # type: ignore[no-any-return]


_read_fields = _from(dict, lambda fields: fields)


def _decode_record(tree: dict[str, Any]) -> Any:
    tag = tree[TAG]
    kind = _resolve(tree["c"], tag)
    stored = _read_fields(tree)
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
    "dict": _from(list, dict),
    "tuple": _from(list, tuple),
    "set": _from(list, set),
    "frozenset": _from(list, frozenset),
    "timedelta": _from(list, _timedelta),
    "datetime": _clock_decoder(datetime),
    "time": _clock_decoder(time),
    "date": _from(str, date.fromisoformat),
    "decimal": _from(str, Decimal),
    "fraction": _from(str, Fraction),
    "complex": _from(str, complex),
    "uuid": _from(str, uuid.UUID),
    "bytes": _from(str, lambda text: base64.b64decode(text, validate=True)),
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
    """Finds the class a tag names and checks it is of the kind the tag allows.

    Only modules already imported are searched (stored data must not choose which code is
    loaded), and the named object is looked up statically and never called, so a tag such
    as ``"os:system"`` is refused without running anything.
    """
    cached = _CLASSES.get((tag, path))
    if cached is not None:
        return cached
    if type(path) is not str or path.count(":") != 1:
        raise _Undecodable(f"bad class path {path!r} in {tag!r} tag; expected 'module:QualName'")
    module_name, qualname = path.split(":")
    if module_name not in sys.modules:
        raise _Undecodable(
            f"module {module_name!r} of {path!r} is not loaded; import it first (decoding "
            "never imports a module that stored data names)"
        )
    found = _lookup(module_name, qualname)
    check, expected = _KIND_CHECKS[tag]
    if not isinstance(found, type) or not check(found):
        raise _Undecodable(f"{path!r} is not {expected}; refusing to decode it")
    _CLASSES[(tag, path)] = found
    return found


def _lookup(module_name: str, qualname: str) -> Any:
    # getattr_static: no module __getattr__, no descriptor, no metaclass code runs.
    found: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        try:
            found = inspect.getattr_static(found, part)
        except AttributeError:
            return None
    return found


# --------------------------------------------------------------------------- structuring


def _parsing_hook(
    kind: type, accepts: tuple[type, ...], parse: Callable[[Any], Any], expected: str
) -> Callable[[Any, Any], Any]:
    """A structure hook for ``kind``: kept if it already is one, else parsed from one of the
    plain JSON types ``accepts`` (never from a bool)."""

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, accepts) and not isinstance(value, bool):
            return parse(value)
        raise TypeError(f"expected {expected}, got {_type_name(type(value))}")

    return structure


def _exact(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # repr() is a float's shortest exact form: 0.1 -> Decimal("0.1"), not 0.1000000000000000055…
    return lambda value: make(repr(value) if type(value) is float else value)


_NUMBER: Final = (str, int, float)

_PARSED: Final[list[tuple[type, tuple[type, ...], Callable[[Any], Any], str]]] = [
    (datetime, (str,), datetime.fromisoformat, "an ISO 8601 string"),
    (date, (str,), date.fromisoformat, "an ISO 8601 date string"),
    (time, (str,), time.fromisoformat, "an ISO 8601 time string"),
    (timedelta, (int, float), lambda seconds: timedelta(seconds=seconds), "a number of seconds"),
    (Decimal, _NUMBER, _exact(Decimal), "a decimal string or number"),
    (Fraction, _NUMBER, _exact(Fraction), "a fraction string or number"),
    (complex, _NUMBER, complex, "a complex number or its string"),
    (uuid.UUID, (str,), uuid.UUID, "a UUID string"),
]
"""Per type: the plain JSON types :func:`structure` converts to it, how, and what it
expects (for the message)."""


def _is_record(kind: Any) -> bool:
    return attrs.has(kind) or dataclasses.is_dataclass(kind)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    for kind, accepts, parse, expected in _PARSED:
        converter.register_structure_hook(kind, _parsing_hook(kind, accepts, parse, expected))

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
"""The one converter behind every :func:`structure` call (its hooks are cached)."""


def _structure(value: Any, hint: Any) -> Any:
    if hint is None or hint is Any or hint is inspect.Parameter.empty:
        return value
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    try:
        return _CONVERTER.structure(value, hint)
    except Exception as exc:
        problems = "; ".join(cattrs.transform_error(exc, path="$"))
        hint_name = _type_name(hint) if isinstance(hint, type) else repr(hint)
        raise _Failure(
            f"cannot convert {_type_name(type(value))} to {hint_name}: {problems}"
        ) from exc


# --------------------------------------------------------------------------- JSON text


def _make_standard_dumper() -> Callable[[Any], str]:
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


_standard_dump: Final = _make_standard_dumper()


def _make_dumper(fast: Any) -> Callable[[Any], str]:
    """The JSON writer: ``orjson`` (``reactor[fast]``) where it does the job, the standard
    library's otherwise.

    orjson writes the same text some four times faster (a stored body is written at every
    write). What it refuses -- an ``int`` beyond 64 bits, deeper nesting than it allows, a
    subclass of a JSON type or anything else that is not plain JSON data -- goes to the
    standard writer, which writes it as before or raises its usual error. orjson would
    write NaN as ``null``, and a UUID or an enum member as its value, where the standard
    writer refuses them: trees come from :func:`encode`, which refuses NaN and tags the
    others.
    """
    if fast is None:
        return _standard_dump
    fast_dumps = fast.dumps
    refused = fast.JSONEncodeError
    # Anything but plain JSON types goes to the standard writer, which refuses it.
    options = fast.OPT_PASSTHROUGH_SUBCLASS | fast.OPT_PASSTHROUGH_DATETIME
    options |= fast.OPT_PASSTHROUGH_DATACLASS

    def dump(tree: Any) -> str:
        try:
            text: str = fast_dumps(tree, option=options).decode()
        except refused:
            return _standard_dump(tree)
        return text

    return dump


_dump: Final = _make_dumper(orjson)
_standard_load: Final = json.JSONDecoder(parse_constant=_refuse_constant).decode

# Bytes to b"0" for the ten digits, to b"x" for the rest: a run of LONG_DIGITS b"0" after
# translation is a number (or string) with at least as many digits in a row.
_DIGITS: Final = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))
_LONG_DIGITS: Final = b"0" * 19


def _make_loader(fast: Any) -> Callable[[str], Any]:
    """The JSON reader: ``orjson`` (``reactor[fast]``) for text it reads as the standard
    library does, the standard library's otherwise.

    orjson reads an integer beyond 64 bits as a float, where the standard reader gives the
    exact ``int``: text with 19 digits in a row (the shortest such integers: below
    ``-2**63``) goes to the standard reader, a check that costs a fraction of what orjson
    saves. So does whatever orjson refuses (NaN, text that is not JSON, a lone surrogate),
    for the standard reader's value or error.
    """
    if fast is None:
        return _standard_load
    fast_loads = fast.loads

    def load(text: str) -> Any:
        try:
            if text.encode().translate(_DIGITS).find(_LONG_DIGITS) < 0:
                return fast_loads(text)
        except ValueError:
            pass
        return _standard_load(text)

    return load


_load: Final = _make_loader(orjson)


def _parse(text: Any) -> Any:
    if not isinstance(text, str | bytes | bytearray):
        raise _Undecodable(f"expected JSON text (str or bytes), got {_type_name(type(text))}")
    try:
        return _load(text if isinstance(text, str) else text.decode("utf-8"))
    except ValueError as exc:  # bad UTF-8, bad JSON, an int too long to read
        raise _Undecodable(f"invalid JSON: {exc}") from exc


# --------------------------------------------------------------------------- public

_CAUGHT: Final = (_Failure, RecursionError)
_WRITE_ERRORS: Final = (TypeError, ValueError, RecursionError)
"""What the JSON writer raises for something that is not JSON data."""


def encode(
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
        Something ``json.dumps`` accepts; :func:`decode` turns it back into ``value``.

    Raises:
        SerializationError: A part of ``value`` cannot be encoded (an unsupported type, a
            string with a lone surrogate, NaN, nesting deeper than :data:`MAX_DEPTH`); the
            message names its type and where it is, e.g. ``at $.items[2].when``.
    """
    if type(value) in PLAIN:  # the most common step results, without a call
        return value
    try:
        return _encode(value, 1)
    except _CAUGHT as exc:
        _fail(exc, reactor, execution_id, step)


def dumps(
    value: Any,
    *,
    reactor: str | None = None,
    execution_id: str | None = None,
    step: str | None = None,
) -> str:
    """Encodes a value as compact JSON text (UTF-8 characters kept as they are).

    The same as :func:`dump_tree` of :func:`encode`, in one call.

    Args:
        value: The value to write as JSON text.
        reactor: Reactor name, for the error message.
        execution_id: Execution id, for the error message.
        step: Step name, for the error message.

    Returns:
        The JSON text; :func:`loads` turns it back into ``value``.

    Raises:
        SerializationError: As for :func:`encode`, or an ``int`` has more digits than
            Python writes (``sys.get_int_max_str_digits()``).
    """
    tree = encode(value, reactor=reactor, execution_id=execution_id, step=step)
    try:
        return _dump(tree)
    except _WRITE_ERRORS as exc:  # an int too long for str() (sys.get_int_max_str_digits)
        _fail(exc, reactor, execution_id, step)


def dump_tree(tree: Any) -> str:
    """Compact JSON text of a tree made by :func:`encode`, or of plain JSON data holding
    such trees (the fast way: the tree needs no more checks).

    Raises:
        SerializationError: Something in ``tree`` is not plain JSON data (NaN and the
            infinities, which :func:`encode` refuses, are not checked again).
    """
    try:
        return _dump(tree)
    except _WRITE_ERRORS as exc:
        _fail(exc, None, None, None)


def parse_tree(text: str) -> Any:
    """The JSON data of ``text`` as :func:`dump_tree` wrote it: tagged values stay trees
    (:func:`decode` turns them into values).

    Raises:
        ValueError: ``text`` is not JSON (NaN and infinities are not).
    """
    return _load(text)


SLICE: Final = 1024
"""How many members of a big dict or list :func:`dump_sliced` writes at once."""


def dump_sliced(tree: dict[str, Any]) -> str:
    """:func:`dump_tree` of a dict whose values may be big dicts or lists (the body of an
    execution with a large map), written a slice at a time: the JSON writer holds every
    small string of its output in a list before joining them, some 60 bytes per value,
    which for a body of 100,000 results would be some 100 MB at once.

    Raises:
        SerializationError: As :func:`dump_tree`.
    """
    pieces: list[str] = []
    try:
        for key, value in tree.items():
            pieces.append(("," if pieces else "{") + _dump(key) + ":")
            if type(value) is dict and len(value) > SLICE:
                members = iter(value.items())
                parts = []
                while chunk := dict(itertools.islice(members, SLICE)):
                    parts.append(_dump(chunk)[1:-1])
                pieces.append("{" + ",".join(parts) + "}")
            elif type(value) is list and len(value) > SLICE:
                parts = [_dump(value[i : i + SLICE])[1:-1] for i in range(0, len(value), SLICE)]
                pieces.append("[" + ",".join(parts) + "]")
            else:
                pieces.append(_dump(value))
    except _WRITE_ERRORS as exc:
        _fail(exc, None, None, None)
    pieces.append("}" if pieces else "{}")
    return "".join(pieces)


def decode(
    tree: Any,
    hint: Any = None,
    *,
    reactor: str | None = None,
    execution_id: str | None = None,
    step: str | None = None,
) -> Any:
    """Turns a tree made by :func:`encode` back into the value, optionally structured.

    Decoding runs no code of the classes it restores, and imports no module.

    Args:
        tree: The JSON-compatible tree; it is not modified.
        hint: A type to convert the decoded value to with :func:`structure`, e.g. the
            return annotation of a step. ``None`` leaves the value as decoded.
        reactor: Reactor name, for the error message.
        execution_id: Execution id, for the error message.
        step: Step name, for the error message.

    Returns:
        The value as it was encoded, or as ``hint`` describes it.

    Raises:
        SerializationError: The tree holds something other than JSON data, is nested deeper
            than :data:`MAX_DEPTH`, has an unknown or malformed tag, names a class that is
            not an already imported Enum, dataclass or attrs class, or does not fit
            ``hint``.
    """
    try:
        value = _decode(tree, 1)
        return value if hint is None else _structure(value, hint)
    except _CAUGHT as exc:
        _fail(exc, reactor, execution_id, step)


def loads(
    text: str | bytes,
    hint: Any = None,
    *,
    reactor: str | None = None,
    execution_id: str | None = None,
    step: str | None = None,
) -> Any:
    """Parses JSON text made by :func:`dumps` back into the value.

    The same as :func:`decode` of the parsed text, in one call.

    Args:
        text: The JSON text (``bytes`` in UTF-8).
        hint: As for :func:`decode`.
        reactor: Reactor name, for the error message.
        execution_id: Execution id, for the error message.
        step: Step name, for the error message.

    Returns:
        The decoded value, structured to ``hint`` if given.

    Raises:
        SerializationError: ``text`` is not text or not valid JSON, or as for
            :func:`decode`.
    """
    try:
        tree = _parse(text)  # the JSON parser recurses in C: it hits the stack, not MAX_DEPTH
    except _CAUGHT as exc:
        _fail(exc, reactor, execution_id, step)
    return decode(tree, hint, reactor=reactor, execution_id=execution_id, step=step)


def structure(
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
    ``timedelta``, a string or number a ``Decimal``, ``Fraction`` or ``complex``.

    Args:
        value: The value to convert.
        hint: The target type. ``None``, ``typing.Any`` and ``inspect.Parameter.empty``
            return ``value`` unchanged, and so does a value that is already an instance of
            a plain class ``hint``.
        reactor: Reactor name, for the error message.
        execution_id: Execution id, for the error message.
        step: Step name, for the error message.

    Returns:
        The converted value.

    Raises:
        SerializationError: ``value`` does not fit ``hint``; the message lists each
            problem with its place, e.g. ``invalid value for type, expected int @ $.id``.
    """
    try:
        return _structure(value, hint)
    except _Failure as exc:
        _fail(exc, reactor, execution_id, step)


def text_problem(value: object) -> str | None:
    """Why ``value`` cannot be an id, key or reason reactor stores as text (``None``: it can).

    Storage writes these as UTF-8 (Redis keys), so they must be a ``str`` holding no lone
    surrogate; checking first turns what would be a raw ``TypeError`` or
    ``UnicodeEncodeError`` deep in a store into an error the caller can name.

    Args:
        value: The id, correlation id, idempotency key or reason given.

    Returns:
        ``None`` when ``value`` is usable, else a phrase saying why not.
    """
    if not isinstance(value, str):
        return f"{_type_name(type(value))} is not a str"
    if value.isascii() or _surrogate(value) is None:
        return None
    return _NOT_UNICODE


def surely_within(tree: Any, limit: int) -> bool:
    """Whether the JSON text of an encoded ``tree`` is at most ``limit`` bytes, known
    without writing it: spares the common small step result a :func:`dump_tree`.

    ``False`` means "write it and measure" (:func:`check_size`), not "too large".

    Args:
        tree: What :func:`encode` returned.
        limit: The largest size accepted, in bytes.

    Returns:
        ``True`` for ``None``, a bool or float (at most 24 characters), an int of fewer
        than ``limit - 1`` bits (a decimal digit takes at least one bit), or a str at
        most a sixth of ``limit`` long (a character takes at most 6 bytes, ``\\u001f``).
    """
    kind = type(tree)
    if kind is str:
        return len(tree) * 6 + 2 <= limit
    if kind is int:
        return int.bit_length(tree) + 2 <= limit
    if kind is float or kind is bool or tree is None:
        return limit >= 24
    return False


def check_size(
    text: str,
    *,
    what: str,
    limit: int,
    reactor: str | None = None,
    execution_id: str | None = None,
    step: str | None = None,
) -> None:
    """Refuses encoded text larger than ``limit`` once in UTF-8.

    Short texts are accepted without being encoded: the check costs nothing for them.

    Args:
        text: The encoded text, as returned by :func:`dumps` or :func:`dump_tree`.
        what: What the text is, for the message, e.g. ``"result of step 'fetch'"``.
        limit: The largest size accepted, in bytes (the configured one,
            ``reactor.configure(max_payload_bytes=...)``).
        reactor: Reactor name, for the error message.
        execution_id: Execution id, for the error message.
        step: Step name, for the error message.

    Raises:
        SerializationError: ``text`` is not a ``str``, or is too large; the message names
            ``what``, its size and the limit.
    """
    if not isinstance(text, str):
        problem = f"{what} is {_type_name(type(text))}, not encoded text"
    else:
        # A character takes at most 4 bytes in UTF-8: short texts need no encoding at all.
        if len(text) * 4 <= limit:
            return
        size = len(text.encode("utf-8", "surrogatepass"))
        if size <= limit:
            return
        problem = (
            f"{what} is {size} bytes once encoded, over the limit of {limit} bytes "
            "(max_payload_bytes)"
        )
    _fail(_Failure(problem), reactor, execution_id, step)
