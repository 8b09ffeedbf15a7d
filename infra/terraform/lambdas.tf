# The step functions and the webhook: provided.al2023 custom runtime, zips from `make package`
# (dist/lambda/<function>.zip, a `bootstrap` binary each), one log group per function.

locals {
  # Work per call stays within 60 s (DESIGN.md §3); the timeout leaves room for slow AWS answers.
  lambda_functions = {
    "run-guard"       = { memory = 256, timeout = 60, description = "Validate execution input; hold the per-environment lock" }
    "ensure-cluster"  = { memory = 256, timeout = 90, description = "EKS cluster, add-ons, node groups, Pod Identity associations exist as configured" }
    "cluster-access"  = { memory = 256, timeout = 90, description = "Access entries, API reachable with an EKS token, kubeconfig published" }
    "flux-bootstrap"  = { memory = 512, timeout = 120, description = "Flux installed and pointed at the environment's path; reconcile requested" }
    "health-check"    = { memory = 256, timeout = 90, description = "Flux tree applied at the target revision and Ready; mesh posture; DNS records" }
    "teardown"        = { memory = 512, timeout = 120, description = "Remove workloads in order, uninstall Flux, clean DNS, delete node groups, add-ons, cluster, sweep tagged LBs and volumes" }
    "github-webhook"  = { memory = 256, timeout = 30, description = "Verified GitHub push -> exactly one execution" }
    "github-status"   = { memory = 256, timeout = 30, description = "Commit status pending/success/failure with a link to the execution" }
    "execution-ended" = { memory = 256, timeout = 60, description = "Timed-out, stopped or uncaught-failed execution: free its lock, post its failure status" }
  }

  lambda_dist_dir = startswith(var.lambda_dist_dir, "/") ? var.lambda_dist_dir : "${path.module}/${var.lambda_dist_dir}"

  lambda_environment = {
    for fn in keys(local.lambda_functions) : fn => merge(
      { RUST_LOG = var.rust_log },
      contains(["github-webhook", "execution-ended"], fn) ? { LABFLOW_STATE_MACHINE_ARN = local.state_machine_arn } : {},
      # cluster-access grants its own role cluster admin; the full role ARN (with its path) comes
      # from here rather than being rebuilt from the STS session ARN.
      fn == "cluster-access" ? { LABFLOW_AUTOMATION_ROLE_ARN = aws_iam_role.lambda[fn].arn } : {},
      contains(["github-status", "execution-ended"], fn) && var.github_api_url != "" ? { GITHUB_API_URL = var.github_api_url } : {},
    )
  }
}

resource "aws_cloudwatch_log_group" "lambda" {
  for_each = local.lambda_functions

  name              = "/aws/lambda/${local.prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.labflow.arn
}

resource "aws_lambda_function" "step" {
  for_each = local.lambda_functions

  function_name = "${local.prefix}-${each.key}"
  description   = each.value.description
  role          = aws_iam_role.lambda[each.key].arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.lambda_architecture]
  memory_size   = each.value.memory
  timeout       = each.value.timeout
  # The webhook is public: without a reservation a flood of requests takes the account's whole
  # concurrency and throttles every step (issue 26 item 9). The reservation is also its cap.
  reserved_concurrent_executions = each.key == "github-webhook" ? var.webhook_reserved_concurrency : -1

  filename = "${local.lambda_dist_dir}/${each.key}.zip"
  # filebase64sha256 runs at plan time; without the guard a plan before `make package` stops with
  # "no file exists at …" instead of the precondition's message below.
  source_code_hash = fileexists("${local.lambda_dist_dir}/${each.key}.zip") ? filebase64sha256("${local.lambda_dist_dir}/${each.key}.zip") : null

  kms_key_arn = aws_kms_key.labflow.arn
  environment {
    variables = local.lambda_environment[each.key]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda[each.key].name
  }

  tracing_config {
    mode = "Active"
  }

  # The role's policy must exist before the first invocation, not just the role.
  depends_on = [aws_iam_role_policy.lambda]

  lifecycle {
    precondition {
      condition     = fileexists("${local.lambda_dist_dir}/${each.key}.zip")
      error_message = "${local.lambda_dist_dir}/${each.key}.zip does not exist: run `make package LAMBDA_ARCH=${var.lambda_architecture}` in the repository first (or set lambda_dist_dir to where the zips are)."
    }
  }
}
