# Plan-level assertions on every infrastructure requirement, offline: the mock provider needs only
# the provider schema. Run with `make tf-test` (once per available hashicorp/aws version).

mock_provider "aws" {
  # Computed attributes (ARNs, ids) get mock values at plan time, so the rendered state machine
  # definition and the policy documents that reference them are known and can be asserted.
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  # The provider still validates policy arguments as JSON, so mock documents must be valid JSON.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
}


# Realistic, distinct identifiers for the resources other resources reference, known at plan time.
override_resource {
  target          = aws_kms_key.s3
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"
    key_id = "11111111-1111-1111-1111-111111111111"
  }
}

override_resource {
  target          = aws_kms_key.dynamodb
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-central-1:123456789012:key/22222222-2222-2222-2222-222222222222"
    key_id = "22222222-2222-2222-2222-222222222222"
  }
}

override_resource {
  target          = aws_kms_key.sns
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-central-1:123456789012:key/33333333-3333-3333-3333-333333333333"
    key_id = "33333333-3333-3333-3333-333333333333"
  }
}

override_resource {
  target          = aws_kms_key.logs
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-central-1:123456789012:key/44444444-4444-4444-4444-444444444444"
    key_id = "44444444-4444-4444-4444-444444444444"
  }
}

override_resource {
  target          = aws_kms_key.stepfunctions
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-central-1:123456789012:key/55555555-5555-5555-5555-555555555555"
    key_id = "55555555-5555-5555-5555-555555555555"
  }
}

override_resource {
  target          = aws_kms_key.sqs
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-central-1:123456789012:key/66666666-6666-6666-6666-666666666666"
    key_id = "66666666-6666-6666-6666-666666666666"
  }
}

override_resource {
  target          = aws_sqs_queue.uploads
  override_during = plan
  values = {
    arn = "arn:aws:sqs:eu-central-1:123456789012:file-ingestion-dev-uploads"
    id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/file-ingestion-dev-uploads"
    url = "https://sqs.eu-central-1.amazonaws.com/123456789012/file-ingestion-dev-uploads"
  }
}

override_resource {
  target          = aws_sqs_queue.uploads_dlq
  override_during = plan
  values = {
    arn = "arn:aws:sqs:eu-central-1:123456789012:file-ingestion-dev-uploads-dlq"
    id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/file-ingestion-dev-uploads-dlq"
    url = "https://sqs.eu-central-1.amazonaws.com/123456789012/file-ingestion-dev-uploads-dlq"
  }
}

override_resource {
  target          = aws_iam_role.trigger
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:role/file-ingestion-dev-trigger"
  }
}

override_resource {
  target          = aws_iam_role.writer
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:role/file-ingestion-dev-writer"
  }
}

override_resource {
  target          = aws_iam_role.security_monitor
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:role/file-ingestion-dev-security-monitor"
  }
}

override_resource {
  target          = aws_iam_role.step_functions
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:role/file-ingestion-dev-state-machine"
  }
}

override_resource {
  target          = aws_lambda_function.trigger
  override_during = plan
  values = {
    arn = "arn:aws:lambda:eu-central-1:123456789012:function:file-ingestion-dev-trigger"
  }
}

override_resource {
  target          = aws_lambda_function.writer
  override_during = plan
  values = {
    arn = "arn:aws:lambda:eu-central-1:123456789012:function:file-ingestion-dev-writer"
  }
}

override_resource {
  target          = aws_lambda_function.security_monitor
  override_during = plan
  values = {
    arn = "arn:aws:lambda:eu-central-1:123456789012:function:file-ingestion-dev-security-monitor"
  }
}

override_resource {
  target          = aws_sfn_state_machine.ingestion
  override_during = plan
  values = {
    arn = "arn:aws:states:eu-central-1:123456789012:stateMachine:file-ingestion-dev-ingestion"
  }
}

override_resource {
  target          = aws_sns_topic.alerts
  override_during = plan
  values = {
    arn = "arn:aws:sns:eu-central-1:123456789012:file-ingestion-dev-alerts"
  }
}

override_resource {
  target          = aws_dynamodb_table.metadata
  override_during = plan
  values = {
    arn = "arn:aws:dynamodb:eu-central-1:123456789012:table/file-ingestion-dev-file-metadata"
  }
}

override_resource {
  target          = aws_s3_bucket.uploads
  override_during = plan
  values = {
    arn = "arn:aws:s3:::file-ingestion-dev-uploads-123456789012-eu-central-1"
    id  = "file-ingestion-dev-uploads-123456789012-eu-central-1"
  }
}

override_resource {
  target          = aws_cloudwatch_log_group.trigger
  override_during = plan
  values = {
    arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/file-ingestion-dev-trigger"
  }
}

override_resource {
  target          = aws_cloudwatch_log_group.writer
  override_during = plan
  values = {
    arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/file-ingestion-dev-writer"
  }
}

override_resource {
  target          = aws_cloudwatch_log_group.security_monitor
  override_during = plan
  values = {
    arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/file-ingestion-dev-security-monitor"
  }
}

override_resource {
  target          = aws_cloudwatch_log_group.state_machine
  override_during = plan
  values = {
    arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/vendedlogs/states/file-ingestion-dev-ingestion"
  }
}

override_resource {
  target          = aws_cloudwatch_event_rule.security_scan
  override_during = plan
  values = {
    arn = "arn:aws:events:eu-central-1:123456789012:rule/file-ingestion-dev-security-scan"
  }
}

# Distinct documents, so that "this resource uses that document" assertions can tell them apart.
override_data {
  override_during = plan
  target          = data.aws_iam_policy_document.kms_administration
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Id\":\"kms_administration\",\"Statement\":[]}"
  }
}

override_data {
  override_during = plan
  target          = data.aws_iam_policy_document.kms_s3
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Id\":\"kms_s3\",\"Statement\":[]}"
  }
}

override_data {
  override_during = plan
  target          = data.aws_iam_policy_document.kms_dynamodb
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Id\":\"kms_dynamodb\",\"Statement\":[]}"
  }
}

override_data {
  override_during = plan
  target          = data.aws_iam_policy_document.kms_sns
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Id\":\"kms_sns\",\"Statement\":[]}"
  }
}

override_data {
  override_during = plan
  target          = data.aws_iam_policy_document.kms_logs
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Id\":\"kms_logs\",\"Statement\":[]}"
  }
}

override_data {
  override_during = plan
  target          = data.aws_iam_policy_document.alerts_topic
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Id\":\"alerts_topic\",\"Statement\":[]}"
  }
}

variables {
  aws_region = "eu-central-1"
}

