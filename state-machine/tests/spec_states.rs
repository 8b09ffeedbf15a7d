//! Conformance: the state types (Pass, Task, Wait, Succeed, Fail, Parallel, Map) and "Errors"
//! (Retry, Catch, the predefined error names) of the Amazon States Language specification.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use labflow_states::{EventType, Options};
use serde_json::{json, Value};

#[tokio::test]
async fn spec_pass_state_result_and_result_path() {
    let def = single(
        json!({ "Type": "Pass", "Result": { "x-datum": 0.381018, "y-datum": 622.2269926397355 },
                             "ResultPath": "$.coords", "End": true }),
    );
    let e = run(def, json!({ "georefOf": "Home" })).await;
    assert_eq!(
        output(&e),
        &json!({ "georefOf": "Home", "coords": { "x-datum": 0.381018, "y-datum": 622.2269926397355 } })
    );
}

#[tokio::test]
async fn spec_succeed_state_input_and_output_paths() {
    let def = single(json!({ "Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b" }));
    let e = run(def, json!({ "a": { "b": 3 } })).await;
    assert_eq!(output(&e), &json!(3));
}

#[tokio::test]
async fn spec_fail_state_error_and_cause() {
    let def = single(json!({ "Type": "Fail", "Error": "ErrorA", "Cause": "Kaiju attack" }));
    let e = run(def, json!({})).await;
    let f = e
        .failure()
        .cloned()
        .unwrap_or_else(|| panic!("should fail"));
    assert_eq!((f.name(), f.cause_text()), ("ErrorA", "Kaiju attack"));
    assert_eq!(
        e.history.last().map(|h| h.kind),
        Some(EventType::ExecutionFailed)
    );
}

#[tokio::test]
async fn spec_fail_state_error_path_and_cause_path() {
    let def = single(json!({ "Type": "Fail", "ErrorPath": "$.err",
                             "CausePath": "States.Format('code {}', $.code)" }));
    let e = run(def, json!({ "err": "labflow.InvalidInput", "code": 7 })).await;
    let f = e
        .failure()
        .cloned()
        .unwrap_or_else(|| panic!("should fail"));
    assert_eq!(
        (f.name(), f.cause_text()),
        ("labflow.InvalidInput", "code 7")
    );
}

#[tokio::test]
async fn spec_wait_state_all_four_forms_on_the_virtual_clock() {
    // 10 s, then 5 s from SecondsPath, then until 00:01:00, then until the TimestampPath (00:02:00).
    let def = json!({ "StartAt": "W1", "States": {
        "W1": { "Type": "Wait", "Seconds": 10, "Next": "W2" },
        "W2": { "Type": "Wait", "SecondsPath": "$.delay", "Next": "W3" },
        "W3": { "Type": "Wait", "Timestamp": "2024-01-01T00:01:00Z", "Next": "W4" },
        "W4": { "Type": "Wait", "TimestampPath": "$.until", "Next": "W5" },
        "W5": { "Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z", "End": true }
    }});
    let started = std::time::Instant::now();
    let e = run(def, json!({ "delay": 5, "until": "2024-01-01T00:02:00Z" })).await;
    assert_eq!(
        output(&e),
        &json!({ "delay": 5, "until": "2024-01-01T00:02:00Z" })
    );
    assert_eq!(
        e.virtual_elapsed,
        Duration::from_secs(120),
        "a past timestamp does not wait"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no real sleeping"
    );
    let exits: Vec<f64> = e
        .history
        .iter()
        .filter(|h| h.kind == EventType::WaitStateExited)
        .filter_map(|h| h.details["waitedSeconds"].as_f64())
        .collect();
    assert_eq!(exits, vec![10.0, 5.0, 45.0, 60.0, 0.0]);
}

fn always_fails(retry: Value) -> Value {
    single(json!({ "Type": "Task", "Resource": "Boom", "Retry": retry, "End": true }))
}

