"""deploy/kubernetes and its offline check (tools/kube_check.py): the real manifests pass, and
a copy broken in one way is refused in one line that says what is wrong."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import kube_check

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def newest() -> list[str]:
    """The newest Kubernetes version alone: a broken copy need not be checked against all."""
    return kube_check.kubernetes_versions()[-1:]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "kubernetes"
    shutil.copytree(MANIFESTS, folder)
    return folder


def edit(folder: Path, file: str, change: Callable[[Docs], object]) -> None:
    """Load ``file``'s documents, let ``change`` modify them in place, write them back."""
    path = folder / file
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


def pod(docs: Docs) -> dict[str, Any]:
    """The pod spec of the file's first document (its Deployment or Job)."""
    spec: dict[str, Any] = docs[0]["spec"]["template"]["spec"]
    return spec


def container(docs: Docs, index: int = 0, key: str = "containers") -> dict[str, Any]:
    found: dict[str, Any] = pod(docs)[key][index]
    return found


def env(docs: Docs, name: str, value: str | None) -> None:
    """Set (or, with None, remove) a plain variable of the first container."""
    variables = container(docs)["env"]
    variables[:] = [e for e in variables if e["name"] != name]
    if value is not None:
        variables.append({"name": name, "value": value})


def set_config(docs: Docs, config: dict[str, Any]) -> None:
    docs[0]["data"]["config.json"] = json.dumps(config, indent=2)


def default_config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "configs" / "default_config.json").read_text())
    return loaded


def two_models() -> dict[str, Any]:
    config = default_config()
    second = {**config["models"][0], "name": "second", "signature": "second"}
    config["models"].append(second)
    return config


def scale(docs: Docs, completions: int) -> None:
    docs[0]["spec"]["completions"] = docs[0]["spec"]["parallelism"] = completions
    env(docs, "AI_TRADER_SHARDS", str(completions))


def problems(folder: Path, versions: list[str]) -> list[str]:
    found = kube_check.problems_of(folder, versions)
    assert all("\n" not in problem for problem in found), found
    return found


# --- the real manifests --------------------------------------------------------------------


def test_the_manifests_pass_every_check_against_every_kubernetes_version():
    assert kube_check.problems_of(MANIFESTS) == []


def test_the_check_covers_several_kubernetes_versions():
    assert len(kube_check.kubernetes_versions()) >= 2


def test_the_command_passes_in_one_line_and_names_no_absolute_path(
    capsys: pytest.CaptureFixture[str],
):
    assert kube_check.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("deploy/kubernetes: 12 objects valid for Kubernetes ")
    assert out.count("\n") == 1


def test_each_of_the_four_services_has_a_deployment_and_a_service():
    objects = kube_check.render(MANIFESTS)
    for name in ("math", "search", "trade", "prices"):
        assert {"Deployment", "Service"} <= {
            o["kind"] for o in objects if o["metadata"]["name"] == name
        }


def test_the_images_entry_sets_the_image_of_every_container():
    images = {
        container["image"]
        for obj in kube_check.render(MANIFESTS)
        for _, container in kube_check._containers(obj)
    }
    assert images == {"ai-trader:dev"}


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("ai-trader", ("ai-trader", "", "")),
        ("ai-trader:dev", ("ai-trader", "dev", "")),
        ("registry.example:5000/team/ai-trader", ("registry.example:5000/team/ai-trader", "", "")),
        ("registry.example:5000/ai-trader:1.0", ("registry.example:5000/ai-trader", "1.0", "")),
        ("ai-trader@sha256:ab", ("ai-trader", "", "sha256:ab")),
    ],
)
def test_an_image_splits_into_name_tag_and_digest_as_kustomize_matches_it(
    image: str, parts: tuple[str, str, str]
):
    assert kube_check.split_image(image) == parts


