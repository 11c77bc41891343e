locals {
  # Errors of every function (functions.json: its deployed name is the one its <folder>.tf sets, which
  # tests/tooling/test_function_registry.py checks), throttles of the two on the ingestion path.
  lambda_alarms = merge({
    for key, f in local.functions : "${key}-errors" => {
      function    = "${local.name_prefix}-${f.function_name_suffix}"
      metric      = "Errors"
      description = "The ${f.label} function raised errors."
    }
    }, {
    trigger-throttles = {
      function    = aws_lambda_function.trigger.function_name
      metric      = "Throttles"
      description = "The trigger function was throttled; uploads are being delayed."
    }
    writer-throttles = {
      function    = aws_lambda_function.writer.function_name
      metric      = "Throttles"
      description = "The writer function was throttled; uploads are being delayed."
    }
  })
}

resource "aws_cloudwatch_metric_alarm" "lambda" {
  for_each = local.lambda_alarms

  alarm_name          = "${each.value.function}-${lower(each.value.metric)}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = each.value.function }
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

# The queue is falling behind: its oldest notification waits longer than the threshold (throttled,
# failing or disabled trigger). Files are delayed, not lost: the queue keeps them.
resource "aws_cloudwatch_metric_alarm" "upload_queue_age" {
  alarm_name          = "${aws_sqs_queue.uploads.name}-falling-behind"
  alarm_description   = "The oldest upload notification has waited more than ${var.queue_oldest_message_alarm_seconds} s for the trigger."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.uploads.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.queue_oldest_message_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

# Any message in the dead-letter queue is a file whose workflow could not be started after
# queue_max_receive_count attempts: re-drive it once the cause is fixed (README).
resource "aws_cloudwatch_metric_alarm" "dead_letter_queue" {
  alarm_name          = "${aws_sqs_queue.uploads_dlq.name}-not-empty"
  alarm_description   = "Upload notifications reached the dead-letter queue; fix the cause, then re-drive it (aws sqs start-message-move-task)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.uploads_dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

# The alert topic is the one path every alert above takes: a subscriber SNS cannot deliver to (a
# queue whose policy or KMS key refuses SNS, an endpoint that is down, an email SNS gives up on)
# loses alerts silently. SNS counts each notification it stopped trying to deliver
# (NumberOfNotificationsFailed, per topic). This alarm notifies the same topic, so it is only seen
# if another subscriber still works: hence its description.
resource "aws_cloudwatch_metric_alarm" "alert_delivery_failed" {
  alarm_name          = "${aws_sns_topic.alerts.name}-notifications-failed"
  alarm_description   = "SNS failed to deliver alert notifications to a subscriber of this topic. The alert topic is the one single point of failure left: this alarm reaches operators through the same topic, so add a second subscriber (another email address, or an SQS queue someone reads) so that a failed delivery is seen."
  namespace           = "AWS/SNS"
  metric_name         = "NumberOfNotificationsFailed"
  dimensions          = { TopicName = aws_sns_topic.alerts.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}
