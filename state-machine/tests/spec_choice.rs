//! Conformance: "Choice State" section of the Amazon States Language specification.

mod common;

use common::*;
use serde_json::{json, Value};

/// The spec's Choice example: Not, And with type tests and ranges, and a Path comparison.
fn spec_example() -> Value {
    json!({ "StartAt": "ChoiceStateX", "States": {
        "ChoiceStateX": { "Type": "Choice", "Choices": [
            { "Not": { "Variable": "$.type", "StringEquals": "Private" }, "Next": "Public" },
            { "And": [
                { "Variable": "$.value", "IsPresent": true },
                { "Variable": "$.value", "IsNumeric": true },
                { "Variable": "$.value", "NumericGreaterThanEquals": 20 },
                { "Variable": "$.value", "NumericLessThan": 30 }
              ], "Next": "ValueInTwenties" },
            { "Variable": "$.rating", "NumericGreaterThanPath": "$.auditThreshold", "Next": "StartAudit" }
          ], "Default": "RecordEvent" },
        "Public": { "Type": "Pass", "Result": "Public", "End": true },
        "ValueInTwenties": { "Type": "Pass", "Result": "ValueInTwenties", "End": true },
        "StartAudit": { "Type": "Pass", "Result": "StartAudit", "End": true },
        "RecordEvent": { "Type": "Pass", "Result": "RecordEvent", "End": true }
    }})
}

#[tokio::test]
async fn spec_choice_state_example_routes_each_input() {
    let cases = [
        (json!({ "type": "Public" }), "Public"),
        (json!({ "type": "Private", "value": 25 }), "ValueInTwenties"),
        (
            json!({ "type": "Private", "value": 35, "rating": 60, "auditThreshold": 50 }),
            "StartAudit",
        ),
        (
            json!({ "type": "Private", "value": 35, "rating": 40, "auditThreshold": 50 }),
            "RecordEvent",
        ),
        // IsPresent false short-circuits the And before the numeric tests.
        (
            json!({ "type": "Private", "rating": 1, "auditThreshold": 5 }),
            "RecordEvent",
        ),
    ];
    for (input, want) in cases {
        let e = run(spec_example(), input.clone()).await;
        assert_eq!(output(&e), &json!(want), "input {input}");
    }
}

/// A machine that answers true/false for one comparison rule.
fn probe(rule: Value) -> Value {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    json!({ "StartAt": "C", "States": {
        "C": { "Type": "Choice", "Choices": [rule], "Default": "No" },
        "Yes": { "Type": "Pass", "Result": true, "End": true },
        "No": { "Type": "Pass", "Result": false, "End": true }
    }})
}

