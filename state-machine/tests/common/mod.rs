//! Shared helpers for the conformance tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use labflow_states::{Execution, Executor, Options, RegistryInvoker, TaskError};
use serde_json::{json, Value};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Handlers the tests call: `Add` sums val1 + val2; `Echo` returns its input; `Boom` always fails
/// with `CustomError`; `Sleep` sleeps (tokio time) 10 s; `Flaky` fails twice then succeeds.
pub fn invoker(calls: Arc<AtomicU64>) -> RegistryInvoker {
    let mut r = RegistryInvoker::new();
    r.register_sync("Add", |v: Value| {
        let a = v["val1"]
            .as_i64()
            .ok_or_else(|| TaskError::new("BadInput", "val1"))?;
        let b = v["val2"]
            .as_i64()
            .ok_or_else(|| TaskError::new("BadInput", "val2"))?;
        Ok(json!(a + b))
    });
    r.register_sync("Echo", Ok);
    let c = calls.clone();
    r.register_sync("Boom", move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Err(TaskError::new("CustomError", "it went boom"))
    });
    r.register("Sleep", |v: Value| async move {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        Ok(v)
    });
    let c = calls;
    r.register_sync("Flaky", move |v| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n < 2 {
            Err(TaskError::new("labflow.Transient", format!("attempt {n}")))
        } else {
            Ok(v)
        }
    });
    r
}

pub fn options() -> Options {
    Options {
        start_time: t0(),
        execution_name: "exec-1".into(),
        state_machine_name: "sm".into(),
        ..Options::default()
    }
}

pub async fn run_with(
    def: Value,
    input: Value,
    calls: Arc<AtomicU64>,
    options: Options,
) -> Execution {
    let machine = match labflow_states::lint(&def) {
        Ok(m) => m,
        Err(e) => panic!("definition does not lint: {e}"),
    };
    Executor::new(machine, Arc::new(invoker(calls)))
        .with_options(options)
        .run(input)
        .await
        .unwrap_or_else(|e| panic!("the execution did not start: {e}"))
}

pub async fn run(def: Value, input: Value) -> Execution {
    run_with(def, input, Arc::new(AtomicU64::new(0)), options()).await
}

/// The output of a successful execution (panics with the failure otherwise).
pub fn output(e: &Execution) -> &Value {
    match e.output() {
        Some(o) => o,
        None => panic!("execution did not succeed: {:?}", e.failure()),
    }
}

/// The error name of a failed execution.
pub fn error(e: &Execution) -> String {
    match e.failure() {
        Some(f) => f.name().to_owned(),
        None => panic!("execution succeeded: {:?}", e.output()),
    }
}

/// A one-state machine around `state`.
pub fn single(state: Value) -> Value {
    json!({ "StartAt": "S", "States": { "S": state } })
}
