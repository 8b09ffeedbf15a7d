//! Tracing: Jaeger (chart `jaeger`, 4.x = Jaeger v2) as Istio's trace sink and Kiali's source.

use serde_json::Value;

use super::{Findings, Release, Rule, Tree};

pub const KIALI_TRACING_PATH: Rule = Rule {
    id: "kiali-tracing-path",
    summary: "Kiali's tracing internal_url path is the Jaeger query base path (`/` unless base_path is set): Kiali appends /api/traces to it",
    source: "kiali v2.27.0 business/tracing jaeger HTTP client (internal_url + /api/...); jaeger v2.13.0 cmd/query/app/flags.go QueryOptions.BasePath (default /); jaegertracing/helm-charts jaeger-4.1.0 allinone-query-svc.yaml",
};

pub const JAEGER_COLLECTOR_HEADLESS: Rule = Rule {
    id: "jaeger-collector-headless",
    summary: "a Jaeger collector Service that Istio sends spans to is not headless: sidecars get an ORIGINAL_DST cluster for a headless Service and lose spans",
    source: "jaegertracing/helm-charts jaeger-4.1.0 templates/allinone-collector-svc.yaml (allInOne.service.headless, default true); istio 1.30.3 pilot/pkg/serviceregistry/kube/conversion.go (headless -> Passthrough); istio/istio#50117",
};

pub const JAEGER_METRICS_PORT: Rule = Rule {
    id: "jaeger-metrics-port",
    summary: "the Jaeger v2 pod's prometheus.io/port annotation names 8888: chart 4.x hard-codes 14269, Jaeger v1's admin port, where v2 serves nothing",
    source: "jaegertracing/helm-charts jaeger-4.1.0 templates/allinone-deploy.yaml (prometheus.io/port: \"14269\"); jaeger v2.13.0 cmd/jaeger/internal/all-in-one.yaml (metrics on :8888)",
};

/// Jaeger v2's internal metrics port (all-in-one.yaml, `service.telemetry.metrics`).
const V2_METRICS_PORT: &str = "8888";
const PORT_ANNOTATION: &str = "prometheus.io/port";

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    let jaegers: Vec<Release<'_>> = tree
        .releases_of("jaeger")
        .filter(|r| r.major_minor().is_some_and(|(major, _)| major >= 4))
        .filter(|r| r.flag("/allInOne/enabled", true))
        .collect();
    for jaeger in &jaegers {
        check_collector(tree, jaeger, out);
        check_metrics_annotation(jaeger, out);
    }
    for kiali in tree.releases_of("kiali-server") {
        check_kiali(&jaegers, &kiali, out);
    }
}

/// The chart's `jaeger.fullname`: the release name when it contains `jaeger`, else
/// `<release>-jaeger` (charts/jaeger/templates/_helpers.tpl).
fn fullname(jaeger: &Release<'_>) -> String {
    let release = jaeger.release_name();
    if release.contains("jaeger") {
        release.to_owned()
    } else {
        format!("{release}-jaeger")
    }
}

/// `(service, namespace)` of a `http://svc.ns[.svc[.cluster.local]][:port]/...` URL or host.
fn service_of(host_or_url: &str) -> Option<(&str, &str)> {
    let rest = host_or_url
        .split_once("://")
        .map_or(host_or_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    Some((labels.next()?, labels.next()?))
}

fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |at| &rest[at..])
}

