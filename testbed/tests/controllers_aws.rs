//! The AWS controllers on a whole testbed (EKS cluster through the EKS API, kube::Client from
//! DescribeCluster, Route53 in the AWS emulator): the load balancer controller's hostnames and
//! finalizers, and external-dns's records with their ownership TXT records.

mod controllers_support;
mod testbed_support;
mod wait_support;

use anyhow::{ensure, Context as _};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use controllers_support::{api, apply_yaml, controller_deployments, eventually, get};
use kube::api::DeleteParams;
use labflow_testbed::controllers::{ControllerOptions, ExternalDnsOptions, LoadBalancerOptions};
use labflow_testbed::ControllersFor;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ALB_FINALIZER: &str = "ingress.k8s.aws/resources";
const NLB_FINALIZER: &str = "service.k8s.aws/resources";
const ING: &str = "networking.k8s.io/v1";

fn lb_controller() -> String {
    controller_deployments(&[("kube-system", "aws-load-balancer-controller")])
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn hostname(obj: &Value) -> Option<String> {
    obj.pointer("/status/loadBalancer/ingress/0/hostname")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn ingress(name: &str, hosts: &[&str], annotation: Option<&str>) -> String {
    let rules: String = hosts
        .iter()
        .map(|h| {
            format!("  - host: {h}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: web\n            port:\n              number: 80\n")
        })
        .collect();
    let annotations = annotation
        .map(|a| format!("  annotations:\n    external-dns.alpha.kubernetes.io/hostname: {a}\n"))
        .unwrap_or_default();
    format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: default\n{annotations}spec:\n  ingressClassName: alb\n  rules:\n{rules}")
}

fn lb_service(name: &str, annotation: Option<&str>) -> String {
    let annotations = annotation
        .map(|a| format!("  annotations:\n    external-dns.alpha.kubernetes.io/hostname: {a}\n"))
        .unwrap_or_default();
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n{annotations}spec:\n  type: LoadBalancer\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n    targetPort: 8080\n")
}

#[tokio::test]
async fn load_balancers_get_hostnames_and_finalizers_hold_while_the_controller_is_gone(
) -> anyhow::Result<()> {
    let controllers: ControllersFor = Arc::new(|_: &str| {
        Some(
            ControllerOptions::default()
                .with_workloads()
                .with_load_balancers(LoadBalancerOptions::default()),
        )
    });
    let cl = testbed_support::cluster("lb", Some(controllers)).await?;
    let c = &cl.client(true).await?;
    apply_yaml(c, &lb_controller()).await?;
    apply_yaml(c, &lb_service("web", None)).await?;
    apply_yaml(c, &ingress("web", &["app.example.com"], None)).await?;

    let ing = eventually(10, "Ingress hostname", || async {
        Ok(get(c, ING, "Ingress", Some("default"), "web")
            .await?
            .filter(|i| hostname(i).is_some()))
    })
    .await?;
    let svc = eventually(10, "Service hostname", || async {
        Ok(get(c, "v1", "Service", Some("default"), "web")
            .await?
            .filter(|s| hostname(s).is_some()))
    })
    .await?;
    let alb = hostname(&ing).context("alb")?;
    let nlb = hostname(&svc).context("nlb")?;
    ensure!(
        alb.starts_with("k8s-default-web-") && alb.ends_with(".eu-west-1.elb.amazonaws.com"),
        "ALB hostname {alb}"
    );
    ensure!(
        nlb.starts_with("k8s-default-web-") && nlb.ends_with(".elb.eu-west-1.amazonaws.com"),
        "NLB hostname {nlb}"
    );
    assert_eq!(finalizers(&ing), [ALB_FINALIZER]);
    assert_eq!(finalizers(&svc), [NLB_FINALIZER]);
    let balancers = cl
        .testbed
        .load_balancers(&cl.name)
        .context("controllers attached")?;
    let mut kinds: Vec<(String, String)> = balancers
        .list()
        .into_iter()
        .map(|lb| (lb.kind, lb.dns_name))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("application".to_string(), alb.clone()),
            ("network".to_string(), nlb.clone())
        ]
    );

    // The controller is uninstalled first: deleting the Service and Ingress leaves them stuck.
    api(c, "apps/v1", "Deployment", Some("kube-system"))
        .delete("aws-load-balancer-controller", &DeleteParams::default())
        .await?;
    eventually(10, "controller Deployment gone", || async {
        Ok(get(
            c,
            "apps/v1",
            "Deployment",
            Some("kube-system"),
            "aws-load-balancer-controller",
        )
        .await?
        .is_none()
        .then_some(()))
    })
    .await?;
    api(c, ING, "Ingress", Some("default"))
        .delete("web", &DeleteParams::default())
        .await?;
    api(c, "v1", "Service", Some("default"))
        .delete("web", &DeleteParams::default())
        .await?;
    // Several resyncs later they are still there, Terminating, finalizers in place.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (version, kind, finalizer) in [
        (ING, "Ingress", ALB_FINALIZER),
        ("v1", "Service", NLB_FINALIZER),
    ] {
        let obj = get(c, version, kind, Some("default"), "web")
            .await?
            .with_context(|| format!("{kind} deleted although its controller is gone"))?;
        ensure!(
            obj.pointer("/metadata/deletionTimestamp").is_some(),
            "{kind} has no deletionTimestamp"
        );
        assert_eq!(finalizers(&obj), [finalizer]);
    }
    assert_eq!(balancers.list().len(), 2, "load balancers kept");

    // The controller comes back: it deletes the load balancers and lets the objects go.
    apply_yaml(c, &lb_controller()).await?;
    for (version, kind) in [(ING, "Ingress"), ("v1", "Service")] {
        eventually(10, &format!("{kind} released"), || async {
            Ok(get(c, version, kind, Some("default"), "web")
                .await?
                .is_none()
                .then_some(()))
        })
        .await?;
    }
    assert!(balancers.list().is_empty(), "load balancers deleted");
    Ok(())
}

