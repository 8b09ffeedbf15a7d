//! A lab environment on the testbed for teardown tests: an owned EKS cluster with a node group,
//! an add-on, an access entry and a Pod Identity association (made through aws-sdk-eks), Flux
//! on its kubesim syncing a small GitOps fixture from a local git repository (controllers:
//! HelmReleases for aws-load-balancer-controller and external-dns; apps: an ALB Ingress, a
//! LoadBalancer Service, a PVC, a ConfigMap), the simulated controllers attached, and
//! external-dns writing to a moto Route53 zone of its own.
#![allow(dead_code)]

pub mod crash;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use aws_sdk_eks::types::NodegroupScalingConfig;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use chrono::{DateTime, Utc};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use labflow_core::aws::AwsClients;
use labflow_core::contract::{Action, Source, StepInput};
use labflow_teardown::{handle, Ctx, Output, TeardownOptions};
use labflow_testbed::controllers::{
    ControllerOptions, Controllers, ExternalDnsOptions, FluxOptions,
};
use labflow_testbed::{Testbed, TestbedOptions};
use serde::Deserialize;
use serde_json::{json, Value};

pub const ROLE: &str = "arn:aws:iam::123456789012:role/lab-cluster";
pub const NODE_ROLE: &str = "arn:aws:iam::123456789012:role/lab-node";
pub const ADMIN_PRINCIPAL: &str = "arn:aws:iam::123456789012:role/platform-engineers";
pub const LBC_ROLE: &str = "arn:aws:iam::123456789012:role/lab-aws-load-balancer-controller";
pub const NODEGROUP: &str = "general";
pub const ADDON: &str = "aws-ebs-csi-driver";

/// Installs the process-wide rustls provider (ring; the AWS SDK links aws-lc-rs too).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The testbed with nothing attached automatically: tests attach controllers themselves so
/// they can read the simulated load balancers.
pub async fn testbed() -> anyhow::Result<Testbed> {
    init();
    Ok(Testbed::start(TestbedOptions::default()).await?)
}

pub async fn aws_clients(tb: &Testbed) -> AwsClients {
    AwsClients::from_config(tb.sdk_config().await).with_eks_endpoint(tb.eks_endpoint())
}

/// A teardown call's input.
pub fn input(environment: &str, source: Source) -> StepInput {
    StepInput {
        environment: environment.to_string(),
        action: Action::Teardown,
        source,
        execution_arn: None,
    }
}

pub fn console() -> Source {
    Source::Console {
        requested_by: Some("tests".into()),
    }
}

/// A clock the test moves forward.
#[derive(Clone, Default)]
pub struct TestClock {
    offset: Arc<Mutex<chrono::Duration>>,
}

