# Nightly `teardown-all`: every environment with nightlyTeardown = true (and not protected) is
# destroyed. The input is an ExecutionInput (labflow-core contract) with source kind "schedule".

resource "aws_scheduler_schedule" "nightly_teardown" {
  name        = "${local.prefix}-nightly-teardown"
  description = "labflow: teardown-all"
  state       = var.nightly_teardown_enabled ? "ENABLED" : "DISABLED"

  schedule_expression          = "cron(${var.nightly_teardown_cron})"
  schedule_expression_timezone = var.nightly_teardown_timezone
  kms_key_arn                  = aws_kms_key.labflow.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.lifecycle.arn
    role_arn = aws_iam_role.scheduler.arn
    input = jsonencode({
      action = "teardown-all"
      source = { kind = "schedule" }
    })

    retry_policy {
      maximum_retry_attempts       = 3
      maximum_event_age_in_seconds = 3600
    }
  }
}

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    # Only schedules of our group may use the role (confused deputy: EventBridge Scheduler user
    # guide, "Set up the execution role", aws:SourceArn = the schedule group; ours is "default").
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:scheduler:${local.region}:${local.account_id}:schedule-group/default"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.prefix}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartTeardownAll"
    actions   = ["states:StartExecution"]
    resources = [local.state_machine_arn]
  }
  # StartExecution on the encrypted state machine (local.states_kms_condition).
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
  # The schedule's target input is encrypted with labflow's key; Scheduler decrypts it as this
  # role with the schedule's ARN as encryption context (EventBridge Scheduler user guide,
  # "Encryption at rest": aws:scheduler:schedule-arn) — only this schedule's data (issue 26
  # item 10).
  statement {
    sid       = "ScheduleEncryption"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.labflow.arn]
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:scheduler:schedule-arn"
      values   = ["arn:${local.partition}:scheduler:${local.region}:${local.account_id}:schedule/default/${local.prefix}-nightly-teardown"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "start-teardown-all"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
