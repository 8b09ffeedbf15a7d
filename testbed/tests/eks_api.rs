//! The EKS simulator through `aws-sdk-eks` over HTTP: every operation it implements, the status
//! transitions with non-zero delays, and the error codes of the real API.

mod eks_support;
mod wait_support;

use anyhow::Context as _;
use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AddonPodIdentityAssociations, AddonStatus, AuthenticationMode,
    ClusterStatus, CreateAccessConfigRequest, LogSetup, LogType, Logging, NodegroupScalingConfig,
    NodegroupStatus, UpdateAccessConfigRequest, UpdateStatus, VpcConfigRequest,
};
use eks_support::{code, create_cluster, eks_client, unique, wait_for, wait_gone, wait_status};
use eks_support::{NODE_ROLE, ROLE};
use labflow_testbed::eks::{EksDelays, EksOptions, EksServer};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(200);
const WITHIN: Duration = Duration::from_secs(10);
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// A simulator where every transition takes 200 ms, and a client on it.
async fn start() -> anyhow::Result<(EksServer, aws_sdk_eks::Client)> {
    let options = EksOptions {
        delays: EksDelays::uniform(DELAY, DELAY, DELAY),
        ..Default::default()
    };
    let creds = options.credentials.clone();
    let server = EksServer::start(options).await?;
    let eks = eks_client(server.endpoint(), (&creds.0, &creds.1));
    Ok((server, eks))
}

/// Creates a cluster and waits for ACTIVE.
async fn active_cluster(eks: &aws_sdk_eks::Client, prefix: &str) -> anyhow::Result<String> {
    let name = unique(prefix);
    create_cluster(eks, &name).send().await?;
    wait_status(eks, &name, "ACTIVE", WITHIN).await?;
    Ok(name)
}

async fn update_status(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    id: &str,
    nodegroup: Option<&str>,
    addon: Option<&str>,
) -> anyhow::Result<UpdateStatus> {
    let out = eks
        .describe_update()
        .name(cluster)
        .update_id(id)
        .set_nodegroup_name(nodegroup.map(str::to_string))
        .set_addon_name(addon.map(str::to_string))
        .send()
        .await?;
    out.update
        .and_then(|u| u.status)
        .context("update without status")
}

#[tokio::test]
async fn cluster_create_describe_list_delete_with_delays() -> anyhow::Result<()> {
    let (server, eks) = start().await?;
    let name = unique("lifecycle");
    let started = Instant::now();
    let created = create_cluster(&eks, &name)
        .version("1.33")
        .tags("labflow:environment", "lifecycle")
        .send()
        .await?;
    let cluster = created.cluster.context("no cluster in the create answer")?;
    assert_eq!(cluster.status, Some(ClusterStatus::Creating));
    assert_eq!(cluster.version.as_deref(), Some("1.33"));
    assert!(
        cluster.endpoint.is_none(),
        "a CREATING cluster has no endpoint yet"
    );
    // accessConfig is echoed as sent.
    let access = cluster.access_config.context("no accessConfig")?;
    assert_eq!(access.authentication_mode, Some(AuthenticationMode::Api));
    assert_eq!(
        access.bootstrap_cluster_creator_admin_permissions,
        Some(false)
    );

    wait_status(&eks, &name, "ACTIVE", WITHIN).await?;
    assert!(
        started.elapsed() >= DELAY,
        "ACTIVE after {:?}, before the configured {DELAY:?}",
        started.elapsed()
    );
    let cluster = eks
        .describe_cluster()
        .name(&name)
        .send()
        .await?
        .cluster
        .context("no cluster")?;
    let endpoint = cluster
        .endpoint
        .context("an ACTIVE cluster has an endpoint")?;
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let ca = cluster
        .certificate_authority
        .and_then(|c| c.data)
        .context("an ACTIVE cluster has a CA")?;
    let pem = String::from_utf8(base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &ca,
    )?)?;
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(
        cluster.access_config.and_then(|a| a.authentication_mode),
        Some(AuthenticationMode::Api)
    );
    assert!(server.sim().kubesim(&name).await.is_some());

    let listed = eks.list_clusters().send().await?;
    assert!(listed.clusters().contains(&name), "{listed:?}");
    // Pagination: one per page still finds it.
    let mut names = Vec::new();
    let mut pages = eks.list_clusters().max_results(1).into_paginator().send();
    while let Some(page) = pages.next().await {
        names.extend(page?.clusters.unwrap_or_default());
    }
    assert!(names.contains(&name));

    let delete_started = Instant::now();
    let deleting = eks.delete_cluster().name(&name).send().await?;
    assert_eq!(
        deleting.cluster.and_then(|c| c.status),
        Some(ClusterStatus::Deleting)
    );
    let again = eks.delete_cluster().name(&name).send().await;
    assert_eq!(code(again)?, "ResourceInUseException");
    wait_gone(&eks, &name, WITHIN).await?;
    assert!(delete_started.elapsed() >= DELAY);
    assert!(server.sim().kubesim(&name).await.is_none());
    assert!(!eks.list_clusters().send().await?.clusters().contains(&name));
    let gone = eks.delete_cluster().name(&name).send().await;
    assert_eq!(code(gone)?, "ResourceNotFoundException");
    Ok(())
}

