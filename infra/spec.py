"""The single source of truth for Serval's resources.

CDK (``infra/constructs``) and the local moto stack (``infra/local``) both build
their resources from :func:`build`. Names, key schemas, indexes, queue wiring,
the function list with handlers, sizes and triggers, and each function's
environment are defined here once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
LAYER_SRC = ROOT / "layers"
FUNCTIONS_SRC = ROOT / "functions"
if str(LAYER_SRC) not in sys.path:  # the settings model lives in the layer
    sys.path.insert(0, str(LAYER_SRC))

from infra.config import EnvConfig  # noqa: E402
from serval import errors, keys  # noqa: E402
from serval.domain import events, webhooks  # noqa: E402
from serval.domain.access import PASSWORD_MIN_LENGTH  # noqa: E402
from serval.settings import METRICS_NAMESPACE, RuntimeSettings  # noqa: E402

ROLES: tuple[str, ...] = ("admin", "manager", "reviewer", "annotator")
PYTHON_RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
UPLOAD_PREFIX = keys.DATA_PROJECTS_PREFIX
# Settings only the functions that need them declare (each with its own value), so the
# environments of different functions never disagree on a name.
PER_FUNCTION_SETTINGS = {"AWS_CALL_BUDGET", "AWS_CALL_DEADLINE_S", "CORS_ALLOW_ORIGIN"}


@dataclass(frozen=True)
class IndexSpec:
    name: str
    pk: str
    sk: str


@dataclass(frozen=True)
class TableSpec:
    id: str
    name: str
    pk: str
    sk: str
    indexes: tuple[IndexSpec, ...]
    ttl_attribute: str | None
    stream: Literal["NEW_AND_OLD_IMAGES"] | None = "NEW_AND_OLD_IMAGES"

    @property
    def key_attributes(self) -> tuple[str, ...]:
        names = [self.pk, self.sk]
        for index in self.indexes:
            names += [index.pk, index.sk]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class BucketSpec:
    id: str
    name: str
    versioned: bool
    cors: bool
    browser_uploads: bool = False  # CORS also allows PUT and POST (presigned uploads from the SPA)
    temporary_prefixes: tuple[str, ...] = ()  # expire after config.export_expiration_days
    audit_evidence_prefix: str | None = None  # kept as long as audit records (config.audit_ttl_days)


@dataclass(frozen=True)
class BucketCors:
    """A bucket's one CORS rule, as both runtimes apply it (CDK's CorsRule, moto's PutBucketCors).

    The web app's origin may GET (and HEAD) the presigned media and export URLs; a bucket that
    takes browser uploads also accepts its presigned PUTs (single and multipart parts) and POSTs.
    ``ETag`` is exposed because the browser reads each part's ETag to complete a multipart upload;
    ``Content-Range`` and ``Accept-Ranges`` because media players and viewers fetch byte ranges.
    """

    methods: tuple[str, ...]
    origins: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ("*",)
    exposed_headers: tuple[str, ...] = ("ETag", "Content-Range", "Accept-Ranges", "Content-Length")
    max_age_s: int = 3000


@dataclass(frozen=True)
class ObjectAccess:
    """Object-level S3 access on key patterns (IAM wildcards), nothing bucket-wide and no deletes.

    ``read``: s3:GetObject (reads, and the presigned GETs the function hands out);
    ``write``: s3:PutObject, which covers presigned PUTs and every step of a multipart upload.
    """

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueSpec:
    id: str
    name: str
    visibility_timeout_s: int
    dlq_name: str
    max_receive_count: int
    retention_s: int = 14 * 24 * 3600
    # Another spec queue (by id) takes this queue's dead letters instead of a DLQ of its own;
    # ``dlq_name`` is then that queue's name.
    dead_letter_queue: str | None = None


@dataclass(frozen=True)
class SecretSpec:
    """A generated secret (Secrets Manager) that functions read through ``secrets``."""

    id: str
    name: str
    description: str


@dataclass(frozen=True)
class SqsTrigger:
    queue: str  # QueueSpec.id
    batch_size: int
    max_concurrency: int
    max_batching_window_s: int = 1
    # The function answers with ``batchItemFailures``; only the listed messages are retried.
    report_batch_item_failures: bool = True
    kind: Literal["sqs"] = "sqs"


@dataclass(frozen=True)
class StreamTrigger:
    table: str  # TableSpec.id
    batch_size: int = 100
    retry_attempts: int = 10
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    bisect_batch_on_error: bool = True
    report_batch_item_failures: bool = True
    # QueueSpec.id that receives the metadata of a batch whose retries are exhausted
    on_failure_queue: str | None = None
    # Seconds to gather records before invoking (fewer, fuller batches: fewer PutEvents calls
    # and chain-head writes), at the price of that much latency.
    max_batching_window_s: int = 0
    kind: Literal["stream"] = "stream"


@dataclass(frozen=True)
class ApiTrigger:
    kind: Literal["api"] = "api"


@dataclass(frozen=True)
class StateMachineTrigger:
    """Invoked by the state machine's Task states (lambda:invoke)."""

    state_machine: str  # StateMachineSpec.id
    kind: Literal["states"] = "states"


