"""Job progress and outcomes in the ``job_reports`` table: written by workers, read by bots."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete

from ingest.db import session_scope
from ingest.models import JobReport, utcnow
from ingest.refresh import RefreshOutcome

# This process, as job reports name the worker that ran a job.
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Report:
    done: int
    total: int | None
    outcome: dict[str, Any] | None


def write_report(
    engine: Engine,
    job_id: int,
    task: str,
    done: int = 0,
    total: int | None = None,
    outcome: dict[str, Any] | None = None,
) -> None:
    with session_scope(engine) as session:
        session.merge(
            JobReport(
                job_id=job_id,
                task=task,
                worker=WORKER_NAME,
                done=done,
                total=total,
                outcome=None if outcome is None else json.dumps(outcome, default=str),
                updated_at=utcnow(),
            )
        )


def read_reports(engine: Engine, job_ids: list[int]) -> dict[int, Report]:
    with session_scope(engine) as session:
        rows = session.query(JobReport).filter(JobReport.job_id.in_(job_ids)).all()
        return {
            row.job_id: Report(
                row.done, row.total, None if row.outcome is None else json.loads(row.outcome)
            )
            for row in rows
        }


def prune_reports(engine: Engine, older_than: timedelta) -> int:
    """Drop the reports of jobs that ended long ago (their commands have long been answered)."""
    with session_scope(engine) as session:
        result = session.execute(
            delete(JobReport).where(JobReport.updated_at < utcnow() - older_than)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def outcome_as_json(outcome: RefreshOutcome) -> dict[str, Any]:
    return asdict(outcome)


def outcome_from_json(data: dict[str, Any]) -> RefreshOutcome:
    fields = dict(data)
    when = fields.get("next_fetch_at")
    fields["next_fetch_at"] = datetime.fromisoformat(when) if when else None
    return RefreshOutcome(**fields)