#[tokio::test]
async fn cluster_errors_match_the_real_api() -> anyhow::Result<()> {
    let (_server, eks) = start().await?;
    let missing = eks.describe_cluster().name("no-such-cluster").send().await;
    assert_eq!(code(missing)?, "ResourceNotFoundException");

    let name = unique("errors");
    create_cluster(&eks, &name).send().await?;
    let duplicate = create_cluster(&eks, &name).send().await;
    assert_eq!(code(duplicate)?, "ResourceInUseException");

    let bad_version = create_cluster(&eks, &unique("v"))
        .version("1.12")
        .send()
        .await;
    assert_eq!(code(bad_version)?, "InvalidParameterException");
    // Past the end of extended support EKS creates no such cluster (1.31 ended 2026-11-26).
    for ended in ["1.30", "1.31"] {
        let refused = create_cluster(&eks, &unique("v"))
            .version(ended)
            .send()
            .await;
        assert_eq!(code(refused)?, "InvalidParameterException", "{ended}");
    }

    let one_subnet = create_cluster(&eks, &unique("subnet"))
        .resources_vpc_config(VpcConfigRequest::builder().subnet_ids("subnet-a").build())
        .send()
        .await;
    assert_eq!(code(one_subnet)?, "InvalidParameterException");

    // CONFIG_MAP requires the creator's admin permissions (the API documents this pairing).
    let config_map_without_admin = create_cluster(&eks, &unique("cm"))
        .access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::ConfigMap)
                .bootstrap_cluster_creator_admin_permissions(false)
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(config_map_without_admin)?, "InvalidParameterException");

    let bad_role = eks
        .create_cluster()
        .name(unique("role"))
        .role_arn("not-an-arn")
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("a")
                .subnet_ids("b")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad_role)?, "InvalidParameterException");

    Ok(())
}

