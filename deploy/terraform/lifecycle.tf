# Lifecycle rules shared by both buckets, as data: one list drives both
# aws_s3_bucket_lifecycle_configuration resources in buckets.tf.
#
# Backup data objects are told apart by the tag lifeboat-tier = daily | weekly | monthly |
# yearly that Lifeboat puts on them: their keys (<source>/backups/<id>/...) start with the
# source name, and S3 lifecycle prefixes cannot hold a wildcard. Manifests, lock files and the
# repository marker carry no tag and stay in STANDARD, so listing and `lifeboat list` never
# touch an archived object. WAL rules are per source for the same reason.

locals {
  housekeeping_rules = [{
    id                           = "housekeeping"
    prefix                       = local.prefix
    tier                         = tostring(null)
    transition_days              = tonumber(null)
    transition_storage_class     = tostring(null)
    expiration_days              = tonumber(null)
    expired_object_delete_marker = true
    noncurrent_days              = var.noncurrent_version_expiration_days
    abort_days                   = var.abort_incomplete_multipart_upload_days
  }]

  tier_rules = [
    for tier, rule in var.tier_lifecycle : {
      id                           = "tier-${tier}"
      prefix                       = local.prefix
      tier                         = tier
      transition_days              = rule.transition_days
      transition_storage_class     = rule.transition_storage_class
      expiration_days              = rule.expiration_days
      expired_object_delete_marker = false
      noncurrent_days              = tonumber(null)
      abort_days                   = tonumber(null)
    }
  ]

  wal_rules = [
    for source in var.sources : {
      id                           = "wal-${source}"
      prefix                       = "${local.prefix}${source}/wal/"
      tier                         = tostring(null)
      transition_days              = tonumber(null)
      transition_storage_class     = tostring(null)
      expiration_days              = var.wal_expiration_days
      expired_object_delete_marker = false
      noncurrent_days              = tonumber(null)
      abort_days                   = tonumber(null)
    } if var.wal_expiration_days != null
  ]

  wal_stream_rules = [
    for source in var.sources : {
      id                           = "wal-stream-${source}"
      prefix                       = "${local.prefix}${source}/wal-stream/"
      tier                         = tostring(null)
      transition_days              = tonumber(null)
      transition_storage_class     = tostring(null)
      expiration_days              = var.wal_stream_expiration_days
      expired_object_delete_marker = false
      noncurrent_days              = tonumber(null)
      abort_days                   = tonumber(null)
    } if var.wal_stream_expiration_days != null
  ]

  lifecycle_rules = concat(local.housekeeping_rules, local.tier_rules, local.wal_rules, local.wal_stream_rules)
}
