"""The KubeRay manifests and the image recipe in k8s/, checked by parsing them.

No cluster and no Docker engine: each test reads the files and checks one property that
KubeRay, Kubernetes or the image would otherwise only reveal at deploy time, and the ties
between the files and the project (pyproject pins, the CLI's commands, the experiment files).
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer.main
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import REPO
from tunelab.cli import app
from tunelab.spec import load_spec

K8S = REPO / "k8s"
EXPECTED_KINDS: dict[str, list[tuple[str, str]]] = {
    "storage.yaml": [("v1", "PersistentVolumeClaim")],
    "raycluster.yaml": [("ray.io/v1", "RayCluster")],
    "rayjob.yaml": [("ray.io/v1", "RayJob")],
    "dashboard.yaml": [("apps/v1", "Deployment"), ("v1", "Service")],
}
RESULTS_PATH = "/results"  # where every pod mounts the store; studies run with --storage there
GPU_GROUP = "gpu-workers"
GPU_RESOURCE = "nvidia.com/gpu"
MIN_RAY_FOR_TOKEN_AUTH = Version("2.52.0")  # KubeRay refuses authOptions.mode token below it
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SAMPLE_TIMESTAMP = "20260101-000000"  # stands in for the entrypoint's $(date +%Y%m%d-%H%M%S)
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|CREDENTIAL|API_KEY", re.IGNORECASE)


# --- reading the files -------------------------------------------------------------------


def documents(file_name: str) -> list[dict[str, Any]]:
    text = (K8S / file_name).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def resource(kind: str) -> dict[str, Any]:
    """The one manifest of this kind in k8s/."""
    found = [doc for name in EXPECTED_KINDS for doc in documents(name) if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in k8s/, found {len(found)}"
    return found[0]


CLUSTER_SPECS = ["RayCluster", "RayJob.rayClusterSpec"]


def ray_cluster_specs() -> dict[str, dict[str, Any]]:
    """The long-lived RayCluster's spec and the cluster the RayJob creates for itself."""
    specs = {
        "RayCluster": resource("RayCluster")["spec"],
        "RayJob.rayClusterSpec": resource("RayJob")["spec"]["rayClusterSpec"],
    }
    assert list(specs) == CLUSTER_SPECS
    return specs


def ray_pods(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Pod specs by group: 'head' and each worker group."""
    pods = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    pods.update({group["groupName"]: group["template"]["spec"] for group in cluster["workerGroupSpecs"]})
    return pods


def all_pods() -> dict[str, dict[str, Any]]:
    pods = {f"{where}/{group}": spec for where, cluster in ray_cluster_specs().items() for group, spec in ray_pods(cluster).items()}
    pods["Deployment/tunelab-dashboard"] = resource("Deployment")["spec"]["template"]["spec"]
    return pods


def worker_group(cluster: dict[str, Any], name: str) -> dict[str, Any]:
    groups = [group for group in cluster["workerGroupSpecs"] if group.get("groupName") == name]
    assert len(groups) == 1, f"expected one worker group {name!r}, found {len(groups)}"
    return groups[0]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement(name: str) -> Requirement:
    found = [Requirement(dep) for dep in pyproject()["project"]["dependencies"] if Requirement(dep).name == name]
    assert len(found) == 1, f"pyproject.toml should list {name} once"
    return found[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (K8S / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ARG" and "=" in arguments:
            name, _, default = arguments.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


def expand(text: str) -> str:
    """Substitute the Dockerfile's ARG defaults for ${NAME} and $NAME."""
    args = dockerfile_args()
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def dockerfile_runs() -> list[str]:
    return [expand(arguments) for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]


def dockerfile_copies() -> list[tuple[list[str], PurePosixPath]]:
    """(sources, absolute destination in the image) for each COPY, following WORKDIR."""
    workdir = PurePosixPath("/")
    copies: list[tuple[list[str], PurePosixPath]] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = workdir / expand(arguments)
        elif keyword == "COPY":
            tokens = [token for token in shlex.split(arguments) if not token.startswith("--")]
            copies.append((tokens[:-1], workdir / tokens[-1]))
    return copies


def image_path_of(source: str) -> PurePosixPath:
    """Where the image holds a folder of the repository (COPY <source> <dest>)."""
    found = [dest for sources, dest in dockerfile_copies() if source in (s.rstrip("/") for s in sources)]
    assert len(found) == 1, f"the Dockerfile should COPY {source} exactly once"
    return found[0]


def dockerfile_user() -> int:
    users = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "USER"]
    assert users, "the Dockerfile never leaves root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: use a numeric uid, so that runAsNonRoot can check it"
    return int(uid)


