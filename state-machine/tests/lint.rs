//! The linter: every problem is reported with the state and field it is in.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use labflow_states::{lint, Executor, RegistryInvoker, TaskError};
use serde_json::{json, Value};

/// All lint messages of `def` as `at: message` strings.
fn errors(def: Value) -> Vec<String> {
    match lint(&def) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn assert_has(def: Value, want: &str) {
    let errs = errors(def);
    assert!(
        errs.iter().any(|e| e.contains(want)),
        "expected {want:?} in {errs:#?}"
    );
}

fn pass_end() -> Value {
    json!({ "Type": "Pass", "End": true })
}

#[test]
fn next_to_nowhere_names_state_and_field() {
    let def = json!({ "StartAt": "Foo", "States": { "Foo": { "Type": "Pass", "Next": "Nope" } } });
    assert_eq!(
        errors(def),
        vec![r#"States.Foo.Next: "Nope" is not a state"#.to_owned()]
    );
}

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    assert_has(
        json!({ "StartAt": "A", "Bogus": 1, "States": { "A": pass_end() } }),
        "Bogus: unknown field",
    );
    assert_has(
        json!({ "StartAt": "A", "States": { "A": { "Type": "Pass", "Resource": "x", "End": true } } }),
        "States.A.Resource: unknown field for a Pass state",
    );
    assert_has(
        json!({ "StartAt": "A", "States": { "A": { "Type": "Task", "Resource": "x", "End": true,
            "Retry": [{ "ErrorEquals": ["E"], "Intervalseconds": 1 }] } } }),
        "States.A.Retry[0].Intervalseconds: unknown field",
    );
    assert_has(
        json!({ "StartAt": "A", "States": { "A": { "Type": "Choice", "Choices": [
            { "Variable": "$.x", "StringEquals": "a", "Next": "B" }], "Default": "B", "End": true }, "B": pass_end() } }),
        "States.A.End: unknown field for a Choice state",
    );
}

#[test]
fn missing_start_at_and_unknown_start() {
    assert_has(json!({ "States": { "A": pass_end() } }), "StartAt: missing");
    assert_has(
        json!({ "StartAt": "Z", "States": { "A": pass_end() } }),
        "StartAt: \"Z\" is not a state",
    );
}

#[test]
fn unreachable_states() {
    let def = json!({ "StartAt": "A", "States": { "A": pass_end(), "Orphan": pass_end() } });
    assert_eq!(
        errors(def),
        vec!["States.Orphan: unreachable: no transition leads to this state".to_owned()]
    );
}

#[test]
fn non_terminal_state_without_next_and_both_next_and_end() {
    assert_has(
        json!({ "StartAt": "A", "States": { "A": { "Type": "Pass" } } }),
        "States.A: is not terminal",
    );
    assert_has(
        json!({ "StartAt": "A", "States": { "A": { "Type": "Pass", "Next": "A", "End": true } } }),
        "States.A: has both Next and End",
    );
}

#[test]
fn choice_rule_shapes() {
    let choice = |rule: Value| {
        json!({ "StartAt": "C", "States": {
        "C": { "Type": "Choice", "Choices": [rule], "Default": "D" }, "D": pass_end() } })
    };
    assert_has(
        choice(json!({ "Variable": "$.x", "StringEquals": "a" })),
        "States.C.Choices[0].Next: missing",
    );
    assert_has(
        choice(
            json!({ "And": [{ "Variable": "$.x", "StringEquals": "a", "Next": "D" }], "Next": "D" }),
        ),
        "States.C.Choices[0].And[0].Next: only top-level choice rules may have Next",
    );
    assert_has(
        choice(json!({ "Variable": "$.x", "StringEquals": "a", "NumericEquals": 1, "Next": "D" })),
        "a comparison needs exactly one operator",
    );
    assert_has(
        choice(json!({ "StringEquals": "a", "Next": "D" })),
        "States.C.Choices[0].Variable: missing",
    );
    assert_has(
        choice(json!({ "Variable": "$.x", "NumericEquals": "1", "Next": "D" })),
        "States.C.Choices[0].NumericEquals: \"1\" is not a number",
    );
    assert_has(
        choice(json!({ "Variable": "$.x", "TimestampEquals": "yesterday", "Next": "D" })),
        "is not an RFC 3339 timestamp",
    );
    assert_has(
        choice(json!({ "Variable": "$.x", "StringFoo": "a", "Next": "D" })),
        "unknown choice rule operator",
    );
    assert_has(
        choice(json!({ "Or": [], "Next": "D" })),
        "States.C.Choices[0].Or: must be a non-empty array",
    );
    assert_has(
        choice(json!({ "Variable": "$.x[*]", "IsPresent": true, "Next": "D" })),
        "is not a reference path",
    );
}

#[test]
fn retry_and_catch_states_all_rules() {
    let task = |retry: Value, catch: Value| {
        json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "x", "Retry": retry, "Catch": catch, "End": true }, "H": pass_end() } })
    };
    assert_has(
        task(
            json!([{ "ErrorEquals": ["States.ALL"] }, { "ErrorEquals": ["E"] }]),
            json!([{ "ErrorEquals": ["E"], "Next": "H" }]),
        ),
        "States.T.Retry[0].ErrorEquals: States.ALL must be in the last retrier/catcher",
    );
    assert_has(
        task(
            json!([]),
            json!([{ "ErrorEquals": ["States.ALL", "E"], "Next": "H" }]),
        ),
        "States.T.Catch[0].ErrorEquals: States.ALL must appear alone",
    );
    assert_has(
        task(
            json!([{ "ErrorEquals": ["E"], "BackoffRate": 0.5 }]),
            json!([{ "ErrorEquals": ["E"], "Next": "H" }]),
        ),
        "States.T.Retry[0].BackoffRate",
    );
    assert_has(
        task(
            json!([{ "ErrorEquals": ["E"], "JitterStrategy": "SOME" }]),
            json!([{ "ErrorEquals": ["E"], "Next": "H" }]),
        ),
        "States.T.Retry[0].JitterStrategy",
    );
    assert_has(
        task(
            json!([]),
            json!([{ "ErrorEquals": ["E"], "Next": "Nowhere" }]),
        ),
        "States.T.Catch[0].Next: \"Nowhere\" is not a state",
    );
    assert_has(
        task(
            json!([{ "ErrorEquals": [] }]),
            json!([{ "ErrorEquals": ["E"], "Next": "H" }]),
        ),
        "States.T.Retry[0].ErrorEquals",
    );
}