#[tokio::test]
async fn spec_errors_retry_interval_backoff_and_max_attempts() {
    // Spec example: IntervalSeconds 3, MaxAttempts 2, BackoffRate 1.5 → waits of 3 s and 4.5 s.
    let calls = Arc::new(AtomicU64::new(0));
    let def = always_fails(
        json!([{ "ErrorEquals": ["CustomError"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 1.5 }]),
    );
    let e = run_with(def, json!({}), calls.clone(), options()).await;
    assert_eq!(error(&e), "CustomError");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one try plus two retries");
    assert_eq!(e.virtual_elapsed, Duration::from_millis(7500));
    let delays: Vec<Value> = e
        .history
        .iter()
        .filter(|h| h.kind == EventType::TaskFailed)
        .map(|h| h.details["retry"]["delaySeconds"].clone())
        .collect();
    assert_eq!(delays, vec![json!(3.0), json!(4.5), Value::Null]);
}

#[tokio::test]
async fn spec_errors_retry_defaults_and_max_delay_seconds() {
    // Defaults: IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0 → 1 + 2 + 4 = 7 s.
    let calls = Arc::new(AtomicU64::new(0));
    let e = run_with(
        always_fails(json!([{ "ErrorEquals": ["States.ALL"] }])),
        json!({}),
        calls.clone(),
        options(),
    )
    .await;
    assert_eq!(
        (calls.load(Ordering::SeqCst), e.virtual_elapsed),
        (4, Duration::from_secs(7))
    );
    // MaxDelaySeconds caps each wait: 10, then 20 → 15, then 40 → 15.
    let def = always_fails(
        json!([{ "ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxDelaySeconds": 15 }]),
    );
    let e = run(def, json!({})).await;
    assert_eq!(e.virtual_elapsed, Duration::from_secs(40));
}

#[tokio::test]
async fn spec_errors_retry_max_attempts_zero_never_retries() {
    let calls = Arc::new(AtomicU64::new(0));
    let def = always_fails(json!([{ "ErrorEquals": ["CustomError"], "MaxAttempts": 0 }]));
    let e = run_with(def, json!({}), calls.clone(), options()).await;
    assert_eq!(
        (error(&e), calls.load(Ordering::SeqCst)),
        ("CustomError".to_owned(), 1)
    );
}

#[tokio::test]
async fn spec_errors_retry_full_jitter_is_seeded_and_bounded() {
    let def = always_fails(
        json!([{ "ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 5, "JitterStrategy": "FULL" }]),
    );
    let with_seed = |seed| Options { seed, ..options() };
    let calls = || Arc::new(AtomicU64::new(0));
    let a = run_with(def.clone(), json!({}), calls(), with_seed(7)).await;
    let b = run_with(def.clone(), json!({}), calls(), with_seed(7)).await;
    let c = run_with(def, json!({}), calls(), with_seed(8)).await;
    assert_eq!(a.virtual_elapsed, b.virtual_elapsed);
    assert_ne!(a.virtual_elapsed, c.virtual_elapsed);
    // Without jitter: 10 + 20 + 40 + 80 + 160 = 310 s; FULL picks each wait in [0, delay].
    assert!(a.virtual_elapsed <= Duration::from_secs(310));
}

#[tokio::test]
async fn spec_errors_retry_then_success_resets_into_next_state() {
    let calls = Arc::new(AtomicU64::new(0));
    let def = json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "Flaky", "Retry": [
            { "ErrorEquals": ["labflow.Transient"], "IntervalSeconds": 2 }], "Next": "Done" },
        "Done": { "Type": "Succeed" }
    }});
    let e = run_with(def, json!({ "ok": 1 }), calls.clone(), options()).await;
    assert_eq!(output(&e), &json!({ "ok": 1 }));
    assert_eq!(
        (calls.load(Ordering::SeqCst), e.virtual_elapsed),
        (3, Duration::from_secs(6))
    );
}

#[tokio::test]
async fn spec_errors_catch_result_path_error_output() {
    let def = json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "Boom", "Catch": [
            { "ErrorEquals": ["Other"], "Next": "Wrong" },
            { "ErrorEquals": ["CustomError"], "ResultPath": "$.error", "Next": "Handler" }], "End": true },
        "Wrong": { "Type": "Fail", "Error": "Wrong" },
        "Handler": { "Type": "Pass", "End": true }
    }});
    let e = run(def, json!({ "keep": true })).await;
    assert_eq!(
        output(&e),
        &json!({ "keep": true, "error": { "Error": "CustomError", "Cause": "it went boom" } })
    );
}

