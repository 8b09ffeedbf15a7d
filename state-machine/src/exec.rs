//! The local executor: runs a [`StateMachine`] with ASL semantics on a virtual clock.
//!
//! Time only moves when a Wait state or a retry backoff says so (tasks take no virtual time), so
//! a run that would take hours in AWS finishes at once and reports the virtual time it took.
//! Each Map iteration / Parallel branch runs with its own clock starting when the state started
//! and records into its own buffer; the buffers are merged in index order, so the history is
//! deterministic whatever the real interleaving was.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::choice;
use crate::error::{error_matches, limits, names, validate_name, Failure, StartError};
use crate::history::{EventType, HistoryEvent, Listener};
use crate::intrinsic::{self, Env};
use crate::invoker::TaskInvoker;
use crate::model::*;
use crate::path::{self, Path, Root};
use crate::rng::SplitMix64;

/// How an execution is run.
#[derive(Clone)]
pub struct Options {
    /// Maximum number of state transitions (state entries, branches included) before the
    /// execution fails with States.Runtime: ends infinite loops.
    pub max_transitions: u64,
    /// Maximum number of history events, the ExecutionFailed event included (AWS: 25,000).
    pub max_history_events: u64,
    /// Seed for JitterStrategy FULL, States.UUID and States.MathRandom.
    pub seed: u64,
    /// Virtual time at which the execution starts.
    pub start_time: DateTime<Utc>,
    pub execution_name: String,
    pub state_machine_name: String,
    /// Called for every history event as it is recorded.
    pub listener: Option<Listener>,
    /// When set, Waits and retry backoffs also sleep for real: virtual seconds × this factor.
    /// Local runs against live simulators need real time to pass between polls; tests and
    /// `labflow states run` leave it off and finish at once.
    pub real_time_scale: Option<f64>,
    /// `arn:aws:states:<region>:<account>:` prefix of the state machine and execution ARNs in the
    /// context object (default `arn:aws:states:local:000000000000:`); set it to match an
    /// execution registered elsewhere (e.g. the AWS emulator).
    pub arn_prefix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_transitions: 25_000,
            max_history_events: limits::HISTORY_EVENTS,
            seed: 0,
            start_time: Utc::now(),
            execution_name: "local".into(),
            state_machine_name: "local".into(),
            listener: None,
            real_time_scale: None,
            arn_prefix: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("max_transitions", &self.max_transitions)
            .field("max_history_events", &self.max_history_events)
            .field("seed", &self.seed)
            .field("start_time", &self.start_time)
            .field("execution_name", &self.execution_name)
            .field("state_machine_name", &self.state_machine_name)
            .field("listener", &self.listener.is_some())
            .field("real_time_scale", &self.real_time_scale)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "status")]
pub enum ExecutionStatus {
    #[serde(rename = "SUCCEEDED")]
    Succeeded { output: Value },
    #[serde(rename = "FAILED")]
    Failed {
        #[serde(flatten)]
        failure: Failure,
    },
    #[serde(rename = "TIMED_OUT")]
    TimedOut {
        #[serde(flatten)]
        failure: Failure,
    },
}

