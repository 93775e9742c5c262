"""The ASGI app: the JSON API, webhook ingress and the HTML pages of the interrupt inbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from reactor import (
    AlreadyResumed,
    AmbiguousStep,
    CorrelationConflict,
    Execution,
    ExecutionNotFound,
    InterruptTimeout,
    NotPaused,
    NotPending,
    PayloadInvalid,
    PendingInterrupt,
    Reactor,
    ReactorError,
    RedisStorage,
    SerializationError,
    Status,
    StorageError,
    configure,
    registry,
)
from reactor.storage import Storage, StoredExecution

from ._documents import (
    TRACE_FIELDS,
    declared_steps,
    execution_document,
    interrupt_document,
    iso,
    jsonable,
    reactor_document,
    trace_entries,
)
from ._forms import Form, build_form, parse_form
from ._paging import BadCursor, list_page
from ._signing import SIGNATURE_HEADER, LinkClaim, verify_link, verify_webhook

__all__ = ["Action", "Authorize", "create_app"]

Action = Literal["view", "resolve", "cancel", "administer"]
"""What a request wants to do: see, answer an interrupt, cancel, undo."""

Authorize = Callable[[Request, str, Execution | None], str | Awaitable[str | None] | None]
"""``authorize(request, action, execution)`` -> the principal (who acts), or ``None``."""

_HERE = Path(__file__).parent
_INBOX_PAGE = 25
_API_PAGE = 50
_MAX_PAGE = 200
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_UNDOABLE = frozenset({Status.PAUSED, Status.COMPLETED, Status.FAILED, Status.HALTED})
_CANCELLABLE = frozenset({Status.PAUSED, Status.RUNNING})


class _Problem(Exception):
    """A request the app refuses, with its HTTP status; rendered as JSON or as a page."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _problem(exc: ReactorError) -> _Problem:
    """The HTTP answer to a refusal of the engine."""
    message = exc.detail
    if isinstance(exc, PayloadInvalid):
        return _Problem(
            422, "payload_invalid", message, errors=exc.errors, attempts_left=exc.attempts_left
        )
    if isinstance(exc, SerializationError):
        return _Problem(422, "payload_invalid", message, errors=[])
    if isinstance(exc, ExecutionNotFound):
        return _Problem(404, "not_found", message)
    if isinstance(exc, InterruptTimeout):
        return _Problem(410, "expired", message)
    if isinstance(exc, AlreadyResumed):
        return _Problem(409, "already_resumed", message)
    if isinstance(exc, NotPaused):
        return _Problem(409, "not_paused", message, execution_status=exc.status, reason=exc.reason)
    if isinstance(exc, NotPending | AmbiguousStep):
        return _Problem(409, "not_pending", message, pending=exc.pending)
    if isinstance(exc, CorrelationConflict):
        return _Problem(409, "correlation_conflict", message)
    if isinstance(exc, StorageError):
        return _Problem(503, "storage_unavailable", message)
    return _Problem(400, "refused", message)


def _expired(execution: Execution, step: str) -> bool:
    """Whether ``step`` timed out (its deadline passed) and failed the execution."""
    error = execution.error
    return (
        execution.failed
        and error is not None
        and error.type == InterruptTimeout.__name__
        and error.step == step
    )


def _until(deadline: dt.datetime | None) -> str:
    """``"in 2 h 5 min"`` until ``deadline`` (what the countdown script keeps updating)."""
    if deadline is None:
        return ""
    seconds = int((deadline - dt.datetime.now(dt.UTC)).total_seconds())
    if seconds <= 0:
        return "overdue"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    if minutes:
        return f"in {minutes} min {seconds} s"
    return f"in {seconds} s"


def _title(pending: PendingInterrupt) -> str:
    request = pending.request
    if isinstance(request, Mapping) and isinstance(request.get("title"), str):
        return str(request["title"])
    return pending.step.replace("_", " ").capitalize()


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pretty"] = lambda value: json.dumps(
        jsonable(value), indent=2, ensure_ascii=False, sort_keys=False
    )
    env.filters["iso"] = iso
    env.filters["until"] = _until
    env.filters["request_title"] = _title
    env.globals["TRACE_FIELDS"] = TRACE_FIELDS
    return Jinja2Templates(env=env)


