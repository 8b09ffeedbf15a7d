//! Runs one execution of the lifecycle against the local cloud: registered in the emulator's
//! Step Functions (so the ARN is real to run-guard), executed by labflow-states in real time,
//! with a progress line per step report and a summary with the AWS cost it would have had.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use labflow_core::aws::AwsClients;
use labflow_states::{
    EventType, Execution, ExecutionStatus, Executor, HistoryEvent, Listener, Options, StateMachine,
};
use serde_json::Value;

use super::cloud::{Endpoints, STATE_MACHINE_NAME};
use super::cost::{self, CostReport};
use super::github::{CommitStatus, GithubStandIn};
use super::steps::{registry, Functions, Invocation, InvocationLog};

/// A client of the local cloud: AWS clients on its endpoints and the functions' contexts.
pub struct Session {
    pub endpoints: Endpoints,
    pub clients: AwsClients,
    functions: Arc<Functions>,
    machine: StateMachine,
    /// Where github-status posts commit statuses in local runs.
    pub github: GithubStandIn,
    /// Real seconds per virtual second of the state machine's clock (Waits, retry backoffs,
    /// `$$.State.EnteredTime`): 1.0 runs in real time; below 1 the state machine's time runs
    /// faster than the simulators' (tests of hour-long deadlines).
    time_scale: f64,
    /// The EventBridge target for executions that end outside their failure path.
    execution_ended: labflow_execution_ended::Ctx,
    /// Notified to stop the running execution, as StopExecution from the console or
    /// `aws stepfunctions stop-execution` does (tests of the ABORTED path).
    stop: Arc<tokio::sync::Notify>,
}

/// The first of Ctrl-C, SIGTERM (a service manager, `kill`) and SIGHUP (a closed terminal), by
/// name: each must stop the execution, not leave it holding the environment's lock.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "Ctrl-C";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
        _ = hangup.recv() => "SIGHUP",
    }
}

/// The outcome of one execution.
pub struct RunReport {
    pub execution_arn: String,
    pub execution: Execution,
    pub invocations: Vec<Invocation>,
    pub wall: Duration,
    pub cost: CostReport,
    /// Commit statuses github-status posted to the GitHub stand-in during the run.
    pub statuses: Vec<CommitStatus>,
    /// What execution-ended did with the execution's status-change event (runs that did not
    /// succeed: EventBridge delivers those to it in AWS).
    pub ended: Option<labflow_execution_ended::Output>,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        matches!(self.execution.status, ExecutionStatus::Succeeded { .. })
    }
}

