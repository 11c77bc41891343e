# One execution role per function plus one for the state machine. Every statement names exact
# actions on exact ARNs; the few "*" resources are the ones AWS requires, each commented.

data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Shared by the roles that publish alerts: the topic, and its key to encrypt the message.
data "aws_iam_policy_document" "publish_alerts" {
  statement {
    sid       = "PublishAlerts"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "UseAlertTopicKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.sns.arn]
  }
}

# Shared by the three functions (X-Ray active tracing).
data "aws_iam_policy_document" "write_traces" {
  statement {
    sid    = "WriteTraces"
    effect = "Allow"
    # X-Ray trace APIs have no resource-level permissions: AWS requires "*".
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }
}

# Shared by the callers of the encrypted state machine (the trigger, the reconcile operator):
# StartExecution encrypts the input (GenerateDataKey) and DescribeExecution decrypts it (Decrypt),
# both as the caller, through Step Functions and for this state machine only.
data "aws_iam_policy_document" "use_execution_key" {
  statement {
    sid       = "UseExecutionKeyThroughStepFunctions"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.stepfunctions.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["states.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }
}

# --- Trigger: upload queue -> validate key -> StartExecution; alerts on rejected keys ---

data "aws_iam_policy_document" "trigger" {
  # Alerts: rejected keys and messages that are not S3 events.
  source_policy_documents = [
    data.aws_iam_policy_document.publish_alerts.json,
    data.aws_iam_policy_document.write_traces.json,
    data.aws_iam_policy_document.use_execution_key.json,
  ]

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.trigger.arn}:*"]
  }

  statement {
    sid       = "StartIngestionWorkflow"
    effect    = "Allow"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.ingestion.arn]
  }

  # STANDARD only: when a start keeps failing (throttled), another delivery of the same S3 event
  # may already have started the execution: then this delivery is a duplicate, not a failure to
  # retry. EXPRESS executions cannot be described (and have no idempotent names).
  dynamic "statement" {
    for_each = var.workflow_type == "STANDARD" ? ["SeeWhetherAnotherDeliveryStartedIt"] : []
    content {
      sid       = statement.value
      effect    = "Allow"
      actions   = ["states:DescribeExecution"]
      resources = ["arn:${local.partition}:states:${var.aws_region}:${local.account_id}:execution:${aws_sfn_state_machine.ingestion.name}:*"]
    }
  }

  # The event source mapping polls the upload queue with this role: what AWS's
  # AWSLambdaSQSQueueExecutionRole grants, for this one queue.
  statement {
    sid       = "ConsumeUploadQueue"
    effect    = "Allow"
    actions   = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    resources = [aws_sqs_queue.uploads.arn]
  }

  # Receiving from the encrypted queue decrypts its data key, through SQS and for this queue only
  # (SQS names the queue in the encryption context).
  statement {
    sid       = "DecryptUploadQueueMessages"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.sqs.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sqs:arn"
      values   = [aws_sqs_queue.uploads.arn]
    }
  }
}

resource "aws_iam_role" "trigger" {
  name               = "${local.name_prefix}-trigger"
  description        = "Execution role of the trigger function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "trigger" {
  name   = "least-privilege"
  role   = aws_iam_role.trigger.id
  policy = data.aws_iam_policy_document.trigger.json
}

# --- Writer: one conditional PutItem into the metadata table ---

data "aws_iam_policy_document" "writer" {
  source_policy_documents = [data.aws_iam_policy_document.write_traces.json]

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.writer.arn}:*"]
  }

  statement {
    sid       = "PutMetadata"
    effect    = "Allow"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.metadata.arn]
  }

  statement {
    sid       = "UseTableKeyThroughDynamoDB"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.dynamodb.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "writer" {
  name               = "${local.name_prefix}-writer"
  description        = "Execution role of the writer function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "writer" {
  name   = "least-privilege"
  role   = aws_iam_role.writer.id
  policy = data.aws_iam_policy_document.writer.json
}

# --- Security monitor: read-only encryption settings and tags of every bucket and table, alerts ---

data "aws_iam_policy_document" "security_monitor" {
  source_policy_documents = [
    data.aws_iam_policy_document.publish_alerts.json,
    data.aws_iam_policy_document.write_traces.json,
  ]

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.security_monitor.arn}:*"]
  }

  statement {
    sid    = "ListAllBucketsAndTables"
    effect = "Allow"
    # ListBuckets and ListTables are account-level calls without resource-level permissions: AWS requires "*".
    actions   = ["dynamodb:ListTables", "s3:ListAllMyBuckets"]
    resources = ["*"]
  }

  statement {
    sid    = "ListKmsAliases"
    effect = "Allow"
    # Finds the AWS-managed alias/aws/dynamodb key without touching it (DescribeKey on that alias
    # would create the key). ListAliases has no resource-level permissions: AWS requires "*".
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }

  statement {
    sid     = "ReadBucketEncryptionAndTags"
    effect  = "Allow"
    actions = ["s3:GetBucketTagging", "s3:GetEncryptionConfiguration"]
    # The monitor's job is every bucket of the account, including ones created after deployment;
    # the tags exempt nothing: they are read only on a non-compliant bucket that
    # var.security_scan_exemptions does not name, to report a var.security_exemption_tag_key tag
    # that is not declared there.
    resources = ["arn:${local.partition}:s3:::*"]
  }

  statement {
    sid     = "DescribeTablesAndTags"
    effect  = "Allow"
    actions = ["dynamodb:DescribeTable", "dynamodb:ListTagsOfResource"]
    # Every table of the scanned regions, including ones created after deployment.
    resources = [for region in local.scan_regions : "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/*"]
  }
}

