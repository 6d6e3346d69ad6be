"""`lifeboat export kubernetes`: manifests read back by a YAML parser, validated offline
against the Kubernetes API's schemas (kubernetes-validate), and never holding a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from lifeboat.export.yaml import Value, dump_all
from tests.unit.export.configs import JOBS, write_export_config
from tests.unit.helpers import one_error_line, run

# timeZone is GA since 1.27: a version clusters still run, and the newest the schemas know
KUBERNETES = ("1.30.0", "1.37.0")
S3_ONLY = "s3://local-bucket/lifeboat?region=eu-west-1"


def export(config: Path, output: Path, *extra: str) -> int:
    return run(
        ["--config", str(config), "export", "kubernetes", "--image",
         "registry.example.com/lifeboat:1.0", "--output", str(output), *extra]
    )  # fmt: skip


def documents(folder: Path) -> dict[str, dict[str, Any]]:
    """file name -> its one document, parsed by PyYAML."""
    found = {}
    for path in sorted(folder.iterdir()):
        (document,) = list(yaml.safe_load_all(path.read_text()))
        found[path.name] = document
    return found


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    monkeypatch.setenv("WMS_PASSWORD", "never-in-a-manifest")
    config = write_export_config(tmp_path, repository=S3_ONLY)
    assert export(config, tmp_path / "k8s", "--namespace", "backup", "--secret", "wms") == 0
    return documents(tmp_path / "k8s")


def test_every_manifest_is_valid_for_the_api(exported: dict[str, dict[str, Any]]) -> None:
    assert sorted(exported) == [
        "config-map.yaml", "cronjob-offsite.yaml", "cronjob-prune.yaml",
        "cronjob-verify-deep.yaml", "cronjob-wms-drill.yaml", "cronjob-wms-hourly.yaml",
    ]  # fmt: skip
    for version in KUBERNETES:
        for document in exported.values():
            kubernetes_validate.validate(document, version, strict=True)


def test_validation_refuses_a_broken_manifest(exported: dict[str, dict[str, Any]]) -> None:
    """The check above can fail: the same CronJob with a field the API does not have."""
    broken = exported["cronjob-prune.yaml"]
    broken["spec"]["concurrency"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES[-1], strict=True)


def test_a_cron_job_runs_its_command_on_schedule_as_a_non_root_user(
    exported: dict[str, dict[str, Any]],
) -> None:
    job = exported["cronjob-wms-hourly.yaml"]
    assert job["metadata"]["namespace"] == "backup"
    spec = job["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("0 * * * *", "Europe/Berlin")
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 2  # retries' default
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/lifeboat:1.0"
    assert [*container["command"], *container["args"]] == [
        "lifeboat", "--config", "/etc/lifeboat/lifeboat.toml",
        "backup", "wms", "--type", "logical",
    ]  # fmt: skip
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {}
    config = mounts["/etc/lifeboat/lifeboat.toml"]
    assert volumes[config["name"]]["configMap"]["name"] == "lifeboat-config"
    # the age identity file from the Secret of files, under its config key
    identity = mounts["/etc/lifeboat/age.key"]
    assert identity["subPath"] == "encryption.age_identity_file"
    assert volumes[identity["name"]]["secret"]["secretName"] == "wms-files"
    prune = exported["cronjob-prune.yaml"]["spec"]
    assert prune["schedule"] == "0 */6 * * *"
    assert prune["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 7200
    assert exported["cronjob-offsite.yaml"]["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 4


def test_secrets_are_referenced_never_inlined(
    exported: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    text = "".join(path.read_text() for path in (tmp_path / "k8s").iterdir())
    assert "never-in-a-manifest" not in text
    # the config map is the file itself, ${VAR}s and all
    config_map = exported["config-map.yaml"]
    assert config_map["data"]["lifeboat.toml"] == (tmp_path / "lifeboat.toml").read_text()
    pod = exported["cronjob-prune.yaml"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    references = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"][1:]}
    assert references == {
        # both have a default in the file: the key may be missing from the Secret
        "SLACK_WEBHOOK_URL": {"name": "wms", "key": "SLACK_WEBHOOK_URL", "optional": True},
        "WMS_PASSWORD": {"name": "wms", "key": "WMS_PASSWORD", "optional": True},
    }
    assert container["envFrom"] == [{"secretRef": {"name": "wms"}}]


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (("${WMS_PASSWORD:-}@", "hunter2@"), "sources.wms.dsn"),
        (
            (
                'url = "${SLACK_WEBHOOK_URL:-http://unused}"',
                'url = "https://hooks.slack.com/T/B/x"',
            ),
            "notifications.ops.url",
        ),
        (
            ('url = "s3://local-bucket', 'url = "https://user:pw@example.com/x"\n# "'),
            "repositories.local.url",
        ),
        (
            ("[notifications.ops]", '[notifications."ops.eu"]\nhmac_secret = "k"'),
            "notifications.ops.eu.hmac_secret",
        ),
        (
            # a check's URL is its credential: whoever has it can report success
            ("[schedule.prune]\n", '[schedule.prune]\nping_url = "https://hc.example/uuid"\n'),
            "schedule.prune.ping_url",
        ),
    ],
)
def test_a_secret_written_out_is_refused_and_nothing_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    location: str,
) -> None:
    config = write_export_config(tmp_path, repository=S3_ONLY)
    text = config.read_text()
    assert change[0] in text
    config.write_text(text.replace(change[0], change[1], 1))
    assert export(config, tmp_path / "k8s") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{location} holds a secret written out" in line
    assert "hunter2" not in line
    assert not (tmp_path / "k8s").exists()


def test_a_local_repository_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_export_config(tmp_path)
    assert export(config, tmp_path / "k8s") == 2
    assert "repositories.local is a local folder" in one_error_line(capsys.readouterr().err)


def test_a_name_kubernetes_refuses_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = JOBS + '[schedule.Nightly_Prune]\njob = "prune"\ncron = "0 1 * * *"\n'
    config = write_export_config(tmp_path, jobs, repository=S3_ONLY)
    assert export(config, tmp_path / "k8s") == 2
    assert "schedule.Nightly_Prune: 'lifeboat-Nightly_Prune' is no CronJob name" in (
        one_error_line(capsys.readouterr().err)
    )


@pytest.mark.parametrize(
    "text",
    [
        "[a]\nb = 1\n",
        "line one\n\n  indented\n\ttab\nlast\n",
        "no newline at the end",
        "  leading spaces\n",
        "trailing spaces  \nx\n",
        "two newlines\n\n",
        "quotes \" ' and \\ backslash: # not a comment\n",
        "unicode: ÄÖÜ – 日本\n",
        "carriage\r\nreturn\n",
        "- a list?\n? a key?\n---\n...\n",
        "",
        "true",
        "0o17",
    ],
)
def test_yaml_strings_read_back_exactly(text: str) -> None:
    document: dict[str, Value] = {
        "data": {"lifeboat.toml": text, "list": [text, {"k": text}], "yes": "no"}
    }
    assert yaml.safe_load(dump_all([document])) == document


def test_a_ping_url_kept_as_a_variable_stays_one_in_the_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HC_PRUNE", "https://hc-ping.example/secret-uuid")
    jobs = JOBS.replace("[schedule.prune]\n", '[schedule.prune]\nping_url = "${HC_PRUNE}"\n')
    config = write_export_config(tmp_path, jobs, repository=S3_ONLY)
    assert export(config, tmp_path / "k8s", "--secret", "wms") == 0
    found = documents(tmp_path / "k8s")
    pod = found["cronjob-prune.yaml"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # Kubernetes expands $(HC_PRUNE) from the container's environment, the Secret's
    assert container["args"][-2:] == ["--ping", "$(HC_PRUNE)"]
    (reference,) = [
        e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] == "HC_PRUNE"
    ]
    assert (reference["name"], reference["key"]) == ("wms", "HC_PRUNE")
    text = "".join(path.read_text() for path in (tmp_path / "k8s").iterdir())
    assert "secret-uuid" not in text
    kubernetes_validate.validate(found["cronjob-prune.yaml"], KUBERNETES[-1], strict=True)


def test_a_ping_url_variable_with_a_default_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = JOBS.replace("[schedule.prune]\n", '[schedule.prune]\nping_url = "${HC:-https://x}"\n')
    config = write_export_config(tmp_path, jobs, repository=S3_ONLY)
    assert export(config, tmp_path / "k8s") == 2
    assert "ping_url uses ${HC:-https://x}, which a CronJob cannot expand" in one_error_line(
        capsys.readouterr().err
    )
    assert not (tmp_path / "k8s").exists()
