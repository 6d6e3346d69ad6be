# The two credentials of a repository. docs/cloud-storage.md shows the same policies as JSON
# (tests/unit/test_deploy_terraform.py compares their statements with the ones below).
#
# lifeboat-writer is for the database host: it adds backups and WAL and reads them back, and
# deletes nothing but the lock files it releases. It may overwrite a key (S3 has no "create
# only" permission), but in a versioned bucket an overwrite only adds a new version: the old
# one stays, under Object Lock, and this credential can neither delete versions, nor change
# retention, legal holds, lifecycle rules or the bucket policy. Anyone holding the pruner (or
# an administrator) can bring the old version back.
#
# lifeboat-pruner is the stronger credential that thins out old backups: it may delete
# objects and versions and set legal holds, and bypasses nothing: a version under COMPLIANCE
# retention cannot be deleted by anyone until its retention ends.

# Bucket settings nobody holding these credentials may change, whatever else they are granted
# (an explicit Deny wins over any Allow attached to the same principal).
locals {
  protected_settings = [
    "s3:BypassGovernanceRetention",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutObjectRetention",
    "s3:PutReplicationConfiguration",
  ]
}

# BEGIN lifeboat-writer
data "aws_iam_policy_document" "writer" {
  # Not narrowed to the prefix with an s3:prefix condition: S3 answers a read of a missing
  # key with 404 only to a principal that may list the bucket, and Lifeboat needs that "not
  # found" (wal-fetch of a segment the archive lacks ends recovery; "access denied" stops it).
  statement {
    sid       = "ListRepository"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.primary.arn]
  }

  statement {
    sid = "ReadBucketSettings"
    actions = [
      "s3:GetBucketLocation",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketVersioning",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [aws_s3_bucket.primary.arn]
  }

  # GetObjectVersion: after an upload Lifeboat checks the very version it wrote.
  statement {
    sid = "ReadRepository"
    actions = [
      "s3:GetObject",
      "s3:GetObjectLegalHold",
      "s3:GetObjectRetention",
      "s3:GetObjectVersion",
      "s3:ListMultipartUploadParts",
    ]
    resources = [local.primary_objects]
  }

  # AbortMultipartUpload only discards the parts of an upload that never completed: Lifeboat
  # cleans up after a failed write, and after uploads a killed process left behind.
  statement {
    sid       = "AddObjects"
    actions   = ["s3:AbortMultipartUpload", "s3:PutObject"]
    resources = [local.primary_objects]
  }

  # An upload that carries tags needs s3:PutObjectTagging; only the tier tag is allowed.
  statement {
    sid       = "TagBackupTiers"
    actions   = ["s3:PutObjectTagging"]
    resources = [local.primary_objects]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "s3:RequestObjectTagKeys"
      values   = ["lifeboat-tier"]
    }
  }

  statement {
    sid       = "ReleaseLocks"
    actions   = ["s3:DeleteObject"]
    resources = local.writer_deletable
  }

  statement {
    sid           = "NeverDeleteOutsideLocks"
    effect        = "Deny"
    actions       = ["s3:DeleteObject"]
    not_resources = local.writer_deletable
  }

  statement {
    sid    = "NeverRewriteHistoryOrSettings"
    effect = "Deny"
    actions = concat(local.protected_settings, [
      "s3:DeleteObjectVersion",
      "s3:PutObjectLegalHold",
    ])
    resources = [aws_s3_bucket.primary.arn, "${aws_s3_bucket.primary.arn}/*"]
  }

  dynamic "statement" {
    for_each = local.use_kms ? [local.primary_kms_key_arn] : []
    iterator = key

    content {
      sid       = "UseRepositoryKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [key.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.primary.name}.amazonaws.com"]
      }
    }
  }
}
# END lifeboat-writer

# BEGIN lifeboat-pruner
data "aws_iam_policy_document" "pruner" {
  statement {
    sid       = "ListRepositories"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [aws_s3_bucket.primary.arn, aws_s3_bucket.replica.arn]
  }

  statement {
    sid = "ReadBucketSettings"
    actions = [
      "s3:GetBucketLocation",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketVersioning",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [aws_s3_bucket.primary.arn, aws_s3_bucket.replica.arn]
  }

  statement {
    sid = "ReadObjectsAndVersions"
    actions = [
      "s3:GetObject",
      "s3:GetObjectLegalHold",
      "s3:GetObjectRetention",
      "s3:GetObjectTagging",
      "s3:GetObjectVersion",
      "s3:GetObjectVersionTagging",
      "s3:ListMultipartUploadParts",
    ]
    resources = [local.primary_objects, local.replica_objects]
  }

  # Pruning takes the source's lock (a new object under locks/) and may move a backup to
  # another tier.
  statement {
    sid       = "WriteLocksAndTiers"
    actions   = ["s3:PutObject", "s3:PutObjectTagging"]
    resources = [local.primary_objects, local.replica_objects]
  }

  statement {
    sid = "Prune"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
    ]
    resources = [local.primary_objects, local.replica_objects]
  }

  statement {
    sid       = "LegalHolds"
    actions   = ["s3:PutObjectLegalHold"]
    resources = [local.primary_objects, local.replica_objects]
  }

  statement {
    sid     = "BypassNothing"
    effect  = "Deny"
    actions = local.protected_settings
    resources = [
      aws_s3_bucket.primary.arn,
      "${aws_s3_bucket.primary.arn}/*",
      aws_s3_bucket.replica.arn,
      "${aws_s3_bucket.replica.arn}/*",
    ]
  }

  dynamic "statement" {
    for_each = local.use_kms ? [[local.primary_kms_key_arn, local.replica_kms_key_arn]] : []
    iterator = keys

    content {
      sid       = "UseRepositoryKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = keys.value

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values = [
          "s3.${data.aws_region.primary.name}.amazonaws.com",
          "s3.${data.aws_region.replica.name}.amazonaws.com",
        ]
      }
    }
  }
}
# END lifeboat-pruner

resource "aws_iam_policy" "writer" {
  name        = "lifeboat-writer${var.iam_name_suffix}"
  description = "Lifeboat database host: add backups and WAL to s3://${var.bucket_name}/${local.prefix}, delete only lock files"
  policy      = data.aws_iam_policy_document.writer.json
  tags        = var.tags
}

resource "aws_iam_policy" "pruner" {
  name        = "lifeboat-pruner${var.iam_name_suffix}"
  description = "Lifeboat pruning: delete backups and versions of s3://${var.bucket_name}/${local.prefix} and its replica once their retention ends"
  policy      = data.aws_iam_policy_document.pruner.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "writer" {
  for_each = toset(var.writer_role_names)

  role       = each.value
  policy_arn = aws_iam_policy.writer.arn
}

resource "aws_iam_user_policy_attachment" "writer" {
  for_each = toset(var.writer_user_names)

  user       = each.value
  policy_arn = aws_iam_policy.writer.arn
}

resource "aws_iam_role_policy_attachment" "pruner" {
  for_each = toset(var.pruner_role_names)

  role       = each.value
  policy_arn = aws_iam_policy.pruner.arn
}

resource "aws_iam_user_policy_attachment" "pruner" {
  for_each = toset(var.pruner_user_names)

  user       = each.value
  policy_arn = aws_iam_policy.pruner.arn
}
