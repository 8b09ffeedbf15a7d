output "github_webhook_url" {
  description = "Payload URL of the GitHub webhook (content type application/json, event: push)."
  value       = aws_lambda_function_url.github_webhook.function_url
}

output "state_machine_arn" {
  description = "The lifecycle state machine (start executions here or with `labflow start`)."
  value       = aws_sfn_state_machine.lifecycle.arn
}

output "lambda_function_names" {
  description = "Function name per step."
  value       = { for fn, f in aws_lambda_function.step : fn => f.function_name }
}

output "environment_parameters" {
  description = "SSM parameter of each environment's config."
  value       = { for env, p in aws_ssm_parameter.environment : env => p.name }
}

output "secret_parameters" {
  description = "SecureStrings to set out of band with `aws ssm put-parameter --overwrite`."
  value = {
    github_token     = aws_ssm_parameter.github_token.name
    webhook_secret   = aws_ssm_parameter.webhook_secret.name
    flux_credentials = { for env, p in aws_ssm_parameter.flux_credential : env => p.name }
  }
}

output "kms_key_alias" {
  description = "labflow's KMS key (SecureStrings): pass it as --key-id when setting the secrets."
  value       = aws_kms_alias.labflow.name
}

output "vpc_id" {
  value = aws_vpc.main.id
}

output "private_subnet_ids" {
  value = aws_subnet.private[*].id
}

output "certificate_arns" {
  description = "Validated ACM certificate per environment (CERT_ARN in the GitOps tree)."
  value       = { for env, v in aws_acm_certificate_validation.env : env => v.certificate_arn }
}

output "ecr_repository_urls" {
  value = { for name, repo in aws_ecr_repository.apps : name => repo.repository_url }
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "operator_policy_arn" {
  description = "Managed policy for `labflow start` / `labflow status` (attach to your engineers' roles)."
  value       = aws_iam_policy.operator.arn
}