run "kms_keys_are_separate_rotated_and_aliased" {
  command = plan

  assert {
    condition     = aws_kms_key.s3.enable_key_rotation && aws_kms_key.dynamodb.enable_key_rotation && aws_kms_key.sns.enable_key_rotation && aws_kms_key.logs.enable_key_rotation && aws_kms_key.stepfunctions.enable_key_rotation && aws_kms_key.sqs.enable_key_rotation
    error_message = "every customer-managed key must rotate"
  }

  assert {
    condition = (
      aws_kms_alias.s3.name == "alias/file-ingestion-dev-s3" && aws_kms_alias.dynamodb.name == "alias/file-ingestion-dev-dynamodb" &&
      aws_kms_alias.sns.name == "alias/file-ingestion-dev-sns" && aws_kms_alias.logs.name == "alias/file-ingestion-dev-logs" &&
      aws_kms_alias.logs.target_key_id == aws_kms_key.logs.key_id &&
      aws_kms_alias.stepfunctions.name == "alias/file-ingestion-dev-stepfunctions" &&
      aws_kms_alias.stepfunctions.target_key_id == aws_kms_key.stepfunctions.key_id
    )
    error_message = "each key needs its alias"
  }

  assert {
    condition = alltrue([
      for doc in [data.aws_iam_policy_document.kms_s3, data.aws_iam_policy_document.kms_dynamodb, data.aws_iam_policy_document.kms_sns, data.aws_iam_policy_document.kms_logs, data.aws_iam_policy_document.kms_stepfunctions, data.aws_iam_policy_document.kms_sqs] :
      contains(doc.source_policy_documents, data.aws_iam_policy_document.kms_administration.json)
    ])
    error_message = "every key policy must include the account administration statement"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.kms_administration.statement :
      s.effect == "Allow" && contains(s.actions, "kms:PutKeyPolicy") && !contains(s.actions, "kms:Decrypt") &&
      !contains(s.actions, "kms:ListAliases") &&
      toset(one(s.principals).identifiers) == toset(["arn:aws:iam::123456789012:root"])
    ])
    error_message = "administration is for the account only, does not include data use, and leaves out kms:ListAliases (IAM-only)"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_s3.statement : s if s.sid == "AccountUsesKeyThroughS3"
      && toset(s.actions) == toset(["kms:Decrypt", "kms:GenerateDataKey"])
      && anytrue([for c in s.condition : c.variable == "kms:ViaService" && toset(c.values) == toset(["s3.eu-central-1.amazonaws.com"])])
      && anytrue([for c in s.condition : c.variable == "kms:CallerAccount" && toset(c.values) == toset(["123456789012"])])
    ]) != null
    error_message = "the S3 key is usable only through S3 by principals of the account"
  }

  assert {
    condition = length([
      for s in data.aws_iam_policy_document.kms_dynamodb.statement : s
      if anytrue([for c in s.condition : c.variable == "kms:ViaService" && toset(c.values) == toset(["dynamodb.eu-central-1.amazonaws.com"])])
    ]) == 2
    error_message = "the DynamoDB key (data use and grants) is usable only through DynamoDB"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_sns.statement : s if s.sid == "CloudWatchAlarmsPublishToEncryptedTopic"
      && one(s.principals).type == "Service" && toset(one(s.principals).identifiers) == toset(["cloudwatch.amazonaws.com"])
      && toset(s.actions) == toset(["kms:Decrypt", "kms:GenerateDataKey"])
      && length(s.condition) == 2
      && anytrue([for c in s.condition : c.test == "StringEquals" && c.variable == "aws:SourceAccount" && toset(c.values) == toset(["123456789012"])])
      && anytrue([for c in s.condition : c.test == "ArnLike" && c.variable == "aws:SourceArn" && toset(c.values) == toset(["arn:aws:cloudwatch:eu-central-1:123456789012:alarm:*"])])
    ]) != null
    error_message = "CloudWatch alarms must be able to publish to the encrypted topic, only alarms of this account in this region"
  }

  # Confused-deputy protection: a service principal acts for this account only. The logs key's
  # CloudWatch Logs statement is the documented exception, bound by its encryption context instead
  # (run "log_groups_are_encrypted_with_the_logs_key_usable_only_for_them").
  assert {
    condition = alltrue(flatten([
      for doc in [data.aws_iam_policy_document.kms_s3, data.aws_iam_policy_document.kms_dynamodb, data.aws_iam_policy_document.kms_sns, data.aws_iam_policy_document.kms_stepfunctions, data.aws_iam_policy_document.kms_sqs] : [
        for s in doc.statement :
        anytrue([for c in s.condition : c.test == "StringEquals" && c.variable == "aws:SourceAccount" && toset(c.values) == toset(["123456789012"])])
        if anytrue([for p in s.principals : p.type == "Service"])
      ]
    ]))
    error_message = "every key policy statement naming a service principal requires aws:SourceAccount = this account"
  }

  assert {
    condition = toset(flatten([
      for doc in [data.aws_iam_policy_document.kms_s3, data.aws_iam_policy_document.kms_dynamodb, data.aws_iam_policy_document.kms_sns, data.aws_iam_policy_document.kms_stepfunctions, data.aws_iam_policy_document.kms_sqs] : [
        for s in doc.statement : s.sid if anytrue([for p in s.principals : p.type == "Service"])
      ]
      ])) == toset([
      "CloudWatchAlarmsPublishToEncryptedTopic", "UploadBucketNotifiesEncryptedQueue",
      "StepFunctionsUsesKeyForThisStateMachine", "LogDeliveryDecryptsExecutionEvents",
    ])
    error_message = "the service principal statements checked above are the four known ones"
  }

  assert {
    condition = length(flatten([
      for doc in [data.aws_iam_policy_document.kms_s3, data.aws_iam_policy_document.kms_dynamodb, data.aws_iam_policy_document.kms_sns, data.aws_iam_policy_document.kms_logs, data.aws_iam_policy_document.kms_stepfunctions, data.aws_iam_policy_document.kms_sqs] : [
        for s in doc.statement : s.sid if contains(s.actions, "kms:PutKeyPolicy") || contains(s.actions, "kms:ScheduleKeyDeletion")
      ]
    ])) == 0
    error_message = "key administration is granted only by the shared administration document, to key_admin_principals"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_sns.statement : s if s.sid == "AccountUsesKeyThroughSNS"
      && contains(s.actions, "kms:GenerateDataKey") && contains(s.actions, "kms:Decrypt")
      ]) != null && length([
      for s in data.aws_iam_policy_document.kms_sns.statement : s if s.sid == "PipelineRolesPublishToEncryptedTopic"
    ]) == 0
    error_message = "the pipeline's publishers use the topic key through the one account statement (no second, redundant grant)"
  }
}

run "key_administrators_are_configurable" {
  command = plan

  variables {
    key_admin_principals = ["arn:aws:iam::123456789012:role/KeyAdministrators", "arn:aws:iam::123456789012:user/alice"]
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.kms_administration.statement :
      s.sid == "AccountAdministersKey" && one(s.principals).type == "AWS" &&
      toset(one(s.principals).identifiers) == toset(["arn:aws:iam::123456789012:role/KeyAdministrators", "arn:aws:iam::123456789012:user/alice"])
    ]) && length(data.aws_iam_policy_document.kms_administration.statement) == 1
    error_message = "key_admin_principals replace the account root in the administration statement"
  }

  assert {
    condition = alltrue([
      for doc in [data.aws_iam_policy_document.kms_s3, data.aws_iam_policy_document.kms_dynamodb, data.aws_iam_policy_document.kms_sns, data.aws_iam_policy_document.kms_logs, data.aws_iam_policy_document.kms_stepfunctions, data.aws_iam_policy_document.kms_sqs] :
      contains(doc.source_policy_documents, data.aws_iam_policy_document.kms_administration.json)
    ])
    error_message = "all six key policies take that administration statement"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_s3.statement : s if s.sid == "AccountUsesKeyThroughS3"
      && toset(one(s.principals).identifiers) == toset(["arn:aws:iam::123456789012:root"])
    ]) != null
    error_message = "only administration moves to key_admin_principals: data use stays delegated to the account's IAM policies"
  }
}

run "key_administrators_must_be_iam_principal_arns" {
  command = plan

  variables {
    key_admin_principals = ["123456789012", "arn:aws:iam::123456789012:role/*", "arn:aws:sts::123456789012:assumed-role/Admin/session"]
  }

  expect_failures = [var.key_admin_principals]
}

run "log_groups_are_encrypted_with_the_logs_key_usable_only_for_them" {
  command = plan

  assert {
    condition = alltrue([
      for g in [aws_cloudwatch_log_group.trigger, aws_cloudwatch_log_group.writer, aws_cloudwatch_log_group.security_monitor, aws_cloudwatch_log_group.state_machine] :
      g.kms_key_id == aws_kms_key.logs.arn && g.retention_in_days == 365
    ])
    error_message = "all four log groups are encrypted with the logs key and keep a year (365 days) by default"
  }

  assert {
    condition     = aws_kms_key.logs.policy == data.aws_iam_policy_document.kms_logs.json && aws_kms_key.logs.deletion_window_in_days == 30
    error_message = "the logs key carries its own policy document"
  }

  assert {
    condition     = length(data.aws_iam_policy_document.kms_logs.statement) == 1
    error_message = "beside administration, the logs key policy has exactly one statement: CloudWatch Logs' use"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_logs.statement : s if s.sid == "CloudWatchLogsUsesKeyForThisStacksLogGroups" && s.effect == "Allow"
      && one(s.principals).type == "Service" && toset(one(s.principals).identifiers) == toset(["logs.eu-central-1.amazonaws.com"])
      && toset(s.actions) == toset(["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"])
      && length(s.condition) == 1
      && anytrue([for c in s.condition : c.test == "ArnLike" && c.variable == "kms:EncryptionContext:aws:logs:arn" && toset(c.values) == toset([
        aws_cloudwatch_log_group.trigger.arn, aws_cloudwatch_log_group.writer.arn,
        aws_cloudwatch_log_group.security_monitor.arn, aws_cloudwatch_log_group.state_machine.arn,
      ])])
    ]) != null
    error_message = "only CloudWatch Logs of this region may use the logs key, and only for this stack's four log groups"
  }
}

run "log_retention_is_configurable" {
  command = plan

  # What the local stacks set (devkit/overrides.py).
  variables {
    log_retention_days = 1
  }

  assert {
    condition = alltrue([
      for g in [aws_cloudwatch_log_group.trigger, aws_cloudwatch_log_group.writer, aws_cloudwatch_log_group.security_monitor, aws_cloudwatch_log_group.state_machine] :
      g.retention_in_days == 1
    ])
    error_message = "log_retention_days must reach every log group"
  }
}

