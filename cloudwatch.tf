locals {
  # Functions whose errors alarm, and the subset whose throttling alarms.
  alarmed_functions = {
    trigger          = aws_lambda_function.trigger.function_name
    writer           = aws_lambda_function.writer.function_name
    security_monitor = aws_lambda_function.security_monitor.function_name
  }
  throttle_alarmed_functions = {
    trigger = aws_lambda_function.trigger.function_name
    writer  = aws_lambda_function.writer.function_name
  }
}

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each = local.alarmed_functions

  alarm_name          = "${each.value}-errors"
  alarm_description   = "The ${each.key} function raised errors."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  for_each = local.throttle_alarmed_functions

  alarm_name          = "${each.value}-throttles"
  alarm_description   = "The ${each.key} function was throttled; uploads are being delayed."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  alarm_name          = "${aws_sfn_state_machine.ingestion.name}-executions-failed"
  alarm_description   = "Ingestion workflows failed after all retries."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.ingestion.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

# Heartbeat: no security scan for a whole day is itself an alert (missing data counts as breaching).
resource "aws_cloudwatch_metric_alarm" "security_monitor_heartbeat" {
  alarm_name          = "${aws_lambda_function.security_monitor.function_name}-not-running"
  alarm_description   = "The security monitor has not run for more than a day."
  namespace           = "AWS/Lambda"
  metric_name         = "Invocations"
  dimensions          = { FunctionName = aws_lambda_function.security_monitor.function_name }
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}