@pytest.mark.parametrize(
    ("entry", "image"),
    [
        ({"name": "ai-trader", "newName": "registry.example:5000/ai-trader", "newTag": "1.0.0"},
         "registry.example:5000/ai-trader:1.0.0"),
        ({"name": "ai-trader", "digest": "sha256:ab"}, "ai-trader@sha256:ab"),
        ({"name": "ai-trader", "newName": "other/ai-trader"}, "other/ai-trader"),
    ],
)  # fmt: skip
def test_an_images_entry_renames_retags_or_pins_the_image(
    copy: Path, entry: dict[str, str], image: str
):
    path = copy / kube_check.KUSTOMIZATION
    kustomization = yaml.safe_load(path.read_text())
    kustomization["images"] = [entry]
    path.write_text(yaml.safe_dump(kustomization))
    rendered = {c["image"] for o in kube_check.render(copy) for _, c in kube_check._containers(o)}
    assert rendered == {image}


def test_the_run_job_turns_the_completion_index_into_a_one_based_shard(tmp_path: Path):
    """The Job's own command, run by bash with a stand-in `python` that prints its arguments."""
    job = next(o for o in kube_check.render(MANIFESTS) if o["kind"] == "Job")
    command = kube_check.command_of(job["spec"]["template"]["spec"]["containers"][0])
    stand_in = tmp_path / "python"
    stand_in.write_text('#!/bin/sh\necho "$*"\n')
    stand_in.chmod(0o755)
    environment = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "AI_TRADER_SHARDS": "3"}
    shown = subprocess.run(
        command, env={**environment, "JOB_COMPLETION_INDEX": "2"}, capture_output=True,
        text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert shown == [
        "-m ai_trader wait-ready",
        "-m ai_trader run /app/run-config/config.json --shard 3/3",
    ]


def test_the_run_job_fails_without_a_completion_index(tmp_path: Path):
    job = next(o for o in kube_check.render(MANIFESTS) if o["kind"] == "Job")
    command = kube_check.command_of(job["spec"]["template"]["spec"]["containers"][0])
    environment = {"PATH": os.environ["PATH"], "AI_TRADER_SHARDS": "1"}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "JOB_COMPLETION_INDEX" in result.stderr


# --- rendering: only what it knows ----------------------------------------------------------


def _kustomization(folder: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = folder / kube_check.KUSTOMIZATION
    kustomization = yaml.safe_load(path.read_text())
    change(kustomization)
    path.write_text(yaml.safe_dump(kustomization))


def test_a_kustomization_key_it_does_not_render_is_refused(copy: Path, newest: list[str]):
    _kustomization(copy, lambda k: k.update(namePrefix="test-"))
    assert problems(copy, newest) == [
        "kustomization.yaml: 'namePrefix' is not rendered by tools/kube_check.py (it reads "
        "apiVersion, kind, resources, images)"
    ]


def test_a_resource_outside_the_folder_is_refused(copy: Path, newest: list[str]):
    _kustomization(copy, lambda k: k["resources"].append("../base"))
    assert problems(copy, newest) == [
        "kustomization.yaml: resource '../base' is not a YAML file of this folder (sub-folders, "
        "bases and URLs are not rendered)"
    ]


def test_a_missing_resource_file_is_refused(copy: Path, newest: list[str]):
    (copy / "math.yaml").unlink()
    assert problems(copy, newest) == ["math.yaml: cannot be read (No such file or directory)"]


def test_an_images_entry_that_matches_no_container_is_refused(copy: Path, newest: list[str]):
    _kustomization(copy, lambda k: k["images"].append({"name": "ai-traderr", "newTag": "1"}))
    assert problems(copy, newest) == [
        "kustomization.yaml: images: ai-traderr names no container's image"
    ]


def test_an_images_field_it_does_not_render_is_refused(copy: Path, newest: list[str]):
    _kustomization(copy, lambda k: k["images"][0].update(tagSuffix="x"))
    assert problems(copy, newest) == [
        "kustomization.yaml: images: 'tagSuffix' is not rendered by tools/kube_check.py (it reads "
        "name, newName, newTag, digest)"
    ]


def test_a_document_that_is_not_a_kubernetes_object_is_refused(copy: Path, newest: list[str]):
    (copy / "data.yaml").write_text("just: text\n")
    assert problems(copy, newest) == ["data.yaml: document 1 is not a Kubernetes object"]


# --- the schemas ----------------------------------------------------------------------------


def test_a_field_kubernetes_does_not_know_is_refused_by_the_schema(copy: Path, newest: list[str]):
    def typo(docs: Docs) -> None:
        context = container(docs)["securityContext"]
        context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")

    edit(copy, "math.yaml", typo)
    found = problems(copy, newest)
    assert (
        f"Deployment/math: not a valid object of Kubernetes {newest[0]}: "
        "spec.template.spec.containers.0.securityContext: Additional properties are not allowed "
        "('readOnlyRootFileSystem' was unexpected)"
    ) in found


def test_a_value_of_the_wrong_type_is_refused_by_the_schema(copy: Path, newest: list[str]):
    edit(copy, "trade.yaml", lambda docs: docs[1]["spec"]["ports"][0].update(port="8002"))
    assert (
        f"Service/trade: not a valid object of Kubernetes {newest[0]}: spec.ports.0.port: "
        "'8002' is not of type 'integer'"
    ) in problems(copy, newest)


# --- hardening ------------------------------------------------------------------------------


def _container_context(field: str, value: Any) -> Callable[[Docs], None]:
    def change(docs: Docs) -> None:
        if value is None:
            container(docs)["securityContext"].pop(field)
        else:
            container(docs)["securityContext"][field] = value

    return change


def _pod_context(field: str, value: Any) -> Callable[[Docs], None]:
    def change(docs: Docs) -> None:
        if value is None:
            pod(docs)["securityContext"].pop(field)
        else:
            pod(docs)["securityContext"][field] = value

    return change


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("math.yaml", _container_context("readOnlyRootFilesystem", None),
         "Deployment/math: container math: readOnlyRootFilesystem is not true"),
        ("search.yaml", _container_context("allowPrivilegeEscalation", True),
         "Deployment/search: container search: allowPrivilegeEscalation is not false"),
        ("trade.yaml", _container_context("capabilities", {"drop": ["NET_RAW"]}),
         "Deployment/trade: container trade: does not drop ALL capabilities"),
        ("trade.yaml", _container_context("capabilities", {"drop": ["ALL"], "add": ["CHOWN"]}),
         "Deployment/trade: container trade: adds capabilities CHOWN"),
        ("math.yaml", _container_context("privileged", True),
         "Deployment/math: container math: is privileged"),
        ("run.yaml", _pod_context("runAsNonRoot", None),
         "Job/ai-trader-run: container run: runAsNonRoot is not true"),
        ("run.yaml", _container_context("runAsUser", 0),
         "Job/ai-trader-run: container run: does not run as uid 1000, the image's user"),
        ("math.yaml", _pod_context("seccompProfile", {"type": "Unconfined"}),
         "Deployment/math: container math: seccompProfile is not RuntimeDefault or Localhost"),
        ("trade.yaml", _pod_context("fsGroup", None),
         "Deployment/trade: mounts a claim without securityContext.fsGroup 1000 (the pods run as "
         "the image's user directly, with no root start to hand the data over)"),
        ("search.yaml", lambda docs: pod(docs).update(hostNetwork=True),
         "Deployment/search: hostNetwork is set: the pod must not share the node's namespaces"),
        ("search.yaml", lambda docs: pod(docs).pop("automountServiceAccountToken"),
         "Deployment/search: automountServiceAccountToken must be false (nothing here calls the "
         "Kubernetes API)"),
        ("math.yaml", lambda docs: container(docs)["volumeMounts"].clear(),
         "Deployment/math: container math: /tmp is not an emptyDir (the root is read-only)"),
    ],
)  # fmt: skip
def test_a_pod_without_the_compose_hardening_is_refused(
    copy: Path, newest: list[str], file: str, change: Callable[[Docs], None], message: str
):
    edit(copy, file, change)
    assert problems(copy, newest) == [message]