class _Web:
    """The app's state and its endpoints."""

    def __init__(
        self,
        *,
        authorize: Authorize | None,
        secret: str | bytes | None,
        reactors: Iterable[type[Reactor]] | None,
        dev: bool,
        storage: Storage | None,
    ) -> None:
        self.authorize = authorize
        self.secret = secret
        self.reactors = None if reactors is None else {cls.name: cls for cls in reactors}
        self.dev = dev
        self._storage = storage
        self._env_storage: Storage | None = None
        self.templates = _templates()

    # ---------------------------------------------------------------- plumbing

    def storage(self) -> Storage:
        """Where executions are listed from: the app's, the configured one, or
        ``$REACTOR_REDIS_URL`` -- the one the reactors themselves use."""
        if self._storage is not None:
            return self._storage
        configured = configure().storage
        if configured is not None:
            return configured
        if self._env_storage is None:
            url = os.environ.get("REACTOR_REDIS_URL")
            if not url:
                raise StorageError(
                    "reactor.web has no storage to list executions from: pass "
                    "create_app(storage=...), call reactor.configure(storage=...) or set "
                    "REACTOR_REDIS_URL"
                )
            self._env_storage = RedisStorage.from_url(url)
        return self._env_storage

    def served(self) -> dict[str, type[Reactor]]:
        """The reactor classes this app answers for, by name."""
        return dict(registry) if self.reactors is None else self.reactors

    def reactor_class(self, name: str) -> type[Reactor]:
        # Only classes given to create_app (or already imported): a stored name never
        # makes the app import code.
        cls = self.served().get(name)
        if cls is None:
            raise _Problem(404, "not_found", f"unknown reactor {name!r}")
        return cls

    async def load(self, execution_id: str) -> Execution:
        stored = await self.storage().load(execution_id)
        if stored is None:
            raise _Problem(404, "not_found", f"no execution {execution_id!r}")
        return await self.reactor_class(stored.reactor).afind(execution_id)

    async def _find(self, stored: StoredExecution) -> Execution | None:
        cls = self.served().get(stored.reactor)
        if cls is None:
            return None
        try:
            return await cls.afind(stored.id)
        except StorageError:
            raise
        except ReactorError:
            # Expired between the listing and this read, or no longer readable by its
            # class (DefinitionChanged): one such execution must not take the inbox down.
            return None

    async def check(self, request: Request, action: Action, execution: Execution | None) -> str:
        """The principal allowed to do ``action``; refuses with 401/403 otherwise.

        Returns ``""`` in dev mode, where nobody is identified.
        """
        if self.authorize is None:
            client = request.client.host if request.client else ""
            if self.dev and client in _LOOPBACK:
                return ""
            raise _Problem(
                401,
                "unauthorized",
                "this app has no authorize callback: pass create_app(authorize=...), or run "
                "`reactor serve --dev` on localhost",
            )
        principal = self.authorize(request, action, execution)
        if inspect.isawaitable(principal):
            principal = await principal
        if principal is None:
            raise _Problem(403, "forbidden", f"not allowed to {action}")
        return principal

    async def may(self, request: Request, action: Action, execution: Execution | None) -> bool:
        try:
            await self.check(request, action, execution)
        except _Problem:
            return False
        return True

    @staticmethod
    def same_origin(request: Request) -> None:
        """Refuse a cross-site form post (CSRF) before it changes anything."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise _Problem(403, "forbidden", "cross-site request refused")
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            raise _Problem(403, "forbidden", "cross-origin request refused")

    def page_of(
        self, request: Request, *, default: int
    ) -> tuple[Status | None, str | None, int, str | None]:
        query = request.query_params
        status: Status | None = None
        if query.get("status"):
            try:
                status = Status(query["status"])
            except ValueError:
                raise _Problem(400, "bad_request", f"unknown status {query['status']!r}") from None
        reactor = query.get("reactor") or None
        if reactor is not None:
            self.reactor_class(reactor)
        try:
            limit = int(query.get("limit", default))
        except ValueError:
            raise _Problem(400, "bad_request", "limit must be an integer") from None
        if not 1 <= limit <= _MAX_PAGE:
            raise _Problem(400, "bad_request", f"limit must be between 1 and {_MAX_PAGE}")
        return status, reactor, limit, query.get("cursor") or None

    async def executions(
        self,
        request: Request,
        *,
        status: Status | None,
        reactor: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Execution], str | None]:
        """One page of executions the request may view, newest first."""
        try:
            stored, next_cursor = await list_page(
                self.storage(), status=status, reactor=reactor, limit=limit, cursor=cursor
            )
        except BadCursor as exc:
            raise _Problem(400, "bad_request", str(exc)) from None
        found = await asyncio.gather(*(self._find(s) for s in stored))
        loaded = [execution for execution in found if execution is not None]
        allowed = await asyncio.gather(*(self.may(request, "view", e) for e in loaded))
        return [e for e, ok in zip(loaded, allowed, strict=True) if ok], next_cursor

    async def pending(
        self, request: Request, *, reactor: str | None, limit: int, cursor: str | None
    ) -> tuple[list[tuple[Execution, PendingInterrupt]], str | None]:
        """Pending interrupts of one page of paused executions."""
        executions, next_cursor = await self.executions(
            request, status=Status.PAUSED, reactor=reactor, limit=limit, cursor=cursor
        )
        rows = [(e, pending) for e in executions if e.paused for pending in e.interrupts]
        return rows, next_cursor

    @staticmethod
    async def json_body(request: Request) -> Any:
        body = await request.body()
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _Problem(400, "bad_request", f"the body is not JSON: {exc}") from None
        except RecursionError:
            # The JSON parser recurses once per level; the codec would refuse it anyway.
            raise _Problem(400, "bad_request", "the body is nested too deeply") from None

    # ---------------------------------------------------------------- rendering

    def base(self, request: Request) -> str:
        """The URL path the app is mounted at (``""`` at the root)."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        context.setdefault("title", "Reactor")
        return self.templates.TemplateResponse(
            request,
            template,
            {"base": self.base(request), "reactors": sorted(self.served()), **context},
            status_code=status_code,
        )

    def redirect(self, request: Request, path: str) -> Response:
        return RedirectResponse(self.base(request) + path, status_code=303)

    async def execution_view(
        self,
        request: Request,
        execution: Execution,
        *,
        forms: Mapping[str, Form] | None = None,
        status_code: int = 200,
    ) -> Response:
        """The execution page, with a form per interrupt the request may resolve."""
        try:
            principal = await self.check(request, "resolve", execution) or None
            resolve = True
        except _Problem:
            principal, resolve = None, False
        given = dict(forms or {})
        interrupt_forms = {
            pending.step: given.get(pending.step) or build_form(pending.schema, principal=principal)
            for pending in execution.interrupts
        }
        results = execution.results
        failed_step = execution.error.step if execution.error else None
        waiting = {pending.step for pending in execution.interrupts}
        timeline = []
        declared = [path for path, _ in declared_steps(execution.reactor)]
        for path in [*declared, *(p for p in results if p not in declared)]:
            if path in results:
                state = "completed"
            elif path in waiting:
                state = "waiting"
            elif path == failed_step:
                state = "failed"
            else:
                state = "not run"
            timeline.append({"step": path, "state": state, "result": results.get(path)})
        return self.render(
            request,
            "execution.html",
            status_code,
            title=f"{execution.reactor.name} {execution.id}",
            execution=execution,
            timeline=timeline,
            trace=trace_entries(execution),
            forms=interrupt_forms if resolve else {},
            can_cancel=execution.status in _CANCELLABLE
            and await self.may(request, "cancel", execution),
            can_undo=execution.status in _UNDOABLE
            and await self.may(request, "administer", execution),
        )

    async def resolve(
        self, request: Request, execution: Execution, step: str, principal: str | None, link: str
    ) -> Response:
        """A posted interrupt form: flexible resume, errors shown next to the fields.

        Args:
            link: The signed link's URL path when answering through one, else ``""``.
        """
        pending = next((p for p in execution.interrupts if p.step == step), None)
        if pending is None:
            return self.decided(request, execution, step, 409)
        payload = parse_form(pending.schema, await request.form(), principal=principal)
        try:
            after = await execution.aresume(payload, step=step, principal=principal)
        except (AlreadyResumed, NotPaused, NotPending):
            return self.decided(request, execution, step, 409)
        if after.validation_errors:
            form = build_form(
                pending.schema, values=payload, errors=after.validation_errors, principal=principal
            )
            if link:
                return self.link_view(request, after, pending, form, link, 422)
            return await self.execution_view(request, after, forms={step: form}, status_code=422)
        if _expired(after, step):
            return self.decided(request, after, step, 410)
        if link:
            return self.render(
                request,
                "message.html",
                title="Thank you",
                heading="Thank you, your decision was recorded",
                message=f"The request is now {after.status.value}.",
            )
        return self.redirect(request, f"/executions/{after.id}")

    def decided(self, request: Request, execution: Execution, step: str, status: int) -> Response:
        expired = _expired(execution, step)
        return self.render(
            request,
            "message.html",
            status,
            title="Expired" if expired else "Already decided",
            heading="This request has expired" if expired else "This request was already decided",
            message=(
                "Its deadline passed before anyone answered."
                if expired
                else "Someone answered it already (or it was cancelled); nothing more to do."
            ),
        )

    def link_view(
        self,
        request: Request,
        execution: Execution,
        pending: PendingInterrupt,
        form: Form,
        link: str,
        status_code: int = 200,
    ) -> Response:
        return self.render(
            request,
            "link.html",
            status_code,
            title=_title(pending),
            execution=execution,
            pending=pending,
            form=form,
            action=link,
        )

    # ---------------------------------------------------------------- pages

    async def inbox(self, request: Request) -> Response:
        await self.check(request, "view", None)
        _, reactor, limit, cursor = self.page_of(request, default=_INBOX_PAGE)
        rows, next_cursor = await self.pending(request, reactor=reactor, limit=limit, cursor=cursor)
        return self.render(
            request,
            "inbox.html",
            title="Inbox",
            rows=rows,
            reactor=reactor,
            next_cursor=next_cursor,
        )

    async def execution_page(self, request: Request) -> Response:
        execution = await self.load(request.path_params["id"])
        await self.check(request, "view", execution)
        return await self.execution_view(request, execution)

    async def resolve_page(self, request: Request) -> Response:
        self.same_origin(request)
        execution = await self.load(request.path_params["id"])
        principal = await self.check(request, "resolve", execution)
        return await self.resolve(
            request, execution, request.path_params["step"], principal or None, ""
        )

    async def cancel_page(self, request: Request) -> Response:
        self.same_origin(request)
        execution = await self.load(request.path_params["id"])
        principal = await self.check(request, "cancel", execution)
        reason = (await request.form()).get("reason")
        await execution.reactor.acancel(
            execution.id,
            reason=reason if isinstance(reason, str) and reason else None,
            principal=principal or None,
        )
        return self.redirect(request, f"/executions/{execution.id}")

    async def undo_page(self, request: Request) -> Response:
        self.same_origin(request)
        execution = await self.load(request.path_params["id"])
        principal = await self.check(request, "administer", execution)
        await execution.reactor.aundo(execution.id, principal=principal or None)
        return self.redirect(request, f"/executions/{execution.id}")

    async def link_page(self, request: Request) -> Response:
        if not self.secret:
            raise _Problem(404, "not_found", "this app signs no links (no secret)")
        token = request.path_params["token"]
        claim = verify_link(token, self.secret)
        if claim == "forged":
            raise _Problem(403, "forbidden", "this link is not valid")
        if claim == "expired":
            raise _Problem(410, "expired", "this link has expired")
        assert isinstance(claim, LinkClaim)
        execution = await self.load(claim.execution_id)
        link = f"/link/{token}"
        if request.method == "POST":
            self.same_origin(request)
            return await self.resolve(request, execution, claim.step, None, link)
        pending = next((p for p in execution.interrupts if p.step == claim.step), None)
        if pending is None:
            return self.decided(request, execution, claim.step, 410)
        return self.link_view(request, execution, pending, build_form(pending.schema), link)

    # ---------------------------------------------------------------- API

    async def api_interrupts(self, request: Request) -> Response:
        await self.check(request, "view", None)
        _, reactor, limit, cursor = self.page_of(request, default=_API_PAGE)
        rows, next_cursor = await self.pending(request, reactor=reactor, limit=limit, cursor=cursor)
        return JSONResponse(
            {
                "interrupts": [
                    {
                        "reactor": execution.reactor.name,
                        "execution_id": execution.id,
                        **interrupt_document(pending),
                    }
                    for execution, pending in rows
                ],
                "next_cursor": next_cursor,
            }
        )

    async def api_executions(self, request: Request) -> Response:
        await self.check(request, "view", None)
        status, reactor, limit, cursor = self.page_of(request, default=_API_PAGE)
        executions, next_cursor = await self.executions(
            request, status=status, reactor=reactor, limit=limit, cursor=cursor
        )
        return JSONResponse(
            {
                "executions": [
                    {
                        "id": e.id,
                        "reactor": e.reactor.name,
                        "status": e.status.value,
                        "reason": e.reason,
                        "created_at": iso(e.created_at),
                        "updated_at": iso(e.updated_at),
                        "interrupts": [pending.step for pending in e.interrupts],
                    }
                    for e in executions
                ],
                "next_cursor": next_cursor,
            }
        )

    async def api_execution(self, request: Request) -> Response:
        execution = await self.load(request.path_params["id"])
        await self.check(request, "view", execution)
        return JSONResponse(execution_document(execution))

    async def api_resume(self, request: Request) -> Response:
        self.same_origin(request)
        execution = await self.load(request.path_params["id"])
        principal = await self.check(request, "resolve", execution) or None
        step = request.path_params["step"]
        payload = await self.json_body(request)
        if _expired(execution, step):
            raise _Problem(410, "expired", "the interrupt's deadline passed")
        if request.query_params.get("strict", "").lower() in ("1", "true", "yes"):
            after = await execution.reactor.aresume(
                execution.id, payload, step=step, principal=principal
            )
        else:
            after = await execution.aresume(payload, step=step, principal=principal)
            if after.validation_errors:
                raise _Problem(
                    422,
                    "payload_invalid",
                    "the payload fails the interrupt's schema",
                    errors=after.validation_errors,
                    attempts_left=None,
                )
            if _expired(after, step):
                raise _Problem(410, "expired", "the interrupt's deadline passed")
        return JSONResponse(execution_document(after))

    async def api_cancel(self, request: Request) -> Response:
        self.same_origin(request)
        execution = await self.load(request.path_params["id"])
        principal = await self.check(request, "cancel", execution) or None
        body = await self.json_body(request)
        reason = body.get("reason") if isinstance(body, dict) else None
        if body is not None and not (isinstance(body, dict) and isinstance(reason, str | None)):
            raise _Problem(400, "bad_request", 'the body must be {"reason": "..."}')
        after = await execution.reactor.acancel(execution.id, reason=reason, principal=principal)
        return JSONResponse(execution_document(after))

    async def api_undo(self, request: Request) -> Response:
        self.same_origin(request)
        execution = await self.load(request.path_params["id"])
        principal = await self.check(request, "administer", execution) or None
        after = await execution.reactor.aundo(execution.id, principal=principal)
        return JSONResponse(execution_document(after))

    async def api_reactors(self, request: Request) -> Response:
        await self.check(request, "view", None)
        served = self.served()
        return JSONResponse({"reactors": [reactor_document(served[n]) for n in sorted(served)]})

    async def hook(self, request: Request) -> Response:
        cls = self.reactor_class(request.path_params["reactor"])
        body = await request.body()
        secret = getattr(cls, "webhook_secret", None) or self.secret
        if secret:
            verdict = verify_webhook(secret, request.headers.get(SIGNATURE_HEADER), body)
            if verdict == "missing":
                raise _Problem(401, "unauthorized", f"the {SIGNATURE_HEADER} header is missing")
            if verdict == "stale":
                raise _Problem(403, "forbidden", "the signature is outside the 5-minute window")
            if verdict != "ok":
                raise _Problem(403, "forbidden", "the signature does not match")
        else:
            await self.check(request, "resolve", None)
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise _Problem(400, "bad_request", f"the body is not JSON: {exc}") from None
        except RecursionError:
            raise _Problem(400, "bad_request", "the body is nested too deeply") from None
        after = await cls.aresume_by_correlation_id(request.path_params["correlation_id"], payload)
        if not after.id:
            return JSONResponse({"status": "accepted", "early": True}, status_code=202)
        return JSONResponse({"execution_id": after.id, "status": after.status.value})


