variable "aws_region" {
  description = "AWS region to deploy the pipeline into."
  type        = string
  default     = "eu-central-1"
}

variable "project_name" {
  description = "Short name used as the prefix of every resource name."
  type        = string
  default     = "file-ingestion"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project_name))
    error_message = "project_name must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter (it is part of the S3 bucket name)."
  }
}

variable "environment" {
  description = "Deployment environment, part of every resource name (e.g. dev, staging, prod)."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "environment must be 1-10 lowercase letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource through the provider's default_tags."
  type        = map(string)
  default     = {}
}

variable "lambda_runtime" {
  description = "Python runtime of the three functions (the handlers need Python 3.11 or newer)."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^python3\\.[0-9]+$", var.lambda_runtime))
    error_message = "lambda_runtime must be a Python 3 Lambda runtime identifier such as python3.12."
  }
}

variable "lambda_log_level" {
  description = "Application log level of the three functions (Lambda's JSON log format filters the handlers' structured logs below it)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.lambda_log_level)
    error_message = "lambda_log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "lambda_package_dir" {
  description = "Directory, relative to this configuration, holding the zips built by scripts/package_lambdas.sh."
  type        = string
  default     = "dist"
}

variable "trigger_lambda_timeout" {
  description = "Timeout of the trigger function, in seconds."
  type        = number
  default     = 30
}

variable "trigger_lambda_memory_size" {
  description = "Memory of the trigger function, in MB."
  type        = number
  default     = 256
}

variable "writer_lambda_timeout" {
  description = "Timeout of the writer function, in seconds."
  type        = number
  default     = 30
}

variable "writer_lambda_memory_size" {
  description = "Memory of the writer function, in MB."
  type        = number
  default     = 256
}

variable "trigger_reserved_concurrency" {
  description = "Reserved concurrent executions of the trigger function; null (the default) leaves it unreserved. Reserving is opt-in because new accounts have a low concurrency quota and cannot reserve any: AWS keeps 100 executions unreserved. When set, it also caps how many uploads start workflows at once."
  type        = number
  default     = null

  validation {
    condition     = var.trigger_reserved_concurrency == null ? true : var.trigger_reserved_concurrency >= 1 && floor(var.trigger_reserved_concurrency) == var.trigger_reserved_concurrency
    error_message = "trigger_reserved_concurrency must be null or a whole number of at least 1 (0 would stop the function)."
  }
}

variable "writer_reserved_concurrency" {
  description = "Reserved concurrent executions of the writer function; null (the default) leaves it unreserved. Reserving is opt-in because new accounts have a low concurrency quota and cannot reserve any: AWS keeps 100 executions unreserved. When set, it also caps the write rate to the table."
  type        = number
  default     = null

  validation {
    condition     = var.writer_reserved_concurrency == null ? true : var.writer_reserved_concurrency >= 1 && floor(var.writer_reserved_concurrency) == var.writer_reserved_concurrency
    error_message = "writer_reserved_concurrency must be null or a whole number of at least 1 (0 would stop the function)."
  }
}

variable "security_monitor_lambda_timeout" {
  description = "Timeout of the security monitor function, in seconds (it scans every bucket and table)."
  type        = number
  default     = 300
}

variable "security_monitor_lambda_memory_size" {
  description = "Memory of the security monitor function, in MB."
  type        = number
  default     = 512
}