#[test]
fn paths_intrinsics_and_dollar_keys() {
    let pass = |extra: Value| {
        let mut s = json!({ "Type": "Pass", "End": true });
        if let (Value::Object(s), Value::Object(e)) = (&mut s, extra) {
            s.extend(e);
        }
        json!({ "StartAt": "P", "States": { "P": s } })
    };
    assert_has(
        pass(json!({ "InputPath": "$.a[?(@.x >" })),
        "States.P.InputPath",
    );
    assert_has(
        pass(json!({ "ResultPath": "$.a[*]" })),
        "States.P.ResultPath",
    );
    assert_has(
        pass(json!({ "ResultPath": "$$.Execution" })),
        "cannot write to the context object",
    );
    assert_has(
        pass(json!({ "Parameters": { "a.$": "not a path" } })),
        "States.P.Parameters.a.$: \"not a path\" is not a JSONPath or intrinsic function",
    );
    assert_has(
        pass(json!({ "Parameters": { "a.$": 5 } })),
        "States.P.Parameters.a.$",
    );
    assert_has(
        pass(json!({ "Parameters": { "n": { "a.$": "States.Nope(1)" } } })),
        "States.P.Parameters.n.a.$",
    );
    assert_has(
        pass(json!({ "Parameters": { "a.$": "States.Format('x', $.y" } })),
        "not a valid intrinsic function call",
    );
    assert_has(
        pass(json!({ "Parameters": { "a.$": "States.MathAdd(1)" } })),
        "States.MathAdd takes 2 arguments",
    );
    assert_has(
        pass(json!({ "Parameters": { "a": 1, "a.$": "$.a" } })),
        "both \"a\" and \"a.$\" are set",
    );
    assert!(errors(pass(
        json!({ "Parameters": { "ok.$": "States.Format('{}', States.ArrayLength($.x[*]))" } })
    ))
    .is_empty());
}

