# One role per Lambda with exactly the IAM actions its crate declares.
#
# `local.lambda_permissions` is the one place the actions live here: function → action →
# resources. tests/infra (cargo test -p labflow-infra-tests) parses this file and checks, per
# function, that the set of actions equals the crate's `AWS_OPERATIONS` (plus its
# `IMPLIED_PERMISSIONS`, the permissions AWS checks on the caller's behalf, e.g. iam:PassRole for
# CreateCluster), and that `"*"` appears only for the actions in `local.lambda_unscoped_actions`.

locals {
  lambda_role_name = { for fn in keys(local.lambda_functions) : fn => "${local.prefix}-${fn}" }

  # ---- resources the statements name -------------------------------------------------------
  # Clusters by name pattern, so that no policy grows with the number of environments (a role's
  # inline policies may total 10,240 characters: IAM quotas page,
  # docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): every default name
  # "<prefix>-<env>" is covered by "<prefix>-*"; a custom cluster_name is listed as it is.
  cluster_name_list = distinct([
    for env, name in local.cluster_names : name == "${local.prefix}-${env}" ? "${local.prefix}-*" : name
  ])

  eks_clusters       = [for c in local.cluster_name_list : "${local.arn_eks}:cluster/${c}"]
  eks_nodegroups     = [for c in local.cluster_name_list : "${local.arn_eks}:nodegroup/${c}/*/*"]
  eks_addons         = [for c in local.cluster_name_list : "${local.arn_eks}:addon/${c}/*/*"]
  eks_pod_identities = [for c in local.cluster_name_list : "${local.arn_eks}:podidentityassociation/${c}/*"]
  eks_access_entries = [for c in local.cluster_name_list : "${local.arn_eks}:access-entry/${c}/*"]
  # TagResource applies to whichever of these ensure-cluster created.
  eks_everything = concat(local.eks_clusters, local.eks_nodegroups, local.eks_addons, local.eks_pod_identities, local.eks_access_entries)

  # Any environment name: an unconfigured one must read as ParameterNotFound (-> InvalidInput),
  # not AccessDenied (-> Transient), so the config path is not narrowed to var.environments.
  ssm_env_configs  = ["${local.arn_ssm}/labflow/environments/*"]
  ssm_env_path     = ["${local.arn_ssm}/labflow/environments"]
  ssm_kubeconfigs  = ["${local.arn_ssm}/labflow/environments/*/kubeconfig"]
  ssm_locks        = ["${local.arn_ssm}/labflow/locks/*"]
  ssm_locks_path   = ["${local.arn_ssm}/labflow/locks"]
  ssm_github_token = [aws_ssm_parameter.github_token.arn]
  # Any environment's, like the configs: a missing one must read as ParameterNotFound.
  ssm_flux_credentials = ["${local.arn_ssm}/labflow/flux-credentials/*"]
  # The current secret, and the previous one, which exists only while a rotation runs (README,
  # "Rotating the webhook secret"), so it is named, not declared.
  ssm_webhook_secret = [aws_ssm_parameter.webhook_secret.arn, "${local.arn_ssm}/labflow/github/webhook-secret-previous"]
  ssm_webhook_routes = [aws_ssm_parameter.webhook_routes.arn]

  sfn_state_machine = [local.state_machine_arn]
  sfn_executions    = [local.state_machine_execution]
  # The state machine's data (inputs, outputs, history) is encrypted with this key; its callers
  # need it too (local.states_kms_condition).
  states_key = [aws_kms_key.labflow.arn]

  # ensure-cluster passes the environments' cluster, node and controller roles: one pattern per
  # role kind (local.env_role_names), whatever the number of environments, and only to EKS
  # (local.lambda_action_conditions).
  passable_roles = [
    for suffix in distinct(values(local.env_role_suffixes)) : "${local.arn_iam}:role/${local.prefix}-*-${suffix}"
  ]

  zone_arns = [local.zone_arn]

  # What the clusters' controllers make in AWS, for teardown's sweep after the cluster (issue 19
  # item 9): any of these ARNs, but only with the cluster's tag (local.lambda_action_conditions).
  controller_load_balancers  = ["${local.arn_elb}:loadbalancer/app/*/*", "${local.arn_elb}:loadbalancer/net/*/*"]
  controller_target_groups   = ["${local.arn_elb}:targetgroup/*/*"]
  controller_security_groups = ["${local.arn_ec2}:security-group/*"]
  controller_volumes         = ["${local.arn_ec2}:volume/*"]

  # EKS creates its service-linked roles on an account's first CreateCluster / CreateNodegroup,
  # with the caller's iam:CreateServiceLinkedRole (EKS user guide, "Using roles for Amazon EKS
  # clusters" / "... node groups"); named here, not declared as resources, because an account
  # that used EKS before already has them and Terraform could not create them again.
  eks_service_linked_roles = [
    "${local.arn_iam}:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS",
    "${local.arn_iam}:role/aws-service-role/eks-nodegroup.amazonaws.com/AWSServiceRoleForAmazonEKSNodegroup",
  ]

  # ---- function → action → resources --------------------------------------------------------
  lambda_permissions = {
    "run-guard" = {
      "ssm:GetParameter"         = concat(local.ssm_env_configs, local.ssm_locks)
      "ssm:PutParameter"         = local.ssm_locks
      "ssm:DeleteParameter"      = local.ssm_locks
      "ssm:GetParametersByPath"  = concat(local.ssm_env_path, local.ssm_env_configs, local.ssm_locks_path)
      "states:DescribeExecution" = local.sfn_executions
      "states:StopExecution"     = local.sfn_executions
      "kms:Decrypt"              = local.states_key
    }

    "ensure-cluster" = {
      "ssm:GetParameter"                   = local.ssm_env_configs
      "eks:DescribeCluster"                = local.eks_clusters
      "eks:CreateCluster"                  = local.eks_clusters
      "eks:UpdateClusterConfig"            = local.eks_clusters
      "eks:UpdateClusterVersion"           = local.eks_clusters
      "eks:TagResource"                    = local.eks_everything
      "eks:DescribeNodegroup"              = local.eks_nodegroups
      "eks:CreateNodegroup"                = local.eks_clusters
      "eks:UpdateNodegroupConfig"          = local.eks_nodegroups
      "eks:UpdateNodegroupVersion"         = local.eks_nodegroups
      "eks:DescribeAddon"                  = local.eks_addons
      "eks:CreateAddon"                    = local.eks_clusters
      "eks:UpdateAddon"                    = local.eks_addons
      "eks:ListPodIdentityAssociations"    = local.eks_clusters
      "eks:DescribePodIdentityAssociation" = local.eks_pod_identities
      "eks:CreatePodIdentityAssociation"   = local.eks_clusters
      "eks:UpdatePodIdentityAssociation"   = local.eks_pod_identities
      "iam:PassRole"                       = local.passable_roles
      "iam:CreateServiceLinkedRole"        = local.eks_service_linked_roles
      "kms:DescribeKey"                    = [aws_kms_key.eks_secrets.arn]
      "kms:CreateGrant"                    = [aws_kms_key.eks_secrets.arn]
      # EKS reads the node groups' launch templates as the caller (see lambda_unscoped_actions).
      "ec2:DescribeLaunchTemplateVersions" = ["*"]
      # The EBS CSI driver's version when EKS's default is too old (see lambda_unscoped_actions).
      "eks:DescribeAddonVersions" = ["*"]
    }

    "cluster-access" = {
      "ssm:GetParameter"                 = local.ssm_env_configs
      "ssm:PutParameter"                 = local.ssm_kubeconfigs
      "eks:DescribeCluster"              = local.eks_clusters
      "eks:CreateAccessEntry"            = local.eks_clusters
      "eks:DescribeAccessEntry"          = local.eks_access_entries
      "eks:UpdateAccessEntry"            = local.eks_access_entries
      "eks:AssociateAccessPolicy"        = local.eks_access_entries
      "eks:ListAssociatedAccessPolicies" = local.eks_access_entries
      "eks:DisassociateAccessPolicy"     = local.eks_access_entries
      "eks:ListAccessEntries"            = local.eks_clusters
      "eks:DeleteAccessEntry"            = local.eks_access_entries
      "eks:TagResource"                  = local.eks_access_entries
      "ssm:AddTagsToResource"            = local.ssm_kubeconfigs
      "sts:GetCallerIdentity"            = ["*"]
    }

    "flux-bootstrap" = {
      # Each environment's read-only Flux credential, never the status token (issue 26 item 2).
      "ssm:GetParameter"    = concat(local.ssm_env_configs, local.ssm_flux_credentials)
      "eks:DescribeCluster" = local.eks_clusters
    }

    "health-check" = {
      "ssm:GetParameter"               = local.ssm_env_configs
      "eks:DescribeCluster"            = local.eks_clusters
      "route53:ListResourceRecordSets" = local.zone_arns
    }

    "teardown" = {
      "ssm:GetParameter"                 = local.ssm_env_configs
      "ssm:DeleteParameter"              = local.ssm_kubeconfigs
      "eks:DescribeCluster"              = local.eks_clusters
      "eks:DeleteCluster"                = local.eks_clusters
      "eks:ListNodegroups"               = local.eks_clusters
      "eks:DescribeNodegroup"            = local.eks_nodegroups
      "eks:DeleteNodegroup"              = local.eks_nodegroups
      "eks:ListAddons"                   = local.eks_clusters
      "eks:DescribeAddon"                = local.eks_addons
      "eks:DeleteAddon"                  = local.eks_addons
      "eks:ListAccessEntries"            = local.eks_clusters
      "eks:DeleteAccessEntry"            = local.eks_access_entries
      "eks:ListAssociatedAccessPolicies" = local.eks_access_entries
      "eks:CreateAccessEntry"            = local.eks_clusters
      "eks:AssociateAccessPolicy"        = local.eks_access_entries
      "eks:TagResource"                  = local.eks_access_entries
      "eks:ListPodIdentityAssociations"  = local.eks_clusters
      "eks:DeletePodIdentityAssociation" = local.eks_pod_identities
      "sts:GetCallerIdentity"            = ["*"]
      "route53:ListResourceRecordSets"   = local.zone_arns
      "route53:ChangeResourceRecordSets" = local.zone_arns
      # The sweep after the cluster (see lambda_unscoped_actions for the Describe* actions).
      "elasticloadbalancing:DescribeLoadBalancers" = ["*"]
      "elasticloadbalancing:DescribeTargetGroups"  = ["*"]
      "elasticloadbalancing:DescribeTags"          = ["*"]
      "elasticloadbalancing:DeleteLoadBalancer"    = local.controller_load_balancers
      "elasticloadbalancing:DeleteTargetGroup"     = local.controller_target_groups
      "ec2:DescribeSecurityGroups"                 = ["*"]
      "ec2:DeleteSecurityGroup"                    = local.controller_security_groups
      "ec2:DescribeVolumes"                        = ["*"]
      "ec2:DeleteVolume"                           = local.controller_volumes
    }

    "github-webhook" = {
      "ssm:GetParameter"         = concat(local.ssm_webhook_secret, local.ssm_webhook_routes, local.ssm_env_configs)
      "states:StartExecution"    = local.sfn_state_machine
      "states:DescribeExecution" = local.sfn_executions
      "kms:GenerateDataKey"      = local.states_key
      "kms:Decrypt"              = local.states_key
    }

    # The environment's config names the one repository its statuses may go to (issue 26 item 5).
    "github-status" = {
      "ssm:GetParameter" = concat(local.ssm_github_token, local.ssm_env_configs)
    }

    "execution-ended" = {
      "ssm:GetParameter"         = concat(local.ssm_locks, local.ssm_github_token, local.ssm_env_configs)
      "ssm:DeleteParameter"      = local.ssm_locks
      "states:DescribeExecution" = local.sfn_executions
      "kms:Decrypt"              = local.states_key
    }
  }

  # Calling an encrypted state machine's APIs needs its key, in the encryption context
  # aws:states:stateMachineArn = the state machine: StartExecution kms:GenerateDataKey and
  # kms:Decrypt, DescribeExecution / GetExecutionHistory / StopExecution kms:Decrypt (Step
  # Functions developer guide, "Data at rest encryption",
  # docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html; the per-API list from
  # the Step Functions team in aws-samples/aws-stepfunctions-examples#74). Used by the webhook,
  # run-guard, the nightly schedule and the operators' policy (iam_operator.tf).
  states_kms_condition = [{
    test     = "StringEquals"
    variable = "kms:EncryptionContext:aws:states:stateMachineArn"
    values   = [local.state_machine_arn]
  }]

  lb_controller_tag_condition = [{
    test     = "StringLike"
    variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
    values   = local.cluster_name_list
  }]

  # Conditions added wherever an action appears. iam:AWSServiceName: only EKS's two
  # service-linked roles. iam:PassedToService: CreateCluster and
  # CreateNodegroup pass roles to eks.amazonaws.com, CreatePodIdentityAssociation to
  # pods.eks.amazonaws.com (IAM docs, "Granting a user permissions to pass a role").
  lambda_action_conditions = {
    "iam:CreateServiceLinkedRole" = [{
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com"]
    }]
    # The key of the EKS secrets encryption: grants only for EKS itself (CreateCluster creates
    # one on the caller's behalf), never for a principal of the caller's choosing (issue 26 item 10).
    "kms:CreateGrant" = [{
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }]
    "iam:PassRole" = [{
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["eks.amazonaws.com", "pods.eks.amazonaws.com"]
    }]
    # teardown's sweep deletes only what the load balancer controller tagged with one of our
    # clusters (elbv2.k8s.aws/cluster: aws-load-balancer-controller pkg/deploy/tracking
    # provider.go) and the volumes the EBS CSI driver tagged KubernetesCluster=<cluster>
    # (aws-ebs-csi-driver pkg/driver/controller.go, with controller.k8sTagClusterId). The
    # Service Authorization Reference lists aws:ResourceTag for these four actions.
    "elasticloadbalancing:DeleteLoadBalancer" = local.lb_controller_tag_condition
    "elasticloadbalancing:DeleteTargetGroup"  = local.lb_controller_tag_condition
    "ec2:DeleteSecurityGroup"                 = local.lb_controller_tag_condition
    "ec2:DeleteVolume" = [{
      test     = "StringLike"
      variable = "aws:ResourceTag/KubernetesCluster"
      values   = local.cluster_name_list
    }]
    # Only the functions that call the state machine hold these, for its data only.
    "kms:GenerateDataKey" = local.states_kms_condition
    "kms:Decrypt"         = local.states_kms_condition
  }

  # The statements of each function's policy: its actions grouped by identical resources and
  # conditions, one statement per group — a policy grows with its distinct resource sets, not with
  # its actions (the size limit above). Built from local.lambda_permissions only.
  lambda_statements = {
    for fn, actions in local.lambda_permissions : fn => [
      for group in values({
        for action, resources in actions :
        jsonencode([sort(resources), lookup(local.lambda_action_conditions, action, [])]) => {
          action     = action
          resources  = sort(resources)
          conditions = lookup(local.lambda_action_conditions, action, [])
        }...
        }) : {
        actions    = sort([for entry in group : entry.action])
        resources  = group[0].resources
        conditions = group[0].conditions
      }
    ]
  }

  # Actions AWS offers no resource-level scoping for: the only ones whose resource is "*".
  lambda_unscoped_actions = {
    "sts:GetCallerIdentity"    = "GetCallerIdentity has no resource types and needs no permission; listed so the role states it"
    "xray:PutTraceSegments"    = "X-Ray has no resource types; needed for active tracing of the function"
    "xray:PutTelemetryRecords" = "X-Ray has no resource types; needed for active tracing of the function"
    # Service Authorization Reference, Amazon EC2: DescribeLaunchTemplateVersions lists no
    # resource types (like every EC2 Describe* action).
    "ec2:DescribeLaunchTemplateVersions" = "EC2 Describe* actions have no resource types; EKS reads the node groups' launch templates as the caller"
    # Service Authorization Reference, Amazon EKS: DescribeAddonVersions lists no resource types
    # (the add-on catalogue is not a resource of the account).
    "eks:DescribeAddonVersions" = "the EKS add-on catalogue has no resource types; ensure-cluster picks an EBS CSI driver that tags volumes with its cluster"
    # Service Authorization Reference, Elastic Load Balancing V2 and Amazon EC2: these Describe*
    # actions list no resource types; teardown filters by tag itself, and deletes only under a
    # tag condition.
    "elasticloadbalancing:DescribeLoadBalancers" = "ELB Describe* actions have no resource types; teardown finds the load balancers tagged for its cluster"
    "elasticloadbalancing:DescribeTargetGroups"  = "ELB Describe* actions have no resource types; teardown finds the target groups tagged for its cluster"
    "elasticloadbalancing:DescribeTags"          = "ELB DescribeTags has no resource types"
    "ec2:DescribeSecurityGroups"                 = "EC2 Describe* actions have no resource types; teardown finds the security groups tagged for its cluster"
    "ec2:DescribeVolumes"                        = "EC2 Describe* actions have no resource types; teardown finds the volumes tagged for its cluster"
  }

  # What the Lambda runtime itself needs, for every function (not calls made by the code):
  # its own log group, X-Ray segments, and decrypting its environment and labflow's SecureStrings
  # (each decrypt bound to its encryption context: data.aws_iam_policy_document.lambda).
  lambda_runtime_actions = {
    logs = ["logs:CreateLogStream", "logs:PutLogEvents"]
    xray = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    kms  = ["kms:Decrypt"]
  }
}