/// The outcome of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Execution {
    #[serde(flatten)]
    pub status: ExecutionStatus,
    pub history: Vec<HistoryEvent>,
    /// Virtual time the execution took (Waits and retry backoff).
    #[serde(serialize_with = "ser_secs", rename = "virtualSeconds")]
    pub virtual_elapsed: Duration,
    pub transitions: u64,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Execution {
    pub fn output(&self) -> Option<&Value> {
        match &self.status {
            ExecutionStatus::Succeeded { output } => Some(output),
            _ => None,
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match &self.status {
            ExecutionStatus::Failed { failure } | ExecutionStatus::TimedOut { failure } => {
                Some(failure)
            }
            ExecutionStatus::Succeeded { .. } => None,
        }
    }

    /// Event types in order (handy for assertions).
    pub fn event_types(&self) -> Vec<EventType> {
        self.history.iter().map(|e| e.kind).collect()
    }
}

/// Runs a state machine.
pub struct Executor {
    machine: Arc<StateMachine>,
    invoker: Arc<dyn TaskInvoker>,
    options: Options,
}

impl Executor {
    pub fn new(machine: StateMachine, invoker: Arc<dyn TaskInvoker>) -> Self {
        Executor {
            machine: Arc::new(machine),
            invoker,
            options: Options::default(),
        }
    }

    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// Runs the execution, or refuses to start it like StartExecution does (bad name, input
    /// over 256 KiB).
    pub async fn run(&self, input: Value) -> Result<Execution, StartError> {
        let o = &self.options;
        validate_name("state machine", &o.state_machine_name)?;
        validate_name("execution", &o.execution_name)?;
        let bytes = json_len(&input);
        if bytes > limits::PAYLOAD_BYTES {
            return Err(StartError::InputTooLarge { bytes });
        }
        let prefix = o
            .arn_prefix
            .as_deref()
            .unwrap_or("arn:aws:states:local:000000000000:");
        let sm_arn = format!("{prefix}stateMachine:{}", o.state_machine_name);
        let exec_arn = format!(
            "{prefix}execution:{}:{}",
            o.state_machine_name, o.execution_name
        );
        let context = json!({
            "Execution": {
                "Id": exec_arn,
                "Input": input,
                "Name": o.execution_name,
                "RoleArn": "arn:aws:iam::000000000000:role/local",
                "StartTime": iso(o.start_time),
            },
            "StateMachine": { "Id": sm_arn, "Name": o.state_machine_name },
        });
        let shared = Arc::new(Shared {
            machine: self.machine.clone(),
            invoker: self.invoker.clone(),
            transitions: AtomicU64::new(0),
            max_transitions: o.max_transitions,
            events: AtomicU64::new(0),
            max_events: o.max_history_events,
            deadline: self
                .machine
                .timeout_seconds
                .map(|s| o.start_time + chrono::Duration::seconds(s as i64)),
            real_time_scale: o.real_time_scale.filter(|f| f.is_finite() && *f > 0.0),
            context,
        });
        let mut run = Run {
            shared: shared.clone(),
            now: o.start_time,
            events: Vec::new(),
            root: Some(Root0 {
                listener: o.listener.clone(),
                next_id: 1,
            }),
            rng: SplitMix64::new(o.seed),
            map_item: None,
            cancel: CancellationToken::new(),
        };
        run.record(EventType::ExecutionStarted, None, json!({ "input": input }));
        let scope = &shared.machine.scope;
        let result = run.run_scope(scope, input).await;
        let status = match result {
            Ok(output) => {
                run.record(
                    EventType::ExecutionSucceeded,
                    None,
                    json!({ "output": output }),
                );
                ExecutionStatus::Succeeded { output }
            }
            Err(stop) => {
                let (failure, timed_out) = match stop {
                    Stop::Fail(f) => (f, false),
                    Stop::Abort(f) => {
                        let t = f.is(names::TIMEOUT);
                        (f, t)
                    }
                    // The top level has no siblings; keep a clear error anyway.
                    Stop::Cancelled => (Failure::runtime("internal: top level cancelled"), false),
                };
                let (kind, status) = if timed_out {
                    (
                        EventType::ExecutionTimedOut,
                        ExecutionStatus::TimedOut {
                            failure: failure.clone(),
                        },
                    )
                } else {
                    (
                        EventType::ExecutionFailed,
                        ExecutionStatus::Failed {
                            failure: failure.clone(),
                        },
                    )
                };
                run.record(
                    kind,
                    None,
                    json!({ "error": failure.error, "cause": failure.cause }),
                );
                status
            }
        };
        let elapsed = (run.now - o.start_time).to_std().unwrap_or_default();
        Ok(Execution {
            status,
            history: run.events,
            virtual_elapsed: elapsed,
            transitions: shared.transitions.load(Ordering::Relaxed),
        })
    }
}

/// Size of `v` as the UTF-8 JSON text Step Functions measures, without building the string.
pub fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing a Value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// States.DataLimitExceeded when `v` is over 256 KiB ("Error names": the output of a connector
/// or a state, or the input of a state after Parameters, larger than the payload quota).
fn check_size(v: &Value, what: &str, state: &str) -> Result<(), Failure> {
    let n = json_len(v);
    if n > limits::PAYLOAD_BYTES {
        return Err(Failure::data_limit(format!(
            "The state/task '{state}' {what} has a size of {n} bytes, exceeding the maximum number of bytes service limit ({} bytes).",
            limits::PAYLOAD_BYTES
        )));
    }
    Ok(())
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

struct Shared {
    machine: Arc<StateMachine>,
    invoker: Arc<dyn TaskInvoker>,
    transitions: AtomicU64,
    max_transitions: u64,
    /// History events taken so far (all runs); at `max_events` the execution fails.
    events: AtomicU64,
    max_events: u64,
    deadline: Option<DateTime<Utc>>,
    real_time_scale: Option<f64>,
    /// Execution and StateMachine parts of the context object.
    context: Value,
}

/// Why a scope stopped: `Fail` may be retried/caught; `Abort` (transition limit, execution
/// timeout) ends the whole execution; `Cancelled`: a sibling Map iteration or Parallel branch
/// failed, so this one was stopped (never retried or caught).
enum Stop {
    Fail(Failure),
    Abort(Failure),
    Cancelled,
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Stop::Fail(f)
    }
}

struct Root0 {
    listener: Option<Listener>,
    next_id: u64,
}

/// One thread of execution: the top level, a branch or a Map iteration.
struct Run {
    shared: Arc<Shared>,
    now: DateTime<Utc>,
    events: Vec<HistoryEvent>,
    /// Set for the top-level run: it numbers events and feeds the listener.
    root: Option<Root0>,
    rng: SplitMix64,
    map_item: Option<(usize, Value)>,
    /// Cancelled when a sibling iteration/branch of an enclosing Map or Parallel fails.
    cancel: CancellationToken,
}

/// What an expression inside a state can see.
struct StateEnv<'a> {
    input: &'a Value,
    shared: &'a Shared,
    rng: &'a mut SplitMix64,
    state: &'a str,
    entered: DateTime<Utc>,
    retry_count: u64,
    map_item: Option<&'a (usize, Value)>,
}

