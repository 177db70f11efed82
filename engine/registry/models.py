"""The exchange with a personalised-funding registry of teachers' further training (docs/registry.md).

A registry export (JSON, or CSV files in a folder or a .zip) carries the catalogue of certified
programs, their sessions and the teachers' vouchers (personalised certificates). marshrut sends
back enrolment orders, one per program session of an approved plan, each debiting a voucher.
These pydantic models are the wire format of both directions; docs/registry-openapi.yaml
describes the same shapes.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

# Ids of the registry: printable, no surrounding blanks, bounded.
RegistryId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                              pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=r"^[^\x00-\x1f\x7f]*$")]
Roubles = Annotated[int, Field(ge=0, le=10**12)]

# Registry forms of study, in English or as the registries write them in Russian.
FORMS = {
    "online": "online", "distance": "online", "дистанционная": "online", "заочная": "online",
    "offline": "offline", "очная": "offline",
    "blended": "blended", "очно-заочная": "blended", "смешанная": "blended",
}
Form = Literal["online", "offline", "blended"]

ORDER_STATUSES = ("pending", "accepted", "rejected", "cancelled")
OrderStatus = Literal["pending", "accepted", "rejected", "cancelled"]
VoucherStatus = Literal["active", "suspended", "closed"]


def _form(value):
    if isinstance(value, str):
        key = value.strip().lower()
        return FORMS.get(key, key)
    return value


def _code(value):
    """A competency of a program: `"code"`, `"code:0.8"` or `{"code": ..., "weight": ...}`."""
    if isinstance(value, str):
        code, sep, weight = value.strip().rpartition(":")
        if sep and code:
            try:
                return {"code": code, "weight": float(weight)}
            except ValueError:
                pass
        return {"code": value.strip()}
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CompetencyRef(Strict):
    code: RegistryId = Field(description="competency code of the registry's own taxonomy")
    weight: float = Field(1.0, gt=0, le=1, description="how much of the competency the program develops")


class Program(Strict):
    """A certified program of the registry's catalogue."""

    registry_id: RegistryId
    provider: Text = ""
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000,
                                            pattern=r"^[^\x00-\x1f\x7f]+$")]
    hours: float = Field(ge=0, le=10_000)
    form: Annotated[Form, BeforeValidator(_form)]
    price_rub: Roubles
    competencies: list[Annotated[CompetencyRef, BeforeValidator(_code)]] = Field(default_factory=list)

    @field_validator("hours")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value:  # NaN
            raise ValueError("hours must be a number")
        return value


class Place(Strict):
    """Where an in-person session is held: a municipality code of the registry (OKTMO or the
    bundle's own municipality_id), with the name as a fallback for matching."""

    municipality_code: Text = ""
    municipality_name: Text = ""
    address: Text = ""


class Session(Strict):
    """A session (group, поток) of a program: dates, seats and place."""

    session_id: RegistryId
    program_id: RegistryId = Field(description="registry_id of the program")
    start: dt.date
    end: dt.date
    seats: int = Field(ge=0, le=10**6)
    place: Place | None = None


class Voucher(Strict):
    """A teacher's personalised certificate: nominal value and what is left of it."""

    certificate_id: RegistryId
    teacher_id: RegistryId
    nominal_rub: Roubles
    balance_rub: Roubles
    status: VoucherStatus = "active"


class Export(BaseModel):
    """A full export of the registry: the catalogue and the vouchers at `exported_at`."""

    model_config = ConfigDict(extra="ignore")

    registry: Text = ""
    exported_at: dt.datetime | None = None
    programs: list[Program] = Field(default_factory=list)
    sessions: list[Session] = Field(default_factory=list)
    vouchers: list[Voucher] = Field(default_factory=list)


class OrderRequest(BaseModel):
    """An enrolment order as marshrut sends it (`POST /v1/orders`, `Idempotency-Key: <order_id>`)."""

    order_id: str = Field(description="UUIDv5 of (plan, teacher, session): a retry is the same order")
    certificate_id: str
    teacher_id: str
    session_id: str = Field(description="registry id of the program session")
    program_id: str = Field(description="registry id of the program")
    amount_rub: int = Field(ge=0)
    external_ref: str = Field(description="the plan the order comes from (marshrut's plan key)")


class Order(BaseModel):
    """The registry's answer about an order."""

    model_config = ConfigDict(extra="ignore")

    order_id: str
    status: OrderStatus
    certificate_id: str | None = None
    teacher_id: str | None = None
    session_id: str | None = None
    program_id: str | None = None
    amount_rub: int | None = None
    external_ref: str | None = None
    reason_code: str | None = None
    reason: str | None = None
    balance_after_rub: int | None = None