impl Session {
    pub async fn connect(endpoints: Endpoints, definition: &str) -> anyhow::Result<Session> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(labflow_core::aws::https_client())
            .region(aws_config::Region::new(endpoints.region.clone()))
            .credentials_provider(aws_credential_types::Credentials::new(
                endpoints.access_key_id.clone(),
                endpoints.secret_access_key.clone(),
                endpoints.session_token.clone(),
                None,
                "labflow-local",
            ))
            .endpoint_url(&endpoints.aws)
            .load()
            .await;
        let clients = AwsClients::from_config(config).with_eks_endpoint(&endpoints.eks);
        let github = GithubStandIn::start().await?;
        // Health-check's URL probes reach the simulated load balancers. A cluster given by
        // kubeconfig has none the local cloud could route to (and no ALB on AWS): its URLs are
        // reported as not probed.
        let prober = match endpoints.load_balancers.as_deref() {
            Some(addr) => labflow_health_check::Prober::via(
                addr.parse()
                    .with_context(|| format!("load balancer address {addr:?}"))?,
            ),
            None => labflow_health_check::Prober::skip(
                "the cluster comes from --kubeconfig: its load balancers are not simulated and nothing routes the lab's hosts to it",
            ),
        };
        let functions = Arc::new(Functions::new(&clients, github.url(), prober)?);
        let machine = labflow_states::load(definition)
            .map_err(|e| anyhow::anyhow!("the lifecycle definition does not lint: {e}"))?;
        let execution_ended = labflow_execution_ended::Ctx::new(
            &clients,
            &endpoints.state_machine_arn,
            Some(github.url()),
        )
        .map_err(|e| anyhow::anyhow!("execution-ended: {}", e.message()))?;
        Ok(Session {
            endpoints,
            clients,
            functions,
            machine,
            github,
            time_scale: 1.0,
            execution_ended,
            stop: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Stops the execution running now (or the next one to start) the way StopExecution does.
    pub fn stop_execution(&self) {
        self.stop.notify_one();
    }

    /// See [`Session::time_scale`]; values that are not finite and positive are ignored.
    pub fn set_time_scale(&mut self, scale: f64) {
        if scale.is_finite() && scale > 0.0 {
            self.time_scale = scale;
        }
    }

    /// Starts `input` in the emulator's Step Functions and runs it here until it ends.
    /// Progress lines go to `progress`.
    pub async fn run(
        &self,
        input: Value,
        progress: Arc<Mutex<dyn Write + Send>>,
    ) -> anyhow::Result<RunReport> {
        let action = input["action"].as_str().unwrap_or("run");
        let env = input["environment"].as_str().unwrap_or("all");
        let name = format!(
            "{action}-{env}-{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let started = self
            .clients
            .sfn
            .start_execution()
            .state_machine_arn(&self.endpoints.state_machine_arn)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .context("StartExecution in the AWS emulator")?;
        let execution_arn = started.execution_arn().to_string();
        self.run_started(execution_arn, &name, input, progress)
            .await
    }

    /// Runs an execution that was already started in the emulator (e.g. by the webhook).
    pub async fn run_started(
        &self,
        execution_arn: String,
        name: &str,
        input: Value,
        progress: Arc<Mutex<dyn Write + Send>>,
    ) -> anyhow::Result<RunReport> {
        let log = InvocationLog::default();
        let invoker = Arc::new(registry(self.functions.clone(), log.clone()));
        let clock = Instant::now();
        let options = Options {
            execution_name: name.to_string(),
            state_machine_name: STATE_MACHINE_NAME.to_string(),
            arn_prefix: Some(format!(
                "arn:aws:states:{}:{}:",
                self.endpoints.region, self.endpoints.account_id
            )),
            start_time: Utc::now(),
            real_time_scale: Some(self.time_scale),
            listener: Some(progress_listener(progress, clock)),
            ..Options::default()
        };
        let executor = Executor::new(self.machine.clone(), invoker).with_options(options);
        let stopped_by_hand = self.stop.notified();
        let execution = tokio::select! {
            execution = executor.run(input) => execution.context("the execution cannot start")?,
            signal = interrupted() => {
                let cause = format!("interrupted ({signal}) in labflow local");
                let ended = self.abort(&execution_arn, &cause, &log).await;
                anyhow::bail!("interrupted by {signal}; execution {execution_arn} stopped ({ended})");
            }
            _ = stopped_by_hand => {
                let ended = self.abort(&execution_arn, "stopped by hand", &log).await;
                anyhow::bail!("execution {execution_arn} stopped by hand ({ended})");
            }
            status = self.stopped_elsewhere(&execution_arn) => {
                // StopExecution from elsewhere (a teardown's run-guard preempting this run, the
                // console): in AWS the execution ends there and then, and EventBridge tells
                // execution-ended.
                let ended = self.deliver_aborted(&execution_arn, &format!("stopped in the emulator ({status})"), &log).await;
                anyhow::bail!("execution {execution_arn} was stopped ({ended})");
            }
        };
        // The emulator cannot run Lambdas; mark its copy ended so a later run-guard never
        // mistakes it for a running holder of a lock.
        let _ = self
            .clients
            .sfn
            .stop_execution()
            .execution_arn(&execution_arn)
            .send()
            .await;
        let ended = self
            .deliver_status_change(&execution_arn, &execution, &log)
            .await?;
        let invocations = log.snapshot();
        let durations: Vec<f64> = invocations
            .iter()
            .map(|i| i.duration.as_secs_f64() * 1000.0)
            .collect();
        let cost = cost::estimate(execution.transitions, &durations);
        Ok(RunReport {
            execution_arn,
            execution,
            invocations,
            wall: clock.elapsed(),
            cost,
            statuses: self.github.statuses(),
            ended,
        })
    }

    /// Stops a running execution as StopExecution does in AWS: the emulator's copy ends ABORTED
    /// (so run-guard sees its lock's holder is no longer running), no Catch runs, and EventBridge
    /// hands the ABORTED status change to execution-ended, which frees the lock and posts the
    /// failure status. Says what execution-ended did.
    async fn abort(&self, execution_arn: &str, cause: &str, log: &InvocationLog) -> String {
        let _ = self
            .clients
            .sfn
            .stop_execution()
            .execution_arn(execution_arn)
            .cause(cause)
            .send()
            .await;
        self.deliver_aborted(execution_arn, cause, log).await
    }

    /// Resolves when the emulator's copy of the execution is no longer RUNNING (someone called
    /// StopExecution on it); with its status.
    async fn stopped_elsewhere(&self, execution_arn: &str) -> String {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            every.tick().await;
            let described = self
                .clients
                .sfn
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await;
            if let Ok(out) = described {
                let status = out.status().as_str();
                if status != "RUNNING" {
                    return status.to_string();
                }
            }
        }
    }

    /// EventBridge's ABORTED status change, delivered to execution-ended.
    async fn deliver_aborted(
        &self,
        execution_arn: &str,
        cause: &str,
        log: &InvocationLog,
    ) -> String {
        let event = labflow_execution_ended::StatusChange::new(
            execution_arn,
            &self.endpoints.state_machine_arn,
            "ABORTED",
            None,
            Some(cause),
        );
        let started = Instant::now();
        let result = labflow_execution_ended::handle(&self.execution_ended, event).await;
        log.record(
            "execution-ended",
            started.elapsed(),
            result.as_ref().err().map(|e| e.name().to_string()),
        );
        match result {
            Ok(output) => format!(
                "execution-ended: {}, lock released: {}",
                output.phase, output.lock_released
            ),
            Err(err) => format!("execution-ended failed: {}", err.message()),
        }
    }

    /// What EventBridge does in AWS when an execution ends other than by succeeding: its
    /// "Step Functions Execution Status Change" event goes to execution-ended
    /// (infra/terraform/execution_ended.tf).
    async fn deliver_status_change(
        &self,
        execution_arn: &str,
        execution: &Execution,
        log: &InvocationLog,
    ) -> anyhow::Result<Option<labflow_execution_ended::Output>> {
        let (status, failure) = match &execution.status {
            ExecutionStatus::Succeeded { .. } => return Ok(None),
            ExecutionStatus::Failed { failure } => ("FAILED", failure),
            ExecutionStatus::TimedOut { failure } => ("TIMED_OUT", failure),
        };
        let event = labflow_execution_ended::StatusChange::new(
            execution_arn,
            &self.endpoints.state_machine_arn,
            status,
            failure.error.as_deref(),
            failure.cause.as_deref(),
        );
        let started = Instant::now();
        let result = labflow_execution_ended::handle(&self.execution_ended, event).await;
        log.record(
            "execution-ended",
            started.elapsed(),
            result.as_ref().err().map(|e| e.name().to_string()),
        );
        result
            .map(Some)
            .map_err(|e| anyhow::anyhow!("execution-ended: {}", e.message()))
    }
}

/// One line per step report, failure and end of execution.
fn progress_listener(out: Arc<Mutex<dyn Write + Send>>, clock: Instant) -> Listener {
    Arc::new(move |event: &HistoryEvent| {
        let line = match event.kind {
            EventType::TaskSucceeded => {
                summarize_output(&event.details["output"]).map(|s| (event.state.clone(), s))
            }
            EventType::TaskFailed | EventType::TaskTimedOut => Some((
                event.state.clone(),
                format!(
                    "failed: {} {}",
                    event.details["error"].as_str().unwrap_or(""),
                    one_line(event.details["cause"].as_str().unwrap_or(""), 160)
                ),
            )),
            EventType::ExecutionSucceeded => Some((None, "execution succeeded".to_string())),
            EventType::ExecutionFailed | EventType::ExecutionTimedOut => {
                Some((None, "execution failed".to_string()))
            }
            _ => None,
        };
        if let (Some((state, text)), Ok(mut w)) = (line, out.lock()) {
            let _ = writeln!(
                w,
                "[{:>6.1}s] {:<22} {}",
                clock.elapsed().as_secs_f64(),
                state.unwrap_or_default(),
                text
            );
        }
    })
}

/// The few fields of a step report worth a progress line.
fn summarize_output(output: &Value) -> Option<String> {
    let obj = output.as_object()?;
    let mut parts = Vec::new();
    for key in ["done", "phase", "healthy", "revision", "skipped"] {
        if let Some(v) = obj.get(key) {
            parts.push(format!("{key}={}", compact(v)));
        }
    }
    if let Some(c) = obj.get("counts") {
        parts.push(format!("counts={}", compact(c)));
    }
    for key in ["pending", "waitingOn", "removed", "leftovers"] {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            // Steps list a bounded number of entries and count the rest (`<key>Omitted`).
            let omitted = obj
                .get(&format!("{key}Omitted"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let n = list.len() as u64 + omitted;
            if n > 0 {
                parts.push(format!("{key}={n}"));
            }
        }
    }
    // Name what is being waited for, so a stuck run says why.
    if let Some(list) = obj.get("pending").and_then(Value::as_array) {
        let names: Vec<String> = list.iter().take(3).filter_map(object_name).collect();
        if !names.is_empty() {
            parts.push(format!("[{}]", names.join(", ")));
        }
    }
    if let Some(c) = obj.get("cluster").and_then(|c| c.get("status")) {
        parts.push(format!("cluster={}", compact(c)));
    }
    if parts.is_empty() {
        parts.push("ok".to_string());
    }
    Some(parts.join(" "))
}

/// `Kind/namespace/name (reason)` of a reported object.
fn object_name(v: &Value) -> Option<String> {
    let kind = v.get("kind")?.as_str()?;
    let name = v.get("name")?.as_str()?;
    let ns = v.get("namespace").and_then(Value::as_str).unwrap_or("");
    let reason = v.get("reason").and_then(Value::as_str).unwrap_or("");
    let path = if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    };
    Some(if reason.is_empty() {
        format!("{kind}/{path}")
    } else {
        format!("{kind}/{path} ({reason})")
    })
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// The final summary block.
/// The URL probes of the execution's last health check (what made it healthy, or not).
fn last_url_probes(report: &RunReport) -> Vec<Value> {
    report
        .execution
        .history
        .iter()
        .rev()
        .filter(|e| e.state.as_deref() == Some("HealthCheck"))
        .find_map(|e| {
            let output = e.details.get("output")?;
            let payload = output.get("Payload").unwrap_or(output);
            payload.get("urls")?.as_array().cloned()
        })
        .unwrap_or_default()
}

pub fn write_summary(w: &mut dyn Write, report: &RunReport) -> std::io::Result<()> {
    let status = match &report.execution.status {
        ExecutionStatus::Succeeded { .. } => "SUCCEEDED".to_string(),
        ExecutionStatus::Failed { failure } => format!(
            "FAILED {}: {}",
            failure.name(),
            one_line(failure.cause_text(), 300)
        ),
        ExecutionStatus::TimedOut { failure } => format!(
            "TIMED_OUT {}: {}",
            failure.name(),
            one_line(failure.cause_text(), 300)
        ),
    };
    let c = &report.cost;
    writeln!(w, "execution      {}", report.execution_arn)?;
    writeln!(w, "status         {status}")?;
    if let Some(ended) = &report.ended {
        writeln!(
            w,
            "ended event    execution-ended: {}{}, lock {}, status {}",
            ended.phase,
            ended
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            if ended.lock_released {
                "released"
            } else {
                ended.lock.as_deref().unwrap_or("not held")
            },
            ended
                .commit_status
                .as_ref()
                .map_or("not posted", |s| s.phase.as_str())
        )?;
    }
    writeln!(w, "duration       {:.1} s", report.wall.as_secs_f64())?;
    writeln!(w, "transitions    {}", c.state_transitions)?;
    // The quota that ends long polling loops (25,000 events per execution, counted as
    // GetExecutionHistory lists them).
    writeln!(
        w,
        "history events {} of {}",
        report.execution.history.len(),
        labflow_states::limits::HISTORY_EVENTS
    )?;
    writeln!(
        w,
        "lambda calls   {} ({:.3} GB-s at {} MB)",
        c.lambda_invocations,
        c.lambda_gb_seconds,
        cost::LAMBDA_MEMORY_MB
    )?;
    writeln!(
        w,
        "AWS cost       ${:.6} (Step Functions ${:.6} + Lambda ${:.6}; {})",
        c.total_usd,
        c.step_functions_usd,
        c.lambda_usd,
        cost::PRICE_SOURCE
    )?;
    for probe in last_url_probes(report) {
        let verdict = match (
            probe.get("ok").and_then(Value::as_bool),
            probe.get("skipped").and_then(Value::as_str),
        ) {
            (Some(true), _) => "ok",
            (_, Some(_)) => "not probed",
            _ => "FAILED",
        };
        let status = match probe.get("status").and_then(Value::as_u64) {
            Some(status) => format!("HTTP {status}"),
            None if verdict == "not probed" => "not requested".to_string(),
            None => "no answer".to_string(),
        };
        let problem = probe
            .get("problem")
            .and_then(Value::as_str)
            .or_else(|| probe.get("skipped").and_then(Value::as_str))
            .map(|p| format!(": {}", one_line(p, 200)))
            .unwrap_or_default();
        writeln!(
            w,
            "url probe      {verdict} {} ({status}){problem}",
            probe.get("url").and_then(Value::as_str).unwrap_or("?")
        )?;
    }
    for s in &report.statuses {
        writeln!(
            w,
            "commit status  {} {} on {}@{}: {}",
            s.state,
            s.context,
            s.repository,
            &s.sha[..s.sha.len().min(12)],
            s.description
        )?;
    }
    Ok(())
}