impl Env for StateEnv<'_> {
    fn input(&self) -> &Value {
        self.input
    }

    fn context(&self) -> Value {
        let mut ctx = self.shared.context.clone();
        if let Value::Object(m) = &mut ctx {
            m.insert(
                "State".into(),
                json!({ "Name": self.state, "EnteredTime": iso(self.entered), "RetryCount": self.retry_count }),
            );
            if let Some((i, v)) = self.map_item {
                m.insert("Map".into(), json!({ "Item": { "Index": i, "Value": v } }));
            }
        }
        ctx
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// Per-state facts needed to build a [`StateEnv`].
#[derive(Clone, Copy)]
struct Here<'a> {
    state: &'a str,
    entered: DateTime<Utc>,
    retry_count: u64,
}

fn select_ctx(p: &Path, env: &mut StateEnv<'_>) -> Option<Value> {
    match p.root() {
        Root::Input => p.select(env.input),
        Root::Context => p.select(&env.context()),
    }
}

fn error_output(f: &Failure) -> Value {
    json!({ "Error": f.error, "Cause": f.cause })
}

fn apply_result_path(rp: &ResultPath, raw: &Value, result: Value) -> Result<Value, Failure> {
    match rp {
        ResultPath::Replace => Ok(result),
        ResultPath::Discard => Ok(raw.clone()),
        ResultPath::At(segs) => path::set_at(raw.clone(), segs, result).map_err(|e| {
            Failure::new(
                names::RESULT_PATH_MATCH_FAILURE,
                format!("unable to apply ResultPath to the state's input (at $ {e})"),
            )
        }),
    }
}

impl Run {
    fn record(&mut self, kind: EventType, state: Option<&str>, details: Value) {
        let terminal = matches!(
            kind,
            EventType::ExecutionSucceeded
                | EventType::ExecutionFailed
                | EventType::ExecutionTimedOut
        );
        // The history quota counts every event; the last slot is the ExecutionFailed event
        // (a documented AWS history ends "id":25000 ExecutionFailed after "id":24999).
        let n = self.shared.events.fetch_add(1, Ordering::Relaxed) + 1;
        if !terminal && n >= self.shared.max_events {
            return;
        }
        let e = HistoryEvent {
            id: 0,
            timestamp: self.now,
            kind,
            state: state.map(str::to_owned),
            details,
        };
        self.push(e);
    }

    fn push(&mut self, mut e: HistoryEvent) {
        if let Some(root) = &mut self.root {
            e.id = root.next_id;
            root.next_id += 1;
            if let Some(l) = &root.listener {
                l(&e);
            }
        }
        self.events.push(e);
    }

    /// A branch or iteration: `cancel` is its group's token (a child of this run's token, so
    /// cancelling an outer group stops nested ones too).
    fn child(&mut self, map_item: Option<(usize, Value)>, cancel: &CancellationToken) -> Run {
        Run {
            shared: self.shared.clone(),
            now: self.now,
            events: Vec::new(),
            root: None,
            rng: SplitMix64::new(self.rng.next_u64()),
            map_item,
            cancel: cancel.clone(),
        }
    }

    fn absorb(&mut self, child: &mut Run) {
        for e in std::mem::take(&mut child.events) {
            self.push(e);
        }
    }