#[tokio::test]
async fn spec_errors_states_all_matching_rules() {
    // States.ALL catches any named error...
    let catch_all = |resource: &str| {
        json!({ "StartAt": "T", "States": {
            "T": { "Type": "Task", "Resource": resource, "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "C" }], "End": true },
            "C": { "Type": "Pass", "Result": "caught", "End": true }
        }})
    };
    assert_eq!(
        output(&run(catch_all("Boom"), json!({})).await),
        &json!("caught")
    );
    // ...including an unknown resource (a clear, catchable error)...
    assert_eq!(
        output(&run(catch_all("NoSuchFunction"), json!({})).await),
        &json!("caught")
    );
    // ...but never States.Runtime (here: InputPath that matches nothing).
    let mut def = catch_all("Echo");
    def["States"]["T"]["InputPath"] = json!("$.nope");
    assert_eq!(error(&run(def, json!({})).await), "States.Runtime");
}

#[tokio::test(start_paused = true)]
async fn spec_errors_states_timeout_and_task_failed_rules() {
    // TimeoutSeconds 2 on a 10 s task → States.Timeout. States.TaskFailed does not match it...
    let def = |errors: Value| {
        json!({ "StartAt": "T", "States": {
            "T": { "Type": "Task", "Resource": "Sleep", "TimeoutSeconds": 2,
                   "Catch": [{ "ErrorEquals": errors, "Next": "C" }], "End": true },
            "C": { "Type": "Pass", "Result": "caught", "End": true }
        }})
    };
    let e = run(def(json!(["States.TaskFailed"])), json!({})).await;
    assert_eq!(error(&e), "States.Timeout");
    assert!(e.event_types().contains(&EventType::TaskTimedOut));
    // ...while States.Timeout and States.ALL do.
    assert_eq!(
        output(&run(def(json!(["States.Timeout"])), json!({})).await),
        &json!("caught")
    );
    assert_eq!(
        output(&run(def(json!(["States.ALL"])), json!({})).await),
        &json!("caught")
    );
    // States.TaskFailed matches any other error.
    let tf = json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "Boom", "Catch": [{ "ErrorEquals": ["States.TaskFailed"], "Next": "C" }], "End": true },
        "C": { "Type": "Pass", "Result": "caught", "End": true }
    }});
    assert_eq!(output(&run(tf, json!({})).await), &json!("caught"));
}

#[tokio::test]
async fn spec_task_lambda_invoke_history_events() {
    let def = single(
        json!({ "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": { "FunctionName": "arn:aws:lambda:eu-west-1:1:function:Echo:live", "Payload": { "a": 1 } },
        "OutputPath": "$.Payload", "End": true }),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let listener: labflow_states::Listener = Arc::new(move |ev: &labflow_states::HistoryEvent| {
        if let Ok(mut s) = sink.lock() {
            s.push((ev.id, ev.kind));
        }
    });
    let opts = Options {
        listener: Some(listener),
        ..options()
    };
    let e = run_with(def, json!({}), Arc::new(AtomicU64::new(0)), opts).await;
    assert_eq!(output(&e), &json!({ "a": 1 }));
    use EventType::*;
    assert_eq!(
        e.event_types(),
        vec![
            ExecutionStarted,
            TaskStateEntered,
            TaskScheduled,
            TaskStarted,
            TaskSucceeded,
            TaskStateExited,
            ExecutionSucceeded
        ]
    );
    let streamed = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let ids: Vec<u64> = e.history.iter().map(|h| h.id).collect();
    assert_eq!(streamed.iter().map(|(i, _)| *i).collect::<Vec<_>>(), ids);
    assert_eq!(ids, (1..=7).collect::<Vec<u64>>());
    let scheduled = &e.history[2].details;
    assert_eq!(
        (
            scheduled["resourceType"].as_str(),
            scheduled["resource"].as_str()
        ),
        (Some("lambda"), Some("invoke"))
    );
    assert_eq!(e.history[4].details["output"]["StatusCode"], json!(200));
}

#[tokio::test]
async fn spec_parallel_state_outputs_array_in_branch_order() {
    let def = json!({ "StartAt": "LookupCustomerInfo", "States": {
        "LookupCustomerInfo": { "Type": "Parallel", "ResultPath": "$.lookups", "End": true, "Branches": [
            { "StartAt": "LookupAddress", "States": {
                "LookupAddress": { "Type": "Wait", "Seconds": 30, "Next": "Addr" },
                "Addr": { "Type": "Pass", "Parameters": { "address.$": "$.id" }, "End": true } } },
            { "StartAt": "LookupPhone", "States": {
                "LookupPhone": { "Type": "Wait", "Seconds": 10, "Next": "Phone" },
                "Phone": { "Type": "Pass", "Result": "555-0100", "End": true } } }
        ]}
    }});
    let e = run(def, json!({ "id": 42 })).await;
    assert_eq!(
        output(&e),
        &json!({ "id": 42, "lookups": [{ "address": 42 }, "555-0100"] })
    );
    assert_eq!(
        e.virtual_elapsed,
        Duration::from_secs(30),
        "branches run side by side"
    );
    let types = e.event_types();
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::PassStateEntered)
            .count(),
        2
    );
    assert!(types.contains(&EventType::ParallelStateSucceeded));
}

