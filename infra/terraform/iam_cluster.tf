# Per environment: the role the EKS control plane assumes and the role of its nodes.
# ensure-cluster passes both (iam:PassRole, scoped to exactly these roles).

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

  name               = "${local.prefix}-${each.key}-cluster"
  assume_role_policy = data.aws_iam_policy_document.eks_cluster_trust.json
  tags               = { "labflow:environment" = each.key }
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

  name               = "${local.prefix}-${each.key}-node"
  assume_role_policy = data.aws_iam_policy_document.eks_node_trust.json
  tags               = { "labflow:environment" = each.key }
}

locals {
  # vpc-cni runs with the node role here (its add-on has no Pod Identity association), so the
  # node role keeps the CNI policy; image pulls only need the pull-only policy.
  node_managed_policies = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
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