fn check_collector(tree: &Tree<'_>, jaeger: &Release<'_>, out: &mut Findings<'_>) {
    if !jaeger.flag("/allInOne/service/headless", true) {
        return;
    }
    let collector = format!("{}-collector", fullname(jaeger));
    let namespace = jaeger.target_namespace();
    // Istio's trace sinks: meshConfig.extensionProviders[].<provider>.service of an istiod release.
    for istiod in tree.releases_of("istiod") {
        let providers = istiod
            .value("/meshConfig/extensionProviders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for provider in providers {
            let services = provider
                .as_object()
                .into_iter()
                .flat_map(|p| p.values())
                .filter_map(|config| config.get("service").and_then(Value::as_str));
            for service in services {
                if service_of(service) == Some((collector.as_str(), namespace)) {
                    out.report(
                        jaeger.object,
                        &JAEGER_COLLECTOR_HEADLESS,
                        format!(
                            "Service {namespace}/{collector} is headless (allInOne.service.headless defaults to true) and istiod release {} sends spans to it; set allInOne.service.headless: false",
                            istiod.object.name()
                        ),
                    );
                }
            }
        }
    }
}

/// Is `patch` (a postRenderers kustomize patch) setting the pod template's metrics port?
fn sets_metrics_port(patch: &Value) -> bool {
    let Some(text) = patch.get("patch").and_then(Value::as_str) else {
        return false;
    };
    let Ok(parsed) = serde_yaml_ng::from_str::<Value>(text) else {
        return false;
    };
    let annotation_path = "/spec/template/metadata/annotations/prometheus.io~1port";
    let strategic = parsed.pointer(annotation_path).and_then(Value::as_str);
    let json6902 = parsed.as_array().into_iter().flatten().find_map(|op| {
        (op.get("path").and_then(Value::as_str) == Some(annotation_path))
            .then(|| op.get("value").and_then(Value::as_str))
            .flatten()
    });
    strategic.or(json6902) == Some(V2_METRICS_PORT)
}

fn check_metrics_annotation(jaeger: &Release<'_>, out: &mut Findings<'_>) {
    let patched = jaeger
        .object
        .value
        .pointer("/spec/postRenderers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.pointer("/kustomize/patches").and_then(Value::as_array))
        .flatten()
        .any(sets_metrics_port);
    if !patched {
        out.report(
            jaeger.object,
            &JAEGER_METRICS_PORT,
            format!(
                "chart {} annotates the pod {PORT_ANNOTATION}: \"14269\" (no value changes it) but Jaeger v2 serves metrics on {V2_METRICS_PORT}: every annotation-based scrape fails; patch the annotation with a postRenderer",
                jaeger.version
            ),
        );
    }
}

fn check_kiali(jaegers: &[Release<'_>], kiali: &Release<'_>, out: &mut Findings<'_>) {
    if !kiali.flag("/external_services/tracing/enabled", false) {
        return;
    }
    let Some(url) = kiali
        .value("/external_services/tracing/internal_url")
        .and_then(Value::as_str)
    else {
        return;
    };
    let Some((service, namespace)) = service_of(url) else {
        return;
    };
    let Some(jaeger) = jaegers
        .iter()
        .find(|j| j.target_namespace() == namespace && service == format!("{}-query", fullname(j)))
    else {
        return;
    };
    let base_path = jaeger
        .value("/userconfig/extensions/jaeger_query/base_path")
        .and_then(Value::as_str)
        .unwrap_or("/");
    let trim = |p: &str| p.trim_end_matches('/').to_owned();
    if trim(path_of(url)) != trim(base_path) {
        out.report(
            kiali.object,
            &KIALI_TRACING_PATH,
            format!(
                "tracing internal_url {url} has path {}, but {namespace}/{service} (Jaeger release {}) serves its query API at base path {base_path}: Kiali's trace views stay empty",
                path_of(url),
                jaeger.object.name()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_service_namespace_and_path() {
        let url = "http://jaeger-query.istio-system.svc:16686/jaeger";
        assert_eq!(service_of(url), Some(("jaeger-query", "istio-system")));
        assert_eq!(path_of(url), "/jaeger");
        assert_eq!(path_of("http://jaeger-query.istio-system:16686"), "/");
        assert_eq!(
            service_of("jaeger-collector.istio-system.svc.cluster.local"),
            Some(("jaeger-collector", "istio-system"))
        );
        assert_eq!(service_of("localhost"), None);
    }
}
