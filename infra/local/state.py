"""Local state that survives a restart: saved on a clean shutdown, restored at the next start.

What is kept (under ``$SERVAL_DATA_DIR``, default ``.serval/``, in ``state/``):

- ``dynamodb/<table id>.jsonl``: every item of every spec table (DynamoDB JSON);
- ``s3/<bucket id>.jsonl`` and ``s3/blobs/<sha256>``: the current version of every
  object of every spec bucket, with its version id, content type and user metadata;
- ``cognito/users.json``: every user of the pool with its ``sub``, attributes,
  groups, status and password (local demo data, kept so logins and the ``sub``
  that items refer to stay the same);
- ``secretsmanager/secrets.json``: the current value of every spec secret (by
  secret id), so what was sealed with the audit seal key stays verifiable.

Not kept: noncurrent object versions and delete markers, stream records, queued
messages, and Step Functions executions. Restoring happens after the resources
exist and before the table streams and upload notifications are switched on (see
:mod:`infra.local.resources`), so it triggers nothing.

Version ids, ``sub`` and passwords cannot be set through the AWS APIs; they are
set on moto's objects directly (this process runs moto).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.cognitoidp.models import CognitoIdpUser, cognitoidp_backends
from moto.s3.models import s3_backends

from infra.local.resources import LocalResources
from infra.spec import ROOT, ServalSpec

FORMAT_VERSION = 1
DEFAULT_DATA_DIR = ROOT / ".serval"
BATCH_WRITE_LIMIT = 25


@dataclass(frozen=True)
class StateSummary:
    items: dict[str, int] = field(default_factory=dict)  # by table id
    objects: dict[str, int] = field(default_factory=dict)  # by bucket id
    users: int = 0
    secrets: int = 0

    @property
    def is_empty(self) -> bool:
        return not any(self.items.values()) and not any(self.objects.values()) and not self.users

    def describe(self) -> str:
        items = ", ".join(f"{n} {t}" for t, n in self.items.items())
        objects = ", ".join(f"{n} in {b}" for b, n in self.objects.items())
        return (
            f"items: {items or 'none'}; objects: {objects or 'none'}; users: {self.users}; "
            f"secrets: {self.secrets}"
        )


# --------------------------------------------------------------------------- DynamoDB JSON on disk


def _to_disk(value: Any) -> Any:
    """boto3's low-level attribute values with bytes base64-encoded (the wire format)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _to_disk(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_to_disk(v) for v in value]
    return value


def _from_disk(value: dict[str, Any]) -> dict[str, Any]:
    [(kind, inner)] = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _from_disk(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_from_disk(v) for v in inner]}
    return value


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if path.is_file():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)


# --------------------------------------------------------------------------- moto objects


def _moto_user(resources: LocalResources, username: str) -> CognitoIdpUser:
    pool = cognitoidp_backends[resources.account_id][resources.region].user_pools[resources.user_pool_id]
    return pool.users[username]


def _rekey_user(resources: LocalResources, created_username: str, saved: dict[str, Any]) -> None:
    """Give a re-created user its saved sub/username, password and status."""
    pool = cognitoidp_backends[resources.account_id][resources.region].user_pools[resources.user_pool_id]
    user = pool.users.pop(created_username)
    user.id = saved["sub"]
    user.username = saved["username"]
    user.update_attributes([{"Name": "sub", "Value": saved["sub"]}])
    user.password = saved["password"]
    user.status = saved["status"]
    user.enabled = saved["enabled"]
    pool.users[user.username] = user


def _set_version_id(resources: LocalResources, bucket: str, key: str, version_id: str) -> None:
    stored = s3_backends[resources.account_id]["aws"].get_object(bucket, key)
    assert stored is not None
    stored._version_id = version_id


# --------------------------------------------------------------------------- save / restore


