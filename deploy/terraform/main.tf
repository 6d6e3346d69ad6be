data "aws_region" "primary" {}

data "aws_region" "replica" {
  provider = aws.replica
}

locals {
  # Lifeboat keeps every key under "PREFIX/" (nothing when the prefix is empty).
  prefix              = var.repository_prefix == "" ? "" : "${trimsuffix(var.repository_prefix, "/")}/"
  replica_bucket_name = coalesce(var.replica_bucket_name, "${var.bucket_name}-replica")

  use_kms             = var.sse_algorithm == "aws:kms"
  create_primary_key  = local.use_kms && var.kms_key_arn == null
  create_replica_key  = local.use_kms && var.replica_kms_key_arn == null
  primary_kms_key_arn = local.use_kms ? (local.create_primary_key ? one(aws_kms_key.primary[*].arn) : var.kms_key_arn) : null
  replica_kms_key_arn = local.use_kms ? (local.create_replica_key ? one(aws_kms_key.replica[*].arn) : var.replica_kms_key_arn) : null

  # The key names Lifeboat uses (see docs/repository-format.md), as IAM resource patterns.
  primary_objects  = "${aws_s3_bucket.primary.arn}/${local.prefix}*"
  replica_objects  = "${aws_s3_bucket.replica.arn}/${local.prefix}*"
  lock_objects     = "${aws_s3_bucket.primary.arn}/${local.prefix}locks/*"
  partial_objects  = "${aws_s3_bucket.primary.arn}/${local.prefix}*/wal-stream/*"
  writer_deletable = var.writer_can_delete_stream_partials ? [local.lock_objects, local.partial_objects] : [local.lock_objects]

  repository_url = (local.prefix == ""
    ? "s3://${aws_s3_bucket.primary.id}?region=${data.aws_region.primary.name}"
    : "s3://${aws_s3_bucket.primary.id}/${trimsuffix(local.prefix, "/")}?region=${data.aws_region.primary.name}"
  )
  replica_repository_url = (local.prefix == ""
    ? "s3://${aws_s3_bucket.replica.id}?region=${data.aws_region.replica.name}"
    : "s3://${aws_s3_bucket.replica.id}/${trimsuffix(local.prefix, "/")}?region=${data.aws_region.replica.name}"
  )
}

# --- KMS keys (only with sse_algorithm = "aws:kms" and no key given) ------------------------

resource "aws_kms_key" "primary" {
  count = local.create_primary_key ? 1 : 0

  description             = "Lifeboat repository ${var.bucket_name}: S3 server-side encryption"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  tags                    = var.tags
}

resource "aws_kms_alias" "primary" {
  count = local.create_primary_key ? 1 : 0

  name          = "alias/lifeboat-${var.bucket_name}"
  target_key_id = aws_kms_key.primary[0].key_id
}

resource "aws_kms_key" "replica" {
  count    = local.create_replica_key ? 1 : 0
  provider = aws.replica

  description             = "Lifeboat repository replica ${local.replica_bucket_name}: S3 server-side encryption"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  tags                    = var.tags
}

resource "aws_kms_alias" "replica" {
  count    = local.create_replica_key ? 1 : 0
  provider = aws.replica

  name          = "alias/lifeboat-${local.replica_bucket_name}"
  target_key_id = aws_kms_key.replica[0].key_id
}

# --- Bucket policies: TLS only ---------------------------------------------------------------

data "aws_iam_policy_document" "tls_only" {
  for_each = {
    primary = aws_s3_bucket.primary.arn
    replica = aws_s3_bucket.replica.arn
  }

  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]

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
}