def test_an_init_container_needs_the_hardening_too(copy: Path, newest: list[str]):
    def loosen(docs: Docs) -> None:
        container(docs, key="initContainers")["securityContext"]["readOnlyRootFilesystem"] = False

    edit(copy, "prices.yaml", loosen)
    assert problems(copy, newest) == [
        "Deployment/prices: initContainer fetch-and-merge: readOnlyRootFilesystem is not true"
    ]


# --- the data claim -------------------------------------------------------------------------


def test_a_data_claim_a_single_node_can_mount_is_refused(copy: Path, newest: list[str]):
    edit(copy, "data.yaml", lambda docs: docs[0]["spec"].update(accessModes=["ReadWriteOnce"]))
    assert problems(copy, newest) == [
        "PersistentVolumeClaim/ai-trader-data: accessModes must include ReadWriteMany (the pods "
        "share it across nodes)"
    ]


def test_a_pod_mounting_a_claim_that_is_not_defined_is_refused(copy: Path, newest: list[str]):
    def rename(docs: Docs) -> None:
        pod(docs)["volumes"][0]["persistentVolumeClaim"]["claimName"] = "elsewhere"

    edit(copy, "run.yaml", rename)
    assert problems(copy, newest) == [
        "Job/ai-trader-run: mounts the claim elsewhere, which is not defined"
    ]


