# Failed, timed-out or aborted executions raise an alarm on an encrypted SNS topic.

resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-alarms"
  kms_master_key_id = aws_kms_key.labflow.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  execution_alarm_metrics = {
    failed    = "ExecutionsFailed"
    timed-out = "ExecutionsTimedOut"
    aborted   = "ExecutionsAborted"
  }
}

resource "aws_cloudwatch_metric_alarm" "executions" {
  for_each = local.execution_alarm_metrics

  alarm_name          = "${local.prefix}-executions-${each.key}"
  alarm_description   = "labflow lifecycle: an execution ${each.key} (see the Step Functions console for which environment and step)"
  namespace           = "AWS/States"
  metric_name         = each.value
  dimensions          = { StateMachineArn = aws_sfn_state_machine.lifecycle.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
