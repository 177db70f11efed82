"""Solving plans in worker processes: a bounded number at a time, progress and results in the database.

One dispatcher thread per server process claims queued plans from the database and runs each in
its own process (forked from a forkserver that has the engine imported, so a start costs
milliseconds). A process per plan, rather than a pool, because cancelling or timing out a solve
must stop it at once: CP-SAT does not return until its own limit, so the process is killed.

Nothing is lost or done twice across crashes:
- a plan is claimed by one atomic UPDATE (status queued -> running, attempt + 1, owner = this
  server); every later write of that solve is guarded by (attempt, owner, status = running), so a
  solve that lost its claim can never overwrite anything;
- the results (files, summary, status done) are written in one transaction;
- a running plan whose server died (its process is gone, or it stopped heartbeating for
  `lease_seconds`) is put back in the queue on start-up and while serving; after `max_attempts`
  starts it is declared failed instead of crashing servers for ever;
- a solver process whose server died notices that its parent is gone and exits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import multiprocessing
import os
import socket
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from .db import Nation, Plan, PlanFile, Region, dumps, utcnow
from .settings import Settings

log = logging.getLogger("marshrut.api.worker")

PLAN_FILES = ("assignments.csv", "routes.csv", "clusters.csv", "summary.json", "plan.xlsx", "explain.csv",
              "explain_totals.csv")
# time_limit_s is the planner's wall clock from the plan's acceptance (its created_at) to its files
# stored (docs/parameters.md): the solve gets what is left of it (engine.deadline). Past this a solver
# process is stuck and is stopped.
GRACE_FACTOR, GRACE_SECONDS = 2.0, 120.0
# Kept back from the solve for sending the files to the dispatcher and storing them in the database,
# as rows' worth of writing (engine.deadline): a fixed part and a part per teacher. Twice the rows
# measured with openpyxl's pace (1,000 + 0.5): the storing costs what it did, and XlsxWriter writes
# the pace sheet about twice as fast (median of 7 pairs, 2026-11-28 09:30 UTC, load 3.2-3.7).
STORE_FIXED_ROWS, STORE_ROWS_PER_TEACHER = 2000.0, 1.0
HEARTBEAT_SECONDS = 2.0
PROGRESS_WRITE_SECONDS = 0.5
RECOVERY_SECONDS = 5.0


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------------
# The solver process
# ------------------------------------------------------------------------------------------------

def _exit_with_parent() -> None:
    """A solver whose server was killed must not keep burning CPU nor write anywhere."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


REPLAN_FILES = PLAN_FILES + ("changes.csv", "replan.json")
SWEEP_FILES = ("sweep.csv", "sweep.png", "summary.json")


def _plan_files(region, params, job: dict, previous: bytes | None, send, deadline) -> dict[str, bytes]:
    from marshrut.engine import plan_region, write_plan

    # Storing the files in the database comes after the plan is written: kept back from the solve too.
    storing = STORE_FIXED_ROWS + STORE_ROWS_PER_TEACHER * len(region.teachers)
    files = plan_region(region, params, on_progress=send, deadline=deadline, extra_rows=storing)
    with tempfile.TemporaryDirectory(prefix="marshrut-plan-") as tmp:
        write_plan(files, tmp)
        return {name: (Path(tmp) / name).read_bytes() for name in PLAN_FILES}


def _replan_files(region, params, job: dict, previous: bytes | None, send, deadline) -> dict[str, bytes]:
    """A re-plan of the previous plan's assignments after the job's changes (a plan of its own)."""
    import csv
    import io

    from marshrut.engine.changes import apply_changes, changes_from_dict
    from marshrut.engine.params import AssignmentRef
    from marshrut.engine.plan import deficit_profiles
    from marshrut.engine.replan import replan, write_replan

    rows = csv.DictReader(io.StringIO(previous.decode("utf-8"), newline=""))
    refs = [AssignmentRef(teacher_id=r["teacher_id"], kind=r["kind"], resource_id=r["resource_id"]) for r in rows]
    changes = changes_from_dict(job["changes"])
    send(None, "replan")
    profiles = deficit_profiles(apply_changes(region, changes), params, random_state=params.seed)
    replanned = replan(region, refs, changes, params, keep_bonus=job["keep_bonus"], profiles=profiles.labels)
    with tempfile.TemporaryDirectory(prefix="marshrut-replan-") as tmp:
        write_replan(replanned, tmp, profiles=profiles, summary_extra={"previous_plan_id": job["previous_plan_id"]})
        return {name: (Path(tmp) / name).read_bytes() for name in REPLAN_FILES}