@dataclass(frozen=True)
class ScheduleTrigger:
    """Invoked on a fixed rate: an EventBridge schedule in AWS, a timer in the local stack."""

    every_minutes: int
    kind: Literal["schedule"] = "schedule"


Trigger = SqsTrigger | StreamTrigger | ApiTrigger | StateMachineTrigger | ScheduleTrigger


@dataclass(frozen=True)
class QueueRef:
    """A queue of the spec, or its dead-letter queue."""

    queue: str  # QueueSpec.id
    dead_letter: bool = False


@dataclass(frozen=True)
class FunctionAlarms:
    """CloudWatch alarms on a queue-triggered function, built by the stack that places it.

    One fires on any message in its queue's dead-letter queue; the other on the share of its
    attempts that failed over ``failure_window_s``, from two of its Powertools Count metrics
    (in its environment's namespace, dimension ``service``), judged only once a window holds
    ``min_attempts``, so a quiet window is never an alarm.
    """

    failed_metric: str
    succeeded_metric: str
    max_failure_rate: float = 0.5
    failure_window_s: int = 15 * 60
    min_attempts: int = 10
    dead_letter_window_s: int = 5 * 60


@dataclass(frozen=True)
class FunctionSpec:
    id: str
    name: str
    handler: str  # module path relative to functions/, e.g. "api.handler.handler"
    description: str
    memory_mb: int
    timeout_s: int
    trigger: Trigger
    environment: dict[str, str] = field(default_factory=dict)
    # What the function's role may do, by resource id: least privilege per function.
    # "append": reads + PutItem; "update": reads + UpdateItem (neither can delete); "write": all of it.
    table_access: dict[str, Literal["read", "append", "update", "write"]] = field(default_factory=dict)
    # "read" / "write": the whole bucket; ObjectAccess: only those actions on those keys.
    bucket_access: dict[str, Literal["read", "write"] | ObjectAccess] = field(default_factory=dict)
    publishes_events: bool = False
    manages_users: bool = False
    # Queues the function sends to: environment variable -> QueueRef. Both runtimes set the
    # variable to the queue's URL and grant (CDK) sqs:SendMessage on it.
    sends_to: dict[str, QueueRef] = field(default_factory=dict)
    # SecretSpec ids the function may read (secretsmanager:GetSecretValue on each).
    secrets: tuple[str, ...] = ()
    # StateMachineSpec ids whose executions the function starts (env STATE_MACHINE_ARN) ...
    starts_executions: tuple[str, ...] = ()
    # ... and whose waiting steps it completes (SendTaskSuccess / SendTaskFailure) ...
    completes_steps: bool = False
    # StateMachineSpec ids whose executions the function lists, reads and stops (the machine's
    # ARN in STATE_MACHINE_ARN).
    manages_executions: tuple[str, ...] = ()
    alarms: FunctionAlarms | None = None

    # Concurrent invocations of a function without a concurrency of its own (API, state machine
    # steps): the local stack runs that many worker processes of it at most.
    unreserved_concurrency: int = 4

    @property
    def concurrency(self) -> int:
        """How many invocations of the function run at once: its SQS trigger's maximum, one per
        stream shard (in order), else ``unreserved_concurrency``."""
        if isinstance(self.trigger, SqsTrigger):
            return self.trigger.max_concurrency
        if isinstance(self.trigger, StreamTrigger):
            return 1
        return self.unreserved_concurrency

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def entrypoint(self) -> str:
        return self.handler.rsplit(".", 1)[1]


# The variables a function gets from resources that exist only once deployed (or provisioned).
USER_POOL_ID_VARIABLE = "USER_POOL_ID"
STATE_MACHINE_ARN_VARIABLE = "STATE_MACHINE_ARN"