resource "aws_iam_role" "security_monitor" {
  name               = "${local.name_prefix}-security-monitor"
  description        = "Execution role of the security monitor function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "security_monitor" {
  name   = "least-privilege"
  role   = aws_iam_role.security_monitor.id
  policy = data.aws_iam_policy_document.security_monitor.json
}

# --- Step Functions: invoke the writer, publish failure alerts, deliver its own logs and traces ---

data "aws_iam_policy_document" "step_functions_assume_role" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "step_functions" {
  # NotifyFailure publishes the final failure of an execution.
  source_policy_documents = [data.aws_iam_policy_document.publish_alerts.json]

  statement {
    sid     = "InvokeWriter"
    effect  = "Allow"
    actions = ["lambda:InvokeFunction"]
    resources = [
      aws_lambda_function.writer.arn,
      "${aws_lambda_function.writer.arn}:*",
    ]
  }

  statement {
    sid    = "DeliverExecutionLogs"
    effect = "Allow"
    # CloudWatch Logs vended log delivery does not support resource-level permissions: AWS requires "*".
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    resources = ["*"]
  }

  # AWS's documented execution-role grant for a state machine encrypted with a customer-managed key.
  statement {
    sid       = "EncryptOwnExecutions"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.stepfunctions.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }

  statement {
    sid    = "WriteTraces"
    effect = "Allow"
    # X-Ray trace and sampling APIs have no resource-level permissions: AWS requires "*".
    actions = [
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role" "step_functions" {
  name               = "${local.name_prefix}-state-machine"
  description        = "Execution role of the ingestion state machine"
  assume_role_policy = data.aws_iam_policy_document.step_functions_assume_role.json
}

resource "aws_iam_role_policy" "step_functions" {
  name   = "least-privilege"
  role   = aws_iam_role.step_functions.id
  policy = data.aws_iam_policy_document.step_functions.json
}

# --- Operators: scripts/reconcile.py audits bucket, table and executions; the dead-letter queue's re-drive ---

# Attached to nothing here: an operator's role or group gets it from output reconcile_operator_policy_json.
data "aws_iam_policy_document" "reconcile_operator" {
  source_policy_documents = [data.aws_iam_policy_document.use_execution_key.json]

  statement {
    sid       = "ListUploadVersions"
    effect    = "Allow"
    actions   = ["s3:ListBucketVersions"]
    resources = [aws_s3_bucket.uploads.arn]
  }

  statement {
    sid       = "ScanMetadata"
    effect    = "Allow"
    actions   = ["dynamodb:Scan"]
    resources = [aws_dynamodb_table.metadata.arn]
  }

  statement {
    sid    = "ReadTableKeyThroughDynamoDB"
    effect = "Allow"
    # Reading a table encrypted with a customer-managed key: DynamoDB decrypts the table key as the caller.
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.dynamodb.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }

  # Reconcile reads the workflow type first: EXPRESS has no execution API to ask.
  statement {
    sid       = "ReadWorkflowType"
    effect    = "Allow"
    actions   = ["states:DescribeStateMachine"]
    resources = [aws_sfn_state_machine.ingestion.arn]
  }

  dynamic "statement" {
    for_each = var.workflow_type == "STANDARD" ? ["ListIngestionExecutions"] : []
    content {
      sid       = statement.value
      effect    = "Allow"
      actions   = ["states:ListExecutions"]
      resources = [aws_sfn_state_machine.ingestion.arn]
    }
  }

  dynamic "statement" {
    for_each = var.workflow_type == "STANDARD" ? ["DescribeIngestionExecutions"] : []
    content {
      sid       = statement.value
      effect    = "Allow"
      actions   = ["states:DescribeExecution"]
      resources = ["arn:${local.partition}:states:${var.aws_region}:${local.account_id}:execution:${aws_sfn_state_machine.ingestion.name}:*"]
    }
  }

  statement {
    sid       = "RedriveMissingUploads"
    effect    = "Allow"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.ingestion.arn]
  }

  # Re-driving the dead-letter queue (aws sqs start-message-move-task): what AWS documents for the
  # source queue of a message move task...
  statement {
    sid    = "RedriveDeadLetterQueue"
    effect = "Allow"
    actions = [
      "sqs:CancelMessageMoveTask",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ListMessageMoveTasks",
      "sqs:ReceiveMessage",
      "sqs:StartMessageMoveTask",
    ]
    resources = [aws_sqs_queue.uploads_dlq.arn]
  }

  # ...and for its destination, the upload queue.
  statement {
    sid       = "SendRedrivenMessagesToUploadQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.uploads.arn]
  }

  # Both queues are encrypted under the queue key: read from one, write to the other, through SQS
  # and for these two queues only (SQS names the queue in the encryption context).
  statement {
    sid       = "UseQueueKeyThroughSQS"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.sqs.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sqs:arn"
      values   = [aws_sqs_queue.uploads_dlq.arn, aws_sqs_queue.uploads.arn]
    }
  }
}
