"""CloudWatch alarms of queue-triggered functions, from their ``FunctionSpec.alarms``.

Per function: one alarm on its queue's dead-letter queue (any visible message), and one on the
share of its attempts that failed (metric math over two of its Powertools Count metrics, in the
namespace and ``service`` dimension its environment gives Powertools). Names come from the spec.

The alarms have no actions: Serval has no SNS topic to send them to. They show their state in
the CloudWatch console, and each one's description says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.constructs.naming import construct_id
from infra.constructs.queue import ServalQueue
from infra.spec import FunctionAlarms, FunctionSpec, ServalSpec, SqsTrigger

NO_ACTIONS = "No actions: Serval has no SNS topic; watch this alarm in the CloudWatch console."


def failure_rate_expression(alarms: FunctionAlarms) -> str:
    """``failed / (succeeded + failed)`` over a window with at least ``min_attempts``, else 0.

    FILL turns a missing datapoint of either metric into 0, so a window with failures only (or
    successes only) still has a rate, and one without traffic has the rate 0.
    """
    failed, attempts = "FILL(failed, 0)", "(FILL(succeeded, 0) + FILL(failed, 0))"
    return f"IF({attempts} >= {alarms.min_attempts}, {failed} / {attempts}, 0)"


def dead_letter_alarm_name(function_spec: FunctionSpec) -> str:
    return f"{function_spec.name}-dead-letters"


def failure_rate_alarm_name(function_spec: FunctionSpec) -> str:
    return f"{function_spec.name}-failure-rate"


class ServalAlarms(Construct):
    """The alarms of each function of ``functions`` that declares any.

    ``queues``: the stack's spec queues by id; each function's SQS trigger queue must be one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        spec: ServalSpec,
        functions: Sequence[FunctionSpec],
        queues: Mapping[str, ServalQueue],
    ) -> None:
        super().__init__(scope, construct_id_)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for fs in functions:
            if fs.alarms is None:
                continue
            if not isinstance(fs.trigger, SqsTrigger) or fs.trigger.queue not in queues:
                raise ValueError(f"function {fs.id!r} has alarms but no queue of this stack triggers it")
            queue_spec = spec.queues[fs.trigger.queue]
            self._dead_letters(fs, fs.alarms, queues[fs.trigger.queue], queue_spec.dlq_name)
            self._failure_rate(fs, fs.alarms)

    def _dead_letters(
        self, fs: FunctionSpec, alarms: FunctionAlarms, queue: ServalQueue, dlq_name: str
    ) -> None:
        name = dead_letter_alarm_name(fs)
        self.alarms[name] = cloudwatch.Alarm(
            self,
            construct_id(fs.id, "DeadLetters"),
            alarm_name=name,
            alarm_description=(
                f"{dlq_name} holds messages {fs.name} could not handle or gave up on "
                f"(inspect them, then redrive or purge). {NO_ACTIONS}"
            ),
            metric=queue.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.seconds(alarms.dead_letter_window_s), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            # an empty queue nobody calls stops reporting: that is no dead letter
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _failure_rate(self, fs: FunctionSpec, alarms: FunctionAlarms) -> None:
        window = Duration.seconds(alarms.failure_window_s)

        def metric(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=fs.environment["POWERTOOLS_METRICS_NAMESPACE"],
                metric_name=metric_name,
                dimensions_map={"service": fs.environment["POWERTOOLS_SERVICE_NAME"]},
                statistic=cloudwatch.Stats.SUM,
                period=window,
            )

        name = failure_rate_alarm_name(fs)
        minutes = alarms.failure_window_s // 60
        self.alarms[name] = cloudwatch.Alarm(
            self,
            construct_id(fs.id, "FailureRate"),
            alarm_name=name,
            alarm_description=(
                f"More than {alarms.max_failure_rate:.0%} of the attempts of {fs.name} failed in {minutes} min: "
                f"{alarms.failed_metric} / ({alarms.succeeded_metric} + {alarms.failed_metric}), judged once "
                f"the window holds {alarms.min_attempts} attempts. {NO_ACTIONS}"
            ),
            metric=cloudwatch.MathExpression(
                expression=failure_rate_expression(alarms),
                using_metrics={
                    "failed": metric(alarms.failed_metric),
                    "succeeded": metric(alarms.succeeded_metric),
                },
                label=f"{fs.id} failure rate",
                period=window,
            ),
            threshold=alarms.max_failure_rate,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