def runtime_environment(
    fn: FunctionSpec,
    *,
    user_pool_id: str,
    queue_url: Callable[[str, QueueRef], str],
    state_machine_arn: Callable[[str], str],
) -> dict[str, str]:
    """A function's runtime environment: its spec variables, and the references only known once
    the resources exist: the user pool (``manages_users``), the URL of each ``sends_to`` queue
    (``queue_url(variable, ref)``), the ARN of the one state machine it starts or manages.

    CDK passes tokens and the local stack the values moto gave: both build every function's
    environment here.
    """
    environment = dict(fn.environment)
    if fn.manages_users:
        environment[USER_POOL_ID_VARIABLE] = user_pool_id
    for variable, ref in fn.sends_to.items():
        environment[variable] = queue_url(variable, ref)
    for machine_id in (*fn.starts_executions, *fn.manages_executions):
        environment[STATE_MACHINE_ARN_VARIABLE] = state_machine_arn(machine_id)
    return environment


@dataclass(frozen=True)
class AuthSpec:
    user_pool_name: str
    client_name: str
    groups: tuple[str, ...] = ROLES  # in precedence order: admin wins
    username_attributes: tuple[str, ...] = ("email",)  # users sign in with their email
    # Password policy: at least this long, with lower and upper case, digits and symbols.
    password_min_length: int = PASSWORD_MIN_LENGTH
    client_auth_flows: tuple[str, ...] = (
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    )
    # The web app's login: authorization code + PKCE, through Cognito managed login in AWS and the
    # local gateway's OIDC endpoints locally (infra/local/oidc.py), with the same client settings.
    oauth_scopes: tuple[str, ...] = ("openid", "email", "profile")
    callback_path: str = "/auth/callback"  # the SPA route that completes a login
    logout_path: str = "/"  # where the SPA lands after logout
    callback_urls: tuple[str, ...] = ()  # the frontend origin + callback_path
    logout_urls: tuple[str, ...] = ()  # the frontend origin + logout_path
    # Cognito managed login's domain prefix (<prefix>.auth.<region>.amazoncognito.com)
    domain_prefix: str = ""


@dataclass(frozen=True)
class GatewayError:
    """How API Gateway answers a request it refuses itself: status (None keeps the type's own) and error code."""

    status: int | None
    code: str


# API Gateway's own answers, by gateway response type, in the API's error envelope: the codes of
# serval.errors.GATEWAY_ERRORS, which the local gateway answers with too.
GATEWAY_ERRORS: dict[str, GatewayError] = {
    response_type: GatewayError(None if response_type in errors.GATEWAY_KEEPS_STATUS else e.status, e.code)
    for response_type, e in errors.GATEWAY_ERRORS.items()
}


@dataclass(frozen=True)
class ApiSpec:
    """The REST API's shape that both runtimes share (API Gateway in AWS, the local gateway)."""

    stage_name: str = "v1"
    # (method, path) pairs that need no token; every other route needs a Cognito id token.
    public_routes: tuple[tuple[str, str], ...] = (
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/swagger"),
    )
    # Paths the API serves (a prefix matches itself and everything below it). The local
    # gateway serves every other path from the built frontend.
    path_prefixes: tuple[str, ...] = (
        "/health",
        "/openapi.json",
        "/swagger",
        "/me",
        "/users",
        "/projects",
        "/tasks",
        "/imports",
        "/exports",
        "/webhooks",
        "/events",
        "/audit",
    )
    # Empty: the Cognito authorizer takes id tokens. Non-empty: access tokens with one of these scopes.
    authorization_scopes: tuple[str, ...] = ()
    gateway_errors: dict[str, GatewayError] = field(default_factory=lambda: dict(GATEWAY_ERRORS))


@dataclass(frozen=True)
class FrontendSpec:
    """The web app: where its build is, and the runtime configuration file served beside it."""

    dist_dir: Path = ROOT / "frontend" / "dist"
    config_path: str = "/config.json"


def web_config(
    spec: ServalSpec,
    *,
    api_url: str,
    region: str,
    issuer: str,
    metadata_url: str,
    client_id: str,
    end_session_endpoint: str,
) -> dict[str, object]:
    """The web app's runtime ``config.json``: one build serves every environment.

    ``issuer`` equals the ``iss`` of the pool's ID tokens (oidc-client-ts's ``authority``);
    ``metadata_url`` is where the browser reads the discovery document; ``end_session_endpoint``
    takes Cognito's logout parameters (``client_id`` and ``logout_uri``).
    """
    return {
        "environment": spec.config.name,
        "apiUrl": api_url,
        "region": region,
        "oidc": {
            "authority": issuer,
            "metadataUrl": metadata_url,
            "clientId": client_id,
            "scope": " ".join(spec.auth.oauth_scopes),
            "redirectPath": spec.auth.callback_path,
            "endSessionEndpoint": end_session_endpoint,
        },
    }


