"""What the modern provider's resources leave behind on each backend, read through the AWS APIs.

The plan-level assertions live in tests/pipeline.tftest.hcl; these check that the applied stack
carries the same settings where an AWS client would look: the S3 split resources, the state
machine's customer-managed key, the functions' JSON log format, the table's deletion protection
(off for local stacks), and handler log lines that are one JSON object each, never re-encoded.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from devkit import functions
from devkit.pipeline import Pipeline, wait_for
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e

FUNCTION_OUTPUTS = tuple(function.output for function in functions.FUNCTIONS)  # functions.json


def test_the_bucket_settings_are_the_split_resources(pipeline: Pipeline) -> None:
    s3, bucket = pipeline.client("s3"), pipeline.outputs["s3_bucket_name"]

    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": pipeline.outputs["kms_s3_key_arn"],
    }
    assert rule["BucketKeyEnabled"] is True


def test_the_lifecycle_rules_expire_versions_and_abort_multipart_uploads(pipeline: Pipeline) -> None:
    rules = {
        rule["ID"]: rule
        for rule in pipeline.client("s3").get_bucket_lifecycle_configuration(
            Bucket=pipeline.outputs["s3_bucket_name"]
        )["Rules"]
    }

    assert set(rules) == {"expire-objects", "remove-expired-delete-markers"}
    expire = rules["expire-objects"]
    assert expire["Status"] == "Enabled"
    assert expire["Expiration"] == {"Days": 90}
    assert expire["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert expire["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["remove-expired-delete-markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}


def test_the_state_machine_is_encrypted_with_its_own_customer_managed_key(pipeline: Pipeline) -> None:
    machine = pipeline.client("stepfunctions").describe_state_machine(
        stateMachineArn=pipeline.outputs["step_function_arn"]
    )

    configuration = machine["encryptionConfiguration"]
    assert configuration["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert configuration["kmsKeyId"] == pipeline.outputs["kms_stepfunctions_key_arn"]
    assert configuration["kmsDataKeyReusePeriodSeconds"] == 300
    key = pipeline.client("kms").describe_key(KeyId=configuration["kmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER"
    assert key["Enabled"]


def test_every_function_logs_json_at_info_into_its_own_group(pipeline: Pipeline) -> None:
    lam = pipeline.client("lambda")
    for output in FUNCTION_OUTPUTS:
        name = pipeline.outputs[output]
        logging = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        assert logging["ApplicationLogLevel"] == "INFO", name
        assert logging["LogGroup"] == f"/aws/lambda/{name}", name


def test_the_local_stack_turns_deletion_protection_off(pipeline: Pipeline) -> None:
    table = pipeline.client("dynamodb").describe_table(TableName=pipeline.outputs["dynamodb_table_name"])

    assert table["Table"]["DeletionProtectionEnabled"] is False  # so that teardown can destroy it


def _handler_lines(pipeline: Pipeline, function_output: str, needle: str) -> list[dict[str, Any]] | None:
    """The trigger's log events that mention ``needle``, each parsed as the JSON object it must be."""
    group = f"/aws/lambda/{pipeline.outputs[function_output]}"
    events = pipeline.client("logs").filter_log_events(logGroupName=group, filterPattern=f'"{needle}"')
    messages = [event["message"] for event in events.get("events", [])]
    return [json.loads(message) for message in messages] or None


def test_a_handler_log_line_is_one_json_object_not_encoded_twice(deployed: Deployment) -> None:
    pipeline = deployed.pipeline
    key = f"logs-{uuid.uuid4().hex[:8]}/report.csv"
    pipeline.upload(key)
    pipeline.wait_for_final_execution(key)

    lines = wait_for(
        "the trigger's log lines naming the upload",
        lambda: _handler_lines(pipeline, "trigger_lambda_name", key.split("/")[0]),
        timeout=30,
    )

    for line in lines:
        assert isinstance(line, dict), line
        assert line["level"] in {"INFO", "WARNING", "ERROR"}, line
        assert line["service"] == "ingestion-trigger", line
        message = line["message"]
        assert not (isinstance(message, str) and message.lstrip().startswith("{")), (
            f"a JSON log line wrapped in another: {line}"
        )