    fn env<'a>(&'a mut self, input: &'a Value, here: Here<'a>) -> StateEnv<'a> {
        StateEnv {
            input,
            shared: &self.shared,
            rng: &mut self.rng,
            state: here.state,
            entered: here.entered,
            retry_count: here.retry_count,
            map_item: self.map_item.as_ref(),
        }
    }

    fn select(
        &mut self,
        sel: &Selection,
        input: Value,
        field: &str,
        here: Here<'_>,
    ) -> Result<Value, Failure> {
        match sel {
            Selection::All => Ok(input),
            Selection::Nothing => Ok(Value::Object(Map::new())),
            Selection::Path(p) => {
                let mut env = self.env(&input, here);
                select_ctx(p, &mut env).ok_or_else(|| {
                    Failure::runtime(format!(
                        "An error occurred while executing the state '{}'. Invalid path '{p}' : No results for path: {field}",
                        here.state
                    ))
                })
            }
        }
    }

    fn run_scope<'a>(
        &'a mut self,
        scope: &'a Scope,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, Stop>> {
        async move {
            let mut name: &str = &scope.start_at;
            let mut input = input;
            loop {
                if self.cancel.is_cancelled() {
                    return Err(Stop::Cancelled);
                }
                if let Some(f) = self.history_full() {
                    return Err(Stop::Abort(f));
                }
                let n = self.shared.transitions.fetch_add(1, Ordering::Relaxed) + 1;
                if n > self.shared.max_transitions {
                    return Err(Stop::Abort(Failure::runtime(format!(
                        "transition limit of {} exceeded when entering state {name:?} (an infinite loop?)",
                        self.shared.max_transitions
                    ))));
                }
                if let Some(deadline) = self.shared.deadline {
                    if self.now > deadline {
                        return Err(Stop::Abort(Failure::new(
                            names::TIMEOUT,
                            format!("the execution exceeded its TimeoutSeconds before entering state {name:?}"),
                        )));
                    }
                }
                let Some(state) = scope.states.get(name) else {
                    // The linter guarantees every target exists; keep a clear error anyway.
                    return Err(Stop::Abort(Failure::runtime(format!("no state named {name:?}"))));
                };
                let (output, next) = self.run_state(state, input).await?;
                match next {
                    Some(n) => {
                        name = n;
                        input = output;
                    }
                    None => return Ok(output),
                }
            }
        }
        .boxed()
    }

    async fn run_state<'a>(
        &mut self,
        state: &'a State,
        raw: Value,
    ) -> Result<(Value, Option<&'a str>), Stop> {
        let ty = state.kind.type_name();
        let name = state.name.as_str();
        let entered_kind = match &state.kind {
            Kind::Pass { .. } => EventType::PassStateEntered,
            Kind::Task { .. } => EventType::TaskStateEntered,
            Kind::Choice { .. } => EventType::ChoiceStateEntered,
            Kind::Wait(_) => EventType::WaitStateEntered,
            Kind::Succeed => EventType::SucceedStateEntered,
            Kind::Fail { .. } => EventType::FailStateEntered,
            Kind::Parallel { .. } => EventType::ParallelStateEntered,
            Kind::Map { .. } => EventType::MapStateEntered,
        };
        self.record(
            entered_kind,
            Some(name),
            json!({ "name": name, "input": raw }),
        );
        let mut here = Here {
            state: name,
            entered: self.now,
            retry_count: 0,
        };
        tracing::debug!(state = name, r#type = ty, "entered");
        let next = state.next.as_deref();
        let exited = |kind: &Kind| match kind {
            Kind::Pass { .. } => EventType::PassStateExited,
            Kind::Task { .. } => EventType::TaskStateExited,
            Kind::Choice { .. } => EventType::ChoiceStateExited,
            Kind::Wait(_) => EventType::WaitStateExited,
            Kind::Succeed => EventType::SucceedStateExited,
            Kind::Parallel { .. } => EventType::ParallelStateExited,
            Kind::Map { .. } => EventType::MapStateExited,
            Kind::Fail { .. } => EventType::FailStateEntered,
        };

        let (output, next, extra) = match &state.kind {
            Kind::Pass { result } => {
                let eff = self.select(&state.input_path, raw.clone(), "InputPath", here)?;
                let eff = self.parameters(state, eff, here)?;
                if state.parameters.is_some() {
                    check_size(&eff, "input after Parameters", name)?;
                }
                let result = result.clone().unwrap_or(eff);
                let out = apply_result_path(&state.result_path, &raw, result)?;
                let out = self.select(&state.output_path, out, "OutputPath", here)?;
                (out, next, Value::Null)
            }
            Kind::Succeed => {
                let eff = self.select(&state.input_path, raw, "InputPath", here)?;
                let out = self.select(&state.output_path, eff, "OutputPath", here)?;
                (out, None, Value::Null)
            }
            Kind::Choice { choices, default } => {
                let eff = self.select(&state.input_path, raw, "InputPath", here)?;
                let mut chosen = None;
                {
                    let mut env = self.env(&eff, here);
                    for (rule, target) in choices {
                        if choice::eval(rule, &mut env)? {
                            chosen = Some(target.as_str());
                            break;
                        }
                    }
                }
                let target = chosen.or(default.as_deref()).ok_or_else(|| {
                    Failure::new(
                        names::NO_CHOICE_MATCHED,
                        format!("no Choice rule of state {name:?} matched and it has no Default"),
                    )
                })?;
                let out = self.select(&state.output_path, eff, "OutputPath", here)?;
                (out, Some(target), Value::Null)
            }
            Kind::Wait(wait) => {
                let eff = self.select(&state.input_path, raw, "InputPath", here)?;
                let until = self.wait_until(wait, &eff, here)?;
                let waited = (until - self.now).max(chrono::Duration::zero());
                self.now += waited;
                self.sleep_real(waited.num_milliseconds() as f64 / 1000.0)
                    .await;
                let out = self.select(&state.output_path, eff, "OutputPath", here)?;
                let secs = waited.num_milliseconds() as f64 / 1000.0;
                (out, next, json!({ "waitedSeconds": secs }))
            }
            Kind::Fail { error, cause } => {
                // Without Error/Cause the execution ends with both null (no default name).
                let error = self.fail_field(error.as_ref(), &raw, here)?;
                let cause = self.fail_field(cause.as_ref(), &raw, here)?;
                return Err(Stop::Fail(Failure { error, cause }));
            }
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
                let mut counts = vec![0u64; state.retry.len()];
                loop {
                    let attempt = self.attempt(state, &raw, here).await;
                    let failure = match attempt {
                        Ok(out) => break (out, next, Value::Null),
                        Err(Stop::Abort(f)) => return Err(Stop::Abort(f)),
                        Err(Stop::Cancelled) => return Err(Stop::Cancelled),
                        Err(Stop::Fail(f)) => f,
                    };
                    let retrier = state
                        .retry
                        .iter()
                        .position(|r| error_matches(&r.error_equals, failure.error.as_deref()));
                    if let Some(i) = retrier {
                        let r = &state.retry[i];
                        if counts[i] < r.max_attempts {
                            let delay = self.backoff(r, counts[i]);
                            counts[i] += 1;
                            self.record_failure(state, &failure, Some((counts[i], delay)));
                            self.now +=
                                chrono::Duration::milliseconds((delay * 1000.0).round() as i64);
                            self.sleep_real(delay).await;
                            here.retry_count += 1;
                            continue;
                        }
                    }
                    self.record_failure(state, &failure, None);
                    let catcher = state
                        .catch
                        .iter()
                        .find(|c| error_matches(&c.error_equals, failure.error.as_deref()));
                    let Some(c) = catcher else {
                        return Err(Stop::Fail(failure));
                    };
                    let out = apply_result_path(&c.result_path, &raw, error_output(&failure))?;
                    check_size(&out, "output", name)?;
                    return Ok((out, Some(c.next.as_str())));
                }
            }
        };
        check_size(&output, "output", name)?;
        let mut details = json!({ "name": name, "output": output });
        if let (Value::Object(d), Value::Object(x)) = (&mut details, extra) {
            d.extend(x);
        }
        self.record(exited(&state.kind), Some(name), details);
        Ok((output, next))
    }

    /// Records the failure of one attempt of a Task/Parallel/Map, with the retry that follows.
    fn record_failure(&mut self, state: &State, f: &Failure, retry: Option<(u64, f64)>) {
        let kind = match &state.kind {
            Kind::Parallel { .. } => EventType::ParallelStateFailed,
            Kind::Map { .. } => EventType::MapStateFailed,
            _ if f.is(names::TIMEOUT) => EventType::TaskTimedOut,
            _ => EventType::TaskFailed,
        };
        let mut d = json!({ "error": f.error, "cause": f.cause });
        if let (Some((attempt, delay)), Value::Object(m)) = (retry, &mut d) {
            m.insert(
                "retry".into(),
                json!({ "attempt": attempt, "delaySeconds": delay }),
            );
        }
        self.record(kind, Some(&state.name), d);
    }

    /// States.Runtime once the history quota is used up (cause as AWS words it).
    fn history_full(&self) -> Option<Failure> {
        let max = self.shared.max_events;
        (self.shared.events.load(Ordering::Relaxed) >= max).then(|| {
            Failure::runtime(format!(
                "The execution reached the maximum number of history events ({max})."
            ))
        })
    }

    /// Sleep `virtual_seconds` × the real-time scale, when one is set; a cancelled run wakes
    /// at once (it stops at its next state).
    async fn sleep_real(&self, virtual_seconds: f64) {
        if let Some(scale) = self.shared.real_time_scale {
            let real = (virtual_seconds * scale).clamp(0.0, 3600.0);
            if real > 0.0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(real)) => {}
                    _ = self.cancel.cancelled() => {}
                }
            }
        }
    }

    fn backoff(&mut self, r: &Retrier, retries_so_far: u64) -> f64 {
        let exp = i32::try_from(retries_so_far).unwrap_or(i32::MAX);
        let mut delay = r.interval_seconds as f64 * r.backoff_rate.powi(exp);
        if let Some(max) = r.max_delay_seconds {
            delay = delay.min(max as f64);
        }
        if r.full_jitter {
            delay *= self.rng.next_f64();
        }
        (delay * 1000.0).round() / 1000.0
    }

    fn parameters(&mut self, state: &State, eff: Value, here: Here<'_>) -> Result<Value, Failure> {
        match &state.parameters {
            None => Ok(eff),
            Some(t) => {
                let mut env = self.env(&eff, here);
                t.eval(&mut env)
            }
        }
    }

    fn wait_until(
        &mut self,
        wait: &WaitFor,
        eff: &Value,
        here: Here<'_>,
    ) -> Result<DateTime<Utc>, Failure> {
        let mut env = self.env(eff, here);
        let bad = |p: &Path, what: &str| {
            Failure::runtime(format!("Wait state {:?}: {p} {what}", here.state))
        };
        Ok(match wait {
            WaitFor::Seconds(s) => self.now + chrono::Duration::seconds(*s as i64),
            WaitFor::Timestamp(t) => t.with_timezone(&Utc),
            WaitFor::SecondsPath(p) => {
                let v = select_ctx(p, &mut env).ok_or_else(|| bad(p, "matched nothing"))?;
                let s = v
                    .as_u64()
                    .ok_or_else(|| bad(p, "is not a non-negative integer"))?;
                self.now + chrono::Duration::seconds(s as i64)
            }
            WaitFor::TimestampPath(p) => {
                let v = select_ctx(p, &mut env).ok_or_else(|| bad(p, "matched nothing"))?;
                let t = v
                    .as_str()
                    .and_then(crate::lint::parse_timestamp)
                    .ok_or_else(|| bad(p, "is not an RFC 3339 timestamp"))?;
                t.with_timezone(&Utc)
            }
        })
    }

    fn fail_field(
        &mut self,
        src: Option<&Source>,
        raw: &Value,
        here: Here<'_>,
    ) -> Result<Option<String>, Failure> {
        let Some(src) = src else { return Ok(None) };
        let mut env = self.env(raw, here);
        let v = match src {
            Source::Literal(s) => return Ok(Some(s.clone())),
            Source::Path(p) => select_ctx(p, &mut env).ok_or_else(|| {
                Failure::runtime(format!("Fail state {:?}: {p} matched nothing", here.state))
            })?,
            Source::Call(c) => intrinsic::eval(c, &mut env)
                .map_err(|e| Failure::new(names::INTRINSIC_FAILURE, e))?,
        };
        match v {
            Value::String(s) => Ok(Some(s)),
            other => Err(Failure::runtime(format!(
                "Fail state {:?}: Error/Cause must be a string, got {other}",
                here.state
            ))),
        }
    }

    fn amount(&mut self, a: &Amount, eff: &Value, here: Here<'_>) -> Result<u64, Failure> {
        match a {
            Amount::Fixed(n) => Ok(*n),
            Amount::Path(p) => {
                let mut env = self.env(eff, here);
                select_ctx(p, &mut env)
                    .and_then(|v| v.as_u64())
                    .ok_or_else(|| {
                        Failure::runtime(format!(
                            "state {:?}: {p} is not a non-negative integer",
                            here.state
                        ))
                    })
            }
        }
    }

    /// One attempt of a Task, Parallel or Map: everything from InputPath to OutputPath.
    async fn attempt(&mut self, state: &State, raw: &Value, here: Here<'_>) -> Result<Value, Stop> {
        let eff = self.select(&state.input_path, raw.clone(), "InputPath", here)?;
        let result = match &state.kind {
            Kind::Task { resource, timeout } => {
                let params = self.parameters(state, eff.clone(), here)?;
                check_size(&params, "input after Parameters", &state.name)?;
                let timeout = match timeout {
                    Some(t) => Some(self.amount(t, &eff, here)?),
                    None => None,
                };
                self.task(state, resource, params, timeout).await?
            }
            Kind::Parallel { branches } => {
                let input = self.parameters(state, eff, here)?;
                check_size(&input, "input after Parameters", &state.name)?;
                self.record(
                    EventType::ParallelStateStarted,
                    Some(&state.name),
                    Value::Null,
                );
                // "If any branch fails [...] the entire Parallel state is considered to have
                // failed and all its branches are terminated" (ASL spec, Parallel State,
                // states-language.net/spec.html#parallel-state).
                let group = self.cancel.child_token();
                let mut children: Vec<Run> = (0..branches.len())
                    .map(|_| self.child(None, &group))
                    .collect();
                let start = self.now;
                let futs =
                    children
                        .iter_mut()
                        .zip(branches.iter())
                        .enumerate()
                        .map(|(i, (c, b))| {
                            let input = input.clone();
                            async move { (i, c.run_scope(b, input).await) }.boxed()
                        });
                let results = first_failure_cancels(futs, branches.len(), &group).await;
                let mut end = start;
                for c in &mut children {
                    end = end.max(c.now);
                    self.absorb(c);
                }
                self.now = end;
                let outputs = collect_group(results, &children, start, &mut self.now)?;
                self.record(
                    EventType::ParallelStateSucceeded,
                    Some(&state.name),
                    Value::Null,
                );
                Value::Array(outputs)
            }
            Kind::Map {
                items_path,
                item_selector,
                processor,
                max_concurrency,
            } => {
                self.map(
                    state,
                    &eff,
                    items_path.as_ref(),
                    item_selector.as_ref(),
                    processor,
                    max_concurrency,
                    here,
                )
                .await?
            }
            _ => {
                return Err(Stop::Abort(Failure::runtime(
                    "internal: not a task-like state",
                )))
            }
        };
        let result = match &state.result_selector {
            None => result,
            Some(t) => {
                let mut env = self.env(&result, here);
                t.eval(&mut env)?
            }
        };
        let out = apply_result_path(&state.result_path, raw, result)?;
        Ok(self.select(&state.output_path, out, "OutputPath", here)?)
    }

    async fn task(
        &mut self,
        state: &State,
        resource: &Resource,
        params: Value,
        timeout: Option<u64>,
    ) -> Result<Value, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if let Some(f) = self.history_full() {
            return Err(Stop::Abort(f));
        }
        let name = state.name.as_str();
        let (resource_type, resource_name, target, payload) = match resource {
            Resource::LambdaInvoke => {
                let function = params
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Failure::new(
                            names::TASK_FAILED,
                            format!("state {name:?}: Parameters.FunctionName is not a string"),
                        )
                    })?;
                // Lambda hands an empty payload to the function as `{}`.
                let payload = params.get("Payload").cloned().unwrap_or_else(|| json!({}));
                ("lambda", "invoke".to_owned(), function.to_owned(), payload)
            }
            Resource::Direct(r) => {
                let ty = if r.starts_with("arn:aws:lambda:") || r.starts_with("${") {
                    "lambda"
                } else {
                    "task"
                };
                (ty, r.clone(), r.clone(), params.clone())
            }
        };
        let mut sched = json!({ "resourceType": resource_type, "resource": resource_name, "parameters": params });
        if let (Some(t), Value::Object(m)) = (timeout, &mut sched) {
            m.insert("timeoutInSeconds".into(), json!(t));
        }
        self.record(EventType::TaskScheduled, Some(name), sched);
        self.record(
            EventType::TaskStarted,
            Some(name),
            json!({ "resourceType": resource_type, "resource": resource_name }),
        );
        let invoker = self.shared.invoker.clone();
        let call = invoker.invoke(&target, payload);
        // A sibling's failure stops the call: AWS aborts the Task with its iteration/branch.
        let cancel = self.cancel.clone();
        let call = async move {
            tokio::select! {
                r = call => Some(r),
                _ = cancel.cancelled() => None,
            }
        };
        let result = match timeout {
            // Task time-outs bound the real time an in-process handler may take.
            Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), call).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Failure::new(
                        names::TIMEOUT,
                        format!("task {target:?} did not finish within {secs} s"),
                    )
                    .into());
                }
            },
            None => call.await,
        };
        let Some(result) = result else {
            return Err(Stop::Cancelled);
        };
        match result {
            Ok(out) => {
                // The connector's output counts as it comes back (the Lambda payload wrapped
                // for lambda:invoke).
                check_size(&out, "returned a result that", name)?;
                let out = match resource {
                    Resource::LambdaInvoke => json!({
                        "ExecutedVersion": "$LATEST",
                        "Payload": out,
                        "SdkHttpMetadata": { "HttpStatusCode": 200 },
                        "StatusCode": 200,
                    }),
                    Resource::Direct(_) => out,
                };
                self.record(
                    EventType::TaskSucceeded,
                    Some(name),
                    json!({ "resourceType": resource_type, "resource": resource_name, "output": out }),
                );
                Ok(out)
            }
            Err(e) => Err(Failure::new(e.error, e.cause).into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn map(
        &mut self,
        state: &State,
        eff: &Value,
        items_path: Option<&Path>,
        item_selector: Option<&crate::template::Template>,
        processor: &Scope,
        max_concurrency: &Amount,
        here: Here<'_>,
    ) -> Result<Value, Stop> {
        let items = match items_path {
            None => eff.clone(),
            Some(p) => {
                let mut env = self.env(eff, here);
                select_ctx(p, &mut env).ok_or_else(|| {
                    Failure::runtime(format!(
                        "Map state {:?}: ItemsPath {p} matched nothing",
                        here.state
                    ))
                })?
            }
        };
        let Value::Array(items) = items else {
            return Err(Failure::runtime(format!(
                "Map state {:?}: ItemsPath must select an array, got {}",
                here.state,
                path::type_name(&items)
            ))
            .into());
        };
        let limit = self.amount(max_concurrency, eff, here)?;
        self.record(
            EventType::MapStateStarted,
            Some(&state.name),
            json!({ "length": items.len() }),
        );
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let input = match item_selector {
                None => item.clone(),
                Some(t) => {
                    let pair = (i, item.clone());
                    let mut env = StateEnv {
                        input: eff,
                        shared: &self.shared,
                        rng: &mut self.rng,
                        state: here.state,
                        entered: here.entered,
                        retry_count: here.retry_count,
                        map_item: Some(&pair),
                    };
                    t.eval(&mut env)?
                }
            };
            inputs.push((i, item, input));
        }
        let start = self.now;
        let n = inputs.len();
        // "If any iteration fails [...] the entire Map state is considered to have failed and
        // all its iterations are terminated" (ASL spec, Map State,
        // states-language.net/spec.html#map-state; AWS records MapIterationAborted for them).
        let group = self.cancel.child_token();
        let mut children: Vec<Run> = inputs
            .iter()
            .map(|(i, item, _)| self.child(Some((*i, item.clone())), &group))
            .collect();
        let mut results: Vec<Option<Result<Value, Stop>>> = Vec::with_capacity(n);
        if limit == 1 {
            // One at a time: each iteration starts when the previous one ended (virtual time too).
            let mut clock = start;
            for (c, (i, _, input)) in children.iter_mut().zip(inputs) {
                c.now = clock;
                let r = iteration(c, processor, i, input, &state.name).await;
                clock = c.now;
                let failed = r.is_err();
                results.push(Some(r));
                if failed {
                    break;
                }
            }
            self.now = clock;
        } else {
            let width = if limit == 0 { n.max(1) } else { limit as usize };
            let map_name = state.name.as_str();
            let mut futs = Vec::with_capacity(n);
            for (c, (i, _, input)) in children.iter_mut().zip(inputs) {
                futs.push(
                    async move { (i, iteration(c, processor, i, input, map_name).await) }.boxed(),
                );
            }
            results = first_failure_cancels(futs, width, &group).await;
            // Virtual end time: iterations scheduled in order onto `width` slots.
            let mut slots = vec![start; width.min(n.max(1))];
            for c in &children {
                let (idx, _) = slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, t)| **t)
                    .unwrap_or((0, &start));
                slots[idx] += c.now - start;
            }
            self.now = slots.into_iter().max().unwrap_or(start);
        }
        for c in &mut children {
            self.absorb(c);
        }
        let outputs = collect_group(results, &children, start, &mut self.now)?;
        self.record(EventType::MapStateSucceeded, Some(&state.name), Value::Null);
        Ok(Value::Array(outputs))
    }
}

