//! Certificates of an ephemeral lab: rebuilt nightly, so public ACME rate limits are reached.

use super::{Findings, Object, Rule, Tree};

pub const ACME_PRODUCTION: Rule = Rule {
    id: "acme-production",
    summary: "no Certificate of an ephemeral lab comes from Let's Encrypt production unless annotated `labflow.dev/acme-production: allowed`: 5 certificates per identical set of names per 7 days fails the 6th rebuild",
    source: "https://letsencrypt.org/docs/rate-limits/ (New Certificates per Exact Set of Identifiers: 5 per 7 days; per Registered Domain: 50 per 7 days)",
};

/// The opt-out, on the Certificate (or the Ingress cert-manager's ingress-shim reads).
pub const ALLOW_ANNOTATION: &str = "labflow.dev/acme-production";
const LETS_ENCRYPT_PRODUCTION: &str = "acme-v02.api.letsencrypt.org";
const GROUP: &str = "cert-manager.io";

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    for certificate in tree.of_kind(GROUP, "Certificate") {
        let kind = certificate
            .str_at("/spec/issuerRef/kind")
            .unwrap_or("Issuer");
        let name = certificate.str_at("/spec/issuerRef/name").unwrap_or("");
        report_if_production(tree, certificate, kind, name, out);
    }
    // cert-manager's ingress-shim orders a Certificate for annotated Ingresses.
    for ingress in tree.of_kind("networking.k8s.io", "Ingress") {
        for (annotation, kind) in [
            ("cert-manager.io/cluster-issuer", "ClusterIssuer"),
            ("cert-manager.io/issuer", "Issuer"),
        ] {
            if let Some(name) = ingress.annotation(annotation) {
                report_if_production(tree, ingress, kind, name, out);
            }
        }
    }
}

fn report_if_production(
    tree: &Tree<'_>,
    user: &Object<'_>,
    kind: &str,
    name: &str,
    out: &mut Findings<'_>,
) {
    if user.annotation(ALLOW_ANNOTATION) == Some("allowed") {
        return;
    }
    let issuer = tree.of_kind(GROUP, kind).find(|i| {
        i.name() == name && (kind == "ClusterIssuer" || i.namespace() == user.namespace())
    });
    let Some(server) = issuer.and_then(|i| i.str_at("/spec/acme/server")) else {
        return;
    };
    if server.contains(LETS_ENCRYPT_PRODUCTION) {
        out.report(
            user,
            &ACME_PRODUCTION,
            format!(
                "orders its certificate from {kind} {name} (Let's Encrypt production, {server}); a lab rebuilt every night reaches the 5-per-week limit for the same names and its Certificate never becomes Ready. Use a cluster-local issuer (cert-manager selfSigned or CA) where no public client checks the certificate, or annotate {ALLOW_ANNOTATION}: allowed"
            ),
        );
    }
}
