"""The Kubernetes deployment as files: every manifest of deploy/k8s/manifests/ is valid against the
Kubernetes API's JSON schemas (kubernetes-validate's own copy, offline), the Secrets hold the keys
the pods read, the ServiceAccount, its Role and the reports' claim are the ones the instance
names, the Helm values say what deploy/k8s/dagster-instance.yaml says, and the Dockerfile builds
from this repository's files into an image whose commands exist."""

from __future__ import annotations

import copy
import re
import shlex
import socket
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dagster_k8s.job import DAGSTER_PG_PASSWORD_ENV_VAR, DAGSTER_PG_PASSWORD_SECRET_KEY

from pipelines import settings
from tests import REPO

K8S = REPO / "deploy" / "k8s"
MANIFESTS = K8S / "manifests"
# The Kubernetes version whose schemas the manifests are checked against: the newest the pinned
# kubernetes-validate ships (strict: a field the API does not know is an error).
K8S_VERSION = kubernetes_validate.latest_version()


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _resources() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> manifest, over every file of deploy/k8s/manifests/."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in _docs(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} twice"
            found[key] = doc
    return found


def _instance() -> dict[str, Any]:
    return yaml.safe_load((K8S / "dagster-instance.yaml").read_text(encoding="utf-8"))


def _values() -> dict[str, Any]:
    return yaml.safe_load((K8S / "values.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection may be opened: the schemas must come from the installed package."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("offline")
def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    paths = sorted(MANIFESTS.glob("*.yaml"))
    assert len(paths) >= 5
    checked = 0
    for path in paths:
        for doc in _docs(path):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            assert doc["metadata"].get("namespace", "modelarts-etl") == "modelarts-etl", path
            checked += 1
    kinds = {kind for kind, _ in _resources()}
    assert kinds >= {
        "Namespace", "Secret", "ServiceAccount", "Role", "RoleBinding", "Job",
        "PersistentVolumeClaim",
    }  # fmt: skip
    assert checked == len(_resources())


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(
    ("kind", "name", "path", "value"),
    [
        ("Job", "modelarts-etl-migrate", ["spec", "backoffLimit"], "1"),  # a string
        ("Job", "modelarts-etl-migrate", ["spec", "template", "spec", "containers"], "migrate"),
        ("PersistentVolumeClaim", "modelarts-etl-reports", ["spec", "accessModes"], "RWX"),
        ("RoleBinding", "modelarts-etl-runs", ["roleRef", "kindd"], "Role"),  # unknown field
    ],
)
def test_the_validation_refuses_a_broken_manifest(
    kind: str, name: str, path: list[str], value: object
) -> None:
    doc = copy.deepcopy(_resources()[(kind, name)])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _secret_keys(name: str) -> set[str]:
    return set(_resources()[("Secret", name)]["stringData"])


def test_the_secrets_hold_the_keys_the_pods_read() -> None:
    assert _secret_keys("modelarts-etl-warehouse") == {
        settings.DATABASE_URL,
        settings.ANALYTICS_DATABASE_URL,
    }
    assert _secret_keys("modelarts-etl-warehouse-owner") == {settings.DATABASE_URL}
    api = _secret_keys("modelarts-etl-api")
    needed = {settings.IAM_REGION, settings.MODELARTS_PROJECT_ID, settings.SDK_AK, settings.SDK_SK}
    assert needed <= api
    assert all(key in settings.MODELARTS_FIELDS.values() for key in api), api
    # Dagster's storage password, under the key dagster-k8s and the chart read
    assert _secret_keys("modelarts-etl-dagster-db") == {DAGSTER_PG_PASSWORD_SECRET_KEY}
    # placeholders only: nothing secret in the repository
    for (kind, _), doc in _resources().items():
        if kind == "Secret":
            for key, value in doc["stringData"].items():
                secret = key in (settings.SDK_AK, settings.SDK_SK, DAGSTER_PG_PASSWORD_SECRET_KEY)
                assert not secret or re.fullmatch(r"<[a-z-]+>", value), key
                assert "#" not in value, key  # no inline comment in a value


def test_the_instance_names_what_the_manifests_create() -> None:
    resources, launcher = _resources(), _instance()["run_launcher"]["config"]
    secrets = {name for kind, name in resources if kind == "Secret"}
    assert set(launcher["env_secrets"]) <= secrets
    assert "modelarts-etl-warehouse-owner" not in launcher["env_secrets"]  # never in run pods
    assert launcher["postgres_password_secret"] in secrets
    account = launcher["service_account_name"]
    assert ("ServiceAccount", account) in resources
    binding = resources[("RoleBinding", account)]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": launcher["job_namespace"]}
    ]
    role = resources[("Role", binding["roleRef"]["name"])]
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # what the run launcher and the run monitoring do with a run's Job and its pod
    for needed in [
        ("batch", "jobs", "create"), ("batch", "jobs", "get"), ("batch", "jobs", "delete"),
        ("batch", "jobs", "list"), ("", "pods", "list"), ("", "pods", "get"),
        ("", "pods/log", "get"),
    ]:  # fmt: skip
        assert needed in allowed, needed
    # the reports' claim is mounted at the data directory's reports/
    claims = {v["persistentVolumeClaim"]["claimName"] for v in launcher["volumes"]}
    assert claims <= {name for kind, name in resources if kind == "PersistentVolumeClaim"}
    data_dir = dict(v.split("=", 1) for v in launcher["env_vars"])[settings.DATA_DIR]
    assert [m["mountPath"] for m in launcher["volume_mounts"]] == [f"{data_dir}/reports"]


def test_the_migration_job_runs_the_owners_command_with_the_owners_secret_only() -> None:
    job = _resources()[("Job", "modelarts-etl-migrate")]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["modelarts-etl", "migrate", "--grants"]
    assert container["envFrom"] == [{"secretRef": {"name": "modelarts-etl-warehouse-owner"}}]
    assert pod["restartPolicy"] == "Never"
    runs_account = _instance()["run_launcher"]["config"]["service_account_name"]
    assert pod["serviceAccountName"] != runs_account  # no Kubernetes API rights
    image = _values()["dagster-user-deployments"]["deployments"][0]["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    assert "modelarts-etl" in {s.name for s in entry_points(group="console_scripts")}


def test_the_helm_values_say_what_the_instance_says() -> None:
    values, instance = _values(), _instance()
    extra = values["additionalInstanceConfig"]
    # rendered whole from additionalInstanceConfig, and not by the chart's own keys too
    for section in ("concurrency", "run_retries", "run_monitoring", "freshness", "retention"):
        assert extra[section] == instance[section], section
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is False
    assert values["dagsterDaemon"]["runRetries"]["enabled"] is False
    assert values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] == {}
    assert values["telemetry"] == instance["telemetry"]
    # the API pool cap: the same as one machine's (deploy/dagster.yaml); the API's limit is one
    local = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text(encoding="utf-8"))
    assert instance["concurrency"]["pools"] == local["concurrency"]["pools"]
    assert instance["run_monitoring"]["enabled"] and instance["run_retries"]["enabled"]

    # Dagster's storage: the chart's postgres_db, the password from the storage Secret
    storage = instance["storage"]["postgres"]["postgres_db"]
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False
    assert storage["hostname"] == postgresql["postgresqlHost"]
    assert storage["username"] == postgresql["postgresqlUsername"]
    assert storage["db_name"] == postgresql["postgresqlDatabase"]
    assert storage["port"] == postgresql["service"]["port"]
    assert storage["scheme"] == postgresql["postgresqlScheme"]
    assert storage["password"] == {"env": DAGSTER_PG_PASSWORD_ENV_VAR}
    launcher = instance["run_launcher"]["config"]
    assert values["global"]["postgresqlSecretName"] == launcher["postgres_password_secret"]
    assert values["generatePostgresqlPasswordSecret"] is False

    # the run launcher: same namespace, account, Secrets, variables, volumes and resources
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert k8s["jobNamespace"] == launcher["job_namespace"]
    assert k8s["imagePullPolicy"] == launcher["image_pull_policy"]
    assert k8s["loadInclusterConfig"] == launcher["load_incluster_config"]
    assert values["serviceAccount"] == {"create": False, "name": launcher["service_account_name"]}
    assert values["global"]["serviceAccountName"] == launcher["service_account_name"]
    assert values["rbacEnabled"] is False  # the Role is manifests/rbac.yaml's
    assert [s["name"] for s in k8s["envSecrets"]] == launcher["env_secrets"]
    assert k8s["envVars"] == launcher["env_vars"]
    assert k8s["volumes"] == launcher["volumes"]
    assert k8s["volumeMounts"] == launcher["volume_mounts"]
    assert (
        k8s["runK8sConfig"]["containerConfig"]
        == launcher["run_k8s_config"]["container_config"]
    )
    # the code server: the same Secrets and partitions as the run pods
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert [s["name"] for s in deployment["envSecrets"]] == launcher["env_secrets"]
    code_env = {e["name"]: e["value"] for e in deployment["env"]}
    run_env = dict(v.split("=", 1) for v in launcher["env_vars"])
    for var in (settings.PARTITIONS_START, settings.DATA_DIR):
        assert code_env[var] == run_env[var]


