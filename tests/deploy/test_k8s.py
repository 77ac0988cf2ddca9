"""The Kubernetes Job each location's run gets, built by dagster-k8s's own K8sRunLauncher.

No cluster can run here, so the test stands in for the two things around the launcher:
- the official chart (its source cannot be rendered here): `chart_launcher_config` and
  `chart_container_context` write what the chart's templates write from deploy/helm/values.yaml
  (helm/dagster/templates/helpers/instance/_run-launcher.tpl; the user-deployments subchart's
  `dagsterUserDeployments.k8sContainerContext` in templates/helpers/_helpers.tpl, set on each code
  server as DAGSTER_CONTAINER_CONTEXT next to DAGSTER_CURRENT_IMAGE), and fail on a values key they
  do not model;
- the Kubernetes API server: a recorder on 127.0.0.1 that keeps the Job the launcher POSTs.
Everything in between is dagster-k8s: `launch_run` merges the launcher config, the code server's
container context and the run's `dagster-k8s/config` tag (K8sContainerContext.create_for_run),
builds the Job (construct_dagster_k8s_job) and submits it. Every Job and Secret is validated against
the Kubernetes 1.33 schemas (kubernetes-validate).
"""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY

from devtools import kubectl
from devtools.load_location import load_repository
from devtools.locations import Location
from tests.deploy.deploy_helpers import LOCATIONS, ROOT, helm_values, image_name, template

KUBERNETES_VERSION = "1.33.0"
# The README's `helm upgrade --install dagster dagster/dagster` in a namespace of the same name.
RELEASE = NAMESPACE = "dagster"
# Names the chart derives from the release (`dagster.fullname` of the chart and of its subchart).
CHART_FULLNAME = RELEASE  # the release name contains the chart name "dagster"
USER_DEPLOYMENTS_FULLNAME = f"{RELEASE}-dagster-user-deployments"
LAUNCHER_SERVICE_ACCOUNT = CHART_FULLNAME  # the daemon's and webserver's: it may create Jobs
USER_SERVICE_ACCOUNT = f"{USER_DEPLOYMENTS_FULLNAME}-user-deployments"  # the code servers'
CHART_DEFAULTS = {
    "dagsterHome": "/opt/dagster/dagster_home",
    "postgresqlSecretName": "dagster-postgresql-secret",
}

# Keys of runLauncher.config.k8sRunLauncher and of a user deployment that the two functions below
# write as the chart does; SERVER_ONLY_KEYS are those the chart never passes on to a run.
LAUNCHER_KEYS = {
    "runK8sConfig",
    "imagePullPolicy",
    "jobNamespace",
    "envSecrets",
    "envConfigMaps",
    "resources",
}
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}
DEPLOYMENT_KEYS = {"name", "image", "envSecrets", "envConfigMaps", "includeConfigInLaunchedRuns", "resources"}
SERVER_ONLY_KEYS = {"codeServerArgs", "dagsterApiGrpcArgs", "port", "annotations", "nodeSelector", "affinity"}
SERVER_ONLY_KEYS |= {"tolerations", "podSecurityContext", "securityContext", "replicaCount", "service"}
SERVER_ONLY_KEYS |= {"readinessProbe", "livenessProbe", "startupProbe"}


def _names(entries: list[dict] | None) -> list[str]:
    return [entry["name"] for entry in entries or () if "name" in entry]


def deployment(values: dict, location: Location) -> dict:
    (found,) = (
        d for d in values["dagster-user-deployments"]["deployments"] if d["name"] == location.distribution
    )
    return found


def chart_image(deployment: dict) -> str:
    return f"{deployment['image']['repository']}:{deployment['image']['tag']}"


def postgres_secret(values: dict) -> str:
    return values.get("global", {}).get("postgresqlSecretName", CHART_DEFAULTS["postgresqlSecretName"])


def chart_launcher_config(values: dict, kubeconfig: Path) -> dict:
    """The instance's run_launcher config as _run-launcher.tpl writes it, pointed at `kubeconfig`
    (the chart sets load_incluster_config: the cluster's API server)."""
    k8s = values["runLauncher"].get("config", {}).get("k8sRunLauncher", {})
    assert set(k8s) <= LAUNCHER_KEYS, f"model these k8sRunLauncher keys first: {set(k8s) - LAUNCHER_KEYS}"
    assert set(k8s.get("runK8sConfig", {})) <= set(RUN_K8S_CONFIG_KEYS)
    config = {
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "service_account_name": LAUNCHER_SERVICE_ACCOUNT,
        "dagster_home": values.get("global", {}).get("dagsterHome", CHART_DEFAULTS["dagsterHome"]),
        "instance_config_map": f"{CHART_FULLNAME}-instance",
        "postgres_password_secret": postgres_secret(values),
        "run_k8s_config": {
            RUN_K8S_CONFIG_KEYS[key]: value for key, value in k8s.get("runK8sConfig", {}).items()
        },
    }
    optional = {
        "image_pull_policy": k8s.get("imagePullPolicy"),
        "env_config_maps": _names(k8s.get("envConfigMaps")),
        "env_secrets": _names(k8s.get("envSecrets")),
        "resources": k8s.get("resources"),
    }
    return config | {key: value for key, value in optional.items() if value}


