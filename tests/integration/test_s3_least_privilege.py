"""Lifeboat under the IAM policies docs/cloud-storage.md documents, enforced by a server.

A moto server of its own has IAM users `lifeboat-writer` and `lifeboat-pruner` holding the
documented policies (read from the document, for a bucket of this test), then checks every
request's signature and permissions. The database host's work (init, backup, list, verify,
restore, WAL push and fetch, copy into the repository) runs as the writer; deleting a
backup's data, and so `prune`, is refused to the writer and allowed to the pruner.

moto evaluates a statement's Action and Resource, not NotResource or Condition, and counts a
Deny statement without Resource as a grant. The statements with those elements are left
out here: the two explicit Deny statements only repeat what the grants already leave out
(so that another policy cannot give it back), the tagging grant is limited by a Condition,
and the KMS grant does not concern a bucket without SSE-KMS. What remains are the grants,
so the test shows that Lifeboat needs nothing more than they give, and that they alone
refuse the writer any deletion of backup data.

moto (since 5.2) checks an S3 request against the name of its API operation (s3:HeadObject,
s3:ListObjectsV2) where AWS checks the IAM action the operation requires (s3:GetObject,
s3:ListBucket), and refuses the documented policy for want of actions that do not exist in
IAM. Each statement therefore also grants, on the same resources, the operations AWS
authorizes with its actions (OPERATIONS_AUTHORIZED_BY): the writer gets in the emulator what
the policy gives it in AWS, no more. moto does not model S3's answer to a read of a missing
key (404 only with s3:ListBucket, 403 otherwise): tests/unit/project/test_deploy_terraform.py checks
that the writer's s3:ListBucket carries no condition that would turn those 404s into 403s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3.session
import pytest

from lifeboat.postgres.instance import ScratchCluster
from lifeboat.storage.base import PermanentError
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.s3 import S3Storage
from tests.policies import DOC_BUCKET, DOC_PREFIX, documented_policies, statements
from tests.servers.s3 import REGION, MotoServer

from .helpers import (
    Workspace,
    assert_restores_identically,
    assert_wal_round_trip,
    fill_rich,
    make_workspace,
    wal_segment,
)
from .versions import on_oldest_major

pytestmark = pytest.mark.integration

BUCKET = "lifeboat-iam"
UNEVALUATED = ("NotResource", "NotAction", "Condition")
# IAM action -> the S3 API operations Lifeboat calls that AWS authorizes with it (AWS's
# "Required permissions for Amazon S3 API operations"); moto names the action after them
OPERATIONS_AUTHORIZED_BY = {
    "s3:ListBucket": ("s3:ListObjectsV2", "s3:HeadBucket"),
    "s3:ListBucketVersions": ("s3:ListObjectVersions",),
    "s3:ListBucketMultipartUploads": ("s3:ListMultipartUploads",),
    "s3:GetBucketObjectLockConfiguration": ("s3:GetObjectLockConfiguration",),
    "s3:GetObject": ("s3:HeadObject",),
    "s3:PutObject": ("s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"),
    "s3:ListMultipartUploadParts": ("s3:ListParts",),
}


class Credentials:
    def __init__(self, access_key: str, secret_key: str) -> None:
        self.environment = {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
        }


def with_operation_names(statement: dict[str, Any]) -> dict[str, Any]:
    """statement, granting also the operations its actions authorize in AWS, by the names
    moto checks them under."""
    actions = statement["Action"]
    actions = [actions] if isinstance(actions, str) else list(actions)
    operations = [op for action in actions for op in OPERATIONS_AUTHORIZED_BY.get(action, ())]
    return {**statement, "Action": actions + operations}


def for_this_bucket(policy: dict[str, Any]) -> dict[str, Any]:
    """The documented policy for BUCKET, with the statements moto cannot evaluate left out
    and the operation names moto checks added (see the module docstring)."""
    kept = [
        with_operation_names(statement)
        for statement in statements(policy)
        if not any(element in statement for element in UNEVALUATED)
    ]
    text = json.dumps({**policy, "Statement": kept})
    return dict(json.loads(text.replace(f"arn:aws:s3:::{DOC_BUCKET}", f"arn:aws:s3:::{BUCKET}")))


def iam_user(iam: Any, name: str, policy: dict[str, Any]) -> Credentials:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


class Enforced:
    def __init__(self, server: MotoServer, writer: Credentials, pruner: Credentials) -> None:
        self.server = server
        self.writer = writer
        self.pruner = pruner

    def url(self) -> str:
        return f"s3://{BUCKET}/{DOC_PREFIX}?region={REGION}&endpoint={self.server.endpoint}"


@pytest.fixture
def enforced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enforced]:
    server = MotoServer(tmp_path_factory.mktemp("moto-iam"))
    server.start()
    try:
        session = boto3.session.Session(
            aws_access_key_id="setup", aws_secret_access_key="setup", region_name=REGION
        )
        s3 = session.client("s3", endpoint_url=server.endpoint)
        # as the Terraform module makes it: versioned, with Object Lock available
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        iam = session.client("iam", endpoint_url=server.endpoint)
        policies = documented_policies()
        writer = iam_user(iam, "lifeboat-writer", for_this_bucket(policies["lifeboat-writer"]))
        pruner = iam_user(iam, "lifeboat-pruner", for_this_bucket(policies["lifeboat-pruner"]))
        # from here on every request needs a known key, a good signature and a permission
        server.set_authentication(0)
        yield Enforced(server, writer, pruner)
    finally:
        server.stop()


def as_user(monkeypatch: pytest.MonkeyPatch, credentials: Credentials) -> None:
    for name, value in credentials.environment.items():
        monkeypatch.setenv(name, value)


def configure(ws: Workspace, dsn: str, url: str) -> None:
    ws.config.write_text(
        f'[repositories.s3]\nurl = "{url}"\n\n'
        f'[repositories.local]\nurl = "{ws.root / "local"}"\n\n'
        f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        f'[sources.wms]\ntype = "postgres"\ndsn = "{dsn}"\nrepositories = ["s3"]\n\n'
        f'[sources.other]\ntype = "postgres"\ndsn = "{dsn}"\nrepositories = ["local"]\n'
    )


# the permissions do not depend on the server: checked on one cluster
@on_oldest_major
def test_database_host_works_as_the_writer_and_cannot_delete_backups(
    enforced: Enforced,
    pg_cluster: ScratchCluster,
    fresh_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    configure(ws, pg_cluster.dsn(fresh_db), enforced.url())

    # a stranger's key is refused before anything else
    as_user(monkeypatch, Credentials("AKIAUNKNOWN000000000", "wrong"))
    refused = ws.run("list", "--repo", "s3")
    assert refused.returncode != 0
    assert "s3://" in refused.stderr and "Traceback" not in refused.stderr

    as_user(monkeypatch, enforced.writer)
    ws.run("init", check=True)
    made = ws.run_json("backup", "wms")
    assert made["failed_repositories"] == {}
    assert [b["id"] for b in ws.run_json("list", "--repo", "s3")] == [made["id"]]
    assert ws.run("verify", "wms", "--deep").returncode == 0
    assert_restores_identically(ws, pg_cluster, fresh_db, f"{fresh_db}_writer")
    assert_wal_round_trip(ws, wal_segment(tmp_path, of=pg_cluster), tmp_path / "fetched")

    # copying into the repository is adding objects too
    other = ws.run_json("backup", "other")
    copied = ws.run_json("copy", "--from", "local", "--to", "s3", "--source", "other")
    assert copied[0]["backups_copied"] == [other["id"]]

    # the writer's credential cannot remove what it wrote; the pruner's can
    data_keys = [
        info.key
        for info in S3Storage(enforced.url(), StorageOptions()).list(f"wms/backups/{made['id']}/")
        if not info.key.endswith(".json")
    ]
    assert data_keys
    writer_storage = S3Storage(enforced.url(), StorageOptions(max_attempts=2))
    with pytest.raises(PermanentError) as denied:
        writer_storage.delete(data_keys[0])
    assert "access denied" in str(denied.value).lower()
    assert writer_storage.stat(data_keys[0]).size > 0

    as_user(monkeypatch, enforced.pruner)
    pruner_storage = S3Storage(enforced.url(), StorageOptions())
    pruner_storage.delete(data_keys[0])
    assert data_keys[0] not in [info.key for info in pruner_storage.list("wms/backups/")]

    # pruning: refused to the writer without deleting anything, done by the pruner
    as_user(monkeypatch, enforced.writer)
    newer = ws.run_json("backup", "wms")["id"]
    ws.config.write_text(ws.config.read_text() + "\n[retention]\nkeep_last = 1\n")
    assert ws.run_json("prune", "wms", "--dry-run")[0]["delete"] == [made["id"]]
    refused = ws.run("prune", "wms")
    assert refused.returncode == 1 and "access denied" in refused.stderr.lower()
    assert [b["id"] for b in ws.run_json("list", "wms")] == [made["id"], newer]

    as_user(monkeypatch, enforced.pruner)
    pruned = ws.run_json("prune", "wms")[0]
    assert pruned["deleted"] == [made["id"]]
    assert [b["id"] for b in ws.run_json("list", "wms")] == [newer]
