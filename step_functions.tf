resource "aws_cloudwatch_log_group" "state_machine" {
  name              = local.log_group_names.state_machine
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

locals {
  writer_task_timeout_seconds = var.writer_lambda_timeout + 10
  # The longest an execution can run: every attempt of the writer task times out, with the backoff
  # waits in between (IntervalSeconds x BackoffRate^n), then the failure alert. An EXPRESS workflow
  # is stopped after 5 minutes, so there the retries must fit (the precondition below).
  retry_wait_seconds = sum(concat([0], [
    for attempt in range(var.retry_max_attempts) : var.retry_interval_seconds * pow(var.retry_backoff_rate, attempt)
  ]))
  longest_execution_seconds = (var.retry_max_attempts + 1) * local.writer_task_timeout_seconds + local.retry_wait_seconds + 10
}

resource "aws_sfn_state_machine" "ingestion" {
  #checkov:skip=CKV_AWS_285:Execution data (object keys, inputs, error causes) stays out of the logs unless state_machine_include_execution_data is set; logging at state_machine_log_level (ALL by default) stays on.
  name     = local.state_machine_name
  role_arn = aws_iam_role.step_functions.arn
  type     = var.workflow_type

  definition = templatefile("${path.module}/state_machine.asl.json", {
    partition              = local.partition
    writer_function_arn    = aws_lambda_function.writer.arn
    alert_topic_arn        = aws_sns_topic.alerts.arn
    task_timeout_seconds   = local.writer_task_timeout_seconds
    non_retryable_errors   = ["InvalidInputError"]
    retry_interval_seconds = var.retry_interval_seconds
    retry_max_attempts     = var.retry_max_attempts
    retry_backoff_rate     = var.retry_backoff_rate
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = var.state_machine_include_execution_data
    level                  = var.state_machine_log_level
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

  lifecycle {
    precondition {
      condition     = var.workflow_type == "STANDARD" || local.longest_execution_seconds <= 300
      error_message = "An EXPRESS execution is stopped after 300 s, but with these settings the writer's retries can take ${local.longest_execution_seconds} s ((retry_max_attempts + 1) x (writer_lambda_timeout + 10) + the backoff waits + 10): lower writer_lambda_timeout, retry_max_attempts or retry_interval_seconds/retry_backoff_rate."
    }
  }
}
