"""Settings of the API service, from the environment (prefix MARSHRUT_)."""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Each role may do what the ones before it may: a viewer reads, a planner also creates, changes and
# deletes, an admin also manages keys, reads the audit and sees every tenant.
ROLES = ("viewer", "planner", "admin")
DEFAULT_TENANT = "default"
TENANT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"


def parse_key_item(item: str) -> tuple[str, str, str]:
    """`key:role:tenant` or `key:role` (tenant `default`) -> (key, role, tenant); ValueError otherwise."""
    import re

    parts = item.strip().split(":")
    if len(parts) >= 3 and parts[-2] in ROLES and re.fullmatch(TENANT_PATTERN, parts[-1]):
        key, role, tenant = ":".join(parts[:-2]), parts[-2], parts[-1]
    elif len(parts) >= 2 and parts[-1] in ROLES:
        key, role, tenant = ":".join(parts[:-1]), parts[-1], DEFAULT_TENANT
    else:
        raise ValueError(f"MARSHRUT_API_KEYS: each item must be key:role or key:role:tenant (role viewer, "
                         f"planner or admin), got {item.strip()[:3]}…")
    if not key:
        raise ValueError("MARSHRUT_API_KEYS: an item has an empty key")
    return key, role, tenant


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; anything else (0.0.0.0 included) is exposed."""
    if not host:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARSHRUT_", extra="ignore")

    database_url: str = Field("sqlite:///./marshrut.sqlite",
                              description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db")
    host: str = Field("127.0.0.1", description="address the server is bound to (set by `marshrut serve`)")
    api_keys: str = Field("", description="comma-separated `key:role` (tenant `default`) or `key:role:tenant`; "
                                          "role viewer, planner or admin. Keys made by `marshrut keys create` "
                                          "live in the database instead")
    require_api_keys: bool = Field(False, description="require keys even on a loopback address")
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1, description="largest accepted bundle upload")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1, description="largest accepted JSON request body")
    max_concurrent_solves: int = Field(max(1, (os.cpu_count() or 2) // 2), ge=1, le=256,
                                       description="solver processes running at a time (per server process)")
    max_time_limit_s: float = Field(3600, gt=0, description="largest time_limit_s a plan may ask for")
    solver_nice: int = Field(5, ge=0, le=19, description="niceness of solver processes: the API stays responsive")
    lease_seconds: float = Field(30, gt=0, description="a running plan whose server stopped heartbeating this long "
                                                       "is taken over by another server process")
    max_attempts: int = Field(3, ge=1, description="times a plan is started before it is declared failed")
    poll_seconds: float = Field(0.2, gt=0, description="how often the dispatcher looks at the queue")
    max_jobs_per_tenant: int = Field(4, ge=1, le=10_000, description="queued + running jobs (plans, re-plans, "
                                                                      "sweeps) a tenant may have at a time")
    rate_per_second: float = Field(20.0, gt=0, description="requests per second a key (or, without a key, an "
                                                           "address) may make on average")
    rate_burst: int = Field(60, ge=1, description="requests a key may make at once before its rate applies")
    ray_address: str | None = Field(None, description="a Ray cluster (`host:port` of its head, as ray.init takes "
                                                      "it) to solve nations' regions on; unset: in the solver process")

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: str) -> str:
        for item in filter(None, (p.strip() for p in value.split(","))):
            parse_key_item(item)
        return value

    @cached_property
    def keys(self) -> dict[str, tuple[str, str]]:
        """API key -> (role, tenant), from MARSHRUT_API_KEYS."""
        items = (parse_key_item(p) for p in self.api_keys.split(",") if p.strip())
        return {key: (role, tenant) for key, role, tenant in items}

    @property
    def keys_required(self) -> bool:
        return self.require_api_keys or not is_loopback(self.host)

    def check(self) -> None:
        """Refuses a server that would be reachable from outside without keys."""
        if self.keys_required and not self.keys:
            raise ValueError(f"the server is bound to {self.host} (not loopback) or MARSHRUT_REQUIRE_API_KEYS is set, "
                             "but MARSHRUT_API_KEYS is empty: set at least a first admin, `key:admin`, and make "
                             "the other keys with `marshrut keys create`")