def setup_py_constants() -> dict[str, Any]:
    """setup.py's literal module constants (`A = ...` and `A, B = ..., ...`), read without running it."""
    constants: dict[str, Any] = {}
    for node in ast.parse((REPO / "setup.py").read_text()).body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(target, ast.Name):
                constants[target.id] = value
            elif isinstance(target, ast.Tuple):
                names = [element.id for element in target.elts if isinstance(element, ast.Name)]
                constants.update(zip(names, value))
    return constants


def cli_commands() -> dict[str, Any]:
    """`tunelab`'s sub-commands (click commands from typer's own click), as the console script sees them."""
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", None)
    assert isinstance(commands, dict), "tunelab.cli.app should be a group of sub-commands"
    return dict(commands)


def entrypoint_tokens() -> list[str]:
    """The RayJob entrypoint as the shell will split it, with a fixed timestamp."""
    entrypoint = resource("RayJob")["spec"]["entrypoint"]
    return shlex.split(re.sub(r"\$\(date [^)]*\)", SAMPLE_TIMESTAMP, entrypoint))


def parsed_cli(tokens: list[str]) -> tuple[str, dict[str, Any]]:
    """(sub-command, parameters) for `tunelab SUB ARGS...`, parsed by the real CLI without running it."""
    assert tokens[:1] == ["tunelab"], f"expected a `tunelab` command, got {tokens}"
    commands = cli_commands()
    sub = tokens[1]
    assert sub in commands, f"`tunelab {sub}` is not a command of tunelab.cli.app ({', '.join(sorted(commands))})"
    context = commands[sub].make_context(sub, list(tokens[2:]))  # a usage error raises here
    return sub, context.params


def mount_of(pod: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volumeMount, volume) of the Ray/dashboard container's mount at `path`."""
    container = pod["containers"][0]
    mounts = [mount for mount in container.get("volumeMounts", []) if mount["mountPath"] == path]
    assert len(mounts) == 1, f"container {container['name']} should mount one volume at {path}"
    volumes = [volume for volume in pod.get("volumes", []) if volume["name"] == mounts[0]["name"]]
    assert len(volumes) == 1, f"volume {mounts[0]['name']!r} is mounted but not defined"
    return mounts[0], volumes[0]


# --- every manifest ----------------------------------------------------------------------


@pytest.mark.parametrize("file_name", list(EXPECTED_KINDS))
def test_manifest_parses_to_the_expected_kinds(file_name: str) -> None:
    docs = documents(file_name)
    assert [(doc.get("apiVersion"), doc.get("kind")) for doc in docs] == EXPECTED_KINDS[file_name]
    for doc in docs:
        assert doc.get("metadata", {}).get("name"), f"{file_name}: a {doc['kind']} without metadata.name"


def test_no_other_manifests_in_k8s() -> None:
    """A new manifest must be added to EXPECTED_KINDS, so the checks here cover it."""
    assert {path.name for path in K8S.glob("*.y*ml")} == set(EXPECTED_KINDS)


@pytest.mark.parametrize("kind", ["RayCluster", "RayJob"])
def test_ray_resource_name_is_a_dns1035_label(kind: str) -> None:
    # KubeRay derives Service names from it and rejects names that are not DNS-1035 labels.
    name = resource(kind)["metadata"]["name"]
    assert DNS1035_LABEL.fullmatch(name), name


# --- the Ray cluster (RayCluster and the RayJob's own) -----------------------------------


