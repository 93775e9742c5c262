"""Bad input gets a ReactorError (DESIGN §9): lone surrogates, nesting past the codec's
depth, ``None`` and non-string ids, oversized results, a correlation id callable that
returns no string, a second class under a registered name, and what the errors say.

Each case names the exact error class and checks that the stored envelope is unchanged
(or, where the run itself failed, rolled back and stored ``FAILED``), and that the
execution can then be read, cancelled and resumed with a good payload.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor import (
    DefinitionError,
    ExecutionNotFound,
    Halt,
    Input,
    InputInvalid,
    NotPaused,
    PayloadInvalid,
    Reactor,
    ReactorError,
    RedisStorage,
    SerializationError,
    Status,
    Storage,
    StoredExecution,
    _codec,
    configure,
    get_config,
    interrupt,
    map_,
    registry,
    result,
    step,
)
from reactor._codec import MAX_DEPTH
from reactor._interrupts import schema_errors
from reactor._sync import run_sync
from reactor.testing import unregister

from apps import subprocess_env
from apps.approval import Approval

SURROGATE = "\ud800"
UNDONE: list[Any] = []
COMPENSATED: list[str] = []


def nest(depth: int) -> list[Any]:
    """A list ``depth`` arrays deep (built without recursion)."""
    tree: list[Any] = []
    for _ in range(depth - 1):
        tree = [tree]
    return tree


class Reserving(Reactor):
    """Reserves a slot, released when the run rolls back: what a bad input must undo."""

    name = "bad.Reserving"

    @step
    def reserve(self) -> str:
        return "slot"

    @reserve.undo
    def release(self, result: str) -> None:
        UNDONE.append(result)


class Echo(Reserving):
    """Reserves, waits for a schema-free reply, returns it."""

    name = "bad.Echo"

    reply = interrupt(wait_for="reserve")

    @step
    def echo(self, reply: Any) -> Any:
        return reply


class Recursive(Reactor):
    """Waits for a reply checked by a recursive schema."""

    name = "bad.Recursive"
    reply = interrupt(schema={"type": "array", "items": {"$ref": "#"}})

    @step
    def echo(self, reply: Any) -> Any:
        return reply


class Keyed(Reactor):
    """Its correlation id callable returns what the input asks for."""

    name = "bad.Keyed"
    order = Input()

    @step
    def reserve(self, order: Any) -> Any:
        return order

    @reserve.undo
    def release(self, result: Any) -> None:
        UNDONE.append(result)

    @interrupt(
        wait_for="reserve",
        correlation_id=lambda order: {"none": None, "number": 7, "surrogate": SURROGATE}.get(
            order, order
        ),
    )
    def approval(self) -> dict[str, str]:
        return {"question": "ok?"}


def _key_for(where: str) -> str:
    if where == "key":
        raise LookupError("no key for this order")
    return where


class Raising(Reserving):
    """An interrupt whose body or correlation id callable raises, as the input asks."""

    name = "bad.Raising"
    where = Input()

    @interrupt(wait_for="reserve", correlation_id=_key_for)
    def approval(self, where: str) -> dict[str, str]:
        if where == "body":
            raise LookupError("no request for this order")
        return {}


class Bulky(Reserving):
    """A step whose result is as large as asked."""

    name = "bad.Bulky"
    size = Input(schema={"type": "integer"})

    @step
    def fetch(self, reserve: str, size: int) -> str:
        return "x" * size

    @fetch.compensate
    def forget(self, error: BaseException) -> None:
        COMPENSATED.append(type(error).__name__)


class Returns(Reserving):
    """A step result holding a lone surrogate, after a step with an undo."""

    name = "bad.Returns"

    @step
    def label(self, reserve: str) -> str:
        return reserve + SURROGATE


class Halting(Reserving):
    """Halts with a reason holding a lone surrogate, after a step with an undo."""

    name = "bad.Halting"

    @step
    def stop(self, reserve: str) -> Halt:
        return Halt("no " + SURROGATE)


class Piece(Reactor):
    name = "bad.Piece"
    item = Input()

    @step
    def take(self, item: int) -> str:
        return "y" * item


class Pieces(Reactor):
    """A map whose list of results is over the limit while each element's is not."""

    name = "bad.Pieces"
    sizes = Input()
    pieces = map_(Piece, over="sizes", item="item")


