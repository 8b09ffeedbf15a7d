# The public hosted zone already exists (it is registered outside labflow); environments live in
# it as <env>.<domain> unless they name their own domain inside the zone.
data "aws_route53_zone" "main" {
  name         = var.domain
  private_zone = false
}