# --- the services ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("search.yaml", lambda docs: docs.pop(1),
         "Service/search: missing (the run calls the search service by it)"),
        ("trade.yaml", lambda docs: container(docs).update(command=["python", "-m", "ai_trader",
                                                                    "serve"]),
         "Deployment/trade: no container runs `ai-trader serve --only trade`"),
        ("math.yaml", lambda docs: env(docs, "AI_TRADER_ALLOWED_HOSTS", "localhost"),
         "Deployment/math: container math: AI_TRADER_ALLOWED_HOSTS does not name math, so it "
         "refuses the run's requests (Host: math)"),
        ("math.yaml", lambda docs: env(docs, "SERVICE_HOST", "127.0.0.1"),
         "Deployment/math: container math: SERVICE_HOST is not 0.0.0.0: the Service cannot "
         "reach it"),
        ("prices.yaml", lambda docs: container(docs)["ports"][0].update(containerPort=9003),
         "Deployment/prices: container prices: the Service's targetPort mcp is not the port it "
         "listens on (8003)"),
        ("prices.yaml", lambda docs: docs[1]["spec"]["ports"][0].update(port=9003),
         "Service/prices: has no port 8003"),
        ("trade.yaml", lambda docs: container(docs)["volumeMounts"].pop(0),
         "Deployment/trade: container trade: does not mount the data claim at /app/data"),
        ("search.yaml",
         lambda docs: docs[1]["spec"]["selector"].pop("app.kubernetes.io/component"),
         "Service/search: selects 4 Deployments, not exactly one"),
    ],
)  # fmt: skip
def test_a_service_the_run_could_not_reach_is_refused(
    copy: Path, newest: list[str], file: str, change: Callable[[Docs], None], message: str
):
    edit(copy, file, change)
    assert message in problems(copy, newest)


def test_a_service_port_moved_by_its_variable_must_be_the_one_exposed(
    copy: Path, newest: list[str]
):
    edit(copy, "math.yaml", lambda docs: env(docs, "MATH_HTTP_PORT", "9000"))
    assert problems(copy, newest) == [
        "Deployment/math: container math: the Service's targetPort mcp is not the port it "
        "listens on (9000)"
    ]


# --- the run job ----------------------------------------------------------------------------


def test_a_second_enabled_model_with_one_completion_is_refused(copy: Path, newest: list[str]):
    edit(copy, "config.yaml", lambda docs: set_config(docs, two_models()))
    assert problems(copy, newest) == [
        "Job/ai-trader-run: completions 1 is not the 2 enabled model(s) of its config (one "
        "completion for each)"
    ]


def test_two_models_pass_with_two_completions_and_two_shards(copy: Path, newest: list[str]):
    edit(copy, "config.yaml", lambda docs: set_config(docs, two_models()))
    edit(copy, "run.yaml", lambda docs: scale(docs, 2))
    assert problems(copy, newest) == []