/// Runs a Map's iterations or a Parallel's branches, at most `width` at a time; the first one
/// that fails cancels `group`, so the others stop at their next state (and iterations not yet
/// started never start). Results come back by index (`None`: never ran).
async fn first_failure_cancels<'a, I>(
    futs: I,
    width: usize,
    group: &CancellationToken,
) -> Vec<Option<Result<Value, Stop>>>
where
    I: IntoIterator<Item = BoxFuture<'a, (usize, Result<Value, Stop>)>>,
{
    let futs: Vec<_> = futs.into_iter().collect();
    let mut results: Vec<Option<Result<Value, Stop>>> = (0..futs.len()).map(|_| None).collect();
    let mut running = futures::stream::iter(futs).buffer_unordered(width.max(1));
    while let Some((i, r)) = running.next().await {
        if matches!(r, Err(Stop::Fail(_) | Stop::Abort(_))) {
            group.cancel();
        }
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(r);
        }
    }
    results
}

/// The outputs of a group in index order, or the failure that ended it: an Abort first, else
/// the failure earliest on the virtual clock (ties: lowest index), which also sets `now`.
fn collect_group(
    results: Vec<Option<Result<Value, Stop>>>,
    children: &[Run],
    start: DateTime<Utc>,
    now: &mut DateTime<Utc>,
) -> Result<Vec<Value>, Stop> {
    let mut outputs = Vec::with_capacity(results.len());
    let mut failed: Option<(DateTime<Utc>, Failure)> = None;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(v)) => outputs.push(v),
            Some(Err(Stop::Abort(f))) => return Err(Stop::Abort(f)),
            Some(Err(Stop::Fail(f))) => {
                let at = children.get(i).map_or(start, |c| c.now);
                if failed.as_ref().is_none_or(|(t, _)| at < *t) {
                    failed = Some((at, f));
                }
            }
            Some(Err(Stop::Cancelled)) | None => {}
        }
    }
    match failed {
        Some((at, f)) => {
            *now = at.max(start);
            Err(Stop::Fail(f))
        }
        None if outputs.len() == children.len() => Ok(outputs),
        // Everything was cancelled from outside (an enclosing group failed).
        None => Err(Stop::Cancelled),
    }
}

async fn iteration(
    c: &mut Run,
    processor: &Scope,
    index: usize,
    input: Value,
    map: &str,
) -> Result<Value, Stop> {
    if c.cancel.is_cancelled() {
        // A sibling failed before this iteration's turn: it never starts.
        return Err(Stop::Cancelled);
    }
    c.record(
        EventType::MapIterationStarted,
        Some(map),
        json!({ "index": index }),
    );
    let r = c.run_scope(processor, input).await;
    let kind = match &r {
        Ok(_) => EventType::MapIterationSucceeded,
        Err(Stop::Cancelled) => EventType::MapIterationAborted,
        Err(_) => EventType::MapIterationFailed,
    };
    c.record(kind, Some(map), json!({ "index": index }));
    r
}
