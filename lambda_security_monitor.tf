resource "aws_cloudwatch_log_group" "security_monitor" {
  name              = local.log_group_names.security_monitor
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "security_monitor" {
  #checkov:skip=CKV_AWS_116:Invoked asynchronously by its schedule only: a failed event goes to the alert topic through the on-failure destination (aws_lambda_function_event_invoke_config.security_monitor), which supersedes a dead-letter queue.
  #checkov:skip=CKV_AWS_117:Calls only AWS APIs (S3, DynamoDB, KMS, SNS, X-Ray) and reaches no private resource: a VPC would need NAT or endpoints and protect nothing.
  #checkov:skip=CKV_AWS_173:The environment holds only the topic ARN, regions, settings and exemption names and reasons, no secrets; Lambda encrypts it at rest with its AWS-managed key.
  function_name    = "${local.name_prefix}-security-monitor"
  description      = "Daily scan of every S3 bucket and DynamoDB table for missing KMS encryption"
  role             = aws_iam_role.security_monitor.arn
  runtime          = var.lambda_runtime
  handler          = "index.lambda_handler"
  filename         = "${local.dist_dir}/lambda_security_monitor.zip"
  source_code_hash = filebase64sha256("${local.dist_dir}/lambda_security_monitor.zip")
  timeout          = var.security_monitor_lambda_timeout
  memory_size      = var.security_monitor_lambda_memory_size
  # null leaves the function unreserved (the provider's default, -1).
  reserved_concurrent_executions = var.security_monitor_reserved_concurrency
  code_signing_config_arn        = var.code_signing_config_arn

  environment {
    variables = {
      ALERT_TOPIC_ARN              = aws_sns_topic.alerts.arn
      SCAN_REGIONS                 = join(",", local.scan_regions)
      SCAN_CONCURRENCY             = tostring(var.security_monitor_concurrency)
      EXEMPTION_TAG_KEY            = var.security_exemption_tag_key
      SECURITY_SCAN_EXEMPTIONS     = jsonencode(var.security_scan_exemptions)
      POWERTOOLS_SERVICE_NAME      = "security-monitor"
      POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    }
  }

  # Lambda's JSON log format: the handlers' Powertools lines are JSON already and pass through as
  # they are; Lambda filters them by `level` (AWS_LAMBDA_LOG_LEVEL, which Powertools also reads).
  logging_config {
    log_format            = "JSON"
    application_log_level = var.lambda_log_level
    log_group             = aws_cloudwatch_log_group.security_monitor.name
  }

  tracing_config {
    mode = var.enable_xray_tracing ? "Active" : "PassThrough"
  }

  # The log group (with its retention) must exist before the first invocation creates it unmanaged.
  depends_on = [aws_cloudwatch_log_group.security_monitor, aws_iam_role_policy.security_monitor]
}

# The schedule invokes the monitor asynchronously: after Lambda's retries, the failed event goes to
# the alert topic instead of being dropped (the heartbeat alarm only notices a missing run).
resource "aws_lambda_function_event_invoke_config" "security_monitor" {
  function_name          = aws_lambda_function.security_monitor.function_name
  maximum_retry_attempts = 2

  destination_config {
    on_failure {
      destination = aws_sns_topic.alerts.arn
    }
  }
}

resource "aws_cloudwatch_event_rule" "security_scan" {
  name                = "${local.name_prefix}-security-scan"
  description         = "Runs the security monitor"
  schedule_expression = var.security_scan_schedule
}

resource "aws_cloudwatch_event_target" "security_scan" {
  rule      = aws_cloudwatch_event_rule.security_scan.name
  target_id = "security-monitor"
  arn       = aws_lambda_function.security_monitor.arn
}

resource "aws_lambda_permission" "security_monitor_from_events" {
  statement_id   = "AllowInvokeFromSchedule"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.security_monitor.function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.security_scan.arn
  source_account = local.account_id
}
