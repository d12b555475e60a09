"""Render deploy/kubernetes offline and check it: `python tools/kube_check.py [FOLDER] [--render]`.

No cluster, no kustomize, no network. The folder is rendered by the small part of kustomize it
uses, and any other key in its kustomization.yaml is an error, never skipped:

* ``apiVersion: kustomize.config.k8s.io/v1beta1`` and ``kind: Kustomization``;
* ``resources``: YAML files in the folder itself (no sub-folders, remote bases or URLs), their
  objects taken as they stand, in that order;
* ``images``: entries of ``name`` and ``newName``, ``newTag`` or ``digest``, each applied to the
  containers and init containers whose image has that name (as kustomize does); an entry that
  matches no container is an error (kustomize would ignore it).

Each rendered object is then validated against the Kubernetes JSON schemas, strict (an unknown
field is an error), of every Kubernetes version the locked ``kubernetes-validate`` ships. Then
what a schema cannot say (each problem one line):

* each of the four MCP services (``ai_trader.settings.SERVICES``) has a Service of its name on
  its port, selecting exactly one Deployment, which runs ``serve --only NAME`` on that port,
  binds 0.0.0.0 and accepts its own name as Host; trade and prices mount the data volume;
* every pod runs as uid 1000, non-root, with no privilege escalation, every capability dropped,
  a read-only root, a /tmp from an emptyDir, a RuntimeDefault (or Localhost) seccomp profile,
  no host namespaces and no service account token; a pod that mounts a claim sets fsGroup;
* every PersistentVolumeClaim is ReadWriteMany, and every claim a pod mounts exists;
* the run's Job is Indexed, with completions == parallelism == AI_TRADER_SHARDS == the number of
  enabled models in the config it mounts from its ConfigMap (read by ``ai_trader.config``), its
  command turns JOB_COMPLETION_INDEX into ``--shard``, and it calls each service by its
  Service's name;
* a NetworkPolicy lets only the run's pods reach the service pods.

``--render`` prints the rendered objects as one YAML stream instead (to compare with
``kubectl kustomize``). Exit status: 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = "kustomization.yaml"
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZATION_KEYS = ("apiVersion", "kind", "resources", "images")
IMAGE_KEYS = ("name", "newName", "newTag", "digest")

IMAGE_UID = 1000  # the image's own user (Dockerfile)
DATA_DIR = "/app/data"  # the image's DATA_DIR
TMP = "/tmp"  # noqa: S108 (an emptyDir of the pod's own, the root being read-only)
NEEDS_DATA = ("trade", "prices")  # the services that read or write the data folder
SERVICE_HOST = "0.0.0.0"  # noqa: S104 (the services listen on the pod's addresses)
# Where the run's clients find each service: the settings' per-service client hosts.
HOST_VARIABLES = {
    "math": "MATH_HTTP_HOST",
    "search": "SEARCH_HTTP_HOST",
    "trade": "TRADE_HTTP_HOST",
    "prices": "GETPRICE_HTTP_HOST",
}
SHARDS_VARIABLE = "AI_TRADER_SHARDS"
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")

Object = dict[str, Any]


class RenderError(Exception):
    """The folder cannot be rendered: one line saying why."""


# --- rendering -----------------------------------------------------------------------


def render(folder: Path) -> list[Object]:
    """The folder's objects, as ``kubectl kustomize`` would give them (see the module's
    docstring for the part of kustomize this covers); RenderError on anything else."""
    kustomization = _yaml_file(folder / KUSTOMIZATION)
    if not isinstance(kustomization, dict):
        raise RenderError(f"{KUSTOMIZATION}: not a mapping")
    unknown = sorted(set(kustomization) - set(KUSTOMIZATION_KEYS))
    if unknown:
        raise RenderError(
            f"{KUSTOMIZATION}: {unknown[0]!r} is not rendered by tools/kube_check.py "
            f"(it reads {', '.join(KUSTOMIZATION_KEYS)})"
        )
    if kustomization.get("apiVersion") != KUSTOMIZE_API:
        raise RenderError(f"{KUSTOMIZATION}: apiVersion must be {KUSTOMIZE_API}")
    if kustomization.get("kind") != "Kustomization":
        raise RenderError(f"{KUSTOMIZATION}: kind must be Kustomization")
    resources = kustomization.get("resources")
    if not isinstance(resources, list) or not resources:
        raise RenderError(f"{KUSTOMIZATION}: resources must list the manifest files")
    objects = [obj for name in resources for obj in _resource(folder, name)]
    images = kustomization.get("images") or []
    if not isinstance(images, list):
        raise RenderError(f"{KUSTOMIZATION}: images must be a list")
    for entry in images:
        _set_image(objects, entry)
    return objects


def _yaml_file(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RenderError(f"{path.name}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"{path.name}: not YAML ({_first_line(str(exc))})") from None


def _resource(folder: Path, name: object) -> Iterator[Object]:
    if not isinstance(name, str) or "/" in name or not name.endswith((".yaml", ".yml")):
        raise RenderError(
            f"{KUSTOMIZATION}: resource {name!r} is not a YAML file of this folder "
            "(sub-folders, bases and URLs are not rendered)"
        )
    try:
        documents = list(yaml.safe_load_all((folder / name).read_text(encoding="utf-8")))
    except OSError as exc:
        raise RenderError(f"{name}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"{name}: not YAML ({_first_line(str(exc))})") from None
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        if not isinstance(document, dict) or not all(
            document.get(key) for key in ("apiVersion", "kind")
        ):
            raise RenderError(f"{name}: document {number} is not a Kubernetes object")
        if not isinstance(document.get("metadata"), dict) or not document["metadata"].get("name"):
            raise RenderError(f"{name}: document {number} has no metadata.name")
        yield document


def split_image(image: str) -> tuple[str, str, str]:
    """An image reference as (name, tag, digest); tag and digest may be empty."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest
    return rest, "", digest


