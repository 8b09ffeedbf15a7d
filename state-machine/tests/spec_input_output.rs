//! Conformance: "Input and Output Processing", "The Context Object" and "Intrinsic Functions"
//! sections of the Amazon States Language specification. Expected values computed by hand.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn spec_input_output_processing_input_path_result_path_numbers_example() {
    // Spec example: InputPath selects the numbers, the task adds them, ResultPath puts the sum
    // back into the raw input.
    let def = single(json!({
        "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:Add",
        "InputPath": "$.numbers", "ResultPath": "$.sum", "End": true
    }));
    let input = json!({ "title": "Numbers to add", "numbers": { "val1": 3, "val2": 4 } });
    let e = run(def, input).await;
    assert_eq!(
        output(&e),
        &json!({ "title": "Numbers to add", "numbers": { "val1": 3, "val2": 4 }, "sum": 7 })
    );
}

#[tokio::test]
async fn spec_input_output_processing_parameters_payload_template_example() {
    // Spec example: static fields stay, `.$` fields take values from paths (a slice yields an array).
    let def = single(json!({
        "Type": "Pass",
        "Parameters": { "flagged": true, "parts": { "first.$": "$.vals[0]", "last3.$": "$.vals[-3:]" } },
        "End": true
    }));
    let e = run(
        def,
        json!({ "flagged": 7, "vals": [0, 10, 20, 30, 40, 50] }),
    )
    .await;
    assert_eq!(
        output(&e),
        &json!({ "flagged": true, "parts": { "first": 0, "last3": [30, 40, 50] } })
    );
}

#[tokio::test]
async fn spec_input_output_processing_result_selector_on_lambda_invoke_result() {
    let def = single(json!({
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": { "FunctionName": "${Add}", "Payload.$": "$.numbers" },
        "ResultSelector": { "sum.$": "$.Payload", "status.$": "$.StatusCode" },
        "ResultPath": "$.result", "End": true
    }));
    let e = run(def, json!({ "numbers": { "val1": 40, "val2": 2 } })).await;
    assert_eq!(
        output(&e),
        &json!({ "numbers": { "val1": 40, "val2": 2 }, "result": { "sum": 42, "status": 200 } })
    );
}

#[tokio::test]
async fn spec_input_output_processing_result_path_null_discards_result() {
    let def =
        single(json!({ "Type": "Pass", "Result": "ignored", "ResultPath": null, "End": true }));
    let e = run(def, json!({ "keep": 1 })).await;
    assert_eq!(output(&e), &json!({ "keep": 1 }));
}

#[tokio::test]
async fn spec_input_output_processing_result_path_creates_missing_nodes_and_replaces() {
    // `$.master.detail` exists and is replaced; `$.a.b.c` is created on the way.
    let def = json!({ "StartAt": "P1", "States": {
        "P1": { "Type": "Pass", "Result": "Hello", "ResultPath": "$.master.detail", "Next": "P2" },
        "P2": { "Type": "Pass", "Result": 1, "ResultPath": "$.a.b.c", "End": true }
    }});
    let e = run(
        def,
        json!({ "master": { "detail": [1, 2, 3], "other": true } }),
    )
    .await;
    assert_eq!(
        output(&e),
        &json!({ "master": { "detail": "Hello", "other": true }, "a": { "b": { "c": 1 } } })
    );
}

#[tokio::test]
async fn spec_input_output_processing_result_path_match_failure() {
    // `$.master.detail` is an array, so `$.master.detail.x` cannot be written.
    let def = single(
        json!({ "Type": "Pass", "Result": 1, "ResultPath": "$.master.detail.x", "End": true }),
    );
    let e = run(def, json!({ "master": { "detail": [1, 2, 3] } })).await;
    assert_eq!(error(&e), "States.ResultPathMatchFailure");
}

#[tokio::test]
async fn aws_parameters_and_item_selector_path_that_matches_nothing_is_runtime_and_uncatchable() {
    // The ASL spec names States.ParameterPathFailure; Step Functions (and Step Functions Local)
    // fail the execution with States.Runtime instead, which States.ALL does not catch
    // (github.com/floci-io/floci/issues/2521 quotes AWS's message).
    let def = json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "Echo", "Parameters": { "x.$": "$.missing" }, "End": true,
               "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "Caught" }] },
        "Caught": { "Type": "Succeed" }
    }});
    let e = run(def, json!({ "present": 1 })).await;
    assert_eq!(error(&e), "States.Runtime");
    let cause = e
        .failure()
        .map(|f| f.cause_text().to_owned())
        .unwrap_or_default();
    assert_eq!(
        cause,
        "The JSONPath '$.missing' specified for the field 'x.$' could not be found in the input '{\"present\":1}'"
    );
    let def = json!({ "StartAt": "M", "States": {
        "M": { "Type": "Map", "ItemSelector": { "v.$": "$$.Map.Item.Value.nope" }, "End": true,
               "ItemProcessor": { "StartAt": "P", "States": { "P": { "Type": "Pass", "End": true } } },
               "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "Caught" }] },
        "Caught": { "Type": "Succeed" }
    }});
    assert_eq!(
        error(&run(def, json!([{ "a": 1 }])).await),
        "States.Runtime"
    );
}