class Signup(Reactor):
    name = "bad.Signup"
    user = Input(schema={"type": "string", "minLength": 2, "pattern": "^[a-z]+$"})
    email = Input(schema={"type": "string", "minLength": 5, "pattern": "@"})

    @step
    def create(self, user: str, email: str) -> str:
        return user


class DeepInput(Reactor):
    name = "bad.DeepInput"
    tree = Input(schema={"type": "array", "items": {"$ref": "#"}})

    @step
    def count(self, tree: list[Any]) -> int:
        return len(tree)


class Digging(Reactor):
    """An argument path that does not exist in the value."""

    name = "bad.Digging"

    @step
    def fetch(self) -> dict[str, str]:
        return {"id": "abc"}

    @step(retries=3, args={"order": result("fetch", "missing")})
    def by_path(self, order: str) -> str:
        return order

    @by_path.compensate
    def forget(self, error: BaseException) -> None:
        COMPENSATED.append(type(error).__name__)


class Converting(Reactor):
    """An argument that cannot be converted to its parameter's annotation."""

    name = "bad.Converting"

    @step
    def fetch(self) -> str:
        return "not a date"

    @step
    def count(self, fetch: dt.datetime) -> int:
        return fetch.year


@pytest.fixture(autouse=True)
def _clear() -> None:
    UNDONE.clear()
    COMPENSATED.clear()


@pytest.fixture
def small_payloads() -> Iterator[int]:
    """``max_payload_bytes`` set to 4 KiB for the test."""
    saved = get_config().max_payload_bytes
    configure(max_payload_bytes=4096)
    try:
        yield 4096
    finally:
        configure(max_payload_bytes=saved)


def stored(storage: Storage, execution_id: str) -> StoredExecution:
    found = run_sync(storage.load(execution_id))
    assert found is not None
    return found


def refused(
    storage: Storage, execution_id: str, error: type[ReactorError], action: Callable[[], Any]
) -> ReactorError:
    """Run ``action``, which must raise exactly ``error`` and leave the envelope as it was."""
    before = stored(storage, execution_id)
    with pytest.raises(ReactorError) as info:
        action()
    assert type(info.value) is error, info.value
    assert stored(storage, execution_id) == before
    return info.value


def still_usable(paused: Any) -> None:
    """A paused Echo execution reads, resumes with a good payload, and completes."""
    assert Echo.find(paused.id).paused
    done = Echo.resume(paused.id, {"note": "fine"})
    assert done.completed and done.result == {"note": "fine"}


# ------------------------------------------------------------ lone surrogates


def test_a_step_result_with_a_lone_surrogate_fails_the_step_and_rolls_back(
    reactor_backend: Storage,
) -> None:
    ex = Returns.run(execution_id="returns-1")
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("label", "SerializationError")
    assert "lone surrogate" in ex.error.message and UNDONE == ["slot"]
    assert stored(reactor_backend, ex.id).status is Status.FAILED
    assert Returns.find(ex.id).failed


def test_a_halt_reason_with_a_lone_surrogate_fails_the_step_and_rolls_back(
    reactor_backend: Storage,
) -> None:
    ex = Halting.run()
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("stop", "SerializationError")
    assert "Halt reason" in ex.error.message and UNDONE == ["slot"]
    assert stored(reactor_backend, ex.id).status is Status.FAILED


