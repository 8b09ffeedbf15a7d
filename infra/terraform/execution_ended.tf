# Executions that end outside the state machine's failure path — TimeoutSeconds exceeded, stopped
# from the console or CLI, an error no Catch sees — still free their lock and get a final commit
# status: Step Functions sends every status change of a standard workflow to the default event
# bus (docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html), and this rule
# hands the lifecycle's failed, timed-out and aborted ones to execution-ended
# (functions/execution-ended).

resource "aws_cloudwatch_event_rule" "execution_ended" {
  name        = "${local.prefix}-execution-ended"
  description = "labflow: lifecycle executions that FAILED, TIMED_OUT or were ABORTED"
  event_pattern = jsonencode({
    source        = ["aws.states"]
    "detail-type" = ["Step Functions Execution Status Change"]
    detail = {
      stateMachineArn = [local.state_machine_arn]
      status          = ["FAILED", "TIMED_OUT", "ABORTED"]
    }
  })
}

resource "aws_cloudwatch_event_target" "execution_ended" {
  rule = aws_cloudwatch_event_rule.execution_ended.name
  arn  = aws_lambda_function.step["execution-ended"].arn

  # EventBridge retries a failed delivery (e.g. throttling) for up to a day by default; after an
  # hour the lock has been taken over or gone stale anyway.
  retry_policy {
    maximum_retry_attempts       = 10
    maximum_event_age_in_seconds = 3600
  }
}

resource "aws_lambda_permission" "execution_ended" {
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.step["execution-ended"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.execution_ended.arn
}
