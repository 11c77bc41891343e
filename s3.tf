# ACLs stay disabled: new buckets default to Object Ownership "BucketOwnerEnforced" (provider 3.39
# cannot set that value, so the configuration relies on the AWS default rather than pinning it).
resource "aws_s3_bucket" "uploads" {
  bucket        = "${local.name_prefix}-uploads-${local.account_id}-${var.aws_region}"
  force_destroy = var.s3_force_destroy

  # Inline blocks are the only form provider 3.39 knows; 4.x and 5.x accept them (deprecated).
  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm     = "aws:kms"
        kms_master_key_id = aws_kms_key.s3.arn
      }
      bucket_key_enabled = true
    }
  }

  lifecycle_rule {
    id                                     = "expire-objects"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7

    expiration {
      days = var.object_expiration_days
    }

    noncurrent_version_expiration {
      days = var.noncurrent_version_expiration_days
    }
  }

  # A separate rule because S3 rejects `days` and `expired_object_delete_marker` in one expiration.
  lifecycle_rule {
    id      = "remove-expired-delete-markers"
    enabled = true

    expiration {
      expired_object_delete_marker = true
    }
  }
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

  statement {
    sid       = "DenyUploadsWithoutKms"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Also true when the header is absent: every upload must ask for SSE-KMS explicitly.
    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyUploadsWithAnotherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Both must hold: a key is named (Null = false) and it is not the bucket's key. An upload that
    # names no key gets the bucket's default key. (A "...IfExists" operator would be true for a
    # missing header and so deny every upload that does not name the key.)
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.s3.arn]
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

  lambda_function {
    id                  = "start-ingestion"
    lambda_function_arn = aws_lambda_function.trigger.arn
    events              = ["s3:ObjectCreated:*"]
  }

  # S3 test-invokes the function when the notification is saved, so the permission must exist first.
  depends_on = [aws_lambda_permission.trigger_from_s3, aws_s3_bucket_policy.uploads]
}
