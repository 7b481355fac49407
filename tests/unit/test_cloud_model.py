"""The cloud model's arithmetic (bench.cloud_model.model): inputs to rows, checked by hand."""

from __future__ import annotations

import dataclasses

import pytest

from bench.cloud_model import CONSTANTS, REMEDIES, Ingest, Lifecycle, Row, Scenario, binding, model

LIFE = Lifecycle(
    tasks=10,
    requests={
        "stepfunctions:StartExecution": 1.0,
        "stepfunctions:SendTaskSuccess": 2.0,
        "events:PutEvents": 0.5,
    },
    calls_by_function={"api": 10.0, "workflow": 5.0},
    invocations={"api": 4.0, "workflow": 4.0},
    cpu_s={"api": 0.02, "workflow": 0.01},
    wall_s={"api": 0.5, "workflow": 0.2},
    memory_mb={"api": 1024, "workflow": 512},
    transitions=10.0,
    wru=40.0,
    rru=20.0,
    busiest_table_wru=40.0,
    hottest_item="WINDOW",
    hottest_item_wru=4.0,
    events=5.0,
    sqs_requests=6.0,
    s3_put=0.01,
    s3_get=0.02,
)
INGEST = Ingest(
    lines=1_000,
    ranges=5,
    bytes_per_line=100.0,
    cpu_s_per_line=0.001,
    requests_per_line=0.05,
    wall_s_per_line=0.01,
    task_item_bytes=600.0,
)
# ranges at the memory of one vCPU, so their measured CPU is what they spend on Lambda
SCENARIO = Scenario(
    objects=1_000_000, range_bytes=16 * 2**20, range_concurrency=20, range_memory_mb=1769, api_rate_limit=200
)


def value(rows: list[Row], section: str, what: str) -> float:
    (row,) = [r for r in rows if r.section == section and r.what == what]
    return row.value


def test_the_constants_are_the_published_values_the_model_documents() -> None:
    assert (
        CONSTANTS["aws_call_latency_s"].value == 0.008
        and CONSTANTS["aws_call_latency_s"].kind == "assumption"
    )
    assert CONSTANTS["sfn_transition"].value == pytest.approx(0.000025)
    assert CONSTANTS["sfn_transitions_per_s"].value == 1_500
    assert all(c.source for c in CONSTANTS.values())


def test_dollars_per_thousand_lifecycles_add_each_service_by_hand() -> None:
    rows = model(LIFE, INGEST, SCENARIO)
    # Lambda duration: CPU at the memory's share of a vCPU (1,024 of 1,769 MB; 512 of 1,769) plus
    # 8 ms per AWS call: api 0.02 x 1769/1024 + 10 x 0.008 s at 1 GB, workflow 0.01 x 1769/512
    # + 5 x 0.008 s at 0.5 GB
    api_s = 0.02 * 1769 / 1024 + 0.08
    workflow_s = 0.01 * 1769 / 512 + 0.04
    gb_s = api_s * 1.0 + workflow_s * 0.5
    assert value(rows, "cost", "Lambda requests") == pytest.approx(0.0016)  # 8 x $0.20/M
    assert value(rows, "cost", "Lambda duration") == pytest.approx(gb_s * 0.0000133334 * 1000)
    assert value(rows, "cost", "Step Functions transitions") == pytest.approx(0.25)  # 10 x $0.025/1k
    assert value(rows, "cost", "DynamoDB writes") == pytest.approx(0.025)  # 40 WRU x $0.625/M
    assert value(rows, "cost", "DynamoDB reads") == pytest.approx(0.0025)  # 20 RRU x $0.125/M
    assert value(rows, "cost", "SQS requests") == pytest.approx(0.0024)  # 6 x $0.40/M
    assert value(rows, "cost", "EventBridge events") == pytest.approx(0.005)  # 5 x $1/M
    assert value(rows, "cost", "S3 requests") == pytest.approx(0.000058)  # 0.01 PUT, 0.02 GET
    assert value(rows, "cost", "API Gateway requests") == pytest.approx(0.014)  # 4 x $3.50/M
    expected = 0.0016 + gb_s * 0.0000133334 * 1000 + 0.25 + 0.025 + 0.0025 + 0.0024 + 0.005 + 0.000058 + 0.014
    assert value(rows, "cost", "total") == pytest.approx(expected)
    assert expected == pytest.approx(0.30258, abs=1e-5)


