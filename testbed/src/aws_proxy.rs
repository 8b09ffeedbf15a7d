//! The AWS emulator's front door: a loopback HTTP server that forwards every request, unchanged,
//! to moto and passes moto's answer back, except where moto is more lenient than the real
//! service (DESIGN.md §6, "Fidelity"). [`crate::moto::Moto::endpoint`] is this server, so every
//! test and local run meets these rules.
//!
//! Rules enforced here, each as Route53 documents it:
//! - ChangeResourceRecordSets is validated change by change against the zone as the earlier
//!   changes of the batch leave it, and applied all or nothing: a DELETE must name an existing
//!   record set (name, type, set identifier) with exactly its current values (TTL, values in any
//!   order, alias target, routing fields); a CREATE must not meet an existing one. A refused batch
//!   is `InvalidChangeBatch` (HTTP 400) listing every problem; moto deletes a record that is gone
//!   (or holds other values) silently, or answers `InvalidInput`.
//!
//! - Step Functions StartExecution refuses an execution input over 262,144 bytes (UTF-8) with a
//!   ValidationException; moto starts it.
//!
//! - STS GetCallerIdentity with long-term IAM user credentials answers the user's IAM ARN
//!   (`arn:aws:iam::<account>:user/<name>`, the STS API reference's example); moto answers
//!   `arn:aws:sts::<account>:user/moto`, an ARN no access entry can name.
//!
//! A fault hook ([`Route53Faults`]) lets a test make a record set vanish just before the next
//! change of a zone, as when another writer removes it between a caller's listing and its change.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The running front door. Dropping it stops the server.
pub struct AwsProxy {
    addr: SocketAddr,
    faults: Route53Faults,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for AwsProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

impl AwsProxy {
    /// Serve on a free loopback port, forwarding to `upstream` (moto). Runs on a thread of its
    /// own with its own runtime, so it can be started from sync code and outlives any test's
    /// runtime (the shared emulator lives for the whole process).
    pub fn start(upstream: SocketAddr) -> std::io::Result<AwsProxy> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("labflow-aws-proxy")
            .enable_all()
            .build()?;
        let faults = Route53Faults::default();
        let (shutdown, stop) = oneshot::channel();
        let state_faults = faults.clone();
        std::thread::Builder::new()
            .name("labflow-aws-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(err) => {
                            tracing::error!(%err, "AWS proxy: cannot listen");
                            return;
                        }
                    };
                    let state = Arc::new(State::new(upstream, state_faults));
                    serve(listener, state, stop).await;
                });
            })?;
        Ok(AwsProxy {
            addr,
            faults,
            shutdown: Some(shutdown),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Faults injected on the Route53 path.
    pub fn route53_faults(&self) -> &Route53Faults {
        &self.faults
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// (name, type) of record sets, by bare zone id.
type Vanishing = HashMap<String, Vec<(String, String)>>;

/// Record sets to remove just before the next ChangeResourceRecordSets of their zone.
#[derive(Debug, Clone, Default)]
pub struct Route53Faults {
    vanish: Arc<Mutex<Vanishing>>,
}

impl Route53Faults {
    /// Just before the next ChangeResourceRecordSets of `zone_id` is checked, the record set
    /// `name`/`record_type` is deleted (with its current values) as another writer would —
    /// external-dns, a person in the console — between a caller's listing and its change.
    pub fn vanish_before_next_change(&self, zone_id: &str, name: &str, record_type: &str) {
        if let Ok(mut v) = self.vanish.lock() {
            v.entry(bare_zone_id(zone_id).to_string())
                .or_default()
                .push((name.to_string(), record_type.to_string()));
        }
    }

    fn take(&self, zone_id: &str) -> Vec<(String, String)> {
        self.vanish
            .lock()
            .ok()
            .and_then(|mut v| v.remove(bare_zone_id(zone_id)))
            .unwrap_or_default()
    }
}

struct State {
    upstream: SocketAddr,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    /// Route53 in moto directly (the rules read the zone through it).
    route53: aws_sdk_route53::Client,
    /// Check-then-forward of record changes is one step: no other change of any zone interleaves.
    changes: tokio::sync::Mutex<()>,
    faults: Route53Faults,
}

impl State {
    fn new(upstream: SocketAddr, faults: Route53Faults) -> Self {
        // No pooled connections to moto: its server may close an idle one at any moment, and a
        // fresh loopback connection costs next to nothing.
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        let config = aws_sdk_route53::Config::builder()
            .http_client(crate::controllers::aws::https_client())
            .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
            .endpoint_url(format!("http://{upstream}"))
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "labflow-aws-proxy",
            ))
            .build();
        State {
            upstream,
            http,
            route53: aws_sdk_route53::Client::from_conf(config),
            changes: tokio::sync::Mutex::new(()),
            faults,
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return plain(StatusCode::BAD_REQUEST, format!("reading the body: {err}")),
    };
    if let Some(refused) = step_functions::check(&parts, &body) {
        return refused;
    }
    if sts::is_get_caller_identity(&parts, &body) {
        return sts::user_arn_as_iam(forward(state, parts, body).await).await;
    }
    if let Some(zone_id) = change_record_sets_zone(&parts.method, parts.uri.path()) {
        let _one_at_a_time = state.changes.lock().await;
        if let Some(refused) = route53::check_changes(state, &zone_id, &body).await {
            return refused;
        }
        return forward(state, parts, body).await;
    }
    forward(state, parts, body).await
}

/// `POST /2013-04-01/hostedzone/{Id}/rrset/` is ChangeResourceRecordSets (botocore's route53
/// model, operation ChangeResourceRecordSets, requestUri); the zone id it names.
fn change_record_sets_zone(method: &Method, path: &str) -> Option<String> {
    if method != Method::POST {
        return None;
    }
    let rest = path.strip_prefix("/2013-04-01/hostedzone/")?;
    let (zone, tail) = rest.split_once('/')?;
    (!zone.is_empty() && (tail == "rrset" || tail == "rrset/")).then(|| {
        percent_encoding::percent_decode_str(zone)
            .decode_utf8_lossy()
            .into_owned()
    })
}

fn bare_zone_id(zone_id: &str) -> &str {
    zone_id.trim_start_matches("/hostedzone/")
}

async fn forward(state: &State, parts: http::request::Parts, body: Bytes) -> Response<ProxyBody> {
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri = match format!("http://{}{path}", state.upstream).parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(err) => return plain(StatusCode::BAD_REQUEST, format!("bad request path: {err}")),
    };
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers;
    // The body is forwarded whole, so its framing is hyper's to choose.
    request.headers_mut().remove(header::TRANSFER_ENCODING);
    request.headers_mut().remove(header::CONNECTION);
    match state.http.request(request).await {
        Ok(response) => response.map(|b| b.boxed()),
        Err(err) => plain(
            StatusCode::BAD_GATEWAY,
            format!("the AWS emulator did not answer: {err}"),
        ),
    }
}

fn plain(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = Response::new(full(text.into_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn full(bytes: Vec<u8>) -> ProxyBody {
    Full::new(Bytes::from(bytes))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

mod step_functions {
    //! Step Functions (AWS JSON 1.0, `X-Amz-Target: AWSStepFunctions.<Operation>`).

    use bytes::Bytes;
    use http::{header, HeaderValue, Method, Response, StatusCode};

    use super::{full, ProxyBody};

    /// StartExecution's `input`: "Length Constraints: Maximum length of 262144", "Length
    /// constraints apply to the payload size, and are expressed as bytes in UTF-8 encoding"
    /// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html;
    /// botocore's stepfunctions model: shape SensitiveData, max 262144), the 256 KiB execution
    /// input quota (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
    pub(super) const MAX_INPUT_BYTES: usize = 262_144;

    pub(super) fn check(parts: &http::request::Parts, body: &Bytes) -> Option<Response<ProxyBody>> {
        if parts.method != Method::POST
            || parts
                .headers
                .get("x-amz-target")
                .and_then(|t| t.to_str().ok())
                != Some("AWSStepFunctions.StartExecution")
        {
            return None;
        }
        let request: serde_json::Value = serde_json::from_slice(body).ok()?;
        let input = request.get("input")?.as_str()?;
        if input.len() <= MAX_INPUT_BYTES {
            return None;
        }
        // A constraint of the API model is checked before the operation runs and answered the
        // way every AWS JSON service answers one (a ValidationException, HTTP 400).
        let body = serde_json::json!({
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": format!(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to {MAX_INPUT_BYTES}"
            ),
        });
        let mut response = Response::new(full(body.to_string().into_bytes()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        Some(response)
    }
}

mod sts {
    //! STS (AWS Query protocol: a form-encoded POST body with `Action=...`).

    use bytes::Bytes;
    use http::{header, Method, Response};
    use http_body_util::BodyExt;

    use super::{full, ProxyBody};

    pub(super) fn is_get_caller_identity(parts: &http::request::Parts, body: &Bytes) -> bool {
        parts.method == Method::POST
            && url::form_urlencoded::parse(body)
                .any(|(k, v)| k == "Action" && v == "GetCallerIdentity")
    }

    /// `arn:aws:sts::<account>:user/<name>` → `arn:aws:iam::<account>:user/<name>`: for an IAM
    /// user's own credentials STS names the user, as in "<Arn>arn:aws:iam::123456789012:user/
    /// Alice</Arn>" (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    pub(super) async fn user_arn_as_iam(response: Response<ProxyBody>) -> Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                return super::plain(
                    http::StatusCode::BAD_GATEWAY,
                    format!("reading the emulator's answer: {err}"),
                )
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let fixed = rewrite(&text);
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, full(fixed.into_bytes()))
    }

    fn rewrite(text: &str) -> String {
        let Some(start) = text.find("<Arn>arn:aws:sts::") else {
            return text.to_string();
        };
        let arn_start = start + "<Arn>".len();
        let Some(len) = text[arn_start..].find("</Arn>") else {
            return text.to_string();
        };
        let arn = &text[arn_start..arn_start + len];
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || !parts[5].starts_with("user/") {
            return text.to_string();
        }
        let iam = format!("arn:{}:iam::{}:{}", parts[1], parts[4], parts[5]);
        format!("{}{iam}{}", &text[..arn_start], &text[arn_start + len..])
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_users_sts_arn_becomes_its_iam_arn_and_sessions_stay() {
            let moto = "<GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:user/moto</Arn><UserId>x</UserId></GetCallerIdentityResult>";
            assert!(super::rewrite(moto)
                .contains("<Arn>arn:aws:iam::123456789012:user/moto</Arn><UserId>"));
            let session = "<Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>";
            assert_eq!(super::rewrite(session), session);
        }
    }
}

mod route53 {
    //! ChangeResourceRecordSets against the zone's current record sets.

    use aws_sdk_route53::types::{ResourceRecordSet, RrType};
    use http::{header, HeaderValue, Response, StatusCode};

    use super::{full, xml, ProxyBody, State};

    /// What identifies a record set and what a DELETE must repeat exactly.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) struct RecordSet {
        /// Normalised (lower case, no trailing dot, escapes decoded).
        pub name: String,
        pub record_type: String,
        pub set_identifier: Option<String>,
        pub ttl: Option<i64>,
        /// Sorted: Route53 compares the values as a set.
        pub values: Vec<String>,
        /// (hosted zone id, normalised DNS name, evaluate target health).
        pub alias: Option<(String, String, bool)>,
        pub weight: Option<i64>,
        pub region: Option<String>,
        pub failover: Option<String>,
        pub health_check_id: Option<String>,
        pub multi_value_answer: Option<bool>,
    }

    impl RecordSet {
        fn same_set(&self, other: &RecordSet) -> bool {
            self.name == other.name
                && self.record_type == other.record_type
                && self.set_identifier == other.set_identifier
        }

        /// How Route53 names a record set in its messages: `[name='x.example.com.', type='A']`,
        /// with `, set-identifier='...'` for routing policies.
        fn label(&self) -> String {
            match &self.set_identifier {
                Some(id) => format!(
                    "[name='{}.', type='{}', set-identifier='{id}']",
                    self.name, self.record_type
                ),
                None => format!("[name='{}.', type='{}']", self.name, self.record_type),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(super) struct Change {
        pub action: String,
        pub set: RecordSet,
    }

    /// `www.Example.com.` and `www.example.com` are the same name; Route53 lists `*` as `\052`
    /// and other special characters as `\ooo` octal escapes
    /// (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DomainNameFormat.html).
    pub(super) fn normalise_name(name: &str) -> String {
        let chars: Vec<char> = name.chars().collect();
        let mut out = String::with_capacity(name.len());
        let mut i = 0;
        while i < chars.len() {
            let octal = chars
                .get(i + 1..i + 4)
                .filter(|d| chars[i] == '\\' && d.iter().all(|c| ('0'..='7').contains(c)))
                .and_then(|d| {
                    d.iter()
                        .try_fold(0u32, |acc, c| Some(acc * 8 + c.to_digit(8)?))
                })
                .and_then(char::from_u32);
            match octal {
                Some(c) => {
                    out.push(c);
                    i += 4;
                }
                None => {
                    out.push(chars[i]);
                    i += 1;
                }
            }
        }
        out.trim_end_matches('.').to_ascii_lowercase()
    }

    fn from_listing(set: &ResourceRecordSet) -> RecordSet {
        let mut values: Vec<String> = set
            .resource_records()
            .iter()
            .map(|r| r.value().to_string())
            .collect();
        values.sort();
        RecordSet {
            name: normalise_name(set.name()),
            record_type: set.r#type().as_str().to_string(),
            set_identifier: set.set_identifier().map(str::to_string),
            ttl: set.ttl(),
            values,
            alias: set.alias_target().map(|a| {
                (
                    a.hosted_zone_id()
                        .trim_start_matches("/hostedzone/")
                        .to_string(),
                    normalise_name(a.dns_name()),
                    a.evaluate_target_health(),
                )
            }),
            weight: set.weight(),
            region: set.region().map(|r| r.as_str().to_string()),
            failover: set.failover().map(|f| f.as_str().to_string()),
            health_check_id: set.health_check_id().map(str::to_string),
            multi_value_answer: set.multi_value_answer(),
        }
    }

    /// The changes of a ChangeResourceRecordSetsRequest document; None when it is not one (moto
    /// then answers it as it would).
    pub(super) fn parse_changes(body: &[u8]) -> Option<Vec<Change>> {
        let root = xml::parse(std::str::from_utf8(body).ok()?)?;
        if root.name != "ChangeResourceRecordSetsRequest" {
            return None;
        }
        let changes = root.child("ChangeBatch")?.child("Changes")?;
        let mut out = Vec::new();
        for change in changes.children_named("Change") {
            let action = change.child("Action")?.text.trim().to_string();
            let set = change.child("ResourceRecordSet")?;
            let text = |name: &str| set.child(name).map(|e| e.text.trim().to_string());
            let mut values: Vec<String> = set
                .child("ResourceRecords")
                .map(|rr| {
                    rr.children_named("ResourceRecord")
                        .filter_map(|r| r.child("Value").map(|v| v.text.clone()))
                        .collect()
                })
                .unwrap_or_default();
            values.sort();
            let alias = match set.child("AliasTarget") {
                Some(a) => Some((
                    a.child("HostedZoneId")?
                        .text
                        .trim()
                        .trim_start_matches("/hostedzone/")
                        .to_string(),
                    normalise_name(a.child("DNSName")?.text.trim()),
                    a.child("EvaluateTargetHealth")
                        .is_some_and(|e| e.text.trim() == "true"),
                )),
                None => None,
            };
            out.push(Change {
                action,
                set: RecordSet {
                    name: normalise_name(&text("Name")?),
                    record_type: text("Type")?,
                    set_identifier: text("SetIdentifier"),
                    ttl: text("TTL").and_then(|t| t.parse().ok()),
                    values,
                    alias,
                    weight: text("Weight").and_then(|t| t.parse().ok()),
                    region: text("Region"),
                    failover: text("Failover"),
                    health_check_id: text("HealthCheckId"),
                    multi_value_answer: text("MultiValueAnswer").map(|t| t == "true"),
                },
            });
        }
        Some(out)
    }

    /// Route53's verdict on a batch, given the zone's record sets before it: every problem, in
    /// order (an empty list: the batch is valid). "Route 53 validates the changes in the request
    /// and then either makes all or none of the changes"; "To delete a resource record set, you
    /// must specify all the same values that you specified when you created it"; "you cannot
    /// delete the same resource record set more than once in a single change batch"
    /// (https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
    /// The message texts are Route53's (reported verbatim in
    /// https://github.com/kubernetes-sigs/external-dns/issues/732 and
    /// https://github.com/aws/aws-sdk-kotlin/issues/1433).
    pub(super) fn verdict(zone: &[RecordSet], changes: &[Change]) -> Vec<String> {
        let mut zone = zone.to_vec();
        let mut problems = Vec::new();
        for change in changes {
            let found = zone.iter().position(|s| s.same_set(&change.set));
            match (change.action.as_str(), found) {
                ("DELETE", None) => problems.push(format!(
                    "Tried to delete resource record set {} but it was not found",
                    change.set.label()
                )),
                ("DELETE", Some(i)) if zone[i] != change.set => problems.push(format!(
                    "Tried to delete resource record set {} but the values provided do not match the current values",
                    change.set.label()
                )),
                ("DELETE", Some(i)) => {
                    zone.remove(i);
                }
                ("CREATE", Some(_)) => problems.push(format!(
                    "Tried to create resource record set {} but it already exists",
                    change.set.label()
                )),
                ("CREATE", None) => zone.push(change.set.clone()),
                ("UPSERT", Some(i)) => zone[i] = change.set.clone(),
                ("UPSERT", None) => zone.push(change.set.clone()),
                // Anything else is moto's to refuse.
                _ => {}
            }
        }
        problems
    }

    /// Every record set of the zone, read from moto; None when it cannot be read (moto then
    /// answers the change itself, e.g. NoSuchHostedZone).
    async fn list_zone(state: &State, zone_id: &str) -> Option<Vec<ResourceRecordSet>> {
        let mut sets = Vec::new();
        let mut start: Option<(String, RrType)> = None;
        loop {
            let mut request = state
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .max_items(300);
            if let Some((name, record_type)) = start.take() {
                request = request
                    .start_record_name(name)
                    .start_record_type(record_type);
            }
            let page = request.send().await.ok()?;
            sets.extend(page.resource_record_sets().iter().cloned());
            match (
                page.is_truncated(),
                page.next_record_name(),
                page.next_record_type(),
            ) {
                (true, Some(name), Some(t)) => start = Some((name.to_string(), t.clone())),
                _ => return Some(sets),
            }
        }
    }

    /// Apply the fault hook, then refuse the batch the way Route53 would, or None to let moto
    /// apply it.
    pub(super) async fn check_changes(
        state: &State,
        zone_id: &str,
        body: &[u8],
    ) -> Option<Response<ProxyBody>> {
        let vanish = state.faults.take(zone_id);
        if !vanish.is_empty() {
            vanish_now(state, zone_id, &vanish).await;
        }
        let changes = parse_changes(body)?;
        let zone: Vec<RecordSet> = list_zone(state, zone_id)
            .await?
            .iter()
            .map(from_listing)
            .collect();
        let problems = verdict(&zone, &changes);
        if problems.is_empty() {
            return None;
        }
        tracing::debug!(zone_id, ?problems, "Route53 change batch refused");
        Some(invalid_change_batch(&problems))
    }

    /// Delete the named record sets (with their current values) through moto.
    async fn vanish_now(state: &State, zone_id: &str, which: &[(String, String)]) {
        let Some(sets) = list_zone(state, zone_id).await else {
            return;
        };
        let mut changes = Vec::new();
        for set in sets.into_iter().filter(|s| {
            which.iter().any(|(name, t)| {
                normalise_name(name) == normalise_name(s.name()) && t == s.r#type().as_str()
            })
        }) {
            if let Ok(change) = aws_sdk_route53::types::Change::builder()
                .action(aws_sdk_route53::types::ChangeAction::Delete)
                .resource_record_set(set)
                .build()
            {
                changes.push(change);
            }
        }
        if changes.is_empty() {
            return;
        }
        let Ok(batch) = aws_sdk_route53::types::ChangeBatch::builder()
            .set_changes(Some(changes))
            .build()
        else {
            return;
        };
        if let Err(err) = state
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
        {
            tracing::warn!(zone_id, err = %aws_sdk_route53::error::DisplayErrorContext(err), "fault hook: could not remove the record sets");
        }
    }

    /// Route53's answer to a refused batch: the standard REST-XML error document, code
    /// `InvalidChangeBatch`, HTTP 400, the problems in one bracketed, comma-separated message.
    /// Route53 used to answer with an `<InvalidChangeBatch><Messages>` document (the shape in
    /// botocore's route53 model, error shape InvalidChangeBatch with `messages`); it now sends
    /// this form, for which the AWS SDK for Kotlin dropped its special parsing
    /// (https://github.com/aws/aws-sdk-kotlin/pull/1435, real responses quoted in
    /// https://github.com/aws/aws-sdk-kotlin/issues/1433).
    pub(super) fn invalid_change_batch(problems: &[String]) -> Response<ProxyBody> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            xml::escape(&format!("[{}]", problems.join(", ")))
        );
        let mut response = Response::new(full(body.into_bytes()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amzn-requestid", id);
        }
        response
    }
}

mod xml {
    //! Just enough XML for AWS request documents: elements, text, the predefined and numeric
    //! entities, CDATA; attributes are skipped, namespace prefixes dropped.

    #[derive(Debug, Default)]
    pub(super) struct Element {
        pub name: String,
        pub children: Vec<Element>,
        pub text: String,
    }

    impl Element {
        pub fn child(&self, name: &str) -> Option<&Element> {
            self.children.iter().find(|c| c.name == name)
        }

        pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
            self.children.iter().filter(move |c| c.name == name)
        }
    }

    /// The document's root element; None when it is not well-formed.
    pub(super) fn parse(text: &str) -> Option<Element> {
        let mut stack: Vec<Element> = vec![Element::default()];
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("<?") {
                rest = &after[after.find("?>")? + 2..];
            } else if let Some(after) = rest.strip_prefix("<!--") {
                rest = &after[after.find("-->")? + 3..];
            } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
                let end = after.find("]]>")?;
                stack.last_mut()?.text.push_str(&after[..end]);
                rest = &after[end + 3..];
            } else if let Some(after) = rest.strip_prefix("</") {
                let end = after.find('>')?;
                let name = local(after[..end].trim());
                let done = stack.pop()?;
                if done.name != name || stack.is_empty() {
                    return None;
                }
                stack.last_mut()?.children.push(done);
                rest = &after[end + 1..];
            } else if let Some(after) = rest.strip_prefix('<') {
                let end = after.find('>')?;
                let tag = &after[..end];
                let (tag, empty) = match tag.strip_suffix('/') {
                    Some(t) => (t, true),
                    None => (tag, false),
                };
                let name = local(tag.split_whitespace().next()?);
                let element = Element {
                    name: name.to_string(),
                    ..Element::default()
                };
                if empty {
                    stack.last_mut()?.children.push(element);
                } else {
                    stack.push(element);
                }
                rest = &after[end + 1..];
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                stack.last_mut()?.text.push_str(&unescape(&rest[..end])?);
                rest = &rest[end..];
            }
        }
        let mut document = stack.pop()?;
        if !stack.is_empty() || document.children.len() != 1 {
            return None;
        }
        document.children.pop()
    }

    fn local(name: &str) -> &str {
        name.rsplit(':').next().unwrap_or(name)
    }

    fn unescape(text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let semi = after.find(';')?;
            let entity = &after[..semi];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = match entity.strip_prefix("#x") {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => entity.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            out.push(c);
            rest = &after[semi + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    pub(super) fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    }
}

#[cfg(test)]
mod tests {
    use super::route53::{normalise_name, parse_changes, verdict};

    #[test]
    fn parses_the_sdk_request_document() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>c</Comment><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>\052.Example.com.</Name><Type>TXT</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>&quot;heritage=external-dns&quot;</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
        let changes = parse_changes(body).unwrap_or_default();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, "DELETE");
        assert_eq!(changes[0].set.name, "*.example.com");
        assert_eq!(changes[0].set.ttl, Some(300));
        assert_eq!(changes[0].set.values, vec!["\"heritage=external-dns\""]);
        assert!(verdict(&[], &changes)[0].contains("[name='*.example.com.', type='TXT']"));
        assert_eq!(normalise_name("A.b.\\100."), "a.b.@");
        assert!(parse_changes(b"<ChangeResourceRecordSetsRequest><x></y>").is_none());
    }
}
