//! The real definition (lifecycle.asl.json) run with stand-in Lambdas: how it behaves when
//! steps fail, checked against what Step Functions does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use labflow_states::{Execution, Executor, Options, RegistryInvoker, TaskError};
use serde_json::{json, Value};

fn definition() -> Value {
    let path = format!("{}/lifecycle.asl.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the stand-in Lambdas were asked to do.
#[derive(Default, Debug)]
struct Calls {
    /// environment → teardown reports returned (`done` values).
    teardowns: BTreeMap<String, Vec<bool>>,
    released: Vec<String>,
    statuses: Vec<Value>,
}

/// run-guard lists `environments`; teardown fails with labflow.NotOwned for those in `refuse`
/// and needs two calls (one Wait) for the others.
fn lambdas(environments: &[&str], refuse: &[&str], calls: Arc<Mutex<Calls>>) -> RegistryInvoker {
    let mut r = RegistryInvoker::new();
    let envs: Vec<String> = environments.iter().map(|s| s.to_string()).collect();
    let c = calls.clone();
    r.register_sync("RunGuardArn", move |v: Value| {
        match v["operation"].as_str() {
            Some("list") => Ok(json!({ "environments": envs, "skipped": [] })),
            Some("acquire") => Ok(json!({ "done": true, "phase": "locked" })),
            Some("release") => {
                if let (Ok(mut c), Some(env)) = (c.lock(), v["environment"].as_str()) {
                    c.released.push(env.to_owned());
                }
                Ok(json!({ "done": true, "phase": "released" }))
            }
            other => Err(TaskError::new("labflow.InvalidInput", format!("{other:?}"))),
        }
    });
    let refuse: Vec<String> = refuse.iter().map(|s| s.to_string()).collect();
    let c = calls.clone();
    r.register("TeardownArn", move |v: Value| {
        let c = c.clone();
        let refuse = refuse.clone();
        async move {
            let env = v["environment"].as_str().unwrap_or_default().to_owned();
            if refuse.contains(&env) {
                return Err(TaskError::new(
                    "labflow.NotOwned",
                    format!("cluster labflow-{env} lacks labflow:managed-by"),
                ));
            }
            // Real work takes real time: the refusal above is seen first.
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            let mut c = c
                .lock()
                .map_err(|_| TaskError::new("labflow.Transient", "poisoned"))?;
            let seen = c.teardowns.entry(env).or_default();
            let done = !seen.is_empty();
            seen.push(done);
            Ok(json!({ "done": done, "phase": if done { "complete" } else { "cluster" } }))
        }
    });
    let c = calls;
    r.register_sync("GithubStatusArn", move |v: Value| {
        if let Ok(mut c) = c.lock() {
            c.statuses.push(v);
        }
        Ok(json!({ "done": true, "phase": "skipped" }))
    });
    r
}

async fn run(input: Value, invoker: RegistryInvoker) -> Execution {
    let machine = labflow_states::lint(&definition())
        .unwrap_or_else(|e| panic!("lifecycle.asl.json does not lint: {e}"));
    let options = Options {
        start_time: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        execution_name: "teardown-all-test".into(),
        state_machine_name: "labflow-lifecycle".into(),
        ..Options::default()
    };
    Executor::new(machine, Arc::new(invoker))
        .with_options(options)
        .run(input)
        .await
        .unwrap_or_else(|e| panic!("the execution did not start: {e}"))
}

fn teardown_all() -> Value {
    json!({ "action": "teardown-all", "source": { "kind": "schedule" }, "pollSeconds": 1 })
}

#[tokio::test]
async fn teardown_all_one_refused_environment_does_not_stop_the_others() {
    // One failed iteration fails an inline Map and stops the others (ASL spec, Map State), so
    // each iteration must end in a result, and the result is checked after the Map.
    let calls = Arc::new(Mutex::new(Calls::default()));
    let e = run(teardown_all(), lambdas(&["a", "b"], &["a"], calls.clone())).await;
    let calls = calls.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(
        calls.teardowns.get("b"),
        Some(&vec![false, true]),
        "b must be torn down to the end although a was refused: {calls:?}"
    );
    assert!(
        calls.released.contains(&"a".to_string()) && calls.released.contains(&"b".to_string()),
        "both locks released: {calls:?}"
    );
    let failure = e.failure().cloned().unwrap_or_else(|| {
        panic!(
            "a refused teardown must fail the execution: {:?}",
            e.output()
        )
    });
    assert_eq!(failure.name(), "labflow.TeardownFailed", "{failure:?}");
    let cause = failure.cause_text();
    assert!(
        cause.contains("\"environment\":\"a\"") && cause.contains("labflow.NotOwned"),
        "the cause names the environment and its error: {cause}"
    );
    assert!(
        !cause.contains("\"environment\":\"b\""),
        "b did not fail: {cause}"
    );
    let reported: Vec<&Value> = calls
        .statuses
        .iter()
        .filter(|s| s["state"] == "failure")
        .collect();
    assert_eq!(
        reported.len(),
        1,
        "failure reported once: {:?}",
        calls.statuses
    );
    assert_eq!(
        reported[0]["error"]["Error"],
        json!("labflow.TeardownFailed")
    );
}

#[tokio::test]
async fn teardown_all_reports_every_environment_when_all_succeed() {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let e = run(teardown_all(), lambdas(&["a", "b"], &[], calls.clone())).await;
    let out = e
        .output()
        .cloned()
        .unwrap_or_else(|| panic!("teardown-all failed: {:?}", e.failure()));
    assert_eq!(
        out["teardowns"],
        json!([
            { "environment": "a", "failed": false, "phase": "complete" },
            { "environment": "b", "failed": false, "phase": "complete" }
        ])
    );
}

/// Every Task state of `scope` (nested Map/Parallel scopes too), by name.
fn tasks<'a>(scope: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    for (name, state) in scope["States"].as_object().into_iter().flatten() {
        if state["Type"] == "Task" {
            out.push((name.clone(), state));
        }
        if let Some(p) = state.get("ItemProcessor").or_else(|| state.get("Iterator")) {
            tasks(p, out);
        }
        for b in state["Branches"].as_array().into_iter().flatten() {
            tasks(b, out);
        }
    }
}