#[tokio::test]
async fn cluster_updates_and_tags() -> anyhow::Result<()> {
    let (server, eks) = start().await?;
    let name = unique("updates");
    create_cluster(&eks, &name)
        .version("1.32")
        .tags("team", "platform")
        .tags("stage", "lab")
        .send()
        .await?;
    wait_status(&eks, &name, "ACTIVE", WITHIN).await?;

    // Logging: UPDATING with an InProgress update, then ACTIVE and Successful.
    let logging = Logging::builder()
        .cluster_logging(
            LogSetup::builder()
                .types(LogType::Api)
                .types(LogType::Audit)
                .enabled(true)
                .build(),
        )
        .build();
    let started = Instant::now();
    let update = eks
        .update_cluster_config()
        .name(&name)
        .logging(logging.clone())
        .send()
        .await?
        .update
        .context("no update")?;
    let id = update.id.context("update without id")?;
    assert_eq!(update.status, Some(UpdateStatus::InProgress));
    wait_status(&eks, &name, "ACTIVE", WITHIN).await?;
    assert!(
        started.elapsed() >= DELAY,
        "UPDATING ended after {:?}",
        started.elapsed()
    );
    assert_eq!(
        update_status(&eks, &name, &id, None, None).await?,
        UpdateStatus::Successful
    );
    let ids = eks.list_updates().name(&name).send().await?;
    assert!(ids.update_ids().contains(&id), "{ids:?}");
    let unknown = eks
        .describe_update()
        .name(&name)
        .update_id("no-such-update")
        .send()
        .await;
    assert_eq!(code(unknown)?, "ResourceNotFoundException");
    let cluster = eks.describe_cluster().name(&name).send().await?.cluster;
    let enabled: Vec<LogType> = cluster
        .and_then(|c| c.logging)
        .map(|l| {
            l.cluster_logging
                .into_iter()
                .flatten()
                .filter(|s| s.enabled == Some(true))
                .flat_map(|s| s.types.unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(enabled, vec![LogType::Api, LogType::Audit]);
    // The same logging again: nothing to change.
    let same = eks
        .update_cluster_config()
        .name(&name)
        .logging(logging)
        .send()
        .await;
    assert_eq!(code(same)?, "InvalidParameterException");

    // No second update while one is in progress.
    server
        .sim()
        .force_cluster_status(&name, "UPDATING", &[])
        .await?;
    let busy = eks
        .update_cluster_version()
        .name(&name)
        .version("1.33")
        .send()
        .await;
    assert_eq!(code(busy)?, "ResourceInUseException");
    server
        .sim()
        .force_cluster_status(&name, "ACTIVE", &[])
        .await?;

    // Authentication mode: API is final, no way back.
    let back = eks
        .update_cluster_config()
        .name(&name)
        .access_config(
            UpdateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(back)?, "InvalidParameterException");

    // Versions: one minor at a time.
    let skip = eks
        .update_cluster_version()
        .name(&name)
        .version("1.34")
        .send()
        .await;
    assert_eq!(code(skip)?, "InvalidParameterException");
    let upgrade = eks
        .update_cluster_version()
        .name(&name)
        .version("1.33")
        .send()
        .await?
        .update
        .context("no update")?;
    wait_status(&eks, &name, "ACTIVE", WITHIN).await?;
    let upgrade_id = upgrade.id.context("no id")?;
    assert_eq!(
        update_status(&eks, &name, &upgrade_id, None, None).await?,
        UpdateStatus::Successful
    );
    let version = eks
        .describe_cluster()
        .name(&name)
        .send()
        .await?
        .cluster
        .and_then(|c| c.version);
    assert_eq!(version.as_deref(), Some("1.33"));

    // Tags on the cluster ARN.
    let arn = eks
        .describe_cluster()
        .name(&name)
        .send()
        .await?
        .cluster
        .and_then(|c| c.arn)
        .context("no arn")?;
    eks.tag_resource()
        .resource_arn(&arn)
        .tags("owner", "tests")
        .send()
        .await?;
    eks.untag_resource()
        .resource_arn(&arn)
        .tag_keys("stage")
        .send()
        .await?;
    let tags = eks
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await?
        .tags
        .unwrap_or_default();
    let mut keys: Vec<&str> = tags.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["owner", "team"]);
    assert_eq!(tags.get("team").map(String::as_str), Some("platform"));
    // Tag operations use the generic REST errors.
    let reserved = eks
        .tag_resource()
        .resource_arn(&arn)
        .tags("aws:reserved", "x")
        .send()
        .await;
    assert_eq!(code(reserved)?, "BadRequestException");
    let unknown_arn = format!("{arn}-gone");
    let unknown = eks
        .list_tags_for_resource()
        .resource_arn(&unknown_arn)
        .send()
        .await;
    assert_eq!(code(unknown)?, "NotFoundException");
    Ok(())
}

#[tokio::test]
async fn nodegroups_block_cluster_deletion_until_gone() -> anyhow::Result<()> {
    let (server, eks) = start().await?;
    let name = unique("nodes");
    create_cluster(&eks, &name).send().await?;
    // Pin the cluster in CREATING: node groups need an ACTIVE cluster.
    server
        .sim()
        .force_cluster_status(&name, "CREATING", &[])
        .await?;
    let early = eks
        .create_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .subnets("subnet-a")
        .node_role(NODE_ROLE)
        .send()
        .await;
    assert_eq!(code(early)?, "InvalidRequestException");
    server
        .sim()
        .force_cluster_status(&name, "ACTIVE", &[])
        .await?;

    // A launch template carries the disk: diskSize beside it is refused, as by EKS.
    let template = || {
        aws_sdk_eks::types::LaunchTemplateSpecification::builder()
            .id("lt-0123456789abcdef0")
            .version("1")
            .build()
    };
    let both = eks
        .create_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("templated")
        .subnets("subnet-a")
        .node_role(NODE_ROLE)
        .launch_template(template())
        .disk_size(50)
        .send()
        .await;
    assert_eq!(code(both)?, "InvalidParameterException");
    let templated = eks
        .create_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("templated")
        .subnets("subnet-a")
        .node_role(NODE_ROLE)
        .launch_template(template())
        .send()
        .await?
        .nodegroup
        .context("nodegroup")?;
    assert_eq!(templated.disk_size, None);
    assert_eq!(
        templated.launch_template.and_then(|t| t.id),
        Some("lt-0123456789abcdef0".to_string())
    );
    eks.delete_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("templated")
        .send()
        .await?;

    let created = eks
        .create_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .subnets("subnet-a")
        .subnets("subnet-b")
        .node_role(NODE_ROLE)
        .version("1.33")
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(3)
                .desired_size(2)
                .build(),
        )
        .labels("role", "workers")
        .send()
        .await?
        .nodegroup
        .context("no nodegroup")?;
    assert_eq!(created.status, Some(NodegroupStatus::Creating));
    let nodegroup_status = |ng: &'static str| {
        let eks = eks.clone();
        let name = name.clone();
        async move {
            match eks
                .describe_nodegroup()
                .cluster_name(&name)
                .nodegroup_name(ng)
                .send()
                .await
            {
                Ok(out) => Ok(out.nodegroup.and_then(|n| n.status)),
                Err(e)
                    if aws_sdk_eks::error::ProvideErrorMetadata::code(&e)
                        == Some("ResourceNotFoundException") =>
                {
                    Ok(None)
                }
                Err(e) => Err(anyhow::Error::from(e)),
            }
        }
    };
    wait_for("node group ACTIVE", WITHIN, || async {
        Ok((nodegroup_status("workers").await? == Some(NodegroupStatus::Active)).then_some(()))
    })
    .await?;

    let duplicate = eks
        .create_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .subnets("subnet-a")
        .node_role(NODE_ROLE)
        .send()
        .await;
    assert_eq!(code(duplicate)?, "ResourceInUseException");
    let bad_scaling = eks
        .create_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("bad")
        .subnets("subnet-a")
        .node_role(NODE_ROLE)
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(3)
                .max_size(1)
                .desired_size(2)
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad_scaling)?, "InvalidParameterException");
    let missing = eks
        .describe_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("nope")
        .send()
        .await;
    assert_eq!(code(missing)?, "ResourceNotFoundException");
    // Only a node group created from a launch template is updated with one (EKS API reference,
    // UpdateNodegroupVersion).
    let untemplated = eks
        .update_nodegroup_version()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .launch_template(template())
        .send()
        .await;
    assert_eq!(code(untemplated)?, "InvalidParameterException");
    assert_eq!(
        eks.list_nodegroups()
            .cluster_name(&name)
            .send()
            .await?
            .nodegroups(),
        ["workers"]
    );

    // Scaling: UPDATING, then ACTIVE with the new size and a Successful update.
    let update = eks
        .update_nodegroup_config()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(3)
                .desired_size(3)
                .build(),
        )
        .send()
        .await?
        .update
        .and_then(|u| u.id)
        .context("no update id")?;
    wait_for("node group scaled", WITHIN, || async {
        Ok((nodegroup_status("workers").await? == Some(NodegroupStatus::Active)).then_some(()))
    })
    .await?;
    assert_eq!(
        update_status(&eks, &name, &update, Some("workers"), None).await?,
        UpdateStatus::Successful
    );
    let ng = eks
        .describe_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .send()
        .await?
        .nodegroup
        .context("no nodegroup")?;
    assert_eq!(ng.scaling_config.and_then(|s| s.desired_size), Some(3));

    // A node group that is not ACTIVE cannot be updated.
    server
        .sim()
        .force_nodegroup_status(&name, "workers", "CREATING", &[])
        .await?;
    let busy = eks
        .update_nodegroup_version()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .send()
        .await;
    assert_eq!(code(busy)?, "ResourceInUseException");
    server
        .sim()
        .force_nodegroup_status(&name, "workers", "ACTIVE", &[])
        .await?;
    // Version: up to the cluster's.
    eks.update_nodegroup_version()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .version("1.34")
        .send()
        .await?;
    wait_for("node group upgraded", WITHIN, || async {
        Ok((nodegroup_status("workers").await? == Some(NodegroupStatus::Active)).then_some(()))
    })
    .await?;
    let version = eks
        .describe_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .send()
        .await?
        .nodegroup
        .and_then(|n| n.version);
    assert_eq!(version.as_deref(), Some("1.34"));
    let too_new = eks
        .update_nodegroup_version()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .version("1.35")
        .send()
        .await;
    assert_eq!(code(too_new)?, "InvalidParameterException");

    // The cluster cannot go while it has node groups.
    let blocked = eks.delete_cluster().name(&name).send().await;
    assert_eq!(code(blocked)?, "ResourceInUseException");
    let deleting = eks
        .delete_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("workers")
        .send()
        .await?;
    assert_eq!(
        deleting.nodegroup.and_then(|n| n.status),
        Some(NodegroupStatus::Deleting)
    );
    wait_for("node group gone", WITHIN, || async {
        Ok(nodegroup_status("workers").await?.is_none().then_some(()))
    })
    .await?;
    eks.delete_cluster().name(&name).send().await?;
    wait_gone(&eks, &name, WITHIN).await?;
    Ok(())
}