@pytest.mark.parametrize("flexible", [False, True], ids=["strict", "flexible"])
def test_a_payload_with_a_lone_surrogate_changes_nothing(
    reactor_backend: Storage, flexible: bool
) -> None:
    ex = Echo.run()
    error = refused(
        reactor_backend,
        ex.id,
        SerializationError,
        lambda: Echo.resume(ex.id, {"note": SURROGATE}, strict=not flexible),
    )
    assert (error.execution_id, error.step) == (ex.id, "reply")
    assert str(error).count("[reactor=") == 1
    still_usable(ex)
    other = Echo.run()
    refused(
        reactor_backend,
        other.id,
        SerializationError,
        lambda: Echo.resume(other.id, SURROGATE, strict=not flexible),
    )
    assert Echo.cancel(other.id).cancelled


def test_an_interrupt_handler_payload_with_a_lone_surrogate_fails_the_interrupt(
    reactor_backend: Storage,
) -> None:
    ex = Echo.run(interrupt_handler=lambda pending: SURROGATE)
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("reply", "SerializationError")
    assert UNDONE == ["slot"]
    assert Echo.find(ex.id).failed


def test_a_correlation_id_with_a_lone_surrogate_fails_the_run(reactor_backend: Storage) -> None:
    ex = Keyed.run(order="surrogate")
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("approval", "ArgumentInvalid")
    assert "lone surrogate" in ex.error.message and UNDONE == ["surrogate"]
    assert stored(reactor_backend, ex.id).status is Status.FAILED
    assert stored(reactor_backend, ex.id).correlation_ids == ()


@pytest.mark.parametrize("bad", [SURROGATE, "ex-" + SURROGATE, None, 123])
def test_an_id_no_execution_can_have_is_not_found(reactor_backend: Storage, bad: Any) -> None:
    ex = Echo.run()
    actions: list[Callable[[], Any]] = [
        lambda: Echo.find(bad),
        lambda: Echo.resume(bad, {"note": "x"}),
        lambda: Echo.resume(bad, {"note": "x"}, strict=False),
        lambda: Echo.cancel(bad),
        lambda: Echo.undo(bad),
        lambda: Echo.find_by_correlation_id(bad),
        lambda: Echo.resume_by_correlation_id(bad, {"note": "x"}),
    ]
    for action in actions:
        error = refused(reactor_backend, ex.id, ExecutionNotFound, action)
        assert error.reactor == Echo.name and repr(bad) in str(error)
    still_usable(ex)


@pytest.mark.parametrize("option", ["execution_id", "idempotency_key"])
@pytest.mark.parametrize("bad", [SURROGATE, 123])
def test_a_run_option_that_cannot_be_stored_is_invalid_input(
    reactor_backend: Storage, option: str, bad: Any
) -> None:
    for start in (Echo.run, Echo.submit):
        with pytest.raises(InputInvalid) as info:
            start(**{option: bad})
        assert type(info.value) is InputInvalid and list(info.value.errors) == [option]
    assert UNDONE == [] and run_sync(reactor_backend.list()) == []


def test_a_cancel_reason_with_a_lone_surrogate_changes_nothing(reactor_backend: Storage) -> None:
    ex = Echo.run()
    refused(reactor_backend, ex.id, SerializationError, lambda: Echo.cancel(ex.id, SURROGATE))
    assert Echo.cancel(ex.id, "ops").reason == "ops"


def test_an_input_with_a_lone_surrogate_names_its_context_once(reactor_backend: Storage) -> None:
    with pytest.raises(InputInvalid) as info:
        Keyed.run(order=SURROGATE)
    assert str(info.value).count("[reactor=") == 1
    assert "$.order" in str(info.value) and list(info.value.errors) == ["*"]


# -------------------------------------------------------------------- depth


@pytest.mark.parametrize("flexible", [False, True], ids=["strict", "flexible"])
def test_a_deep_payload_on_a_recursive_schema_changes_nothing(
    reactor_backend: Storage, flexible: bool
) -> None:
    ex = Recursive.run()
    # Refused by the codec, before the schema walks it (no attempt used: max_attempts=1).
    refused(
        reactor_backend,
        ex.id,
        SerializationError,
        lambda: Recursive.resume(ex.id, nest(10_000), strict=not flexible),
    )
    assert Recursive.find(ex.id).interrupts[0].attempts_left == 1
    done = Recursive.resume(ex.id, nest(3))
    assert done.completed and done.result == nest(3)


