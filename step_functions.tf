resource "aws_cloudwatch_log_group" "state_machine" {
  name              = local.log_group_names.state_machine
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_sfn_state_machine" "ingestion" {
  name     = local.state_machine_name
  role_arn = aws_iam_role.step_functions.arn
  type     = "STANDARD"

  definition = templatefile("${path.module}/state_machine.asl.json", {
    partition              = local.partition
    writer_function_arn    = aws_lambda_function.writer.arn
    alert_topic_arn        = aws_sns_topic.alerts.arn
    task_timeout_seconds   = var.writer_lambda_timeout + 10
    non_retryable_errors   = ["InvalidInputError"]
    retry_interval_seconds = var.retry_interval_seconds
    retry_max_attempts     = var.retry_max_attempts
    retry_backoff_rate     = var.retry_backoff_rate
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = var.state_machine_include_execution_data
    level                  = "ALL"
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.stepfunctions.arn
    kms_data_key_reuse_period_seconds = var.state_machine_kms_data_key_reuse_seconds
  }

  tracing_configuration {
    enabled = var.enable_xray_tracing
  }

  # The role's permissions (log delivery in particular) are checked when the state machine is created.
  depends_on = [aws_iam_role_policy.step_functions]
}
