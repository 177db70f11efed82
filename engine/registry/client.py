"""Pushing a plan's enrolment orders to a registry, and reconciling with it (docs/registry.md).

    orders = build_orders(plan_key, plan_ref, assignments, bundle_tables(bundle))
    with Ledger(database_url) as ledger:
        result = push_orders(ledger, "https://registry.example/api", orders, PushOptions(api_key=...))
        report = plan_status(ledger, orders.plan_key)

Every order is recorded in the ledger before it is sent and every answer after it arrives, so a
push that dies at any point resumes where it stopped: orders whose outcome is unknown are sent
again with the same id and `Idempotency-Key` (the registry answers a replay with the order it
already has). Orders the registry answered `pending` are asked about with `GET /v1/orders/{id}`
until they settle (for `pending_wait_s`, then by the next push); a push that ends with orders
still pending says so (outcome `pending`). Timeouts, connection errors, 5xx, 408, 425 and 429 are
retried with exponential backoff and jitter (`Retry-After` honoured, in seconds or as an HTTP
date, up to `retry_after_cap_s`); any other 4xx stops the push with the registry's reason and
marks that one order `error`. Before an order leaves, the voucher guard checks that this plan's
accepted and possibly-accepted orders on the certificate plus this one stay within the voucher
the plan was made on; the registry, which keeps the real balance, has the last word.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import BaseModel, Field, ValidationError

from .ledger import FINAL, IN_FLIGHT, TO_PROCESS, Ledger, owner_tag, status_counts
from .models import ORDER_STATUSES, Order, OrderRequest
from .orders import PlanOrders

USER_AGENT = "marshrut-registry-client/1"
# Answers that mean "not now": retried with backoff. 425: the same Idempotency-Key is still being
# processed by the registry (docs/registry.md, "Idempotency").
RETRY_STATUSES = (408, 425, 429)
# Answers that carry the order: new (201), replay (200), pending (202), rejected (422).
ORDER_ANSWERS = (200, 201, 202, 422)
# The registry's order fields and the ledger's columns they are compared with (reconciliation).
ORDER_FIELDS = {"status": "status", "reason_code": "reason_code", "reason": "reason", "amount_rub": "amount_rub",
                "certificate_id": "certificate_id", "teacher_id": "teacher_id", "session_id": "registry_session_id",
                "program_id": "program_id", "balance_after_rub": "balance_after_rub"}

TEXT_LIMITS = {"reason_code": 64, "reason": 2000}


@dataclass
class PushOptions:
    api_key: str | None = None
    timeout_s: float = 10.0  # per request
    max_attempts: int = 8  # per order and push, before the push stops as "registry unavailable"
    backoff_s: float = 0.5  # first retry delay; doubles each attempt, with jitter
    backoff_cap_s: float = 30.0
    retry_after_cap_s: float = 120.0  # a longer Retry-After stops the push (unavailable) instead of waiting
    lease_s: float = 60.0  # a pusher silent this long has lost the plan to the next one
    concurrency: int = 4  # certificates sent in parallel (one certificate's orders are always sequential)
    pending_wait_s: float = 30.0  # how long a push keeps asking about pending orders before it ends `pending`
    poll_s: float = 1.0  # first pause between two asks about pending orders; doubles up to backoff_cap_s


class PushResult(BaseModel):
    plan_key: str
    outcome: Literal["completed", "pending", "stopped", "busy"] = Field(
        description="completed: every order has a final answer or is blocked; pending: every order was sent but "
                    "some are still undecided by the registry (run again later: it asks about them); stopped: a "
                    "4xx, the registry unavailable or interrupted (run again to resume); busy: another push of the "
                    "plan is running")
    reason: str | None = None
    orders: int = 0
    pending: int = Field(0, description="orders the registry has not decided yet")
    counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="state -> orders, amount_rub")
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0


class _Stop(Exception):
    """The push must stop: the registry refused a request (4xx) or answered nonsense."""


class _Unavailable(Exception):
    """Retries exhausted on one order, or the registry asked to wait longer than we do."""


class _Interrupted(Exception):
    pass


class RegistryClient:
    """The HTTP side: the few calls marshrut makes (docs/registry-openapi.yaml)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport,
                                 limits=httpx.Limits(max_keepalive_connections=4))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send_order(self, body: OrderRequest) -> httpx.Response:
        return self.http.post("/v1/orders", json=body.model_dump(), headers={"Idempotency-Key": body.order_id})

    def ask_order(self, order_id: str) -> httpx.Response:
        return self.http.get(f"/v1/orders/{order_id}")

    def get_order(self, order_id: str) -> Order | None:
        response = self.ask_order(order_id)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return Order.model_validate(response.json())

    def list_orders(self, external_ref: str, page_size: int = 1000) -> list[Order]:
        found, cursor = [], None
        while True:
            params = {"external_ref": external_ref, "limit": page_size}
            if cursor:
                params["after"] = cursor
            response = self.http.get("/v1/orders", params=params)
            response.raise_for_status()
            page = response.json()
            items = [Order.model_validate(item) for item in page.get("items", [])]
            found += items
            cursor = page.get("next")
            if not cursor or not items:
                return found


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        for key in ("reason", "detail", "message", "error"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else str(value)[:500]
    return str(body)[:500]


def _answer(response: httpx.Response, order_id: str) -> Order | None:
    """The order in the answer, if the answer is about this order."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("order_id") != order_id or body.get("status") not in ORDER_STATUSES:
        return None
    try:
        return Order.model_validate(body)
    except ValidationError:
        return None


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds (`120`) or an HTTP date
    (`Wed, 21 Oct 2026 07:28:00 GMT`, RFC 9110 §10.2.3); None if absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class _Pusher:
    """Orders of one certificate are sent one after another (the voucher guard needs that);
    different certificates go in parallel on `concurrency` threads. Then the orders the registry
    left pending are asked about until they settle or `pending_wait_s` passes."""

    def __init__(self, ledger: Ledger, client: RegistryClient, plan: PlanOrders, options: PushOptions,
                 owner: str, stop: threading.Event | None, on_progress: Callable[[dict], None] | None) -> None:
        self.ledger, self.client, self.plan, self.options = ledger, client, plan, options
        self.owner, self.on_progress = owner, on_progress
        self.halt = stop if stop is not None else threading.Event()
        self.error: Exception | None = None
        self.refused = False  # a 4xx already stopped this push: later ones in flight mark nothing
        self.requests = self.retries = self.done = 0
        self.lock = threading.Lock()
        self.rng = random.Random()

    def run(self) -> int:
        """Sends and asks; returns how many orders are still pending."""
        plan = self.plan
        rows = self.ledger.plan_orders(plan.plan_key)
        self.committed: dict[str, int] = defaultdict(int)
        for row in rows:
            if row["status"] in IN_FLIGHT + ("accepted",) and row["certificate_id"]:
                self.committed[row["certificate_id"]] += int(row["amount_rub"])
        self.elsewhere = self.ledger.active_elsewhere(plan.plan_key)
        queue = sorted((r for r in rows if r["status"] in TO_PROCESS),
                       key=lambda r: (r["status"] not in IN_FLIGHT, r["teacher_id"], r["registry_session_id"]))
        self.queued = len(queue)
        self._parallel(queue, self._process)
        return self._settle()

    def _parallel(self, rows: list[dict], work: Callable[[dict], None]) -> None:
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(row["certificate_id"] or f"none:{row['order_id']}", []).append(row)
        workers = max(1, min(self.options.concurrency, len(groups)))
        lanes: list[list[list[dict]]] = [[] for _ in range(workers)]
        for i, group in enumerate(groups.values()):
            lanes[i % workers].append(group)
        if workers == 1:
            self._lane(lanes[0], work)
        else:
            threads = [threading.Thread(target=self._lane, args=(lane, work), daemon=True) for lane in lanes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if self.error is not None:
            raise self.error
        if self.halt.is_set():
            raise _Interrupted("остановлено (interrupted)")

    def _settle(self) -> int:
        """Asks the registry about the plan's pending orders (GET /v1/orders/{id}), pausing
        `poll_s` (doubling) between rounds, until none is left or `pending_wait_s` has passed."""
        deadline = time.monotonic() + self.options.pending_wait_s
        pause = max(self.options.poll_s, 0.01)
        while True:
            pending = [r for r in self.ledger.plan_orders(self.plan.plan_key) if r["status"] == "pending"]
            if not pending or time.monotonic() + pause > deadline:
                return len(pending)
            if self.halt.wait(pause):
                raise _Interrupted("остановлено (interrupted)")
            pause = min(pause * 2, max(self.options.backoff_cap_s, self.options.poll_s))
            self.ledger.heartbeat(self.plan.plan_key, self.owner)
            self._parallel(pending, self._ask_pending)

    def _lane(self, groups: list[list[dict]], work: Callable[[dict], None]) -> None:
        try:
            for group in groups:
                for row in group:
                    if self.halt.is_set():
                        return
                    work(row)
        except (_Stop, _Unavailable, _Interrupted) as error:
            with self.lock:
                if self.error is None and not isinstance(error, _Interrupted):
                    self.error = error
            self.halt.set()
        except BaseException as error:  # a bug or the database: stop everything, report it
            with self.lock:
                if self.error is None:
                    self.error = error
            self.halt.set()

    def _process(self, row: dict) -> None:
        certificate, amount = row["certificate_id"], int(row["amount_rub"])
        committed = self.committed
        if row["status"] == "pending":  # the registry has it: ask, never send it again
            if self._ask_pending(row) not in IN_FLIGHT + ("accepted",):
                committed[certificate] -= amount
            self._progress()
            return
        if row["status"] not in IN_FLIGHT:
            block = self._guard(row, committed, self.elsewhere)
            if block is not None:
                if (row["status"], row["reason_code"], row["reason"]) != ("blocked", *block):
                    self.ledger.record(row["order_id"], self.plan.plan_key, outcome="blocked", status="blocked",
                                       reason_code=block[0], reason=block[1], detail=block[1])
                return
            committed[certificate] += amount
        try:
            status = self._send(row)
        except (_Stop, _Interrupted):
            if row["status"] not in IN_FLIGHT and self.ledger.order(row["order_id"])["status"] not in IN_FLIGHT:
                committed[certificate] -= amount  # the registry refused the request: not debited
            raise
        if status not in IN_FLIGHT + ("accepted",):
            committed[certificate] -= amount
        self._progress()

    def _progress(self) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        if self.on_progress is not None and done % 100 == 0:
            self.on_progress({"processed": done, "queued": self.queued, "requests": self.requests})

    def _guard(self, row: dict, committed: dict[str, int], elsewhere: dict) -> tuple[str, str] | None:
        oid, certificate, amount = row["order_id"], row["certificate_id"], int(row["amount_rub"])
        if oid in self.plan.blocked:
            return self.plan.blocked[oid]
        if not certificate:
            return ("no_certificate", "у педагога нет сертификата")
        other = elsewhere.get((certificate, row["registry_session_id"]))
        if other:
            return ("already_ordered", f"на эту сессию по сертификату уже есть заявка {other}")
        balance = self.plan.balances.get(certificate, 0)
        if committed[certificate] + amount > balance:
            return ("voucher_exceeded", f"заявки плана превысили бы сертификат: {committed[certificate]} + {amount} "
                                        f"> {balance} руб.")
        return None

    def _count_request(self, attempt: int) -> None:
        with self.lock:
            self.requests += 1
            self.retries += attempt > 1

    def _body(self, row: dict) -> OrderRequest:
        return OrderRequest(order_id=row["order_id"], certificate_id=row["certificate_id"],
                            teacher_id=row["teacher_id"], session_id=row["registry_session_id"],
                            program_id=row["program_id"], amount_rub=int(row["amount_rub"]),
                            external_ref=self.plan.plan_key)

    def _take(self, body: OrderRequest, order: Order, response: httpx.Response, number: int, elapsed: int,
              *, outcome: str | None = None) -> str:
        """Records the registry's order as the answer (after checking it is about this order)."""
        key, plan_key = body.order_id, self.plan.plan_key
        # the money and the voucher make the order; a session the registry moved is reconciled later
        mismatch = [name for name, ours, theirs in (("amount_rub", body.amount_rub, order.amount_rub),
                                                    ("certificate_id", body.certificate_id, order.certificate_id))
                    if theirs is not None and theirs != ours]
        if mismatch:
            detail = f"реестр ответил о другой заявке ({', '.join(mismatch)} не совпадают)"
            self.ledger.record(key, plan_key, outcome="bad_answer", attempt=number, http_status=response.status_code,
                               detail=detail + f": {response.text[:500]}", elapsed_ms=elapsed)
            raise _Stop(f"{detail}: заявка {key}")
        self.ledger.record(key, plan_key, outcome=outcome or order.status, attempt=number,
                           http_status=response.status_code, detail=order.reason, elapsed_ms=elapsed,
                           status=order.status, reason_code=order.reason_code, reason=order.reason,
                           balance_after_rub=order.balance_after_rub)
        return order.status

    def _send(self, row: dict) -> str:
        body = self._body(row)
        key, plan_key = row["order_id"], self.plan.plan_key
        # whether an attempt may have reached the registry (then the order stays `sent`, never `new`)
        reached = row["status"] in IN_FLIGHT
        last = "нет ответа"
        for attempt in range(1, self.options.max_attempts + 1):
            if self.halt.is_set():
                raise _Interrupted("остановлено (interrupted)")
            self._count_request(attempt)
            number = self.ledger.mark_sent(key, self.client.base_url, plan_key, self.owner)
            started = time.perf_counter()
            try:
                response = self.client.send_order(body)
            except httpx.TransportError as error:  # timeouts included: the answer may yet have arrived
                reached = True
                last = self._transport_event(key, error, number, started)
                self._sleep(attempt)
                continue
            code = response.status_code
            elapsed = self._ms(started)
            order = _answer(response, key)
            if order is not None and code in ORDER_ANSWERS:
                return self._take(body, order, response, number, elapsed)
            if code == 409:
                found = self._look_up(body, response, number, elapsed)
                if found is not None:
                    return found
                reached = True
                last = f"HTTP 409: {_detail(response)}"
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if code >= 500 or code in RETRY_STATUSES or 200 <= code < 300:
                reached = reached or code >= 500 or 200 <= code < 300
                outcome = "bad_answer" if code < 300 else "server_error"
                last = f"HTTP {code}: {_detail(response)}"
                self.ledger.record(key, plan_key, outcome=outcome, attempt=number, http_status=code, detail=last,
                                   elapsed_ms=elapsed)
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            self._refused(row, response, number, elapsed, "sent" if reached else row["status"])
        raise _Unavailable(f"реестр недоступен: {self.options.max_attempts} попыток по заявке {key}, "
                           f"последняя: {last}")

    def _look_up(self, body: OrderRequest, response: httpx.Response, number: int, elapsed: int) -> str | None:
        """A 409 to `POST /v1/orders`: the key is either still being processed (some registries
        answer 409 to that, RFC draft "Idempotency-Key"), or taken by a different order. The
        registry's own order tells which: ours (same voucher, session, amount) is the answer;
        none yet means "still running" (None: retry); another one is a conflict (stop)."""
        key, plan_key = body.order_id, self.plan.plan_key
        detail = _detail(response)
        self.ledger.record(key, plan_key, outcome="conflict", attempt=number, http_status=409, detail=detail,
                           elapsed_ms=elapsed)
        theirs = self._fetch(key)
        if theirs is None:
            return None
        order, answer = theirs
        same = all(getattr(order, name) in (None, getattr(body, name))
                   for name in ("certificate_id", "teacher_id", "session_id", "amount_rub"))
        if same:
            return self._take(body, order, answer, number, elapsed, outcome=order.status)
        row = self.ledger.order(key)
        self._refused(row, response, number, elapsed, "sent")
        return None  # not reached: _refused raises

    def _fetch(self, key: str) -> tuple[Order, httpx.Response] | None:
        """`GET /v1/orders/{id}` with the same retries as a send; None if the registry does not have it."""
        last = "нет ответа"
        for attempt in range(1, self.options.max_attempts + 1):
            if self.halt.is_set():
                raise _Interrupted("остановлено (interrupted)")
            self._count_request(attempt)
            started = time.perf_counter()
            try:
                response = self.client.ask_order(key)
            except httpx.TransportError as error:
                last = self._transport_event(key, error, 0, started)
                self._sleep(attempt)
                continue
            code = response.status_code
            if code == 404:
                return None
            order = _answer(response, key)
            if code == 200 and order is not None:
                return order, response
            if code >= 500 or code in RETRY_STATUSES or 200 <= code < 300:
                last = f"HTTP {code}: {_detail(response)}"
                self.ledger.record(key, self.plan.plan_key, outcome="bad_answer" if code < 300 else "server_error",
                                   http_status=code, detail=f"GET: {last}", elapsed_ms=self._ms(started))
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            # the registry refused to show the order (401, 403...): stop; the order's state stays as it is
            reason = _detail(response)
            self.ledger.record(key, self.plan.plan_key, outcome="client_error", http_status=code,
                               detail=f"GET: {reason}", elapsed_ms=self._ms(started))
            with self.lock:
                first, self.refused = not self.refused, True
            if not first:
                raise _Interrupted("остановлено (interrupted)")
            raise _Stop(f"реестр отказал в запросе заявки (HTTP {code}): {reason}")
        raise _Unavailable(f"реестр недоступен: {self.options.max_attempts} попыток узнать состояние заявки {key}, "
                           f"последняя: {last}")

    def _ask_pending(self, row: dict) -> str:
        """A pending order: its current state from the registry; one it does not know is sent again."""
        key = row["order_id"]
        started = time.perf_counter()
        theirs = self._fetch(key)
        if theirs is None:
            self.ledger.record(key, self.plan.plan_key, outcome="not_found", http_status=404,
                               detail="GET: реестр не знает заявку; отправляем снова с тем же id")
            return self._send({**row, "status": "sent"})
        order, response = theirs
        if order.status == "pending" and row["status"] == "pending":
            return "pending"
        return self._take(self._body(row), order, response, 0, self._ms(started), outcome=order.status)

    def _refused(self, row: dict, response: httpx.Response, number: int, elapsed: int, previous: str) -> None:
        """A 4xx: the registry refused the request itself. The first one stops the push and marks
        its order `error`; answers to requests already in flight on other lanes are recorded as
        events and leave their orders as they were (`previous`)."""
        key, plan_key, code = row["order_id"], self.plan.plan_key, response.status_code
        reason = _detail(response)
        with self.lock:
            first, self.refused = not self.refused, True
        if not first:
            self.ledger.record(key, plan_key, outcome="client_error", attempt=number, http_status=code,
                               detail=f"{reason} (после остановки отправки / after the push stopped)",
                               elapsed_ms=elapsed, status=previous, reason_code=row["reason_code"],
                               reason=row["reason"])
            raise _Interrupted("остановлено (interrupted)")
        self.ledger.record(key, plan_key, outcome="client_error", attempt=number, http_status=code, detail=reason,
                           elapsed_ms=elapsed, status="error", reason_code=f"http_{code}", reason=reason)
        raise _Stop(f"реестр отказал в запросе (HTTP {code}): {reason}")

    def _transport_event(self, key: str, error: httpx.TransportError, number: int, started: float) -> str:
        timeout = isinstance(error, httpx.TimeoutException)
        last = f"timeout: {type(error).__name__}" if timeout else f"{type(error).__name__}: {error}"
        self.ledger.record(key, self.plan.plan_key, outcome="timeout" if timeout else "connection_error",
                           attempt=number, detail=last, elapsed_ms=self._ms(started))
        return last

    @staticmethod
    def _ms(started: float) -> int:
        return int((time.perf_counter() - started) * 1000)

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        if attempt >= self.options.max_attempts:
            return
        delay = min(self.options.backoff_cap_s, self.options.backoff_s * 2 ** (attempt - 1))
        with self.lock:
            delay *= 0.5 + self.rng.random() / 2
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            if asked > self.options.retry_after_cap_s:
                raise _Unavailable(f"реестр недоступен: просит повторить через {asked:.0f} с (Retry-After: "
                                   f"{retry_after}), дольше предела {self.options.retry_after_cap_s:.0f} с; "
                                   "запустите отправку позже")
            delay = max(delay, asked)
        if self.halt.wait(delay):
            raise _Interrupted("остановлено (interrupted)")


def push_orders(ledger: Ledger, registry_url: str, plan: PlanOrders, options: PushOptions | None = None, *,
                stop: threading.Event | None = None, on_progress: Callable[[dict], None] | None = None,
                transport: httpx.BaseTransport | None = None) -> PushResult:
    """Sends the plan's orders that have no final answer yet; see the module's docstring."""
    options = options or PushOptions()
    started = time.perf_counter()
    ledger.sync_orders(plan.plan_key, plan.plan_ref, plan.orders)
    owner = owner_tag()
    holder = ledger.claim(plan.plan_key, plan.plan_ref, owner, options.lease_s)
    if holder is not None:
        return PushResult(plan_key=plan.plan_key, outcome="busy", orders=len(plan.orders),
                          reason=f"план уже отправляется ({holder.get('owner')})",
                          counts=status_counts(ledger.plan_orders(plan.plan_key)))
    outcome, reason = "completed", None
    pusher = None
    try:
        with RegistryClient(registry_url, api_key=options.api_key, timeout_s=options.timeout_s,
                            transport=transport) as client:
            pusher = _Pusher(ledger, client, plan, options, owner, stop, on_progress)
            try:
                pending = pusher.run()
                if pending:
                    outcome = "pending"
                    reason = (f"заявок ещё на рассмотрении в реестре: {pending} (pending); запустите отправку "
                              "позже — она спросит реестр о них, не отправляя их снова")
            except (_Stop, _Unavailable, _Interrupted) as error:
                outcome, reason = "stopped", str(error)
    except BaseException as error:
        result = _result(ledger, plan, "stopped", f"{type(error).__name__}: {error}", pusher, started)
        ledger.release(plan.plan_key, owner, "failed", result.model_dump())
        raise
    result = _result(ledger, plan, outcome, reason, pusher, started)
    ledger.release(plan.plan_key, owner, outcome, result.model_dump())
    return result


def _result(ledger: Ledger, plan: PlanOrders, outcome: str, reason: str | None, pusher: _Pusher | None,
            started: float) -> PushResult:
    counts = status_counts(ledger.plan_orders(plan.plan_key))
    return PushResult(plan_key=plan.plan_key, outcome=outcome, reason=reason, orders=len(plan.orders),
                      pending=counts["pending"]["orders"], counts=counts,
                      requests=pusher.requests if pusher else 0, retries=pusher.retries if pusher else 0,
                      seconds=round(time.perf_counter() - started, 3))


# ------------------------------------------------------------------------------------------------
# status and reconciliation
# ------------------------------------------------------------------------------------------------

class ReasonGroup(BaseModel):
    orders: int = 0
    amount_rub: int = 0
    example: str | None = None


class StatusReport(BaseModel):
    plan_key: str
    planned: dict[str, int] = Field(description="orders and amount_rub of the plan")
    accepted: dict[str, int]
    rejected: dict[str, int]
    cancelled: dict[str, int]
    blocked: dict[str, int] = Field(description="refused locally, never sent")
    open: dict[str, int] = Field(description="no final answer yet (new, sent, pending, error): push again")
    rejected_reasons: dict[str, ReasonGroup] = Field(default_factory=dict)
    blocked_reasons: dict[str, ReasonGroup] = Field(default_factory=dict)
    error_reasons: dict[str, ReasonGroup] = Field(default_factory=dict)
    counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="every ledger state")
    push: dict | None = Field(None, description="the last (or running) push: state, started_at, result")
    reconciliation: dict | None = Field(None, description="with --check: differences from the registry's orders")
    not_accepted: list[dict] = Field(default_factory=list, description="the first orders not accepted, with reasons")