def test_the_step_executor_config_gives_step_pods_what_run_pods_get() -> None:
    executor = yaml.safe_load((K8S / "k8s-job-executor.yaml").read_text(encoding="utf-8"))
    config, launcher = executor["execution"]["config"], _instance()["run_launcher"]["config"]
    for key in ("env_secrets", "env_vars", "volumes", "volume_mounts", "job_namespace"):
        assert config[key] == launcher[key], key


def test_the_chart_repository_is_the_real_one() -> None:
    values = (K8S / "values.yaml").read_text(encoding="utf-8")
    assert "helm repo add dagster https://dagster-io.github.io/helm" in values
    assert "<the chart repository>" not in values


# --- the Dockerfile, checked without a container engine ---------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (its patterns are plain
    names and `**/` globs: checked as such)."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(Path(path).match(p.removeprefix("**/")) or path == p for p in patterns)


def test_the_dockerfile_copies_only_files_of_this_repository() -> None:
    instructions = _dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.11"
    copied: set[str] = set()
    for instruction, arguments in instructions:
        if instruction in ("COPY", "ADD"):
            assert instruction == "COPY" and not arguments.startswith("--from"), arguments
            *sources, _ = arguments.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"
                copied.add(source)
    # what the wheel's build reads: the package, the SQL it force-includes, the README it names
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", pyproject["project"]["readme"], *wheel["packages"]}
    needed |= set(wheel["force-include"])
    assert needed <= copied, needed - copied
    assert not _ignored("pipelines/warehouse/loader.py") and not _ignored("sql/migrations")