#[tokio::test]
async fn aws_intrinsic_format_template_may_be_a_path() {
    // "States.Format($.template, $.name)": the template is any string argument.
    let def = single(json!({ "Type": "Pass", "Parameters": {
        "greeting.$": "States.Format($.template, $.name)",
        "nested.$": "States.Format(States.Format('{}{}', '{} and ', '{}'), $.name, 'Bo')"
    }, "End": true }));
    let e = run(def, json!({ "template": "Hello, {}!", "name": "Ana" })).await;
    assert_eq!(
        output(&e),
        &json!({ "greeting": "Hello, Ana!", "nested": "Ana and Bo" })
    );
    let def = single(
        json!({ "Type": "Pass", "Parameters": { "g.$": "States.Format($.template, $.name)" }, "End": true }),
    );
    let e = run(def, json!({ "template": 7, "name": "Ana" })).await;
    assert_eq!(
        error(&e),
        "States.IntrinsicFailure",
        "a template that is no string"
    );
}

#[tokio::test]
async fn spec_input_output_processing_input_path_no_match_is_runtime_and_uncatchable() {
    let def = json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "Echo", "InputPath": "$.missing", "End": true,
               "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "Caught" }] },
        "Caught": { "Type": "Succeed" }
    }});
    let e = run(def, json!({ "present": 1 })).await;
    assert_eq!(error(&e), "States.Runtime");
}

#[tokio::test]
async fn spec_input_output_processing_null_input_and_output_paths_give_empty_object() {
    let def = json!({ "StartAt": "A", "States": {
        "A": { "Type": "Pass", "InputPath": null, "ResultPath": "$.seen", "Next": "B" },
        "B": { "Type": "Pass", "OutputPath": null, "End": true }
    }});
    let e = run(def.clone(), json!({ "x": 1 })).await;
    assert_eq!(output(&e), &json!({}));
    // Without B's OutputPath null, A's output shows InputPath null gave the Pass an empty object.
    let def_a = json!({ "StartAt": "A", "States": {
        "A": { "Type": "Pass", "InputPath": null, "ResultPath": "$.seen", "End": true }
    }});
    assert_eq!(
        output(&run(def_a, json!({ "x": 1 })).await),
        &json!({ "x": 1, "seen": {} })
    );
}

#[tokio::test]
async fn spec_input_output_processing_output_path_selects() {
    let def = single(
        json!({ "Type": "Pass", "Result": { "a": { "b": 5 } }, "ResultPath": "$.r", "OutputPath": "$.r.a", "End": true }),
    );
    let e = run(def, json!({})).await;
    assert_eq!(output(&e), &json!({ "b": 5 }));
}

#[tokio::test]
async fn spec_context_object_execution_and_state_fields() {
    let def = json!({ "StartAt": "W", "States": {
        "W": { "Type": "Wait", "Seconds": 10, "Next": "P" },
        "P": { "Type": "Pass", "Parameters": {
            "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "start.$": "$$.Execution.StartTime",
            "input.$": "$$.Execution.Input", "entered.$": "$$.State.EnteredTime", "state.$": "$$.State.Name",
            "machine.$": "$$.StateMachine.Name"
        }, "End": true }
    }});
    let e = run(def, json!({ "k": "v" })).await;
    assert_eq!(
        output(&e),
        &json!({
            "id": "arn:aws:states:local:000000000000:execution:sm:exec-1",
            "name": "exec-1",
            "start": "2024-01-01T00:00:00.000Z",
            "input": { "k": "v" },
            "entered": "2024-01-01T00:00:10.000Z",
            "state": "P",
            "machine": "sm"
        })
    );
}

#[tokio::test]
async fn spec_intrinsic_functions_format_json_array_math() {
    let def = single(json!({ "Type": "Pass", "Parameters": {
        "greeting.$": "States.Format('Welcome to {} {}\\'s playlist.', $.firstName, $.lastName)",
        "braces.$": "States.Format('literal \\{\\} and {}', 42)",
        "parsed.$": "States.StringToJson($.escaped)",
        "text.$": "States.JsonToString($.obj)",
        "arr.$": "States.Array('Foo', 2020, $.obj, null)",
        "len.$": "States.ArrayLength($.list)",
        "sum.$": "States.MathAdd($.value1, $.step)",
        "nested.$": "States.ArrayLength(States.Array(1, 2, 3))"
    }, "End": true }));
    let input = json!({
        "firstName": "John", "lastName": "Doe", "escaped": "{\"foo\": \"bar\"}",
        "obj": { "a": 1 }, "list": [1, 2, 3, 4], "value1": 111, "step": -1
    });
    let e = run(def, input).await;
    assert_eq!(
        output(&e),
        &json!({
            "greeting": "Welcome to John Doe's playlist.",
            "braces": "literal {} and 42",
            "parsed": { "foo": "bar" },
            "text": "{\"a\":1}",
            "arr": ["Foo", 2020, { "a": 1 }, null],
            "len": 4,
            "sum": 110,
            "nested": 3
        })
    );
}