impl TestClock {
    pub fn advance(&self, by: chrono::Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset += by;
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn as_clock(&self) -> labflow_teardown::Clock {
        let this = self.clone();
        Arc::new(move || this.now())
    }
}

/// The teardown context the tests use: the TXT prefix is teardown's default, the `labflow-`
/// infra/gitops gives external-dns (and the testbed's external-dns uses).
pub fn ctx(aws: AwsClients, clock: &TestClock, grace: chrono::Duration) -> Ctx {
    let mut ctx = Ctx::new(aws);
    ctx.clock = clock.as_clock();
    ctx.options = TeardownOptions {
        grace_period: grace,
        ..TeardownOptions::default()
    };
    ctx
}

/// The environment config stored in SSM.
pub fn config(cluster: &str, zone_id: &str, domain: &str, owner: &str, protected: bool) -> Value {
    let mut config = labflow_testkit::config::example_config();
    config["cluster"]["name"] = json!(cluster);
    config["dns"]["hostedZoneId"] = json!(zone_id);
    config["dns"]["domain"] = json!(domain);
    config["dns"]["ownerId"] = json!(owner);
    config["flux"]["repository"]["url"] = json!(repo_url(cluster));
    config["protected"] = json!(protected);
    config
}

pub fn repo_url(cluster: &str) -> String {
    format!("https://github.com/acme/{cluster}-gitops")
}

pub async fn put_config(aws: &AwsClients, environment: &str, config: &Value) -> anyhow::Result<()> {
    aws.ssm
        .put_parameter()
        .name(labflow_core::config::parameter_name(environment))
        .value(config.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await?;
    Ok(())
}

/// A hosted zone of its own (moto is shared by every test of the binary); returns its id.
pub async fn hosted_zone(aws: &AwsClients, domain: &str) -> anyhow::Result<String> {
    let out = aws
        .route53
        .create_hosted_zone()
        .name(domain)
        .caller_reference(format!("{domain}-{}", uuid::Uuid::new_v4()))
        .send()
        .await?;
    let id = out.hosted_zone().context("no hosted zone")?.id();
    Ok(id.trim_start_matches("/hostedzone/").to_string())
}

/// What external-dns v0.21 writes for a host of an Ingress's load balancer: A and AAAA ALIAS
/// records and their registry entries, the A's filed under `cname-` (testbed externaldns.rs).
pub async fn seed_owned_record(
    aws: &AwsClients,
    zone_id: &str,
    host: &str,
    owner: &str,
) -> anyhow::Result<()> {
    let mut sets = Vec::new();
    for (record_type, tag) in [(RrType::A, "cname"), (RrType::Aaaa, "aaaa")] {
        sets.push(
            ResourceRecordSet::builder()
                .name(host)
                .r#type(record_type)
                .alias_target(
                    aws_sdk_route53::types::AliasTarget::builder()
                        .hosted_zone_id("Z32O12XQLNTSW2")
                        .dns_name("k8s-web-0123456789.eu-west-1.elb.amazonaws.com")
                        .evaluate_target_health(true)
                        .build()?,
                )
                .build()?,
        );
        sets.push(
            ResourceRecordSet::builder()
                .name(format!("{}{tag}-{host}", labflow_testbed::controllers::TXT_PREFIX))
                .r#type(RrType::Txt)
                .ttl(300)
                .resource_records(
                    ResourceRecord::builder()
                        .value(format!(
                            "\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=ingress/web/{host}\""
                        ))
                        .build()?,
                )
                .build()?,
        );
    }
    upsert(aws, zone_id, sets).await
}

/// Records nobody's external-dns owns.
pub async fn seed_unrelated_records(
    aws: &AwsClients,
    zone_id: &str,
    domain: &str,
) -> anyhow::Result<()> {
    let manual = ResourceRecordSet::builder()
        .name(format!("manual.{domain}"))
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value("192.0.2.20").build()?)
        .build()?;
    let spf = ResourceRecordSet::builder()
        .name(domain)
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value("\"v=spf1 -all\"").build()?)
        .build()?;
    // Looks like ours by name, but its value names no owner: not a registry entry.
    let lookalike = ResourceRecordSet::builder()
        .name(format!("labflow-cname-lookalike.{domain}"))
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value("\"heritage=someone-else\"")
                .build()?,
        )
        .build()?;
    upsert(aws, zone_id, vec![manual, spf, lookalike]).await
}

async fn upsert(
    aws: &AwsClients,
    zone_id: &str,
    sets: Vec<ResourceRecordSet>,
) -> anyhow::Result<()> {
    let mut changes = Vec::new();
    for set in sets {
        changes.push(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()?,
        );
    }
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build()?)
        .send()
        .await?;
    Ok(())
}

/// The zone's records as (name, type, values), sorted.
pub async fn zone_records(
    aws: &AwsClients,
    zone_id: &str,
) -> anyhow::Result<Vec<(String, String, Vec<String>)>> {
    let out = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .max_items(300)
        .send()
        .await?;
    ensure!(!out.is_truncated(), "test zones are small");
    let mut records: Vec<(String, String, Vec<String>)> = out
        .resource_record_sets()
        .iter()
        .map(|set| {
            let mut values: Vec<String> = set
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect();
            if let Some(alias) = set.alias_target() {
                values.push(format!("ALIAS {}", alias.dns_name()));
            }
            (
                set.name().to_string(),
                set.r#type().as_str().to_string(),
                values,
            )
        })
        .collect();
    records.sort();
    Ok(records)
}

/// Whether any record of the zone is an external-dns entry of `owner` or is named `host`.
pub fn mentions_owner(records: &[(String, String, Vec<String>)], owner: &str) -> Vec<String> {
    let marker = format!("external-dns/owner={owner},");
    records
        .iter()
        .filter(|(_, _, values)| values.iter().any(|v| v.contains(&marker)))
        .map(|(name, t, _)| format!("{t} {name}"))
        .collect()
}

