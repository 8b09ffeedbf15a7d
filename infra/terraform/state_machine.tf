# The lifecycle state machine, deployed from state-machine/lifecycle.asl.json as is: Terraform
# only fills the ${...} placeholders with the Lambda ARNs (tests/infra checks that every
# placeholder in the file is supplied here and every one supplied here is used).

locals {
  state_machine_lambdas = {
    RunGuardArn      = aws_lambda_function.step["run-guard"].arn
    EnsureClusterArn = aws_lambda_function.step["ensure-cluster"].arn
    ClusterAccessArn = aws_lambda_function.step["cluster-access"].arn
    FluxBootstrapArn = aws_lambda_function.step["flux-bootstrap"].arn
    HealthCheckArn   = aws_lambda_function.step["health-check"].arn
    TeardownArn      = aws_lambda_function.step["teardown"].arn
    GithubStatusArn  = aws_lambda_function.step["github-status"].arn
  }

  # Functions the state machine invokes (every one except the webhook and the EventBridge
  # target execution-ended), by the ARN their names give, so the role's policy is known without
  # the functions (tests/infra measures it against IAM's limits from a targeted apply).
  state_machine_invoked = [
    for fn in keys(local.lambda_functions) : "${local.arn_lambda}:function:${local.prefix}-${fn}"
    if !contains(["github-webhook", "execution-ended"], fn)
  ]
}

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${local.state_machine_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.labflow.arn
}

resource "aws_sfn_state_machine" "lifecycle" {
  name     = local.state_machine_name
  type     = "STANDARD"
  role_arn = aws_iam_role.state_machine.arn

  definition = templatefile("${path.module}/../../state-machine/lifecycle.asl.json", local.state_machine_lambdas)

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.labflow.arn
    kms_data_key_reuse_period_seconds = 300
  }

  depends_on = [aws_iam_role_policy.state_machine]
}

data "aws_iam_policy_document" "state_machine_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.state_machine_arn]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name               = "${local.prefix}-state-machine"
  assume_role_policy = data.aws_iam_policy_document.state_machine_trust.json
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid     = "InvokeSteps"
    actions = ["lambda:InvokeFunction"]
    # Plain and qualified ARNs (lambda:invoke integration may pass a version or alias).
    resources = concat(local.state_machine_invoked, [for arn in local.state_machine_invoked : "${arn}:*"])
  }

  # Vended log delivery and X-Ray have no resource-level permissions (Step Functions docs).
  statement {
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    sid = "Tracing"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "StateEncryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.labflow.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "lifecycle"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}