#[tokio::test]
async fn addons_with_pod_identity() -> anyhow::Result<()> {
    let (_server, eks) = start().await?;
    let name = active_cluster(&eks, "addons").await?;
    let created = eks
        .create_addon()
        .cluster_name(&name)
        .addon_name("aws-ebs-csi-driver")
        .pod_identity_associations(
            AddonPodIdentityAssociations::builder()
                .service_account("ebs-csi-controller-sa")
                .role_arn("arn:aws:iam::123456789012:role/ebs-csi")
                .build()?,
        )
        .tags("labflow:environment", "addons")
        .send()
        .await?
        .addon
        .context("no addon")?;
    assert_eq!(created.status, Some(AddonStatus::Creating));
    let owned = created.pod_identity_associations().to_vec();
    assert_eq!(owned.len(), 1, "{owned:?}");
    let addon_arn = created.addon_arn.context("no addon ARN")?;
    let addon = |addon: &'static str| {
        let eks = eks.clone();
        let name = name.clone();
        async move {
            match eks
                .describe_addon()
                .cluster_name(&name)
                .addon_name(addon)
                .send()
                .await
            {
                Ok(out) => Ok(out.addon),
                Err(e)
                    if aws_sdk_eks::error::ProvideErrorMetadata::code(&e)
                        == Some("ResourceNotFoundException") =>
                {
                    Ok(None)
                }
                Err(e) => Err(anyhow::Error::from(e)),
            }
        }
    };
    let active = || async {
        Ok(addon("aws-ebs-csi-driver")
            .await?
            .filter(|a| a.status == Some(AddonStatus::Active)))
    };
    wait_for("add-on ACTIVE", WITHIN, active).await?;

    // The add-on's association is listed with the add-on as owner.
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name(&name)
        .namespace("kube-system")
        .send()
        .await?;
    let summary = listed
        .associations()
        .iter()
        .find(|a| a.service_account() == Some("ebs-csi-controller-sa"))
        .context("add-on association not listed")?;
    assert_eq!(summary.owner_arn(), Some(addon_arn.as_str()));
    assert_eq!(summary.association_arn(), owned.first().map(String::as_str));

    let unsupported = eks
        .create_addon()
        .cluster_name(&name)
        .addon_name("no-such-addon")
        .send()
        .await;
    assert_eq!(code(unsupported)?, "InvalidParameterException");
    let duplicate = eks
        .create_addon()
        .cluster_name(&name)
        .addon_name("aws-ebs-csi-driver")
        .send()
        .await;
    assert_eq!(code(duplicate)?, "ResourceInUseException");
    let missing = eks
        .describe_addon()
        .cluster_name(&name)
        .addon_name("coredns")
        .send()
        .await;
    assert_eq!(code(missing)?, "ResourceNotFoundException");
    assert_eq!(
        eks.list_addons().cluster_name(&name).send().await?.addons(),
        ["aws-ebs-csi-driver"]
    );

    // Update: UPDATING, then ACTIVE with the new version and a Successful update.
    let update = eks
        .update_addon()
        .cluster_name(&name)
        .addon_name("aws-ebs-csi-driver")
        .addon_version("v1.46.0-eksbuild.1")
        .send()
        .await?
        .update
        .and_then(|u| u.id)
        .context("no update id")?;
    wait_for("add-on updated", WITHIN, active).await?;
    assert_eq!(
        update_status(&eks, &name, &update, None, Some("aws-ebs-csi-driver")).await?,
        UpdateStatus::Successful
    );
    let version = addon("aws-ebs-csi-driver")
        .await?
        .and_then(|a| a.addon_version);
    assert_eq!(version.as_deref(), Some("v1.46.0-eksbuild.1"));

    // Delete: DELETING, then gone, and its association with it.
    let deleting = eks
        .delete_addon()
        .cluster_name(&name)
        .addon_name("aws-ebs-csi-driver")
        .send()
        .await?;
    assert_eq!(
        deleting.addon.and_then(|a| a.status),
        Some(AddonStatus::Deleting)
    );
    wait_for("add-on gone", WITHIN, || async {
        Ok(addon("aws-ebs-csi-driver").await?.is_none().then_some(()))
    })
    .await?;
    let left = eks
        .list_pod_identity_associations()
        .cluster_name(&name)
        .send()
        .await?;
    assert!(left.associations().is_empty(), "{left:?}");
    // Add-ons do not block cluster deletion.
    eks.create_addon()
        .cluster_name(&name)
        .addon_name("coredns")
        .send()
        .await?;
    eks.delete_cluster().name(&name).send().await?;
    wait_gone(&eks, &name, WITHIN).await?;
    Ok(())
}