run "access_logging_is_off_by_default" {
  command = plan

  assert {
    condition     = length(aws_s3_bucket_logging.uploads) == 0
    error_message = "no server access logging unless access_log_bucket names a destination"
  }
}

run "access_logs_go_to_the_named_bucket_under_the_upload_bucket_prefix" {
  command = plan

  variables {
    access_log_bucket = "central-access-logs-eu-central-1"
  }

  assert {
    condition = (
      length(aws_s3_bucket_logging.uploads) == 1 &&
      aws_s3_bucket_logging.uploads[0].bucket == aws_s3_bucket.uploads.id &&
      aws_s3_bucket_logging.uploads[0].target_bucket == "central-access-logs-eu-central-1" &&
      aws_s3_bucket_logging.uploads[0].target_prefix == "file-ingestion-dev-uploads-123456789012-eu-central-1/"
    )
    error_message = "the upload bucket logs to access_log_bucket under the prefix <upload bucket>/"
  }
}

run "access_logs_never_go_to_the_upload_bucket_itself" {
  command = plan

  variables {
    access_log_bucket = "file-ingestion-dev-uploads-123456789012-eu-central-1"
  }

  expect_failures = [aws_s3_bucket_logging.uploads]
}

run "upload_bucket_is_versioned_kms_encrypted_and_expires_objects" {
  command = plan

  assert {
    condition = (
      aws_s3_bucket_versioning.uploads.bucket == aws_s3_bucket.uploads.id &&
      aws_s3_bucket_versioning.uploads.versioning_configuration[0].status == "Enabled"
    )
    error_message = "versioning must be enabled on the upload bucket"
  }

  assert {
    condition = (
      aws_s3_bucket_server_side_encryption_configuration.uploads.bucket == aws_s3_bucket.uploads.id &&
      one(aws_s3_bucket_server_side_encryption_configuration.uploads.rule[*].apply_server_side_encryption_by_default[0].sse_algorithm) == "aws:kms" &&
      one(aws_s3_bucket_server_side_encryption_configuration.uploads.rule[*].apply_server_side_encryption_by_default[0].kms_master_key_id) == aws_kms_key.s3.arn &&
      one(aws_s3_bucket_server_side_encryption_configuration.uploads.rule[*].bucket_key_enabled)
    )
    error_message = "default encryption must be SSE-KMS with the S3 key and an S3 bucket key"
  }

  assert {
    condition = (
      aws_s3_bucket_ownership_controls.uploads.bucket == aws_s3_bucket.uploads.id &&
      aws_s3_bucket_ownership_controls.uploads.rule[0].object_ownership == "BucketOwnerEnforced"
    )
    error_message = "ACLs must be disabled (BucketOwnerEnforced)"
  }

  assert {
    condition = alltrue([
      for r in aws_s3_bucket_lifecycle_configuration.uploads.rule : r.status == "Enabled" && r.expiration[0].days == 90
      && r.noncurrent_version_expiration[0].noncurrent_days == 90
      && r.abort_incomplete_multipart_upload[0].days_after_initiation == 7
      if r.id == "expire-objects"
    ]) && length([for r in aws_s3_bucket_lifecycle_configuration.uploads.rule : r if r.id == "expire-objects"]) == 1
    error_message = "objects expire after 90 days, noncurrent versions after 90, incomplete uploads are aborted after 7"
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.uploads.bucket == aws_s3_bucket.uploads.id
    error_message = "the lifecycle rules must apply to the upload bucket"
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.uploads.rule : r.status == "Enabled" && r.expiration[0].expired_object_delete_marker == true if r.id == "remove-expired-delete-markers"])
    error_message = "expired delete markers must be removed"
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.uploads.block_public_acls && aws_s3_bucket_public_access_block.uploads.block_public_policy &&
      aws_s3_bucket_public_access_block.uploads.ignore_public_acls && aws_s3_bucket_public_access_block.uploads.restrict_public_buckets
    )
    error_message = "all four public access blocks must be on"
  }

  assert {
    condition     = aws_s3_bucket.uploads.force_destroy == false
    error_message = "the bucket must not be force-destroyable by default"
  }
}

run "object_expiration_is_configurable" {
  command = plan

  variables {
    object_expiration_days = 30
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.uploads.rule : r.expiration[0].days if r.id == "expire-objects"]) == 30
    error_message = "object_expiration_days must drive the expiration rule"
  }
}

run "bucket_policy_lets_objects_land_only_under_the_bucket_kms_key" {
  command = plan

  # The uploads_bucket document reads the ARNs of resources this plan creates, so Terraform reads
  # it only at apply: its json is unknown here, mocked or not (and an apply run fails, since the
  # mocks made at plan are made again at apply). tests/test_terraform_static.py pins the bucket
  # policy to exactly this document; the asserts below pin what the document says.
  assert {
    condition     = aws_s3_bucket_policy.uploads.bucket == aws_s3_bucket.uploads.id
    error_message = "the hardened policy must be attached to the upload bucket"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : s if s.sid == "DenyInsecureTransport" && s.effect == "Deny"
      && toset(s.actions) == toset(["s3:*"])
      && toset(s.resources) == toset([aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"])
      && anytrue([for c in s.condition : c.test == "Bool" && c.variable == "aws:SecureTransport" && toset(c.values) == toset(["false"])])
    ]) != null
    error_message = "requests without TLS must be denied (every S3 action) on the bucket and its objects"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : s.effect == "Deny"
      && one(s.principals).type == "*" && toset(one(s.principals).identifiers) == toset(["*"])
      && (s.sid == "DenyInsecureTransport" || (toset(s.actions) == toset(["s3:PutObject"]) && toset(s.resources) == toset(["${aws_s3_bucket.uploads.arn}/*"])))
    ]) && length(data.aws_iam_policy_document.uploads_bucket.statement) == 5
    error_message = "the policy only denies: TLS on everything, and four kinds of upload on the objects"
  }

  # Multipart UploadPart requests carry no SSE header: no statement may deny on a header's absence
  # through a negated or IfExists operator.
  assert {
    condition = alltrue(flatten([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : [
        for c in s.condition : !endswith(c.test, "IfExists") && (c.test != "StringNotEquals" || anytrue([
          for g in s.condition : g.test == "Null" && g.variable == c.variable && toset(g.values) == toset(["false"])
        ]))
      ]
    ]))
    error_message = "every negated header test must be guarded by Null = false on the same header, and no IfExists"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : s if s.sid == "DenyAnotherEncryptionAlgorithm" && length(s.condition) == 2
      && anytrue([for c in s.condition : c.test == "Null" && c.variable == "s3:x-amz-server-side-encryption" && toset(c.values) == toset(["false"])])
      && anytrue([for c in s.condition : c.test == "StringNotEquals" && c.variable == "s3:x-amz-server-side-encryption" && toset(c.values) == toset(["aws:kms"])])
    ]) != null
    error_message = "an SSE header other than aws:kms must be denied, only when the header is present"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : s if s.sid == "DenyKmsWithoutKeyId" && length(s.condition) == 2
      && anytrue([for c in s.condition : c.test == "StringEquals" && c.variable == "s3:x-amz-server-side-encryption" && toset(c.values) == toset(["aws:kms"])])
      && anytrue([for c in s.condition : c.test == "Null" && c.variable == "s3:x-amz-server-side-encryption-aws-kms-key-id" && toset(c.values) == toset(["true"])])
    ]) != null
    error_message = "aws:kms without a key id (the AWS-managed aws/s3 key) must be denied"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : s if s.sid == "DenyAnotherKmsKey" && length(s.condition) == 2
      && anytrue([for c in s.condition : c.test == "Null" && c.variable == "s3:x-amz-server-side-encryption-aws-kms-key-id" && toset(c.values) == toset(["false"])])
      && anytrue([for c in s.condition : c.test == "StringNotEquals" && c.variable == "s3:x-amz-server-side-encryption-aws-kms-key-id" && toset(c.values) == toset([
        "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111",
        "11111111-1111-1111-1111-111111111111",
      ])])
    ]) != null
    error_message = "a named key other than the bucket's key ARN or key id must be denied, aliases included (they can be repointed)"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.uploads_bucket.statement : s if s.sid == "DenyCustomerProvidedKeys" && length(s.condition) == 1
      && anytrue([for c in s.condition : c.test == "Null" && c.variable == "s3:x-amz-server-side-encryption-customer-algorithm" && toset(c.values) == toset(["false"])])
    ]) != null
    error_message = "SSE-C uploads must be denied"
  }
}

