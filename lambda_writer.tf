resource "aws_cloudwatch_log_group" "writer" {
  name              = local.log_group_names.writer
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "writer" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by Step Functions, which retries and alerts on a final failure; a function dead-letter queue serves only asynchronous invokes and would receive nothing.
  #checkov:skip=CKV_AWS_117:Calls only AWS APIs (DynamoDB, KMS, X-Ray) and reaches no private resource: a VPC would need NAT or endpoints and protect nothing.
  #checkov:skip=CKV_AWS_173:The environment holds only the table name and Powertools settings, no secrets; Lambda encrypts it at rest with its AWS-managed key.
  function_name    = "${local.name_prefix}-writer"
  description      = "Writes upload metadata (Filename, UploadTimestamp) to DynamoDB, once per S3 event"
  role             = aws_iam_role.writer.arn
  runtime          = var.lambda_runtime
  handler          = "index.lambda_handler"
  filename         = "${local.dist_dir}/lambda_writer.zip"
  source_code_hash = filebase64sha256("${local.dist_dir}/lambda_writer.zip")
  timeout          = var.writer_lambda_timeout
  memory_size      = var.writer_lambda_memory_size
  # null leaves the function unreserved (the provider's default, -1).
  reserved_concurrent_executions = var.writer_reserved_concurrency
  code_signing_config_arn        = var.code_signing_config_arn

  environment {
    variables = {
      TABLE_NAME                   = aws_dynamodb_table.metadata.name
      POWERTOOLS_SERVICE_NAME      = "ingestion-writer"
      POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    }
  }

  # Lambda's JSON log format: the handlers' Powertools lines are JSON already and pass through as
  # they are; Lambda filters them by `level` (AWS_LAMBDA_LOG_LEVEL, which Powertools also reads).
  logging_config {
    log_format            = "JSON"
    application_log_level = var.lambda_log_level
    log_group             = aws_cloudwatch_log_group.writer.name
  }

  tracing_config {
    mode = var.enable_xray_tracing ? "Active" : "PassThrough"
  }

  # The log group (with its retention) must exist before the first invocation creates it unmanaged.
  depends_on = [aws_cloudwatch_log_group.writer, aws_iam_role_policy.writer]
}
