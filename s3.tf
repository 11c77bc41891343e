resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV_AWS_18:Access logging is opt-in (access_log_bucket, null by default; aws_s3_bucket_logging.uploads below): AWS supports only SSE-S3 on a log destination bucket, so it is left to the account; CloudTrail data events audit object access.
  #checkov:skip=CKV_AWS_144:Cross-region replication: uploads are transient inputs that expire (object_expiration_days); their metadata is in DynamoDB with point-in-time recovery.
  bucket        = "${local.name_prefix}-uploads-${local.account_id}-${var.aws_region}"
  force_destroy = var.s3_force_destroy
}

# S3 server access logs, when access_log_bucket names a destination: an existing bucket of this
# account and region with SSE-S3 default encryption (AWS supports no SSE-KMS there) whose bucket
# policy lets logging.s3.amazonaws.com put objects. Off by default: this stack creates no such bucket.
resource "aws_s3_bucket_logging" "uploads" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.uploads.id
  target_bucket = var.access_log_bucket
  target_prefix = "${aws_s3_bucket.uploads.id}/"

  lifecycle {
    precondition {
      condition     = var.access_log_bucket != aws_s3_bucket.uploads.bucket
      error_message = "access_log_bucket must be another bucket: logging into the upload bucket itself would hand every log object to the pipeline as an upload, and log each delivery again."
    }
  }
}

# ACLs disabled: the bucket owner owns every object, whoever uploads it.
resource "aws_s3_bucket_ownership_controls" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.s3.arn
    }
    # One KMS request per bucket key period instead of one per object (about 1 % of the KMS cost).
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    id     = "expire-objects"
    status = "Enabled"

    # An empty filter applies the rule to every object (provider 5.x and 6.x want it spelled out).
    filter {}

    expiration {
      days = var.object_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # A separate rule because S3 rejects `days` and `expired_object_delete_marker` in one expiration.
  rule {
    id     = "remove-expired-delete-markers"
    status = "Enabled"

    filter {}

    expiration {
      expired_object_delete_marker = true
    }
  }

  # Lifecycle rules on a versioned bucket act on versions: versioning must be on first.
  depends_on = [aws_s3_bucket_versioning.uploads]
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "uploads_bucket" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # A deny guardrail: every S3 action, so that no request without TLS gets through.
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.uploads.arn,
      "${aws_s3_bucket.uploads.arn}/*",
    ]

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

  # Uploads that send no SSE header are allowed: default encryption applies the pipeline key. Every
  # Deny below names the header it tests with a Null = false guard or a positive StringEquals, so it
  # never fires on a request without that header: multipart UploadPart requests carry no SSE
  # header, and a negated or "...IfExists" operator (true for a missing key) would refuse them.

  # Another algorithm (AES256, aws:kms:dsse) would store the object without the pipeline key.
  statement {
    sid       = "DenyAnotherEncryptionAlgorithm"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  # aws:kms without a key id means the AWS-managed key aws/s3, not the bucket's default key.
  statement {
    sid       = "DenyKmsWithoutKeyId"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["true"]
    }
  }

  # A named key must be the pipeline key, as its key ARN or key id (S3 compares the header as sent).
  # Aliases are refused: kms:UpdateAlias can repoint one to another key, and an alias name resolves
  # in the requester's account, so either could land an object under a key other than this one.
  statement {
    sid       = "DenyAnotherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.s3.arn, aws_kms_key.s3.key_id]
    }
  }

  # SSE-C encrypts with a key S3 does not keep: such objects bypass the pipeline key entirely.
  statement {
    sid       = "DenyCustomerProvidedKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-customer-algorithm"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  policy = data.aws_iam_policy_document.uploads_bucket.json

  # S3 rejects concurrent bucket configuration changes (409 OperationAborted).
  depends_on = [aws_s3_bucket_public_access_block.uploads]
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  queue {
    id        = "start-ingestion"
    queue_arn = aws_sqs_queue.uploads.arn
    events    = ["s3:ObjectCreated:*"]
  }

  # S3 sends a test message when the configuration is saved: the queue policy and the queue key's
  # policy must admit it by then, or S3 refuses the configuration.
  depends_on = [aws_sqs_queue_policy.uploads, aws_kms_key.sqs, aws_s3_bucket_policy.uploads]
}
