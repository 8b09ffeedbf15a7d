# One role per controller and environment, assumed through EKS Pod Identity. ensure-cluster creates
# the associations from the environment config's podIdentities (built in ssm.tf from these roles).
# The service account names match infra/gitops (and the aws-ebs-csi-driver add-on).

locals {
  # role_suffix: at most 10 characters, so role names fit IAM's limit (local.env_role_names).
  pod_identity_controllers = {
    aws-load-balancer-controller = { namespace = "kube-system", service_account = "aws-load-balancer-controller", role_suffix = "lb-ctrl" }
    external-dns                 = { namespace = "external-dns", service_account = "external-dns", role_suffix = "ext-dns" }
    cluster-autoscaler           = { namespace = "kube-system", service_account = "cluster-autoscaler", role_suffix = "autoscaler" }
    cert-manager                 = { namespace = "cert-manager", service_account = "cert-manager", role_suffix = "cert-mgr" }
    ebs-csi                      = { namespace = "kube-system", service_account = "ebs-csi-controller-sa", role_suffix = "ebs-csi" }
    # The VPC CNI (aws-node) assigns pod IPs with its own role, not the node role every pod on
    # the node could use (issue 26 item 4; EKS user guide, "Configure the Amazon VPC CNI plugin to
    # use IRSA/Pod Identity"; the eks-pod-identity-agent add-on serves it).
    vpc-cni = { namespace = "kube-system", service_account = "aws-node", role_suffix = "vpc-cni" }
  }

  pod_identity_roles = {
    for pair in setproduct(keys(var.environments), keys(local.pod_identity_controllers)) :
    "${pair[0]}:${pair[1]}" => merge(local.pod_identity_controllers[pair[1]], {
      env        = pair[0]
      controller = pair[1]
    })
  }

  zone_arn = "arn:${local.partition}:route53:::hostedzone/${data.aws_route53_zone.main.zone_id}"
}

data "aws_iam_policy_document" "pod_identity_trust" {
  for_each = var.environments

  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    # Only this environment's cluster may hand the role to its pods.
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = ["${local.arn_eks}:cluster/${local.cluster_names[each.key]}"]
    }
  }
}

resource "aws_iam_role" "pod_identity" {
  for_each = local.pod_identity_roles

  name               = local.env_role_names[each.value.env][each.value.controller]
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust[each.value.env].json
  tags               = { "labflow:environment" = each.value.env }

  lifecycle {
    precondition {
      condition     = length(local.env_role_names[each.value.env][each.value.controller]) <= 64
      error_message = "IAM role name ${local.env_role_names[each.value.env][each.value.controller]} is over IAM's 64 characters: shorten name_prefix or the environment name."
    }
  }
}

# ---- external-dns: records of the environment's own domain only ----------------------------
# The zone is shared by every lab: a lab's external-dns (driven by whatever manifests Flux
# applies there) may change only names under its environment's domain, the TXT registry entries
# (`a-`/`cname-` prefixed labels) included (issue 26 item 3). Route53 sets the normalized names
# of every change of the batch ("Using IAM policy conditions for fine-grained access control",
# Route53 developer guide): lower case, no trailing dot. A host at the domain's apex has its
# registry entries beside the domain, `<txtPrefix><type>-<domain>` (external-dns
# registry/mapper ToTXTName), named exactly: a pattern there would reach another lab's apex.

locals {
  # external-dns's txtPrefix in infra/gitops/infrastructure/controllers/external-dns.yaml.
  external_dns_txt_prefix = "labflow-"
  external_dns_apex_entries = {
    for env, domain in local.env_domains : env => [
      for t in ["a", "aaaa", "cname"] : "${local.external_dns_txt_prefix}${t}-${lower(domain)}"
    ]
  }
}

