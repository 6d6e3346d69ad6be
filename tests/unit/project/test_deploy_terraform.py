"""deploy/terraform is formatted, and the IAM policies docs/cloud-storage.md shows parse, match
the Terraform module and keep the database host's credential (lifeboat-writer) from deleting
or rewriting backups.

Terraform cannot download providers here, so the module itself is checked by `terraform fmt`
only; its policy statements are compared with the documented JSON by reading iam.tf."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.policies import CLOUD_DOC, documented_policies, statements

ROOT = Path(__file__).resolve().parents[3]
TERRAFORM_DIR = ROOT / "deploy" / "terraform"

JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)
# the only keys the writer may delete: <prefix>/locks/<anything>, no wildcard before locks/
LOCK_KEYS = re.compile(r"arn:aws:s3:::[^/*]+/(?:[^*]*/)?locks/\*")

WRITER_NEVER = [
    "s3:DeleteObjectVersion",
    "s3:PutObjectRetention",
    "s3:BypassGovernanceRetention",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutObjectLegalHold",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
]
WRITER_NEEDS = [
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListBucketMultipartUploads",
    "s3:DeleteObject",
]
PRUNER_NEVER = ["s3:BypassGovernanceRetention", "s3:PutObjectRetention", "s3:PutBucketPolicy"]
PRUNER_NEEDS = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectLegalHold"]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _allowed_resources(policy: dict[str, Any], action: str) -> list[str]:
    """Resources an Allow statement grants `action` on, wildcards in actions honoured."""
    resources: list[str] = []
    for statement in statements(policy):
        if statement["Effect"] != "Allow":
            continue
        patterns = [pattern.lower() for pattern in _as_list(statement["Action"])]
        if any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in patterns):
            resources.extend(_as_list(statement["Resource"]))
    return resources


def _terraform_statement_texts(policy_name: str) -> dict[str, str]:
    """Sid -> the text of that statement of one aws_iam_policy_document in iam.tf, read
    from between its `# BEGIN <name>` and `# END <name>` comments."""
    source = (TERRAFORM_DIR / "iam.tf").read_text(encoding="utf-8")
    region = source.split(f"# BEGIN {policy_name}\n", 1)[1].split(f"# END {policy_name}\n", 1)[0]
    chunks = re.split(r"\n\s*sid\s*=\s*", region)[1:]
    return {chunk.split('"', 2)[1]: chunk for chunk in chunks}


def _terraform_statements(policy_name: str) -> dict[str, tuple[str, set[str]]]:
    """Sid -> (effect, actions) of one aws_iam_policy_document in iam.tf."""
    source = (TERRAFORM_DIR / "iam.tf").read_text(encoding="utf-8")
    protected_block = source.split("protected_settings = [", 1)[1].split("]", 1)[0]
    protected = set(re.findall(r'"([a-z0-9]+:[A-Za-z*]+)"', protected_block))
    statements = {}
    for sid, chunk in _terraform_statement_texts(policy_name).items():
        # condition keys (s3:prefix, kms:ViaService...) are not actions
        body = "\n".join(line for line in chunk.splitlines() if "variable" not in line)
        actions = set(re.findall(r'"([a-z0-9]+:[A-Za-z*]+)"', body))
        if "local.protected_settings" in body:
            actions |= protected
        effect = "Deny" if re.search(r'effect\s*=\s*"Deny"', body) else "Allow"
        statements[sid] = (effect, actions)
    return statements


@pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="terraform is not on PATH: the formatting of deploy/terraform cannot be checked",
)
def test_terraform_module_is_formatted() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-no-color", "deploy/terraform"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        # no version check over the network
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        check=False,
    )
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive deploy/terraform`; it would rewrite:\n"
        f"{result.stdout}{result.stderr}"
    )


def test_module_pins_the_aws_provider_and_tiers_by_tag() -> None:
    versions = (TERRAFORM_DIR / "versions.tf").read_text(encoding="utf-8")
    assert re.search(r'version\s*=\s*"~> 5\.0"', versions)
    buckets = (TERRAFORM_DIR / "buckets.tf").read_text(encoding="utf-8")
    # one tier filter, and Object Lock, on each of the two buckets
    assert len(re.findall(r'key\s*=\s*"lifeboat-tier"', buckets)) == 2
    assert len(re.findall(r"object_lock_enabled\s*=\s*true", buckets)) == 2


def test_every_json_block_of_the_doc_parses() -> None:
    blocks = JSON_BLOCK.findall(CLOUD_DOC.read_text(encoding="utf-8"))
    assert blocks
    for block in blocks:
        json.loads(block)


def test_documented_policies_are_well_formed() -> None:
    policies = documented_policies()
    assert set(policies) == {"lifeboat-writer", "lifeboat-pruner"}
    for name, policy in policies.items():
        assert policy["Version"] == "2012-10-17", name
        sids = [statement["Sid"] for statement in statements(policy)]
        assert len(sids) == len(set(sids)), f"{name}: duplicate Sid"
        for statement in statements(policy):
            assert statement["Effect"] in ("Allow", "Deny"), (name, statement["Sid"])
            assert "Resource" in statement or "NotResource" in statement, statement["Sid"]
            if statement["Effect"] == "Allow":
                # NotAction / NotResource in an Allow grant everything else: never
                assert "Action" in statement and "Resource" in statement, statement["Sid"]


def test_writer_deletes_nothing_but_lock_files() -> None:
    writer = documented_policies()["lifeboat-writer"]
    deletable = _allowed_resources(writer, "s3:DeleteObject")
    assert deletable, "the writer must be able to release its locks"
    for resource in deletable:
        assert LOCK_KEYS.fullmatch(resource), f"writer may delete {resource}"


def test_writer_may_list_the_whole_bucket() -> None:
    """S3 answers a read of a missing key with 404 (not found) only to a principal allowed to
    list the bucket, and with 403 (access denied) otherwise; wal-fetch needs the 404 to end
    recovery. A request that reads a key carries no s3:prefix, so a condition on the listing
    grant would turn every 404 into a 403: the writer lists the bucket itself, unconditionally.
    (The S3 emulator the integration tests use does not model this, so it is checked here.)"""
    writer = documented_policies()["lifeboat-writer"]
    grants = [
        statement
        for statement in statements(writer)
        if statement["Effect"] == "Allow" and "s3:ListBucket" in _as_list(statement["Action"])
    ]
    assert [statement["Sid"] for statement in grants] == ["ListRepository"]
    assert "Condition" not in grants[0]
    assert _as_list(grants[0]["Resource"]) == ["arn:aws:s3:::acme-backups"]
    assert "condition" not in _terraform_statement_texts("lifeboat-writer")["ListRepository"]


@pytest.mark.parametrize("action", WRITER_NEVER)
def test_writer_cannot_rewrite_history_or_settings(action: str) -> None:
    writer = documented_policies()["lifeboat-writer"]
    assert _allowed_resources(writer, action) == [], f"writer is granted {action}"


@pytest.mark.parametrize("action", WRITER_NEEDS)
def test_writer_can_do_its_job(action: str) -> None:
    writer = documented_policies()["lifeboat-writer"]
    assert _allowed_resources(writer, action), f"writer lacks {action}"


def test_pruner_prunes_but_bypasses_nothing() -> None:
    pruner = documented_policies()["lifeboat-pruner"]
    for action in PRUNER_NEEDS:
        assert _allowed_resources(pruner, action), f"pruner lacks {action}"
    for action in PRUNER_NEVER:
        assert _allowed_resources(pruner, action) == [], f"pruner is granted {action}"


@pytest.mark.parametrize("name", ["lifeboat-writer", "lifeboat-pruner"])
def test_documented_policies_match_the_terraform_module(name: str) -> None:
    documented = {
        statement["Sid"]: (statement["Effect"], set(_as_list(statement["Action"])))
        for statement in statements(documented_policies()[name])
    }
    assert documented == _terraform_statements(name)