def test_a_schema_check_too_deep_for_the_stack_is_a_violation() -> None:
    node = Recursive.__reactor_plan__.nodes["reply"]
    assert schema_errors(node, nest(20)) == []
    # Room for 150 more frames: too few for the validator to follow MAX_DEPTH levels, as
    # when resume is called on an already deep stack.
    depth = 0
    frame = sys._getframe()
    while frame.f_back is not None:
        frame, depth = frame.f_back, depth + 1
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 150)
    try:
        errors = schema_errors(node, nest(MAX_DEPTH))
    finally:
        sys.setrecursionlimit(saved)
    [error] = errors
    assert error == {"path": "/", "message": "nested too deeply to be checked against the schema"}


def test_a_payload_deeper_than_the_codec_reads_leaves_the_execution_usable(
    reactor_backend: Storage,
) -> None:
    deep = nest(490)
    resumed, cancelled, undone = Echo.run(), Echo.run(), Echo.run()
    for ex in (resumed, cancelled, undone):
        refused(reactor_backend, ex.id, SerializationError, lambda ex=ex: Echo.resume(ex.id, deep))
        refused(
            reactor_backend,
            ex.id,
            SerializationError,
            lambda ex=ex: Echo.resume(ex.id, deep, strict=False),
        )
        assert Echo.find(ex.id).paused
    still_usable(resumed)
    assert Echo.cancel(cancelled.id).cancelled
    assert Echo.undo(undone.id).reason == "undo" and UNDONE == ["slot"]


def test_a_deep_input_on_a_recursive_schema_is_invalid_input(reactor_backend: Storage) -> None:
    with pytest.raises(InputInvalid) as info:
        DeepInput.run(tree=nest(10_000))
    assert type(info.value) is InputInvalid
    assert info.value.errors == {"tree": "nested too deeply to be checked against the schema"}
    assert DeepInput.run(tree=nest(3)).result == 1


# -------------------------------------------------------- correlation ids


@pytest.mark.parametrize(
    ("order", "why"), [("none", "returned None"), ("number", "returned 7: int is not a str")]
)
def test_a_correlation_id_that_is_no_string_fails_the_run_clearly(
    reactor_backend: Storage, order: str, why: str
) -> None:
    for _ in range(2):  # the second run fails the same way: nothing was registered
        ex = Keyed.run(order=order)
        assert ex.failed and ex.error is not None
        assert (ex.error.step, ex.error.type) == ("approval", "ArgumentInvalid")
        assert why in ex.error.message
        assert stored(reactor_backend, ex.id).status is Status.FAILED
        assert Keyed.find(ex.id).failed
    assert UNDONE.count(order) == 2
    with pytest.raises(ExecutionNotFound):
        Keyed.find_by_correlation_id("None")
    assert Keyed.run(order="fine").paused


@pytest.mark.parametrize("where", ["body", "key"])
def test_an_interrupt_whose_code_raises_fails_the_run_and_rolls_back(
    reactor_backend: Storage, where: str
) -> None:
    ex = Raising.run(where=where, execution_id=f"raising-{where}")
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("approval", "LookupError")
    assert UNDONE == ["slot"]
    assert stored(reactor_backend, ex.id).status is Status.FAILED
    assert Raising.run(where="fine").paused


# ------------------------------------------------------------ result size


def test_a_step_result_over_the_limit_fails_the_step_and_rolls_back(
    reactor_backend: Storage, small_payloads: int
) -> None:
    ex = Bulky.run(size=small_payloads + 1)
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("fetch", "SerializationError")
    assert "max_payload_bytes" in ex.error.message
    assert UNDONE == ["slot"] and COMPENSATED == ["SerializationError"]
    assert Bulky.find(ex.id).failed
    assert Bulky.run(size=small_payloads - 100).completed