run "uploads_reach_the_trigger_through_an_encrypted_queue_with_a_dead_letter_queue" {
  command = plan

  assert {
    condition = (
      one(aws_s3_bucket_notification.uploads.queue).queue_arn == aws_sqs_queue.uploads.arn &&
      one(aws_s3_bucket_notification.uploads.queue).events == toset(["s3:ObjectCreated:*"]) &&
      length(aws_s3_bucket_notification.uploads.lambda_function) == 0
    )
    error_message = "every ObjectCreated event must go to the upload queue, none straight to a function"
  }

  assert {
    condition = (
      aws_sqs_queue.uploads.kms_master_key_id == aws_kms_key.sqs.arn &&
      aws_sqs_queue.uploads_dlq.kms_master_key_id == aws_kms_key.sqs.arn &&
      aws_kms_key.sqs.enable_key_rotation
    )
    error_message = "both queues are encrypted under the rotated, customer-managed queue key"
  }

  assert {
    condition = (
      jsondecode(aws_sqs_queue.uploads.redrive_policy).deadLetterTargetArn == aws_sqs_queue.uploads_dlq.arn &&
      jsondecode(aws_sqs_queue.uploads.redrive_policy).maxReceiveCount == 5 &&
      aws_sqs_queue.uploads_dlq.message_retention_seconds == 1209600 &&
      jsondecode(aws_sqs_queue_redrive_allow_policy.uploads_dlq.redrive_allow_policy).sourceQueueArns == [aws_sqs_queue.uploads.arn]
    )
    error_message = "after 5 receives a message moves to the dead-letter queue, which keeps it 14 days and serves only the upload queue"
  }

  assert {
    condition     = aws_sqs_queue.uploads.visibility_timeout_seconds == 6 * aws_lambda_function.trigger.timeout + 1
    error_message = "the visibility timeout is six times the trigger's timeout plus the batching window (AWS's guidance)"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.uploads_queue.statement : s if s.sid == "UploadBucketSendsNotifications"
      && s.effect == "Allow" && toset(s.actions) == toset(["sqs:SendMessage"]) && toset(s.resources) == toset([aws_sqs_queue.uploads.arn])
      && toset(one(s.principals).identifiers) == toset(["s3.amazonaws.com"])
      && anytrue([for c in s.condition : c.test == "ArnEquals" && c.variable == "aws:SourceArn" && toset(c.values) == toset([aws_s3_bucket.uploads.arn])])
      && anytrue([for c in s.condition : c.variable == "aws:SourceAccount" && toset(c.values) == toset(["123456789012"])])
    ]) != null
    error_message = "only this bucket of this account may send to the upload queue"
  }

  assert {
    condition = alltrue([
      for doc in [data.aws_iam_policy_document.uploads_queue, data.aws_iam_policy_document.uploads_dlq] :
      one([for s in doc.statement : s if s.sid == "DenyInsecureTransport" && s.effect == "Deny"
      && anytrue([for c in s.condition : c.variable == "aws:SecureTransport" && toset(c.values) == toset(["false"])])]) != null
    ])
    error_message = "both queues deny requests without TLS"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_sqs.statement : s if s.sid == "UploadBucketNotifiesEncryptedQueue"
      && toset(s.actions) == toset(["kms:Decrypt", "kms:GenerateDataKey"])
      && toset(one(s.principals).identifiers) == toset(["s3.amazonaws.com"])
      && anytrue([for c in s.condition : c.variable == "aws:SourceArn" && toset(c.values) == toset([aws_s3_bucket.uploads.arn])])
      && anytrue([for c in s.condition : c.variable == "aws:SourceAccount" && toset(c.values) == toset(["123456789012"])])
    ]) != null
    error_message = "S3 may use the queue key only for this bucket of this account"
  }
}

run "trigger_consumes_the_queue_in_paced_batches_reporting_item_failures" {
  command = plan

  assert {
    condition = (
      aws_lambda_event_source_mapping.trigger.event_source_arn == aws_sqs_queue.uploads.arn &&
      aws_lambda_event_source_mapping.trigger.function_name == aws_lambda_function.trigger.arn &&
      aws_lambda_event_source_mapping.trigger.batch_size == 10 &&
      aws_lambda_event_source_mapping.trigger.maximum_batching_window_in_seconds == 1 &&
      aws_lambda_event_source_mapping.trigger.function_response_types == toset(["ReportBatchItemFailures"]) &&
      one(aws_lambda_event_source_mapping.trigger.scaling_config).maximum_concurrency == 5
    )
    error_message = "the trigger reads batches of 10 within 1 s, at most 5 at once, and reports failed items only"
  }

  assert {
    condition = (
      one([for s in data.aws_iam_policy_document.trigger.statement : s.resources if s.sid == "ConsumeUploadQueue"]) == toset([aws_sqs_queue.uploads.arn]) &&
      one([for s in data.aws_iam_policy_document.trigger.statement : s.actions if s.sid == "ConsumeUploadQueue"]) == toset(["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"])
    )
    error_message = "the trigger's role consumes only the upload queue"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.trigger.statement : s if s.sid == "DecryptUploadQueueMessages"
      && toset(s.actions) == toset(["kms:Decrypt"]) && toset(s.resources) == toset([aws_kms_key.sqs.arn])
      && anytrue([for c in s.condition : c.variable == "kms:ViaService" && toset(c.values) == toset(["sqs.eu-central-1.amazonaws.com"])])
      && anytrue([for c in s.condition : c.variable == "kms:EncryptionContext:aws:sqs:arn" && toset(c.values) == toset([aws_sqs_queue.uploads.arn])])
    ]) != null
    error_message = "the trigger decrypts with the queue key only through SQS and only for the upload queue"
  }
}

run "queue_settings_are_configurable" {
  command = plan

  variables {
    trigger_lambda_timeout          = 10
    trigger_batch_size              = 100
    trigger_batching_window_seconds = 5
    trigger_maximum_concurrency     = 2
    queue_max_receive_count         = 3
  }

  assert {
    condition = (
      aws_sqs_queue.uploads.visibility_timeout_seconds == 65 &&
      jsondecode(aws_sqs_queue.uploads.redrive_policy).maxReceiveCount == 3 &&
      aws_lambda_event_source_mapping.trigger.batch_size == 100 &&
      aws_lambda_event_source_mapping.trigger.maximum_batching_window_in_seconds == 5 &&
      one(aws_lambda_event_source_mapping.trigger.scaling_config).maximum_concurrency == 2
    )
    error_message = "the queue and mapping follow the variables"
  }

  assert {
    condition     = aws_lambda_function.trigger.environment[0].variables["DEADLINE_MARGIN_MS"] == "3333"
    error_message = "a short timeout keeps a third of it as the batch's deadline margin"
  }
}

run "a_large_batch_needs_a_batching_window" {
  command = plan

  variables {
    trigger_batch_size              = 100
    trigger_batching_window_seconds = 0
  }

  expect_failures = [aws_lambda_event_source_mapping.trigger]
}

run "maximum_concurrency_stays_within_lambdas_limits" {
  command = plan

  variables {
    trigger_maximum_concurrency = 1
  }

  expect_failures = [var.trigger_maximum_concurrency]
}

run "metadata_table_is_on_demand_kms_encrypted_with_pitr" {
  command = plan

  assert {
    condition     = aws_dynamodb_table.metadata.billing_mode == "PAY_PER_REQUEST"
    error_message = "the table must be on-demand"
  }

  assert {
    condition = (
      aws_dynamodb_table.metadata.hash_key == "Filename" && aws_dynamodb_table.metadata.range_key == "UploadTimestamp" &&
      aws_dynamodb_table.metadata.attribute == toset([{ name = "Filename", type = "S" }, { name = "UploadTimestamp", type = "S" }])
    )
    error_message = "keys must be Filename (S) and UploadTimestamp (S)"
  }

  assert {
    condition = (
      aws_dynamodb_table.metadata.server_side_encryption[0].enabled &&
      aws_dynamodb_table.metadata.server_side_encryption[0].kms_key_arn == aws_kms_key.dynamodb.arn
    )
    error_message = "the table must be encrypted with the DynamoDB key"
  }

  assert {
    condition     = aws_dynamodb_table.metadata.point_in_time_recovery[0].enabled
    error_message = "point-in-time recovery must be on"
  }

  assert {
    condition     = aws_dynamodb_table.metadata.deletion_protection_enabled == true
    error_message = "deletion protection must be on by default"
  }
}

run "deletion_protection_can_be_turned_off_for_throwaway_stacks" {
  command = plan

  variables {
    dynamodb_deletion_protection = false
  }

  assert {
    condition     = aws_dynamodb_table.metadata.deletion_protection_enabled == false
    error_message = "dynamodb_deletion_protection must drive the table's deletion protection"
  }
}

