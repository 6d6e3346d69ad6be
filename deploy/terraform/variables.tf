# --- Buckets -------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the primary bucket (globally unique). Created by this module."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lower-case letters, digits, dots or hyphens."
  }
}

variable "replica_bucket_name" {
  description = "Name of the replica bucket in the aws.replica provider's region. Default: \"<bucket_name>-replica\"."
  type        = string
  default     = null
}

variable "repository_prefix" {
  description = "The PREFIX of the repository URL s3://BUCKET/PREFIX, e.g. \"wms\" (empty: the repository is the whole bucket). The IAM policies cover only this prefix."
  type        = string
  default     = ""

  validation {
    condition     = !startswith(var.repository_prefix, "/") && !strcontains(var.repository_prefix, "//") && !strcontains(var.repository_prefix, "*")
    error_message = "repository_prefix must not start with \"/\" nor contain \"//\" or \"*\"."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# --- Object Lock and encryption ------------------------------------------------------------

variable "object_lock_mode" {
  description = "Mode of the buckets' default retention: COMPLIANCE (nobody, not even the account root, can shorten it or delete a locked version) or GOVERNANCE (principals with s3:BypassGovernanceRetention can)."
  type        = string
  default     = "COMPLIANCE"

  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.object_lock_mode)
    error_message = "object_lock_mode must be COMPLIANCE or GOVERNANCE."
  }
}

variable "object_lock_retention_days" {
  description = "Default retention of every new object version, in days from its upload (2557 = 7 years, the HACCP record period). It applies to every object, lock files and streamed WAL partials included, so every version is billed at least this long."
  type        = number
  default     = 2557

  validation {
    condition     = var.object_lock_retention_days >= 1 && var.object_lock_retention_days <= 36500 && floor(var.object_lock_retention_days) == var.object_lock_retention_days
    error_message = "object_lock_retention_days must be a whole number from 1 to 36500."
  }
}

variable "sse_algorithm" {
  description = "Server-side encryption of both buckets: \"aws:kms\" (SSE-KMS, with S3 Bucket Keys) or \"AES256\" (SSE-S3). Lifeboat encrypts every object itself before upload; this is a second layer."
  type        = string
  default     = "aws:kms"

  validation {
    condition     = contains(["aws:kms", "AES256"], var.sse_algorithm)
    error_message = "sse_algorithm must be \"aws:kms\" or \"AES256\"."
  }
}

variable "kms_key_arn" {
  description = "With aws:kms: ARN of an existing KMS key in the primary region. Default: the module creates one (with rotation)."
  type        = string
  default     = null
}

variable "replica_kms_key_arn" {
  description = "With aws:kms: ARN of an existing KMS key in the replica region. Default: the module creates one (with rotation)."
  type        = string
  default     = null
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period before a KMS key created by this module is deleted after a destroy (7-30). Deleting the key makes every object encrypted with it unreadable."
  type        = number
  default     = 30
}

# --- Lifecycle -----------------------------------------------------------------------------

variable "tier_lifecycle" {
  description = "Lifecycle of backup data objects by their lifeboat-tier tag (daily, weekly, monthly, yearly): move to transition_storage_class after transition_days, expire after expiration_days (null: never). Expiry only adds a delete marker; the version itself goes noncurrent_version_expiration_days later, and never before its Object Lock retention ends."
  type = map(object({
    transition_days          = optional(number)
    transition_storage_class = optional(string)
    expiration_days          = optional(number)
  }))
  default = {
    daily   = { transition_days = 30, transition_storage_class = "GLACIER", expiration_days = 2557 }
    weekly  = { transition_days = 365, transition_storage_class = "DEEP_ARCHIVE", expiration_days = 2557 }
    monthly = { transition_days = 365, transition_storage_class = "DEEP_ARCHIVE", expiration_days = 2557 }
    yearly  = { transition_days = 365, transition_storage_class = "DEEP_ARCHIVE", expiration_days = 2557 }
  }

  validation {
    condition = alltrue([
      for tier, rule in var.tier_lifecycle :
      contains(["daily", "weekly", "monthly", "yearly"], tier) &&
      (rule.transition_days == null) == (rule.transition_storage_class == null)
    ])
    error_message = "tier_lifecycle keys must be daily, weekly, monthly or yearly, and transition_days and transition_storage_class must be set together."
  }
}

variable "sources" {
  description = "Lifeboat source names (the [sources.NAME] of lifeboat.toml) whose <source>/wal/ and <source>/wal-stream/ get the WAL expiry rules below. S3 lifecycle filters cannot match a wildcard, hence one rule per source."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for source in var.sources : can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", source)) && !contains(["locks", "audit"], source)])
    error_message = "Each source must be a Lifeboat source name: letters, digits, _ . - (at most 63), not locks or audit."
  }
}

variable "wal_expiration_days" {
  description = "Days after which archived WAL (<source>/wal/) expires; null keeps it. A physical backup needs the WAL from its start to its end, and point-in-time recovery the WAL after it: keep this at least as long as the backups."
  type        = number
  default     = 2557
}

variable "wal_stream_expiration_days" {
  description = "Days after which streamed partial segments (<source>/wal-stream/) expire; null keeps them. They matter only until their segment is archived in full."
  type        = number
  default     = 30
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which a version that was overwritten, deleted or expired is removed for good (never before its Object Lock retention ends)."
  type        = number
  default     = 30
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which the parts of an upload that never completed (a killed process) are removed."
  type        = number
  default     = 7
}

# --- Replication ---------------------------------------------------------------------------

variable "replica_storage_class" {
  description = "Storage class of the replicas when they are written (the tier rules apply to them afterwards, as tags are replicated)."
  type        = string
  default     = "STANDARD"
}

# --- IAM -----------------------------------------------------------------------------------

variable "iam_name_suffix" {
  description = "Appended to the IAM names (lifeboat-writer, lifeboat-pruner, lifeboat-replication) so several repositories can live in one account, e.g. \"-wms\"."
  type        = string
  default     = ""
}

variable "writer_can_delete_stream_partials" {
  description = "Let lifeboat-writer delete under <source>/wal-stream/ too. `lifeboat wal-stream` replaces its partial segments and deletes the old copies; without this it cannot. A deletion there only adds a delete marker: the versions stay under Object Lock."
  type        = bool
  default     = false
}

variable "writer_role_names" {
  description = "IAM roles (e.g. the database host's instance role) to attach lifeboat-writer to."
  type        = list(string)
  default     = []
}

variable "writer_user_names" {
  description = "IAM users (e.g. an on-premises database host's access key) to attach lifeboat-writer to."
  type        = list(string)
  default     = []
}

variable "pruner_role_names" {
  description = "IAM roles to attach lifeboat-pruner to. Keep this credential off the database host."
  type        = list(string)
  default     = []
}

variable "pruner_user_names" {
  description = "IAM users to attach lifeboat-pruner to. Keep this credential off the database host."
  type        = list(string)
  default     = []
}
