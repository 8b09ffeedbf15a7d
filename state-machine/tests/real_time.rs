//! `Options::real_time_scale`: local runs against live simulators sleep for real during Waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use labflow_states::{load, Executor, Options, RegistryInvoker};
use serde_json::json;

fn wait_machine(seconds: u64) -> labflow_states::StateMachine {
    let def =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": true}}});
    load(&def.to_string()).expect("valid definition")
}

#[tokio::test]
async fn waits_sleep_scaled_real_time_when_asked() {
    let options = Options {
        real_time_scale: Some(0.1),
        ..Options::default()
    };
    let executor =
        Executor::new(wait_machine(3), Arc::new(RegistryInvoker::new())).with_options(options);
    let started = Instant::now();
    let execution = executor
        .run(json!({}))
        .await
        .unwrap_or_else(|e| panic!("the execution did not start: {e}"));
    assert!(execution.output().is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(execution.virtual_elapsed, Duration::from_secs(3));
}

#[tokio::test]
async fn waits_take_no_real_time_by_default() {
    let executor = Executor::new(wait_machine(3600), Arc::new(RegistryInvoker::new()));
    let started = Instant::now();
    let execution = executor
        .run(json!({}))
        .await
        .unwrap_or_else(|e| panic!("the execution did not start: {e}"));
    assert!(execution.output().is_some());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(execution.virtual_elapsed, Duration::from_secs(3600));
}