def _set_image(objects: list[Object], entry: object) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise RenderError(f"{KUSTOMIZATION}: an images entry has no name")
    unknown = sorted(set(entry) - set(IMAGE_KEYS))
    if unknown:
        raise RenderError(
            f"{KUSTOMIZATION}: images: {unknown[0]!r} is not rendered by tools/kube_check.py "
            f"(it reads {', '.join(IMAGE_KEYS)})"
        )
    if "newTag" in entry and "digest" in entry:
        raise RenderError(f"{KUSTOMIZATION}: images: {entry['name']}: give newTag or digest")
    matched = 0
    for obj in objects:
        for _, container in _containers(obj):
            name, tag, digest = split_image(str(container.get("image", "")))
            if name != entry["name"]:
                continue
            matched += 1
            name = str(entry.get("newName", name))
            if "newTag" in entry:
                tag, digest = str(entry["newTag"]), ""
            if "digest" in entry:
                tag, digest = "", str(entry["digest"])
            container["image"] = (
                name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            )
    if not matched:
        raise RenderError(f"{KUSTOMIZATION}: images: {entry['name']} names no container's image")


# --- the objects' parts -----------------------------------------------------------------


def label(obj: Object) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def pod_template(obj: Object) -> Object | None:
    """The pod template of a workload (its metadata and spec), or None."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": spec}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        template = spec.get("template")
        return template if isinstance(template, dict) else {}
    return None


def pod_labels(obj: Object) -> Object:
    return ((pod_template(obj) or {}).get("metadata") or {}).get("labels") or {}


def pod_spec(obj: Object) -> Object | None:
    template = pod_template(obj)
    return None if template is None else template.get("spec") or {}


def _containers(obj: Object) -> Iterator[tuple[str, Object]]:
    spec = pod_spec(obj)
    if spec is None:
        return
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            yield key, container


def command_of(container: Object) -> list[str]:
    return [
        str(part) for part in [*(container.get("command") or []), *(container.get("args") or [])]
    ]


def env_of(container: Object) -> dict[str, str]:
    """The container's plain env values (a value from a Secret or field is left out)."""
    return {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}


def selects(selector: Object, labels: Object) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- the schemas -------------------------------------------------------------------------