@pytest.mark.parametrize("where", CLUSTER_SPECS)
def test_ray_cluster_has_the_fields_kuberay_requires(where: str) -> None:
    cluster = ray_cluster_specs()[where]
    head = cluster["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    assert head["template"]["spec"]["containers"], "the head needs a container"
    groups = cluster["workerGroupSpecs"]
    assert groups, "no worker group: trials would have nowhere to run (the head has num-cpus 0)"
    names = [group["groupName"] for group in groups]
    assert len(names) == len(set(names)), f"duplicate worker group names: {names}"
    for group in groups:
        for field in ("groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"):
            assert field in group, f"worker group {group.get('groupName')!r} lacks {field}"
        assert isinstance(group["rayStartParams"], dict)
        assert group["template"]["spec"]["containers"], f"worker group {group['groupName']!r} has no container"
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
    for group, pod in ray_pods(cluster).items():
        for container in pod["containers"]:
            assert container.get("name") and container.get("image"), f"{group}: a container needs a name and an image"


@pytest.mark.parametrize("where", CLUSTER_SPECS)
def test_ray_start_params_are_strings(where: str) -> None:
    cluster = ray_cluster_specs()[where]
    params = {"head": cluster["headGroupSpec"]["rayStartParams"]}
    params.update({group["groupName"]: group["rayStartParams"] for group in cluster["workerGroupSpecs"]})
    for group, values in params.items():
        for key, value in values.items():
            assert isinstance(value, str), f"{group}: rayStartParams.{key} is {value!r}; the CRD wants a string"


@pytest.mark.parametrize("where", CLUSTER_SPECS)
def test_head_takes_no_trials_and_serves_jobs_api_and_gcs(where: str) -> None:
    head = ray_cluster_specs()[where]["headGroupSpec"]
    assert head["rayStartParams"].get("num-cpus") == "0"
    ports = {port["containerPort"] for port in head["template"]["spec"]["containers"][0].get("ports", [])}
    assert {8265, 6379} <= ports, f"head ports {sorted(ports)}: expected the Jobs API (8265) and GCS (6379)"


@pytest.mark.parametrize("where", CLUSTER_SPECS)
def test_token_auth_is_on(where: str) -> None:
    cluster = ray_cluster_specs()[where]
    assert cluster.get("authOptions", {}).get("mode") == "token"
    assert Version(cluster["rayVersion"]) >= MIN_RAY_FOR_TOKEN_AUTH


@pytest.mark.parametrize("where", CLUSTER_SPECS)
def test_gpu_workers_autoscale_from_zero_with_one_gpu_each(where: str) -> None:
    cluster = ray_cluster_specs()[where]
    assert cluster.get("enableInTreeAutoscaling") is True
    group = worker_group(cluster, GPU_GROUP)
    assert group["minReplicas"] == 0, "a GPU node should not be held while no study runs"
    assert group["maxReplicas"] >= 1
    resources = group["template"]["spec"]["containers"][0]["resources"]
    assert str(resources["limits"].get(GPU_RESOURCE)) == "1"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{GPU_GROUP}: cpu and memory {kind} missing"
    tolerations = group["template"]["spec"].get("tolerations", [])
    assert any(
        t.get("key") == GPU_RESOURCE and t.get("effect") == "NoSchedule" and t.get("operator", "Equal") in ("Exists", "Equal")
        for t in tolerations
    ), f"{GPU_GROUP} does not tolerate the {GPU_RESOURCE}:NoSchedule taint of GPU nodes"


@pytest.mark.parametrize("where", CLUSTER_SPECS)
def test_every_ray_pod_mounts_the_store_read_write(where: str) -> None:
    # Multi-node Ray Tune needs its storage_path on shared storage: the driver on the head
    # writes the tables, workers write the trials' state files.
    for group, pod in ray_pods(ray_cluster_specs()[where]).items():
        mount, volume = mount_of(pod, RESULTS_PATH)
        assert not mount.get("readOnly", False), f"{group}: the store must be writable"
        assert "persistentVolumeClaim" in volume, f"{group}: {RESULTS_PATH} is not the shared PVC"


def test_ray_job_cluster_is_the_ray_cluster_spec() -> None:
    # One cluster shape, kept in two places: a drift would make RayJob studies run
    # differently from `tunelab submit` ones.
    specs = ray_cluster_specs()
    assert specs["RayJob.rayClusterSpec"] == specs["RayCluster"]


# --- the RayJob --------------------------------------------------------------------------


def test_ray_job_cleans_up_and_is_bounded() -> None:
    spec = resource("RayJob")["spec"]
    assert "rayClusterSpec" in spec and "clusterSelector" not in spec
    assert spec["shutdownAfterJobFinishes"] is True
    # KubeRay's own validation: a TTL only with shutdown; a positive deadline; retries >= 0.
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] > 0
    assert isinstance(spec["activeDeadlineSeconds"], int) and spec["activeDeadlineSeconds"] > 0
    assert isinstance(spec["backoffLimit"], int) and spec["backoffLimit"] >= 0