#[tokio::test]
async fn access_entries_and_policies() -> anyhow::Result<()> {
    let (_server, eks) = start().await?;
    let name = active_cluster(&eks, "access").await?;
    let principal = "arn:aws:iam::123456789012:role/labflow-admin";
    let entry = eks
        .create_access_entry()
        .cluster_name(&name)
        .principal_arn(principal)
        .kubernetes_groups("lab-admins")
        .send()
        .await?
        .access_entry
        .context("no entry")?;
    assert_eq!(entry.principal_arn.as_deref(), Some(principal));
    assert_eq!(entry.r#type.as_deref(), Some("STANDARD"));
    assert_eq!(
        entry.username.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/labflow-admin/{{SessionName}}")
    );
    let duplicate = eks
        .create_access_entry()
        .cluster_name(&name)
        .principal_arn(principal)
        .send()
        .await;
    assert_eq!(code(duplicate)?, "ResourceInUseException");
    let bad_principal = eks
        .create_access_entry()
        .cluster_name(&name)
        .principal_arn("arn:aws:sts::123456789012:assumed-role/x/session")
        .send()
        .await;
    assert_eq!(code(bad_principal)?, "InvalidParameterException");

    let associated = eks
        .associate_access_policy()
        .cluster_name(&name)
        .principal_arn(principal)
        .policy_arn(ADMIN_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await?;
    assert_eq!(
        associated
            .associated_access_policy
            .and_then(|p| p.policy_arn),
        Some(ADMIN_POLICY.to_string())
    );
    eks.associate_access_policy()
        .cluster_name(&name)
        .principal_arn(principal)
        .policy_arn(VIEW_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .namespaces("apps")
                .build(),
        )
        .send()
        .await?;
    let no_namespaces = eks
        .associate_access_policy()
        .cluster_name(&name)
        .principal_arn(principal)
        .policy_arn(VIEW_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(no_namespaces)?, "InvalidParameterException");
    let policies = eks
        .list_associated_access_policies()
        .cluster_name(&name)
        .principal_arn(principal)
        .send()
        .await?;
    let mut arns: Vec<&str> = policies
        .associated_access_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    arns.sort();
    assert_eq!(arns, [ADMIN_POLICY, VIEW_POLICY]);
    let by_policy = eks
        .list_access_entries()
        .cluster_name(&name)
        .associated_policy_arn(ADMIN_POLICY)
        .send()
        .await?;
    assert_eq!(by_policy.access_entries(), [principal]);

    eks.disassociate_access_policy()
        .cluster_name(&name)
        .principal_arn(principal)
        .policy_arn(ADMIN_POLICY)
        .send()
        .await?;
    let again = eks
        .disassociate_access_policy()
        .cluster_name(&name)
        .principal_arn(principal)
        .policy_arn(ADMIN_POLICY)
        .send()
        .await;
    assert_eq!(code(again)?, "ResourceNotFoundException");
    let by_policy = eks
        .list_access_entries()
        .cluster_name(&name)
        .associated_policy_arn(ADMIN_POLICY)
        .send()
        .await?;
    assert!(by_policy.access_entries().is_empty());

    let updated = eks
        .update_access_entry()
        .cluster_name(&name)
        .principal_arn(principal)
        .kubernetes_groups("lab-viewers")
        .send()
        .await?
        .access_entry
        .context("no entry")?;
    assert_eq!(updated.kubernetes_groups(), ["lab-viewers"]);
    let described = eks
        .describe_access_entry()
        .cluster_name(&name)
        .principal_arn(principal)
        .send()
        .await?
        .access_entry
        .context("no entry")?;
    assert_eq!(described.kubernetes_groups(), ["lab-viewers"]);
    assert_eq!(
        eks.list_access_entries()
            .cluster_name(&name)
            .send()
            .await?
            .access_entries(),
        [principal]
    );
    eks.delete_access_entry()
        .cluster_name(&name)
        .principal_arn(principal)
        .send()
        .await?;
    let gone = eks
        .describe_access_entry()
        .cluster_name(&name)
        .principal_arn(principal)
        .send()
        .await;
    assert_eq!(code(gone)?, "ResourceNotFoundException");

    // Access entries need the API authentication mode.
    let config_map = unique("configmap");
    eks.create_cluster()
        .name(&config_map)
        .role_arn(ROLE)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("subnet-a")
                .subnet_ids("subnet-b")
                .build(),
        )
        .send()
        .await?;
    wait_status(&eks, &config_map, "ACTIVE", WITHIN).await?;
    let refused = eks
        .create_access_entry()
        .cluster_name(&config_map)
        .principal_arn(principal)
        .send()
        .await;
    assert_eq!(code(refused)?, "InvalidRequestException");
    Ok(())
}

#[tokio::test]
async fn pod_identity_associations() -> anyhow::Result<()> {
    let (_server, eks) = start().await?;
    let name = active_cluster(&eks, "podid").await?;
    let role = "arn:aws:iam::123456789012:role/external-dns";
    let created = eks
        .create_pod_identity_association()
        .cluster_name(&name)
        .namespace("external-dns")
        .service_account("external-dns")
        .role_arn(role)
        .tags("labflow:environment", "podid")
        .send()
        .await?
        .association
        .context("no association")?;
    let id = created.association_id.context("no id")?;
    assert!(id.starts_with("a-"), "{id}");
    assert_eq!(created.role_arn.as_deref(), Some(role));
    let arn = created.association_arn.context("no arn")?;
    let duplicate = eks
        .create_pod_identity_association()
        .cluster_name(&name)
        .namespace("external-dns")
        .service_account("external-dns")
        .role_arn(role)
        .send()
        .await;
    assert_eq!(code(duplicate)?, "ResourceInUseException");
    let bad_role = eks
        .create_pod_identity_association()
        .cluster_name(&name)
        .namespace("apps")
        .service_account("app")
        .role_arn("arn:aws:iam::123456789012:user/someone")
        .send()
        .await;
    assert_eq!(code(bad_role)?, "InvalidParameterException");

    let listed = eks
        .list_pod_identity_associations()
        .cluster_name(&name)
        .namespace("external-dns")
        .send()
        .await?;
    assert_eq!(
        listed
            .associations()
            .iter()
            .filter_map(|a| a.association_id())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );
    let other_ns = eks
        .list_pod_identity_associations()
        .cluster_name(&name)
        .namespace("apps")
        .send()
        .await?;
    assert!(other_ns.associations().is_empty());
    let tags = eks
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await?
        .tags
        .unwrap_or_default();
    assert_eq!(
        tags.get("labflow:environment").map(String::as_str),
        Some("podid")
    );

    let new_role = "arn:aws:iam::123456789012:role/external-dns-v2";
    eks.update_pod_identity_association()
        .cluster_name(&name)
        .association_id(&id)
        .role_arn(new_role)
        .send()
        .await?;
    let described = eks
        .describe_pod_identity_association()
        .cluster_name(&name)
        .association_id(&id)
        .send()
        .await?
        .association
        .context("no association")?;
    assert_eq!(described.role_arn.as_deref(), Some(new_role));

    eks.delete_pod_identity_association()
        .cluster_name(&name)
        .association_id(&id)
        .send()
        .await?;
    let gone = eks
        .describe_pod_identity_association()
        .cluster_name(&name)
        .association_id(&id)
        .send()
        .await;
    assert_eq!(code(gone)?, "ResourceNotFoundException");
    let missing_cluster = eks
        .list_pod_identity_associations()
        .cluster_name("no-such-cluster")
        .send()
        .await;
    assert_eq!(code(missing_cluster)?, "ResourceNotFoundException");
    Ok(())
}

#[tokio::test]
async fn access_follows_the_access_entry_creator_bootstrap_view_policy_and_rbac_groups(
) -> anyhow::Result<()> {
    eks_support::rustls_provider();
    let options = EksOptions {
        delays: EksDelays::uniform(DELAY, DELAY, DELAY),
        ..Default::default()
    };
    let (key, secret) = options.credentials.clone();
    let principal = options.principal.clone();
    let server = EksServer::start(options).await?;
    let eks = eks_client(server.endpoint(), (&key, &secret));

    // The default bootstrapClusterCreatorAdminPermissions=true: the creator is cluster admin.
    let name = unique("creator");
    eks_support::create_cluster(&eks, &name)
        .access_config(
            aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                .authentication_mode(aws_sdk_eks::types::AuthenticationMode::Api)
                .build(),
        )
        .send()
        .await?;
    wait_status(&eks, &name, "ACTIVE", WITHIN).await?;
    let entry = eks
        .describe_access_entry()
        .cluster_name(&name)
        .principal_arn(&principal)
        .send()
        .await?;
    assert!(
        entry.access_entry.is_some(),
        "the creator's entry is listed"
    );
    let (endpoint, ca) = eks_support::endpoint_and_ca(&eks, &name).await?;
    let client = eks_support::kube_client(
        &endpoint,
        &ca,
        &eks_support::eks_token(&name, (&key, &secret))?,
    )
    .await?;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "default");
    secrets.list(&Default::default()).await?;

    // Cut to the view policy: reads but no secrets, no writes, no custom resources.
    eks.associate_access_policy()
        .cluster_name(&name)
        .principal_arn(&principal)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await?;
    eks.disassociate_access_policy()
        .cluster_name(&name)
        .principal_arn(&principal)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        .send()
        .await?;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client.clone());
    pods.list(&Default::default()).await?;
    let forbidden = secrets.list(&Default::default()).await;
    match &forbidden {
        Err(kube::Error::Api(s)) if s.code == 403 => assert!(
            s.message.contains(
                "cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
            ),
            "{}",
            s.message
        ),
        other => panic!("listing secrets with the view policy: {other:?}"),
    }
    let config_maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "default");
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}
    }))?;
    let write = config_maps.create(&Default::default(), &cm).await;
    assert!(
        matches!(&write, Err(kube::Error::Api(s)) if s.code == 403),
        "{write:?}"
    );
    // Discovery and /version stay open to every authenticated caller.
    client.apiserver_version().await?;

    // kubernetesGroups + a ClusterRoleBinding (made by someone with admin) give the rest.
    let sim = server.sim().kubesim(&name).await.context("no kubesim")?;
    for object in [
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "cm-writer"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "cm-writers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-writer"},
            "subjects": [{"kind": "Group", "name": "writers"}]}),
    ] {
        sim.store()
            .put(object)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    eks.update_access_entry()
        .cluster_name(&name)
        .principal_arn(&principal)
        .kubernetes_groups("writers")
        .send()
        .await?;
    config_maps.create(&Default::default(), &cm).await?;

    // No entry at all: 401.
    eks.delete_access_entry()
        .cluster_name(&name)
        .principal_arn(&principal)
        .send()
        .await?;
    let gone = pods.list(&Default::default()).await;
    assert!(
        matches!(&gone, Err(kube::Error::Api(s)) if s.code == 401),
        "{gone:?}"
    );
    Ok(())
}