def _sweep_files(region, params, job: dict, previous: bytes | None, send, deadline) -> dict[str, bytes]:
    """What if budgets, vouchers or seats scale: the points in order of their factor, each from its
    neighbour's plan and prices, in this process, within the sweep's clock (from the job's acceptance)."""
    from marshrut.engine.sweep import sweep, sweep_plot

    factors = job["factors"]
    done = []

    def on_point(_row) -> None:
        done.append(1)
        send(None, f"sweep {len(done)}/{len(factors)}")

    send(None, f"sweep 0/{len(factors)}")
    started = time.monotonic() - deadline.elapsed()
    frame = sweep(region, params, job["what"], factors, on_point=on_point, started=started)
    with tempfile.TemporaryDirectory(prefix="marshrut-sweep-") as tmp:
        png = sweep_plot(frame, Path(tmp) / "sweep.png", title=job["what"]).read_bytes()
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    summary = {"kind": "sweep", "what": job["what"], "factors": factors, "points": rows}
    return {"sweep.csv": frame.to_csv(index=False, lineterminator="\n").encode("utf-8"), "sweep.png": png,
            "summary.json": json.dumps(summary, ensure_ascii=False, default=_finite).encode("utf-8")}


# A database value holds at most 1 GB (PostgreSQL's bytea, SQLite's default limit): a larger .zip
# fails the job with this reason rather than the store. About 40 kB a .docx, 45 kB a .pdf
# (krymsky-district): some 10,000 teachers with PDFs come near it.
MAX_DOCUMENTS_ZIP_BYTES = 900_000_000


def _check_storable(name: str, size: int, hint: str, title: str) -> None:
    if size > MAX_DOCUMENTS_ZIP_BYTES:
        from marshrut.engine.problems import InputError, Problem

        raise InputError([Problem(name, f"{size / 1e6:.0f} МБ: больше, чем хранит база (too large to store); "
                                        f"{hint}", "too_large")], title=title)


def _documents_files(region, params, job: dict, previous: bytes | None, send, deadline) -> dict[str, bytes]:
    """Every route document of the source plan (its assignments.csv is `previous`), a folder per
    school as `marshrut documents` writes them, as one .zip; PDFs beside them when the job asks."""
    import io
    import zipfile

    import pandas as pd

    from marshrut.engine.documents import write_documents
    from marshrut.engine.plan_view import plan_view

    if job["pdf"]:
        from marshrut.engine.office import require_soffice

        require_soffice()  # the job fails at once, saying why, rather than after writing every document
    assignments = pd.read_csv(io.BytesIO(previous), dtype=str, keep_default_na=False)
    view = plan_view(region, params, assignments)
    with tempfile.TemporaryDirectory(prefix="marshrut-documents-") as tmp:
        written = write_documents(view, tmp, pdf=job["pdf"],
                                  on_progress=lambda phase, done, total: send(None, f"{phase} {done}/{total}"))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # .docx and .pdf are compressed already
            for path in sorted(written.files + written.pdfs):
                archive.write(path, path.relative_to(tmp).as_posix())
    _check_storable("documents.zip", out.tell(), "скачайте документы по муниципалитетам (download them per "
                                                 "municipality)", "Документы региона не сохранены (the region's "
                                                                  "documents are too large)")
    summary = {"kind": "documents", "source_plan_id": job["source_plan_id"], "teachers": written.teachers,
               "schools": written.schools, "docx": len(written.files), "pdf": len(written.pdfs),
               "docx_seconds": round(written.seconds, 3), "pdf_seconds": round(written.pdf_seconds, 3)}
    return {"documents.zip": out.getvalue(), "summary.json": json.dumps(summary, ensure_ascii=False).encode("utf-8")}