def test_ray_job_runs_a_valid_experiment_file_shipped_in_the_image() -> None:
    sub, params = parsed_cli(entrypoint_tokens())
    assert sub == "run"
    image_file = PurePosixPath(str(params["file"]))
    in_image = image_path_of("search_spaces")
    assert image_file.is_absolute(), "an absolute path does not depend on the job's working directory"
    relative = image_file.relative_to(in_image)  # raises if not under the image's search_spaces
    repo_file = REPO / "search_spaces" / Path(*relative.parts)
    assert repo_file.is_file(), f"{image_file}: no {repo_file.relative_to(REPO)} in the repository"
    overrides = {"name": params["name"]} if params.get("name") else None
    load_spec(repo_file, overrides)  # raises SpecError on an invalid file or study name
    assert str(params["storage"]) == RESULTS_PATH


# --- the dashboard -----------------------------------------------------------------------


def test_dashboard_runs_an_existing_command_on_the_service_port() -> None:
    deployment, service = resource("Deployment"), resource("Service")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    sub, params = parsed_cli([str(token) for token in container.get("command", []) + container.get("args", [])])
    assert sub == "dashboard"
    assert params["host"] == "0.0.0.0", "bound to loopback, the Service could not reach it"
    assert str(params["storage"]) == RESULTS_PATH

    assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "no public exposure by default"
    assert not service["spec"].get("externalIPs")
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), "the Service selects no dashboard pod"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    target = port.get("targetPort", port["port"])
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    target_number = named.get(target) if isinstance(target, str) else target
    assert target_number == params["port"], f"the Service sends to {target!r}, the dashboard listens on {params['port']}"


def test_dashboard_mounts_the_store_read_only() -> None:
    mount, volume = mount_of(resource("Deployment")["spec"]["template"]["spec"], RESULTS_PATH)
    assert mount.get("readOnly") is True, "the dashboard only reads; the Ray driver is the one writer"
    assert "persistentVolumeClaim" in volume


# --- across the files --------------------------------------------------------------------


def test_every_claimed_volume_exists_in_storage_yaml() -> None:
    claims = {doc["metadata"]["name"]: doc for doc in documents("storage.yaml")}
    referenced = {
        (pod_name, volume["persistentVolumeClaim"]["claimName"])
        for pod_name, pod in all_pods().items()
        for volume in pod.get("volumes", [])
        if "persistentVolumeClaim" in volume
    }
    assert referenced, "no pod mounts the results store"
    for pod_name, claim in referenced:
        assert claim in claims, f"{pod_name} mounts PVC {claim!r}, which storage.yaml does not define"
        assert "ReadWriteMany" in claims[claim]["spec"]["accessModes"], f"{claim}: pods on several nodes share it"


def test_every_pod_runs_the_same_image() -> None:
    # Ray requires the same Ray and Python versions on every node; the dashboard shares it too.
    images = {container["image"] for pod in all_pods().values() for container in pod["containers"]}
    assert len(images) == 1, f"several images: {sorted(images)}"