def kubernetes_versions() -> list[str]:
    """Every Kubernetes minor version whose schemas the locked kubernetes-validate ships."""
    from kubernetes_validate import utils

    return sorted({utils.major_minor(v) for v in utils.all_versions()}, key=_version_key)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def schema_problems(objects: Sequence[Object], versions: Sequence[str]) -> list[str]:
    """One line for each object that a version's strict schema refuses (its first refusal)."""
    from kubernetes_validate import utils

    problems = []
    for obj in objects:
        for version in versions:
            try:
                utils.validate(obj, version, strict=True)
            except utils.ValidationError as exc:
                where = ".".join(str(part) for part in exc.path) or "(top)"
                problems.append(
                    f"{label(obj)}: not a valid object of Kubernetes {version}: {where}: "
                    f"{_first_line(exc.message)}"
                )
                break
            except utils.SchemaNotFoundError as exc:
                problems.append(f"{label(obj)}: {exc.message}")
                break
    return problems


# --- what the schemas cannot say ---------------------------------------------------------


def check(objects: Sequence[Object]) -> list[str]:
    """Every rule of the module's docstring that the objects break, one line each."""
    problems = _unique(objects)
    for obj in objects:
        if pod_spec(obj) is not None:
            problems += _hardening(obj)
    problems += _claims(objects)
    problems += _services(objects)
    problems += _run_jobs(objects)
    problems += _network_policy(objects)
    return problems


def _unique(objects: Sequence[Object]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for obj in objects:
        if label(obj) in seen:
            problems.append(f"{label(obj)}: defined twice")
        seen.add(label(obj))
    return problems


def _hardening(obj: Object) -> list[str]:
    spec = pod_spec(obj) or {}
    pod_context = spec.get("securityContext") or {}
    problems = [
        f"{label(obj)}: {field} is set: the pod must not share the node's namespaces"
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(field)
    ]
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(
            f"{label(obj)}: automountServiceAccountToken must be false (nothing here calls "
            "the Kubernetes API)"
        )
    empty_dirs = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    claims = [v for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v]
    if claims and pod_context.get("fsGroup") != IMAGE_UID:
        problems.append(
            f"{label(obj)}: mounts a claim without securityContext.fsGroup {IMAGE_UID} (the "
            "pods run as the image's user directly, with no root start to hand the data over)"
        )
    if not spec.get("containers"):
        problems.append(f"{label(obj)}: has no container")
    for key, container in _containers(obj):
        where = f"{label(obj)}: {key[:-1]} {container.get('name')}"
        context = container.get("securityContext") or {}

        def effective(field: str, context: Object = context) -> Any:
            return context.get(field, pod_context.get(field))

        if effective("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if effective("runAsUser") != IMAGE_UID:
            problems.append(f"{where}: does not run as uid {IMAGE_UID}, the image's user")
        seccomp = (effective("seccompProfile") or {}).get("type")
        if seccomp not in SECCOMP_TYPES:
            problems.append(f"{where}: seccompProfile is not RuntimeDefault or Localhost")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if context.get("privileged"):
            problems.append(f"{where}: is privileged")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where}: does not drop ALL capabilities")
        if capabilities.get("add"):
            problems.append(f"{where}: adds capabilities {', '.join(capabilities['add'])}")
        tmp = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == TMP]
        if not tmp or tmp[0].get("name") not in empty_dirs:
            problems.append(f"{where}: /tmp is not an emptyDir (the root is read-only)")
    return problems