_Endpoint = Callable[[Request], Awaitable[Response]]


async def _answer(endpoint: _Endpoint, request: Request) -> Response | _Problem:
    """The endpoint's response, or the refusal it raised (a ``ReactorError`` translated)."""
    try:
        return await endpoint(request)
    except ReactorError as exc:
        return _problem(exc)
    except _Problem as exc:
        return exc


def _as_json(endpoint: _Endpoint) -> _Endpoint:
    """Refusals answered as ``{"error": code, "message": ..., ...}`` with their status."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        problem = await _answer(endpoint, request)
        if isinstance(problem, Response):
            return problem
        return JSONResponse(
            {"error": problem.code, "message": problem.message, **jsonable(problem.extra)},
            status_code=problem.status,
        )

    return wrapped


def _as_page(web: _Web, endpoint: _Endpoint) -> _Endpoint:
    """Refusals answered as a page saying why, with their status."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        problem = await _answer(endpoint, request)
        if isinstance(problem, Response):
            return problem
        headings = {
            401: "Please sign in",
            403: "Not allowed",
            404: "Not found",
            409: "Already decided",
            410: "Expired",
        }
        return web.render(
            request,
            "message.html",
            problem.status,
            title=headings.get(problem.status, "Refused"),
            heading=headings.get(problem.status, "Refused"),
            message=problem.message,
        )

    return wrapped