#[tokio::test]
async fn active_cluster_answers_kube_client_with_its_ca_and_an_eks_token() -> anyhow::Result<()> {
    eks_support::rustls_provider();
    let options = EksOptions {
        delays: EksDelays::uniform(DELAY, DELAY, DELAY),
        ..Default::default()
    };
    let (key, secret) = options.credentials.clone();
    let principal = options.principal.clone();
    let server = EksServer::start(options).await?;
    let eks = eks_client(server.endpoint(), (&key, &secret));
    let name = active_cluster(&eks, "kube").await?;
    let other = active_cluster(&eks, "other").await?;
    let (endpoint, ca) = eks_support::endpoint_and_ca(&eks, &name).await?;
    let (other_endpoint, other_ca) = eks_support::endpoint_and_ca(&eks, &other).await?;
    assert_ne!(endpoint, other_endpoint);
    assert_ne!(ca, other_ca, "each cluster has its own CA");

    let token = eks_support::eks_token(&name, (&key, &secret))?;
    let client = eks_support::kube_client(&endpoint, &ca, &token).await?;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    // Created without bootstrapClusterCreatorAdminPermissions: no access entry, so EKS does
    // not even authenticate the caller.
    let before = namespaces.list(&Default::default()).await;
    assert!(
        matches!(&before, Err(kube::Error::Api(s)) if s.code == 401),
        "{before:?}"
    );
    eks_support::grant(&eks, &name, &principal, "AmazonEKSClusterAdminPolicy").await?;
    let names: Vec<String> = namespaces
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.iter().any(|n| n == "kube-system"), "{names:?}");
    // Writes land in this cluster's kubesim.
    let config_maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "default");
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hello"}, "data": {"from": "eks-test"}
    }))?;
    config_maps.create(&Default::default(), &cm).await?;
    let sim = server.sim().kubesim(&name).await.context("no kubesim")?;
    let stored = sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/configmaps"));
    assert!(stored, "the create reached this cluster's kubesim");
    drop(sim);

    // A token signed with the wrong secret, or bound to another cluster: 401.
    let wrong_secret = eks_support::eks_token(&name, (&key, "not-the-secret"))?;
    let refused = eks_support::kube_client(&endpoint, &ca, &wrong_secret).await?;
    let result = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(refused)
        .list(&Default::default())
        .await;
    assert!(
        matches!(&result, Err(kube::Error::Api(s)) if s.code == 401),
        "{result:?}"
    );
    let other_cluster = eks_support::eks_token(&other, (&key, &secret))?;
    let refused = eks_support::kube_client(&endpoint, &ca, &other_cluster).await?;
    let result = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(refused)
        .list(&Default::default())
        .await;
    assert!(
        matches!(&result, Err(kube::Error::Api(s)) if s.code == 401),
        "{result:?}"
    );
    // Another cluster's CA does not verify this cluster's certificate.
    let untrusted = eks_support::kube_client(&endpoint, &other_ca, &token).await?;
    let result = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(untrusted)
        .list(&Default::default())
        .await;
    assert!(result.is_err(), "TLS with the wrong CA must fail");

    // Deleting the cluster stops its API server.
    eks.delete_cluster().name(&name).send().await?;
    wait_gone(&eks, &name, WITHIN).await?;
    let client = eks_support::kube_client(&endpoint, &ca, &token).await?;
    let result = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .list(&Default::default())
        .await;
    assert!(
        result.is_err(),
        "a deleted cluster's endpoint must not answer"
    );
    Ok(())
}