def _claims(objects: Sequence[Object]) -> list[str]:
    claims = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolumeClaim"}
    problems = [
        f"{label(claim)}: accessModes must include ReadWriteMany (the pods share it across nodes)"
        for claim in claims.values()
        if "ReadWriteMany" not in ((claim.get("spec") or {}).get("accessModes") or [])
    ]
    for obj in objects:
        for volume in (pod_spec(obj) or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(f"{label(obj)}: mounts the claim {claim}, which is not defined")
    return problems


def _data_mount(obj: Object, container: Object) -> bool:
    """Whether ``container`` mounts a claim at the data folder."""
    claims = {
        v["name"]
        for v in (pod_spec(obj) or {}).get("volumes") or []
        if "persistentVolumeClaim" in v
    }
    return any(
        m.get("mountPath") == DATA_DIR and m.get("name") in claims
        for m in container.get("volumeMounts") or []
    )


def _services(objects: Sequence[Object]) -> list[str]:
    from ai_trader.settings import SERVICES

    problems = []
    for spec in SERVICES:
        name = spec.name
        service = next((o for o in objects if o["kind"] == "Service" and _named(o, name)), None)
        if service is None:
            problems.append(f"Service/{name}: missing (the run calls the {name} service by it)")
            continue
        ports = (service.get("spec") or {}).get("ports") or []
        port = next((p for p in ports if p.get("port") == spec.default_port), None)
        if port is None:
            problems.append(f"{label(service)}: has no port {spec.default_port}")
            continue
        selector = (service.get("spec") or {}).get("selector") or {}
        chosen = [
            o
            for o in objects
            if o["kind"] == "Deployment"
            and selector
            and selects({"matchLabels": selector}, pod_labels(o))
        ]
        if len(chosen) != 1:
            problems.append(f"{label(service)}: selects {len(chosen)} Deployments, not exactly one")
            continue
        problems += _serving(chosen[0], name, spec.port_variable, spec.default_port, port)
    return problems


def _named(obj: Object, name: str) -> bool:
    return bool(obj["metadata"]["name"] == name)


def _serving(
    deployment: Object, name: str, port_variable: str, default_port: int, service_port: Object
) -> list[str]:
    where = label(deployment)
    containers = (pod_spec(deployment) or {}).get("containers") or []
    server = next((c for c in containers if command_of(c)[-3:] == ["serve", "--only", name]), None)
    if server is None:
        return [f"{where}: no container runs `ai-trader serve --only {name}`"]
    where = f"{where}: container {server.get('name')}"
    problems = []
    env = env_of(server)
    listens = int(env.get(port_variable, default_port))
    target = service_port.get("targetPort", service_port.get("port"))
    exposed = [
        p for p in server.get("ports") or [] if target in (p.get("name"), p.get("containerPort"))
    ]
    if not exposed or exposed[0].get("containerPort") != listens:
        problems.append(
            f"{where}: the Service's targetPort {target} is not the port it listens on ({listens})"
        )
    if env.get("SERVICE_HOST") != SERVICE_HOST:
        problems.append(f"{where}: SERVICE_HOST is not {SERVICE_HOST}: the Service cannot reach it")
    allowed = re.split(r"[,\s]+", env.get("AI_TRADER_ALLOWED_HOSTS", "").lower())
    if name not in allowed:
        problems.append(
            f"{where}: AI_TRADER_ALLOWED_HOSTS does not name {name}, so it refuses the run's "
            f"requests (Host: {name})"
        )
    if name in NEEDS_DATA and not _data_mount(deployment, server):
        problems.append(f"{where}: does not mount the data claim at {DATA_DIR}")
    return problems


def _run_jobs(objects: Sequence[Object]) -> list[str]:
    jobs = [o for o in objects if o["kind"] == "Job"]
    if not jobs:
        return ["no Job runs `ai-trader run` (the run's Indexed Job is missing)"]
    return [problem for job in jobs for problem in _run_job(job, objects)]


def _run_job(job: Object, objects: Sequence[Object]) -> list[str]:
    spec = job.get("spec") or {}
    where = label(job)
    containers = (pod_spec(job) or {}).get("containers") or []
    runner = next((c for c in containers if "ai_trader run " in " ".join(command_of(c))), None)
    if runner is None:
        return [f"{where}: no container runs `python -m ai_trader run CONFIG`"]
    problems = []
    if spec.get("completionMode") != "Indexed":
        problems.append(f"{where}: completionMode is not Indexed (the index picks the model)")
    completions = spec.get("completions")
    if spec.get("parallelism") != completions:
        problems.append(
            f"{where}: parallelism {spec.get('parallelism')} is not completions {completions} "
            "(every model trades at once)"
        )
    env = env_of(runner)
    if env.get(SHARDS_VARIABLE) != str(completions):
        problems.append(
            f"{where}: {SHARDS_VARIABLE} is {env.get(SHARDS_VARIABLE)!r}, not completions "
            f"{completions}: the shards would not cover the models once each"
        )
    script = " ".join(command_of(runner))
    if not all(word in script for word in ("JOB_COMPLETION_INDEX", "--shard", SHARDS_VARIABLE)):
        problems.append(
            f"{where}: the command does not pass --shard from JOB_COMPLETION_INDEX and "
            f"{SHARDS_VARIABLE}"
        )
    if not _data_mount(job, runner):
        problems.append(f"{where}: does not mount the data claim at {DATA_DIR}")
    for service, variable in HOST_VARIABLES.items():
        if env.get(variable) != service:
            problems.append(
                f"{where}: {variable} is {env.get(variable)!r}, not {service!r}, the Service's name"
            )
    enabled, problem = _enabled_models(job, runner, script, objects)
    if problem:
        problems.append(f"{where}: {problem}")
    elif enabled != completions:
        problems.append(
            f"{where}: completions {completions} is not the {enabled} enabled model(s) of its "
            "config (one completion for each)"
        )
    return problems


def _enabled_models(
    job: Object, runner: Object, script: str, objects: Sequence[Object]
) -> tuple[int, str | None]:
    """The number of enabled models in the config the run reads, or a problem saying why it
    cannot be read."""
    from ai_trader.config import parse_config
    from ai_trader.errors import UserError

    found = re.search(r"ai_trader run (\S+)", script)
    path = Path(found.group(1).strip("'\"")) if found else Path()
    mount = next(
        (
            m
            for m in runner.get("volumeMounts") or []
            if Path(m.get("mountPath", "")) == path.parent
        ),
        None,
    )
    volume = next(
        (
            v
            for v in (pod_spec(job) or {}).get("volumes") or []
            if mount is not None and v.get("name") == mount.get("name") and "configMap" in v
        ),
        None,
    )
    if volume is None:
        return 0, f"its config {path} is not in a ConfigMap it mounts"
    name = volume["configMap"].get("name")
    config_map = next((o for o in objects if o["kind"] == "ConfigMap" and _named(o, name)), None)
    text = ((config_map or {}).get("data") or {}).get(path.name)
    if text is None:
        return 0, f"its config {path} is not a key of the ConfigMap {name}"
    try:
        config = parse_config(json.loads(text), f"ConfigMap/{name} {path.name}")
    except ValueError as exc:
        return 0, f"ConfigMap/{name} {path.name} is not JSON ({exc})"
    except UserError as exc:
        return 0, _first_line(str(exc))
    return len(config.enabled_models), None


def _network_policy(objects: Sequence[Object]) -> list[str]:
    from ai_trader.settings import SERVICE_NAMES

    runners = [pod_labels(o) for o in objects if o["kind"] == "Job"]
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and "Ingress" in ((o.get("spec") or {}).get("policyTypes") or [])
    ]
    problems = []
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        if deployment["metadata"]["name"] not in SERVICE_NAMES:
            continue
        labels = pod_labels(deployment)
        guarding = [p for p in policies if selects(p["spec"].get("podSelector") or {}, labels)]
        if not guarding:
            problems.append(
                f"{label(deployment)}: no NetworkPolicy restricts who reaches it (the services "
                "have no authentication)"
            )
            continue
        for policy in guarding:
            for rule in policy["spec"].get("ingress") or []:
                sources = rule.get("from") or []
                if not sources or any(
                    set(source) != {"podSelector"}
                    or not any(selects(source["podSelector"], job) for job in runners)
                    for source in sources
                ):
                    problems.append(
                        f"{label(policy)}: lets more than the run's pods reach {label(deployment)}"
                    )
                    break
    return problems


# --- the command -------------------------------------------------------------------------


def problems_of(folder: Path, versions: Sequence[str] | None = None) -> list[str]:
    """Every problem of the folder, one line each (a folder that cannot be rendered has one)."""
    try:
        objects = render(folder)
    except RenderError as exc:
        return [str(exc)]
    versions = kubernetes_versions() if versions is None else versions
    return schema_problems(objects, versions) + check(objects)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kube_check", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--render", action="store_true", help="print the rendered objects")
    args = parser.parse_args(argv)
    shown = DEFAULT_FOLDER.relative_to(ROOT) if args.folder == DEFAULT_FOLDER else args.folder
    if args.render:
        try:
            objects = render(args.folder)
        except RenderError as exc:
            print(f"{shown}: {exc}", file=sys.stderr)
            return 1
        yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)
        return 0
    versions = kubernetes_versions()
    problems = problems_of(args.folder, versions)
    for problem in problems:
        print(f"{shown}: {problem}", file=sys.stderr)
    if problems:
        return 1
    count = len(render(args.folder))
    print(
        f"{shown}: {count} objects valid for Kubernetes {versions[0]} to {versions[-1]}; "
        "services, hardening, data claim, run job and network policy as required"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