data "aws_iam_policy_document" "external_dns" {
  for_each = var.environments

  statement {
    sid       = "ChangeOwnRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [local.zone_arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values = concat(
        [lower(local.env_domains[each.key]), "*.${lower(local.env_domains[each.key])}"],
        local.external_dns_apex_entries[each.key],
      )
    }
  }
  statement {
    sid       = "ReadZone"
    actions   = ["route53:ListResourceRecordSets", "route53:ListTagsForResource"]
    resources = [local.zone_arn]
  }
  # ListHostedZones has no resource-level permissions; external-dns filters by zone id itself.
  statement {
    sid       = "FindZones"
    actions   = ["route53:ListHostedZones"]
    resources = ["*"]
  }
}

# ---- cert-manager: DNS-01 TXT records of the environment's own names ------------------------

data "aws_iam_policy_document" "cert_manager" {
  for_each = var.environments

  statement {
    sid       = "GetChange"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }
  statement {
    sid       = "AcmeChallengeRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [local.zone_arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["TXT"]
    }
    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values = [
        "_acme-challenge.${lower(local.env_domains[each.key])}",
        "_acme-challenge.*.${lower(local.env_domains[each.key])}",
      ]
    }
  }
  statement {
    sid       = "ReadZone"
    actions   = ["route53:ListResourceRecordSets"]
    resources = [local.zone_arn]
  }
  statement {
    sid       = "FindZone"
    actions   = ["route53:ListHostedZonesByName"]
    resources = ["*"]
  }
}

# ---- cluster-autoscaler: only the node groups tagged for this cluster --------------------

data "aws_iam_policy_document" "cluster_autoscaler" {
  for_each = var.environments

  statement {
    sid = "ScaleOwnGroups"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${local.cluster_names[each.key]}"
      values   = ["owned"]
    }
  }
  # Describe/Get calls have no resource-level permissions.
  statement {
    sid = "Discover"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "DescribeOwnNodegroups"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["${local.arn_eks}:nodegroup/${local.cluster_names[each.key]}/*/*"]
  }
}

# ---- aws-load-balancer-controller: the upstream policy, writes bound to its own cluster ----
# The upstream policy (docs/install/iam_policy.json) only asks that a resource carry the tag
# `elbv2.k8s.aws/cluster` at all, which every lab's load balancers and security groups do: one
# lab's controller could delete another's. Here each write names this environment's cluster in
# that tag (the controller sets it to its clusterName: pkg/deploy/tracking/provider.go,
# shared_constants/tag_keys.go), and no tag change may move a resource to another cluster
# (issue 26 item 4).

