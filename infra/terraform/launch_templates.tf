# Every node group starts from a launch template that allows instance metadata only through
# IMDSv2 tokens with a hop limit of 1: a pod (one hop further than the node) gets no answer, so it
# cannot take the node role's credentials (issue 26 item 4). Controllers that need AWS use Pod
# Identity, and the load balancer controller is given its region and VPC. The root volume is the
# template's (EKS refuses diskSize beside a launch template), encrypted.

locals {
  nodegroups = merge([
    for env, e in var.environments : {
      for ng in e.nodegroups : "${env}:${ng.name}" => merge(ng, { env = env })
    }
  ]...)
}

resource "aws_launch_template" "node" {
  for_each = local.nodegroups

  name        = "${local.prefix}-${replace(each.key, ":", "-")}"
  description = "labflow ${each.value.env} node group ${each.value.name}: IMDSv2 only, one hop"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # AL2023 EKS AMIs boot from /dev/xvda.
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = coalesce(each.value.disk_size_gib, 20)
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { "labflow:environment" = each.value.env, "labflow:managed-by" = "labflow" }
  }

  tags = { "labflow:environment" = each.value.env }
}