# The dispatcher's timeout: an invocation makes at most logic.dispatch.MAX_ATTEMPTS deliveries
# (six rounds of 64, each within 10 s: about 60 s at worst); the rest of its batch is queued
# again, due at once. A batch is up to WEBHOOKS_BATCH_SIZE events gathered for up to a second:
# most events match no subscription, so small batches would cost invocations for nothing.
WEBHOOKS_TIMEOUT_S = 120
# How often the reconciler runs; a handoff is overdue serval.domain.handoffs.GRACE_S after its commit.
RECONCILE_EVERY_MINUTES = 5
WEBHOOKS_BATCH_SIZE = 100

# Every Serval event goes to the webhook dispatcher, which matches it to subscriptions.
WEBHOOK_EVENT_PATTERN = events.bus_pattern()


@dataclass(frozen=True)
class UploadNotificationSpec:
    """The uploads that start the pipeline: objects created in ``bucket`` (BucketSpec.id) under
    ``prefix`` notify ``queue`` (QueueSpec.id). S3 event notifications in both runtimes."""

    bucket: str
    queue: str
    prefix: str = UPLOAD_PREFIX
    event: str = "s3:ObjectCreated:*"
    id: str = "uploads-to-ingest"


@dataclass(frozen=True)
class EventRuleSpec:
    """An EventBridge rule on the Serval bus that forwards matching events to a queue."""

    name: str
    queue: str  # QueueSpec.id
    pattern: str  # JSON event pattern


@dataclass(frozen=True)
class StateMachineSpec:
    """A Step Functions state machine from an ASL file with ``${Placeholders}``.

    ``substitutions`` maps each placeholder to a FunctionSpec id whose ARN replaces it; CDK
    and the local stack apply the same substitutions to the same file.
    """

    id: str
    name: str
    definition_file: Path
    substitutions: dict[str, str]
    type: Literal["STANDARD"] = "STANDARD"


@dataclass(frozen=True)
class ServalSpec:
    config: EnvConfig
    prefix: str
    tables: dict[str, TableSpec]
    buckets: dict[str, BucketSpec]
    queues: dict[str, QueueSpec]
    event_bus_name: str
    auth: AuthSpec
    functions: dict[str, FunctionSpec]
    uploads: UploadNotificationSpec = field(default_factory=lambda: UploadNotificationSpec("data", "ingest"))
    api: ApiSpec = field(default_factory=ApiSpec)
    frontend: FrontendSpec = field(default_factory=FrontendSpec)
    event_rules: tuple[EventRuleSpec, ...] = ()
    secrets: dict[str, SecretSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)

    @property
    def upload_prefix(self) -> str:
        return self.uploads.prefix

    def stack_name(self, concern: str) -> str:
        return f"Serval-{self.config.name}-{concern}"

    def bucket_cors(self, bucket: BucketSpec) -> BucketCors | None:
        """The CORS rule of ``bucket`` for the web app's origin; None for a bucket without CORS."""
        if not bucket.cors:
            return None
        methods = ("GET", "HEAD") + (("PUT", "POST") if bucket.browser_uploads else ())
        return BucketCors(methods=methods, origins=self.config.cors_allowed_origins)


def _single_table(table_id: str, prefix: str, *extra: IndexSpec) -> TableSpec:
    """A table with the single-table keys (PK/SK), GSI1, GSI2 (+ ``extra``), TTL and a stream."""
    return TableSpec(
        id=table_id,
        name=f"{prefix}-{table_id}",
        pk=keys.PK,
        sk=keys.SK,
        indexes=(
            IndexSpec(keys.GSI1, keys.GSI1PK, keys.GSI1SK),
            IndexSpec(keys.GSI2, keys.GSI2PK, keys.GSI2SK),
            *extra,
        ),
        ttl_attribute=keys.TTL_ATTRIBUTE,
    )


def _tables(prefix: str) -> dict[str, TableSpec]:
    return {
        # GSI3 lists the tasks reserved for each user (sparse: reserved tasks only), so releasing
        # a removed or disabled member's reservations is a Query, never a scan.
        # GSI4 is the outbox of step handoffs not yet delivered (sparse), which the reconciler reads.
        "tasks": _single_table(
            "tasks",
            prefix,
            IndexSpec(keys.GSI3, keys.GSI3PK, keys.GSI3SK),
            IndexSpec(keys.GSI4, keys.GSI4PK, keys.GSI4SK),
        ),
        # GSI3 orders each scope's hash chain by sequence number (sparse: chained records only).
        "audit": _single_table("audit", prefix, IndexSpec(keys.GSI3, keys.GSI3PK, keys.GSI3SK)),
        # The webhook delivery log: every attempt, by subscription in time order (PK/SK) and by
        # event (GSI1); rows expire after config.webhook_log_days. No stream: a row announces nothing.
        "deliveries": TableSpec(
            id="deliveries",
            name=f"{prefix}-deliveries",
            pk=keys.PK,
            sk=keys.SK,
            indexes=(IndexSpec(keys.GSI1, keys.GSI1PK, keys.GSI1SK),),
            ttl_attribute=keys.TTL_ATTRIBUTE,
            stream=None,
        ),
    }