#[test]
fn unsupported_features_are_load_time_errors() {
    assert_has(
        json!({ "StartAt": "T", "States": { "T": { "Type": "Task", "Resource": "x", "HeartbeatSeconds": 5, "End": true } } }),
        "States.T.HeartbeatSeconds: not supported by labflow-states",
    );
    assert_has(
        json!({ "StartAt": "T", "States": { "T": { "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync", "End": true } } }),
        "States.T.Resource",
    );
    assert_has(
        json!({ "StartAt": "M", "States": { "M": { "Type": "Map", "End": true, "ItemProcessor": {
            "ProcessorConfig": { "Mode": "DISTRIBUTED" }, "StartAt": "P", "States": { "P": pass_end() } } } } }),
        "States.M.ItemProcessor.ProcessorConfig.Mode",
    );
    assert_has(
        json!({ "StartAt": "M", "States": { "M": { "Type": "Map", "End": true, "ItemReader": {}, "ItemProcessor": {
            "StartAt": "P", "States": { "P": pass_end() } } } } }),
        "States.M.ItemReader: not supported",
    );
    assert_has(
        json!({ "QueryLanguage": "JSONata", "StartAt": "A", "States": { "A": pass_end() } }),
        "QueryLanguage",
    );
}

#[test]
fn nested_scopes_are_linted_with_their_location() {
    let def = json!({ "StartAt": "P", "States": { "P": { "Type": "Parallel", "End": true, "Branches": [
        { "StartAt": "A", "States": { "A": { "Type": "Pass", "Next": "Outside" } } }
    ]}, "Outside": pass_end() }});
    let errs = errors(def);
    assert!(
        errs.iter()
            .any(|e| e == "States.P.Branches[0].States.A.Next: \"Outside\" is not a state"),
        "{errs:#?}"
    );
}

#[test]
fn wait_needs_exactly_one_form() {
    assert_has(
        json!({ "StartAt": "W", "States": { "W": { "Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true } } }),
        "States.W: a Wait needs exactly one of",
    );
}

fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn examples_lint_clean_including_terraform_placeholders() {
    for name in [
        "wait-until-ready.asl.json",
        "teardown-all.asl.json",
        "lifecycle-shape.asl.json",
    ] {
        let errs = errors(example(name));
        assert!(errs.is_empty(), "{name}: {errs:#?}");
    }
}

#[tokio::test]
async fn placeholder_resources_resolve_by_name() {
    // `${EnsureClusterArn}` as FunctionName and `${HealthCheckArn}` as a direct Lambda resource
    // both reach handlers registered under the placeholder's name.
    let machine = lint(&example("lifecycle-shape.asl.json")).unwrap_or_else(|e| panic!("{e}"));
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let mut r = RegistryInvoker::new();
    r.register_sync("EnsureClusterArn", move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        match n {
            0 => Err(TaskError::new("labflow.Transient", "throttled")),
            1 => Ok(json!({ "done": false, "phase": "CREATING" })),
            _ => Ok(json!({ "done": true, "phase": "ACTIVE" })),
        }
    });
    r.register_sync("HealthCheckArn", |_| Ok(json!({ "done": true })));
    let e = Executor::new(machine, Arc::new(r))
        .with_options(common::options())
        .run(json!({ "environment": "dev" }))
        .await
        .unwrap_or_else(|e| panic!("the execution did not start: {e}"));
    assert_eq!(
        common::output(&e),
        &json!({ "environment": "dev", "cluster": { "report": { "done": true, "phase": "ACTIVE" } }, "health": { "done": true } })
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // One Wait of 60 s plus one jittered backoff of at most 5 s.
    assert!(e.virtual_elapsed >= std::time::Duration::from_secs(60));
    assert!(e.virtual_elapsed <= std::time::Duration::from_secs(65));
}

#[test]
fn task_resources_lists_what_tasks_call() {
    let machine = lint(&example("lifecycle-shape.asl.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        machine.task_resources(),
        vec![
            "${EnsureClusterArn}".to_owned(),
            "${HealthCheckArn}".to_owned()
        ]
    );
}

#[test]
fn states_format_template_must_be_able_to_be_a_string() {
    // Run accepts a literal, a path or a nested call as the template; lint refuses only what
    // can never be a string, so the two agree.
    let def = |expr: &str| json!({ "StartAt": "P", "States": { "P": { "Type": "Pass", "Parameters": { "g.$": expr }, "End": true } } });
    for ok in [
        "States.Format('{} x', $.a)",
        "States.Format($.template, $.a)",
        "States.Format(States.Format('{}', 'a {}'), $.a)",
    ] {
        assert!(labflow_states::lint(&def(ok)).is_ok(), "{ok} should lint");
    }
    assert_has(
        def("States.Format(42, $.a)"),
        "template must be a string literal, a path or a call",
    );
}
