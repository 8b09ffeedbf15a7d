//! Execution and step payloads serialise as the state machine expects (camelCase, tagged source).

use anyhow::Result;
use labflow_core::contract::{Action, ExecutionInput, Source, StepInput};
use labflow_core::lambda::decode_input;
use serde_json::json;

#[test]
fn github_execution_input_round_trips() -> Result<()> {
    let value = json!({
        "action": "sync",
        "environment": "lab",
        "source": {"kind": "github", "repository": "example/labflow", "branch": "main",
                   "sha": "0123456789abcdef0123456789abcdef01234567", "deliveryId": "d-1", "pusher": "octocat"}
    });
    let input: ExecutionInput = decode_input(value.clone())?;
    assert_eq!(input.action, Action::Sync);
    assert_eq!(
        input.source.target_sha(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    let mut back = serde_json::to_value(&input)?;
    back.as_object_mut().map(|o| o.remove("pollSeconds"));
    assert_eq!(back, value);
    Ok(())
}

#[test]
fn schedule_and_console_sources() -> Result<()> {
    let input: ExecutionInput =
        decode_input(json!({"action": "teardown-all", "source": {"kind": "schedule"}}))?;
    assert!(input.source.is_schedule());
    assert_eq!(input.environment, None);
    let step: StepInput = decode_input(
        json!({"environment": "lab", "action": "create", "source": {"kind": "console"}}),
    )?;
    assert_eq!(step.source, Source::Console { requested_by: None });
    assert_eq!(Action::TeardownAll.as_str(), "teardown-all");
    Ok(())
}

#[test]
fn unknown_fields_and_bad_values_name_the_path() {
    let err = decode_input::<ExecutionInput>(json!({"action": "create", "environment": "lab", "source": {"kind": "console"}, "bogus": true}))
        .expect_err("unknown field");
    assert_eq!(err.name(), "labflow.InvalidInput");
    assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
    let err =
        decode_input::<ExecutionInput>(json!({"action": "explode", "source": {"kind": "console"}}))
            .expect_err("bad action");
    assert!(err.to_string().contains("action"), "{err}");
    let err = decode_input::<ExecutionInput>(
        json!({"action": "sync", "source": {"kind": "github", "branch": "main"}}),
    )
    .expect_err("missing fields");
    assert!(err.to_string().contains("source"), "{err}");
}
