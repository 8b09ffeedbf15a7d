# SSM Parameter Store is labflow's one source of truth (DESIGN.md §4):
#   /labflow/environments/<env>             environment config (labflow-core EnvironmentConfig, JSON)
#   /labflow/webhook/routes                 branch -> environment routes (github-webhook)
#   /labflow/github/token                   SecureString, set out of band (README.md, "Deploy to AWS")
#   /labflow/flux-credentials/<env>         SecureString, set out of band: that environment's read-only
#                                           Git credential for Flux (issue 26 item 2)
#   /labflow/github/webhook-secret          SecureString, set out of band (README.md, "Deploy to AWS")
# Written by the functions at run time, not here: /labflow/locks/<env> (run-guard) and
# /labflow/environments/<env>/kubeconfig (cluster-access).

locals {
  cluster_names = { for env, e in var.environments : env => coalesce(e.cluster_name, "${local.prefix}-${env}") }
  env_domains   = { for env, e in var.environments : env => coalesce(e.domain, "${env}.${var.domain}") }

  # The functions that talk to the Kubernetes API: their roles get an access entry in every cluster.
  # The Lambdas that talk to Kubernetes and the access each gets (issue 26 item 7): flux-bootstrap
  # installs Flux and teardown removes workloads, so both are cluster admin; cluster-access only
  # proves /version answers (view policy); health-check reads the tree through the RBAC group
  # flux-bootstrap binds (labflow-core reader.rs), which reads no Secrets and writes nothing.
  lambda_kubernetes_access = {
    "cluster-access" = { policies = ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"], groups = [] }
    "flux-bootstrap" = { policies = ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"], groups = [] }
    "health-check"   = { policies = [], groups = ["labflow-health-check"] }
    "teardown"       = { policies = ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"], groups = [] }
  }

  private_subnet_ids = aws_subnet.private[*].id

  # camelCase, exactly labflow-core's EnvironmentConfig (deny_unknown_fields: a typo here fails the
  # first step with labflow.InvalidInput). tests/infra evaluates this expression and parses the
  # result with labflow-core.
  environment_configs = {
    for env, e in var.environments : env => {
      cluster = {
        name              = local.cluster_names[env]
        version           = e.kubernetes_version
        roleArn           = aws_iam_role.cluster[env].arn
        subnetIds         = local.private_subnet_ids
        availabilityZones = local.azs
        securityGroupIds  = []
        endpointAccess = {
          public      = e.endpoint_public
          private     = e.endpoint_private
          publicCidrs = e.endpoint_public_cidrs
        }
        kmsKeyArn          = aws_kms_key.eks_secrets.arn
        logging            = e.logging
        authenticationMode = e.authentication_mode
      }
      nodegroups = [
        for ng in e.nodegroups : {
          name          = ng.name
          nodeRoleArn   = aws_iam_role.node[env].arn
          subnetIds     = local.private_subnet_ids
          instanceTypes = ng.instance_types
          capacityType  = ng.capacity_type
          scaling = {
            min     = ng.min
            max     = ng.max
            desired = ng.desired
          }
          # The disk is the launch template's (launch_templates.tf).
          launchTemplate = {
            id      = aws_launch_template.node["${env}:${ng.name}"].id
            version = tostring(aws_launch_template.node["${env}:${ng.name}"].latest_version)
          }
          labels = ng.labels
          taints = [for t in ng.taints : { key = t.key, value = t.value, effect = t.effect }]
        }
      ]
      addons = [for a in e.addons : { name = a.name, version = a.version }]
      podIdentities = [
        for controller, c in local.pod_identity_controllers : {
          namespace      = c.namespace
          serviceAccount = c.service_account
          roleArn        = aws_iam_role.pod_identity["${env}:${controller}"].arn
        }
      ]
      accessPrincipals = concat(
        [for fn, a in local.lambda_kubernetes_access : { principalArn = aws_iam_role.lambda[fn].arn, policies = a.policies, kubernetesGroups = a.groups }],
        [for p in e.access_principals : { principalArn = p.principal_arn, policies = p.policies, kubernetesGroups = p.kubernetes_groups }],
      )
      flux = {
        version        = e.flux.version
        manifestUrl    = coalesce(e.flux.manifest_url, "https://github.com/fluxcd/flux2/releases/download/v${e.flux.version}/install.yaml")
        manifestSha256 = e.flux.manifest_sha256
        repository = {
          url        = e.flux.repository_url
          branch     = e.flux.branch
          path       = e.flux.path
          interval   = e.flux.interval
          knownHosts = e.flux.known_hosts
        }
      }
      dns = {
        hostedZoneId   = data.aws_route53_zone.main.zone_id
        domain         = local.env_domains[env]
        ownerId        = "${local.prefix}-${env}"
        certificateArn = aws_acm_certificate_validation.env[env].certificate_arn
      }
      healthDeadlineMinutes = e.health_deadline_minutes
      nightlyTeardown       = e.nightly_teardown
      protected             = e.protected
      tags                  = e.tags
    }
  }

  # github-webhook's format (functions/github-webhook/src/routes.rs): exactly one of branch/prefix.
  webhook_routes = {
    routes = concat(
      flatten([for env, e in var.environments : [for b in e.webhook_branches : { branch = b, prefix = null, environment = env }]]),
      [for p in var.webhook_prefix_routes : { branch = null, prefix = p, environment = "*" }],
    )
  }

  secret_placeholder = "unset: put the real value with aws ssm put-parameter --overwrite (README.md, Deploy to AWS, step 4)"
}

resource "aws_ssm_parameter" "environment" {
  # checkov:skip=CKV2_AWS_34: not secret (ARNs, sizes, URLs); labflow-core reads it without decryption
  for_each = local.environment_configs

  name        = "/labflow/environments/${each.key}"
  description = "labflow environment ${each.key} (labflow-core EnvironmentConfig)"
  type        = "String"
  # Configs with many node groups or principals can pass the 4 KB standard limit.
  tier  = "Intelligent-Tiering"
  value = jsonencode(each.value)
  tags  = { "labflow:environment" = each.key }
}

resource "aws_ssm_parameter" "webhook_routes" {
  # checkov:skip=CKV2_AWS_34: not secret (branch names); github-webhook reads it without decryption
  name        = "/labflow/webhook/routes"
  description = "labflow github-webhook: branch -> environment routes"
  type        = "String"
  value       = jsonencode(local.webhook_routes)
}

resource "aws_ssm_parameter" "github_token" {
  name        = "/labflow/github/token"
  description = "GitHub token for commit statuses (github-status, execution-ended); never given to a cluster. Set out of band."
  type        = "SecureString"
  key_id      = aws_kms_key.labflow.arn
  value       = local.secret_placeholder

  lifecycle {
    ignore_changes = [value]
  }
}

# Flux's own credential per environment, planted in that cluster (Secret flux-system/flux-system),
# where anything with cluster admin can read it: read-only and limited to the repository, so a lab
# cannot post commit statuses or reach another repository with it.
resource "aws_ssm_parameter" "flux_credential" {
  for_each = var.environments

  name        = "/labflow/flux-credentials/${each.key}"
  description = "Read-only Git credential Flux clones ${each.key}'s repository with (flux-bootstrap). Set out of band."
  type        = "SecureString"
  key_id      = aws_kms_key.labflow.arn
  value       = local.secret_placeholder
  tags        = { "labflow:environment" = each.key }

  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "webhook_secret" {
  name        = "/labflow/github/webhook-secret"
  description = "GitHub webhook secret (github-webhook HMAC). Set out of band."
  type        = "SecureString"
  key_id      = aws_kms_key.labflow.arn
  value       = local.secret_placeholder

  lifecycle {
    ignore_changes = [value]
  }
}
