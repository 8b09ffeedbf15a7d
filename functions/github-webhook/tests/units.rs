//! Pure parts: routes, execution names, signatures.

use labflow_github_webhook::execution::{execution_arn, execution_name};
use labflow_github_webhook::routes::Routes;
use labflow_github_webhook::signature::{sign, verify};
use labflow_github_webhook::Secret;

#[test]
fn routes_exact_beats_prefix_and_longest_prefix_wins() -> Result<(), String> {
    let routes = Routes::parse(
        r#"{"routes":[{"prefix":"env/","environment":"*"},{"prefix":"env/special/","environment":"special"},{"branch":"env/pinned","environment":"lab"}]}"#,
    )?;
    let m = routes.route("env/pinned").ok_or("no match")?;
    assert_eq!((m.environment.as_str(), m.by_prefix), ("lab", false));
    let m = routes.route("env/special/x").ok_or("no match")?;
    assert_eq!(m.environment, "special");
    let m = routes.route("env/demo").ok_or("no match")?;
    assert_eq!((m.environment.as_str(), m.by_prefix), ("demo", true));
    assert_eq!(routes.route("env/"), None);
    assert_eq!(routes.route("main"), None);
    Ok(())
}

#[test]
fn invalid_routes_report_every_problem() {
    let err = Routes::parse(
        r#"{"routes":[{"branch":"a","prefix":"b","environment":"x"},{"branch":"main","environment":"*"},{"prefix":"","environment":"Bad Name"}]}"#,
    )
    .err()
    .unwrap_or_default();
    for fragment in [
        "routes[0]: needs exactly one",
        "routes[1].environment",
        "routes[2].prefix",
        "routes[2].environment",
    ] {
        assert!(err.contains(fragment), "missing {fragment:?} in {err}");
    }
    assert!(Routes::parse(r#"{"routes":[],"extra":1}"#).is_err());
}

#[test]
fn execution_names_are_valid_stable_and_bound_to_the_signed_body_only() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let a = execution_name(body);
    assert_eq!(a, execution_name(body));
    assert_ne!(a, execution_name(b"{}"));
    assert!(a.len() <= 80, "{a}");
    assert!(
        a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{a}"
    );
    assert_eq!(
        execution_arn(
            "arn:aws:states:eu-west-1:1:stateMachine:labflow-lifecycle",
            "n"
        )
        .as_deref(),
        Some("arn:aws:states:eu-west-1:1:execution:labflow-lifecycle:n")
    );
}

#[test]
fn signature_matches_githubs_documented_example() {
    // From GitHub's "Validating webhook deliveries" documentation.
    let secret = Secret::new("It's a Secret to Everybody");
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(sign(&secret, b"Hello, World!"), expected);
    assert!(verify(&secret, b"Hello, World!", expected));
    assert!(!verify(&secret, b"Hello, World?", expected));
    assert!(!verify(
        &secret,
        b"Hello, World!",
        &expected.to_uppercase().replace("SHA256=", "sha256=x")
    ));
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
}

#[test]
fn branch_names_follow_git_check_ref_format() {
    use labflow_github_webhook::push::check_branch_name;
    for ok in [
        "main",
        "env/demo",
        "release/v1.2",
        "a@b",
        "feature/x-y_z",
        "@x",
    ] {
        assert_eq!(check_branch_name(ok), Ok(()), "{ok}");
    }
    for bad in [
        "", "@", "-x", "a..b", "a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", "a\\b", "a.lock",
        "a.lock/b", "a@{b", "/a", "a/", "a//b", ".a", "a/.b", "a.", "a\u{0}b", "a\u{7f}b",
    ] {
        assert!(check_branch_name(bad).is_err(), "{bad:?} accepted");
    }
    assert!(check_branch_name(&"a".repeat(255)).is_ok());
    assert!(check_branch_name(&"a".repeat(256)).is_err());
}