#[tokio::test]
async fn injected_aws_side_faults_reach_the_sdk() -> anyhow::Result<()> {
    use labflow_testbed::faults::{Action, Rule, Side};
    let (server, eks) = start().await?;
    let name = active_cluster(&eks, "faults").await?;
    let plan = server.sim().faults();
    server.sim().clear_requests();

    // One 500: the SDK's standard retry absorbs it, the log shows both attempts.
    plan.add(
        Rule::new(Side::Aws, Action::Status { code: 500 })
            .target("eks")
            .operation("DescribeCluster")
            .nth(1),
    );
    eks.describe_cluster().name(&name).send().await?;
    let statuses: Vec<(String, u16)> = server
        .sim()
        .requests()
        .into_iter()
        .map(|r| (r.operation, r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("DescribeCluster".to_string(), 500),
            ("DescribeCluster".to_string(), 200)
        ]
    );

    // Without retries the caller sees the throttling error type.
    let no_retry = aws_sdk_eks::Client::from_conf(
        eks.config()
            .to_builder()
            .retry_config(aws_sdk_eks::config::retry::RetryConfig::disabled())
            .build(),
    );
    plan.add(
        Rule::new(Side::Aws, Action::Status { code: 429 })
            .operation("ListClusters")
            .times(1),
    );
    let throttled = no_retry.list_clusters().send().await;
    assert_eq!(code(throttled)?, "ThrottlingException");
    assert!(
        no_retry.list_clusters().send().await.is_ok(),
        "fired once only"
    );

    // Latency: the request is answered, late.
    plan.add(
        Rule::new(Side::Aws, Action::Delay { millis: 300 })
            .operation("ListNodegroups")
            .times(1),
    );
    let started = Instant::now();
    eks.list_nodegroups().cluster_name(&name).send().await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Kubernetes-side rules do not touch the EKS API.
    plan.add(Rule::new(Side::Kubernetes, Action::Status { code: 500 }));
    eks.describe_cluster().name(&name).send().await?;
    Ok(())
}