#[tokio::test]
async fn spec_parallel_branch_failure_is_caught_by_the_parallel_state() {
    let def = json!({ "StartAt": "P", "States": {
        "P": { "Type": "Parallel", "Next": "Ok", "Branches": [
            { "StartAt": "A", "States": { "A": { "Type": "Pass", "End": true } } },
            { "StartAt": "B", "States": { "B": { "Type": "Fail", "Error": "BranchError", "Cause": "b" } } }
          ], "Catch": [{ "ErrorEquals": ["BranchError"], "ResultPath": "$.err", "Next": "Handled" }] },
        "Ok": { "Type": "Succeed" },
        "Handled": { "Type": "Pass", "OutputPath": "$.err.Error", "End": true }
    }});
    let e = run(def, json!({})).await;
    assert_eq!(output(&e), &json!("BranchError"));
    assert!(e.event_types().contains(&EventType::ParallelStateFailed));
}

#[tokio::test]
async fn spec_map_state_example_item_selector_and_context() {
    // Spec example: ItemsPath picks the shipped parcels; ItemSelector combines each item
    // ($$.Map.Item.Value) with a field of the Map's input.
    let def = json!({ "StartAt": "Validate-All", "States": {
        "Validate-All": { "Type": "Map", "InputPath": "$.detail", "ItemsPath": "$.shipped",
            "ItemSelector": { "parcel.$": "$$.Map.Item.Value", "courier.$": "$.delivery-partner", "index.$": "$$.Map.Item.Index" },
            "MaxConcurrency": 0,
            "ItemProcessor": { "StartAt": "Validate", "States": {
                "Validate": { "Type": "Pass", "Parameters": { "prod.$": "$.parcel.prod", "by.$": "$.courier", "i.$": "$.index" }, "End": true } } },
            "ResultPath": "$.detail.shipped", "End": true }
    }});
    let input = json!({ "ship-date": "2016-03-14T01:59:00Z", "detail": { "delivery-partner": "UQS", "shipped": [
        { "prod": "R31", "dest-code": 9511, "quantity": 1344 },
        { "prod": "S39", "dest-code": 9511, "quantity": 40 },
        { "prod": "R31", "dest-code": 9833, "quantity": 12 }
    ]}});
    let e = run(def, input).await;
    assert_eq!(
        output(&e),
        &json!({ "ship-date": "2016-03-14T01:59:00Z", "detail": { "delivery-partner": "UQS", "shipped": [
            { "prod": "R31", "by": "UQS", "i": 0 }, { "prod": "S39", "by": "UQS", "i": 1 }, { "prod": "R31", "by": "UQS", "i": 2 }
        ]}})
    );
    let iterations = e
        .event_types()
        .iter()
        .filter(|t| **t == EventType::MapIterationSucceeded)
        .count();
    assert_eq!(iterations, 3);
}