def _nation_files(nation, params, job: dict, previous: bytes | None, send, deadline) -> dict[str, bytes]:
    """A nation's plan (SPEC §7): solved in this process, or on the Ray cluster the server is
    configured with (`ray_address`); the nation's folder as one .zip beside its summary.json."""
    import io
    import zipfile

    from marshrut.engine.deadline import write_pace
    from marshrut.engine.nation_plan import plan_nation

    teachers = sum(len(region.teachers) for region in nation.regions)
    storing = write_pace() * (STORE_FIXED_ROWS + STORE_ROWS_PER_TEACHER * teachers)  # zipping and storing
    regions = {rid: {"region_id": rid, "rounds": 0, "status": None} for rid in nation.region_ids}

    def on_progress(event) -> None:
        phase = event.phase
        if event.region_id in regions:  # "region priced (OPTIMAL)"
            regions[event.region_id].update(rounds=event.round + 1, status=phase.partition("(")[2].rstrip(")") or None)
            phase = f"{event.region_id}: {phase}"
        send({"elapsed": _finite(event.elapsed), "objective": _finite(event.objective), "bound": _finite(event.bound),
              "phase": f"round {event.round + 1}: {phase}" if event.phase != "done" else "writing",
              "round": event.round, "regions": list(regions.values())})

    address = job.get("ray_address") or None
    send(None, "round 1")
    with tempfile.TemporaryDirectory(prefix="marshrut-nation-plan-") as tmp:
        plan_nation(nation, params, tmp, address=address, distributed=address is not None,
                    deadline=time.perf_counter() + deadline.left() - storing, on_progress=on_progress)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(tmp).as_posix())
        summary = (Path(tmp) / "summary.json").read_bytes()
    _check_storable("nation.zip", out.tell(), "запросите план по частям страны (plan the nation in parts)",
                    "План страны не сохранён (the nation's plan is too large)")
    return {"summary.json": summary, "nation.zip": out.getvalue()}


JOBS = {"plan": _plan_files, "replan": _replan_files, "sweep": _sweep_files, "documents": _documents_files,
        "nation": _nation_files}
# jobs that start from another plan's assignments.csv: the job's key naming that plan
FROM_ASSIGNMENTS = {"replan": "previous_plan_id", "documents": "source_plan_id"}


def solve_in_child(conn: Connection, content: bytes, filename: str, params_json: str, nice: int,
                   kind: str = "plan", job_json: str | None = None, previous: bytes | None = None,
                   accepted_at: float | None = None) -> None:
    """Runs in the solver process: bundle bytes + params (+ what a re-plan or sweep needs) in,
    messages out through `conn`. `accepted_at` (epoch seconds): when the API accepted the job, where
    its time limit starts."""
    _exit_with_parent()
    try:
        os.nice(nice)
    except OSError:
        pass
    try:
        from marshrut.engine import InputError, load_upload, params_from_dict
        from marshrut.engine.deadline import Deadline, warm_up_in_background

        try:
            warm_up_in_background()  # the route search loads beside the bundle
            raw_params = json.loads(params_json)
            if kind == "nation":  # its pinned entries name regions: checked once the nation is read
                from marshrut.engine.nation import load_nation_upload, nation_params

                limit_s = params_from_dict({k: v for k, v in raw_params.items()
                                            if k not in ("pinned", "forbidden")}).time_limit_s
            else:
                params = params_from_dict(raw_params)
                limit_s = params.time_limit_s
            waited = 0.0 if accepted_at is None else time.time() - accepted_at
            deadline = Deadline.since(limit_s, waited)
            if kind == "nation":
                region = load_nation_upload(content, filename)
                params = nation_params(raw_params, region.region_ids)
            else:
                region = load_upload(content, filename)
            del content

            def send(progress, phase: str | None = None) -> None:
                if isinstance(progress, dict):  # a nation's, made by _nation_files
                    conn.send(("progress", progress))
                    return
                if progress is None:
                    conn.send(("progress", {"elapsed": None, "objective": None, "bound": None, "phase": phase}))
                    return
                conn.send(("progress", {"elapsed": _finite(progress.elapsed), "objective": _finite(progress.objective),
                                        "bound": _finite(progress.bound), "phase": str(progress.phase)}))

            blobs = JOBS[kind](region, params, json.loads(job_json or "{}"), previous, send, deadline)
            conn.send(("done", blobs))
        except InputError as error:
            conn.send(("failed", error.as_dict()))
        except (BrokenPipeError, EOFError, ConnectionResetError):
            os._exit(4)
        except Exception as error:  # a bug: the plan fails with a reason, the server goes on
            # the type and the innermost frame only: messages may quote data, and data may be personal
            frame = traceback.extract_tb(error.__traceback__)[-1:]
            where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
            log.error("solver error %s%s", type(error).__name__, where)
            conn.send(("failed", {"title": "Внутренняя ошибка решателя (internal solver error)",
                                  "total": 0, "shown": 0, "problems": [], "error": type(error).__name__}))
    except (BrokenPipeError, EOFError, ConnectionResetError):
        os._exit(4)
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# The dispatcher (a thread of the server process)
# ------------------------------------------------------------------------------------------------

