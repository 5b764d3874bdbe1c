"""Follow jobs on a Ray cluster: list, status, logs, stop."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Callable

from tunelab.cluster.connection import cluster_errors, jobs_client


def list_jobs(address: str | None) -> list[dict[str, Any]]:
    client = jobs_client(address)
    with cluster_errors(client.get_address()):
        jobs = client.list_jobs()
    rows = [
        {
            "job_id": job.submission_id or job.job_id,
            "status": str(job.status.value if hasattr(job.status, "value") else job.status),
            "study": (job.metadata or {}).get("tunelab_study", ""),
            "started": _time(job.start_time),
            "entrypoint": job.entrypoint,
        }
        for job in jobs
    ]
    return sorted(rows, key=lambda row: row["started"], reverse=True)


def job_status(address: str | None, job_id: str) -> dict[str, Any]:
    client = jobs_client(address)
    with cluster_errors(client.get_address()):
        info = client.get_job_info(job_id)
    return {
        "job_id": job_id,
        "status": str(info.status.value if hasattr(info.status, "value") else info.status),
        "message": info.message or "",
        "study": (info.metadata or {}).get("tunelab_study", ""),
        "started": _time(info.start_time),
        "ended": _time(info.end_time),
    }


def job_logs(address: str | None, job_id: str) -> str:
    client = jobs_client(address)
    with cluster_errors(client.get_address()):
        return client.get_job_logs(job_id)


def follow_logs(address: str | None, job_id: str, write: Callable[[str], None]) -> str:
    """Stream the job's logs until it ends; return its final status."""
    client = jobs_client(address)

    async def stream() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    with cluster_errors(client.get_address()):
        client.get_job_info(job_id)  # an unknown id fails here, before streaming
        asyncio.run(stream())
        status = client.get_job_status(job_id)
    return str(status.value if hasattr(status, "value") else status)


def stop_job(address: str | None, job_id: str) -> bool:
    client = jobs_client(address)
    with cluster_errors(client.get_address()):
        return bool(client.stop_job(job_id))


def _time(milliseconds: int | None) -> str:
    if not milliseconds:
        return ""
    return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
