//! The kubeconfig published for people: endpoint + CA + an exec plugin (`aws eks get-token`),
//! so it holds no secret; stored as a plain String parameter in SSM, written only when changed.

use aws_sdk_ssm::types::{ParameterTier, ParameterType, Tag};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use serde::Serialize;

use crate::report::Change;

/// Standard-tier SSM parameters hold at most 4 KiB.
const STANDARD_TIER_LIMIT: usize = 4096;

/// `/labflow/environments/<env>/kubeconfig`
pub fn parameter_name(environment: &str) -> String {
    format!("/labflow/environments/{environment}/kubeconfig")
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a, ClusterEntry<'a>>>,
    contexts: Vec<Named<'a, ContextEntry<'a>>>,
    current_context: &'a str,
    preferences: std::collections::BTreeMap<String, String>,
    users: Vec<Named<'a, UserEntry<'a>>>,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct ClusterEntry<'a> {
    cluster: ClusterBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterBody<'a> {
    certificate_authority_data: &'a str,
    server: &'a str,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: ContextBody<'a>,
}

#[derive(Serialize)]
struct ContextBody<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct UserEntry<'a> {
    user: UserBody<'a>,
}

#[derive(Serialize)]
struct UserBody<'a> {
    exec: Exec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Exec<'a> {
    api_version: &'a str,
    command: &'a str,
    args: Vec<&'a str>,
    interactive_mode: &'a str,
}

/// Render the kubeconfig (YAML) for `cluster` in `region`.
pub fn render(
    environment: &str,
    cluster: &str,
    region: &str,
    endpoint: &str,
    ca_base64: &str,
) -> Result<String, StepError> {
    let name = format!("labflow-{environment}");
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: &name,
            value: ClusterEntry {
                cluster: ClusterBody {
                    certificate_authority_data: ca_base64.trim(),
                    server: endpoint,
                },
            },
        }],
        contexts: vec![Named {
            name: &name,
            value: ContextEntry {
                context: ContextBody {
                    cluster: &name,
                    user: &name,
                },
            },
        }],
        current_context: &name,
        preferences: Default::default(),
        users: vec![Named {
            name: &name,
            value: UserEntry {
                user: UserBody {
                    exec: Exec {
                        api_version: "client.authentication.k8s.io/v1beta1",
                        command: "aws",
                        args: vec![
                            "eks",
                            "get-token",
                            "--cluster-name",
                            cluster,
                            "--region",
                            region,
                        ],
                        interactive_mode: "IfAvailable",
                    },
                },
            },
        }],
    };
    serde_yaml_ng::to_string(&config)
        .map_err(|e| StepError::InvalidInput(format!("rendering the kubeconfig: {e}")))
}

/// Write `kubeconfig` to the environment's parameter unless it already holds exactly that.
pub async fn publish(
    ssm: &aws_sdk_ssm::Client,
    environment: &str,
    kubeconfig: &str,
    tags: &std::collections::HashMap<String, String>,
    changes: &mut Vec<Change>,
) -> Result<(), StepError> {
    let name = parameter_name(environment);
    let current = match ssm.get_parameter().name(&name).send().await {
        Ok(out) => out.parameter.and_then(|p| p.value),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            None
        }
        Err(err) => {
            return Err(classify_sdk_error(
                &format!("reading SSM parameter {name}"),
                err,
            ))
        }
    };
    if current.as_deref() == Some(kubeconfig) {
        return Ok(());
    }
    let tier = if kubeconfig.len() > STANDARD_TIER_LIMIT {
        ParameterTier::Advanced
    } else {
        ParameterTier::Standard
    };
    let mut request = ssm
        .put_parameter()
        .name(&name)
        .value(kubeconfig)
        .r#type(ParameterType::String)
        .tier(tier)
        .description("kubeconfig for people (exec plugin aws eks get-token; no secret inside)");
    // SSM refuses tags together with Overwrite: tag on creation, overwrite afterwards.
    if current.is_some() {
        request = request.overwrite(true);
    } else {
        for (k, v) in tags {
            request = request.tags(
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| StepError::InvalidInput(format!("tag {k}: {e}")))?,
            );
        }
    }
    request
        .send()
        .await
        .map_err(|e| classify_sdk_error(&format!("writing SSM parameter {name}"), e))?;
    changes.push(Change::new(
        format!("ssmParameter/{name}"),
        if current.is_some() {
            "update"
        } else {
            "create"
        },
        "kubeconfig (exec plugin aws eks get-token)",
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_uses_the_exec_plugin_and_holds_no_token() {
        let yaml = render(
            "lab",
            "labflow-lab",
            "eu-west-1",
            "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
            "LS0tLS1CRUdJTg==\n",
        )
        .expect("render");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("valid YAML");
        assert_eq!(doc["current-context"], "labflow-lab");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://ABC.gr7.eu-west-1.eks.amazonaws.com"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "LS0tLS1CRUdJTg=="
        );
        let exec = &doc["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], "aws");
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
        let args: Vec<&str> = exec["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(
            args,
            [
                "eks",
                "get-token",
                "--cluster-name",
                "labflow-lab",
                "--region",
                "eu-west-1"
            ]
        );
        assert!(!yaml.contains("token:") && !yaml.contains("k8s-aws-v1"));
    }
}
