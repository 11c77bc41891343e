resource "aws_cloudwatch_log_group" "trigger" {
  name              = local.log_group_names.trigger
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "trigger" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the upload queue's event source mapping, never asynchronously: what fails stays in the queue and moves to its alarmed dead-letter queue (sqs.tf); a function dead-letter queue would receive nothing.
  #checkov:skip=CKV_AWS_117:Calls only AWS APIs (SQS, Step Functions, SNS, KMS, X-Ray) and reaches no private resource: a VPC would need NAT or endpoints and protect nothing.
  #checkov:skip=CKV_AWS_173:The environment holds only the state machine ARN, bucket name, topic ARN and settings, no secrets; Lambda encrypts it at rest with its AWS-managed key.
  function_name    = "${local.name_prefix}-trigger"
  description      = "Validates S3 upload keys and starts the ingestion workflow"
  role             = aws_iam_role.trigger.arn
  runtime          = var.lambda_runtime
  handler          = "index.lambda_handler"
  filename         = "${local.dist_dir}/lambda_trigger.zip"
  source_code_hash = filebase64sha256("${local.dist_dir}/lambda_trigger.zip")
  timeout          = var.trigger_lambda_timeout
  memory_size      = var.trigger_lambda_memory_size
  # null leaves the function unreserved (the provider's default, -1).
  reserved_concurrent_executions = var.trigger_reserved_concurrency
  code_signing_config_arn        = var.code_signing_config_arn

  environment {
    variables = {
      STATE_MACHINE_ARN = aws_sfn_state_machine.ingestion.arn
      UPLOAD_BUCKET     = aws_s3_bucket.uploads.id
      ALERT_TOPIC_ARN   = aws_sns_topic.alerts.arn
      # EXPRESS: a failed start is not looked up with DescribeExecution (Express has none).
      WORKFLOW_TYPE = var.workflow_type
      # A batch stops starting executions this long before the timeout and reports the rest as
      # failed (they come back): a third of the timeout, at most 5 s (a throttled start's retries).
      DEADLINE_MARGIN_MS           = tostring(min(5000, floor(var.trigger_lambda_timeout * 1000 / 3)))
      POWERTOOLS_SERVICE_NAME      = "ingestion-trigger"
      POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    }
  }

  # Lambda's JSON log format: the handlers' Powertools lines are JSON already and pass through as
  # they are; Lambda filters them by `level` (AWS_LAMBDA_LOG_LEVEL, which Powertools also reads).
  logging_config {
    log_format            = "JSON"
    application_log_level = var.lambda_log_level
    log_group             = aws_cloudwatch_log_group.trigger.name
  }

  tracing_config {
    mode = var.enable_xray_tracing ? "Active" : "PassThrough"
  }

  # The log group (with its retention) must exist before the first invocation creates it unmanaged,
  # and the role's policy before the first batch arrives. The upload queue feeds it (sqs.tf).
  depends_on = [aws_cloudwatch_log_group.trigger, aws_iam_role_policy.trigger]
}
