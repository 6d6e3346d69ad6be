# The primary bucket and its replica get the same settings; each resource comes in a pair
# because a resource's provider (and so its region) cannot vary between instances.

# --- Primary ---------------------------------------------------------------------------------

resource "aws_s3_bucket" "primary" {
  bucket = var.bucket_name
  # Object Lock can only be turned on when a bucket is created, and never off again.
  object_lock_enabled = true
  tags                = var.tags
}

resource "aws_s3_bucket_ownership_controls" "primary" {
  bucket = aws_s3_bucket.primary.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "primary" {
  bucket = aws_s3_bucket.primary.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "primary" {
  bucket = aws_s3_bucket.primary.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "primary" {
  bucket = aws_s3_bucket.primary.id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.primary]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "primary" {
  bucket = aws_s3_bucket.primary.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.sse_algorithm
      kms_master_key_id = local.primary_kms_key_arn
    }
    # one KMS request per bucket key instead of one per object: cheaper, fewer throttles
    bucket_key_enabled = local.use_kms
  }
}

resource "aws_s3_bucket_policy" "primary" {
  bucket = aws_s3_bucket.primary.id
  policy = data.aws_iam_policy_document.tls_only["primary"].json

  depends_on = [aws_s3_bucket_public_access_block.primary]
}

resource "aws_s3_bucket_lifecycle_configuration" "primary" {
  bucket = aws_s3_bucket.primary.id

  dynamic "rule" {
    for_each = local.lifecycle_rules

    content {
      id     = rule.value.id
      status = "Enabled"

      filter {
        prefix = rule.value.tier == null ? rule.value.prefix : null

        dynamic "tag" {
          for_each = rule.value.tier != null && rule.value.prefix == "" ? [rule.value.tier] : []
          iterator = tier
          content {
            key   = "lifeboat-tier"
            value = tier.value
          }
        }

        # a tag and a prefix together need an "and" block
        dynamic "and" {
          for_each = rule.value.tier != null && rule.value.prefix != "" ? [rule.value.tier] : []
          iterator = tier_in_prefix
          content {
            prefix = rule.value.prefix
            tags   = { "lifeboat-tier" = tier_in_prefix.value }
          }
        }
      }

      dynamic "transition" {
        for_each = rule.value.transition_days == null ? [] : [rule.value]
        content {
          days          = transition.value.transition_days
          storage_class = transition.value.transition_storage_class
        }
      }

      dynamic "expiration" {
        for_each = rule.value.expiration_days == null && !rule.value.expired_object_delete_marker ? [] : [rule.value]
        content {
          days                         = expiration.value.expiration_days
          expired_object_delete_marker = expiration.value.expired_object_delete_marker ? true : null
        }
      }

      dynamic "noncurrent_version_expiration" {
        for_each = rule.value.noncurrent_days == null ? [] : [rule.value]
        content {
          noncurrent_days = noncurrent_version_expiration.value.noncurrent_days
        }
      }

      dynamic "abort_incomplete_multipart_upload" {
        for_each = rule.value.abort_days == null ? [] : [rule.value]
        content {
          days_after_initiation = abort_incomplete_multipart_upload.value.abort_days
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.primary]
}

# --- Replica ---------------------------------------------------------------------------------

resource "aws_s3_bucket" "replica" {
  provider = aws.replica

  bucket              = local.replica_bucket_name
  object_lock_enabled = true
  tags                = var.tags
}

resource "aws_s3_bucket_ownership_controls" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.sse_algorithm
      kms_master_key_id = local.replica_kms_key_arn
    }
    bucket_key_enabled = local.use_kms
  }
}

resource "aws_s3_bucket_policy" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id
  policy   = data.aws_iam_policy_document.tls_only["replica"].json

  depends_on = [aws_s3_bucket_public_access_block.replica]
}

resource "aws_s3_bucket_lifecycle_configuration" "replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.replica.id

  # Same rules as the primary: the lifeboat-tier tags travel with the replicas.
  dynamic "rule" {
    for_each = local.lifecycle_rules

    content {
      id     = rule.value.id
      status = "Enabled"

      filter {
        prefix = rule.value.tier == null ? rule.value.prefix : null

        dynamic "tag" {
          for_each = rule.value.tier != null && rule.value.prefix == "" ? [rule.value.tier] : []
          iterator = tier
          content {
            key   = "lifeboat-tier"
            value = tier.value
          }
        }

        # a tag and a prefix together need an "and" block
        dynamic "and" {
          for_each = rule.value.tier != null && rule.value.prefix != "" ? [rule.value.tier] : []
          iterator = tier_in_prefix
          content {
            prefix = rule.value.prefix
            tags   = { "lifeboat-tier" = tier_in_prefix.value }
          }
        }
      }

      dynamic "transition" {
        for_each = rule.value.transition_days == null ? [] : [rule.value]
        content {
          days          = transition.value.transition_days
          storage_class = transition.value.transition_storage_class
        }
      }

      dynamic "expiration" {
        for_each = rule.value.expiration_days == null && !rule.value.expired_object_delete_marker ? [] : [rule.value]
        content {
          days                         = expiration.value.expiration_days
          expired_object_delete_marker = expiration.value.expired_object_delete_marker ? true : null
        }
      }

      dynamic "noncurrent_version_expiration" {
        for_each = rule.value.noncurrent_days == null ? [] : [rule.value]
        content {
          noncurrent_days = noncurrent_version_expiration.value.noncurrent_days
        }
      }

      dynamic "abort_incomplete_multipart_upload" {
        for_each = rule.value.abort_days == null ? [] : [rule.value]
        content {
          days_after_initiation = abort_incomplete_multipart_upload.value.abort_days
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica]
}
