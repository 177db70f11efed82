"""Integration with a regional registry of personalised funding of teachers' further training.

- `models`: the exchange (programs, sessions, vouchers, enrolment orders), docs/registry.md.
- `importer`: a registry export (JSON, CSV, URL) merged into a bundle folder.
- `orders`: a plan's enrolment orders, ids derived from plan, teacher and session.
- `client`: the push (idempotent, retried, resumable, voucher-guarded), status and reconciliation.
- `ledger`: every order and answer in the database.
- `cli`: `registry_app`, the `marshrut registry ...` commands.
"""

from .client import PushOptions, PushResult, RegistryClient, StatusReport, plan_status, push_orders, reconcile
from .importer import ExportError, ImportReport, LoadedExport, Mapping, import_export, read_export, read_mapping
from .ledger import Ledger
from .models import Export, Order, OrderRequest, Place, Program, Session, Voucher
from .orders import PlanOrders, build_orders, bundle_tables, order_id, plan_key_of, read_plan_folder

__all__ = [
    "Export", "ExportError", "ImportReport", "Ledger", "LoadedExport", "Mapping", "Order", "OrderRequest", "Place",
    "PlanOrders", "Program", "PushOptions", "PushResult", "RegistryClient", "Session", "StatusReport", "Voucher",
    "build_orders", "bundle_tables", "import_export", "order_id", "plan_key_of", "plan_status", "push_orders",
    "read_export", "read_mapping", "read_plan_folder", "reconcile",
]
