"""Ship a study to a Ray cluster as a job that runs `tunelab run` there."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tunelab.cluster.connection import cluster_errors, jobs_client
from tunelab.errors import BadInputError, SpecError
from tunelab.spec import Spec

# A data file (or folder) up to this size travels with the job; a larger one belongs on
# storage the cluster mounts: the Jobs API uploads through the head (Ray caps a package at
# 512 MiB) and every node would unpack its own copy.
MAX_SHIPPED_DATA_BYTES = 100 * 1024 * 1024
SHIPPED_DATA_FOLDER = "data"


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
    data_shared: bool = False,
) -> tuple[str, str]:
    """Submit the study; return (job id, the address it went to).

    The data set's files travel with the job when they are small, unless `data_shared` says
    they are on storage the cluster mounts at the same path."""
    if not storage.startswith("/"):
        raise BadInputError(f"--storage {storage}: expected an absolute path that every node of the cluster can reach")
    study_name = name or spec.name
    client = jobs_client(address)
    with tempfile.TemporaryDirectory(prefix="tunelab-submit-") as staging:
        # Only the experiment file (and small data) travels as the working directory, not the
        # caller's folder.
        stage_experiment(spec_path, spec, Path(staging), data_shared)
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


def stage_experiment(spec_path: Path, spec: Spec, staging: Path, data_shared: bool) -> None:
    """The experiment file in `staging`, with its data set's files beside it under `data/`
    (their paths rewritten to point there), or their absolute paths when `data_shared`."""
    from tunelab.datasets import get_dataset

    options = spec.dataset.options()
    files = {option: Path(str(options[option])) for option in get_dataset(spec.dataset.name).path_params if options.get(option)}
    if not files:
        shutil.copy(spec_path, staging / spec_path.name)
        return
    document = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    for option, source in files.items():
        if data_shared:
            document["dataset"][option] = str(source)
            continue
        size = _size(source)
        if size > MAX_SHIPPED_DATA_BYTES:
            raise SpecError(
                str(spec_path), f"dataset.{option}",
                f"{source} is {size / 2**20:.0f} MiB; data over {MAX_SHIPPED_DATA_BYTES // 2**20} MiB does not travel with "
                "the job: put it on storage every node of the cluster mounts and submit with --data-shared",
            )
        shipped = Path(SHIPPED_DATA_FOLDER) / option / source.name
        (staging / shipped).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, staging / shipped)
        else:
            shutil.copy(source, staging / shipped)
        document["dataset"][option] = str(shipped)
    (staging / spec_path.name).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return path.stat().st_size