/// Creates an EKS cluster (tagged as ours unless `owned` is false) and waits until ACTIVE.
pub async fn create_cluster(
    aws: &AwsClients,
    environment: &str,
    cluster: &str,
    owned: bool,
) -> anyhow::Result<()> {
    let mut request =
        labflow_testkit::eks::create_cluster(&aws.eks, cluster, ROLE).tags("team", "platform");
    if owned {
        request = labflow_testkit::eks::owned_by(request, environment);
    }
    request.send().await?;
    labflow_testkit::wait::until("cluster ACTIVE", Duration::from_secs(10), || async {
        let out = aws.eks.describe_cluster().name(cluster).send().await?;
        Ok(out
            .cluster()
            .and_then(|c| c.status())
            .filter(|s| *s == &aws_sdk_eks::types::ClusterStatus::Active)
            .map(|_| ()))
    })
    .await
}

/// The node group, add-on, access entry and Pod Identity association ensure-cluster and
/// cluster-access make.
pub async fn create_cluster_parts(aws: &AwsClients, cluster: &str) -> anyhow::Result<()> {
    aws.eks
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(NODEGROUP)
        .node_role(NODE_ROLE)
        .subnets("subnet-0a1b2c3d4e5f60001")
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(2)
                .desired_size(1)
                .build(),
        )
        .send()
        .await?;
    aws.eks
        .create_addon()
        .cluster_name(cluster)
        .addon_name(ADDON)
        // As ensure-cluster installs it: volumes tagged with their cluster.
        .configuration_values(format!(
            r#"{{"controller":{{"k8sTagClusterId":"{cluster}"}}}}"#
        ))
        .send()
        .await?;
    aws.eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(ADMIN_PRINCIPAL)
        .send()
        .await?;
    aws.eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace("kube-system")
        .service_account("aws-load-balancer-controller")
        .role_arn(LBC_ROLE)
        .send()
        .await?;
    Ok(())
}

/// What the EKS simulator still holds for a cluster, through the API: describe + the lists.
pub async fn eks_leftovers(aws: &AwsClients, cluster: &str) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    match aws.eks.describe_cluster().name(cluster).send().await {
        Ok(out) => left.push(format!(
            "cluster {cluster} {:?}",
            out.cluster().and_then(|c| c.status())
        )),
        Err(e) if is_not_found(&e) => return Ok(left),
        Err(e) => return Err(e.into()),
    }
    let groups = aws
        .eks
        .list_nodegroups()
        .cluster_name(cluster)
        .send()
        .await?;
    left.extend(
        groups
            .nodegroups()
            .iter()
            .map(|n| format!("node group {n}")),
    );
    let addons = aws.eks.list_addons().cluster_name(cluster).send().await?;
    left.extend(addons.addons().iter().map(|a| format!("add-on {a}")));
    let entries = aws
        .eks
        .list_access_entries()
        .cluster_name(cluster)
        .send()
        .await?;
    left.extend(
        entries
            .access_entries()
            .iter()
            .map(|e| format!("access entry {e}")),
    );
    let pia = aws
        .eks
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .send()
        .await?;
    left.extend(
        pia.associations()
            .iter()
            .map(|a| format!("pod identity {:?}", a.association_id())),
    );
    Ok(left)
}

fn is_not_found<E: aws_sdk_eks::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_eks::error::SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ResourceNotFoundException")
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

