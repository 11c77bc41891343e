terraform {
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested on 5.100.0; the arguments used are checked against 6.62.0 (tests/test_provider_6x.py).
      version = ">= 5.61.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(
      {
        Project     = var.project_name
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name_prefix = "${var.project_name}-${var.environment}"
  account_id  = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  # Regions the security monitor scans for DynamoDB tables; empty means the deployment region.
  scan_regions = length(var.security_scan_regions) > 0 ? var.security_scan_regions : [var.aws_region]
  dist_dir     = "${path.module}/${var.lambda_package_dir}"
  # Namespace of the handlers' EMF metrics (Powertools Metrics).
  metrics_namespace = "FileIngestion"
  # Known before the state machine exists: its key's policy names it, and it uses that key.
  state_machine_name = "${local.name_prefix}-ingestion"
  state_machine_arn  = "arn:${local.partition}:states:${var.aws_region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  # The Lambda functions (functions.json, the one list of them), by resource name (trigger, ...):
  # their log group names and error alarms derive from it; each function's resources stay in its own
  # <folder>.tf, so no resource address depends on the registry.
  functions = {
    for f in jsondecode(file("${path.module}/functions.json")).functions : trimprefix(f.resource, "aws_lambda_function.") => f
  }
  # Names of the log groups, known before they exist: the logs key's policy names their ARNs, and the
  # log groups use the key, so deriving the ARNs from the resources would be a cycle. A function's log
  # group is /aws/lambda/<its function name>.
  log_group_names = merge(
    {
      for f in values(local.functions) : trimprefix(f.log_group, "aws_cloudwatch_log_group.") => "/aws/lambda/${local.name_prefix}-${f.function_name_suffix}"
    },
    # The /aws/vendedlogs/ prefix keeps the log delivery resource policy small (an AWS recommendation).
    { state_machine = "/aws/vendedlogs/states/${local.name_prefix}-ingestion" },
  )
  log_group_arns = [
    for name in values(local.log_group_names) : "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:${name}"
  ]
}