run "alert_topic_is_encrypted_and_only_named_publishers_publish" {
  command = plan

  assert {
    condition     = aws_sns_topic.alerts.kms_master_key_id == aws_kms_key.sns.arn
    error_message = "the topic must be encrypted with the SNS key"
  }

  assert {
    condition = toset(flatten([
      for s in data.aws_iam_policy_document.alerts_topic.statement : [for p in s.principals : p.identifiers] if s.effect == "Allow"
      ])) == toset(["cloudwatch.amazonaws.com"]) && alltrue([
      for s in data.aws_iam_policy_document.alerts_topic.statement : toset(s.actions) == toset(["sns:Publish"]) if s.effect == "Allow"
    ])
    error_message = "the topic policy only lets CloudWatch alarms publish (the pipeline's roles publish through their own IAM policies)"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.alerts_topic.statement : s if s.sid == "CloudWatchAlarmsPublish" && s.effect == "Allow"
      && length(s.condition) == 2
      && anytrue([for c in s.condition : c.test == "StringEquals" && c.variable == "aws:SourceAccount" && toset(c.values) == toset(["123456789012"])])
      && anytrue([for c in s.condition : c.test == "ArnLike" && c.variable == "aws:SourceArn" && toset(c.values) == toset(["arn:aws:cloudwatch:eu-central-1:123456789012:alarm:*"])])
    ]) != null
    error_message = "only alarms of this account, in this region, may publish to the topic"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.alerts_topic.statement : s if s.sid == "DenyInsecureTransport" && s.effect == "Deny"
      && toset(s.actions) == toset(["sns:*"]) && toset(s.resources) == toset([aws_sns_topic.alerts.arn])
      && one(s.principals).type == "*" && toset(one(s.principals).identifiers) == toset(["*"])
      && length(s.condition) == 1
      && anytrue([for c in s.condition : c.test == "Bool" && c.variable == "aws:SecureTransport" && toset(c.values) == toset(["false"])])
    ]) != null && length(data.aws_iam_policy_document.alerts_topic.statement) == 2
    error_message = "the topic denies every request without TLS, to anyone, beside the one grant to CloudWatch alarms"
  }

  # The policy's json is known only at apply: tests/test_terraform_static.py checks the wiring.
  assert {
    condition     = aws_sns_topic_policy.alerts.arn == aws_sns_topic.alerts.arn
    error_message = "the topic carries its policy"
  }

  # The roles of the state machine, the trigger and the monitor take this document as a source
  # (tests/test_terraform_static.py checks that wiring; its json is unknown under the mock provider).
  assert {
    condition     = one([for s in data.aws_iam_policy_document.publish_alerts.statement : s.resources if contains(s.actions, "sns:Publish")]) == toset([aws_sns_topic.alerts.arn])
    error_message = "the pipeline's roles may publish to the alert topic, and only to it"
  }

  assert {
    condition     = length(aws_sns_topic_subscription.alert_emails) == 0
    error_message = "no email subscription by default"
  }
}

run "alert_emails_are_subscribed" {
  command = plan

  variables {
    alert_email_addresses = ["oncall@example.com", "security@example.com"]
  }

  assert {
    condition     = aws_sns_topic_subscription.alert_emails["oncall@example.com"].protocol == "email" && length(aws_sns_topic_subscription.alert_emails) == 2
    error_message = "each listed address gets an email subscription"
  }
}

run "functions_have_own_roles_log_groups_and_tracing" {
  command = plan

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.trigger, aws_lambda_function.writer, aws_lambda_function.security_monitor] :
      f.runtime == var.lambda_runtime && f.handler == "index.lambda_handler" && f.tracing_config[0].mode == "Active"
    ])
    error_message = "the runtime variable, index.lambda_handler and X-Ray active tracing for every function"
  }

  assert {
    condition     = length(toset([aws_lambda_function.trigger.role, aws_lambda_function.writer.role, aws_lambda_function.security_monitor.role, aws_sfn_state_machine.ingestion.role_arn])) == 4
    error_message = "each function and the state machine need their own role"
  }

  assert {
    condition = alltrue([
      for pair in [[aws_lambda_function.trigger, aws_cloudwatch_log_group.trigger], [aws_lambda_function.writer, aws_cloudwatch_log_group.writer], [aws_lambda_function.security_monitor, aws_cloudwatch_log_group.security_monitor]] :
      pair[1].name == "/aws/lambda/${pair[0].function_name}" && pair[1].retention_in_days == 365
    ])
    error_message = "each function's log group is /aws/lambda/<name> with 365 days of retention"
  }

  assert {
    condition = (
      aws_lambda_function.trigger.environment[0].variables["STATE_MACHINE_ARN"] == aws_sfn_state_machine.ingestion.arn &&
      aws_lambda_function.trigger.environment[0].variables["UPLOAD_BUCKET"] == aws_s3_bucket.uploads.id &&
      aws_lambda_function.trigger.environment[0].variables["ALERT_TOPIC_ARN"] == aws_sns_topic.alerts.arn &&
      aws_lambda_function.trigger.environment[0].variables["DEADLINE_MARGIN_MS"] == "5000" &&
      aws_lambda_function.trigger.environment[0].variables["WORKFLOW_TYPE"] == "STANDARD" &&
      aws_lambda_function.writer.environment[0].variables["TABLE_NAME"] == aws_dynamodb_table.metadata.name &&
      aws_lambda_function.security_monitor.environment[0].variables["ALERT_TOPIC_ARN"] == aws_sns_topic.alerts.arn &&
      aws_lambda_function.security_monitor.environment[0].variables["SCAN_REGIONS"] == "eu-central-1" &&
      aws_lambda_function.security_monitor.environment[0].variables["SCAN_CONCURRENCY"] == "16" &&
      aws_lambda_function.security_monitor.environment[0].variables["EXEMPTION_TAG_KEY"] == "SecurityScanExemption"
    )
    error_message = "the handlers' environment contract"
  }

  assert {
    condition = (
      aws_lambda_function.trigger.timeout == 30 && aws_lambda_function.writer.timeout == 30 && aws_lambda_function.security_monitor.timeout == 300 &&
      aws_lambda_function.trigger.source_code_hash == filebase64sha256("dist/lambda_trigger.zip")
    )
    error_message = "timeouts and code hash"
  }
}

run "functions_log_json_at_the_configured_level_into_their_own_groups" {
  command = plan

  assert {
    condition = alltrue([
      for pair in [[aws_lambda_function.trigger, aws_cloudwatch_log_group.trigger], [aws_lambda_function.writer, aws_cloudwatch_log_group.writer], [aws_lambda_function.security_monitor, aws_cloudwatch_log_group.security_monitor]] :
      pair[0].logging_config[0].log_format == "JSON" && pair[0].logging_config[0].application_log_level == "INFO" &&
      pair[0].logging_config[0].log_group == pair[1].name
    ])
    error_message = "every function logs JSON at INFO into its own managed, encrypted log group"
  }

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.trigger, aws_lambda_function.writer, aws_lambda_function.security_monitor] :
      !contains(keys(f.environment[0].variables), "LOG_LEVEL") && !contains(keys(f.environment[0].variables), "POWERTOOLS_LOG_LEVEL")
    ])
    error_message = "the log level comes from logging_config alone (Powertools reads AWS_LAMBDA_LOG_LEVEL); a second setting would disagree"
  }
}

run "function_log_level_is_configurable" {
  command = plan

  variables {
    lambda_log_level = "DEBUG"
  }

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.trigger, aws_lambda_function.writer, aws_lambda_function.security_monitor] :
      f.logging_config[0].application_log_level == "DEBUG"
    ])
    error_message = "lambda_log_level must reach every function"
  }
}

run "unknown_log_level_is_rejected" {
  command = plan

  variables {
    lambda_log_level = "VERBOSE"
  }

  expect_failures = [var.lambda_log_level]
}

