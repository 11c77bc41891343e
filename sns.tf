resource "aws_sns_topic" "alerts" {
  name              = "${local.name_prefix}-alerts"
  kms_master_key_id = aws_kms_key.sns.arn
}

# Only CloudWatch alarms need the topic policy: they publish as a service principal. The pipeline's
# roles and the account's administrators are of this account, so their own IAM policies suffice
# (a statement naming them here would grant nothing more; `make iam-proof` showed it).
data "aws_iam_policy_document" "alerts_topic" {
  # No request without TLS, whoever makes it (the SNS developer guide's security best practices:
  # "Enforce encryption of data in transit", aws:SecureTransport). A Deny grants nothing.
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # A deny guardrail: every SNS action, so that no request without TLS gets through.
    actions   = ["sns:*"]
    resources = [aws_sns_topic.alerts.arn]

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

  # Alarms of this account in this region only (the alarm's ARN is the source ARN CloudWatch sends:
  # SNS developer guide, "Example cases for Amazon SNS access control").
  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

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

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

resource "aws_sns_topic_subscription" "alert_emails" {
  for_each = toset(var.alert_email_addresses)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}