#[tokio::test]
async fn spec_choice_rules_every_comparison_operator() {
    let input = json!({
        "s": "beta", "n": 5, "b": true, "t": "2016-03-14T01:59:00Z", "nul": null,
        "s2": "beta", "n2": 7, "b2": false, "t2": "2017-01-01T00:00:00Z", "file": "log-2024.txt"
    });
    let cases: Vec<(Value, bool)> = vec![
        (json!({ "Variable": "$.s", "StringEquals": "beta" }), true),
        (json!({ "Variable": "$.s", "StringEquals": "alpha" }), false),
        (
            json!({ "Variable": "$.s", "StringEqualsPath": "$.s2" }),
            true,
        ),
        (
            json!({ "Variable": "$.s", "StringLessThan": "gamma" }),
            true,
        ),
        (
            json!({ "Variable": "$.s", "StringLessThanPath": "$.s2" }),
            false,
        ),
        (
            json!({ "Variable": "$.s", "StringGreaterThan": "alpha" }),
            true,
        ),
        (
            json!({ "Variable": "$.s", "StringGreaterThanPath": "$.s2" }),
            false,
        ),
        (
            json!({ "Variable": "$.s", "StringLessThanEquals": "beta" }),
            true,
        ),
        (
            json!({ "Variable": "$.s", "StringLessThanEqualsPath": "$.s2" }),
            true,
        ),
        (
            json!({ "Variable": "$.s", "StringGreaterThanEquals": "beta" }),
            true,
        ),
        (
            json!({ "Variable": "$.s", "StringGreaterThanEqualsPath": "$.s2" }),
            true,
        ),
        (
            json!({ "Variable": "$.file", "StringMatches": "log-*.txt" }),
            true,
        ),
        (
            json!({ "Variable": "$.file", "StringMatches": "log-*.csv" }),
            false,
        ),
        (json!({ "Variable": "$.n", "NumericEquals": 5 }), true),
        (json!({ "Variable": "$.n", "NumericEquals": 5.0 }), true),
        (
            json!({ "Variable": "$.n", "NumericEqualsPath": "$.n2" }),
            false,
        ),
        (json!({ "Variable": "$.n", "NumericLessThan": 6 }), true),
        (
            json!({ "Variable": "$.n", "NumericLessThanPath": "$.n2" }),
            true,
        ),
        (json!({ "Variable": "$.n", "NumericGreaterThan": 5 }), false),
        (
            json!({ "Variable": "$.n", "NumericGreaterThanPath": "$.n2" }),
            false,
        ),
        (
            json!({ "Variable": "$.n", "NumericLessThanEquals": 5 }),
            true,
        ),
        (
            json!({ "Variable": "$.n", "NumericLessThanEqualsPath": "$.n2" }),
            true,
        ),
        (
            json!({ "Variable": "$.n", "NumericGreaterThanEquals": 5 }),
            true,
        ),
        (
            json!({ "Variable": "$.n", "NumericGreaterThanEqualsPath": "$.n2" }),
            false,
        ),
        (json!({ "Variable": "$.b", "BooleanEquals": true }), true),
        (
            json!({ "Variable": "$.b", "BooleanEqualsPath": "$.b2" }),
            false,
        ),
        (
            json!({ "Variable": "$.t", "TimestampEquals": "2016-03-14T01:59:00Z" }),
            true,
        ),
        (
            json!({ "Variable": "$.t", "TimestampEqualsPath": "$.t2" }),
            false,
        ),
        (
            json!({ "Variable": "$.t", "TimestampLessThan": "2016-03-14T02:00:00Z" }),
            true,
        ),
        (
            json!({ "Variable": "$.t", "TimestampLessThanPath": "$.t2" }),
            true,
        ),
        (
            json!({ "Variable": "$.t", "TimestampGreaterThan": "2016-03-14T01:59:00Z" }),
            false,
        ),
        (
            json!({ "Variable": "$.t", "TimestampGreaterThanPath": "$.t2" }),
            false,
        ),
        (
            json!({ "Variable": "$.t", "TimestampLessThanEquals": "2016-03-14T01:59:00Z" }),
            true,
        ),
        (
            json!({ "Variable": "$.t", "TimestampLessThanEqualsPath": "$.t2" }),
            true,
        ),
        (
            json!({ "Variable": "$.t", "TimestampGreaterThanEquals": "2016-03-14T01:59:00Z" }),
            true,
        ),
        (
            json!({ "Variable": "$.t", "TimestampGreaterThanEqualsPath": "$.t2" }),
            false,
        ),
        (json!({ "Variable": "$.nul", "IsNull": true }), true),
        (json!({ "Variable": "$.s", "IsNull": true }), false),
        (json!({ "Variable": "$.missing", "IsPresent": false }), true),
        (json!({ "Variable": "$.s", "IsPresent": true }), true),
        (json!({ "Variable": "$.n", "IsNumeric": true }), true),
        (json!({ "Variable": "$.s", "IsNumeric": true }), false),
        (json!({ "Variable": "$.s", "IsString": true }), true),
        (json!({ "Variable": "$.n", "IsString": false }), true),
        (json!({ "Variable": "$.b", "IsBoolean": true }), true),
        (json!({ "Variable": "$.t", "IsTimestamp": true }), true),
        (json!({ "Variable": "$.s", "IsTimestamp": true }), false),
        (
            json!({ "Or": [{ "Variable": "$.n", "NumericEquals": 1 }, { "Variable": "$.s", "StringEquals": "beta" }] }),
            true,
        ),
        (
            json!({ "And": [{ "Variable": "$.n", "NumericEquals": 5 }, { "Variable": "$.b", "BooleanEquals": false }] }),
            false,
        ),
        (
            json!({ "Not": { "Variable": "$.b", "BooleanEquals": false } }),
            true,
        ),
        // A value of another type makes the comparison false, not an error.
        (json!({ "Variable": "$.s", "NumericEquals": 5 }), false),
        (json!({ "Variable": "$.n", "StringEquals": "5" }), false),
        (
            json!({ "Variable": "$$.Execution.Name", "StringEquals": "exec-1" }),
            true,
        ),
    ];
    for (rule, want) in cases {
        let e = run(probe(rule.clone()), input.clone()).await;
        assert_eq!(output(&e), &json!(want), "rule {rule}");
    }
}

#[tokio::test]
async fn spec_choice_no_choice_matched_without_default() {
    let def = json!({ "StartAt": "C", "States": {
        "C": { "Type": "Choice", "Choices": [{ "Variable": "$.n", "NumericEquals": 1, "Next": "Done" }] },
        "Done": { "Type": "Succeed" }
    }});
    let e = run(def, json!({ "n": 2 })).await;
    assert_eq!(error(&e), "States.NoChoiceMatched");
}

#[tokio::test]
async fn spec_choice_variable_that_matches_nothing_is_runtime() {
    let e = run(
        probe(json!({ "Variable": "$.missing", "StringEquals": "x" })),
        json!({}),
    )
    .await;
    assert_eq!(error(&e), "States.Runtime");
}

#[tokio::test]
async fn spec_choice_output_path_and_transition_output_is_input() {
    let def = json!({ "StartAt": "C", "States": {
        "C": { "Type": "Choice", "InputPath": "$.inner", "Choices": [
            { "Variable": "$.go", "BooleanEquals": true, "Next": "Done" }] },
        "Done": { "Type": "Succeed" }
    }});
    let e = run(def, json!({ "inner": { "go": true }, "outer": 1 })).await;
    assert_eq!(output(&e), &json!({ "go": true }));
}