variable "trigger_max_event_age_seconds" {
  description = "How long Lambda keeps retrying an S3 event for the trigger before sending it to the alert topic."
  type        = number
  default     = 3600

  validation {
    condition     = var.trigger_max_event_age_seconds >= 60 && var.trigger_max_event_age_seconds <= 21600
    error_message = "trigger_max_event_age_seconds must be between 60 and 21600 (Lambda's limits)."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group, in days. The default suits short-lived dev stacks; in production use at least 365 (or what your audit policy requires), since these logs are the record of every upload and alert."
  type        = number
  default     = 7

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "state_machine_include_execution_data" {
  description = "Write execution input, output and error causes (object keys, bucket names) into the state machine's log group. Off by default so that file names stay out of the logs; turn on only to debug."
  type        = bool
  default     = false
}

variable "object_expiration_days" {
  description = "Days after which current object versions in the upload bucket expire."
  type        = number
  default     = 90

  validation {
    condition     = var.object_expiration_days >= 1
    error_message = "object_expiration_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions in the upload bucket are deleted."
  type        = number
  default     = 90
}

variable "dynamodb_deletion_protection" {
  description = "Deletion protection of the metadata table: while true, neither terraform destroy nor anyone else can delete it. The local stacks (make up/demo) set false."
  type        = bool
  default     = true
}

variable "state_machine_kms_data_key_reuse_seconds" {
  description = "How long Step Functions reuses a data key of the state machine's customer-managed key before asking KMS for a new one (60-900 s; longer means fewer KMS requests)."
  type        = number
  default     = 300

  validation {
    condition     = var.state_machine_kms_data_key_reuse_seconds >= 60 && var.state_machine_kms_data_key_reuse_seconds <= 900
    error_message = "state_machine_kms_data_key_reuse_seconds must be between 60 and 900."
  }
}

variable "s3_force_destroy" {
  description = "Let `terraform destroy` delete the upload bucket even when it holds objects. Keep false outside throwaway environments."
  type        = bool
  default     = false
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a destroyed KMS key is deleted, in days."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "retry_interval_seconds" {
  description = "Seconds before the state machine's first retry of a failed write."
  type        = number
  default     = 2

  validation {
    condition     = var.retry_interval_seconds >= 1
    error_message = "retry_interval_seconds must be at least 1 (an ASL rule)."
  }
}

variable "retry_max_attempts" {
  description = "How many times the state machine retries a failed write before alerting."
  type        = number
  default     = 3

  validation {
    condition     = var.retry_max_attempts >= 0 && var.retry_max_attempts <= 10
    error_message = "retry_max_attempts must be between 0 and 10."
  }
}

variable "retry_backoff_rate" {
  description = "Multiplier applied to the retry interval after each attempt."
  type        = number
  default     = 2.0

  validation {
    condition     = var.retry_backoff_rate >= 1
    error_message = "retry_backoff_rate must be at least 1.0 (an ASL rule)."
  }
}

variable "security_scan_schedule" {
  description = "EventBridge schedule expression of the security monitor."
  type        = string
  default     = "rate(24 hours)"
}

variable "security_scan_regions" {
  description = "Regions whose DynamoDB tables the monitor scans; empty means the deployment region. S3 buckets are always listed account-wide."
  type        = list(string)
  default     = []
}

variable "security_monitor_concurrency" {
  description = "How many buckets and tables the security monitor checks at once (its bounded pool of concurrent API calls)."
  type        = number
  default     = 16

  validation {
    condition     = var.security_monitor_concurrency >= 1 && var.security_monitor_concurrency <= 64 && floor(var.security_monitor_concurrency) == var.security_monitor_concurrency
    error_message = "security_monitor_concurrency must be a whole number between 1 and 64."
  }
}

variable "security_exemption_tag_key" {
  description = "Tag key that exempts a bucket or table from the security scan: a resource tagged with it and a non-empty value (the reason) is reported as exempt, not as non-compliant."
  type        = string
  default     = "SecurityScanExemption"

  validation {
    condition     = length(var.security_exemption_tag_key) >= 1 && length(var.security_exemption_tag_key) <= 128 && !startswith(lower(var.security_exemption_tag_key), "aws:")
    error_message = "security_exemption_tag_key must be a tag key of 1-128 characters that does not start with \"aws:\"."
  }
}

variable "alert_email_addresses" {
  description = "Email addresses subscribed to the alert topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "enable_xray_tracing" {
  description = "Enable X-Ray active tracing on the functions and the state machine."
  type        = bool
  default     = true
}
