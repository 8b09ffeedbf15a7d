# The GitHub webhook endpoint. GitHub cannot sign requests with SigV4, so the URL has auth NONE;
# github-webhook verifies X-Hub-Signature-256 (HMAC-SHA256 with the webhook secret) before it
# does anything, and de-duplicates redeliveries by X-GitHub-Delivery.

resource "aws_lambda_function_url" "github_webhook" {
  # checkov:skip=CKV_AWS_258: GitHub cannot sign SigV4; the function verifies the HMAC signature itself
  function_name      = aws_lambda_function.step["github-webhook"].function_name
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "github_webhook_url" {
  # checkov:skip=CKV_AWS_301: public by design (GitHub's deliveries); only unsigned-request rejection runs without the HMAC secret
  statement_id           = "GithubWebhookFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.step["github-webhook"].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

# Since October 2025 function URLs also need lambda:InvokeFunction, limited to URL invocations.
resource "aws_lambda_permission" "github_webhook_invoke" {
  # checkov:skip=CKV_AWS_301: public by design, limited to invocations through the function URL (invoked_via_function_url)
  statement_id             = "GithubWebhookInvokeViaUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.step["github-webhook"].function_name
  principal                = "*"
  invoked_via_function_url = true
}