def test_the_dockerfile_installs_the_package_not_a_link_to_the_sources() -> None:
    runs = [arguments for instruction, arguments in _dockerfile() if instruction == "RUN"]
    installs = [shlex.split(run) for run in runs if "pip install" in run]
    assert len(installs) == 1
    words = installs[0]
    assert "-e" not in words and "--editable" not in words
    assert ".[k8s]" in words  # dagster-k8s for the run launcher and the step executor
    assert "dagster-k8s==0.29.*" in pyproject_extra("k8s")
    # the sources are removed after the install: the image runs the installed package only
    assert "rm -rf /build" in runs[0]


def pyproject_extra(name: str) -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extras: list[str] = pyproject["project"]["optional-dependencies"][name]
    return extras


def test_the_images_commands_are_installed_programs() -> None:
    instructions = _dockerfile()
    (cmd,) = [yaml.safe_load(arguments) for kind, arguments in instructions if kind == "CMD"]
    assert cmd[:3] == ["dagster", "api", "grpc"]
    module = cmd[cmd.index("--module-name") + 1]
    values = _values()["dagster-user-deployments"]["deployments"][0]
    assert values["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert (REPO / (module.replace(".", "/") + ".py")).is_file()
    assert f"--port {values['port']}" in " ".join(cmd)
    scripts = {script.name for script in entry_points(group="console_scripts")}
    # dagster's (the code server, the run worker), this package's (the migration Job)
    assert {"dagster", "modelarts-etl"} <= scripts
    assert pyproject_script("modelarts-etl") == "pipelines.cli:run"
    env = " ".join(arguments for kind, arguments in instructions if kind == "ENV")
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    assert _instance()["run_launcher"]["config"]["dagster_home"] == "/opt/dagster/dagster_home"
    assert ("USER", "10001") in instructions


def pyproject_script(name: str) -> str:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    target: str = pyproject["project"]["scripts"][name]
    return target