def _sum(rows: list[dict]) -> dict[str, int]:
    return {"orders": len(rows), "amount_rub": sum(int(r["amount_rub"]) for r in rows)}


def _reasons(rows: list[dict]) -> dict[str, ReasonGroup]:
    groups: dict[str, ReasonGroup] = {}
    for row in rows:
        group = groups.setdefault(row["reason_code"] or "unknown", ReasonGroup(example=row["reason"]))
        group.orders += 1
        group.amount_rub += int(row["amount_rub"])
    return dict(sorted(groups.items(), key=lambda item: -item[1].orders))


def plan_status(ledger: Ledger, plan_key: str, *, limit: int = 200) -> StatusReport:
    """Planned vs accepted vs rejected (by reason) vs blocked vs still open, from the ledger."""
    rows = ledger.plan_orders(plan_key)
    by = defaultdict(list)
    for row in rows:
        by[row["status"]].append(row)
    open_rows = by["new"] + by["sent"] + by["pending"] + by["error"]
    state = ledger.push_state(plan_key)
    if state is not None:
        state = {k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v) for k, v in state.items()}
    not_accepted = [{k: row[k] for k in ("order_id", "teacher_id", "session_id", "registry_session_id",
                                         "certificate_id", "amount_rub", "status", "reason_code", "reason")}
                    for row in rows if row["status"] != "accepted"][:limit]
    return StatusReport(plan_key=plan_key, planned=_sum(rows), accepted=_sum(by["accepted"]),
                        rejected=_sum(by["rejected"]), cancelled=_sum(by["cancelled"]), blocked=_sum(by["blocked"]),
                        open=_sum(open_rows), rejected_reasons=_reasons(by["rejected"]),
                        blocked_reasons=_reasons(by["blocked"]), error_reasons=_reasons(by["error"]),
                        counts=status_counts(rows), push=state, not_accepted=not_accepted)


