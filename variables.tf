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

variable "code_signing_config_arn" {
  description = "ARN of an existing Lambda code signing configuration (aws_lambda_code_signing_config) applied to the three functions; null (the default) deploys them without one. With an Enforce policy Lambda rejects unsigned code, so lambda_package_dir must then hold the zips as signed by AWS Signer (scripts/package_lambdas.sh builds unsigned ones); a Warn policy deploys unsigned zips and logs a warning."
  type        = string
  default     = null

  validation {
    condition     = var.code_signing_config_arn == null ? true : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]{17}$", var.code_signing_config_arn))
    error_message = "code_signing_config_arn must be null or a code signing configuration ARN (arn:<partition>:lambda:<region>:<account>:code-signing-config:csc-<17 characters>)."
  }
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

variable "security_monitor_reserved_concurrency" {
  description = "Reserved concurrent executions of the security monitor function; null (the default) leaves it unreserved. It runs once per security_scan_schedule, one invocation at a time, so a reservation only takes from the account's unreserved pool; set 1 to guarantee a scan can start when the account's other functions use all of it (new accounts have a low concurrency quota and cannot reserve any: AWS keeps 100 executions unreserved)."
  type        = number
  default     = null

  validation {
    condition     = var.security_monitor_reserved_concurrency == null ? true : var.security_monitor_reserved_concurrency >= 1 && floor(var.security_monitor_reserved_concurrency) == var.security_monitor_reserved_concurrency
    error_message = "security_monitor_reserved_concurrency must be null or a whole number of at least 1 (0 would stop the function)."
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

variable "trigger_batch_size" {
  description = "Upload-queue messages per trigger invocation (one S3 notification each). Above 10 needs trigger_batching_window_seconds >= 1."
  type        = number
  default     = 10

  validation {
    condition     = var.trigger_batch_size >= 1 && var.trigger_batch_size <= 10000 && floor(var.trigger_batch_size) == var.trigger_batch_size
    error_message = "trigger_batch_size must be a whole number from 1 to 10000 (Lambda's limits for SQS)."
  }
}

variable "trigger_batching_window_seconds" {
  description = "How long Lambda gathers upload-queue messages before invoking the trigger with a partial batch (0 invokes at once). One second of latency buys fuller batches in a burst."
  type        = number
  default     = 1

  validation {
    condition     = var.trigger_batching_window_seconds >= 0 && var.trigger_batching_window_seconds <= 300 && floor(var.trigger_batching_window_seconds) == var.trigger_batching_window_seconds
    error_message = "trigger_batching_window_seconds must be a whole number from 0 to 300 (Lambda's limits)."
  }
}

variable "trigger_maximum_concurrency" {
  description = <<-EOT
    Most trigger invocations the upload queue's event source mapping runs at once (Lambda's scaling_config.maximum_concurrency, 2-1000). Each invocation starts its batch's workflows one after another, so the mapping calls StartExecution about maximum_concurrency / L times a second, L being one call's latency. Keep that below the account's StartExecution refill rate R: maximum_concurrency <= R x L. With R = 150/s (most regions; 300/s in us-east-1, us-west-2 and eu-west-1) and L of 30-50 ms, that is 4-7: the default 5 uses about two thirds of the lowest refill and leaves room for scripts/reconcile.py and retries. The trigger's adaptive client-side rate limiting absorbs what throttling remains; a message still throttled comes back after the visibility timeout. Raise it only with the quota (Service Quotas: StartExecution) and the table's write capacity.
  EOT
  type        = number
  default     = 5

  validation {
    condition     = var.trigger_maximum_concurrency >= 2 && var.trigger_maximum_concurrency <= 1000 && floor(var.trigger_maximum_concurrency) == var.trigger_maximum_concurrency
    error_message = "trigger_maximum_concurrency must be a whole number from 2 to 1000 (Lambda's limits)."
  }
}

variable "queue_max_receive_count" {
  description = "Receives of one upload-queue message before it moves to the dead-letter queue. Each receive that fails waits out the visibility timeout (6 x trigger_lambda_timeout + trigger_batching_window_seconds), so the default 5 keeps a message retrying for about 15 minutes with the default timeout: longer than a Step Functions throttling episode, short enough to alarm on a file that can never start."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_receive_count >= 1 && var.queue_max_receive_count <= 1000 && floor(var.queue_max_receive_count) == var.queue_max_receive_count
    error_message = "queue_max_receive_count must be a whole number from 1 to 1000 (SQS's limits)."
  }
}

variable "queue_message_retention_seconds" {
  description = "How long the upload queue keeps a notification the trigger has not consumed (default 4 days, SQS's default; at most 14 days). The dead-letter queue always keeps 14 days, which must not be shorter: SQS keeps a message's original enqueue time when it moves to the dead-letter queue."
  type        = number
  default     = 345600

  validation {
    condition     = var.queue_message_retention_seconds >= 60 && var.queue_message_retention_seconds <= 1209600
    error_message = "queue_message_retention_seconds must be between 60 and 1209600 (SQS's limits)."
  }
}

variable "queue_kms_data_key_reuse_seconds" {
  description = "How long SQS reuses a data key of the queue key before asking KMS for another (60-86400; longer means fewer KMS calls and a larger window per data key)."
  type        = number
  default     = 300

  validation {
    condition     = var.queue_kms_data_key_reuse_seconds >= 60 && var.queue_kms_data_key_reuse_seconds <= 86400
    error_message = "queue_kms_data_key_reuse_seconds must be between 60 and 86400 (SQS's limits)."
  }
}

