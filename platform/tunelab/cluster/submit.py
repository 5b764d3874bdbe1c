"""Ship a study to a Ray cluster as a job that runs `tunelab run` there."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tunelab.cluster.connection import cluster_errors, jobs_client
from tunelab.errors import BadInputError
from tunelab.spec import Spec


def job_entrypoint(spec_file: str, storage: str, name: str, python: str) -> str:
    return shlex.join([python, "-m", "tunelab.cli", "run", spec_file, "--storage", storage, "--name", name])


def code_modules() -> list[str]:
    """The local `tunelab` and `tunelab_models` packages, uploaded so the cluster runs this code."""
    import tunelab
    import tunelab_models

    return [str(Path(tunelab.__file__).parent), str(Path(tunelab_models.__file__).parent)]


def submit_study(
    spec_path: Path,
    spec: Spec,
    address: str | None,
    storage: str,
    name: str | None = None,
    ship_code: bool = True,
    python: str = "python",
) -> tuple[str, str]:
    """Submit the study; return (job id, the address it went to)."""
    if not storage.startswith("/"):
        raise BadInputError(f"--storage {storage}: expected an absolute path that every node of the cluster can reach")
    study_name = name or spec.name
    client = jobs_client(address)
    with tempfile.TemporaryDirectory(prefix="tunelab-submit-") as staging:
        # Only the experiment file travels as the working directory, not the caller's folder.
        shutil.copy(spec_path, Path(staging) / spec_path.name)
        runtime_env: dict[str, Any] = {"working_dir": staging}
        if ship_code:
            runtime_env["py_modules"] = code_modules()
        with cluster_errors(client.get_address()):
            job_id = client.submit_job(
                entrypoint=job_entrypoint(spec_path.name, storage, study_name, python),
                runtime_env=runtime_env,
                metadata={"tunelab_study": study_name},
                submission_id=None,
            )
    return job_id, client.get_address()