/// DescribeAddonVersions lists an add-on's versions for a Kubernetes version with one default;
/// CreateAddon and UpdateAddon refuse a version the catalogue does not offer
/// (InvalidParameterException), as EKS does.
#[tokio::test]
async fn addon_versions_come_from_the_catalogue() -> anyhow::Result<()> {
    let (_server, eks) = start().await?;
    let offered = eks
        .describe_addon_versions()
        .addon_name("aws-ebs-csi-driver")
        .kubernetes_version("1.35")
        .send()
        .await?;
    let addon = offered.addons().first().context("no add-on listed")?;
    assert_eq!(addon.addon_name(), Some("aws-ebs-csi-driver"));
    let versions: Vec<(&str, bool)> = addon
        .addon_versions()
        .iter()
        .map(|v| {
            let default = v
                .compatibilities()
                .iter()
                .any(|c| c.cluster_version() == Some("1.35") && c.default_version());
            (v.addon_version().unwrap_or_default(), default)
        })
        .collect();
    assert_eq!(
        versions.iter().filter(|(_, d)| *d).count(),
        1,
        "{versions:?}"
    );
    assert!(
        versions.contains(&("v1.45.0-eksbuild.2", true)),
        "{versions:?}"
    );
    assert!(
        versions.contains(&("v1.60.0-eksbuild.1", false)),
        "{versions:?}"
    );
    let unknown = eks
        .describe_addon_versions()
        .addon_name("aws-ebs-csi-driver")
        .kubernetes_version("1.20")
        .send()
        .await?;
    assert!(unknown.addons().is_empty());

    let name = active_cluster(&eks, "addonver").await?;
    let refused = eks
        .create_addon()
        .cluster_name(&name)
        .addon_name("aws-ebs-csi-driver")
        .addon_version("v9.9.9-eksbuild.1")
        .send()
        .await;
    assert_eq!(code(refused)?, "InvalidParameterException");
    Ok(())
}