pub fn ar(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn api(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn plural(kind: &str) -> String {
    match kind {
        "Ingress" => "ingresses".into(),
        "GitRepository" => "gitrepositories".into(),
        "HelmRepository" => "helmrepositories".into(),
        k => format!("{}s", k.to_ascii_lowercase()),
    }
}

pub fn resource_of(v: &Value) -> anyhow::Result<ApiResource> {
    let api_version = v["apiVersion"].as_str().context("apiVersion")?;
    let kind = v["kind"].as_str().context("kind")?;
    Ok(ar(api_version, kind, &plural(kind)))
}

/// Server-side applies every document of a YAML string (field manager `labflow`).
pub async fn apply_yaml(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        // As flux-bootstrap applies it: labelled as labflow's.
        let mut v = v;
        let (key, value) = labflow_core::ownership::MANAGED_BY_LABEL;
        v["metadata"]["labels"][key] = Value::String(value.to_string());
        let resource = resource_of(&v)?;
        let name = v["metadata"]["name"].as_str().context("name")?;
        let ns = v["metadata"]["namespace"].as_str();
        let obj: DynamicObject = serde_json::from_value(v.clone())?;
        api(client, &resource, ns)
            .patch(
                name,
                &PatchParams::apply("labflow").force(),
                &Patch::Apply(&obj),
            )
            .await
            .with_context(|| format!("applying {} {name}", resource.kind))?;
    }
    Ok(())
}

pub async fn get(
    client: &kube::Client,
    resource: &ApiResource,
    ns: Option<&str>,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    Ok(api(client, resource, ns)
        .get_opt(name)
        .await?
        .map(serde_json::to_value)
        .transpose()?)
}

pub fn ready(obj: &Value) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub fn kustomizations() -> ApiResource {
    ar(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "kustomizations",
    )
}
pub fn helmreleases() -> ApiResource {
    ar("helm.toolkit.fluxcd.io/v2", "HelmRelease", "helmreleases")
}
pub fn ingresses() -> ApiResource {
    ar("networking.k8s.io/v1", "Ingress", "ingresses")
}
pub fn deployments() -> ApiResource {
    ar("apps/v1", "Deployment", "deployments")
}
pub fn configmaps() -> ApiResource {
    ar("v1", "ConfigMap", "configmaps")
}
pub fn pvcs() -> ApiResource {
    ar("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
}

/// A client for the cluster as the handler builds it: DescribeCluster + EKS token.
pub async fn cluster_client(
    aws: &AwsClients,
    cluster: &str,
) -> anyhow::Result<(kube::Client, kube::Config)> {
    init();
    let out = aws.eks.describe_cluster().name(cluster).send().await?;
    let c = out.cluster().context("no cluster")?;
    let endpoint = c.endpoint().context("no endpoint")?;
    let ca = c
        .certificate_authority()
        .and_then(|ca| ca.data())
        .context("no CA")?;
    let token = labflow_core::eks_token::generate_from_config(&aws.config, cluster).await?;
    let client = labflow_core::kube_client::client_for(endpoint, ca, &token).await?;
    let kubeconfig = kube::config::Kubeconfig {
        clusters: vec![kube::config::NamedCluster {
            name: "eks".into(),
            cluster: Some(kube::config::Cluster {
                server: Some(endpoint.to_string()),
                certificate_authority_data: Some(ca.to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![kube::config::NamedAuthInfo {
            name: "tests".into(),
            auth_info: Some(kube::config::AuthInfo {
                token: Some(token.expose().to_string().into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![kube::config::NamedContext {
            name: "eks".into(),
            context: Some(kube::config::Context {
                cluster: "eks".into(),
                user: Some("tests".into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("eks".into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok((client, config))
}

const FLUX_CRDS: [&str; 5] = [
    "source-controller__source.toolkit.fluxcd.io_gitrepositories.yaml",
    "source-controller__source.toolkit.fluxcd.io_helmrepositories.yaml",
    "source-controller__source.toolkit.fluxcd.io_ocirepositories.yaml",
    "kustomize-controller__kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "helm-controller__helm.toolkit.fluxcd.io_helmreleases.yaml",
];

/// The real Flux CRDs, server-side applied like flux-bootstrap's first stage.
pub async fn install_flux_crds(client: &kube::Client) -> anyhow::Result<()> {
    let cache = labflow_testbed::paths::crd_cache_dir();
    let dir = match cache {
        Some(dir) if dir.join(FLUX_CRDS[0]).is_file() => dir,
        _ => Path::new("/work/shared/crds").to_path_buf(),
    };
    for file in FLUX_CRDS {
        let text = std::fs::read_to_string(dir.join(file))
            .with_context(|| format!("{file} (run make crds)"))?;
        apply_yaml(client, &text).await?;
    }
    Ok(())
}

fn flux_system(cluster: &str) -> String {
    let mut out = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n");
    // Cluster-scoped RBAC of Flux's install.yaml: it outlives the namespace.
    out.push_str("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: crd-controller-flux-system\nrules:\n- apiGroups: [source.toolkit.fluxcd.io]\n  resources: ['*']\n  verbs: ['*']\n");
    out.push_str("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: cluster-reconciler-flux-system\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: kustomize-controller\n  namespace: flux-system\n");
    for name in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
    ] {
        out.push_str(&deployment("flux-system", name));
    }
    out.push_str(&format!(
        "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: {}\n  ref:\n    branch: main\n",
        repo_url(cluster)
    ));
    out.push_str("---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./clusters/lab\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n");
    out
}

fn deployment(ns: &str, name: &str) -> String {
    format!("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {name}\nspec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: c\n        image: example.invalid/{name}:1\n")
}

/// The GitOps fixture: root → controllers → apps (apps dependsOn controllers).
pub fn gitops_tree(domain: &str, cluster: &str, vpc_id: &str) -> Vec<(String, String)> {
    let release = |name: &str, values: &str| {
        format!("---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {name}\n  namespace: infra-controllers\nspec:\n  interval: 1h\n  chart:\n    spec:\n      chart: {name}\n      version: 1.0.0\n      sourceRef:\n        kind: HelmRepository\n        name: charts\n{values}")
    };
    // The controller needs its VPC given: it cannot read instance metadata (issue 24 item 2).
    let lbc_values = format!("  values:\n    clusterName: {cluster}\n    region: eu-west-1\n    vpcId: {vpc_id}\n    defaultTags:\n      labflow:managed-by: labflow\n");
    vec![
        ("clusters/lab/controllers.yaml".into(), "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: controllers\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./infrastructure/controllers\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n".into()),
        ("clusters/lab/apps.yaml".into(), "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 10m\n  dependsOn:\n  - name: controllers\n  path: ./apps\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n".into()),
        ("infrastructure/controllers/kustomization.yaml".into(), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- namespace.yaml\n- charts.yaml\n- releases.yaml\n- storageclass.yaml\n".into()),
        // As infra/gitops's: volumes of the EBS CSI add-on, made when a pod is scheduled.
        ("infrastructure/controllers/storageclass.yaml".into(), "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: gp3\nprovisioner: ebs.csi.aws.com\nvolumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Delete\nparameters:\n  type: gp3\n  encrypted: \"true\"\nallowedTopologies:\n- matchLabelExpressions:\n  - key: topology.kubernetes.io/zone\n    values: [eu-west-1a]\n".into()),
        ("infrastructure/controllers/namespace.yaml".into(), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: infra-controllers\n".into()),
        ("infrastructure/controllers/charts.yaml".into(), "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n  namespace: infra-controllers\nspec:\n  interval: 1h\n  url: https://aws.github.io/eks-charts\n".into()),
        ("infrastructure/controllers/releases.yaml".into(), format!("{}{}", release("aws-load-balancer-controller", &lbc_values), release("external-dns", ""))),
        ("apps/kustomization.yaml".into(), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- namespace.yaml\n- web.yaml\n".into()),
        ("apps/namespace.yaml".into(), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n".into()),
        ("apps/web.yaml".into(), format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: podinfo\n  namespace: web\n  annotations:\n    external-dns.alpha.kubernetes.io/hostname: podinfo.{domain}\nspec:\n  ingressClassName: alb\n  rules:\n  - host: podinfo.{domain}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: podinfo\n            port:\n              number: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo-nlb\n  namespace: web\n  annotations:\n    external-dns.alpha.kubernetes.io/hostname: nlb.{domain}\nspec:\n  type: LoadBalancer\n  selector:\n    app: podinfo\n  ports:\n  - port: 80\n    targetPort: 9898\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: web\n  annotations:\n    # What the scheduler sets once a pod using the claim has a node (no pods are simulated).\n    volume.kubernetes.io/selected-node: ip-10-0-1-10.eu-west-1.compute.internal\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: gp3\n  resources:\n    requests:\n      storage: 1Gi\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: web\ndata:\n  mode: demo\n")),
    ]
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn fixture_repo(domain: &str, cluster: &str, vpc_id: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    git(dir.path(), &["init", "-q", "-b", "main"])?;
    for (path, content) in gitops_tree(domain, cluster, vpc_id) {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
    }
    git(dir.path(), &["add", "-A"])?;
    git(dir.path(), &["commit", "-q", "-m", "fixture"])?;
    Ok(dir)
}

/// One lab environment, made healthy.
pub struct Lab {
    pub tb: Testbed,
    pub aws: AwsClients,
    pub env: String,
    pub cluster: String,
    pub zone_id: String,
    pub domain: String,
    pub owner: String,
    pub kube: kube::Client,
    pub kube_config: kube::Config,
    pub controllers: Controllers,
    _repo: tempfile::TempDir,
}

impl Lab {
    /// Creates the environment `env` and waits until its apps serve traffic: the Ingress and
    /// the Service have load balancers and external-dns has written their records.
    pub async fn start(env: &str) -> anyhow::Result<Lab> {
        let tb = testbed().await?;
        let aws = aws_clients(&tb).await;
        let cluster = format!("{env}-cluster");
        let domain = format!("{env}.example.com");
        let owner = format!("{env}-owner");
        let zone_id = hosted_zone(&aws, &domain).await?;
        put_config(
            &aws,
            env,
            &config(&cluster, &zone_id, &domain, &owner, false),
        )
        .await?;
        aws.ssm
            .put_parameter()
            .name(labflow_teardown::kubeconfig_parameter(env))
            .value("apiVersion: v1\nkind: Config\n")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await?;
        create_cluster(&aws, env, &cluster, true).await?;
        create_cluster_parts(&aws, &cluster).await?;

        let repo = fixture_repo(&domain, &cluster, &tb.network().vpc_id)?;
        let sim = tb.eks().kubesim(&cluster).await.context("no kubesim")?;
        let (access_key, secret_key) = tb.credentials();
        let mut dns = ExternalDnsOptions::new(&tb.aws_endpoint(), &zone_id, &owner);
        dns.region = tb.region().to_string();
        dns.access_key_id = access_key.to_string();
        dns.secret_access_key = secret_key.to_string();
        let controllers = Controllers::start(
            &sim,
            ControllerOptions::default()
                .with_flux(FluxOptions::default().with_repository(repo_url(&cluster), repo.path()))
                .with_workloads()
                .with_aws_controllers(tb.aws_access())
                .with_external_dns(dns),
        );
        // Only the EKS simulator may keep the kubesim alive: it goes when the cluster goes.
        drop(sim);

        let (kube, kube_config) = cluster_client(&aws, &cluster).await?;
        install_flux_crds(&kube).await?;
        apply_yaml(&kube, &flux_system(&cluster)).await?;
        let lab = Lab {
            tb,
            aws,
            env: env.to_string(),
            cluster,
            zone_id,
            domain,
            owner,
            kube,
            kube_config,
            controllers,
            _repo: repo,
        };
        lab.wait_healthy().await?;
        Ok(lab)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let k = &self.kube;
        labflow_testkit::wait::until(
            "apps Kustomization Ready",
            Duration::from_secs(20),
            || async {
                Ok(get(k, &kustomizations(), Some("flux-system"), "apps")
                    .await?
                    .filter(ready))
            },
        )
        .await?;
        labflow_testkit::wait::until("two load balancers", Duration::from_secs(20), || async {
            Ok((self.controllers.load_balancers().list().len() == 2).then_some(()))
        })
        .await?;
        // In the AWS emulator: the ALB and NLB with their target groups and security groups
        // (the backend one shared), and the claim's volume.
        labflow_testkit::wait::until(
            "the controllers' resources in the AWS emulator",
            Duration::from_secs(20),
            || async {
                let made = self.aws_resources().await?;
                let count = |kind: &str| made.iter().filter(|r| r.starts_with(kind)).count();
                Ok((count("load balancer") == 2
                    && count("target group") == 2
                    && count("security group") == 3
                    && count("volume") == 1)
                    .then_some(()))
            },
        )
        .await?;
        let podinfo = format!("podinfo.{}.", self.domain);
        let nlb = format!("nlb.{}.", self.domain);
        labflow_testkit::wait::until("external-dns records", Duration::from_secs(20), || async {
            let records = zone_records(&self.aws, &self.zone_id).await?;
            let has = |name: &str| records.iter().any(|(n, t, _)| n == name && t == "A");
            Ok((has(&podinfo) && has(&nlb)).then_some(()))
        })
        .await
    }

    pub fn ctx(&self, clock: &TestClock, grace: chrono::Duration) -> Ctx {
        ctx(self.aws.clone(), clock, grace)
    }

    pub fn input(&self) -> StepInput {
        input(&self.env, console())
    }

    /// Whether external-dns still runs (its Deployment exists); false once the cluster is gone.
    pub async fn external_dns_running(&self) -> bool {
        let list = api(&self.kube, &deployments(), None)
            .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=external-dns"))
            .await;
        list.is_ok_and(|l| !l.items.is_empty())
    }

    /// Records of this environment external-dns left behind (as when it was stopped before it
    /// could delete them): only teardown's DNS phase can remove these.
    pub async fn seed_stale_records(&self) -> anyhow::Result<()> {
        seed_owned_record(
            &self.aws,
            &self.zone_id,
            &format!("stale.{}", self.domain),
            &self.owner,
        )
        .await
    }

    /// Another environment's records and records nobody's external-dns owns.
    pub async fn seed_foreign_records(&self) -> anyhow::Result<()> {
        seed_owned_record(
            &self.aws,
            &self.zone_id,
            &format!("other.{}", self.domain),
            "another-lab",
        )
        .await?;
        seed_unrelated_records(&self.aws, &self.zone_id, &self.domain).await
    }

    /// What the AWS emulator holds tagged for the cluster outside EKS (load balancers, target
    /// groups, security groups, volumes).
    pub async fn aws_resources(&self) -> anyhow::Result<Vec<String>> {
        labflow_testbed::aws_leftovers::tagged_for_cluster(&self.tb.aws_access(), &self.cluster)
            .await
            .map_err(anyhow::Error::msg)
    }

    /// Everything of the environment that still exists, by place.
    pub async fn leftovers(&self) -> anyhow::Result<Vec<String>> {
        let mut left = eks_leftovers(&self.aws, &self.cluster).await?;
        left.extend(self.aws_resources().await?);
        if self.tb.eks().cluster_names().await.contains(&self.cluster) {
            left.push(format!("EKS simulator still holds {}", self.cluster));
        }
        let records = zone_records(&self.aws, &self.zone_id).await?;
        left.extend(
            mentions_owner(&records, &self.owner)
                .into_iter()
                .map(|r| format!("DNS {r}")),
        );
        for host in ["podinfo", "nlb", "stale"] {
            let name = format!("{host}.{}.", self.domain);
            if records.iter().any(|(n, _, _)| *n == name) {
                left.push(format!("DNS record {name}"));
            }
        }
        let kubeconfig = self
            .aws
            .ssm
            .get_parameter()
            .name(labflow_teardown::kubeconfig_parameter(&self.env))
            .send()
            .await;
        if kubeconfig.is_ok() {
            left.push("kubeconfig parameter".into());
        }
        Ok(left)
    }
}

/// What one converge run saw.
#[derive(Debug, Default)]
pub struct Run {
    pub outputs: Vec<Output>,
    /// Calls that failed because of an injected crash.
    pub crashed_calls: usize,
    pub seeded_stale_records: bool,
}

impl Run {
    pub fn removed(&self) -> Vec<String> {
        self.outputs
            .iter()
            .flat_map(|o| o.removed.iter().cloned())
            .collect()
    }
}

/// Calls teardown until it reports done (at most `max_calls`), as the state machine's
/// Wait-and-call-again loop does. Seeds stale records of the environment once external-dns is
/// gone. With `crash`, every call is armed to crash right after its first write.
pub async fn converge(
    lab: &Lab,
    ctx: &Ctx,
    crash: Option<&crash::Crash>,
    max_calls: usize,
) -> anyhow::Result<Run> {
    let mut run = Run::default();
    for _ in 0..max_calls {
        if !run.seeded_stale_records && !lab.external_dns_running().await {
            lab.seed_stale_records().await?;
            run.seeded_stale_records = true;
        }
        let before = crash.map_or(0, |c| c.fired().len());
        if let Some(c) = crash {
            c.arm();
        }
        let result = handle(ctx, lab.input()).await;
        let crashed = crash.is_some_and(|c| c.fired().len() > before);
        if let Some(c) = crash {
            c.disarm();
        }
        match result {
            Ok(output) => {
                ensure!(
                    !crashed,
                    "a crash was injected but the call succeeded: {output:?}"
                );
                let done = output.done;
                run.outputs.push(output);
                if done {
                    return Ok(run);
                }
            }
            Err(err) if crashed => {
                ensure!(
                    err.name() == "labflow.Transient",
                    "a crash must look transient: {err:?}"
                );
                run.crashed_calls += 1;
                continue;
            }
            Err(err) => bail!("teardown failed: {} {err}", err.name()),
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    bail!(
        "teardown not done after {max_calls} calls; last output: {:?}",
        run.outputs.last()
    )
}