#[test]
fn every_lambda_task_retries_what_the_step_functions_best_practices_name() {
    // "Handle Lambda service exceptions" (docs.aws.amazon.com/step-functions/latest/dg/
    // bp-lambda-serviceexception.html): retry ClientExecutionTimeoutException, ServiceException,
    // AWSLambdaException, SdkClientException; TooManyRequestsException when Lambda throttles;
    // unhandled errors (function timeout, out of memory) come as Lambda.Unknown — worth a retry
    // or two, not six, since the same input may well fail the same way again.
    const TRANSIENT: &[&str] = &[
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ];
    const UNKNOWN_MAX_ATTEMPTS: u64 = 2;
    let def = definition();
    let mut all = Vec::new();
    tasks(&def, &mut all);
    assert!(all.len() > 5, "found only {} Task states", all.len());
    let mut problems = Vec::new();
    for (name, task) in all {
        let retry: Vec<&Value> = task["Retry"].as_array().into_iter().flatten().collect();
        let retried = |error: &str| {
            retry.iter().find(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x == error))
            })
        };
        for error in TRANSIENT {
            if retried(error).is_none() {
                problems.push(format!("{name}: {error} is not retried"));
            }
        }
        match retried("Lambda.Unknown") {
            None => problems.push(format!("{name}: Lambda.Unknown is not retried")),
            Some(r) => {
                // MaxAttempts defaults to 3 (ASL spec, Retrying after an error).
                let max = r["MaxAttempts"].as_u64().unwrap_or(3);
                if max == 0 || max > UNKNOWN_MAX_ATTEMPTS {
                    problems.push(format!(
                        "{name}: Lambda.Unknown retried {max} times (want 1..={UNKNOWN_MAX_ATTEMPTS})"
                    ));
                }
                if TRANSIENT.iter().any(|t| {
                    r["ErrorEquals"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x == t))
                }) {
                    problems.push(format!(
                        "{name}: Lambda.Unknown shares a retrier with the service exceptions"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