#[tokio::test]
async fn spec_intrinsic_functions_arrays_strings_encoding_hash() {
    let def = single(json!({ "Type": "Pass", "Parameters": {
        "partition.$": "States.ArrayPartition($.nums, 2)",
        "contains.$": "States.ArrayContains($.nums, 3)",
        "range.$": "States.ArrayRange(1, 9, 2)",
        "item.$": "States.ArrayGetItem($.nums, 1)",
        "unique.$": "States.ArrayUnique($.dups)",
        "b64.$": "States.Base64Encode('Data to encode')",
        "plain.$": "States.Base64Decode('RGF0YSB0byBlbmNvZGU=')",
        "sha.$": "States.Hash('input data', 'SHA-256')",
        "md5.$": "States.Hash('abc', 'MD5')",
        "merged.$": "States.JsonMerge($.a, $.b, false)",
        "split.$": "States.StringSplit('1,2,3, 4', ', ')"
    }, "End": true }));
    let input = json!({ "nums": [1, 2, 3, 4, 5], "dups": [1, 2, 2, 3, 1], "a": { "x": 1, "y": 1 }, "b": { "y": 2 } });
    let e = run(def, input).await;
    assert_eq!(
        output(&e),
        &json!({
            "partition": [[1, 2], [3, 4], [5]],
            "contains": true,
            "range": [1, 3, 5, 7, 9],
            "item": 2,
            "unique": [1, 2, 3],
            "b64": "RGF0YSB0byBlbmNvZGU=",
            "plain": "Data to encode",
            "sha": "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
            "md5": "900150983cd24fb0d6963f7d28e17f72",
            "merged": { "x": 1, "y": 2 },
            "split": ["1", "2", "3", "4"]
        })
    );
}

#[tokio::test]
async fn spec_intrinsic_functions_uuid_and_random_are_seeded() {
    let def = single(json!({ "Type": "Pass", "Parameters": {
        "id.$": "States.UUID()", "n.$": "States.MathRandom(1, 10)"
    }, "End": true }));
    let a = run(def.clone(), json!({})).await;
    let b = run(def, json!({})).await;
    assert_eq!(output(&a), output(&b), "same seed, same values");
    let id = output(&a)["id"].as_str().unwrap_or_default().to_owned();
    let parsed = uuid::Uuid::parse_str(&id);
    assert!(
        parsed.is_ok_and(|u| u.get_version_num() == 4),
        "{id} is a v4 UUID"
    );
    let n = output(&a)["n"].as_i64().unwrap_or(-1);
    assert!((1..10).contains(&n), "{n} in [1, 10)");
}

#[tokio::test]
async fn spec_intrinsic_functions_failure_is_intrinsic_failure() {
    let def = single(
        json!({ "Type": "Pass", "Parameters": { "x.$": "States.StringToJson($.s)" }, "End": true }),
    );
    let e = run(def, json!({ "s": "not json" })).await;
    assert_eq!(error(&e), "States.IntrinsicFailure");
}

#[tokio::test]
async fn aws_json_to_string_keeps_the_objects_key_order() {
    // Step Functions serialises objects in the order their keys came in (the input's text, a
    // Parameters template's order); a key-sorted map would turn {"zeta":1,"alpha":2} around.
    let input: serde_json::Value =
        serde_json::from_str(r#"{ "obj": { "zeta": 1, "alpha": { "y": true, "b": null } } }"#)
            .unwrap_or_else(|e| panic!("{e}"));
    let def = single(json!({ "Type": "Pass", "Parameters": {
        "text.$": "States.JsonToString($.obj)",
        "built.$": "States.JsonToString($.tmpl)"
    }, "ResultPath": "$.out", "End": true }));
    let mut input = input;
    input["tmpl"] =
        serde_json::from_str(r#"{ "second": 2, "first": 1 }"#).unwrap_or_else(|e| panic!("{e}"));
    let e = run(def, input).await;
    assert_eq!(
        output(&e)["out"]["text"],
        json!(r#"{"zeta":1,"alpha":{"y":true,"b":null}}"#)
    );
    assert_eq!(
        output(&e)["out"]["built"],
        json!(r#"{"second":2,"first":1}"#)
    );
    // ResultPath writes into an existing object without moving its keys.
    let keys: Vec<&String> = output(&e)
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["obj", "tmpl", "out"]);
}