run "state_machine_is_encrypted_with_its_own_key" {
  command = plan

  assert {
    condition = (
      aws_sfn_state_machine.ingestion.encryption_configuration[0].type == "CUSTOMER_MANAGED_KMS_KEY" &&
      aws_sfn_state_machine.ingestion.encryption_configuration[0].kms_key_id == aws_kms_key.stepfunctions.arn &&
      aws_sfn_state_machine.ingestion.encryption_configuration[0].kms_data_key_reuse_period_seconds == 300
    )
    error_message = "the state machine's definition and executions are encrypted with the Step Functions key"
  }

  assert {
    condition     = aws_sfn_state_machine.ingestion.arn == "arn:aws:states:eu-central-1:123456789012:stateMachine:file-ingestion-dev-ingestion"
    error_message = "the ARN the key policy names is the state machine's"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.kms_stepfunctions.statement : s if s.sid == "StepFunctionsUsesKeyForThisStateMachine"
      && one(s.principals).type == "Service" && toset(one(s.principals).identifiers) == toset(["states.amazonaws.com"])
      && toset(s.actions) == toset(["kms:Decrypt", "kms:GenerateDataKey"])
      && anytrue([for c in s.condition : c.variable == "aws:SourceArn" && toset(c.values) == toset([aws_sfn_state_machine.ingestion.arn])])
      && anytrue([for c in s.condition : c.variable == "aws:SourceAccount" && toset(c.values) == toset(["123456789012"])])
      && anytrue([for c in s.condition : c.variable == "kms:EncryptionContext:aws:states:stateMachineArn" && toset(c.values) == toset([aws_sfn_state_machine.ingestion.arn])])
    ]) != null
    error_message = "Step Functions may use the key only for this state machine, in this account"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.kms_stepfunctions.statement :
      anytrue([for c in s.condition : c.variable == "kms:EncryptionContext:aws:states:stateMachineArn" && toset(c.values) == toset([aws_sfn_state_machine.ingestion.arn])])
      if contains(s.actions, "kms:Decrypt") || contains(s.actions, "kms:GenerateDataKey")
    ])
    error_message = "every data use of the Step Functions key is bound to this state machine's encryption context"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.step_functions.statement : s if s.sid == "EncryptOwnExecutions"
      && toset(s.actions) == toset(["kms:Decrypt", "kms:GenerateDataKey"]) && toset(s.resources) == toset([aws_kms_key.stepfunctions.arn])
      && anytrue([for c in s.condition : c.variable == "kms:EncryptionContext:aws:states:stateMachineArn" && toset(c.values) == toset([aws_sfn_state_machine.ingestion.arn])])
    ]) != null
    error_message = "the state machine's role may use its key for its own executions only"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.use_execution_key.statement : s if s.sid == "UseExecutionKeyThroughStepFunctions"
      && toset(s.actions) == toset(["kms:Decrypt", "kms:GenerateDataKey"]) && toset(s.resources) == toset([aws_kms_key.stepfunctions.arn])
      && anytrue([for c in s.condition : c.variable == "kms:ViaService" && toset(c.values) == toset(["states.eu-central-1.amazonaws.com"])])
      && anytrue([for c in s.condition : c.variable == "kms:EncryptionContext:aws:states:stateMachineArn" && toset(c.values) == toset([aws_sfn_state_machine.ingestion.arn])])
    ]) != null && length(data.aws_iam_policy_document.use_execution_key.statement) == 1
    error_message = "callers (trigger, operator) start and describe encrypted executions through Step Functions only, for this state machine"
  }
}

run "state_machine_data_key_reuse_is_bounded" {
  command = plan

  variables {
    state_machine_kms_data_key_reuse_seconds = 30
  }

  expect_failures = [var.state_machine_kms_data_key_reuse_seconds]
}

run "monitor_runs_on_a_schedule" {
  command = plan

  assert {
    condition = (
      aws_cloudwatch_event_rule.security_scan.schedule_expression == "rate(24 hours)" &&
      aws_cloudwatch_event_target.security_scan.arn == aws_lambda_function.security_monitor.arn &&
      aws_lambda_permission.security_monitor_from_events.principal == "events.amazonaws.com" &&
      aws_lambda_permission.security_monitor_from_events.source_arn == aws_cloudwatch_event_rule.security_scan.arn
    )
    error_message = "EventBridge runs the monitor every 24 hours, and only that rule may invoke it"
  }
}

run "monitor_scans_the_configured_regions" {
  command = plan

  variables {
    security_scan_regions = ["eu-central-1", "eu-west-1"]
  }

  assert {
    condition     = aws_lambda_function.security_monitor.environment[0].variables["SCAN_REGIONS"] == "eu-central-1,eu-west-1"
    error_message = "SCAN_REGIONS lists every configured region"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.security_monitor.statement : s.resources if s.sid == "DescribeTablesAndTags"
      && toset(s.actions) == toset(["dynamodb:DescribeTable", "dynamodb:ListTagsOfResource"])
    ]) == toset(["arn:aws:dynamodb:eu-central-1:123456789012:table/*", "arn:aws:dynamodb:eu-west-1:123456789012:table/*"])
    error_message = "DescribeTable and ListTagsOfResource are allowed exactly in the scanned regions"
  }
}

run "monitor_is_read_only_and_reads_exemption_tags" {
  command = plan

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.security_monitor.statement : s if s.sid == "ListKmsAliases"
      && toset(s.actions) == toset(["kms:ListAliases"]) && toset(s.resources) == toset(["*"])
    ]) != null
    error_message = "the monitor finds the AWS-managed DynamoDB key through ListAliases"
  }

  assert {
    condition = !anytrue(flatten([
      for s in data.aws_iam_policy_document.security_monitor.statement : [for a in s.actions : startswith(a, "kms:") && a != "kms:ListAliases"]
    ]))
    error_message = "no other KMS action: DescribeKey on alias/aws/dynamodb would create that key"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.security_monitor.statement : s.resources if s.sid == "ReadBucketEncryptionAndTags"
      && toset(s.actions) == toset(["s3:GetBucketTagging", "s3:GetEncryptionConfiguration"])
    ]) == toset(["arn:aws:s3:::*"])
    error_message = "the monitor reads encryption and tags of every bucket"
  }

  assert {
    condition = alltrue(flatten([
      for s in data.aws_iam_policy_document.security_monitor.statement : [
        for a in s.actions : contains([
          "logs:CreateLogStream", "logs:PutLogEvents", "sns:Publish", "kms:Decrypt", "kms:GenerateDataKey",
          "xray:PutTelemetryRecords", "xray:PutTraceSegments",
          "dynamodb:ListTables", "s3:ListAllMyBuckets", "kms:ListAliases",
          "s3:GetBucketTagging", "s3:GetEncryptionConfiguration", "dynamodb:DescribeTable", "dynamodb:ListTagsOfResource",
        ], a)
      ]
    ]))
    error_message = "the monitor's own statements are read-only (beside logs, traces and alerts)"
  }

  assert {
    condition = (
      aws_lambda_function_event_invoke_config.security_monitor.function_name == aws_lambda_function.security_monitor.function_name &&
      aws_lambda_function_event_invoke_config.security_monitor.destination_config[0].on_failure[0].destination == aws_sns_topic.alerts.arn
    )
    error_message = "a scheduled run that keeps failing reaches the alert topic"
  }
}

run "monitor_concurrency_and_exemption_tag_are_configurable" {
  command = plan

  variables {
    security_monitor_concurrency = 64
    security_exemption_tag_key   = "scan-exempt"
  }

  assert {
    condition = (
      aws_lambda_function.security_monitor.environment[0].variables["SCAN_CONCURRENCY"] == "64" &&
      aws_lambda_function.security_monitor.environment[0].variables["EXEMPTION_TAG_KEY"] == "scan-exempt"
    )
    error_message = "the variables reach the monitor's environment"
  }
}

run "monitor_declares_no_exemptions_by_default" {
  command = plan

  assert {
    condition     = aws_lambda_function.security_monitor.environment[0].variables["SECURITY_SCAN_EXEMPTIONS"] == "{}"
    error_message = "nothing is exempted unless security_scan_exemptions names it"
  }
}

run "declared_exemptions_reach_the_monitor_as_json" {
  command = plan

  variables {
    security_scan_exemptions = {
      "central-access-logs-eu-central-1" = "server access logs: AWS allows only SSE-S3 there (SEC-12)"
      "legacy-orders"                    = "migrated off by 2025-06-30, \"SEC-7\""
    }
  }

  assert {
    condition     = aws_lambda_function.security_monitor.environment[0].variables["SECURITY_SCAN_EXEMPTIONS"] == jsonencode(var.security_scan_exemptions)
    error_message = "the monitor's SECURITY_SCAN_EXEMPTIONS is the JSON of security_scan_exemptions"
  }

  assert {
    condition     = jsondecode(aws_lambda_function.security_monitor.environment[0].variables["SECURITY_SCAN_EXEMPTIONS"])["legacy-orders"] == "migrated off by 2025-06-30, \"SEC-7\""
    error_message = "a reason survives the JSON encoding unchanged (quotes included)"
  }
}

run "an_exemption_needs_a_reason" {
  command = plan

  variables {
    security_scan_exemptions = {
      "legacy-orders" = "   "
    }
  }

  expect_failures = [var.security_scan_exemptions]
}

run "an_exempted_name_has_no_surrounding_spaces" {
  command = plan

  variables {
    security_scan_exemptions = {
      " legacy-orders" = "SEC-7"
    }
  }

  expect_failures = [var.security_scan_exemptions]
}

run "reserved_concurrency_is_unset_by_default" {
  command = plan

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.trigger, aws_lambda_function.writer, aws_lambda_function.security_monitor] :
      f.reserved_concurrent_executions == null || f.reserved_concurrent_executions == -1
    ])
    error_message = "no function reserves concurrency unless asked to"
  }
}