#[tokio::test]
async fn spec_map_state_max_concurrency_on_the_virtual_clock() {
    let def = |mc: u64| {
        json!({ "StartAt": "M", "States": {
            "M": { "Type": "Map", "MaxConcurrency": mc, "End": true,
                   "Iterator": { "StartAt": "W", "States": { "W": { "Type": "Wait", "SecondsPath": "$", "End": true } } } }
        }})
    };
    let items = json!([10, 10, 10, 10]);
    for (mc, secs) in [(1, 40), (2, 20), (0, 10)] {
        let e = run(def(mc), items.clone()).await;
        assert_eq!(output(&e), &items);
        assert_eq!(
            e.virtual_elapsed,
            Duration::from_secs(secs),
            "MaxConcurrency {mc}"
        );
    }
}

#[tokio::test]
async fn spec_map_state_iteration_failure_fails_the_map() {
    let def = json!({ "StartAt": "M", "States": {
        "M": { "Type": "Map", "End": true, "ItemProcessor": { "StartAt": "C", "States": {
            "C": { "Type": "Choice", "Choices": [{ "Variable": "$", "NumericLessThan": 3, "Next": "Ok" }] },
            "Ok": { "Type": "Succeed" } } } }
    }});
    let e = run(def, json!([1, 2, 3])).await;
    assert_eq!(error(&e), "States.NoChoiceMatched");
    assert!(e.event_types().contains(&EventType::MapIterationFailed));
}

#[tokio::test]
async fn spec_map_state_items_path_must_select_an_array() {
    let def = single(json!({ "Type": "Map", "ItemsPath": "$.x", "End": true,
        "ItemProcessor": { "StartAt": "P", "States": { "P": { "Type": "Pass", "End": true } } } }));
    assert_eq!(error(&run(def, json!({ "x": 5 })).await), "States.Runtime");
}

#[tokio::test]
async fn spec_state_machine_timeout_seconds_times_out_the_execution() {
    let def = json!({ "TimeoutSeconds": 60, "StartAt": "W", "States": {
        "W": { "Type": "Wait", "Seconds": 120, "Next": "P" },
        "P": { "Type": "Pass", "End": true }
    }});
    let e = run(def, json!({})).await;
    assert_eq!(error(&e), "States.Timeout");
    assert!(matches!(
        e.status,
        labflow_states::ExecutionStatus::TimedOut { .. }
    ));
    assert_eq!(
        e.history.last().map(|h| h.kind),
        Some(EventType::ExecutionTimedOut)
    );
}

#[tokio::test]
async fn executor_transition_limit_ends_an_infinite_loop() {
    let def = json!({ "StartAt": "A", "States": {
        "A": { "Type": "Pass", "Next": "B" },
        "B": { "Type": "Pass", "Next": "A" }
    }});
    let opts = Options {
        max_transitions: 100,
        ..options()
    };
    let e = run_with(def, json!({}), Arc::new(AtomicU64::new(0)), opts).await;
    let f = e.failure().cloned().unwrap_or_else(|| panic!("must fail"));
    assert_eq!(f.name(), "States.Runtime");
    assert!(f.cause_text().contains("transition limit of 100"), "{f}");
    assert_eq!(e.transitions, 101);
}

#[tokio::test]
async fn executor_unknown_resource_names_the_resource() {
    let def = single(
        json!({ "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": { "FunctionName": "${EnsureClusterArn}", "Payload.$": "$" }, "End": true }),
    );
    let e = run(def, json!({})).await;
    let f = e.failure().cloned().unwrap_or_else(|| panic!("must fail"));
    assert_eq!(f.name(), "Lambda.ResourceNotFoundException");
    assert!(
        f.cause_text().contains("${EnsureClusterArn}") && f.cause_text().contains("Echo"),
        "{f}"
    );
}