def test_every_pod_runs_as_the_images_non_root_user() -> None:
    user = dockerfile_user()
    for name, pod in all_pods().items():
        context = pod.get("securityContext", {})
        assert context.get("runAsNonRoot") is True, f"{name}: runAsNonRoot is not set"
        assert context.get("runAsUser", user) == user, f"{name}: runs as {context['runAsUser']}, the image's user is {user}"


# --- the Dockerfile ----------------------------------------------------------------------


def test_dockerfile_ends_as_a_non_root_user() -> None:
    assert dockerfile_user() != 0


def test_dockerfile_python_matches_requires_python() -> None:
    [base] = [expand(arguments) for keyword, arguments in dockerfile_instructions() if keyword == "FROM"]
    match = re.fullmatch(r"python:(\d+\.\d+)[\w.-]*", base.split()[0])
    assert match, f"FROM {base}: expected an official python:X.Y image"
    assert SpecifierSet(pyproject()["project"]["requires-python"]).contains(match.group(1))


def test_ray_versions_match_pyproject() -> None:
    ray = requirement("ray")
    ray_version = dockerfile_args()["RAY_VERSION"]
    assert ray.specifier.contains(ray_version), f"RAY_VERSION {ray_version} is outside pyproject's {ray}"
    for where, cluster in ray_cluster_specs().items():
        assert cluster["rayVersion"] == ray_version, f"{where}.rayVersion differs from the image's Ray"
    installs = [Requirement(m) for run in dockerfile_runs() for m in re.findall(r'"(ray\[[^"]*\]==[^"]+)"', run)]
    assert installs, "the Dockerfile should pin ray[...]==${RAY_VERSION}"
    for install in installs:
        assert str(install.specifier) == f"=={ray_version}"
        assert install.extras == ray.extras, "the image needs pyproject's extras (default: the Jobs API server)"


def test_dockerfile_installs_a_cuda_torch_build() -> None:
    torch_runs = [run for run in dockerfile_runs() if "pip install" in run and "torch==" in run and "--index-url" in run]
    assert len(torch_runs) == 1, "expected one `pip install torch==... --index-url ...` step"
    index = re.search(r"--index-url\s+\"?(\S+?)\"?(\s|$)", torch_runs[0])
    assert index and re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", index.group(1)), index
    assert "+cpu" not in torch_runs[0]
    version = dockerfile_args()["TORCH_VERSION"]
    assert requirement("torch").specifier.contains(version)
    makefile_pin = re.search(r"^TORCH\s*\?=\s*torch==(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert makefile_pin and makefile_pin.group(1) == version, "the image should run the torch the tests run"


def test_dockerfile_copies_what_pip_install_needs_and_the_experiment_files() -> None:
    copied = {source.rstrip("/") for sources, _ in dockerfile_copies() for source in sources}
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
    # setup.py names the source folders it packages; pyproject names the readme it reads.
    constants = setup_py_constants()
    source_roots = set(constants["SOURCE_ROOTS"])
    needed = {"pyproject.toml", "setup.py", pyproject()["project"]["readme"], *source_roots, constants["DASHBOARD_FOLDER"]}
    assert needed <= copied, f"`pip install .` in the image lacks {sorted(needed - copied)}"
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in dockerfile_runs()), "the project is never installed"
    assert image_path_of("search_spaces").is_absolute()


def test_dockerfile_installs_wget_for_kuberay_probes() -> None:
    # KubeRay's default readiness and liveness probes exec `wget ... | grep success`.
    assert any(re.search(r"apt-get install[^&;]*\bwget\b", run) for run in dockerfile_runs())


def test_dockerfile_holds_no_secrets() -> None:
    for keyword, arguments in dockerfile_instructions():
        if keyword in ("ARG", "ENV"):
            names = re.findall(r"(\w+)=", arguments) or [arguments.split()[0]]
            leaked = [name for name in names if SECRET_NAME.search(name)]
            assert not leaked, f"{keyword} {leaked}: credentials belong in a Kubernetes Secret, not the image"
        if keyword in ("COPY", "ADD"):
            assert not re.search(r"auth_token|\.ray\b|\.env\b|\.pem\b|credentials|\.aws|\.kube", arguments), arguments