variable "queue_oldest_message_alarm_seconds" {
  description = "Alarm when the oldest upload-queue message is older than this many seconds: the trigger is falling behind the uploads (throttled, failing or disabled)."
  type        = number
  default     = 900

  validation {
    condition     = var.queue_oldest_message_alarm_seconds >= 60
    error_message = "queue_oldest_message_alarm_seconds must be at least 60 (SQS publishes its metrics every minute)."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group, in days. The default, 365, keeps a year of the record of every upload and alert (raise it if your audit policy requires more); short-lived dev stacks may set less (the local stacks set 1)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "workflow_type" {
  description = "Step Functions workflow type of the ingestion state machine. STANDARD (default): exactly-once execution names (a second start of one object version is refused), 90 days of execution history through DescribeExecution/ListExecutions, which the trigger and scripts/reconcile.py use; about $25 per million files. EXPRESS: the same definition, Step Functions' part of the cost down from about $25 to about $1.3 per million files, but at-least-once (the writer's conditional put keeps one row per file), no execution API (history only in the state machine's log group, at state_machine_log_level), a 5-minute limit on one execution (checked against the retry settings), and reconcile judges files without a row by their age. See README, Workflow profiles."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "EXPRESS"], var.workflow_type)
    error_message = "workflow_type must be STANDARD or EXPRESS."
  }
}

variable "state_machine_log_level" {
  description = "Which execution events go to the state machine's KMS-encrypted log group: ALL (every state transition: the only execution history an EXPRESS workflow has), ERROR (failures only: cheaper at volume, CloudWatch Logs charges per GB ingested) or FATAL (failed, aborted and timed-out executions only). OFF is not offered: an EXPRESS workflow would leave no trace at all."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL"], var.state_machine_log_level)
    error_message = "state_machine_log_level must be ALL, ERROR or FATAL."
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

variable "access_log_bucket" {
  description = "Name of an existing bucket that receives the upload bucket's S3 server access logs (under the prefix <upload bucket>/); null (the default) turns access logging off. Off by default because it needs that second bucket, which this stack does not create: it must be in the same account and region, grant logging.s3.amazonaws.com s3:PutObject in its bucket policy, and use SSE-S3 (AES256) default encryption: AWS supports only SSE-S3 on a server access log destination bucket (not SSE-KMS), so the logs, which name every uploaded object, cannot be under a customer-managed key like the uploads. The destination must not be the upload bucket itself, and the security monitor reports it (SSE-S3, not KMS) unless it is exempted. Object-level auditing is also available from CloudTrail data events on the bucket."
  type        = string
  default     = null

  validation {
    condition     = var.access_log_bucket == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_log_bucket))
    error_message = "access_log_bucket must be null or an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."
  }
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

variable "key_admin_principals" {
  description = <<-EOT
    IAM principal ARNs (the account root, users, roles: arn:<partition>:iam::<account>:root|user/...|role/...) that administer the six KMS keys: the administration statement of every key policy names them (describe, read and put the policy, rotation, tags, aliases, disable and enable, schedule and cancel deletion, revoke grants; never encrypt or decrypt). Empty (the default) names the deploying caller's account root, as before: every principal of the account whose own IAM policy allows these actions on the keys administers them. Set it to name only your key administrators, and include the role that runs terraform: it reads the keys (kms:DescribeKey, kms:GetKeyPolicy, ...) and puts their policies, and KMS refuses a key policy that would lock its caller out of kms:PutKeyPolicy (the policy lockout safety check), so a list without it fails at apply instead of leaving keys no one can manage. Each principal must exist when the policy is put.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for principal in var.key_admin_principals :
      can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|user/[\\w+=,.@/-]+|role/[\\w+=,.@/-]+)$", principal))
    ])
    error_message = "key_admin_principals must list IAM principal ARNs: arn:<partition>:iam::<12-digit account>:root, ...:user/<name> or ...:role/<name> (no wildcards, no assumed-role sessions)."
  }

  validation {
    condition     = length(distinct(var.key_admin_principals)) == length(var.key_admin_principals)
    error_message = "key_admin_principals must not list a principal twice."
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
  description = "Tag key the security monitor looks for on a non-compliant bucket or table that security_scan_exemptions does not name. The tag exempts nothing (anyone allowed to tag a resource could otherwise silence the monitor): the finding stays non-compliant and says \"tagged <key>=<value> but not declared in security_scan_exemptions\"."
  type        = string
  default     = "SecurityScanExemption"

  validation {
    condition     = length(var.security_exemption_tag_key) >= 1 && length(var.security_exemption_tag_key) <= 128 && !startswith(lower(var.security_exemption_tag_key), "aws:")
    error_message = "security_exemption_tag_key must be a tag key of 1-128 characters that does not start with \"aws:\"."
  }
}

variable "security_scan_exemptions" {
  description = "The only exemptions from the security scan: bucket or table name -> the reason (e.g. a ticket). A non-compliant resource of that name (a bucket, or a table in any scanned region) is reported as EXEMPTED with this reason instead of NON_COMPLIANT; every scan with an exempted or non-compliant resource sends one alert that lists both. Passed to the monitor as the JSON environment variable SECURITY_SCAN_EXEMPTIONS."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for name, reason in var.security_scan_exemptions :
      length(name) >= 3 && length(name) <= 255 && trimspace(name) == name && length(trimspace(reason)) >= 1 && length(reason) <= 256
    ])
    error_message = "security_scan_exemptions maps a bucket or table name (3-255 characters, no surrounding spaces) to a non-blank reason of at most 256 characters."
  }

  validation {
    # Lambda allows 4 KB for all of a function's environment variables: at most 3 KB of UTF-8 JSON here.
    condition     = length(base64encode(jsonencode(var.security_scan_exemptions))) <= 4096
    error_message = "security_scan_exemptions is too large: its JSON must fit in 3 KB (Lambda allows 4 KB for all environment variables). Fix the resources instead of exempting so many."
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
