//! The Lambdas, in-process: each ASL placeholder (`${EnsureClusterArn}`, ...) resolves to the
//! function crate's own `handle`, fed the JSON the state machine passes, with errors named as
//! Lambda would report them. Every invocation is timed for the cost summary.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labflow_core::aws::AwsClients;
use labflow_core::error::StepError;
use labflow_states::{RegistryInvoker, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// One Lambda invocation as the local run saw it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: &'static str,
    pub duration: Duration,
    /// The error name when the invocation failed.
    pub error: Option<String>,
}

/// Invocations recorded by the registry's handlers.
#[derive(Debug, Clone, Default)]
pub struct InvocationLog(Arc<Mutex<Vec<Invocation>>>);

impl InvocationLog {
    pub fn snapshot(&self) -> Vec<Invocation> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// An invocation made outside the state machine (an EventBridge target).
    pub fn record(&self, function: &'static str, duration: Duration, error: Option<String>) {
        self.push(Invocation {
            function,
            duration,
            error,
        });
    }

    fn push(&self, invocation: Invocation) {
        if let Ok(mut l) = self.0.lock() {
            l.push(invocation);
        }
    }
}

/// Every function's context, built once (like one warm container per function).
pub struct Functions {
    pub run_guard: labflow_run_guard::Ctx,
    pub ensure_cluster: labflow_ensure_cluster::Ctx,
    pub cluster_access: labflow_cluster_access::Ctx,
    pub flux_bootstrap: labflow_flux_bootstrap::Ctx,
    pub health_check: labflow_health_check::Ctx,
    pub teardown: labflow_teardown::Ctx,
    pub github_status: labflow_github_status::Ctx,
}

impl Functions {
    /// `github_api` is the GitHub API the status function posts to (a local stand-in).
    pub fn new(
        clients: &AwsClients,
        github_api: &str,
        prober: labflow_health_check::Prober,
    ) -> anyhow::Result<Functions> {
        Ok(Functions {
            run_guard: labflow_run_guard::Ctx::new(
                clients,
                labflow_run_guard::DEFAULT_LOCK_MAX_AGE,
            ),
            ensure_cluster: labflow_ensure_cluster::Ctx {
                aws: clients.clone(),
            },
            cluster_access: labflow_cluster_access::Ctx::new(clients.clone()),
            flux_bootstrap: labflow_flux_bootstrap::Ctx::new(clients.clone())?,
            health_check: labflow_health_check::Ctx::new(clients.clone()).with_prober(prober),
            teardown: labflow_teardown::Ctx::new(clients.clone()),
            github_status: labflow_github_status::Ctx::new(clients, Some(github_api))
                .map_err(|e| anyhow::anyhow!("github-status: {}", e.message()))?,
        })
    }
}

/// A registry mapping each placeholder name to its function.
pub fn registry(functions: Arc<Functions>, log: InvocationLog) -> RegistryInvoker {
    let mut r = RegistryInvoker::new();
    macro_rules! step {
        ($placeholder:literal, $name:literal, $krate:ident, $field:ident) => {{
            let f = functions.clone();
            let log = log.clone();
            r.register($placeholder, move |input: Value| {
                let f = f.clone();
                let log = log.clone();
                async move {
                    timed($name, &log, input, |i| async move {
                        $krate::handle(&f.$field, i).await
                    })
                    .await
                }
            });
        }};
    }
    step!("RunGuardArn", "run-guard", labflow_run_guard, run_guard);
    step!(
        "EnsureClusterArn",
        "ensure-cluster",
        labflow_ensure_cluster,
        ensure_cluster
    );
    step!(
        "ClusterAccessArn",
        "cluster-access",
        labflow_cluster_access,
        cluster_access
    );
    step!(
        "FluxBootstrapArn",
        "flux-bootstrap",
        labflow_flux_bootstrap,
        flux_bootstrap
    );
    step!(
        "HealthCheckArn",
        "health-check",
        labflow_health_check,
        health_check
    );
    step!("TeardownArn", "teardown", labflow_teardown, teardown);
    step!(
        "GithubStatusArn",
        "github-status",
        labflow_github_status,
        github_status
    );
    r
}

/// Decodes the input like the Lambda runtime, runs the handler, encodes the output, and names
/// errors the way the state machine matches them.
async fn timed<I, O, F, Fut>(
    function: &'static str,
    log: &InvocationLog,
    input: Value,
    handler: F,
) -> Result<Value, TaskError>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Fut,
    Fut: Future<Output = Result<O, StepError>>,
{
    let started = Instant::now();
    let result = match serde_json::from_value::<I>(input) {
        Err(e) => Err(TaskError::new(
            "labflow.InvalidInput",
            format!("{function}: input does not match: {e}"),
        )),
        Ok(input) => match handler(input).await {
            Ok(out) => serde_json::to_value(out)
                .map_err(|e| TaskError::new("Lambda.Unknown", format!("{function}: {e}"))),
            Err(e) => Err(TaskError::new(e.name(), e.message())),
        },
    };
    log.push(Invocation {
        function,
        duration: started.elapsed(),
        error: result.as_ref().err().map(|e| e.error.clone()),
    });
    result
}
