//! `labflow gitops lint` against the repository's own tree (must pass) and against one fixture
//! tree per defect class (each must fail with a finding naming the file and the object).

use std::path::{Path, PathBuf};
use std::process::Command;

use labflow_cli::gitops::real_cluster::RULES;
use labflow_cli::gitops::{lint, lint_with_root, Check, CrdError, LintError, LintReport};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the cli crate lives inside the workspace")
        .to_path_buf()
}

/// The verified CRD cache `make crds` fills (`LABFLOW_CRD_CACHE`, else `<repo>/.cache/crds`).
fn crds() -> PathBuf {
    std::env::var_os("LABFLOW_CRD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache").join("crds"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitops")
        .join(name)
}

fn lint_fixture(name: &str) -> LintReport {
    let dir = fixture(name);
    match lint_with_root(&dir, &dir, &crds()) {
        Ok(report) => report,
        Err(err) => panic!("lint of fixture {name} failed to run: {err}"),
    }
}

fn listing(report: &LintReport) -> String {
    report.findings.iter().map(|f| format!("  {f}\n")).collect()
}

/// Exactly one finding of `check`, in `file`, about `object`, whose message contains `needle`.
fn assert_single(report: &LintReport, check: Check, file: &str, object: &str, needle: &str) {
    let hits: Vec<_> = report.of(check).collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one {check:?} finding, got:\n{}",
        listing(report)
    );
    let hit = hits[0];
    assert_eq!(hit.file, file, "{hit}");
    let named = hit.object.as_ref().map(ToString::to_string);
    assert_eq!(named.as_deref(), Some(object), "{hit}");
    assert!(hit.message.contains(needle), "`{needle}` not in: {hit}");
    let line = hit.to_string();
    assert!(line.starts_with(file) && line.contains(object), "{line}");
}

#[test]
fn the_repository_tree_passes() {
    let report = match lint(&repo_root().join("infra/gitops"), &crds()) {
        Ok(report) => report,
        Err(err) => panic!("lint of infra/gitops failed to run: {err}"),
    };
    assert!(
        report.is_clean(),
        "infra/gitops has findings:\n{}",
        listing(&report)
    );
    // The tree really was read and validated, not skipped.
    assert!(report.objects >= 60, "only {} objects", report.objects);
    assert!(
        report.schema_validated >= 40,
        "only {} validated",
        report.schema_validated
    );
}

#[test]
fn the_valid_fixture_passes() {
    // Every defect fixture is this tree plus one defect.
    let report = lint_fixture("valid");
    assert!(report.is_clean(), "{}", listing(&report));
    assert_eq!(report.objects, 5);
    assert_eq!(report.schema_validated, 4);
}

#[test]
fn unparsable_yaml_is_reported_with_file_object_and_line() {
    let report = lint_fixture("parse");
    assert_single(
        &report,
        Check::Parse,
        "apps/podinfo.yaml",
        "HelmRelease podinfo/podinfo",
        "does not parse as YAML",
    );
    assert_eq!(report.findings[0].line, 17);
    assert!(
        report.findings[0].message.contains("line 35"),
        "{}",
        report.findings[0]
    );
}

