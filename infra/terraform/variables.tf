variable "aws_region" {
  description = "Region for everything labflow deploys (the Lambdas read it from AWS_REGION)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name (Lambdas, roles, state machine, VPC)."
  type        = string
  default     = "labflow"

  validation {
    # 12 so that "<prefix>-<environment>-<role suffix>" fits IAM's 64-character role names with
    # the longest environment name (40) and role suffix (10); see local.env_role_names.
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix: 2-12 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource Terraform creates."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Lambdas
# ---------------------------------------------------------------------------------------------

variable "lambda_architecture" {
  description = "Instruction set of the Lambda zips; must match `make package` (LABFLOW_ARCH)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_dist_dir" {
  description = "Directory with <function>.zip as written by `make package`; relative paths are relative to this module."
  type        = string
  default     = "../../dist/lambda"
}

variable "log_retention_days" {
  description = "Retention of the Lambda, state machine and flow log groups."
  type        = number
  default     = 365
}

variable "rust_log" {
  description = "RUST_LOG of every function (tracing filter)."
  type        = string
  default     = "info"
}

variable "github_api_url" {
  description = "GitHub API base URL for github-status (GitHub Enterprise); empty = https://api.github.com."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# Network and DNS
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC the lab clusters run in."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones (names) the subnets span, e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]. Named explicitly so the network never changes when AWS adds a zone."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 8
    error_message = "EKS needs subnets in at least two availability zones (at most 8 fit the /20 layout)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheap, for labs) instead of one per zone."
  type        = bool
  default     = true
}

variable "domain" {
  description = "Name of the existing public Route53 hosted zone (e.g. example.com). Each environment's apps answer on <app>.<env>.<domain> unless the environment sets its own domain."
  type        = string
}

# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

variable "nightly_teardown_enabled" {
  description = "Start `teardown-all` every night (it tears down the environments with nightly_teardown = true)."
  type        = bool
  default     = true
}

variable "nightly_teardown_cron" {
  description = "EventBridge Scheduler cron expression (without cron(...)) for the nightly teardown-all."
  type        = string
  default     = "0 20 ? * MON-FRI *"
}

variable "nightly_teardown_timezone" {
  description = "IANA time zone of nightly_teardown_cron."
  type        = string
  default     = "Europe/Berlin"
}

variable "alarm_email" {
  description = "Address subscribed to the failed-execution alarm topic; empty = no subscription."
  type        = string
  default     = ""
}

variable "ecr_repositories" {
  description = "ECR repositories for the lab's own application images."
  type        = list(string)
  default     = ["apps"]
}

variable "ecr_untagged_expire_days" {
  description = "Untagged images older than this are expired."
  type        = number
  default     = 14
}

variable "ecr_keep_tagged_images" {
  description = "How many tagged images each repository keeps."
  type        = number
  default     = 50
}

# ---------------------------------------------------------------------------------------------
# Environments: each one becomes /labflow/environments/<name> (labflow-core EnvironmentConfig)
# ---------------------------------------------------------------------------------------------

variable "environments" {
  description = "Lab environments. The key is the environment name (1-40 lower-case letters, digits or '-'). Written to SSM as labflow-core's EnvironmentConfig JSON; IAM roles, subnets, KMS key, zone and certificate are filled in by Terraform."
  type = map(object({
    cluster_name          = optional(string)         # default "<name_prefix>-<env>"
    kubernetes_version    = optional(string, "1.35") # in EKS standard support until 2027-03-27
    endpoint_public       = optional(bool, true)
    endpoint_private      = optional(bool, true)
    endpoint_public_cidrs = optional(list(string), [])
    logging               = optional(list(string), ["api", "audit", "authenticator"])
    authentication_mode   = optional(string, "API") # API_AND_CONFIG_MAP keeps aws-auth as a second door

    nodegroups = list(object({
      name           = string
      instance_types = list(string)
      capacity_type  = optional(string, "ON_DEMAND")
      min            = number
      max            = number
      desired        = number
      disk_size_gib  = optional(number)
      labels         = optional(map(string), {})
      taints = optional(list(object({
        key    = string
        value  = optional(string)
        effect = string
      })), [])
    }))

    addons = optional(list(object({
      name    = string
      version = optional(string)
      })), [
      { name = "vpc-cni" },
      { name = "coredns" },
      { name = "kube-proxy" },
      { name = "eks-pod-identity-agent" },
      { name = "aws-ebs-csi-driver" },
    ])

    # People and roles that get an access entry (cluster admin when neither policies nor
    # kubernetes_groups are given). The roles of the Lambdas that talk to Kubernetes are always
    # added by Terraform, each with only the access it needs (ssm.tf).
    access_principals = optional(list(object({
      principal_arn     = string
      policies          = optional(list(string), [])
      kubernetes_groups = optional(list(string), [])
    })), [])

    # Pin with `labflow flux pin <version> --tfvars <file>`: it downloads install.yaml and writes
    # version, manifest_url and manifest_sha256 here.
    flux = object({
      version         = string
      manifest_url    = optional(string) # default: the release's install.yaml on GitHub
      manifest_sha256 = string
      repository_url  = string
      branch          = optional(string, "main")
      path            = optional(string) # default ./infra/gitops/clusters/<env>
      interval        = optional(string, "1m")
      # For an ssh:// repository_url not on github.com: the host's keys as known_hosts lines
      # (github.com's published keys are built in). Flux's credential itself is a SecureString,
      # /labflow/flux-credentials/<env>, set out of band (README.md, Deploy to AWS, step 4).
      known_hosts = optional(string)
    })

    domain                  = optional(string) # default "<env>.<domain>"
    health_deadline_minutes = optional(number, 30)
    nightly_teardown        = optional(bool, true)
    protected               = optional(bool, false)
    tags                    = optional(map(string), {})

    # Branches whose pushes sync this environment (github-webhook routes).
    webhook_branches = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for name in keys(var.environments) : can(regex("^[a-z][a-z0-9-]{0,39}$", name))])
    error_message = "Environment names: 1-40 lower-case letters, digits or '-', starting with a letter."
  }

  validation {
    condition = alltrue(flatten([for env in values(var.environments) : [
      for ng in env.nodegroups : contains(["ON_DEMAND", "SPOT"], ng.capacity_type) && ng.min <= ng.desired && ng.desired <= ng.max
    ]]))
    error_message = "Node groups: capacity_type ON_DEMAND or SPOT, and min <= desired <= max."
  }

  # The Lambdas refuse the same at run time (labflow-core config validation); refusing at plan
  # time keeps a placeholder from reaching SSM.
  validation {
    condition = alltrue([for env in values(var.environments) :
      can(regex("^[0-9a-f]{64}$", env.flux.manifest_sha256)) && !can(regex("^0+$", env.flux.manifest_sha256))
    ])
    error_message = "flux.manifest_sha256 must be the sha256 (64 lower-case hex digits, not the all-zero placeholder) of the Flux release's install.yaml: `labflow flux pin <version> --tfvars <this file>` downloads it and writes it."
  }

  # A cluster in AWS cannot reach a loopback or plain-http URL (only the local cloud can).
  validation {
    condition = alltrue([for env in values(var.environments) :
      env.flux.manifest_url == null || can(regex("^https://", coalesce(env.flux.manifest_url, "https://")))
    ])
    error_message = "flux.manifest_url must be an https:// URL a cluster in AWS can reach; leave it unset for the release's install.yaml on GitHub."
  }
}

variable "webhook_prefix_routes" {
  description = "Prefix routes for github-webhook: a push to <prefix><env> syncs environment <env>, deleting the branch tears it down."
  type        = list(string)
  default     = []
}

variable "webhook_reserved_concurrency" {
  description = "Concurrency reserved for (and capping) github-webhook, so a flood on its public URL cannot throttle the lifecycle's steps. Lambda keeps at least 100 of the account's concurrency unreserved: an account whose quota is below 100 + this value must raise the quota, or set -1 (no reservation, no cap)."
  type        = number
  default     = 10

  validation {
    condition     = var.webhook_reserved_concurrency == -1 || (var.webhook_reserved_concurrency >= 1 && var.webhook_reserved_concurrency == floor(var.webhook_reserved_concurrency))
    error_message = "webhook_reserved_concurrency must be a whole number >= 1, or -1 for no reservation (0 would throttle every delivery)."
  }
}
