//! The example definitions under examples/ run to the outputs computed by hand.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

fn load(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn wait_until_ready_polls_three_times() {
    let e = common::run(
        load("wait-until-ready.asl.json"),
        load("wait-until-ready.input.json"),
    )
    .await;
    assert_eq!(
        common::output(&e),
        &json!({ "message": "ready after 3 polls" })
    );
    assert_eq!(e.virtual_elapsed, Duration::from_secs(90));
}

#[tokio::test]
async fn teardown_all_maps_parallel_checks_over_environments() {
    let e = common::run(
        load("teardown-all.asl.json"),
        load("teardown-all.input.json"),
    )
    .await;
    let checks = json!(["dns clean", "cluster gone"]);
    assert_eq!(
        common::output(&e),
        &json!([
            { "name": "dev", "result": "torn down for nightly", "checks": checks },
            { "name": "demo", "result": "skipped (protected)" },
            { "name": "qa", "result": "torn down for nightly", "checks": checks }
        ])
    );
    // MaxConcurrency 2: dev (60 s) and demo (0 s) start together, qa (120 s) takes demo's slot.
    assert_eq!(e.virtual_elapsed, Duration::from_secs(120));
}

#[tokio::test]
async fn teardown_all_with_no_environments_fails() {
    let e = common::run(
        load("teardown-all.asl.json"),
        json!({ "requestedBy": "x", "environments": [] }),
    )
    .await;
    assert_eq!(common::error(&e), "labflow.InvalidInput");
}