@given(
    value=st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    limit=st.integers(1, 300),
)
def test_a_result_surely_within_the_limit_is(value: Any, limit: int) -> None:
    try:
        tree = _codec.encode(value)
    except SerializationError:  # NaN, infinities, lone surrogates
        return
    if _codec.surely_within(tree, limit):
        assert len(_codec.dump_tree(tree).encode()) <= limit


def test_a_map_result_is_not_limited_when_each_element_is_within_it(
    reactor_backend: Storage, small_payloads: int
) -> None:
    ex = Pieces.run(sizes=[3000, 3000])
    assert ex.completed and [len(piece) for piece in ex.result] == [3000, 3000]


# ------------------------------------------------------------------ registry


def _define(name: str, qualname: str) -> type[Reactor]:
    def body(self: Reactor) -> int:
        return 1

    namespace = {"name": name, "__qualname__": qualname, "__module__": __name__}
    namespace["body"] = step(body)
    return type(Reactor)(qualname, (Reactor,), namespace)


def test_another_class_under_a_taken_name_is_refused() -> None:
    first = _define("bad.Taken", "First")
    with pytest.raises(DefinitionError) as info:
        _define("bad.Taken", "Second")
    assert type(info.value) is DefinitionError and info.value.reactor == "bad.Taken"
    assert f"{__name__}.First" in str(info.value)
    assert registry["bad.Taken"] is first
    unregister("bad.Taken")
    second = _define("bad.Taken", "Second")
    assert registry["bad.Taken"] is second


