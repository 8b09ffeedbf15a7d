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

# One validation record per certificate, keyed by environment (known at plan time). ACM's record
# names and values exist only after the certificate is requested, so they may appear in the
# records' values but never in their keys ("Invalid for_each argument" otherwise). ACM gives the
# apex and its wildcard the same CNAME (keying by record name made "Duplicate object key" in a
# real plan; docs.aws.amazon.com/acm/latest/userguide/dns-validation.html), so the apex's option
# is the certificate's one record. allow_overwrite as in the provider's
# aws_acm_certificate_validation example: a record left by an earlier certificate of the same
# domain is taken over instead of failing the apply.
locals {
  acm_validation_options = {
    for env, domain in local.env_domains : env => one([
      for dvo in aws_acm_certificate.env[env].domain_validation_options : dvo if dvo.domain_name == domain
    ])
  }
}

resource "aws_route53_record" "acm_validation" {
  for_each = local.env_domains

  zone_id         = data.aws_route53_zone.main.zone_id
  name            = local.acm_validation_options[each.key].resource_record_name
  type            = local.acm_validation_options[each.key].resource_record_type
  ttl             = 300
  records         = [local.acm_validation_options[each.key].resource_record_value]
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "env" {
  for_each = aws_acm_certificate.env

  certificate_arn         = each.value.arn
  validation_record_fqdns = [aws_route53_record.acm_validation[each.key].fqdn]
}
