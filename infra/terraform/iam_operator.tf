# What a platform engineer needs for `labflow start` and `labflow status` (cli/src/remote,
# AWS_OPERATIONS there; tests/infra checks the rendered policy against it). Attach it to the
# engineers' roles or users: `terraform output operator_policy_arn`.

data "aws_iam_policy_document" "operator" {
  # ListStateMachines has no resource-level permissions (Service Authorization Reference, Step
  # Functions): `labflow` looks the state machine up by name unless given its ARN.
  statement {
    sid       = "FindStateMachine"
    actions   = ["states:ListStateMachines"]
    resources = ["*"]
  }
  statement {
    sid       = "StartAndList"
    actions   = ["states:StartExecution", "states:ListExecutions"]
    resources = [local.state_machine_arn]
  }
  statement {
    sid       = "ReadExecutions"
    actions   = ["states:DescribeExecution", "states:GetExecutionHistory"]
    resources = [local.state_machine_execution]
  }
  # The state machine's data is encrypted (local.states_kms_condition in iam_lambdas.tf).
  statement {
    sid       = "StateMachineEncryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.labflow.arn]
    dynamic "condition" {
      for_each = local.states_kms_condition
      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }
}

resource "aws_iam_policy" "operator" {
  name        = "${local.prefix}-operator"
  description = "labflow start / labflow status against the lifecycle state machine"
  policy      = data.aws_iam_policy_document.operator.json
}
