terraform {
  # optional() attribute defaults need 1.3; templatefile/for_each semantics used here are stable since.
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: data.aws_region.region, aws_lambda_permission.invoked_via_function_url (function URLs
      # created since October 2025 need lambda:InvokeFunction as well as lambda:InvokeFunctionUrl).
      version = ">= 6.42.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      "labflow:managed-by" = "labflow"
    })
  }
}
