resource "aws_dynamodb_table" "metadata" {
  name         = "${local.name_prefix}-file-metadata"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "Filename"
  range_key    = "UploadTimestamp"
  # A `terraform destroy` (or a console click) cannot delete the table while this is on.
  deletion_protection_enabled = var.dynamodb_deletion_protection

  attribute {
    name = "Filename"
    type = "S"
  }

  # ISO 8601 event time of the upload, so the rows of one key sort chronologically.
  attribute {
    name = "UploadTimestamp"
    type = "S"
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.dynamodb.arn
  }

  point_in_time_recovery {
    enabled = true
  }
}
