# Two customer-managed keys:
# - eks_secrets: envelope encryption of Kubernetes Secrets in every lab cluster (ensure-cluster
#   passes it to CreateCluster; EKS takes a grant on it with the caller's kms:CreateGrant);
# - labflow: everything else labflow stores (log groups, SSM SecureStrings, Lambda environment
#   variables, state machine data, ECR, SNS, scheduler).

# In a key policy "Resource": "*" means this key only, and the account root must administer the key.
data "aws_iam_policy_document" "kms_eks_secrets" {
  # checkov:skip=CKV_AWS_109: key policy (resource = this key); the account root as key administrator is required by KMS
  # checkov:skip=CKV_AWS_111: key policy (resource = this key); the account root as key administrator is required by KMS
  # checkov:skip=CKV_AWS_356: key policy (resource = this key), not an identity policy
  # Key policies must name the account as administrator, or the key becomes unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["${local.arn_iam}:root"]
    }
  }
}

resource "aws_kms_key" "eks_secrets" {
  description             = "${local.prefix}: envelope encryption of Kubernetes Secrets in lab clusters"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_eks_secrets.json
}

resource "aws_kms_alias" "eks_secrets" {
  name          = "alias/${local.prefix}-eks-secrets"
  target_key_id = aws_kms_key.eks_secrets.key_id
}

# In a key policy "Resource": "*" means this key only, and the account root must administer the key.
data "aws_iam_policy_document" "kms_labflow" {
  # checkov:skip=CKV_AWS_109: key policy (resource = this key); the account root as key administrator is required by KMS
  # checkov:skip=CKV_AWS_111: key policy (resource = this key); the account root as key administrator is required by KMS
  # checkov:skip=CKV_AWS_356: key policy (resource = this key), not an identity policy
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["${local.arn_iam}:root"]
    }
  }

  # CloudWatch Logs encrypts labflow's log groups with this key.
  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  # SNS (alarm topic) is published to by CloudWatch alarms, which need the key for that topic.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "labflow" {
  description             = "${local.prefix}: logs, SSM secrets, Lambda environment, state machine, ECR, SNS"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_labflow.json
}

resource "aws_kms_alias" "labflow" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.labflow.key_id
}