def reconcile(ledger: Ledger, plan_key: str, registry_url: str, *, api_key: str | None = None,
              timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> dict:
    """Compares every field of every order of the plan with the registry's own orders
    (`GET /v1/orders?external_ref=`). The registry is authoritative: where a field differs
    (status, reason, session, amount, ... — see ORDER_FIELDS; a field the registry leaves out of
    its order is not compared), the ledger takes the registry's value, recorded as a `reconciled`
    event, and each difference is reported. `matches` says whether the two agreed before this
    check; `agree` whether they agree now (after adopting)."""
    with RegistryClient(registry_url, api_key=api_key, timeout_s=timeout_s, transport=transport) as client:
        remote = {order.order_id: order for order in client.list_orders(plan_key)}
    local = {row["order_id"]: row for row in ledger.plan_orders(plan_key)}
    differences, adopted, conflicts = [], [], []
    missing_in_registry, unknown_to_ledger, unsent = [], [], []
    for oid, row in local.items():
        theirs = remote.get(oid)
        if theirs is None:
            if row["status"] in FINAL + ("pending",):
                missing_in_registry.append(oid)
            elif row["status"] == "sent":
                unsent.append(oid)  # never reached the registry: the next push sends it
            continue
        changed = {}
        for name, column in ORDER_FIELDS.items():
            if name not in theirs.model_fields_set:
                continue
            value = getattr(theirs, name)
            if isinstance(value, str) and column in TEXT_LIMITS:  # the ledger keeps so much of it
                value = value[:TEXT_LIMITS[column]]
            if value != row[column]:
                differences.append({"order_id": oid, "field": name, "ledger": row[column], "registry": value})
                changed[column] = value
        if changed:
            detail = "; ".join(f"{k}: {row[k]!r} -> {v!r}" for k, v in changed.items())
            if ledger.adopt(oid, plan_key, changed, detail=detail):
                adopted.append({"order_id": oid, "ledger": row["status"], "registry": theirs.status,
                                "fields": sorted(changed)})
            else:  # e.g. moved to a session this plan already holds for the teacher: left for a person
                conflicts.append({"order_id": oid, "fields": sorted(changed)})
    for oid in remote:
        if oid not in local:
            unknown_to_ledger.append(oid)
    unresolved = missing_in_registry or unknown_to_ledger or unsent or conflicts
    return {"registry_orders": len(remote), "ledger_orders": len(local), "differences": differences,
            "adopted": adopted, "conflicts": conflicts, "missing_in_registry": missing_in_registry,
            "unknown_to_ledger": unknown_to_ledger, "sent_not_received": unsent,
            "matches": not (differences or unresolved), "agree": not unresolved}