def chart_container_context(deployment: dict) -> dict | None:
    """DAGSTER_CONTAINER_CONTEXT of the deployment's code server, as the subchart writes it."""
    unknown = set(deployment) - DEPLOYMENT_KEYS - SERVER_ONLY_KEYS
    assert not unknown, f"model these user deployment keys first: {unknown}"
    if not deployment.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]:
        return None
    k8s = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [
            f"{USER_DEPLOYMENTS_FULLNAME}-{deployment['name']}-user-env",
            *_names(deployment.get("envConfigMaps")),
        ],
        "namespace": NAMESPACE,
        "service_account_name": USER_SERVICE_ACCOUNT,
    }
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = _names(deployment["envSecrets"])
    if deployment.get("resources"):
        k8s["resources"] = deployment["resources"]
    return {"k8s": k8s}


class ApiServer(ThreadingHTTPServer):
    """Keeps every Job posted to it and answers 201 Created with it, as the API server would."""

    def __init__(self):
        self.jobs: list[dict] = []
        super().__init__(("127.0.0.1", 0), _JobRecorder)


class _JobRecorder(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.jobs.append({"path": self.path, "job": json.loads(body)})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def values() -> dict:
    return helm_values()


@pytest.fixture(scope="module")
def api_server() -> Iterator[ApiServer]:
    server = ApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def instance(values, api_server, tmp_path_factory) -> Iterator[dg.DagsterInstance]:
    host, port = api_server.server_address
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": f"http://{host}:{port}"}}],
                "users": [{"name": "test", "user": {"token": "test"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    launcher = {
        "module": "dagster_k8s",
        "class": "K8sRunLauncher",
        "config": chart_launcher_config(values, kubeconfig),
    }
    with dg.instance_for_test(overrides={"run_launcher": launcher}) as test_instance:
        yield test_instance


class CodeServer:
    """What a location's code server tells the webserver and daemon about a job: its origin, which
    carries the image and the container context the chart gave the server."""

    def __init__(self, location: Location, values: dict):
        self.location = location
        module = importlib.import_module(location.module)
        (target,) = loadable_targets_from_loaded_module(module)
        self.repository = load_repository(location.module)
        self.deployment = deployment(values, location)
        self.origin = ReconstructableRepository.for_module(
            location.module,
            target.attribute,
            container_image=chart_image(self.deployment),
            container_context=chart_container_context(self.deployment),
        ).get_python_origin()

    def launch(self, instance: dg.DagsterInstance, api_server: ApiServer, job_name: str, tags: dict) -> dict:
        """Launch a run of `job_name` with `tags` through the instance's K8sRunLauncher; the Job it posted."""
        remote = RemoteJobOrigin(
            RemoteRepositoryOrigin(
                GrpcServerCodeLocationOrigin(
                    host=self.location.name, port=self.location.port, location_name=self.location.name
                ),
                self.repository.name,
            ),
            job_name,
        )
        run = instance.add_run(
            DagsterRun(
                job_name=job_name,
                tags=tags,
                job_code_origin=JobPythonOrigin(job_name, self.origin),
                remote_job_origin=remote,
            )
        )
        posted = len(api_server.jobs)
        instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
        (request,) = api_server.jobs[posted:]
        assert request["path"] == f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
        return request["job"]

    def scheduled_runs(
        self, instance: dg.DagsterInstance
    ) -> Iterator[tuple[dg.ScheduleDefinition, dg.RunRequest]]:
        for schedule in self.repository.schedule_defs:
            with dg.build_schedule_context(instance=instance, repository_def=self.repository) as context:
                for request in schedule.evaluate_tick(context).run_requests or ():
                    yield schedule, request

    def schedule_tags(self, schedule: dg.ScheduleDefinition, request: dg.RunRequest) -> dict:
        """The tags the daemon gives a scheduled run: the request's and the schedule's."""
        return {**request.tags, **DagsterRun.tags_for_schedule(schedule)}


@pytest.fixture(scope="module")
def code_servers(values) -> dict[str, CodeServer]:
    return {location.name: CodeServer(location, values) for location in LOCATIONS}


def validate(manifest: dict) -> None:
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(
            f"{manifest['kind']} {manifest['metadata']['name']} is not valid Kubernetes 1.33: {error}"
        )


def secret_names(job: dict) -> set[str]:
    pod = job["spec"]["template"]["spec"]
    names = set()
    for container in pod["containers"] + pod.get("initContainers", []):
        names |= {ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref}
        names |= {
            env["valueFrom"]["secretKeyRef"]["name"]
            for env in container.get("env", [])
            if "secretKeyRef" in env.get("valueFrom", {})
        }
    names |= {volume["secret"]["secretName"] for volume in pod.get("volumes", []) if "secret" in volume}
    return names


def assert_run_pod(job: dict, server: CodeServer, values: dict, resources: dict) -> None:
    validate(job)
    location = server.location
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == chart_image(server.deployment)
    assert container["image"].rsplit(":", 1)[0].endswith(f"/{image_name(location)}")
    assert job["metadata"]["labels"]["dagster/code-location"] == location.name
    own = set(_names(server.deployment["envSecrets"]))
    assert secret_names(job) == own | {postgres_secret(values)}, "its own secret and Dagster's storage only"
    others = {
        name
        for other in LOCATIONS
        if other != location
        for name in _names(deployment(values, other)["envSecrets"])
    }
    assert not any(name in json.dumps(job) for name in others), (
        f"{location.name}'s run pod names another location's secret"
    )
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == USER_SERVICE_ACCOUNT
    assert container["resources"] == resources


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_every_run_of_a_location_gets_its_image_its_secret_and_its_resources(
    location, code_servers, instance, api_server, values
):
    """A run launched from the UI carries no `dagster-k8s/config` tag: its pod gets the resources of
    its location's deployment, which the chart passes on with the rest of the code server's container
    context and which win over the launcher's runK8sConfig (dagster issue #13921). A scheduled run
    carries the tag its schedule puts on it, if any, and gets exactly that."""
    server = code_servers[location.name]
    default = server.deployment["resources"]
    ui_job = server.launch(instance, api_server, "__ASSET_JOB", tags={})
    assert_run_pod(ui_job, server, values, default)
    for schedule, request in server.scheduled_runs(instance):
        tags = server.schedule_tags(schedule, request)
        job = server.launch(instance, api_server, schedule.job_name, tags)
        tagged = (
            json.loads(tags[USER_DEFINED_K8S_CONFIG_KEY]) if USER_DEFINED_K8S_CONFIG_KEY in tags else None
        )
        assert_run_pod(job, server, values, tagged["container_config"]["resources"] if tagged else default)


def test_a_source_s_run_resources_reach_its_runs_from_a_schedule_or_a_launch_with_the_tag(
    code_servers, instance, api_server, values
):
    """Each source's run pods, with and without its run_resources: launched from the UI as is (the
    location's resources), with the source's tag added at launch, and requested by its schedule;
    expected values from the declarations."""
    from ingest_raw import catalog
    from ingest_raw.catalog import SOURCES
    from ingest_raw.factory import SCHEMA, k8s_tags

    server = code_servers[catalog.__package__]
    default = server.deployment["resources"]
    assert any(source.run_resources for source in SOURCES.values()), "some source declares run_resources"
    assert any(not source.run_resources for source in SOURCES.values()), "some source runs with the default"
    # Launched from the UI as is, any source's run is the same run: no tag, the location's resources.
    assert_run_pod(server.launch(instance, api_server, "__ASSET_JOB", tags={}), server, values, default)
    scheduled = {}
    for schedule, request in server.scheduled_runs(instance):
        keys = server.repository.get_job(schedule.job_name).asset_layer.executable_asset_keys
        (key,) = keys
        scheduled[key] = (schedule, request)
    for source in SOURCES.values():
        declared = source.run_resources
        expected = (
            {
                "requests": {"cpu": declared.cpu_request, "memory": declared.memory_request},
                "limits": {"cpu": declared.cpu_limit, "memory": declared.memory_limit},
            }
            if declared
            else default
        )
        if declared:
            tagged_job = server.launch(instance, api_server, "__ASSET_JOB", tags=k8s_tags(declared))
            assert_run_pod(tagged_job, server, values, expected)
        if source.cron_schedule:
            schedule, request = scheduled.pop(dg.AssetKey([SCHEMA, source.table]))
            job = server.launch(
                instance, api_server, schedule.job_name, server.schedule_tags(schedule, request)
            )
            assert_run_pod(job, server, values, expected)
    assert not scheduled, f"schedules of no declared source: {sorted(map(str, scheduled))}"


def test_run_resources_are_set_where_they_apply(values):
    """The launcher's own resources (k8sRunLauncher.resources, runK8sConfig.containerConfig.resources)
    reach no run pod of a deployment that passes its resources to runs (dagster issue #13921): they
    must not be in the values, where they would read as the default."""
    k8s = values["runLauncher"].get("config", {}).get("k8sRunLauncher", {})
    launcher_resources = k8s.get("resources") or k8s.get("runK8sConfig", {}).get("containerConfig", {}).get(
        "resources"
    )
    for location in LOCATIONS:
        passed_on = chart_container_context(deployment(values, location))
        assert passed_on and "resources" in passed_on["k8s"], f"{location.name}: no run pod resources"
    assert launcher_resources is None, (
        f"dead run launcher resources in deploy/helm/values.yaml: {launcher_resources}"
    )


def documented_secret_commands() -> list[list[str]]:
    """The `kubectl create secret` commands at the top of deploy/helm/values.yaml and alerts.yaml, a
    command written with <distribution> and <location> once for every location."""
    lines = [
        line for path in (ROOT / "deploy" / "helm").glob("*.yaml") for line in path.read_text().splitlines()
    ]
    documented = [
        line.lstrip("# ") for line in lines if line.lstrip("# ").startswith("kubectl create secret")
    ]
    assert documented, "deploy/helm/ documents no `kubectl create secret` command"
    commands = []
    for line in documented:
        if "<distribution>" in line or "<location>" in line:
            commands += [
                shlex.split(
                    line.replace("<distribution>", location.distribution).replace("<location>", location.name)
                )
                for location in LOCATIONS
            ]
        else:
            commands.append(shlex.split(line))
    return commands


def test_the_documented_secrets_render_and_are_the_ones_the_pods_reference(values, tmp_path):
    try:
        binary = kubectl.installed()
    except kubectl.KubectlNotInstalled as missing:
        pytest.skip(str(missing))
    rendered = {}
    for command in documented_secret_commands():
        arguments = []
        for argument in command[1:]:
            if argument.startswith("--from-env-file="):
                source = ROOT / argument.split("=", 1)[1]
                env_file = tmp_path / source.name
                keys = template(source.name.removesuffix(".env"))
                env_file.write_text("".join(f"{key}=test-{key.lower()}\n" for key in keys))
                argument = f"--from-env-file={env_file}"
            arguments.append(argument)
        done = subprocess.run(
            [str(binary), *arguments, "--dry-run=client", "-o", "yaml"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{shlex.join(command)}: {done.stderr}"
        secret = yaml.safe_load(done.stdout)
        validate(secret)
        rendered[secret["metadata"]["name"]] = secret
    referenced = {postgres_secret(values)}
    for location in LOCATIONS:
        (own,) = _names(deployment(values, location)["envSecrets"])
        assert own == f"{image_name(location)}-env"
        referenced.add(own)
        assert own in rendered, (
            f"deploy/helm/values.yaml documents no command creating {own} ({location.name})"
        )
        assert set(rendered[own]["data"]) == set(template(location.name)), own
    (watcher,) = [m for m in alerts_manifests() if m["kind"] == "Deployment"]
    for name in secret_names(watcher) - referenced:
        assert set(rendered[name]["data"]) == set(template("alerts")), name
    assert set(rendered) == referenced | secret_names(watcher)


def alerts_manifests() -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "deploy" / "helm" / "alerts.yaml").read_text()))


def test_the_alerts_watcher_beside_the_chart_reads_what_the_daemon_reads(values):
    """deploy/helm/alerts.yaml: valid Kubernetes, the platform image the daemon runs, the chart's
    instance ConfigMap at DAGSTER_HOME and its Postgres secret, the chart's webserver service, its
    state on a claim of its own; its settings only from its own secret."""
    manifests = alerts_manifests()
    for manifest in manifests:
        validate(manifest)
    (watcher,) = [m for m in manifests if m["kind"] == "Deployment"]
    pod = watcher["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "shared.alerts"]
    assert container["image"] == chart_image(values["dagsterDaemon"])
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["ALERTS_WEBSERVER_URL"]["value"] == f"http://{CHART_FULLNAME}-webserver:80"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    home = values.get("global", {}).get("dagsterHome", CHART_DEFAULTS["dagsterHome"])
    assert volumes[mounts[f"{home}/dagster.yaml"]]["configMap"]["name"] == f"{CHART_FULLNAME}-instance"
    state = mounts[str(Path(env["ALERTS_STATE_FILE"]["value"]).parent)]
    claims = {m["metadata"]["name"] for m in manifests if m["kind"] == "PersistentVolumeClaim"}
    assert volumes[state]["persistentVolumeClaim"]["claimName"] in claims
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == postgres_secret(values)
    assert secret_names(watcher) == {postgres_secret(values), "dagster-alerts-env"}