def test_ingesting_a_million_objects_is_bound_by_the_slower_of_lambda_and_the_index_partitions() -> None:
    rows = model(LIFE, INGEST, SCENARIO)
    # 1M lines of 100 bytes: 100,000,000 bytes in 16 MiB ranges = 6 ranges, all at once;
    # 0.001 s CPU + 0.05 calls x 0.008 s = 0.0014 s per line
    assert value(rows, "ingest", "one invocation, no ranges") == pytest.approx(1_400.0)
    assert value(rows, "ingest", "byte ranges") == 6
    assert value(rows, "ingest", "ranges at once") == 6
    assert value(rows, "ingest", "Lambda time (ranges in parallel)") == pytest.approx(1_000_000 / 6 * 0.0014)
    # a 600-byte task item is 1 write unit on each time-ordered index partition: 1,000 tasks/s
    assert value(rows, "ingest", "DynamoDB index partitions of a project (GSI1 new, GSI2)") == pytest.approx(
        1_000.0
    )
    total = next(r for r in rows if r.what == "time to ingest 1,000,000 objects")
    assert total.value == pytest.approx(1_000.0)
    assert total.basis == "bound by: DynamoDB index partitions of a project (GSI1 new, GSI2)"


def test_a_range_below_one_vcpu_of_memory_spends_its_cpu_at_that_share() -> None:
    # Given ranges at 1,024 MB: 0.001 s of measured CPU per line takes 1769/1024 times as long
    rows = model(LIFE, INGEST, dataclasses.replace(SCENARIO, range_memory_mb=1024))
    per_line = 0.001 * 1769 / 1024 + 0.05 * 0.008
    assert value(rows, "ingest", "one invocation, no ranges") == pytest.approx(1_000_000 * per_line)


def test_ranges_beyond_the_concurrency_run_in_waves() -> None:
    # Given 5,000-byte lines: 5 GB in 16 MiB ranges = 299 ranges, 20 at a time = 15 waves
    rows = model(LIFE, dataclasses.replace(INGEST, bytes_per_line=5_000.0), SCENARIO)
    assert value(rows, "ingest", "byte ranges") == 299
    assert value(rows, "ingest", "Lambda time (ranges in parallel)") == pytest.approx(
        15 * (1_000_000 / 299) * 0.0014
    )


def test_each_limit_divides_its_quota_by_the_use_per_task_and_the_lowest_binds() -> None:
    rows = model(LIFE, INGEST, SCENARIO)
    lambda_s = (0.02 * 1769 / 1024 + 0.08) + (0.01 * 1769 / 512 + 0.04)
    assert value(rows, "limit (account)", "Lambda concurrency (account)") == pytest.approx(1_000 / lambda_s)
    assert value(rows, "limit (account)", "Step Functions state transitions (account)") == pytest.approx(
        150.0
    )
    assert value(rows, "limit (account)", "Step Functions StartExecution (account)") == pytest.approx(300.0)
    assert value(rows, "limit (account)", "Step Functions SendTaskSuccess (account)") == pytest.approx(250.0)
    assert value(rows, "limit (account)", "API Gateway (account)") == pytest.approx(2_500.0)
    assert value(rows, "limit (account)", "API stage throttle (api_rate_limit)") == pytest.approx(50.0)
    assert value(rows, "limit (account)", "EventBridge PutEvents (account)") == pytest.approx(20_000.0)
    assert value(rows, "limit (account)", "DynamoDB on-demand table throughput") == pytest.approx(1_000.0)
    assert value(rows, "limit (project)", "DynamoDB busiest item of a project") == pytest.approx(250.0)
    assert value(rows, "limit (project)", "DynamoDB status partition of a project (GSI1)") == pytest.approx(
        500.0
    )
    # 50 lifecycles/s x 30 s per annotation = 1,500 annotators, bound by Serval's own stage throttle
    assert value(rows, "capacity", "sustained annotators across projects") == pytest.approx(1_500.0)
    assert binding(rows, "across projects") == "API stage throttle (api_rate_limit)"
    assert binding(rows, "in one project") == "API stage throttle (api_rate_limit)"


def test_with_the_stage_throttle_raised_step_functions_binds_across_projects_and_an_item_in_one() -> None:
    # Given the stage throttle at the account's 10,000 rps and a busier window item (10 WRU per task)
    raised = dataclasses.replace(SCENARIO, api_rate_limit=10_000)
    rows = model(dataclasses.replace(LIFE, hottest_item_wru=10.0), INGEST, raised)
    # Then across projects: 150 transitions/s x 30 s = 4,500 annotators; in one project the
    # window item's 1,000 units/s / 10 = 100 lifecycles/s = 3,000 annotators
    assert value(rows, "capacity", "sustained annotators across projects") == pytest.approx(4_500.0)
    assert binding(rows, "across projects") == "Step Functions state transitions (account)"
    assert value(rows, "capacity", "sustained annotators in one project") == pytest.approx(3_000.0)
    assert binding(rows, "in one project") == "DynamoDB busiest item of a project"
    assert all(
        name in REMEDIES for name in (binding(rows, "across projects"), binding(rows, "in one project"))
    )