def test_the_same_class_defined_again_replaces_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = [_define("bad.Again", "Local"), _define("bad.Again", "Local")]
    assert again[0] is not again[1] and registry["bad.Again"] is again[1]

    (tmp_path / "reloaded_app.py").write_text(
        textwrap.dedent(
            """
            from reactor import Reactor, step

            class Reloaded(Reactor):
                name = "bad.Reloaded"

                @step
                def one(self) -> int:
                    return 1
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("reloaded_app")
    old = module.Reloaded
    reloaded = importlib.reload(module)
    assert reloaded.Reloaded is not old and registry["bad.Reloaded"] is reloaded.Reloaded
    monkeypatch.delitem(sys.modules, "reloaded_app")

    # The same file under another module name (a script run as __main__ that is also
    # imported by name) defines the same class.
    spec = importlib.util.spec_from_file_location("as_main", tmp_path / "reloaded_app.py")
    assert spec is not None and spec.loader is not None
    twin = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "as_main", twin)
    spec.loader.exec_module(twin)
    assert registry["bad.Reloaded"] is twin.Reloaded


# ---------------------------------------------------------- error messages


def test_invalid_inputs_report_every_violation_once(reactor_backend: Storage) -> None:
    with pytest.raises(InputInvalid) as info:
        Signup.run(user="A", email="x")
    error = info.value
    assert error.errors == {
        "email": "'x' is too short; 'x' does not match '@'",
        "user": "'A' is too short; 'A' does not match '^[a-z]+$'",
    }
    assert error.detail == (
        "invalid inputs for Signup: email: 'x' is too short; email: 'x' does not match '@'; "
        "user: 'A' is too short; user: 'A' does not match '^[a-z]+$'"
    )
    assert str(error) == f"{error.detail} [reactor='bad.Signup']"


def test_an_argument_that_cannot_be_resolved_fails_as_argument_invalid(
    reactor_backend: Storage,
) -> None:
    ex = Digging.run()
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("by_path", "ArgumentInvalid")
    assert ex.error.message == (
        "argument 'order': cannot follow 'missing' in dict (from 'fetch', path ('missing',))"
    )
    assert COMPENSATED == []  # neither retried nor compensated
    assert Digging.find(ex.id).failed


def test_a_conversion_that_fails_is_argument_invalid_and_names_its_context_once(
    reactor_backend: Storage,
) -> None:
    ex = Converting.run()
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("count", "ArgumentInvalid")
    assert ex.error.message.startswith(
        "argument 'fetch' cannot be converted to <class 'datetime.datetime'>: "
    )
    assert "[reactor=" not in ex.error.message


# --------------------------------------------------------------------- CLI


def cli(*args: str | bytes, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reactor", "--app", "apps.approval", *args],
        env=subprocess_env(url),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_the_cli_refuses_bad_payloads_and_ids_in_one_line(
    shared: Storage, redis_url: str, tmp_path: Path
) -> None:
    ex = Approval.run(order_id=31)
    before = stored(shared, ex.id)
    deep = "[" * 490 + "]" * 490
    for payload in ('{"note": "\\ud800"}', deep):
        answer = cli("resume", ex.id, "--payload", payload, url=redis_url)
        assert answer.returncode == 1 and answer.stdout == ""
        [line] = answer.stderr.splitlines()
        assert line.startswith("error: SerializationError: cannot encode")
        assert stored(shared, ex.id) == before
    deeper_than_the_parser = tmp_path / "deep.json"
    deeper_than_the_parser.write_text("[" * 100_000 + "]" * 100_000)
    too_deep = cli("resume", ex.id, "--payload", f"@{deeper_than_the_parser}", url=redis_url)
    assert too_deep.returncode == 2 and "Traceback" not in too_deep.stderr
    assert too_deep.stderr.splitlines()[-1].endswith("--payload is nested too deeply to be read")
    not_utf8 = cli("show", b"ex-\xed\xa0\x80", url=redis_url)
    assert not_utf8.returncode == 1
    [line] = not_utf8.stderr.splitlines()
    assert line.startswith("error: ExecutionNotFound: no execution has the id 'ex-\\udced")
    shown = cli("show", ex.id, url=redis_url)
    assert shown.returncode == 0 and "status: paused" in shown.stdout.splitlines()
    done = cli("resume", ex.id, "--payload", '{"approved": true}', url=redis_url)
    assert done.returncode == 0, done.stderr
    assert Approval.find(ex.id).result == "order 31 placed"


# ---------------------------------------------------------------- property


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def json_like(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON-like values (nested lists and str-keyed dicts) whose strings come from ``text``."""
    scalars = (
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    )
    return st.recursive(
        scalars | text,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=12,
    )


# Half the values have ordinary text only; in the other half a string may hold lone
# surrogates (category Cs, which st.text() leaves out).
JSON_LIKE = json_like(st.text(max_size=8)) | json_like(
    st.text(st.characters(categories=["Cs"]) | st.characters(), max_size=8)
)


def test_any_json_like_value_round_trips_through_pause_and_resume(
    reactor_backend: Storage,
) -> None:
    examples = 50 if isinstance(reactor_backend, RedisStorage) else 150

    @settings(max_examples=examples, deadline=None, database=None)
    @given(value=JSON_LIKE)
    def cycle(value: Any) -> None:
        ex = Echo.run()
        before = stored(reactor_backend, ex.id)
        try:
            done = Echo.resume(ex.id, value)
        except ReactorError as exc:
            assert isinstance(exc, SerializationError) and _has_surrogate(value)
            assert stored(reactor_backend, ex.id) == before
            still_usable(ex)
            return
        assert not _has_surrogate(value)
        assert done.completed and done.result == value
        assert Echo.find(ex.id).result == value  # read back from the store

    cycle()


def test_payload_errors_still_count_attempts_for_storable_payloads(
    reactor_backend: Storage,
) -> None:
    ex = Approval.run(order_id=5)
    with pytest.raises(PayloadInvalid) as info:
        Approval.resume(ex.id, {"approved": "yes"})
    assert info.value.attempts_left == 2
    with pytest.raises(SerializationError):
        Approval.resume(ex.id, {"approved": True, "note": SURROGATE})
    assert Approval.find(ex.id).interrupts[0].attempts_left == 2
    assert Approval.resume(ex.id, {"approved": True}).completed
    with pytest.raises(NotPaused):
        Approval.cancel(ex.id)
