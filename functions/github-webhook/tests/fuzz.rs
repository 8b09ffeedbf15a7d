//! Property test: thousands of random requests — garbage bytes, random headers, random JSON,
//! signed and unsigned — never make the handler panic, never get a 5xx, and garbage gets a 4xx.

mod common;

use anyhow::Result;
use base64::Engine;
use labflow_github_webhook::{handle, signature, Secret};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Case {
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// 0: no signature header, 1: random header, 2: valid signature.
    signing: u8,
    base64: bool,
    /// Add GitHub's usual headers (so more cases reach event handling).
    standard: Option<(String, String)>,
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("content-type".to_string()),
        Just("x-github-event".to_string()),
        Just("x-github-delivery".to_string()),
        Just("x-hub-signature".to_string()),
        "[a-z][a-z0-9-]{0,20}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_string()),
        Just("push".to_string()),
        Just("ping".to_string()),
        Just("sha256=".to_string()),
        "[ -~]{0,80}",
    ]
}

/// Random JSON shaped more or less like a push payload, so decoding past the signature is hit too.
fn pushish() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        Just("refs/heads/main".to_string()),
        Just("refs/heads/env/".to_string()),
        Just("refs/tags/v1".to_string()),
        "refs/heads/[a-z/]{0,12}",
        "[ -~]{0,20}",
    ];
    let sha = prop_oneof![Just("0".repeat(40)), "[0-9a-f]{40}", "[ -~]{0,45}"];
    (
        text,
        sha.clone(),
        sha,
        any::<Option<bool>>(),
        any::<bool>(),
        "[ -~]{0,30}",
    )
        .prop_map(|(git_ref, before, after, deleted, with_repo, repo)| {
            let mut v = json!({"ref": git_ref, "before": before, "after": after});
            if let Some(d) = deleted {
                v["deleted"] = json!(d);
            }
            if with_repo {
                v["repository"] = json!({"full_name": repo});
            }
            v.to_string().into_bytes()
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "[ -~]{0,256}".prop_map(String::into_bytes),
        pushish(),
        Just(b"{}".to_vec()),
        Just(b"null".to_vec()),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![8 => Just("POST".to_string()), 1 => Just("GET".to_string()), 1 => "[A-Z]{0,7}"],
        proptest::collection::vec((header_name(), header_value()), 0..6),
        body(),
        prop_oneof![1 => Just(0u8), 1 => Just(1u8), 3 => Just(2u8)],
        any::<bool>(),
        proptest::option::of((
            prop_oneof![
                Just("push".to_string()),
                Just("ping".to_string()),
                "[a-z_]{1,12}"
            ],
            "[ -~]{0,40}",
        )),
    )
        .prop_map(|(method, headers, body, signing, base64, standard)| Case {
            method,
            headers,
            body,
            signing,
            base64,
            standard,
        })
}

fn to_request(
    case: &Case,
) -> Result<aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest> {
    let mut headers: Vec<(String, String)> = case.headers.clone();
    if let Some((event, delivery)) = &case.standard {
        headers.push(("content-type".into(), "application/json".into()));
        headers.push(("x-github-event".into(), event.clone()));
        headers.push(("x-github-delivery".into(), delivery.clone()));
    }
    match case.signing {
        1 => headers.push(("x-hub-signature-256".into(), "sha256=deadbeef".into())),
        2 => headers.push((
            "x-hub-signature-256".into(),
            signature::sign(&Secret::new(common::SECRET), &case.body),
        )),
        _ => {}
    }
    let body = if case.base64 {
        base64::engine::general_purpose::STANDARD.encode(&case.body)
    } else {
        String::from_utf8_lossy(&case.body).into_owned()
    };
    // Lossy conversion changes invalid UTF-8; a valid signature must cover the bytes sent.
    let signed_bytes_match = case.base64 || std::str::from_utf8(&case.body).is_ok();
    if case.signing == 2 && !signed_bytes_match {
        headers.retain(|(k, _)| k != "x-hub-signature-256");
    }
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    common::request(&case.method, &refs, Some(&body), case.base64)
}

#[test]
fn random_requests_never_panic_and_garbage_gets_4xx() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ctx, clients, _) = runtime.block_on(common::ctx())?;
    let mut runner = TestRunner::new(Config {
        cases: 4000,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<i64, u32>::new());
    runner
        .run(&case(), |case| {
            let request = to_request(&case).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let signed = request
                .headers
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|sig| sig.starts_with("sha256=") && sig.len() == 71);
            let response = runtime.block_on(handle(&ctx, request));
            let status = response.status_code;
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!((200..500).contains(&status), "status {status} for {case:?}");
            let reply: Value = serde_json::from_str(response.body.as_deref().unwrap_or(""))
                .map_err(|e| TestCaseError::fail(format!("reply is not JSON: {e}")))?;
            prop_assert!(reply["outcome"].is_string());
            let is_post = case.method == "POST";
            if !is_post {
                prop_assert_eq!(status, 405);
            } else if !signed {
                prop_assert!(
                    status == 401 || status == 413 || status == 400,
                    "unsigned got {status}"
                );
            }
            let is_json_object =
                serde_json::from_slice::<Value>(&case.body).is_ok_and(|v| v.is_object());
            if !is_json_object {
                prop_assert!(
                    (400..500).contains(&status),
                    "garbage body got {status}: {case:?}"
                );
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = started.elapsed();
    let statuses = statuses.into_inner();
    eprintln!("4000 random requests in {elapsed:?}; statuses {statuses:?}");
    // The generator must reach past the signature check, or the property says little.
    let past_signature: u32 = statuses
        .iter()
        .filter(|(s, _)| !matches!(**s, 401 | 405 | 413))
        .map(|(_, n)| n)
        .sum();
    assert!(
        past_signature > 1000,
        "only {past_signature} cases got past the signature: {statuses:?}"
    );
    assert!(
        statuses.contains_key(&202),
        "no random push was routed or ignored: {statuses:?}"
    );
    // Random pushes may route (e.g. to `main`); any execution they started must be well formed.
    let started_executions = runtime.block_on(common::executions(&clients, &ctx))?;
    for (_, input) in started_executions {
        let typed: Result<labflow_core::contract::ExecutionInput, _> =
            serde_json::from_value(input);
        assert!(typed.is_ok(), "{typed:?}");
    }
    Ok(())
}
