# Six customer-managed keys (S3, DynamoDB, SNS, SQS, log groups, Step Functions), so that a grant on one never opens
# another. Each key policy: key_admin_principals (by default the account) administer the key;
# principals of the account may use the data keys only through the owning service
# (kms:ViaService), in addition to their own IAM permissions; the logs key is used only by
# CloudWatch Logs, for this stack's log groups. Every statement naming a service principal is
# pinned to this account and, where the service sends it, to the source resource
# (aws:SourceAccount, aws:SourceArn: confused-deputy protection); the logs key, whose service AWS
# documents with the encryption context only, by the log group ARNs in that context.

locals {
  # Who administers the keys: the listed principals, or the deploying caller's account root.
  key_admin_principals = length(var.key_admin_principals) > 0 ? var.key_admin_principals : ["arn:${local.partition}:iam::${local.account_id}:root"]
  # Every CloudWatch alarm of this account in this region: the source ARN of alarm notifications
  # (the SNS key's and the alert topic's CloudWatch statements).
  alarm_source_arn = "arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:*"
}

data "aws_iam_policy_document" "kms_administration" {
  #checkov:skip=CKV_AWS_109:A key policy, not an identity policy: its required "*" resource is the key itself, and only key_admin_principals are granted administration.
  #checkov:skip=CKV_AWS_111:A key policy, not an identity policy: its required "*" resource is the key itself; role policies are held to exact ARNs by tests/test_terraform_static.py.
  #checkov:skip=CKV_AWS_356:A key policy, not an identity policy: its required "*" resource is the key itself; role policies are held to exact ARNs by tests/test_terraform_static.py.
  statement {
    # The sid stays "AccountAdministersKey" whoever is named: the IAM proof's justifications
    # (devkit/iam_proof.py) name the statement by it.
    sid    = "AccountAdministersKey"
    effect = "Allow"
    # The key administrator actions of AWS's default key policy, spelled out. Not kms:ListAliases:
    # AWS authorizes it on "*" through IAM policies only, so a key policy cannot grant it.
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:DisableKeyRotation",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListGrants",
      "kms:ListKeyPolicies",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:RevokeGrant",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = local.key_admin_principals
    }
  }
}

