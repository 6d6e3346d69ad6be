output "bucket_name" {
  description = "The primary bucket."
  value       = aws_s3_bucket.primary.id
}

output "bucket_arn" {
  description = "ARN of the primary bucket."
  value       = aws_s3_bucket.primary.arn
}

output "replica_bucket_name" {
  description = "The replica bucket, in the aws.replica provider's region."
  value       = aws_s3_bucket.replica.id
}

output "replica_bucket_arn" {
  description = "ARN of the replica bucket."
  value       = aws_s3_bucket.replica.arn
}

output "repository_url" {
  description = "The url of the primary repository in lifeboat.toml."
  value       = local.repository_url
}

output "replica_repository_url" {
  description = "The url of the replica, for reading it (restore, copy) when the primary is gone."
  value       = local.replica_repository_url
}

output "writer_policy_arn" {
  description = "ARN of lifeboat-writer, for the database host."
  value       = aws_iam_policy.writer.arn
}

output "pruner_policy_arn" {
  description = "ARN of lifeboat-pruner, for the host that removes old backups."
  value       = aws_iam_policy.pruner.arn
}

output "replication_role_arn" {
  description = "ARN of the role S3 replicates with."
  value       = aws_iam_role.replication.arn
}

output "kms_key_arn" {
  description = "KMS key of the primary bucket (null with AES256)."
  value       = local.primary_kms_key_arn
}

output "replica_kms_key_arn" {
  description = "KMS key of the replica bucket (null with AES256)."
  value       = local.replica_kms_key_arn
}