/// Every record set of the zone as (name, type, values or alias target).
async fn records(
    r53: &aws_sdk_route53::Client,
    zone: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await?;
    ensure!(!out.is_truncated(), "more records than one page");
    Ok(out
        .resource_record_sets()
        .iter()
        .map(|r| {
            let value = match r.alias_target() {
                Some(a) => format!("ALIAS {}", a.dns_name().trim_end_matches('.')),
                None => r
                    .resource_records()
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            (
                r.name().trim_end_matches('.').to_string(),
                r.r#type().as_str().to_string(),
                value,
            )
        })
        .collect())
}

fn find<'a>(
    recs: &'a [(String, String, String)],
    name: &str,
    rtype: &str,
) -> Option<&'a (String, String, String)> {
    recs.iter().find(|(n, t, _)| n == name && t == rtype)
}

#[tokio::test]
async fn external_dns_writes_owned_records_to_route53_and_removes_them_with_the_ingress(
) -> anyhow::Result<()> {
    // The zone lives in the AWS emulator; external-dns is configured once it exists.
    let dns: Arc<Mutex<Option<ExternalDnsOptions>>> = Arc::default();
    let for_clusters = dns.clone();
    let controllers: ControllersFor = Arc::new(move |_: &str| {
        let mut c = ControllerOptions::default()
            .with_workloads()
            .with_load_balancers(LoadBalancerOptions::default());
        if let Some(d) = for_clusters.lock().ok().and_then(|d| d.clone()) {
            c = c.with_external_dns(d);
        }
        Some(c)
    });
    // The cluster only turns ACTIVE (and gets controllers) after the zone is set up below, so
    // create the testbed first, then the zone, then the cluster.
    testbed_support::eks::rustls_provider();
    let domain = format!("{}.example.com", testbed_support::eks::unique("lab"));
    let testbed = labflow_testbed::Testbed::start(labflow_testbed::TestbedOptions {
        controllers: Some(controllers),
        ..Default::default()
    })
    .await?;
    let r53 = aws_sdk_route53::Client::new(&testbed.sdk_config().await);
    let zone = r53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(testbed_support::eks::unique("ref"))
        .send()
        .await?
        .hosted_zone
        .context("zone")?
        .id
        .trim_start_matches("/hostedzone/")
        .to_string();
    // Records nobody in the cluster owns.
    let unrelated = [
        (format!("mail.{domain}"), RrType::A, "192.0.2.25"),
        (
            format!("notes.{domain}"),
            RrType::Txt,
            "\"heritage=external-dns,external-dns/owner=someone-else,external-dns/resource=ingress/default/web\"",
        ),
    ];
    let mut batch = ChangeBatch::builder();
    for (name, t, value) in &unrelated {
        batch = batch.changes(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(
                    ResourceRecordSet::builder()
                        .name(name)
                        .r#type(t.clone())
                        .ttl(300)
                        .resource_records(ResourceRecord::builder().value(*value).build()?)
                        .build()?,
                )
                .build()?,
        );
    }
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(batch.build()?)
        .send()
        .await?;
    let (key, secret) = testbed.credentials();
    let mut options = ExternalDnsOptions::new(&testbed.aws_endpoint(), &zone, "lab-owner");
    options.region = testbed.region().to_string();
    options.access_key_id = key.to_string();
    options.secret_access_key = secret.to_string();
    *dns.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Some(options);

    let eks = testbed_support::eks::eks_client(testbed.eks_endpoint(), testbed.credentials());
    let name = testbed_support::eks::unique("dns");
    testbed_support::eks::create_cluster(&eks, &name)
        .send()
        .await?;
    testbed_support::eks::wait_status(&eks, &name, "ACTIVE", Duration::from_secs(10)).await?;
    testbed_support::eks::grant(
        &eks,
        &name,
        testbed.principal(),
        "AmazonEKSClusterAdminPolicy",
    )
    .await?;
    let cluster = eks
        .describe_cluster()
        .name(&name)
        .send()
        .await?
        .cluster
        .context("cluster")?;
    let cl = testbed_support::Cluster {
        endpoint: cluster.endpoint.context("endpoint")?,
        ca: cluster
            .certificate_authority
            .and_then(|a| a.data)
            .context("ca")?,
        testbed,
        eks,
        name,
    };
    let c = &cl.client(true).await?;
    let before = records(&r53, &zone).await?;

    apply_yaml(
        c,
        &controller_deployments(&[
            ("kube-system", "aws-load-balancer-controller"),
            ("external-dns", "external-dns"),
        ]),
    )
    .await?;
    let app = format!("app.{domain}");
    let www = format!("www.{domain}");
    let api_host = format!("api.{domain}");
    apply_yaml(c, &ingress("web", &[&app, "shop.example.org"], Some(&www))).await?;
    apply_yaml(c, &lb_service("api", Some(&api_host))).await?;

    let alb = eventually(10, "Ingress hostname", || async {
        Ok(get(c, ING, "Ingress", Some("default"), "web")
            .await?
            .and_then(|i| hostname(&i)))
    })
    .await?;
    let nlb = eventually(10, "Service hostname", || async {
        Ok(get(c, "v1", "Service", Some("default"), "api")
            .await?
            .and_then(|s| hostname(&s)))
    })
    .await?;
    let recs = eventually(15, "records in Route53", || async {
        let recs = records(&r53, &zone).await?;
        let all = [&app, &www, &api_host].iter().all(|h| {
            find(&recs, h, "A").is_some()
                && find(&recs, h, "AAAA").is_some()
                && find(&recs, &format!("labflow-cname-{h}"), "TXT").is_some()
                && find(&recs, &format!("labflow-aaaa-{h}"), "TXT").is_some()
        });
        Ok(all.then_some(recs))
    })
    .await?;
    for (host, target, resource) in [
        (&app, &alb, "ingress/default/web"),
        (&www, &alb, "ingress/default/web"),
        (&api_host, &nlb, "service/default/api"),
    ] {
        // external-dns v0.21: A and AAAA ALIAS; the A's registry entry is filed under `cname-`
        // (registry/txt/registry.go), the AAAA's under `aaaa-`; no `a-` before v0.22.
        for (record_type, entry) in [("A", "cname"), ("AAAA", "aaaa")] {
            assert_eq!(
                find(&recs, host, record_type).context("alias")?.2,
                format!("ALIAS {target}"),
                "{host} {record_type}"
            );
            assert_eq!(
                find(&recs, &format!("labflow-{entry}-{host}"), "TXT")
                    .context("TXT")?
                    .2,
                format!("\"heritage=external-dns,external-dns/owner=lab-owner,external-dns/resource={resource}\""),
                "{host}"
            );
        }
        ensure!(find(&recs, &format!("labflow-a-{host}"), "TXT").is_none());
    }
    ensure!(
        !recs.iter().any(|(n, _, _)| n.contains("shop.example.org")),
        "a host outside the zone got a record"
    );

    // The Ingress goes (its controller is running, so the finalizer lets it go): its records go
    // with it; the Service's and the unrelated ones stay as they were.
    api(c, ING, "Ingress", Some("default"))
        .delete("web", &DeleteParams::default())
        .await?;
    let after = eventually(15, "Ingress records removed", || async {
        let recs = records(&r53, &zone).await?;
        let gone = [&app, &www].iter().all(|h| {
            find(&recs, h, "A").is_none()
                && find(&recs, h, "AAAA").is_none()
                && find(&recs, &format!("labflow-cname-{h}"), "TXT").is_none()
                && find(&recs, &format!("labflow-aaaa-{h}"), "TXT").is_none()
        });
        Ok(gone.then_some(recs))
    })
    .await?;
    ensure!(
        get(c, ING, "Ingress", Some("default"), "web")
            .await?
            .is_none(),
        "Ingress still there"
    );
    assert_eq!(
        find(&after, &api_host, "A").context("api A")?.2,
        format!("ALIAS {nlb}")
    );
    let mut expected = before.clone();
    for (name, record_type) in [
        (api_host.clone(), "A"),
        (api_host.clone(), "AAAA"),
        (format!("labflow-cname-{api_host}"), "TXT"),
        (format!("labflow-aaaa-{api_host}"), "TXT"),
    ] {
        expected.push(
            find(&after, &name, record_type)
                .with_context(|| format!("{record_type} {name}"))?
                .clone(),
        );
    }
    let mut got = after.clone();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "only the Service's records added to the zone"
    );
    for (n, _, v) in &unrelated {
        ensure!(
            after.iter().any(|(name, _, value)| name == n && value == v),
            "unrelated record {n} changed"
        );
    }
    Ok(())
}
