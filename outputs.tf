output "s3_bucket_name" {
  description = "Name of the upload bucket: files put here are ingested."
  value       = aws_s3_bucket.uploads.id
}

output "s3_bucket_arn" {
  description = "ARN of the upload bucket."
  value       = aws_s3_bucket.uploads.arn
}

output "dynamodb_table_name" {
  description = "Name of the metadata table (Filename, UploadTimestamp)."
  value       = aws_dynamodb_table.metadata.name
}

output "step_function_arn" {
  description = "ARN of the ingestion state machine."
  value       = aws_sfn_state_machine.ingestion.arn
}

output "trigger_lambda_name" {
  description = "Name of the trigger function (S3 event -> workflow)."
  value       = aws_lambda_function.trigger.function_name
}

output "writer_lambda_name" {
  description = "Name of the writer function (workflow -> DynamoDB)."
  value       = aws_lambda_function.writer.function_name
}

output "lambda_security_monitor_function_name" {
  description = "Name of the security monitor function."
  value       = aws_lambda_function.security_monitor.function_name
}

output "sns_topic_arn" {
  description = "ARN of the alert topic (rejected keys, failed workflows, alarms, security findings)."
  value       = aws_sns_topic.alerts.arn
}

output "kms_s3_key_arn" {
  description = "ARN of the customer-managed key encrypting the upload bucket."
  value       = aws_kms_key.s3.arn
}

output "kms_dynamodb_key_arn" {
  description = "ARN of the customer-managed key encrypting the metadata table."
  value       = aws_kms_key.dynamodb.arn
}

output "kms_sns_key_arn" {
  description = "ARN of the customer-managed key encrypting the alert topic."
  value       = aws_kms_key.sns.arn
}

output "kms_stepfunctions_key_arn" {
  description = "ARN of the customer-managed key encrypting the state machine's definition and executions."
  value       = aws_kms_key.stepfunctions.arn
}

output "security_scan_rule_name" {
  description = "Name of the EventBridge rule that runs the security monitor on its schedule."
  value       = aws_cloudwatch_event_rule.security_scan.name
}

output "kms_logs_key_arn" {
  description = "ARN of the customer-managed key encrypting the log groups."
  value       = aws_kms_key.logs.arn
}

output "reconcile_operator_policy_json" {
  description = "IAM policy (JSON) for operators: scripts/reconcile.py (--redrive included) and the dead-letter queue re-drive (aws sqs start-message-move-task); attach it to their role."
  value       = data.aws_iam_policy_document.reconcile_operator.json
}

output "kms_sqs_key_arn" {
  description = "ARN of the customer-managed KMS key encrypting the upload queue and its dead-letter queue."
  value       = aws_kms_key.sqs.arn
}

output "upload_queue_url" {
  description = "URL of the SQS queue between the bucket's notifications and the trigger."
  value       = aws_sqs_queue.uploads.id
}

output "upload_queue_arn" {
  description = "ARN of the SQS queue between the bucket's notifications and the trigger."
  value       = aws_sqs_queue.uploads.arn
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue: notifications whose workflow could not be started after queue_max_receive_count receives."
  value       = aws_sqs_queue.uploads_dlq.id
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue; re-drive it with: aws sqs start-message-move-task --source-arn <this ARN>."
  value       = aws_sqs_queue.uploads_dlq.arn
}

output "workflow_type" {
  description = "STANDARD or EXPRESS (variable workflow_type): an EXPRESS workflow's executions cannot be listed or described, only read in state_machine_log_group_name."
  value       = aws_sfn_state_machine.ingestion.type
}

output "state_machine_log_group_name" {
  description = "The state machine's KMS-encrypted log group: its execution events at state_machine_log_level (with an EXPRESS workflow, the only execution history there is)."
  value       = aws_cloudwatch_log_group.state_machine.name
}