@dataclass
class Job:
    plan_id: str
    attempt: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started: float
    deadline: float
    progress: dict | None = None
    progress_dirty: bool = False
    progress_written: float = 0.0
    outcome: tuple | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start_forkserver() -> None:
    """Starts the forkserver, which imports the engine once for every later solve. Called before
    the server imports the engine itself, so that on two cores both imports run side by side."""
    multiprocessing.set_forkserver_preload(["marshrut.engine", "marshrut.api.worker"])
    try:
        from multiprocessing import forkserver

        forkserver.ensure_running()
    except Exception as error:  # solves will start it on demand
        log.warning("forkserver: %s", type(error).__name__)


class Dispatcher:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.host = socket.gethostname()[:100]
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.jobs: dict[str, Job] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.context = multiprocessing.get_context("forkserver")
        self._last_heartbeat = self._last_recovery = self._last_poll = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self.thread = threading.Thread(target=self._run, daemon=True, name="marshrut-dispatcher")
        self.thread.start()

    def stop(self) -> None:
        """Graceful shutdown: running solves are stopped and go back to the queue, attempt not spent."""
        self.stopping.set()
        self.wake.set()
        if self.thread:
            self.thread.join(timeout=30)
        for job in list(self.jobs.values()):
            self._kill(job)
            with self.sessions.begin() as session:
                session.execute(update(Plan).where(*self._mine(job)).values(
                    status="queued", owner=None, heartbeat_at=None, attempt=job.attempt - 1))
        self.jobs.clear()

    def poke(self) -> None:
        self.wake.set()

    def _run(self) -> None:
        start_forkserver()  # normally running already (create_app); a no-op then
        poked = True
        while not self.stopping.is_set():
            try:
                self._tick(poked)
            except Exception as error:  # the database may be away for a moment; keep going
                log.warning("dispatcher: %s: %s", type(error).__name__, str(error)[:200])
                self.stopping.wait(1.0)
            conns = [job.conn for job in self.jobs.values()]
            if conns:  # wakes for a solver's message, or the poll interval
                wait(conns, timeout=self.settings.poll_seconds)
            else:
                self.wake.wait(self.settings.poll_seconds)
            poked = self.wake.is_set()
            self.wake.clear()

    def _tick(self, poked: bool) -> None:
        jobs = len(self.jobs)
        self._collect()
        now = time.monotonic()
        # solvers may report progress hundreds of times a second: look at the database at most
        # every poll interval, unless a request poked us or a solve just ended
        if not (poked or len(self.jobs) < jobs or now - self._last_poll >= self.settings.poll_seconds):
            return
        self._last_poll = now
        self._enforce()
        if now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._heartbeat()
            self._last_heartbeat = now
        if now - self._last_recovery >= RECOVERY_SECONDS:
            self.recover()
            self._last_recovery = now
        while not self.stopping.is_set() and self._claim():
            pass

    def _mine(self, job: Job) -> tuple:
        return (Plan.id == job.plan_id, Plan.attempt == job.attempt, Plan.owner == self.owner,
                Plan.status == "running")

    # -- claiming and starting -------------------------------------------------------------------
    def _claim(self) -> bool:
        with self.sessions.begin() as session:
            running = session.scalar(select(func.count()).select_from(Plan).where(Plan.status == "running"))
            if running >= self.settings.max_concurrent_solves:
                return False
            candidate = session.execute(select(Plan.id, Plan.attempt, Plan.params, Plan.region_id, Plan.nation_id,
                                               Plan.kind, Plan.job, Plan.created_at)
                                        .where(Plan.status == "queued").order_by(Plan.created_at, Plan.id)
                                        .limit(1)).first()
            if candidate is None:
                return False
            now = utcnow()
            claimed = session.execute(update(Plan).where(Plan.id == candidate.id, Plan.status == "queued").values(
                status="running", attempt=candidate.attempt + 1, owner=self.owner, heartbeat_at=now,
                started_at=now, progress=None, error=None)).rowcount
            if claimed != 1:
                return True  # another server took it: look again
            source = Nation if candidate.kind == "nation" else Region  # whose bundle the job reads
            region = session.execute(select(source.content, source.filename).where(
                source.id == (candidate.nation_id if candidate.kind == "nation" else candidate.region_id))).first()
            job = json.loads(candidate.job or "{}")
            previous = session.scalar(select(PlanFile.content).where(
                PlanFile.plan_id == job[FROM_ASSIGNMENTS[candidate.kind]], PlanFile.name == "assignments.csv")) \
                if candidate.kind in FROM_ASSIGNMENTS else None
        attempt = candidate.attempt + 1
        if region is None:  # deleted meanwhile
            title = "страна удалена (nation deleted)" if candidate.kind == "nation" else \
                "регион удалён (region deleted)"
            self._finish_failed(candidate.id, attempt, {"title": title, "total": 0, "shown": 0, "problems": []})
            return True
        if candidate.kind in FROM_ASSIGNMENTS and previous is None:
            self._finish_failed(candidate.id, attempt, {"title": "исходный план удалён (the job's plan was deleted)",
                                                        "total": 0, "shown": 0, "problems": []})
            return True
        params = json.loads(candidate.params)
        # a sweep solves once per factor
        limit = float(params.get("time_limit_s", 60)) * max(1, len(job.get("factors", ())))
        if candidate.kind == "documents":  # writing, not solving: the plan's time limit says nothing of it
            limit = self.settings.max_time_limit_s
        job_json = candidate.job
        if candidate.kind == "nation":  # the server's setting, not the request's: where the regions are solved
            job_json = dumps({**job, "ray_address": self.settings.ray_address})
        parent_conn, child_conn = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=solve_in_child, name=f"marshrut-plan-{candidate.id[:8]}", daemon=True,
            args=(child_conn, bytes(region.content), region.filename, candidate.params, self.settings.solver_nice,
                  candidate.kind, job_json, None if previous is None else bytes(previous),
                  candidate.created_at.replace(tzinfo=dt.UTC).timestamp()))
        try:
            process.start()
        except Exception as error:
            parent_conn.close()
            child_conn.close()
            self._release(candidate.id, attempt)
            raise RuntimeError(f"cannot start a solver process: {type(error).__name__}") from error
        child_conn.close()
        started = time.monotonic()
        self.jobs[candidate.id] = Job(candidate.id, attempt, process, parent_conn, started,
                                      started + limit * GRACE_FACTOR + GRACE_SECONDS)
        log.info("plan %s: running (attempt %d, pid %s)", candidate.id, attempt, process.pid)
        return True

    def _release(self, plan_id: str, attempt: int) -> None:
        with self.sessions.begin() as session:
            session.execute(update(Plan).where(Plan.id == plan_id, Plan.attempt == attempt, Plan.owner == self.owner,
                                               Plan.status == "running")
                            .values(status="queued", owner=None, heartbeat_at=None, attempt=attempt - 1))

    # -- messages from solver processes ----------------------------------------------------------
    @staticmethod
    def _drain(job: Job) -> bool:
        """Reads what the solver sent; True once its end of the pipe is closed."""
        try:
            while job.conn.poll():
                message = job.conn.recv()
                if message[0] == "progress":
                    job.progress, job.progress_dirty = message[1], True
                else:
                    job.outcome = message
        except (EOFError, OSError):
            return True
        return False

    def _collect(self) -> None:
        for job in list(self.jobs.values()):
            ended = self._drain(job)
            if not ended and job.outcome is None and not job.process.is_alive():
                ended = self._drain(job) or True  # it may have sent its result just before exiting
            if job.outcome is not None:
                self._finish(job)
            elif ended:
                self._forget(job)
                code = job.process.exitcode
                log.warning("plan %s: solver process ended without a result (exit code %s)", job.plan_id, code)
                self._finish_failed(job.plan_id, job.attempt, {
                    "title": f"Процесс решателя завершился без результата (solver process ended, exit code {code})",
                    "total": 0, "shown": 0, "problems": []})
            elif job.progress_dirty and time.monotonic() - job.progress_written >= PROGRESS_WRITE_SECONDS:
                with self.sessions.begin() as session:
                    session.execute(update(Plan).where(*self._mine(job)).values(progress=dumps(job.progress)))
                job.progress_dirty, job.progress_written = False, time.monotonic()

    def _finish(self, job: Job) -> None:
        self._forget(job)
        kind = job.outcome[0]
        if kind == "failed":
            self._finish_failed(job.plan_id, job.attempt, job.outcome[1], progress=job.progress)
            return
        blobs: dict[str, bytes] = job.outcome[1]
        summary_text = blobs["summary.json"].decode("utf-8")
        summary = json.loads(summary_text)
        progress = dict(job.progress or {})
        progress.update(objective=_finite(summary.get("objective")), bound=_finite(summary.get("bound")),
                        phase="done", elapsed=_finite(summary.get("solve_seconds")) or
                        round(time.monotonic() - job.started, 3))
        with self.sessions.begin() as session:
            done = session.execute(update(Plan).where(*self._mine(job)).values(
                status="done", summary=dumps(summary), finished_at=utcnow(), owner=None, heartbeat_at=None,
                progress=dumps(progress))).rowcount
            if done != 1:  # cancelled, deleted or taken over meanwhile: its results are not wanted
                session.rollback()
                return
            session.query(PlanFile).filter(PlanFile.plan_id == job.plan_id).delete()
            session.add_all(PlanFile(plan_id=job.plan_id, name=name, content=content)
                            for name, content in blobs.items())
        log.info("plan %s: done", job.plan_id)

    def _finish_failed(self, plan_id: str, attempt: int, error: dict, progress: dict | None = None) -> None:
        values = {"status": "failed", "error": dumps(error), "finished_at": utcnow(), "owner": None,
                  "heartbeat_at": None}
        if progress is not None:
            values["progress"] = dumps(progress)
        with self.sessions.begin() as session:
            session.execute(update(Plan).where(Plan.id == plan_id, Plan.attempt == attempt, Plan.owner == self.owner,
                                               Plan.status == "running").values(**values))
        log.info("plan %s: failed", plan_id)

    def _forget(self, job: Job) -> None:
        self.jobs.pop(job.plan_id, None)
        job.process.join(timeout=5)
        if job.process.is_alive():
            self._kill(job)
        job.conn.close()

    def _kill(self, job: Job) -> None:
        if job.process.is_alive():
            job.process.kill()
        job.process.join(timeout=10)
        if not job.conn.closed:
            job.conn.close()

    # -- cancellation, time limits, heartbeat, recovery ------------------------------------------
    def _enforce(self) -> None:
        if not self.jobs:
            return
        with self.sessions() as session:
            rows = dict(session.execute(select(Plan.id, Plan.status).where(Plan.id.in_(list(self.jobs)))).all())
        for plan_id, job in list(self.jobs.items()):
            if rows.get(plan_id) != "running":  # cancelled or deleted (or taken over)
                self.jobs.pop(plan_id, None)
                self._kill(job)
                log.info("plan %s: solver stopped (%s)", plan_id, rows.get(plan_id, "deleted"))
            elif time.monotonic() > job.deadline:
                self.jobs.pop(plan_id, None)
                self._kill(job)
                self._finish_failed(plan_id, job.attempt, {
                    "title": "Решение не уложилось в отведённое время (the solve overran its time limit)",
                    "total": 0, "shown": 0, "problems": []}, progress=job.progress)

    def _heartbeat(self) -> None:
        if not self.jobs:
            return
        with self.sessions.begin() as session:
            session.execute(update(Plan).where(Plan.owner == self.owner, Plan.status == "running")
                            .values(heartbeat_at=utcnow()))

    def _stale(self, owner: str | None, heartbeat) -> bool:
        if not owner:
            return True
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if host == self.host and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid() or not _pid_alive(pid):  # same pid, other token: this process restarted
                return True
        return heartbeat is None or (utcnow() - heartbeat).total_seconds() > self.settings.lease_seconds

    def recover(self) -> None:
        """Running plans of servers that are gone go back to the queue (or fail after max_attempts)."""
        with self.sessions() as session:
            rows = session.execute(select(Plan.id, Plan.attempt, Plan.owner, Plan.heartbeat_at)
                                   .where(Plan.status == "running", Plan.owner.is_distinct_from(self.owner))).all()
        for row in rows:
            if not self._stale(row.owner, row.heartbeat_at):
                continue
            guard = (Plan.id == row.id, Plan.attempt == row.attempt, Plan.status == "running",
                     Plan.owner == row.owner if row.owner is not None else Plan.owner.is_(None))
            if row.attempt >= self.settings.max_attempts:
                values = {"status": "failed", "owner": None, "heartbeat_at": None, "finished_at": utcnow(),
                          "error": dumps({"title": f"Решение прерывалось {row.attempt} раз (the solve was "
                                                   f"interrupted {row.attempt} times)", "total": 0, "shown": 0,
                                          "problems": []})}
            else:
                values = {"status": "queued", "owner": None, "heartbeat_at": None}
            with self.sessions.begin() as session:
                if session.execute(update(Plan).where(*guard).values(**values)).rowcount:
                    log.info("plan %s: taken back from a stopped server (%s)", row.id, values["status"])
