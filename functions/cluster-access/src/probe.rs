//! Prove access: a fresh EKS token, the CA from DescribeCluster, `GET /version`.

use std::time::Duration;

use labflow_core::aws::AwsClients;
use labflow_core::StepError;

/// How long one `/version` attempt may take; an API server that does not answer in this time
/// counts as unreachable (the state machine waits and calls again).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The API server answered with this `gitVersion`.
    Answered { git_version: String },
    /// Not (yet) reachable or not (yet) accepting our identity: worth waiting for.
    NotYet { reason: String },
}

/// Call `/version` on `endpoint` trusting `ca_base64`, as the Lambda's own identity.
pub async fn version(
    aws: &AwsClients,
    cluster: &str,
    endpoint: &str,
    ca_base64: &str,
) -> Result<Probe, StepError> {
    let token = labflow_core::eks_token::generate_from_config(&aws.config, cluster).await?;
    let client = labflow_core::kube_client::client_for(endpoint, ca_base64, &token).await?;
    let answer = tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await;
    Ok(match answer {
        Err(_) => Probe::NotYet {
            reason: format!("the API server did not answer within {PROBE_TIMEOUT:?}"),
        },
        Ok(Ok(info)) => Probe::Answered {
            git_version: info.git_version,
        },
        Ok(Err(kube::Error::Api(status))) if status.code == 401 || status.code == 403 => {
            Probe::NotYet {
                reason: format!(
                    "the API server refuses our identity ({} {}): access entries may still be propagating",
                    status.code, status.reason
                ),
            }
        }
        Ok(Err(kube::Error::Api(status))) if status.code >= 500 || status.code == 429 => {
            Probe::NotYet {
                reason: format!("the API server answered {} {}", status.code, status.reason),
            }
        }
        Ok(Err(kube::Error::Api(status))) => {
            return Err(StepError::InvalidInput(format!(
                "GET /version on {endpoint} answered {} {}: {}",
                status.code, status.reason, status.message
            )))
        }
        // Connection refused, TLS or DNS trouble: the endpoint may not be reachable yet.
        Ok(Err(other)) => Probe::NotYet {
            reason: format!("the API server is not reachable: {other}"),
        },
    })
}
