//! Health evaluation of a tree of 1,000 Flux-managed objects: the root Kustomization's inventory
//! walked transitively (`tree`) and every object assessed with the kstatus rules (`assess_tree`),
//! i.e. everything health-check does per call apart from listing the objects over HTTP.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use labflow_health_check::evaluate::{assess_tree, root, tree, Listed};
use serde_json::{json, Value};

const TARGET: &str = "main@sha1:9d9bfee6a2d35515d56712a50005fc08ccb6f0f4";
const CHILDREN: usize = 10;
/// Per child: 10 Kustomizations + 990 objects in all = 1,000 objects below the root.
const PER_CHILD: usize = 99;

fn ready(api_version: &str, kind: &str, ns: &str, name: &str, extra: Value) -> Value {
    let mut obj = json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": ns, "generation": 3},
        "status": {"observedGeneration": 3, "conditions": [
            {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "ok",
             "observedGeneration": 3, "lastTransitionTime": "2026-11-30T03:12:47Z"}]}
    });
    if let (Some(o), Value::Object(e)) = (obj.as_object_mut(), extra) {
        for (k, v) in e {
            if let (Some(Value::Object(dst)), Value::Object(src)) = (o.get_mut(&k), v.clone()) {
                dst.extend(src);
            } else {
                o.insert(k, v);
            }
        }
    }
    obj
}

fn kustomization(name: &str, entries: Vec<Value>) -> Value {
    ready(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "flux-system",
        name,
        json!({
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system"}, "path": format!("./{name}")},
            "status": {"lastAppliedRevision": TARGET, "inventory": {"entries": entries}}
        }),
    )
}

fn fixture() -> (Vec<Value>, Listed) {
    let mut kustomizations = Vec::new();
    let mut helm = Vec::new();
    let mut deployments = Vec::new();
    let mut configmaps = Vec::new();
    let mut root_entries = Vec::new();
    for c in 0..CHILDREN {
        let child = format!("child-{c}");
        root_entries.push(json!({"id": format!("flux-system_{child}_kustomize.toolkit.fluxcd.io_Kustomization"), "v": "v1"}));
        let ns = format!("ns-{c}");
        let mut entries = Vec::new();
        for i in 0..PER_CHILD {
            match i % 3 {
                0 => {
                    let name = format!("release-{i}");
                    entries.push(json!({"id": format!("{ns}_{name}_helm.toolkit.fluxcd.io_HelmRelease"), "v": "v2"}));
                    helm.push(ready(
                        "helm.toolkit.fluxcd.io/v2",
                        "HelmRelease",
                        &ns,
                        &name,
                        json!({}),
                    ));
                }
                1 => {
                    let name = format!("deploy-{i}");
                    entries.push(json!({"id": format!("{ns}_{name}_apps_Deployment"), "v": "v1"}));
                    deployments.push(json!({
                        "apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": name, "namespace": ns, "generation": 2},
                        "spec": {"replicas": 2},
                        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                                   "readyReplicas": 2, "availableReplicas": 2,
                                   "conditions": [{"type": "Available", "status": "True"}]}
                    }));
                }
                _ => {
                    let name = format!("config-{i}");
                    entries.push(json!({"id": format!("{ns}_{name}__ConfigMap"), "v": "v1"}));
                    configmaps.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}}));
                }
            }
        }
        kustomizations.push(kustomization(&child, entries));
    }
    kustomizations.push(kustomization("flux-system", root_entries));
    let mut listed = Listed::default();
    listed.insert_all(
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        kustomizations.clone(),
    );
    listed.insert_all("helm.toolkit.fluxcd.io", "HelmRelease", helm);
    listed.insert_all("apps", "Deployment", deployments);
    listed.insert_all("", "ConfigMap", configmaps);
    (kustomizations, listed)
}

fn bench(c: &mut Criterion) {
    let (kustomizations, listed) = fixture();
    let evaluate = || {
        let root = root(&kustomizations)?;
        let refs = tree(&kustomizations);
        Some((refs.len(), assess_tree(root, &refs, &listed, Some(TARGET))))
    };
    match evaluate() {
        Some((1000, report)) if report.counts.current == 1001 => {}
        Some((n, report)) => panic!("fixture: {n} objects, counts {:?}", report.counts),
        None => panic!("fixture has no root Kustomization"),
    }
    let mut group = c.benchmark_group("health");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("evaluate_1000_objects", |b| b.iter(evaluate));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
