# Per environment: the role the EKS control plane assumes and the role of its nodes.
# ensure-cluster passes both (iam:PassRole, scoped to exactly these roles).

locals {
  # Every per-environment role name, in one place: the roles here and in iam_pod_identity.tf and
  # ensure-cluster's iam:PassRole resources (iam_lambdas.tf) all read it. IAM role names are at
  # most 64 characters (docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
  # name_prefix (<= 12) + "-" + environment (<= 40) + "-" + suffix (<= 10) = 64 at most, and a
  # precondition on each role names the one that breaks it if a suffix or limit changes.
  # No suffix may end a Lambda's role name (`<prefix>-<function>`): ensure-cluster passes
  # `<prefix>-*-<suffix>` (IAM's `*` spans `-`), and an environment `ensure` with the suffix
  # "cluster" would even have been named like the role `<prefix>-ensure-cluster`.
  env_role_suffixes = merge(
    { cluster = "eks", node = "node" },
    { for controller, c in local.pod_identity_controllers : controller => c.role_suffix },
  )
  env_role_names = {
    for env in keys(var.environments) : env => {
      for kind, suffix in local.env_role_suffixes : kind => "${local.prefix}-${env}-${suffix}"
    }
  }
}

data "aws_iam_policy_document" "eks_cluster_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  for_each = var.environments

  name               = local.env_role_names[each.key].cluster
  assume_role_policy = data.aws_iam_policy_document.eks_cluster_trust.json
  tags               = { "labflow:environment" = each.key }

  lifecycle {
    precondition {
      condition     = length(local.env_role_names[each.key].cluster) <= 64
      error_message = "IAM role name ${local.env_role_names[each.key].cluster} is over IAM's 64 characters: shorten name_prefix or the environment name."
    }
  }
}

resource "aws_iam_role_policy_attachment" "cluster" {
  for_each = var.environments

  role       = aws_iam_role.cluster[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

data "aws_iam_policy_document" "eks_node_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  for_each = var.environments

  name               = local.env_role_names[each.key].node
  assume_role_policy = data.aws_iam_policy_document.eks_node_trust.json
  tags               = { "labflow:environment" = each.key }

  lifecycle {
    precondition {
      condition     = length(local.env_role_names[each.key].node) <= 64
      error_message = "IAM role name ${local.env_role_names[each.key].node} is over IAM's 64 characters: shorten name_prefix or the environment name."
    }
  }
}

locals {
  # The node role joins the cluster and pulls images; the CNI's network permissions are on its
  # own Pod Identity role (iam_pod_identity.tf), out of reach of the node's other pods.
  node_managed_policies = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
  ]

  node_policy_attachments = {
    for pair in setproduct(keys(var.environments), local.node_managed_policies) :
    "${pair[0]}:${pair[1]}" => { env = pair[0], policy = pair[1] }
  }
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = local.node_policy_attachments

  role       = aws_iam_role.node[each.value.env].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value.policy}"
}