run "reserved_concurrency_is_configurable" {
  command = plan

  variables {
    trigger_reserved_concurrency          = 5
    writer_reserved_concurrency           = 10
    security_monitor_reserved_concurrency = 1
  }

  assert {
    condition     = aws_lambda_function.trigger.reserved_concurrent_executions == 5 && aws_lambda_function.writer.reserved_concurrent_executions == 10 && aws_lambda_function.security_monitor.reserved_concurrent_executions == 1
    error_message = "the variables reach reserved_concurrent_executions"
  }
}

run "code_signing_is_off_by_default" {
  command = plan

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.trigger, aws_lambda_function.writer, aws_lambda_function.security_monitor] :
      f.code_signing_config_arn == null
    ])
    error_message = "no function has a code signing configuration unless code_signing_config_arn is set"
  }
}

run "code_signing_config_reaches_every_function" {
  command = plan

  variables {
    code_signing_config_arn = "arn:aws:lambda:eu-central-1:123456789012:code-signing-config:csc-0123456789abcdef0"
  }

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.trigger, aws_lambda_function.writer, aws_lambda_function.security_monitor] :
      f.code_signing_config_arn == "arn:aws:lambda:eu-central-1:123456789012:code-signing-config:csc-0123456789abcdef0"
    ])
    error_message = "code_signing_config_arn applies to all three functions"
  }
}

run "code_signing_config_must_be_a_code_signing_config_arn" {
  command = plan

  variables {
    code_signing_config_arn = "arn:aws:signer:eu-central-1:123456789012:/signing-profiles/lambda"
  }

  expect_failures = [var.code_signing_config_arn]
}

run "state_machine_retries_with_backoff_and_alerts_on_failure" {
  command = plan

  assert {
    condition     = aws_sfn_state_machine.ingestion.type == "STANDARD"
    error_message = "a STANDARD state machine (idempotent execution names)"
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.ingestion.definition).StartAt == "WriteMetadata" &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Resource == "arn:aws:states:::lambda:invoke" &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Parameters.FunctionName == aws_lambda_function.writer.arn &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Parameters.Payload == { "file.$" = "$", "execution_id.$" = "$$.Execution.Id" }
    )
    error_message = "WriteMetadata invokes the writer with the record and the execution id"
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Retry[0].ErrorEquals == ["InvalidInputError"] &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Retry[0].MaxAttempts == 0
    )
    error_message = "the writer's validation error is never retried"
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Retry[1] == {
        ErrorEquals = ["States.ALL"], IntervalSeconds = 2, MaxAttempts = 3, BackoffRate = 2
      }
    )
    error_message = "everything else is retried 3 times, 2 s apart, backoff 2.0"
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Catch == [{ ErrorEquals = ["States.ALL"], ResultPath = "$.error", Next = "NotifyFailure" }] &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.NotifyFailure.Resource == "arn:aws:states:::sns:publish" &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.NotifyFailure.Parameters.TopicArn == aws_sns_topic.alerts.arn &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.NotifyFailure.Next == "IngestionFailed" &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.IngestionFailed.Type == "Fail"
    )
    error_message = "a final failure publishes to the alert topic, then the execution fails"
  }

  assert {
    condition = alltrue([
      for field in ["bucket.$", "key.$", "error.$", "cause.$", "execution_id.$"] :
      contains(keys(jsondecode(aws_sfn_state_machine.ingestion.definition).States.NotifyFailure.Parameters.Message), field)
    ])
    error_message = "the failure alert names bucket, key, error, cause and execution id"
  }

  assert {
    condition = (
      aws_sfn_state_machine.ingestion.logging_configuration[0].level == "ALL" &&
      aws_sfn_state_machine.ingestion.logging_configuration[0].include_execution_data == false &&
      aws_sfn_state_machine.ingestion.logging_configuration[0].log_destination == "${aws_cloudwatch_log_group.state_machine.arn}:*" &&
      startswith(aws_cloudwatch_log_group.state_machine.name, "/aws/vendedlogs/states/") &&
      aws_cloudwatch_log_group.state_machine.retention_in_days == 365 &&
      aws_sfn_state_machine.ingestion.tracing_configuration[0].enabled
    )
    error_message = "logging ALL without execution data to a retained vended log group, and tracing"
  }
}

run "express_profile_runs_the_same_definition_without_execution_api_grants" {
  command = plan

  variables {
    workflow_type           = "EXPRESS"
    state_machine_log_level = "ERROR"
  }

  assert {
    condition = (
      aws_sfn_state_machine.ingestion.type == "EXPRESS" &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).StartAt == "WriteMetadata" &&
      aws_sfn_state_machine.ingestion.encryption_configuration[0].kms_key_id == aws_kms_key.stepfunctions.arn
    )
    error_message = "EXPRESS runs the same definition, encrypted with the same key"
  }

  assert {
    condition = (
      aws_sfn_state_machine.ingestion.logging_configuration[0].level == "ERROR" &&
      aws_sfn_state_machine.ingestion.logging_configuration[0].log_destination == "${aws_cloudwatch_log_group.state_machine.arn}:*" &&
      aws_cloudwatch_log_group.state_machine.kms_key_id == aws_kms_key.logs.arn
    )
    error_message = "EXPRESS logs at state_machine_log_level into the KMS-encrypted log group"
  }

  assert {
    condition     = aws_lambda_function.trigger.environment[0].variables["WORKFLOW_TYPE"] == "EXPRESS"
    error_message = "the trigger knows the workflow type (it must not describe an Express execution)"
  }

  assert {
    condition = (
      !anytrue([for s in data.aws_iam_policy_document.trigger.statement : contains(s.actions, "states:DescribeExecution")]) &&
      !anytrue([for s in data.aws_iam_policy_document.reconcile_operator.statement : contains(s.actions, "states:DescribeExecution") || contains(s.actions, "states:ListExecutions")]) &&
      anytrue([for s in data.aws_iam_policy_document.reconcile_operator.statement : s.sid == "ReadWorkflowType"])
    )
    error_message = "EXPRESS has no execution API: nobody is granted DescribeExecution or ListExecutions"
  }
}

run "express_retries_must_fit_in_five_minutes" {
  command = plan

  variables {
    workflow_type         = "EXPRESS"
    writer_lambda_timeout = 60
  }

  # 4 attempts x (60 + 10) s + 14 s of backoff + 10 s = 304 s > 300 s.
  expect_failures = [aws_sfn_state_machine.ingestion]
}

run "unknown_workflow_type_and_log_level_are_rejected" {
  command = plan

  variables {
    workflow_type           = "standard"
    state_machine_log_level = "OFF"
  }

  expect_failures = [var.workflow_type, var.state_machine_log_level]
}

run "execution_data_can_be_logged_for_debugging" {
  command = plan

  variables {
    state_machine_include_execution_data = true
  }

  assert {
    condition     = aws_sfn_state_machine.ingestion.logging_configuration[0].include_execution_data
    error_message = "state_machine_include_execution_data must reach the logging configuration"
  }
}

run "retry_policy_is_configurable" {
  command = plan

  variables {
    retry_interval_seconds = 1
    retry_max_attempts     = 5
    retry_backoff_rate     = 1.5
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Retry[1].IntervalSeconds == 1 &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Retry[1].MaxAttempts == 5 &&
      jsondecode(aws_sfn_state_machine.ingestion.definition).States.WriteMetadata.Retry[1].BackoffRate == 1.5
    )
    error_message = "the retry variables must reach the definition"
  }
}