data "aws_iam_policy_document" "aws_load_balancer_controller" {
  for_each = var.environments

  # checkov:skip=CKV_AWS_111: upstream controller policy; WAF/Shield association and the service-linked role target load balancers whose ARNs exist only after the controller creates them
  # checkov:skip=CKV_AWS_356: upstream controller policy; EC2/ELB Describe*, ACM/IAM certificate listing and WAF/Shield lookups run against resources not known in advance
  statement {
    sid       = "ServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid = "Describe"
    actions = [
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeAddresses",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeVpcs",
      "ec2:DescribeVpcPeeringConnections",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeTags",
      "ec2:GetCoipPoolUsage",
      "ec2:DescribeCoipPools",
      "ec2:GetSecurityGroupsForVpc",
      "ec2:DescribeIpamPools",
      "ec2:DescribeRouteTables",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeLoadBalancerAttributes",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeListenerCertificates",
      "elasticloadbalancing:DescribeSSLPolicies",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTrustStores",
      "elasticloadbalancing:DescribeListenerAttributes",
      "elasticloadbalancing:DescribeCapacityReservation",
    ]
    resources = ["*"]
  }

  statement {
    sid = "CertificatesAndShield"
    actions = [
      "cognito-idp:DescribeUserPoolClient",
      "acm:ListCertificates",
      "acm:DescribeCertificate",
      "iam:ListServerCertificates",
      "iam:GetServerCertificate",
      "waf-regional:GetWebACL",
      "waf-regional:GetWebACLForResource",
      "waf-regional:AssociateWebACL",
      "waf-regional:DisassociateWebACL",
      "wafv2:GetWebACL",
      "wafv2:GetWebACLForResource",
      "wafv2:AssociateWebACL",
      "wafv2:DisassociateWebACL",
      "shield:GetSubscriptionState",
      "shield:DescribeProtection",
      "shield:CreateProtection",
      "shield:DeleteProtection",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "RulesOfOwnSecurityGroups"
    actions   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*"]
    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.main.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  # The backend rules go on the cluster's own security group (EKS tags it aws:eks:cluster-name).
  statement {
    sid       = "RulesOfTheClusterSecurityGroup"
    actions   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*"]
    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.main.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/aws:eks:cluster-name"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid     = "CreateSecurityGroupInVpc"
    actions = ["ec2:CreateSecurityGroup"]
    resources = [
      "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*",
      aws_vpc.main.arn,
    ]
  }

  statement {
    sid       = "TagNewSecurityGroups"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid       = "ManageOwnSecurityGroups"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSecurityGroup"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid = "CreateLoadBalancers"
    actions = [
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
    ]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid = "ListenersAndRules"
    actions = [
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:CreateRule",
      "elasticloadbalancing:DeleteRule",
    ]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid     = "TagOwnLoadBalancers"
    actions = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/net/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/app/*/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid     = "TagListenersAndRules"
    actions = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/net/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/app/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/net/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/app/*/*/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid     = "TagNewListenersAndRules"
    actions = ["elasticloadbalancing:AddTags"]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/net/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/app/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/net/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/app/*/*/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateListener", "CreateRule"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid = "ModifyOwnLoadBalancers"
    actions = [
      "elasticloadbalancing:ModifyLoadBalancerAttributes",
      "elasticloadbalancing:SetIpAddressType",
      "elasticloadbalancing:SetSecurityGroups",
      "elasticloadbalancing:SetSubnets",
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:ModifyListenerAttributes",
      "elasticloadbalancing:ModifyCapacityReservation",
      "elasticloadbalancing:ModifyIpPools",
    ]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid     = "TagOnCreate"
    actions = ["elasticloadbalancing:AddTags"]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/net/*/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/app/*/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateTargetGroup", "CreateLoadBalancer"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid       = "Targets"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = ["arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }

  statement {
    sid = "ListenerSettings"
    actions = [
      "elasticloadbalancing:SetWebAcl",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:AddListenerCertificates",
      "elasticloadbalancing:RemoveListenerCertificates",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:SetRulePriorities",
    ]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:loadbalancer/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener/*",
      "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = [local.cluster_names[each.key]]
    }
  }
}

locals {
  # Inline policy per controller role; ebs-csi and vpc-cni use the AWS-managed policies below.
  pod_identity_inline_policies = {
    for key, role in local.pod_identity_roles : key => (
      role.controller == "aws-load-balancer-controller" ? data.aws_iam_policy_document.aws_load_balancer_controller[role.env].json :
      role.controller == "external-dns" ? data.aws_iam_policy_document.external_dns[role.env].json :
      role.controller == "cert-manager" ? data.aws_iam_policy_document.cert_manager[role.env].json :
      role.controller == "cluster-autoscaler" ? data.aws_iam_policy_document.cluster_autoscaler[role.env].json :
      null
    ) if !contains(["ebs-csi", "vpc-cni"], role.controller)
  }
}

resource "aws_iam_role_policy" "pod_identity" {
  for_each = local.pod_identity_inline_policies

  name   = "controller"
  role   = aws_iam_role.pod_identity[each.key].id
  policy = each.value
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  for_each = var.environments

  role = aws_iam_role.pod_identity["${each.key}:ebs-csi"].name
  # Only volumes and snapshots tagged ebs.csi.aws.com/cluster-name = the Pod Identity session tag
  # eks-cluster-name, i.e. this cluster's (AWS managed policy reference,
  # AmazonEBSCSIDriverEKSClusterScopedPolicy). ensure-cluster gives the driver its cluster
  # (controller.k8sTagClusterId) and a version that writes that tag (>= v1.58.0).
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEBSCSIDriverEKSClusterScopedPolicy"
}

resource "aws_iam_role_policy_attachment" "vpc_cni" {
  for_each = var.environments

  role       = aws_iam_role.pod_identity["${each.key}:vpc-cni"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKS_CNI_Policy"
}