def build(config: EnvConfig, account: str, region: str) -> ServalSpec:
    """Every resource of one environment. ``account``/``region`` may be CDK tokens."""
    prefix = f"serval-{config.name}"
    tables = _tables(prefix)
    buckets = {
        "data": BucketSpec(
            "data", f"{prefix}-data-{account}-{region}", versioned=True, cors=True, browser_uploads=True
        ),
        "exports": BucketSpec(
            "exports",
            f"{prefix}-exports-{account}-{region}",
            versioned=False,
            cors=True,
            temporary_prefixes=keys.EXPORT_TEMPORARY_PREFIXES,
            audit_evidence_prefix=keys.AUDIT_EVIDENCE_PREFIX,
        ),
    }
    queues = {
        "ingest": QueueSpec(
            id="ingest",
            name=f"{prefix}-ingest",
            # six times the ingest function's timeout, as AWS recommends for SQS sources
            visibility_timeout_s=6 * 900,
            dlq_name=f"{prefix}-ingest-dlq",
            max_receive_count=config.ingest_max_receive_count,
        ),
        # Byte ranges of manifests larger than config.ingest_range_bytes, one message each.
        "ingest-ranges": QueueSpec(
            id="ingest-ranges",
            name=f"{prefix}-ingest-ranges",
            visibility_timeout_s=6 * 900,
            dlq_name=f"{prefix}-ingest-ranges-dlq",
            max_receive_count=config.ingest_max_receive_count,
        ),
        "events-dlq": QueueSpec(
            id="events-dlq",
            name=f"{prefix}-events-failed",
            visibility_timeout_s=30,
            dlq_name=f"{prefix}-events-failed-dlq",
            max_receive_count=1000,
        ),
        # The last delivery of a job message that never finished (its worker crashed or timed
        # out each time): the jobs-dlq function fails the job with the reason, then keeps the
        # message in its own DLQ, "jobs-dead", as it keeps those it could not handle.
        "jobs-dlq": QueueSpec(
            id="jobs-dlq",
            name=f"{prefix}-jobs-dlq",
            visibility_timeout_s=6 * 60,
            dlq_name=f"{prefix}-jobs-dead",
            max_receive_count=5,
        ),
        # Async jobs: audit and dataset exports, bulk operations, export shards and assembly.
        "jobs": QueueSpec(
            id="jobs",
            name=f"{prefix}-jobs",
            visibility_timeout_s=6 * 900,
            dlq_name=f"{prefix}-jobs-dlq",
            max_receive_count=3,
            dead_letter_queue="jobs-dlq",
        ),
        # Audit stream batches the chainer could not link after every retry (the chain waits).
        "chainer-failed": QueueSpec(
            id="chainer-failed",
            name=f"{prefix}-audit-chain-failed",
            visibility_timeout_s=30,
            dlq_name=f"{prefix}-audit-chain-failed-dlq",
            max_receive_count=1000,
        ),
        # Task executions to start, throttled by the starter's concurrency (StartExecution quotas).
        "executions": QueueSpec(
            id="executions",
            name=f"{prefix}-executions",
            visibility_timeout_s=6 * 60,
            dlq_name=f"{prefix}-executions-dlq",
            max_receive_count=10,
        ),
        # Domain events for webhook consumers (every Serval event, by a bus rule), and the
        # dispatcher's own retries and replays. A retry due later than SQS's 15-minute delay
        # allows comes back early and is sent again with the rest of its wait (docs/decisions.md).
        "webhooks": QueueSpec(
            id="webhooks",
            name=f"{prefix}-webhooks",
            visibility_timeout_s=6 * WEBHOOKS_TIMEOUT_S,  # six times the dispatcher's timeout
            dlq_name=f"{prefix}-webhooks-dlq",
            max_receive_count=5,
        ),
    }
    bus = f"{prefix}-events"
    event_rules = (
        EventRuleSpec(
            name=f"{prefix}-tasks-to-executions",
            queue="executions",
            pattern=events.bus_pattern("task.created"),
        ),
        EventRuleSpec(name=f"{prefix}-events-to-webhooks", queue="webhooks", pattern=WEBHOOK_EVENT_PATTERN),
    )
    origin = config.frontend_origin
    auth = AuthSpec(
        user_pool_name=f"{prefix}-users",
        client_name=f"{prefix}-web",
        callback_urls=(origin + AuthSpec.callback_path,),
        logout_urls=(origin + AuthSpec.logout_path,),
        domain_prefix=f"{prefix}-{account}",
    )
    secrets = {
        "audit-seal": SecretSpec(
            id="audit-seal",
            name=f"{prefix}/audit-seal-key",
            description="HMAC key that seals audit records; verify flags any record whose seal does not match",
        )
    }
    base_env = RuntimeSettings(
        SERVAL_ENV=config.name,
        TASKS_TABLE=tables["tasks"].name,
        AUDIT_TABLE=tables["audit"].name,
        DATA_BUCKET=buckets["data"].name,
        EXPORT_BUCKET=buckets["exports"].name,
        EVENT_BUS=bus,
        LEASE_SECONDS=config.lease_seconds,
        MEDIA_URL_SECONDS=config.media_url_seconds,
        RESERVATION_SECONDS=config.reservation_seconds,
        AUDIT_TTL_DAYS=config.audit_ttl_days,
        MAX_BULK_CREATE=config.max_bulk_create,
        AUDIT_SEAL_SECRET=secrets["audit-seal"].name,
        AUTH_CACHE_SECONDS=config.auth_cache_seconds,
        ACTIVE_WINDOW=config.active_window,
        EXPORT_SHARD_TASKS=config.export_shard_tasks,
        INGEST_RANGE_BYTES=config.ingest_range_bytes,
        DELIVERIES_TABLE=tables["deliveries"].name,
        WEBHOOK_DISABLE_AFTER_FAILURES=config.webhook_disable_after_failures,
        WEBHOOK_DISABLE_AFTER_S=config.webhook_disable_after_s,
        WEBHOOK_SECRET_OVERLAP_S=config.webhook_secret_overlap_s,
        WEBHOOK_LOG_DAYS=config.webhook_log_days,
        WEBHOOK_TIME_SCALE=config.webhook_time_scale,
    ).model_dump(exclude=PER_FUNCTION_SETTINGS)
    env = {k: str(v) for k, v in base_env.items() if v != ""}

    def fenv(service: str) -> dict[str, str]:
        return env | {"POWERTOOLS_SERVICE_NAME": service, "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE}

    functions = {
        "api": FunctionSpec(
            id="api",
            name=f"{prefix}-api",
            handler="api.handler.handler",
            description="REST API behind API Gateway with the Cognito authorizer",
            memory_mb=1024,
            timeout_s=29,
            trigger=ApiTrigger(),
            # CORS headers for the web app's origin; a call budget that ends well inside the 29 s timeout
            environment=fenv("api")
            | {
                "CORS_ALLOW_ORIGIN": config.frontend_origin,
                "AWS_CALL_BUDGET": "request",
                "AWS_CALL_DEADLINE_S": str(config.api_call_deadline_s),
            },
            # deliveries: a subscription's test delivery is logged, and the log is read
            table_access={"tasks": "write", "audit": "append", "deliveries": "append"},
            # what presigning and the API's own small writes need (tests/infra checks these against keys.py)
            bucket_access={
                # uploads (presigned PUT, multipart); import error reports and the media of tasks
                # (presigned GET: the API signs only keys under the task's own project prefix)
                "data": ObjectAccess(write=(f"{UPLOAD_PREFIX}*",), read=(f"{UPLOAD_PREFIX}*", "reports/*")),
                # bulk id lists and the audit evidence of bulk changes; finished exports (presigned GET)
                "exports": ObjectAccess(
                    write=("bulk/*", f"{keys.AUDIT_EVIDENCE_PREFIX}*"),
                    read=("audit-exports/*", "dataset-exports/*"),
                ),
            },
            manages_users=True,
            # a deleted task's freed window slot is refilled by the starter
            # replays of webhook deliveries go to the dispatcher's queue
            sends_to={
                "JOBS_QUEUE_URL": QueueRef("jobs"),
                "EXECUTIONS_QUEUE_URL": QueueRef("executions"),
                "WEBHOOKS_QUEUE_URL": QueueRef("webhooks"),
            },
            secrets=("audit-seal",),
            completes_steps=True,
        ),
        "ingest": FunctionSpec(
            id="ingest",
            name=f"{prefix}-ingest",
            handler="ingest.handler.handler",
            description="Turns S3 uploads (media and manifests) into tasks, idempotently",
            memory_mb=1024,
            timeout_s=900,
            trigger=SqsTrigger(
                queue="ingest",
                batch_size=config.ingest_batch_size,
                max_concurrency=config.ingest_max_concurrency,
            ),
            environment=fenv("ingest"),
            table_access={"tasks": "write", "audit": "append"},
            bucket_access={"data": "write"},
            secrets=("audit-seal",),
            # poison records go to the DLQ with their reason; a large manifest fans out into
            # byte ranges, and a one-range import near the deadline continues, on the ranges queue
            sends_to={
                "INGEST_DLQ_URL": QueueRef("ingest", dead_letter=True),
                "INGEST_RANGES_QUEUE_URL": QueueRef("ingest-ranges"),
            },
        ),
        "ingest-ranges": FunctionSpec(
            id="ingest-ranges",
            name=f"{prefix}-ingest-ranges",
            handler="ingest.handler.ranges",
            description="Imports one byte range of a large manifest (a ranged S3 GET), idempotently",
            memory_mb=1024,
            timeout_s=900,
            # one range per invocation, so the ranges of a manifest run side by side
            trigger=SqsTrigger(
                queue="ingest-ranges",
                batch_size=1,
                max_concurrency=config.ingest_range_concurrency,
                max_batching_window_s=0,
            ),
            environment=fenv("ingest-ranges"),
            table_access={"tasks": "write", "audit": "append"},
            # reads manifests (and the uploader's signed metadata); writes the error reports
            bucket_access={
                "data": ObjectAccess(read=(f"{UPLOAD_PREFIX}*", "reports/*"), write=("reports/*",))
            },
            secrets=("audit-seal",),
            # a range near the deadline continues in a new message; poison ranges go to the DLQ
            sends_to={
                "INGEST_RANGES_QUEUE_URL": QueueRef("ingest-ranges"),
                "INGEST_RANGES_DLQ_URL": QueueRef("ingest-ranges", dead_letter=True),
            },
        ),
        "events": FunctionSpec(
            id="events",
            name=f"{prefix}-events",
            handler="events.handler.handler",
            description="Turns the tasks table stream into domain events on the event bus",
            memory_mb=256,
            timeout_s=60,
            trigger=StreamTrigger(table="tasks", on_failure_queue="events-dlq", max_batching_window_s=1),
            environment=fenv("events"),
            publishes_events=True,
        ),
        "workflow": FunctionSpec(
            id="workflow",
            name=f"{prefix}-workflow",
            handler="workflow.handler.handler",
            description="The task state machine's steps: route, label and review waits, export, completion",
            memory_mb=512,
            timeout_s=30,
            trigger=StateMachineTrigger(state_machine="task"),
            environment=fenv("workflow"),
            table_access={"tasks": "write", "audit": "append"},
            secrets=("audit-seal",),
            sends_to={"EXECUTIONS_QUEUE_URL": QueueRef("executions")},
        ),
        "starter": FunctionSpec(
            id="starter",
            name=f"{prefix}-starter",
            handler="starter.handler.handler",
            description="Starts task executions within each project's active window, throttled",
            memory_mb=256,
            timeout_s=60,
            # low concurrency keeps StartExecution well within its quota (refill ~300/s per region)
            trigger=SqsTrigger(queue="executions", batch_size=10, max_concurrency=2),
            environment=fenv("starter"),
            table_access={"tasks": "write"},
            starts_executions=("task",),
        ),
        # Finishes half-done work: step handoffs committed but never delivered (serval.logic.reconcile).
        "reconciler": FunctionSpec(
            id="reconciler",
            name=f"{prefix}-reconciler",
            handler="reconciler.handler.handler",
            description="Repairs half-finished work: delivers overdue step handoffs, re-creates lost executions",
            memory_mb=256,
            timeout_s=300,
            trigger=ScheduleTrigger(every_minutes=RECONCILE_EVERY_MINUTES),
            environment=fenv("reconciler"),
            # repairs task items (no put, no delete), each audited
            table_access={"tasks": "update", "audit": "append"},
            secrets=("audit-seal",),
            # a lost execution is re-created by the starter, throttled as every start is
            sends_to={"EXECUTIONS_QUEUE_URL": QueueRef("executions")},
            completes_steps=True,
            manages_executions=("task",),
            unreserved_concurrency=1,  # one run at a time (runs end well within their interval)
        ),
        "chainer": FunctionSpec(
            id="chainer",
            name=f"{prefix}-audit-chainer",
            handler="chainer.handler.handler",
            description="Links each new audit record into its scope's SHA-256 hash chain, in stream order",
            memory_mb=256,
            timeout_s=60,
            # Never skip a record: the chain waits at a failing record until it links.
            trigger=StreamTrigger(
                table="audit",
                retry_attempts=10_000,
                on_failure_queue="chainer-failed",
                max_batching_window_s=1,
            ),
            environment=fenv("chainer"),
            table_access={"audit": "update"},
            secrets=("audit-seal",),
        ),
        "jobs": FunctionSpec(
            id="jobs",
            name=f"{prefix}-jobs",
            handler="jobs.handler.handler",
            description="Runs async jobs (audit and dataset exports) with streaming multipart uploads",
            memory_mb=512,
            timeout_s=900,
            trigger=SqsTrigger(queue="jobs", batch_size=1, max_concurrency=5, max_batching_window_s=0),
            environment=fenv("jobs"),
            table_access={"tasks": "write", "audit": "append"},
            # data: read, for dataset exports' image headers (pixel sizes)
            bucket_access={"exports": "write", "data": "read"},
            secrets=("audit-seal",),
            # a paused job continues, and a large export fans out, in new jobs-queue messages
            sends_to={
                "JOBS_QUEUE_URL": QueueRef("jobs"),
                # a bulk delete frees its tasks' window slots: ask the starter to refill them
                "EXECUTIONS_QUEUE_URL": QueueRef("executions"),
            },
            # a bulk delete ends its tasks' waiting steps (SendTaskFailure TaskDeleted)
            completes_steps=True,
        ),
        "jobs-dlq": FunctionSpec(
            id="jobs-dlq",
            name=f"{prefix}-jobs-dlq",
            handler="jobs_dlq.handler.handler",
            description="Fails the job of a jobs message whose every delivery crashed or timed out",
            memory_mb=256,
            timeout_s=60,
            trigger=SqsTrigger(queue="jobs-dlq", batch_size=10, max_concurrency=2),
            environment=fenv("jobs-dlq"),
            table_access={"tasks": "update", "audit": "append"},
            secrets=("audit-seal",),
            # every handled message is kept in jobs-dead (a DLQ: it can be inspected and redriven)
            sends_to={"JOBS_DEAD_URL": QueueRef("jobs-dlq", dead_letter=True)},
        ),
        "webhooks": FunctionSpec(
            id="webhooks",
            name=f"{prefix}-webhooks",
            handler="webhooks.handler.handler",
            description="Delivers domain events to webhook subscriptions: signed, logged, retried for a day",
            memory_mb=512,
            # a batch's deliveries run side by side, each within domain.webhooks.DELIVERY_TIMEOUT_S
            timeout_s=WEBHOOKS_TIMEOUT_S,
            trigger=SqsTrigger(
                queue="webhooks",
                batch_size=WEBHOOKS_BATCH_SIZE,
                max_concurrency=config.webhook_dispatch_concurrency,
                max_batching_window_s=1,
            ),
            environment=fenv("webhooks"),
            # tasks: subscriptions' failure counts and automatic disabling (audited)
            table_access={"tasks": "update", "audit": "append", "deliveries": "write"},
            secrets=("audit-seal",),
            # retries wait in the queue itself; a delivery whose retries are spent goes to the DLQ
            sends_to={
                "WEBHOOKS_QUEUE_URL": QueueRef("webhooks"),
                "WEBHOOKS_DLQ_URL": QueueRef("webhooks", dead_letter=True),
            },
            # the metrics functions/webhooks/handler.py emits per batch
            alarms=FunctionAlarms(
                failed_metric=webhooks.METRIC_FAILED, succeeded_metric=webhooks.METRIC_SUCCEEDED
            ),
        ),
    }
    for queue_spec in queues.values():
        target = queues.get(queue_spec.dead_letter_queue or "")
        if queue_spec.dead_letter_queue and (target is None or target.name != queue_spec.dlq_name):
            raise ValueError(
                f"queue {queue_spec.id}: its dead-letter queue must be a spec queue named dlq_name"
            )
    return ServalSpec(
        config=config,
        prefix=prefix,
        tables=tables,
        buckets=buckets,
        queues=queues,
        event_bus_name=bus,
        auth=auth,
        functions=functions,
        event_rules=event_rules,
        secrets=secrets,
        state_machines={
            "task": StateMachineSpec(
                id="task",
                name=f"{prefix}-task",
                definition_file=ROOT / "infra" / "statemachine" / "task.asl.json",
                substitutions={"WorkflowFunctionArn": "workflow"},
            )
        },
    )
