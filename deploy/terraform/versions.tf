terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
      # The replica lives in another region, so the caller passes a second provider
      # configuration: providers = { aws = aws, aws.replica = aws.replica }.
      configuration_aliases = [aws.replica]
    }
  }
}
