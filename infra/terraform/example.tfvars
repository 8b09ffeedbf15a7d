# The seed's lab environment. Copy, set `domain` (an existing public Route53 zone) and the Flux
# repository, then: terraform apply -var-file=example.tfvars

aws_region = "eu-west-1"
domain     = "example.com" # the lab answers on <app>.lab.example.com

availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

environments = {
  lab = {
    kubernetes_version = "1.35"

    nodegroups = [
      {
        name           = "spot-general"
        instance_types = ["m6a.xlarge", "m6i.xlarge", "m5a.xlarge", "m5.xlarge"]
        capacity_type  = "SPOT"
        min            = 1
        max            = 4
        desired        = 2
        labels         = { "labflow.dev/pool" = "general" }
      },
    ]

    access_principals = [
      # { principal_arn = "arn:aws:iam::123456789012:role/platform-engineers" },
    ]

    flux = {
      # A placeholder until pinned: `labflow flux pin 2.9.4 --tfvars my.tfvars` downloads the
      # release's install.yaml and writes its URL and sha256 here (plan refuses the zeros).
      version         = "2.9.4"
      manifest_url    = "https://github.com/fluxcd/flux2/releases/download/v2.9.4/install.yaml"
      manifest_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
      repository_url  = "https://github.com/example/labflow"
      branch          = "main"
    }

    health_deadline_minutes = 30
    nightly_teardown        = true
    protected               = false
    tags                    = { team = "platform", cost-center = "labs" }

    webhook_branches = ["main"]
  }
}

nightly_teardown_cron     = "0 20 ? * MON-FRI *"
nightly_teardown_timezone = "Europe/Berlin"