def test_a_disabled_model_needs_no_completion(copy: Path, newest: list[str]):
    config = two_models()
    config["models"][1]["enabled"] = False
    edit(copy, "config.yaml", lambda docs: set_config(docs, config))
    assert problems(copy, newest) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda docs: docs[0]["spec"].update(completionMode="NonIndexed"),
         "Job/ai-trader-run: completionMode is not Indexed (the index picks the model)"),
        (lambda docs: docs[0]["spec"].update(parallelism=2),
         "Job/ai-trader-run: parallelism 2 is not completions 1 (every model trades at once)"),
        (lambda docs: env(docs, "AI_TRADER_SHARDS", "2"),
         "Job/ai-trader-run: AI_TRADER_SHARDS is '2', not completions 1: the shards would not "
         "cover the models once each"),
        (lambda docs: env(docs, "TRADE_HTTP_HOST", None),
         "Job/ai-trader-run: TRADE_HTTP_HOST is None, not 'trade', the Service's name"),
        (lambda docs: container(docs).update(
            command=["python", "-m", "ai_trader", "run", "/app/run-config/config.json"]),
         "Job/ai-trader-run: the command does not pass --shard from JOB_COMPLETION_INDEX and "
         "AI_TRADER_SHARDS"),
        (lambda docs: container(docs)["volumeMounts"].pop(0),
         "Job/ai-trader-run: does not mount the data claim at /app/data"),
        (lambda docs: container(docs)["volumeMounts"][1].update(mountPath="/app/other"),
         "Job/ai-trader-run: its config /app/run-config/config.json is not in a ConfigMap it "
         "mounts"),
    ],
)  # fmt: skip
def test_a_run_job_that_would_not_trade_each_model_once_is_refused(
    copy: Path, newest: list[str], change: Callable[[Docs], None], message: str
):
    edit(copy, "run.yaml", change)
    assert problems(copy, newest) == [message]


def test_a_run_config_the_product_would_refuse_is_refused_in_its_words(
    copy: Path, newest: list[str]
):
    config = default_config()
    config["models"][0]["leverage"] = 2
    edit(copy, "config.yaml", lambda docs: set_config(docs, config))
    assert problems(copy, newest) == [
        "Job/ai-trader-run: config ConfigMap/ai-trader-config config.json: models.0.leverage: "
        "unknown key (this version does not read it; remove it)"
    ]


def test_a_run_config_under_another_key_is_refused(copy: Path, newest: list[str]):
    edit(copy, "config.yaml", lambda docs: docs[0].update(data={"other.json": "{}"}))
    assert problems(copy, newest) == [
        "Job/ai-trader-run: its config /app/run-config/config.json is not a key of the ConfigMap "
        "ai-trader-config"
    ]


# --- the network policy ---------------------------------------------------------------------


def test_service_pods_no_network_policy_guards_are_refused(copy: Path, newest: list[str]):
    _kustomization(copy, lambda k: k["resources"].remove("network-policy.yaml"))
    assert problems(copy, newest) == [
        f"Deployment/{name}: no NetworkPolicy restricts who reaches it (the services have no "
        "authentication)"
        for name in ("math", "search", "trade", "prices")
    ]


def test_a_network_policy_letting_other_namespaces_in_is_refused(copy: Path, newest: list[str]):
    def widen(docs: Docs) -> None:
        docs[0]["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})

    edit(copy, "network-policy.yaml", widen)
    assert problems(copy, newest) == [
        f"NetworkPolicy/ai-trader-services: lets more than the run's pods reach Deployment/{name}"
        for name in ("math", "search", "trade", "prices")
    ]


# --- the command ----------------------------------------------------------------------------


def test_the_command_fails_with_one_line_for_each_problem(
    copy: Path, capsys: pytest.CaptureFixture[str]
):
    edit(copy, "math.yaml", _container_context("readOnlyRootFilesystem", None))
    edit(copy, "data.yaml", lambda docs: docs[0]["spec"].update(accessModes=["ReadWriteOnce"]))
    assert kube_check.main([str(copy)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{copy}: ") for line in lines)


def test_render_prints_the_objects_the_checks_read(capsys: pytest.CaptureFixture[str]):
    assert kube_check.main(["--render"]) == 0
    printed = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    assert printed == kube_check.render(MANIFESTS)
