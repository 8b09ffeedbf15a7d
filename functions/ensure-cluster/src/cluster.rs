//! The cluster itself: describe, create, tag, and one in-place update.

use std::collections::BTreeMap;

use aws_sdk_eks::types::{
    AuthenticationMode as EksAuthMode, Cluster, CreateAccessConfigRequest, EncryptionConfig,
    LogSetup, LogType as EksLogType, Logging, Provider, UpdateAccessConfigRequest,
    VpcConfigRequest,
};
use labflow_core::config::{ClusterConfig, EnvironmentConfig};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

use crate::aws_error::error_code;
use crate::plan::ClusterUpdate;
use crate::report::{Change, ClusterReport};

/// DescribeCluster; `None` when there is no such cluster.
pub async fn describe(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, StepError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out.cluster),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => Ok(None),
        Err(err) => Err(classify_sdk_error(
            &format!("describing EKS cluster {name}"),
            err,
        )),
    }
}

/// CreateCluster with everything the config says. `Ok(None)` when EKS says it already exists
/// (another call won the race): the next call observes it.
pub async fn create(
    eks: &aws_sdk_eks::Client,
    config: &EnvironmentConfig,
    tags: &std::collections::HashMap<String, String>,
) -> Result<Option<Cluster>, StepError> {
    let c = &config.cluster;
    let mut logging_types: Vec<EksLogType> = c
        .logging
        .iter()
        .map(|l| EksLogType::from(l.as_eks()))
        .collect();
    logging_types.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let logging = Logging::builder()
        .cluster_logging(
            LogSetup::builder()
                .set_types(Some(logging_types))
                .enabled(true)
                .build(),
        )
        .build();
    // `resources` is deprecated (EKS encrypts all API data with the key) but older API versions
    // require it; "secrets" is the one value both accept.
    #[allow(deprecated)]
    let encryption = EncryptionConfig::builder()
        .resources("secrets")
        .provider(Provider::builder().key_arn(&c.kms_key_arn).build())
        .build();
    let request = eks
        .create_cluster()
        .name(&c.name)
        .version(&c.version)
        .role_arn(&c.role_arn)
        .resources_vpc_config(vpc_request(c))
        .encryption_config(encryption)
        .logging(logging)
        .access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(EksAuthMode::from(c.authentication_mode.as_eks()))
                // cluster-access grants the automation role explicitly, like every other principal.
                .bootstrap_cluster_creator_admin_permissions(false)
                .build(),
        )
        .set_tags(Some(tags.clone()));
    match request.send().await {
        Ok(out) => Ok(out.cluster),
        Err(err) if error_code(&err) == Some("ResourceInUseException") => Ok(None),
        Err(err) => Err(classify_sdk_error(
            &format!("creating EKS cluster {}", c.name),
            err,
        )),
    }
}

fn vpc_request(c: &ClusterConfig) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_subnet_ids(Some(c.subnet_ids.clone()))
        .set_security_group_ids(Some(c.security_group_ids.clone()))
        .endpoint_public_access(c.endpoint_access.public)
        .endpoint_private_access(c.endpoint_access.private)
        .set_public_access_cidrs(
            (c.endpoint_access.public && !c.endpoint_access.public_cidrs.is_empty())
                .then(|| c.endpoint_access.public_cidrs.clone()),
        )
        .build()
}

/// Make one update. `Ok(false)` when EKS says another update is still in progress.
pub async fn update(
    eks: &aws_sdk_eks::Client,
    name: &str,
    update: &ClusterUpdate,
) -> Result<bool, StepError> {
    let context = format!("updating EKS cluster {name} ({})", update.describe());
    let result = match update {
        ClusterUpdate::Version { to } => eks
            .update_cluster_version()
            .name(name)
            .version(to)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                (
                    error_code(&e).map(str::to_string),
                    classify_sdk_error(&context, e),
                )
            }),
        other => {
            let mut request = eks.update_cluster_config().name(name);
            request = match other {
                ClusterUpdate::AccessConfig { mode } => request.access_config(
                    UpdateAccessConfigRequest::builder()
                        .authentication_mode(EksAuthMode::from(mode.as_str()))
                        .build(),
                ),
                ClusterUpdate::EndpointAccess {
                    public,
                    private,
                    public_cidrs,
                } => request.resources_vpc_config(
                    VpcConfigRequest::builder()
                        .endpoint_public_access(*public)
                        .endpoint_private_access(*private)
                        .set_public_access_cidrs(
                            (!public_cidrs.is_empty()).then(|| public_cidrs.clone()),
                        )
                        .build(),
                ),
                ClusterUpdate::Logging { enable, disable } => {
                    let mut logging = Logging::builder();
                    for (types, enabled) in [(enable, true), (disable, false)] {
                        if !types.is_empty() {
                            logging = logging.cluster_logging(
                                LogSetup::builder()
                                    .set_types(Some(
                                        types
                                            .iter()
                                            .map(|t| EksLogType::from(t.as_str()))
                                            .collect(),
                                    ))
                                    .enabled(enabled)
                                    .build(),
                            );
                        }
                    }
                    request.logging(logging.build())
                }
                ClusterUpdate::Version { .. } => request,
            };
            request.send().await.map(|_| ()).map_err(|e| {
                (
                    error_code(&e).map(str::to_string),
                    classify_sdk_error(&context, e),
                )
            })
        }
    };
    match result {
        Ok(()) => Ok(true),
        // "An update is already in progress": wait for it like for any UPDATING cluster.
        Err((Some(code), _)) if code == "ResourceInUseException" => Ok(false),
        Err((_, err)) => Err(err),
    }
}

/// TagResource with the tags a resource lacks; records the change.
pub async fn tag(
    eks: &aws_sdk_eks::Client,
    resource: &str,
    arn: &str,
    missing: BTreeMap<String, String>,
    changes: &mut Vec<Change>,
) -> Result<(), StepError> {
    if missing.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = missing.keys().map(String::as_str).collect();
    let detail = format!("set tags [{}]", keys.join(", "));
    eks.tag_resource()
        .resource_arn(arn)
        .set_tags(Some(missing.into_iter().collect()))
        .send()
        .await
        .map_err(|e| classify_sdk_error(&format!("tagging {resource}"), e))?;
    changes.push(Change::new(resource, "tag", detail));
    Ok(())
}

/// The report's view of a cluster.
pub fn report(name: &str, cluster: Option<&Cluster>) -> ClusterReport {
    ClusterReport {
        name: name.to_string(),
        arn: cluster.and_then(|c| c.arn()).map(str::to_string),
        status: cluster
            .and_then(|c| c.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "CREATING".to_string()),
        endpoint: cluster
            .and_then(|c| c.endpoint())
            .filter(|e| !e.is_empty())
            .map(str::to_string),
        version: cluster.and_then(|c| c.version()).map(str::to_string),
    }
}
