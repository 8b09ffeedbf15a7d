//! The lab answers: once everything else is healthy, each public URL the tree marks for probing
//! is requested the way a user would — `https://<host><path>` through DNS and the load balancer —
//! and must answer 200 with a marker of the app in the body. An Ingress opts in with
//! `labflow.dev/probe-path` (default `/`) and `labflow.dev/probe-expect` (the marker); every host
//! of its rules is probed.
//!
//! On the local cloud there is no public DNS: [`Prober::via`] sends the same requests to the
//! simulated load balancers' listener (plain HTTP on loopback), which routes them by `Host` as
//! the lab's Ingresses, gateways and VirtualServices say.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The annotation naming the path to request.
pub const PROBE_PATH: &str = "labflow.dev/probe-path";
/// The annotation naming what the answer's body must contain.
pub const PROBE_EXPECT: &str = "labflow.dev/probe-expect";
/// Each request's bound (connect, TLS, answer); a check probes every URL once.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of a failing answer's body is quoted in the report.
const QUOTED_BODY: usize = 200;

/// One URL to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub path: String,
    pub expect: String,
}

impl Target {
    pub fn url(&self) -> String {
        format!("https://{}{}", self.host, self.path)
    }
}

/// What one URL answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlProbe {
    pub url: String,
    /// The marker the body must contain.
    pub expect: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    pub ok: bool,
    /// Why it is not ok (no answer, wrong status, marker missing).
    pub problem: Option<String>,
    /// Why it was not requested (only where nothing can reach the lab's load balancers: the
    /// local cloud in front of a cluster it does not simulate). Does not hold the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl UrlProbe {
    /// Does this URL let the lab count as healthy?
    pub fn passes(&self) -> bool {
        self.ok || self.skipped.is_some()
    }
}

/// The URLs the Ingresses ask to be probed, sorted by URL.
pub fn targets<'a>(ingresses: impl IntoIterator<Item = &'a Value>) -> Vec<Target> {
    let mut found = Vec::new();
    for ingress in ingresses {
        let annotations = ingress.pointer("/metadata/annotations");
        let annotation = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let Some(expect) = annotation(PROBE_EXPECT) else {
            continue;
        };
        let path = annotation(PROBE_PATH).unwrap_or("/");
        let rules = ingress.pointer("/spec/rules").and_then(Value::as_array);
        for host in rules
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("host").and_then(Value::as_str))
        {
            found.push(Target {
                host: host.to_ascii_lowercase(),
                path: if path.starts_with('/') {
                    path.to_string()
                } else {
                    format!("/{path}")
                },
                expect: expect.to_string(),
            });
        }
    }
    found.sort_by_key(Target::url);
    found.dedup();
    found
}

/// Requests the URLs: over the Internet, or through one address standing for every load
/// balancer (the local cloud's).
#[derive(Debug, Clone, Default)]
pub struct Prober {
    via: Option<SocketAddr>,
    skip: Option<String>,
}

impl Prober {
    /// Real traffic: HTTPS, the system's DNS resolver.
    pub fn internet() -> Self {
        Prober::default()
    }

    /// Every host resolves to `addr`, spoken to in plain HTTP (the simulated ALBs' listener).
    pub fn via(addr: SocketAddr) -> Self {
        Prober {
            via: Some(addr),
            skip: None,
        }
    }

    /// Request nothing and say why in each URL's report (a cluster whose load balancers exist
    /// neither on AWS nor in the local cloud, e.g. kind behind `labflow local --kubeconfig`).
    pub fn skip(reason: impl Into<String>) -> Self {
        Prober {
            via: None,
            skip: Some(reason.into()),
        }
    }

    /// Request `target` once, within [`TIMEOUT`].
    pub async fn probe(&self, target: &Target) -> UrlProbe {
        let mut report = UrlProbe {
            url: target.url(),
            expect: target.expect.clone(),
            status: None,
            ok: false,
            problem: None,
            skipped: self.skip.clone(),
        };
        if report.skipped.is_some() {
            return report;
        }
        let builder = reqwest::Client::builder().timeout(TIMEOUT);
        let (builder, url) = match self.via {
            Some(addr) => (
                builder.resolve(&target.host, addr),
                format!("http://{}:{}{}", target.host, addr.port(), target.path),
            ),
            None => (builder, target.url()),
        };
        let client = match builder.build() {
            Ok(client) => client,
            Err(err) => {
                report.problem = Some(format!("no HTTP client: {err}"));
                return report;
            }
        };
        let response = match client.get(&url).send().await {
            Ok(response) => response,
            Err(err) => {
                report.problem = Some(format!("no answer: {}", error_chain(&err)));
                return report;
            }
        };
        let status = response.status().as_u16();
        report.status = Some(status);
        let body = response.text().await.unwrap_or_default();
        report.problem = if status != 200 {
            Some(format!("HTTP {status}: {}", quote(&body)))
        } else if !body.contains(&target.expect) {
            Some(format!(
                "HTTP 200 without {:?} (another app answered?): {}",
                target.expect,
                quote(&body)
            ))
        } else {
            None
        };
        report.ok = report.problem.is_none();
        report
    }
}

fn quote(body: &str) -> String {
    let mut quoted: String = body.chars().take(QUOTED_BODY).collect();
    if body.chars().count() > QUOTED_BODY {
        quoted.push('…');
    }
    quoted
}

/// The error and its causes on one line (reqwest's own message says only "error sending
/// request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_annotated_ingresses_are_probed_on_each_host() {
        let annotated = json!({
            "metadata": {"annotations": {PROBE_PATH: "productpage", PROBE_EXPECT: "Simple Bookstore App"}},
            "spec": {"rules": [{"host": "Bookinfo.lab.example.com"}, {"host": "shop.lab.example.com"}]}
        });
        let plain = json!({"spec": {"rules": [{"host": "hidden.lab.example.com"}]}});
        let found = targets([&annotated, &plain]);
        let urls: Vec<String> = found.iter().map(Target::url).collect();
        assert_eq!(
            urls,
            [
                "https://bookinfo.lab.example.com/productpage",
                "https://shop.lab.example.com/productpage"
            ]
        );
        assert!(found.iter().all(|t| t.expect == "Simple Bookstore App"));
    }

    #[tokio::test]
    async fn a_url_nobody_answers_is_reported_not_ok_with_the_reason() {
        // A port nothing listens on: bind one, then free it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9)));
        let target = Target {
            host: "app.lab.example.com".into(),
            path: "/".into(),
            expect: "app".into(),
        };
        let report = Prober::via(addr).probe(&target).await;
        assert!(!report.ok);
        assert_eq!(report.status, None);
        assert_eq!(report.url, "https://app.lab.example.com/");
        assert!(report.skipped.is_none() && !report.passes());
        let problem = report.problem.unwrap_or_default();
        assert!(problem.starts_with("no answer: "), "{problem}");
    }

    #[tokio::test]
    async fn a_skipping_prober_requests_nothing_and_says_why() {
        let target = Target {
            host: "app.lab.example.com".into(),
            path: "/".into(),
            expect: "app".into(),
        };
        let report = Prober::skip("no load balancers here").probe(&target).await;
        assert!(!report.ok && report.status.is_none() && report.problem.is_none());
        assert_eq!(report.skipped.as_deref(), Some("no load balancers here"));
        assert!(report.passes());
    }
}