run "alarms_cover_errors_throttles_failures_and_a_silent_monitor" {
  command = plan

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.dead_letter_queue.namespace == "AWS/SQS" &&
      aws_cloudwatch_metric_alarm.dead_letter_queue.metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.dead_letter_queue.dimensions["QueueName"] == "file-ingestion-dev-uploads-dlq" &&
      aws_cloudwatch_metric_alarm.dead_letter_queue.threshold == 0 &&
      aws_cloudwatch_metric_alarm.dead_letter_queue.comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.dead_letter_queue.alarm_actions == toset([aws_sns_topic.alerts.arn])
    )
    error_message = "any message in the dead-letter queue raises an alarm on the alert topic"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.upload_queue_age.metric_name == "ApproximateAgeOfOldestMessage" &&
      aws_cloudwatch_metric_alarm.upload_queue_age.dimensions["QueueName"] == "file-ingestion-dev-uploads" &&
      aws_cloudwatch_metric_alarm.upload_queue_age.threshold == 900 &&
      aws_cloudwatch_metric_alarm.upload_queue_age.alarm_actions == toset([aws_sns_topic.alerts.arn])
    )
    error_message = "a queue falling behind by more than 15 minutes raises an alarm"
  }

  assert {
    condition = {
      for k, a in aws_cloudwatch_metric_alarm.lambda : k => [a.namespace, a.metric_name, a.dimensions["FunctionName"]]
      } == {
      trigger-errors          = ["AWS/Lambda", "Errors", aws_lambda_function.trigger.function_name]
      writer-errors           = ["AWS/Lambda", "Errors", aws_lambda_function.writer.function_name]
      security_monitor-errors = ["AWS/Lambda", "Errors", aws_lambda_function.security_monitor.function_name]
      trigger-throttles       = ["AWS/Lambda", "Throttles", aws_lambda_function.trigger.function_name]
      writer-throttles        = ["AWS/Lambda", "Throttles", aws_lambda_function.writer.function_name]
    }
    error_message = "an error alarm for each function, throttle alarms for trigger and writer"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.executions_failed.metric_name == "ExecutionsFailed" && aws_cloudwatch_metric_alarm.executions_failed.dimensions["StateMachineArn"] == aws_sfn_state_machine.ingestion.arn
    error_message = "an alarm on failed executions"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.security_monitor_heartbeat.treat_missing_data == "breaching" &&
      aws_cloudwatch_metric_alarm.security_monitor_heartbeat.period == 86400 &&
      aws_cloudwatch_metric_alarm.security_monitor_heartbeat.comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.security_monitor_heartbeat.dimensions["FunctionName"] == aws_lambda_function.security_monitor.function_name
    )
    error_message = "a heartbeat alarm when the monitor has not run for a day"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.alert_delivery_failed.namespace == "AWS/SNS" &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.metric_name == "NumberOfNotificationsFailed" &&
      length(aws_cloudwatch_metric_alarm.alert_delivery_failed.dimensions) == 1 &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.dimensions["TopicName"] == "file-ingestion-dev-alerts" &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.dimensions["TopicName"] == aws_sns_topic.alerts.name &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.statistic == "Sum" &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.period == 300 &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.threshold == 0 &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.treat_missing_data == "notBreaching" &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.alarm_actions == toset([aws_sns_topic.alerts.arn]) &&
      aws_cloudwatch_metric_alarm.alert_delivery_failed.ok_actions == toset([aws_sns_topic.alerts.arn])
    )
    error_message = "any notification SNS failed to deliver from the alert topic raises an alarm"
  }

  assert {
    condition = (
      strcontains(aws_cloudwatch_metric_alarm.alert_delivery_failed.alarm_description, "single point of failure") &&
      strcontains(aws_cloudwatch_metric_alarm.alert_delivery_failed.alarm_description, "second subscriber")
    )
    error_message = "the failed-delivery alarm tells the operator to add a second subscriber"
  }

  assert {
    condition = alltrue([
      for a in concat(values(aws_cloudwatch_metric_alarm.lambda), [aws_cloudwatch_metric_alarm.executions_failed, aws_cloudwatch_metric_alarm.security_monitor_heartbeat, aws_cloudwatch_metric_alarm.upload_queue_age, aws_cloudwatch_metric_alarm.dead_letter_queue, aws_cloudwatch_metric_alarm.alert_delivery_failed]) :
      a.alarm_actions == toset([aws_sns_topic.alerts.arn])
    ])
    error_message = "every alarm notifies the alert topic"
  }
}

run "roles_grant_exact_actions_on_exact_resources" {
  command = plan

  assert {
    condition     = one([for s in data.aws_iam_policy_document.trigger.statement : s.resources if toset(s.actions) == toset(["states:StartExecution"])]) == toset([aws_sfn_state_machine.ingestion.arn])
    error_message = "the trigger may start only the ingestion state machine"
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.trigger.statement : s.resources if toset(s.actions) == toset(["states:DescribeExecution"])]) == toset(["arn:aws:states:eu-central-1:123456789012:execution:${aws_sfn_state_machine.ingestion.name}:*"])
    error_message = "the trigger may describe only the executions of the ingestion state machine"
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.writer.statement : s.resources if toset(s.actions) == toset(["dynamodb:PutItem"])]) == toset([aws_dynamodb_table.metadata.arn])
    error_message = "the writer may only put items into the metadata table"
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.step_functions.statement : s.resources if toset(s.actions) == toset(["lambda:InvokeFunction"])]) == toset([aws_lambda_function.writer.arn, "${aws_lambda_function.writer.arn}:*"])
    error_message = "the state machine may invoke only the writer"
  }

  assert {
    condition = alltrue([
      for pair in [[data.aws_iam_policy_document.trigger, aws_cloudwatch_log_group.trigger], [data.aws_iam_policy_document.writer, aws_cloudwatch_log_group.writer], [data.aws_iam_policy_document.security_monitor, aws_cloudwatch_log_group.security_monitor]] :
      one([for s in pair[0].statement : s.resources if s.sid == "WriteOwnLogs"]) == toset(["${pair[1].arn}:*"])
    ])
    error_message = "each function writes only its own log group"
  }

  assert {
    condition     = !anytrue([for s in data.aws_iam_policy_document.writer.statement : anytrue([for a in s.actions : startswith(a, "s3:") || startswith(a, "sns:")])])
    error_message = "the writer has no S3 or SNS access"
  }
}

run "invalid_names_are_rejected" {
  command = plan

  variables {
    project_name                          = "Not_Valid"
    log_retention_days                    = 8
    lambda_runtime                        = "nodejs20.x"
    security_monitor_concurrency          = 65
    security_exemption_tag_key            = "aws:exempt"
    trigger_reserved_concurrency          = 0
    writer_reserved_concurrency           = 2.5
    security_monitor_reserved_concurrency = 0
    access_log_bucket                     = "Access_Logs"
  }

  expect_failures = [
    var.project_name, var.log_retention_days, var.lambda_runtime, var.security_monitor_concurrency,
    var.security_exemption_tag_key, var.trigger_reserved_concurrency, var.writer_reserved_concurrency,
    var.security_monitor_reserved_concurrency, var.access_log_bucket,
  ]
}

run "reconcile_operator_policy_grants_exactly_what_the_tool_calls" {
  command = plan

  # The document's json stays unknown at plan under the mock provider: its statements are asserted
  # (compared as JSON, since a map of objects never equals an object literal's type).
  assert {
    condition = jsonencode({
      for s in data.aws_iam_policy_document.reconcile_operator.statement : s.sid => {
        effect    = s.effect
        actions   = sort(tolist(s.actions))
        resources = sort(tolist(s.resources))
      }
      }) == jsonencode({
      ListUploadVersions = {
        effect = "Allow", actions = ["s3:ListBucketVersions"], resources = [aws_s3_bucket.uploads.arn]
      }
      ScanMetadata = {
        effect = "Allow", actions = ["dynamodb:Scan"], resources = [aws_dynamodb_table.metadata.arn]
      }
      ReadTableKeyThroughDynamoDB = {
        effect = "Allow", actions = ["kms:Decrypt"], resources = [aws_kms_key.dynamodb.arn]
      }
      ReadWorkflowType = {
        effect = "Allow", actions = ["states:DescribeStateMachine"], resources = [aws_sfn_state_machine.ingestion.arn]
      }
      ListIngestionExecutions = {
        effect = "Allow", actions = ["states:ListExecutions"], resources = [aws_sfn_state_machine.ingestion.arn]
      }
      DescribeIngestionExecutions = {
        effect = "Allow", actions = ["states:DescribeExecution"], resources = ["arn:aws:states:eu-central-1:123456789012:execution:file-ingestion-dev-ingestion:*"]
      }
      RedriveMissingUploads = {
        effect = "Allow", actions = ["states:StartExecution"], resources = [aws_sfn_state_machine.ingestion.arn]
      }
      RedriveDeadLetterQueue = {
        effect = "Allow", resources = [aws_sqs_queue.uploads_dlq.arn], actions = [
          "sqs:CancelMessageMoveTask", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ListMessageMoveTasks",
          "sqs:ReceiveMessage", "sqs:StartMessageMoveTask",
        ]
      }
      SendRedrivenMessagesToUploadQueue = {
        effect = "Allow", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.uploads.arn]
      }
      UseQueueKeyThroughSQS = {
        effect = "Allow", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = [aws_kms_key.sqs.arn]
      }
    })
    error_message = "the operator may list the bucket's versions, scan the table, read the workflow type, list/describe/start the state machine's executions, re-drive the dead-letter queue into the upload queue, nothing else"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.reconcile_operator.statement : s if s.sid == "ReadTableKeyThroughDynamoDB"
      && length(s.condition) == 1
      && anytrue([for c in s.condition : c.test == "StringEquals" && c.variable == "kms:ViaService" && toset(c.values) == toset(["dynamodb.eu-central-1.amazonaws.com"])])
    ]) != null
    error_message = "the operator uses the table's key only through DynamoDB"
  }
}
