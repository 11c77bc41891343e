# S3 -> upload queue -> trigger. The queue holds every notification until the trigger has started
# its workflow: a throttled or failed start leaves the message in the queue (it comes back after the
# visibility timeout), so a burst above Step Functions' StartExecution quota is delayed, never lost.
# What still fails maxReceiveCount times moves to the dead-letter queue, which alarms and is
# re-driven with one command (README: "Re-drive the dead-letter queue").

locals {
  # AWS's guidance for an SQS event source: at least six times the function's timeout, plus the
  # batching window, so that a batch whose invocation is retried by Lambda is not redelivered
  # while it is still being processed.
  upload_queue_visibility_timeout_seconds = 6 * var.trigger_lambda_timeout + var.trigger_batching_window_seconds
}

resource "aws_sqs_queue" "uploads_dlq" {
  name                              = "${local.name_prefix}-uploads-dlq"
  message_retention_seconds         = 1209600 # 14 days, SQS's maximum: time to find the cause and re-drive
  kms_master_key_id                 = aws_kms_key.sqs.arn
  kms_data_key_reuse_period_seconds = var.queue_kms_data_key_reuse_seconds
}

# Only the upload queue may use this queue as its dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "uploads_dlq" {
  queue_url = aws_sqs_queue.uploads_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.uploads.arn]
  })
}

resource "aws_sqs_queue" "uploads" {
  name                              = "${local.name_prefix}-uploads"
  visibility_timeout_seconds        = local.upload_queue_visibility_timeout_seconds
  message_retention_seconds         = var.queue_message_retention_seconds
  kms_master_key_id                 = aws_kms_key.sqs.arn
  kms_data_key_reuse_period_seconds = var.queue_kms_data_key_reuse_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.uploads_dlq.arn
    maxReceiveCount     = var.queue_max_receive_count
  })

  lifecycle {
    precondition {
      condition     = local.upload_queue_visibility_timeout_seconds <= 43200
      error_message = "6 x trigger_lambda_timeout + trigger_batching_window_seconds must not exceed 43200 s, SQS's longest visibility timeout."
    }
  }
}

data "aws_iam_policy_document" "uploads_queue" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # A deny guardrail: every SQS action, so that no request without TLS gets through.
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.uploads.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # S3 sends as its service principal: only for this bucket, in this account.
  statement {
    sid       = "UploadBucketSendsNotifications"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.uploads.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.uploads.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "uploads" {
  queue_url = aws_sqs_queue.uploads.id
  policy    = data.aws_iam_policy_document.uploads_queue.json
}

data "aws_iam_policy_document" "uploads_dlq" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # A deny guardrail: every SQS action, so that no request without TLS gets through.
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.uploads_dlq.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "uploads_dlq" {
  queue_url = aws_sqs_queue.uploads_dlq.id
  policy    = data.aws_iam_policy_document.uploads_dlq.json
}

# Lambda polls the queue with the trigger's role and invokes it with batches; the trigger reports
# the messages it could not finish (ReportBatchItemFailures) and only those come back.
resource "aws_lambda_event_source_mapping" "trigger" {
  event_source_arn                   = aws_sqs_queue.uploads.arn
  function_name                      = aws_lambda_function.trigger.arn
  batch_size                         = var.trigger_batch_size
  maximum_batching_window_in_seconds = var.trigger_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.trigger_maximum_concurrency
  }

  # The role must be able to receive from the queue before Lambda starts polling it.
  depends_on = [aws_iam_role_policy.trigger]

  lifecycle {
    precondition {
      condition     = var.trigger_batch_size <= 10 || var.trigger_batching_window_seconds >= 1
      error_message = "A trigger_batch_size above 10 needs trigger_batching_window_seconds of at least 1 (Lambda's rule for SQS)."
    }
  }
}
