//! Request rules: which requests a fault applies to and what happens to them.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which server a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// Every kubesim API server the plan is attached to.
    Kubernetes,
    /// The AWS side: the EKS simulator's API (target `eks`). Requests to the AWS emulator
    /// (moto: SSM, Route53, STS, ...) go straight to it and are not subject to rules.
    Aws,
    #[default]
    Any,
}

/// What a firing rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Action {
    /// Answer with this HTTP status (429, 500, 503, ...) and an error body in the server's format.
    Status { code: u16 },
    /// Never answer (the client's time-out decides).
    Hang,
    /// Wait this long, then handle the request normally.
    Delay { millis: u64 },
}

/// A request rule. Built with [`Rule::new`] and the matchers, or posted as JSON to the control API:
/// `{"side":"kubernetes","method":"GET","path":"^/api/v1/namespaces/default/configmaps","nth":2,
///   "action":{"type":"status","code":500}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub side: Side,
    /// The cluster name (Kubernetes) or AWS service (`eks`, `ssm`, `route53`, ...); None = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// HTTP method, case-insensitive; None = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A regular expression searched in the request path; None = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// AWS operation name (`X-Amz-Target` suffix or `Action=`), exact; None = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Fire only on the Nth matching request (1-based, counted from when the rule was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// Fire at most this many times (None: every matching request). Ignored with `nth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("invalid path regex {0:?}: {1}")]
    Regex(String, regex::Error),
    #[error("nth must be at least 1")]
    ZeroNth,
}

impl Rule {
    pub fn new(side: Side, action: Action) -> Self {
        Rule {
            side,
            target: None,
            method: None,
            path: None,
            operation: None,
            nth: None,
            times: None,
            action,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    pub fn path(mut self, regex: impl Into<String>) -> Self {
        self.path = Some(regex.into());
        self
    }

    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }

    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Checks the regex and counters (the control API refuses invalid rules up front).
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.nth == Some(0) {
            return Err(RuleError::ZeroNth);
        }
        if let Some(p) = &self.path {
            Regex::new(p).map_err(|e| RuleError::Regex(p.clone(), e))?;
        }
        Ok(())
    }
}

/// The request a server is about to handle, as rules see it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub side: Option<Side>,
    /// Cluster name (Kubernetes) or AWS service name.
    pub target: String,
    pub method: String,
    pub path: String,
    pub operation: Option<String>,
}

impl RequestInfo {
    pub fn kubernetes(cluster: &str, method: &str, path: &str) -> Self {
        RequestInfo {
            side: Some(Side::Kubernetes),
            target: cluster.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            operation: None,
        }
    }

    pub fn aws(service: &str, method: &str, path: &str, operation: Option<&str>) -> Self {
        RequestInfo {
            side: Some(Side::Aws),
            target: service.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            operation: operation.map(str::to_string),
        }
    }
}

/// What the server must do with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status instead of handling the request.
    Respond { code: u16, message: String },
    /// Hold the request forever.
    Hang,
    /// Sleep this long, then handle the request.
    Delay(Duration),
}

impl FaultAction {
    /// For servers: hang, or sleep for a delay (a Respond returns at once).
    pub async fn wait(&self) {
        match self {
            FaultAction::Hang => std::future::pending::<()>().await,
            FaultAction::Delay(d) => tokio::time::sleep(*d).await,
            FaultAction::Respond { .. } => {}
        }
    }
}

pub(super) struct RuleState {
    pub rule: Rule,
    regex: Option<Regex>,
    seen: u64,
    pub fired: u64,
}

impl RuleState {
    pub fn new(rule: Rule) -> Self {
        // An invalid regex matches nothing (the control API validates before adding).
        let regex = rule.path.as_deref().and_then(|p| Regex::new(p).ok());
        RuleState {
            rule,
            regex,
            seen: 0,
            fired: 0,
        }
    }

    fn matches(&self, req: &RequestInfo) -> bool {
        let r = &self.rule;
        let side_ok = match (r.side, req.side) {
            (Side::Any, _) | (_, None) => true,
            (want, Some(got)) => want == got,
        };
        side_ok
            && r.target.as_deref().is_none_or(|t| t == req.target)
            && r.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&req.method))
            && match (&r.path, &self.regex) {
                (None, _) => true,
                (Some(_), Some(re)) => re.is_match(&req.path),
                (Some(_), None) => false,
            }
            && r.operation
                .as_deref()
                .is_none_or(|o| req.operation.as_deref() == Some(o))
    }

    /// Counts a matching request; Some(action) when the rule fires on it.
    pub fn offer(&mut self, req: &RequestInfo) -> Option<FaultAction> {
        if !self.matches(req) {
            return None;
        }
        self.seen += 1;
        let fires = match (self.rule.nth, self.rule.times) {
            (Some(n), _) => self.seen == n,
            (None, Some(t)) => self.fired < t,
            (None, None) => true,
        };
        if !fires {
            return None;
        }
        self.fired += 1;
        Some(match &self.rule.action {
            Action::Status { code } => FaultAction::Respond {
                code: *code,
                message: format!("injected fault: HTTP {code}"),
            },
            Action::Hang => FaultAction::Hang,
            Action::Delay { millis } => FaultAction::Delay(Duration::from_millis(*millis)),
        })
    }
}