/// A Map/Parallel whose member 0 fails after 1 s while the others are still waiting (60 s),
/// run with real time scaled down so the waits really overlap.
async fn run_group_with_a_failure(def: Value, input: Value) -> (labflow_states::Execution, u64) {
    let calls = Arc::new(AtomicU64::new(0));
    let machine = match labflow_states::lint(&def) {
        Ok(m) => m,
        Err(e) => panic!("definition does not lint: {e}"),
    };
    let mut invoker = invoker(Arc::new(AtomicU64::new(0)));
    let c = calls.clone();
    invoker.register_sync("Count", move |v| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(v)
    });
    let opts = Options {
        real_time_scale: Some(0.01),
        ..options()
    };
    let e = labflow_states::Executor::new(machine, Arc::new(invoker))
        .with_options(opts)
        .run(input)
        .await
        .unwrap_or_else(|e| panic!("the execution did not start: {e}"));
    (e, calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn spec_map_state_failed_iteration_stops_the_others() {
    // ASL spec, Map State: "If any iteration fails [...] the entire Map state is considered to
    // have failed and all its iterations are terminated."
    let def = json!({ "StartAt": "M", "States": {
        "M": { "Type": "Map", "MaxConcurrency": 2, "End": true, "ItemProcessor": { "StartAt": "W", "States": {
            "W": { "Type": "Wait", "SecondsPath": "$.wait", "Next": "Which" },
            "Which": { "Type": "Choice", "Choices": [{ "Variable": "$.fail", "BooleanEquals": true, "Next": "Boom" }], "Default": "Count" },
            "Boom": { "Type": "Task", "Resource": "Boom", "End": true },
            "Count": { "Type": "Task", "Resource": "Count", "End": true } } } }
    }});
    let items = json!([
        { "wait": 1, "fail": true },
        { "wait": 60, "fail": false },
        { "wait": 0, "fail": false },
        { "wait": 0, "fail": false }
    ]);
    let (e, counted) = run_group_with_a_failure(def, items).await;
    assert_eq!(error(&e), "CustomError");
    assert_eq!(
        counted, 0,
        "the iteration still waiting must be stopped, not run to its end"
    );
    let types = e.event_types();
    let count = |t: EventType| types.iter().filter(|x| **x == t).count();
    assert_eq!(
        count(EventType::MapIterationStarted),
        2,
        "items 2 and 3 never start: {types:?}"
    );
    assert_eq!(count(EventType::MapIterationFailed), 1, "{types:?}");
    assert_eq!(count(EventType::MapIterationAborted), 1, "{types:?}");
    assert_eq!(count(EventType::MapIterationSucceeded), 0, "{types:?}");
    assert!(types.contains(&EventType::MapStateFailed), "{types:?}");
    assert_eq!(
        e.virtual_elapsed,
        Duration::from_secs(1),
        "the Map fails when the iteration does"
    );
}

#[tokio::test]
async fn spec_parallel_failed_branch_stops_the_others() {
    // ASL spec, Parallel State: "If any branch fails [...] the entire Parallel state is
    // considered to have failed and all its branches are terminated."
    let def = json!({ "StartAt": "P", "States": {
        "P": { "Type": "Parallel", "End": true, "Branches": [
            { "StartAt": "Slow", "States": {
                "Slow": { "Type": "Wait", "Seconds": 60, "Next": "Count" },
                "Count": { "Type": "Task", "Resource": "Count", "End": true } } },
            { "StartAt": "Quick", "States": {
                "Quick": { "Type": "Wait", "Seconds": 1, "Next": "Fail" },
                "Fail": { "Type": "Fail", "Error": "BranchError", "Cause": "b" } } }
        ] }
    }});
    let (e, counted) = run_group_with_a_failure(def, json!({})).await;
    assert_eq!(error(&e), "BranchError");
    assert_eq!(counted, 0, "the slow branch must be stopped");
}

#[tokio::test]
async fn aws_fail_state_without_error_or_cause_ends_with_both_null() {
    // Error and Cause are optional in a Fail state; Step Functions has no default for them.
    let e = run(single(json!({ "Type": "Fail" })), json!({})).await;
    let f = e
        .failure()
        .cloned()
        .unwrap_or_else(|| panic!("should fail"));
    assert_eq!((f.error, f.cause), (None, None));
    let last = e
        .history
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no history"));
    assert_eq!(last.kind, EventType::ExecutionFailed);
    assert_eq!(last.details, json!({ "error": null, "cause": null }));
}

#[tokio::test]
async fn aws_payload_over_256_kib_is_data_limit_exceeded_and_uncatchable() {
    // "States.DataLimitExceeded": the output of a connector or a state, or a state's input after
    // Parameters, over the 256 KiB quota; "a terminal error that can't be caught by States.ALL".
    let big = "x".repeat(256 * 1024);
    let catch_all =
        json!([{ "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught" }]);
    let task = json!({ "StartAt": "T", "States": {
        "T": { "Type": "Task", "Resource": "Echo", "Parameters": { "a.$": "$.blob", "b.$": "$.blob" }, "Catch": catch_all, "End": true },
        "Caught": { "Type": "Succeed" }
    }});
    let e = run(task, json!({ "blob": "x".repeat(150 * 1024) })).await;
    assert_eq!(error(&e), "States.DataLimitExceeded");
    // Just under the quota passes (the JSON text, quotes and key included, is what counts).
    let fits = "x".repeat(256 * 1024 - r#"{"blob":""}"#.len());
    let pass = single(json!({ "Type": "Pass", "End": true }));
    assert_eq!(
        output(&run(pass.clone(), json!({ "blob": fits.clone() })).await)["blob"],
        json!(fits)
    );
    // A state output that grows past the quota (ResultPath adds to the input).
    let grow = single(
        json!({ "Type": "Pass", "Parameters": { "a.$": "$.blob" }, "ResultPath": "$.copy", "End": true }),
    );
    let half = "x".repeat(200 * 1024);
    assert_eq!(
        error(&run(grow, json!({ "blob": half })).await),
        "States.DataLimitExceeded"
    );
    // The execution input itself: StartExecution refuses it.
    let machine = labflow_states::lint(&pass).unwrap_or_else(|e| panic!("{e}"));
    let refused =
        labflow_states::Executor::new(machine, Arc::new(invoker(Arc::new(AtomicU64::new(0)))))
            .with_options(options())
            .run(json!({ "blob": big }))
            .await;
    assert!(
        matches!(
            refused,
            Err(labflow_states::StartError::InputTooLarge { .. })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn aws_history_is_capped_at_25000_events() {
    // "Maximum execution history size: 25,000 events"; AWS ends such an execution with
    // States.Runtime "The execution reached the maximum number of history events (25000).",
    // the ExecutionFailed event being event 25,000.
    let def = json!({ "StartAt": "A", "States": {
        "A": { "Type": "Pass", "Next": "B" },
        "B": { "Type": "Pass", "Next": "A" }
    }});
    let e = run(def, json!({})).await;
    let f = e.failure().cloned().unwrap_or_else(|| panic!("must fail"));
    assert_eq!(f.name(), "States.Runtime");
    assert_eq!(
        f.cause_text(),
        "The execution reached the maximum number of history events (25000)."
    );
    assert_eq!(e.history.len(), 25_000);
    let ids: Vec<u64> = e.history.iter().rev().take(2).map(|h| h.id).collect();
    assert_eq!(ids, vec![25_000, 24_999]);
    assert_eq!(
        e.history.last().map(|h| h.kind),
        Some(EventType::ExecutionFailed)
    );
}

#[tokio::test]
async fn aws_execution_and_state_machine_names_follow_start_execution_rules() {
    let pass = single(json!({ "Type": "Pass", "End": true }));
    let start = |exec: &str, sm: &str| {
        let machine = labflow_states::lint(&pass).unwrap_or_else(|e| panic!("{e}"));
        let opts = Options {
            execution_name: exec.into(),
            state_machine_name: sm.into(),
            ..options()
        };
        async move {
            labflow_states::Executor::new(machine, Arc::new(invoker(Arc::new(AtomicU64::new(0)))))
                .with_options(opts)
                .run(json!({}))
                .await
        }
    };
    let ok = "a".repeat(80);
    assert!(
        start(&ok, "labflow-lifecycle").await.is_ok(),
        "80 characters are allowed"
    );
    assert!(start("teardown-lab_2026.01", "sm").await.is_ok());
    for bad in [
        String::new(),
        "a".repeat(81),
        "has space".into(),
        "create:lab".into(),
        "a/b".into(),
        "x*".into(),
        "tab\there".into(),
        "ctl\u{7f}".into(),
    ] {
        let r = start(&bad, "sm").await;
        assert!(
            matches!(
                r,
                Err(labflow_states::StartError::InvalidName {
                    what: "execution",
                    ..
                })
            ),
            "{bad:?} must be refused: {r:?}"
        );
    }
    assert!(matches!(
        start("ok", "bad name").await,
        Err(labflow_states::StartError::InvalidName {
            what: "state machine",
            ..
        })
    ));
}
