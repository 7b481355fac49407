"""Small helpers shared by the constructs: construct ids, removal and retention policies."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from infra.config import EnvConfig

# CloudWatch Logs accepts only these retention periods (days).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def construct_id(spec_id: str, suffix: str = "") -> str:
    """``"events-dlq"`` -> ``"EventsDlq"``: a stable construct id from a spec id."""
    return "".join(part.capitalize() for part in spec_id.replace("_", "-").split("-")) + suffix


def removal_policy(config: EnvConfig) -> RemovalPolicy:
    """Stateful resources are kept on stack deletion when the environment retains data."""
    return RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY


def log_retention(config: EnvConfig) -> logs.RetentionDays:
    try:
        return _RETENTION[config.log_retention_days]
    except KeyError:
        allowed = ", ".join(str(d) for d in _RETENTION)
        raise ValueError(
            f"log_retention_days={config.log_retention_days} is not a CloudWatch Logs retention; use one of {allowed}"
        ) from None
