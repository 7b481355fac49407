"""Buckets are private, encrypted, TLS-only, logged, with lifecycle and CORS from config."""

from __future__ import annotations

import pytest
from cfn_helpers import flat, resources

from serval import keys

ENVS = ("dev", "prod")


def _buckets(synth, env):
    """Spec bucket id -> (logical id, properties); the access-log bucket under the id "logs"."""
    spec = synth.envs[env].spec
    found = {}
    for logical_id, bucket in resources(synth.raw(env, "Storage"), "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        name = flat(props.get("BucketName", ""))
        matches = [
            b.id
            for b in spec.buckets.values()
            if flat(synth.envs[env].stacks["Storage"].resolve(b.name)) == name
        ]
        found[matches[0] if matches else "logs"] = (logical_id, props)
    return found


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_is_encrypted_private_and_tls_only(synth, env):
    # Given the Storage stack of an environment
    template = synth.raw(env, "Storage")
    buckets = _buckets(synth, env)
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    # Then every spec bucket plus the access-log bucket exists
    assert set(buckets) == {*synth.envs[env].spec.buckets, "logs"}
    for logical_id, props in buckets.values():
        # And each is SSE-encrypted and blocks all public access
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        # And its bucket policy denies every request that is not over TLS
        own = [p for p in policies if p["Properties"]["Bucket"] == {"Ref": logical_id}]
        assert len(own) == 1
        denies = [
            s
            for s in own[0]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies and denies[0]["Action"] == "s3:*"


@pytest.mark.parametrize("env", ENVS)
def test_spec_buckets_log_access_to_the_log_bucket(synth, env):
    # Given the buckets of an environment
    buckets = _buckets(synth, env)
    logs_id, _ = buckets["logs"]
    for bucket_id in synth.envs[env].spec.buckets:
        _, props = buckets[bucket_id]
        # Then each spec bucket delivers server access logs to the log bucket, under its own prefix
        assert props["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logs_id},
            "LogFilePrefix": f"{bucket_id}/",
        }


def test_data_bucket_is_versioned_and_expires_noncurrent_versions_and_stale_uploads(synth):
    # Given the dev config
    config = synth.envs["dev"].spec.config
    # When the data bucket is read
    _, props = _buckets(synth, "dev")["data"]
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    # Then it is versioned, old versions expire and incomplete multipart uploads are aborted
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": config.noncurrent_version_expiration_days
    }
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_exports_expire_after_the_configured_days_and_audit_evidence_with_the_audit_records(synth):
    for env in ENVS:
        # Given an environment's config
        config = synth.envs[env].spec.config
        # When the exports bucket is read
        _, props = _buckets(synth, env)["exports"]
        rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
        expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules.values() if "ExpirationInDays" in r}
        # Then every temporary prefix expires after export_expiration_days, no rule covers the
        # whole bucket, and audit evidence lives as long as the audit records (prod: forever)
        for prefix in keys.EXPORT_TEMPORARY_PREFIXES:
            assert expiring[prefix] == config.export_expiration_days
        assert all(r["Status"] == "Enabled" for r in rules.values())
        assert "" not in expiring and None not in expiring
        evidence = expiring.get(keys.AUDIT_EVIDENCE_PREFIX)
        assert evidence == (config.audit_ttl_days or None), (env, evidence)


def test_cors_allows_browser_uploads_from_the_configured_origins_only(synth):
    # Given the dev spec's buckets and allowed origins
    spec = synth.envs["dev"].spec
    origins = list(spec.config.cors_allowed_origins)
    buckets = _buckets(synth, "dev")
    assert spec.buckets["data"].browser_uploads and not spec.buckets["exports"].browser_uploads
    for bucket_spec in spec.buckets.values():
        # When a bucket's CORS rule is read
        (rule,) = buckets[bucket_spec.id][1]["CorsConfiguration"]["CorsRules"]
        # Then only the configured origins may call it, and only browser-upload buckets accept PUT/POST
        assert rule["AllowedOrigins"] == origins
        expected = {"GET", "HEAD", "PUT", "POST"} if bucket_spec.browser_uploads else {"GET", "HEAD"}
        assert set(rule["AllowedMethods"]) == expected