@dataclass
class LocalState:
    data_dir: Path = DEFAULT_DATA_DIR

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    def exists(self) -> bool:
        return (self.state_dir / "state.json").is_file()

    def save(self, spec: ServalSpec, resources: LocalResources) -> StateSummary:
        """Write everything to a fresh directory, then swap it in (a crash never leaves half a state)."""
        staging = self.data_dir / "state.saving"
        shutil.rmtree(staging, ignore_errors=True)
        summary = StateSummary(
            items={t: self._save_table(staging, t, name) for t, name in resources.table_names.items()},
            objects={b: self._save_bucket(staging, b, name) for b, name in resources.bucket_names.items()},
            users=self._save_users(staging, resources),
            secrets=self._save_secrets(staging, spec),
        )
        (staging / "state.json").write_text(
            json.dumps(
                {"format": FORMAT_VERSION, "saved_at": time.time(), "spec_prefix": spec.prefix}, indent=2
            )
        )
        shutil.rmtree(self.state_dir, ignore_errors=True)
        staging.rename(self.state_dir)
        return summary

    def restore(self, spec: ServalSpec, resources: LocalResources) -> StateSummary:
        if not self.exists():
            return StateSummary()
        meta = json.loads((self.state_dir / "state.json").read_text())
        if meta.get("format") != FORMAT_VERSION or meta.get("spec_prefix") != spec.prefix:
            raise SystemExit(f"{self.state_dir} holds state of another format or environment; remove it")
        return StateSummary(
            items={t: self._restore_table(t, name) for t, name in resources.table_names.items()},
            objects={
                b: self._restore_bucket(b, name, resources) for b, name in resources.bucket_names.items()
            },
            users=self._restore_users(resources),
            secrets=self._restore_secrets(spec),
        )

    # ------------------------------------------------------------------ DynamoDB

    @staticmethod
    def _save_table(staging: Path, table_id: str, table_name: str) -> int:
        def items() -> Iterator[dict[str, Any]]:
            for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table_name):
                for item in page["Items"]:
                    yield _to_disk(item)

        return _write_jsonl(staging / "dynamodb" / f"{table_id}.jsonl", items())

    def _restore_table(self, table_id: str, table_name: str) -> int:
        client = boto3.client("dynamodb")
        batch: list[dict[str, Any]] = []
        count = 0

        def flush() -> None:
            requests: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}} for item in batch]}
            while requests:
                requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            batch.clear()

        for row in _read_jsonl(self.state_dir / "dynamodb" / f"{table_id}.jsonl"):
            batch.append({name: _from_disk(value) for name, value in row.items()})
            count += 1
            if len(batch) == BATCH_WRITE_LIMIT:
                flush()
        if batch:
            flush()
        return count

    # ------------------------------------------------------------------ S3

    @staticmethod
    def _save_bucket(staging: Path, bucket_id: str, bucket: str) -> int:
        s3 = boto3.client("s3")
        blobs = staging / "s3" / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)

        def objects() -> Iterator[dict[str, Any]]:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for listed in page.get("Contents", []):
                    obj = s3.get_object(Bucket=bucket, Key=listed["Key"])
                    body = obj["Body"].read()
                    digest = hashlib.sha256(body).hexdigest()
                    (blobs / digest).write_bytes(body)
                    yield {
                        "key": listed["Key"],
                        "version_id": obj.get("VersionId"),
                        "content_type": obj.get("ContentType"),
                        "metadata": obj.get("Metadata", {}),
                        "blob": digest,
                    }

        return _write_jsonl(staging / "s3" / f"{bucket_id}.jsonl", objects())

    def _restore_bucket(self, bucket_id: str, bucket: str, resources: LocalResources) -> int:
        s3 = boto3.client("s3")
        count = 0
        for row in _read_jsonl(self.state_dir / "s3" / f"{bucket_id}.jsonl"):
            extra = {"ContentType": row["content_type"]} if row.get("content_type") else {}
            body = (self.state_dir / "s3" / "blobs" / row["blob"]).read_bytes()
            s3.put_object(Bucket=bucket, Key=row["key"], Body=body, Metadata=row["metadata"], **extra)
            if row.get("version_id") not in (None, "null"):
                _set_version_id(resources, bucket, row["key"], row["version_id"])
            count += 1
        return count

    # ------------------------------------------------------------------ Cognito

    @staticmethod
    def _save_users(staging: Path, resources: LocalResources) -> int:
        cognito = boto3.client("cognito-idp")
        users = []
        for page in cognito.get_paginator("list_users").paginate(UserPoolId=resources.user_pool_id):
            for listed in page["Users"]:
                username = listed["Username"]
                moto_user = _moto_user(resources, username)
                groups = cognito.admin_list_groups_for_user(
                    UserPoolId=resources.user_pool_id, Username=username
                )
                attributes = {a["Name"]: a["Value"] for a in listed.get("Attributes", [])}
                users.append(
                    {
                        "username": username,
                        "sub": attributes.pop("sub"),
                        "attributes": attributes,
                        "groups": sorted(g["GroupName"] for g in groups["Groups"]),
                        "status": moto_user.status,
                        "enabled": moto_user.enabled,
                        "password": moto_user.password,
                    }
                )
        path = staging / "cognito" / "users.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(users, indent=2, ensure_ascii=False))
        return len(users)

    def _restore_users(self, resources: LocalResources) -> int:
        path = self.state_dir / "cognito" / "users.json"
        if not path.is_file():
            return 0
        cognito = boto3.client("cognito-idp")
        users: list[dict[str, Any]] = json.loads(path.read_text())
        for saved in users:
            attributes = saved["attributes"]
            created = cognito.admin_create_user(
                UserPoolId=resources.user_pool_id,
                Username=attributes.get("email", saved["username"]),
                UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
                MessageAction="SUPPRESS",
            )["User"]["Username"]
            _rekey_user(resources, created, saved)
            for group in saved["groups"]:
                cognito.admin_add_user_to_group(
                    UserPoolId=resources.user_pool_id, Username=saved["username"], GroupName=group
                )
        return len(users)

    # ------------------------------------------------------------------ Secrets Manager

    @staticmethod
    def _save_secrets(staging: Path, spec: ServalSpec) -> int:
        client = boto3.client("secretsmanager")
        values = {
            secret_id: client.get_secret_value(SecretId=secret.name)["SecretString"]
            for secret_id, secret in spec.secrets.items()
        }
        path = staging / "secretsmanager" / "secrets.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
        return len(values)

    def _restore_secrets(self, spec: ServalSpec) -> int:
        """Put the saved value over the random one provisioning gave each secret still in the spec."""
        path = self.state_dir / "secretsmanager" / "secrets.json"
        if not path.is_file():
            return 0
        client = boto3.client("secretsmanager")
        saved: dict[str, str] = json.loads(path.read_text())
        restored = {k: v for k, v in saved.items() if k in spec.secrets}
        for secret_id, value in restored.items():
            client.put_secret_value(SecretId=spec.secrets[secret_id].name, SecretString=value)
        return len(restored)
