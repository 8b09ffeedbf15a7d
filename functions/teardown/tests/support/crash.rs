//! A crash right after a write: the Lambda dies after its first write request reached the
//! server and before it read the answer. While armed, the first write (Kubernetes: any method
//! but GET/HEAD; AWS: any operation but Describe/List/Get) that the server accepts (2xx) goes
//! through, its response is lost, and every later request of the call fails without being sent.
//! A write the server refuses (404 on a delete of something already gone, 409, ...) changed
//! nothing, so the process reads that answer and goes on: crashing there too would replay the
//! same refused write on every re-run and never let a call finish.
//!
//! This is done in the clients (a tower layer for kube, an interceptor for the AWS SDK) rather
//! than with the testbed's fault plan: the plan decides before a request is handled, so it can
//! fail a write but cannot let one through and then fail what follows. It also covers Route53
//! and SSM, which go to moto and see no testbed fault plan.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use labflow_core::aws::AwsClients;

#[derive(Debug, Default)]
struct State {
    armed: bool,
    /// The call's first write went out: the process is dead from here on.
    dead: bool,
    /// The write in flight whose response is lost if the server accepted it (interceptors see
    /// request and response apart).
    pending_write: Option<String>,
    /// Every write that went through before a crash, and every request that failed.
    writes_before_crash: Vec<String>,
    fired: Vec<String>,
}

/// What happens to one request.
enum Verdict {
    Send,
    /// Send it, then lose the answer if the server accepted it (the crash): see `answered`.
    SendAndLoseResponse,
    /// Do not send it (the process is already dead).
    Fail,
}

/// Shared crash switch for the clients built from it.
#[derive(Clone, Debug, Default)]
pub struct Crash {
    state: Arc<Mutex<State>>,
}

impl Crash {
    pub fn new() -> Crash {
        Crash::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next call crashes right after its first write.
    pub fn arm(&self) {
        let mut s = self.lock();
        s.armed = true;
        s.dead = false;
        s.pending_write = None;
    }

    /// A new process: requests pass again.
    pub fn disarm(&self) {
        let mut s = self.lock();
        s.armed = false;
        s.dead = false;
        s.pending_write = None;
    }

    /// Requests that failed because of a crash, oldest first.
    pub fn fired(&self) -> Vec<String> {
        self.lock().fired.clone()
    }

    /// The writes after which a crash happened, oldest first.
    pub fn crashed_after(&self) -> Vec<String> {
        self.lock().writes_before_crash.clone()
    }

    fn verdict(&self, what: &str, write: bool) -> Verdict {
        let mut s = self.lock();
        if !s.armed {
            return Verdict::Send;
        }
        if s.dead {
            s.fired.push(what.to_string());
            return Verdict::Fail;
        }
        if write && s.pending_write.is_none() {
            s.pending_write = Some(what.to_string());
            return Verdict::SendAndLoseResponse;
        }
        Verdict::Send
    }

    /// The server answered the pending write: whether the process dies before reading it.
    fn answered(&self, accepted: bool) -> Option<String> {
        let mut s = self.lock();
        let what = s.pending_write.take()?;
        if !accepted {
            return None;
        }
        s.dead = true;
        s.writes_before_crash.push(what.clone());
        s.fired.push(format!("{what} (response lost)"));
        Some(what)
    }

    /// A Kubernetes client on `config` whose requests this switch controls.
    pub fn kube_client(&self, config: kube::Config) -> anyhow::Result<kube::Client> {
        let builder = kube::client::ClientBuilder::try_from(config)?;
        Ok(builder.with_layer(&CrashLayer(self.clone())).build())
    }

    /// `base`'s AWS clients (EKS endpoint included) with this switch and without SDK retries: a
    /// dead process retries nothing, and the state machine's Retry is the converge loop.
    pub fn aws_clients(&self, base: &AwsClients) -> AwsClients {
        let mut aws = base.clone();
        let eks = base
            .eks
            .config()
            .to_builder()
            .interceptor(CrashInterceptor(self.clone()))
            .retry_config(RetryConfig::disabled())
            .build();
        aws.eks = aws_sdk_eks::Client::from_conf(eks);
        let route53 = aws_sdk_route53::config::Builder::from(&base.config)
            .interceptor(CrashInterceptor(self.clone()))
            .retry_config(RetryConfig::disabled())
            .build();
        aws.route53 = aws_sdk_route53::Client::from_conf(route53);
        let ssm = aws_sdk_ssm::config::Builder::from(&base.config)
            .interceptor(CrashInterceptor(self.clone()))
            .retry_config(RetryConfig::disabled())
            .build();
        aws.ssm = aws_sdk_ssm::Client::from_conf(ssm);
        let sts = aws_sdk_sts::config::Builder::from(&base.config)
            .interceptor(CrashInterceptor(self.clone()))
            .retry_config(RetryConfig::disabled())
            .build();
        aws.sts = aws_sdk_sts::Client::from_conf(sts);
        aws
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: a tower layer under kube's client.

#[derive(Clone)]
struct CrashLayer(Crash);

impl<S> tower::Layer<S> for CrashLayer {
    type Service = CrashService<S>;

    fn layer(&self, inner: S) -> CrashService<S> {
        CrashService {
            inner,
            crash: self.0.clone(),
        }
    }
}

struct CrashService<S> {
    inner: S,
    crash: Crash,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<kube::client::Body>> for CrashService<S>
where
    S: tower::Service<
        http::Request<kube::client::Body>,
        Response = http::Response<B>,
        Error = tower::BoxError,
    >,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = tower::BoxError;
    type Future = BoxFuture<Result<http::Response<B>, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let what = format!("kubernetes {} {}", req.method(), req.uri().path());
        let write = !matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        match self.crash.verdict(&what, write) {
            Verdict::Send => Box::pin(self.inner.call(req)),
            Verdict::SendAndLoseResponse => {
                let sent = self.inner.call(req);
                let crash = self.crash.clone();
                Box::pin(async move {
                    let answer = sent.await;
                    let accepted = answer
                        .as_ref()
                        .is_ok_and(|response| response.status().is_success());
                    match crash.answered(accepted) {
                        Some(what) => Err(format!("crashed after {what}").into()),
                        None => answer,
                    }
                })
            }
            Verdict::Fail => Box::pin(async move {
                Err::<http::Response<B>, tower::BoxError>(
                    format!("crashed: {what} not sent").into(),
                )
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AWS: an SDK interceptor.

#[derive(Debug, Clone)]
struct CrashInterceptor(Crash);

fn operation(cfg: &ConfigBag) -> (String, bool) {
    match cfg.load::<Metadata>() {
        Some(m) => {
            let name = m.name();
            let read = ["Describe", "List", "Get"]
                .iter()
                .any(|p| name.starts_with(p));
            (format!("aws {}:{name}", m.service()), !read)
        }
        // Unknown operations count as writes: a crash after them is the stricter test.
        None => ("aws unknown operation".to_string(), true),
    }
}

impl Intercept for CrashInterceptor {
    fn name(&self) -> &'static str {
        "labflow-test-crash"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (what, write) = operation(cfg);
        match self.0.verdict(&what, write) {
            Verdict::Send => Ok(()),
            Verdict::SendAndLoseResponse => Ok(()),
            Verdict::Fail => Err(format!("crashed: {what} not sent").into()),
        }
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let accepted = context.response().status().is_success();
        match self.0.answered(accepted) {
            Some(what) => Err(format!("crashed after {what}").into()),
            None => Ok(()),
        }
    }
}