#[test]
fn removed_api_versions_are_reported() {
    let report = lint_fixture("removed-api");
    assert_single(
        &report,
        Check::RemovedApi,
        "apps/podinfo.yaml",
        "HelmRelease podinfo/podinfo",
        "helm.toolkit.fluxcd.io/v2beta1 was removed in Flux 2.7; use helm.toolkit.fluxcd.io/v2",
    );
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn a_missing_kustomization_path_is_reported() {
    let report = lint_fixture("path");
    assert_single(
        &report,
        Check::Path,
        "clusters/lab/apps.yaml",
        "Kustomization flux-system/apps",
        "spec.path `./applications` does not exist",
    );
}

#[test]
fn an_unresolved_source_reference_is_reported() {
    let report = lint_fixture("reference");
    assert_single(
        &report,
        Check::Reference,
        "apps/podinfo.yaml",
        "HelmRelease podinfo/podinfo",
        "HelmRepository flux-system/podinfo-charts does not exist",
    );
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn a_dependency_cycle_is_reported() {
    let report = lint_fixture("cycle");
    assert_single(
        &report,
        Check::Cycle,
        "clusters/lab/apps.yaml",
        "Kustomization flux-system/apps",
        "flux-system/apps -> flux-system/monitoring -> flux-system/apps",
    );
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn a_chart_version_range_is_reported() {
    let report = lint_fixture("chart-version");
    assert_single(
        &report,
        Check::ChartVersion,
        "apps/podinfo.yaml",
        "HelmRelease podinfo/podinfo",
        "version `>=6.0.0` is not an exact version",
    );
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn an_unknown_cluster_variable_is_reported() {
    let report = lint_fixture("variable");
    assert_single(
        &report,
        Check::Variable,
        "apps/podinfo.yaml",
        "VirtualService podinfo/podinfo",
        "${CLUSTER_DOMAIN} is not a cluster variable",
    );
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn a_schema_violation_is_reported_against_the_real_crd() {
    let report = lint_fixture("schema");
    assert_single(
        &report,
        Check::Schema,
        "apps/podinfo.yaml",
        "VirtualService podinfo/podinfo",
        "'subsets' was unexpected",
    );
    assert!(report.findings[0]
        .message
        .contains("networking.istio.io/v1"));
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn a_file_no_kustomization_applies_is_reported() {
    let report = lint_fixture("layout");
    assert_single(
        &report,
        Check::Layout,
        "apps/stray.yaml",
        "ConfigMap podinfo/stray",
        "no Kustomization applies this file",
    );
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
}

#[test]
fn a_missing_crd_cache_says_run_make_crds() {
    let empty = tempfile::tempdir().expect("temp dir");
    let dir = fixture("valid");
    match lint_with_root(&dir, &dir, empty.path()) {
        Err(LintError::Crds(err @ CrdError::Missing(_))) => {
            assert!(err.to_string().contains("run `make crds`"), "{err}");
        }
        other => panic!("expected a missing-cache error, got {other:?}"),
    }
}

#[test]
fn the_cli_exits_1_with_findings_and_0_on_the_repository_tree() {
    let bin = env!("CARGO_BIN_EXE_labflow");
    let dir = fixture("chart-version");
    let out = Command::new(bin)
        .args(["gitops", "lint"])
        .arg(&dir)
        .arg("--repo-root")
        .arg(&dir)
        .arg("--crds")
        .arg(crds())
        .output()
        .expect("run labflow");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("apps/podinfo.yaml:17: HelmRelease podinfo/podinfo: [chart-version]"),
        "{stdout}"
    );

    let out = Command::new(bin)
        .args(["gitops", "lint"])
        .arg(repo_root().join("infra/gitops"))
        .arg("--crds")
        .arg(crds())
        .output()
        .expect("run labflow");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(": ok:"),
        "{out:?}"
    );
}

#[test]
fn the_cli_lists_the_cluster_variables() {
    let out = Command::new(env!("CARGO_BIN_EXE_labflow"))
        .args(["gitops", "vars"])
        .output()
        .expect("run labflow");
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            "CLUSTER_NAME",
            "AWS_REGION",
            "DOMAIN",
            "HOSTED_ZONE_ID",
            "OWNER_ID",
            "CERT_ARN",
            "AVAILABILITY_ZONES",
            "ENVIRONMENT",
            "VPC_ID",
            "CLUSTER_AUTOSCALER_TAG",
        ]
    );
}

/// Exactly one real-cluster finding of rule `id`, in `file`, about `object`, containing `needle`.
fn assert_rule(report: &LintReport, id: &str, file: &str, object: &str, needle: &str) {
    let prefix = format!("{id}: ");
    let hits: Vec<_> = report
        .of(Check::RealCluster)
        .filter(|f| f.message.starts_with(&prefix))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one {id} finding, got:\n{}",
        listing(report)
    );
    let hit = hits[0];
    assert_eq!(hit.file, file, "{hit}");
    assert_eq!(
        hit.object.as_ref().map(ToString::to_string).as_deref(),
        Some(object),
        "{hit}"
    );
    assert!(hit.message.contains(needle), "`{needle}` not in: {hit}");
    assert!(hit.message.contains("(source: "), "no source cited: {hit}");
}

/// Issue 24: one defect per real-cluster rule in the fixture, each found once, on its object; the
/// look-alikes beside them (an HTTP backend, a gateway not behind the Ingress, an allowed ACME
/// certificate, a policy rule on an application port) are not.
#[test]
fn every_real_cluster_rule_finds_its_defect() {
    let report = lint_fixture("real-cluster");
    let cases = [
        (
            "alb-https-sni",
            "stack/ingress.yaml",
            "Ingress edge/shop",
            "Gateway edge/public matches SNI [\"*.lab.example.com\"]",
        ),
        (
            "lb-controller-vpc",
            "stack/ingress.yaml",
            "HelmRelease kube-system/aws-load-balancer-controller",
            "values set no vpcId",
        ),
        (
            "acme-production",
            "stack/certificates.yaml",
            "Certificate edge/shop",
            "ClusterIssuer public-acme",
        ),
        (
            "kiali-tracing-path",
            "stack/tracing.yaml",
            "HelmRelease istio-system/kiali",
            "has path /tracing",
        ),
        (
            "jaeger-collector-headless",
            "stack/tracing.yaml",
            "HelmRelease observability/traces",
            "observability/traces-jaeger-collector is headless",
        ),
        (
            "jaeger-metrics-port",
            "stack/tracing.yaml",
            "HelmRelease observability/traces",
            "14269",
        ),
        (
            "loki-log-shipper",
            "stack/logs.yaml",
            "HelmRelease observability/logs",
            "nothing ships logs",
        ),
        (
            "loki-retention",
            "stack/logs.yaml",
            "HelmRelease observability/logs",
            "retention_period 168h has no effect",
        ),
        (
            "autoscaler-version",
            "stack/eks.yaml",
            "HelmRelease kube-system/autoscaler",
            "v1.33.6 is written by hand",
        ),
        (
            "eks-control-plane-scrape",
            "stack/eks.yaml",
            "HelmRelease observability/metrics",
            "scrapes kubeProxy (enabled",
        ),
        (
            "uncaptured-port-policy",
            "stack/mesh.yaml",
            "AuthorizationPolicy shop/scrapers",
            "rules[1] only matches port(s) 15090",
        ),
        (
            "templated-crds-policy",
            "stack/mesh.yaml",
            "HelmRelease istio-system/mesh-base",
            "spec.upgrade.crds has no effect",
        ),
        (
            "istio-sample-registry",
            "stack/mesh.yaml",
            "Deployment shop/ratings",
            "registry.istio.io/release/examples-bookinfo-ratings-v1:1.20.3",
        ),
        (
            "grafana-default-password",
            "stack/consoles.yaml",
            "HelmRelease observability/dashboards",
            "published default \"prom-operator\"",
        ),
    ];
    for (id, file, object, needle) in cases {
        assert_rule(&report, id, file, object, needle);
    }
    let mut covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let mut rules: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    covered.sort_unstable();
    rules.sort_unstable();
    assert_eq!(covered, rules, "every rule has its case");
    assert_eq!(
        report.of(Check::RealCluster).count(),
        cases.len(),
        "no other real-cluster findings:\n{}",
        listing(&report)
    );
}

#[test]
fn verbose_lint_lists_every_real_cluster_rule_with_its_source() {
    for args in [
        &["gitops", "lint", "--verbose"][..],
        &["lint", "--verbose"][..],
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_labflow"));
        command.args(args).arg("--crds").arg(crds());
        if args[0] == "gitops" {
            command.arg(repo_root().join("infra/gitops"));
        } else {
            command.current_dir(repo_root());
        }
        let out = command.output().expect("run labflow");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let listed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("rule ")).collect();
        assert_eq!(listed.len(), RULES.len(), "{args:?}:\n{stdout}");
        for (line, rule) in listed.iter().zip(RULES) {
            assert!(
                line.starts_with(&format!("rule {}: ", rule.id)) && line.contains("(source: "),
                "{line}"
            );
        }
    }
}
