# One certificate per environment for <domain> and *.<domain> (ALB listeners: CERT_ARN in the
# GitOps tree), validated through DNS records in the zone.

resource "aws_acm_certificate" "env" {
  for_each = local.env_domains

  domain_name               = each.value
  subject_alternative_names = ["*.${each.value}"]
  validation_method         = "DNS"
  key_algorithm             = "EC_prime256v1"

  tags = {
    "labflow:environment" = each.key
  }

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # The apex and the wildcard share one validation record; key by record name to de-duplicate.
  acm_validation_records = merge([
    for env, cert in aws_acm_certificate.env : {
      for dvo in cert.domain_validation_options : "${env}:${dvo.resource_record_name}" => {
        name   = dvo.resource_record_name
        type   = dvo.resource_record_type
        record = dvo.resource_record_value
      }
    }
  ]...)
}

resource "aws_route53_record" "acm_validation" {
  for_each = local.acm_validation_records

  zone_id         = data.aws_route53_zone.main.zone_id
  name            = each.value.name
  type            = each.value.type
  ttl             = 300
  records         = [each.value.record]
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "env" {
  for_each = aws_acm_certificate.env

  certificate_arn = each.value.arn
  validation_record_fqdns = [
    for key, record in aws_route53_record.acm_validation : record.fqdn if startswith(key, "${each.key}:")
  ]
}