data "aws_iam_policy_document" "kms_s3" {
  source_policy_documents = [data.aws_iam_policy_document.kms_administration.json]

  statement {
    sid    = "AccountUsesKeyThroughS3"
    effect = "Allow"
    # What S3 asks KMS for on a caller's behalf: a data key to write, Decrypt to read (and for
    # multipart uploads); nothing else.
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "s3" {
  description             = "${local.name_prefix}: S3 upload bucket (SSE-KMS)"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_s3.json
}

resource "aws_kms_alias" "s3" {
  name          = "alias/${local.name_prefix}-s3"
  target_key_id = aws_kms_key.s3.key_id
}

data "aws_iam_policy_document" "kms_dynamodb" {
  source_policy_documents = [data.aws_iam_policy_document.kms_administration.json]

  statement {
    sid    = "AccountUsesKeyThroughDynamoDB"
    effect = "Allow"
    # No kms:DescribeKey: the account statement of kms_administration already allows it to every
    # principal of the account whose IAM policy does (the IAM proof showed this grant redundant).
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid     = "DynamoDBCreatesGrantsForTheTable"
    effect  = "Allow"
    actions = ["kms:CreateGrant"]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

resource "aws_kms_key" "dynamodb" {
  description             = "${local.name_prefix}: DynamoDB metadata table"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_dynamodb.json
}

resource "aws_kms_alias" "dynamodb" {
  name          = "alias/${local.name_prefix}-dynamodb"
  target_key_id = aws_kms_key.dynamodb.key_id
}

data "aws_iam_policy_document" "kms_sns" {
  source_policy_documents = [data.aws_iam_policy_document.kms_administration.json]

  statement {
    sid    = "AccountUsesKeyThroughSNS"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  # CloudWatch alarms publish as the cloudwatch.amazonaws.com service, not as a principal of the
  # account: without this statement alarm notifications to the encrypted topic are silently dropped.
  # Only for alarms of this account in this region: the SNS developer guide ("Key management",
  # compatibility between event sources from AWS services and encrypted topics) lists
  # cloudwatch.amazonaws.com and says to add aws:SourceAccount and aws:SourceArn to the key policy
  # (unsupported for EventBridge only); the alarm's ARN is the source ARN CloudWatch sends (SNS
  # guide, "Example cases for Amazon SNS access control": arn:aws:cloudwatch:<region>:<account>:alarm:*).
  statement {
    sid    = "CloudWatchAlarmsPublishToEncryptedTopic"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.alarm_source_arn]
    }
  }
}

resource "aws_kms_key" "sns" {
  description             = "${local.name_prefix}: SNS alert topic"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_sns.json
}

resource "aws_kms_alias" "sns" {
  name          = "alias/${local.name_prefix}-sns"
  target_key_id = aws_kms_key.sns.key_id
}

# The log groups hold keys, inputs and error causes of every upload. CloudWatch Logs encrypts and
# decrypts them with this key as its regional service principal, for this stack's log groups only
# (the encryption context names the log group). Readers of the logs need no KMS permission.
# No aws:SourceAccount/aws:SourceArn here: the CloudWatch Logs user guide ("Encrypt log data in
# CloudWatch Logs using AWS KMS", step 2 and "AWS KMS keys and encryption context") restricts the
# key to an account and log groups through kms:EncryptionContext:aws:logs:arn only and documents
# no source keys for log group encryption; a condition on a key the service does not send would
# fail closed and stop the log groups. The context's log group ARNs name this account.
data "aws_iam_policy_document" "kms_logs" {
  source_policy_documents = [data.aws_iam_policy_document.kms_administration.json]

  statement {
    sid    = "CloudWatchLogsUsesKeyForThisStacksLogGroups"
    effect = "Allow"
    # No kms:DescribeKey: a DescribeKey request carries no encryption context, so the condition
    # below would deny it to anyone; the grant could never be used (IAM proof review).
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.log_group_arns
    }
  }
}

resource "aws_kms_key" "logs" {
  description             = "${local.name_prefix}: CloudWatch log groups"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_logs.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name_prefix}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

# Step Functions encrypts the state machine's definition and every execution's input, output and
# history with this key (a second layer over its AWS-owned key). The encryption context names the
# state machine, so the key serves this state machine only.
data "aws_iam_policy_document" "kms_stepfunctions" {
  source_policy_documents = [data.aws_iam_policy_document.kms_administration.json]

  # Principals of the account (the state machine's role, the trigger, an operator) use the key
  # through Step Functions, each also needing its own IAM grant.
  statement {
    sid     = "AccountUsesKeyThroughStepFunctions"
    effect  = "Allow"
    actions = ["kms:Decrypt", "kms:GenerateDataKey"]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

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

  statement {
    sid     = "StepFunctionsUsesKeyForThisStateMachine"
    effect  = "Allow"
    actions = ["kms:Decrypt", "kms:GenerateDataKey"]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.state_machine_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }

  # Execution logging: CloudWatch Logs' delivery service reads the encrypted execution events
  # before writing them into the (separately encrypted) log group. Pinned to this account and,
  # through the encryption context, to this state machine; no aws:SourceArn: no AWS document says
  # which source ARN log delivery sends on this call (the state machine's? the delivery's?), and a
  # wrong guess would silently stop execution logging.
  statement {
    sid     = "LogDeliveryDecryptsExecutionEvents"
    effect  = "Allow"
    actions = ["kms:Decrypt"]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }
}

resource "aws_kms_key" "stepfunctions" {
  description             = "${local.name_prefix}: Step Functions executions (input, output, history)"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_stepfunctions.json
}

resource "aws_kms_alias" "stepfunctions" {
  name          = "alias/${local.name_prefix}-stepfunctions"
  target_key_id = aws_kms_key.stepfunctions.key_id
}

# The upload queue and its dead-letter queue. S3 cannot send to a queue under the AWS-managed
# aws/sqs key (its policy cannot name s3.amazonaws.com), hence a customer-managed key.
data "aws_iam_policy_document" "kms_sqs" {
  source_policy_documents = [data.aws_iam_policy_document.kms_administration.json]

  statement {
    sid    = "AccountUsesKeyThroughSQS"
    effect = "Allow"
    # What SQS asks KMS for on a caller's behalf: a data key to send, Decrypt to receive.
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  # S3 sends the notifications as its service principal: for this bucket of this account only.
  statement {
    sid    = "UploadBucketNotifiesEncryptedQueue"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # In a key policy "*" means "this key": AWS requires exactly that value here.
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.uploads.arn]
    }
  }
}

resource "aws_kms_key" "sqs" {
  description             = "${local.name_prefix}: SQS upload queue and its dead-letter queue"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_sqs.json
}

resource "aws_kms_alias" "sqs" {
  name          = "alias/${local.name_prefix}-sqs"
  target_key_id = aws_kms_key.sqs.key_id
}
