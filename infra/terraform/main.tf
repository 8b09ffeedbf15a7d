# Shared data sources and names used by every other file.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  prefix     = var.name_prefix
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  # ARN prefixes, so IAM statements can name resources that Lambdas create at run time
  # (clusters, locks, kubeconfigs) before they exist.
  arn_eks    = "arn:${local.partition}:eks:${local.region}:${local.account_id}"
  arn_ssm    = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter"
  arn_elb    = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}"
  arn_ec2    = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  arn_states = "arn:${local.partition}:states:${local.region}:${local.account_id}"
  arn_iam    = "arn:${local.partition}:iam::${local.account_id}"
  arn_lambda = "arn:${local.partition}:lambda:${local.region}:${local.account_id}"

  # The state machine's ARN is built from its name (not taken from the resource) so that Lambda
  # policies can refer to it without a dependency cycle (the state machine refers to the Lambdas).
  state_machine_name      = "${local.prefix}-lifecycle"
  state_machine_arn       = "${local.arn_states}:stateMachine:${local.state_machine_name}"
  state_machine_execution = "${local.arn_states}:execution:${local.state_machine_name}:*"
}
