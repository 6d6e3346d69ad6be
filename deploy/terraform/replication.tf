# Cross-region replication of the repository prefix into the replica bucket.
#
# S3 replicates new object versions (with their tags, retention and legal holds) a few
# minutes after they are written; objects that existed before this configuration are not
# replicated (use S3 Batch Replication for those). A version deleted with its version id (the
# pruner) is never replicated, and delete markers are replicated only for lock files: a
# deletion in the primary never hides a backup in the replica.

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replication" {
  name               = "lifeboat-replication${var.iam_name_suffix}"
  description        = "S3 replicates ${var.bucket_name} into ${local.replica_bucket_name} with this role"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "replication" {
  statement {
    sid       = "ReadSourceConfiguration"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [aws_s3_bucket.primary.arn]
  }

  statement {
    sid = "ReadSourceVersions"
    actions = [
      "s3:GetObjectLegalHold",
      "s3:GetObjectRetention",
      "s3:GetObjectVersionAcl",
      "s3:GetObjectVersionForReplication",
      "s3:GetObjectVersionTagging",
    ]
    resources = [local.primary_objects]
  }

  statement {
    sid       = "WriteReplicas"
    actions   = ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"]
    resources = [local.replica_objects]
  }

  dynamic "statement" {
    for_each = local.use_kms ? [local.primary_kms_key_arn] : []
    iterator = key

    content {
      sid       = "DecryptSource"
      actions   = ["kms:Decrypt"]
      resources = [key.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.primary.name}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = local.use_kms ? [local.replica_kms_key_arn] : []
    iterator = key

    content {
      sid       = "EncryptReplicas"
      actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
      resources = [key.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.replica.name}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "replication" {
  name   = "lifeboat-replication"
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "primary" {
  bucket = aws_s3_bucket.primary.id
  role   = aws_iam_role.replication.arn

  # Lock files are created and deleted by every backup: replicating their delete markers
  # keeps the replica from showing locks that were released long ago. Overlapping rules
  # are resolved by priority, the higher number winning.
  rule {
    id       = "lock-files"
    priority = 2
    status   = "Enabled"

    filter {
      prefix = "${local.prefix}locks/"
    }

    delete_marker_replication {
      status = "Enabled"
    }

    destination {
      bucket        = aws_s3_bucket.replica.arn
      storage_class = var.replica_storage_class

      dynamic "encryption_configuration" {
        for_each = local.use_kms ? [local.replica_kms_key_arn] : []
        content {
          replica_kms_key_id = encryption_configuration.value
        }
      }
    }

    dynamic "source_selection_criteria" {
      for_each = local.use_kms ? [true] : []
      content {
        sse_kms_encrypted_objects {
          status = "Enabled"
        }
      }
    }
  }

  rule {
    id       = "repository"
    priority = 1
    status   = "Enabled"

    filter {
      prefix = local.prefix
    }

    delete_marker_replication {
      status = "Disabled"
    }

    destination {
      bucket        = aws_s3_bucket.replica.arn
      storage_class = var.replica_storage_class

      dynamic "encryption_configuration" {
        for_each = local.use_kms ? [local.replica_kms_key_arn] : []
        content {
          replica_kms_key_id = encryption_configuration.value
        }
      }
    }

    dynamic "source_selection_criteria" {
      for_each = local.use_kms ? [true] : []
      content {
        sse_kms_encrypted_objects {
          status = "Enabled"
        }
      }
    }
  }

  # S3 refuses a replication configuration until both buckets are versioned, and the role
  # must be able to act when the first object arrives.
  depends_on = [
    aws_s3_bucket_versioning.primary,
    aws_s3_bucket_versioning.replica,
    aws_iam_role_policy.replication,
  ]
}