def create_app(
    *,
    authorize: Authorize | None = None,
    secret: str | bytes | None = None,
    reactors: Iterable[type[Reactor]] | None = None,
    dev: bool = False,
    storage: Storage | None = None,
) -> Starlette:
    """The web app: JSON API, webhook ingress and the interrupt inbox, as one ASGI app.

    Mount it into FastAPI or Starlette (``app.mount("/reactor", create_app(...))``) or
    run it with ``reactor serve``.

    Example::

        def authorize(request, action, execution):
            user = request.session.get("user")          # your login
            if action == "view" or user in MANAGERS:
                return user
            return None                                 # 403

        app.mount("/reactor", create_app(authorize=authorize, secret=SECRET))

    Args:
        authorize: ``authorize(request, action, execution)``, sync or async, with
            ``action`` one of ``"view"``, ``"resolve"``, ``"cancel"``, ``"administer"``
            (undo) and ``execution`` the :class:`~reactor.Execution` concerned, or
            ``None`` for listings (whose items are then checked one by one). It returns
            the principal (who acts, a string) or ``None`` to refuse (403). Without it
            every request is refused (401) unless ``dev`` is true.
        secret: Signs resume links (:func:`reactor.web.resume_link`) and checks webhook
            signatures of reactors without a ``webhook_secret`` class attribute.
        reactors: The reactor classes served (default: every imported one). Executions
            of other reactors are not shown, and no code is ever imported because of a
            name found in storage.
        dev: Allow everything to requests from localhost without ``authorize``
            (``reactor serve --dev``). Never for production.
        storage: Where executions are listed from (default: the configured storage,
            which must be the one the reactors use).

    Returns:
        A Starlette application.
    """
    web = _Web(authorize=authorize, secret=secret, reactors=reactors, dev=dev, storage=storage)

    def page(path: str, endpoint: _Endpoint, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, _as_page(web, endpoint), methods=list(methods))

    def api(path: str, endpoint: _Endpoint, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, _as_json(endpoint), methods=list(methods))

    routes: list[BaseRoute] = [
        page("/", web.inbox),
        page("/executions/{id}", web.execution_page),
        page("/executions/{id}/interrupts/{step}", web.resolve_page, ("POST",)),
        page("/executions/{id}/cancel", web.cancel_page, ("POST",)),
        page("/executions/{id}/undo", web.undo_page, ("POST",)),
        page("/link/{token}", web.link_page, ("GET", "POST")),
        api("/api/interrupts", web.api_interrupts),
        api("/api/executions", web.api_executions),
        api("/api/executions/{id}", web.api_execution),
        api("/api/executions/{id}/interrupts/{step}", web.api_resume, ("POST",)),
        api("/api/executions/{id}/cancel", web.api_cancel, ("POST",)),
        api("/api/executions/{id}/undo", web.api_undo, ("POST",)),
        api("/api/reactors", web.api_reactors),
        api("/hooks/{reactor}/{correlation_id:path}", web.hook, ("POST",)),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes)
