//! `labflow states run|lint` through the real binary.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../state-machine/examples")
}

fn labflow(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_labflow"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawning labflow: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn states_run_prints_history_and_output() {
    let def = examples().join("wait-until-ready.asl.json");
    let input = examples().join("wait-until-ready.input.json");
    let (code, stdout, stderr) = labflow(&[
        "states",
        "run",
        def.to_str().unwrap_or_default(),
        "--input",
        input.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains("history:")
            && stdout.contains("WaitStateExited")
            && stdout.contains("(waited 30 s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"message\": \"ready after 3 polls\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("status: SUCCEEDED") && stdout.contains("90 s virtual time"),
        "{stdout}"
    );
}

#[test]
fn states_run_json_is_machine_readable() {
    let def = examples().join("teardown-all.asl.json");
    let input = examples().join("teardown-all.input.json");
    let (code, stdout, stderr) = labflow(&[
        "states",
        "run",
        def.to_str().unwrap_or_default(),
        "--input",
        input.to_str().unwrap_or_default(),
        "--json",
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["status"], json!("SUCCEEDED"));
    assert_eq!(
        v["output"][1],
        json!({ "name": "demo", "result": "skipped (protected)" })
    );
    assert_eq!(v["virtualSeconds"], json!(120.0));
    let history = v["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        history.first().map(|e| e["type"].clone()),
        Some(json!("ExecutionStarted"))
    );
    assert_eq!(
        history.last().map(|e| e["type"].clone()),
        Some(json!("ExecutionSucceeded"))
    );
}

#[test]
fn states_run_unknown_task_fails_clearly() {
    let def = examples().join("lifecycle-shape.asl.json");
    let (code, stdout, stderr) = labflow(&["states", "run", def.to_str().unwrap_or_default()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no task handler for \"${EnsureClusterArn}\""),
        "{stderr}"
    );
    assert!(
        stdout.contains("status: FAILED Lambda.ResourceNotFoundException"),
        "{stdout}"
    );
}

#[test]
fn states_lint_names_state_and_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.asl.json");
    let def = json!({ "StartAt": "Foo", "States": {
        "Foo": { "Type": "Pass", "Next": "Nope", "Bogus": 1 },
        "Orphan": { "Type": "Succeed" }
    }});
    std::fs::write(&bad, def.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let (code, stdout, _) = labflow(&["states", "lint", bad.to_str().unwrap_or_default()]);
    assert_eq!(code, 1);
    for want in [
        "States.Foo.Bogus: unknown field for a Pass state",
        "States.Foo.Next: \"Nope\" is not a state",
        "States.Orphan: unreachable",
    ] {
        assert!(stdout.contains(want), "{want:?} missing in {stdout}");
    }
    // `states run` refuses the same definition before running anything.
    let (code, stdout, _) = labflow(&["states", "run", bad.to_str().unwrap_or_default()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("3 problem(s)") && !stdout.contains("history:"),
        "{stdout}"
    );
    let good = examples().join("teardown-all.asl.json");
    let (code, stdout, _) = labflow(&["states", "lint", good.to_str().unwrap_or_default()]);
    assert_eq!((code, stdout.contains(": ok")), (0, true), "{stdout}");
}

#[test]
fn states_run_sets_the_state_machine_name_and_refuses_bad_names() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let def = dir.path().join("names.asl.json");
    let text = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
        "machine.$": "$$.StateMachine.Name", "id.$": "$$.StateMachine.Id", "exec.$": "$$.Execution.Name"}, "End": true}}}"#;
    std::fs::write(&def, text).unwrap_or_else(|e| panic!("write: {e}"));
    let path = def.to_str().unwrap_or_default();
    let (code, stdout, stderr) = labflow(&[
        "states",
        "run",
        path,
        "--state-machine-name",
        "labflow-lifecycle",
        "--execution-name",
        "create-lab-1",
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains("\"machine\": \"labflow-lifecycle\""),
        "{stdout}"
    );
    assert!(
        stdout.contains(":stateMachine:labflow-lifecycle\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"exec\": \"create-lab-1\""), "{stdout}");
    // ExecutionStarted, PassStateEntered, PassStateExited, ExecutionSucceeded.
    assert!(stdout.contains("4 history events"), "{stdout}");
    // StartExecution's naming rules: no whitespace, 1-80 characters.
    let (code, _, stderr) = labflow(&["states", "run", path, "--state-machine-name", "has space"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("InvalidName"), "{stderr}");
}