# The standard Lambda trust: Lambda does not document confused-deputy condition keys for
# execution roles, and a wrong condition would make every function fail to start.
data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  for_each = local.lambda_functions

  name               = local.lambda_role_name[each.key]
  description        = "labflow ${each.key}: exactly the actions its crate declares"
  assume_role_policy = data.aws_iam_policy_document.lambda_trust.json
}

data "aws_iam_policy_document" "lambda" {
  for_each = local.lambda_permissions

  # The function's own calls, grouped by resource set (local.lambda_statements).
  dynamic "statement" {
    for_each = local.lambda_statements[each.key]
    content {
      actions   = statement.value.actions
      resources = statement.value.resources
      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  statement {
    sid       = "RuntimeLogs"
    actions   = local.lambda_runtime_actions.logs
    resources = ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
  }

  statement {
    sid       = "RuntimeTracing"
    actions   = local.lambda_runtime_actions.xray
    resources = ["*"]
  }

  # The key also encrypts the state machine's data, the SecureStrings and every function's
  # environment: each decrypt is bound to what it is for, never the key as a whole (issue 26
  # item 10; issue 18 item 4). Lambda decrypts a function's environment with the function's role
  # in the encryption context aws:lambda:FunctionArn (Lambda developer guide, "Securing
  # environment variables"; CloudTrail shows the execution role calling Decrypt with it).
  statement {
    sid       = "RuntimeDecryptEnvironment"
    actions   = local.lambda_runtime_actions.kms
    resources = [aws_kms_key.labflow.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:lambda:FunctionArn"
      values   = ["${local.arn_lambda}:function:${local.prefix}-${each.key}"]
    }
  }

  # SecureStrings, read through SSM only, in Parameter Store's encryption context PARAMETER_ARN
  # ("How AWS Systems Manager Parameter Store uses AWS KMS"); which of them a function may read
  # at all is its ssm:GetParameter resources.
  statement {
    sid       = "RuntimeDecryptSecrets"
    actions   = local.lambda_runtime_actions.kms
    resources = [aws_kms_key.labflow.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = ["${local.arn_ssm}/labflow/github/*", "${local.arn_ssm}/labflow/flux-credentials/*"]
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.lambda_permissions

  name   = "labflow-${each.key}"
  role   = aws_iam_role.lambda[each.key].id
  policy = data.aws_iam_policy_document.lambda[each.key].json
}
