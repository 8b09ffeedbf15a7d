//! `labflow start` and `labflow status` against the AWS emulator (moto over HTTP): the built
//! binary with the standard AWS environment pointed at it, and the library functions in-process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use serde_json::{json, Value};

const REGION: &str = "eu-west-1";

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn endpoint() -> Result<String> {
    Ok(labflow_testbed::moto::shared()?.endpoint())
}

async fn sfn() -> Result<aws_sdk_sfn::Client> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(labflow_core::aws::https_client())
        .endpoint_url(endpoint()?)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    Ok(aws_sdk_sfn::Client::new(&config))
}

/// Registers the lifecycle definition (moto accepts it with its placeholders) under a fresh name.
async fn create_machine(sfn: &aws_sdk_sfn::Client) -> Result<(String, String)> {
    let name = unique("labflow-lifecycle-test");
    let definition = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../state-machine/lifecycle.asl.json"),
    )?;
    let out = sfn
        .create_state_machine()
        .name(&name)
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/labflow-states")
        .send()
        .await
        .context("CreateStateMachine")?;
    Ok((name, out.state_machine_arn().to_string()))
}

/// The binary with only the emulator's AWS environment.
fn labflow(args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_labflow"))
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL_SFN")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_ENDPOINT_URL", endpoint()?)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/nonexistent/labflow-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/labflow-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("USER", "alice")
        .output()
        .context("spawning labflow")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn input_of(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<Value> {
    let out = sfn.describe_execution().execution_arn(arn).send().await?;
    Ok(serde_json::from_str(out.input().unwrap_or("null"))?)
}

#[tokio::test]
async fn start_then_status_through_the_binary() -> Result<()> {
    let sfn = sfn().await?;
    let (name, machine_arn) = create_machine(&sfn).await?;

    let (code, stdout, stderr) = labflow(&[
        "start",
        "--env",
        "lab",
        "--action",
        "create",
        "--state-machine-name",
        &name,
    ])?;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let mut lines = stdout.lines();
    let arn = lines
        .next()
        .context("no execution ARN printed")?
        .to_string();
    let link = lines.next().context("no console link printed")?;
    assert!(
        arn.starts_with(&machine_arn.replace(":stateMachine:", ":execution:")),
        "{arn}"
    );
    assert!(
        link.starts_with("https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/")
            && link.ends_with(&arn),
        "{link}"
    );
    assert_eq!(
        input_of(&sfn, &arn).await?,
        json!({"action": "create", "environment": "lab", "source": {"kind": "console", "requestedBy": "alice"}})
    );
    // The input is exactly what run-guard decodes.
    let typed: labflow_core::contract::ExecutionInput =
        serde_json::from_value(input_of(&sfn, &arn).await?)?;
    assert_eq!(typed.environment.as_deref(), Some("lab"));

    // Another environment's execution, which `status --env lab` must leave out.
    let (code, stdout, stderr) = labflow(&[
        "start",
        "--env",
        "other",
        "--action",
        "teardown",
        "--poll-seconds",
        "5",
        "--state-machine-arn",
        &machine_arn,
    ])?;
    assert_eq!(code, 0, "{stderr}");
    let other_arn = stdout.lines().next().context("no ARN")?.to_string();
    assert_eq!(
        input_of(&sfn, &other_arn).await?,
        json!({"action": "teardown", "environment": "other", "pollSeconds": 5, "source": {"kind": "console", "requestedBy": "alice"}})
    );

    let (code, stdout, stderr) = labflow(&["status", "--state-machine-name", &name])?;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&machine_arn), "{stdout}");
    let exec_name = |a: &str| a.rsplit(':').next().unwrap_or_default().to_string();
    assert!(stdout.contains(&exec_name(&arn)), "{stdout}");
    assert!(stdout.contains(&exec_name(&other_arn)), "{stdout}");

    let (code, stdout, stderr) =
        labflow(&["status", "--env", "lab", "--state-machine-name", &name])?;
    assert_eq!(code, 0, "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.contains(&exec_name(&arn)))
        .with_context(|| format!("execution missing from:\n{stdout}"))?;
    assert!(
        row.contains("lab") && row.contains("create") && row.contains("console"),
        "{row}"
    );
    assert!(!stdout.contains(&exec_name(&other_arn)), "{stdout}");
    // The latest lab execution in detail.
    assert!(stdout.contains(&format!("execution   {arn}")), "{stdout}");
    assert!(stdout.contains("last events:"), "{stdout}");

    let (code, stdout, stderr) = labflow(&["status", "--execution", &arn])?;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("execution   {arn}")), "{stdout}");
    assert!(
        stdout.contains("input       env lab, action create, source console"),
        "{stdout}"
    );
    // moto's canned history: ExecutionStarted, a Pass state, ExecutionSucceeded.
    assert!(stdout.contains("ExecutionStarted"), "{stdout}");
    assert!(stdout.contains("state A State"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn teardown_all_starts_what_the_schedule_starts() -> Result<()> {
    let sfn = sfn().await?;
    let (_, machine_arn) = create_machine(&sfn).await?;
    let (code, stdout, stderr) = labflow(&[
        "start",
        "--action",
        "teardown-all",
        "--state-machine-arn",
        &machine_arn,
    ])?;
    assert_eq!(code, 0, "{stderr}");
    let arn = stdout.lines().next().context("no ARN")?;
    assert_eq!(
        input_of(&sfn, arn).await?,
        json!({"action": "teardown-all", "source": {"kind": "schedule"}})
    );
    Ok(())
}

#[test]
fn bad_usage_exits_2_with_a_hint() -> Result<()> {
    for args in [
        vec!["start", "--action", "create"],
        vec!["start", "--action", "create", "--env", "Bad_Name"],
        vec!["start", "--action", "teardown-all", "--env", "lab"],
        vec![
            "start",
            "--action",
            "create",
            "--env",
            "lab",
            "--state-machine-name",
            "no-such-machine",
        ],
        vec!["status", "--execution", "not-an-arn"],
    ] {
        let (code, stdout, stderr) = labflow(&args)?;
        assert_eq!(code, 2, "{args:?}: stdout {stdout} stderr {stderr}");
        assert!(stderr.contains("hint"), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn library_start_and_status_in_process() -> Result<()> {
    use labflow_cli::remote::{start, status};
    use labflow_core::contract::{Action, ExecutionInput, Source};

    let sfn = sfn().await?;
    let (_, machine_arn) = create_machine(&sfn).await?;
    let input = ExecutionInput {
        action: Action::Sync,
        environment: Some("lab".into()),
        source: Source::Console { requested_by: None },
        poll_seconds: None,
        force: false,
    };
    let started = start::start(&sfn, &machine_arn, &input).await?;
    assert!(
        started.name.starts_with("cli-lab-sync-"),
        "{}",
        started.name
    );
    assert!(started.name.len() <= 80);
    assert_eq!(
        input_of(&sfn, &started.execution_arn).await?,
        json!({"action": "sync", "environment": "lab", "source": {"kind": "console"}})
    );

    let listed = status::list(&sfn, &machine_arn, Some("lab"), 10).await?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].execution_arn, started.execution_arn);
    assert_eq!(listed[0].action.as_deref(), Some("sync"));
    assert!(status::list(&sfn, &machine_arn, Some("prod"), 10)
        .await?
        .is_empty());

    let detail = status::detail(&sfn, &started.execution_arn, 10).await?;
    assert_eq!(detail.summary.environment.as_deref(), Some("lab"));
    assert!(!detail.events.is_empty());
    // Oldest first: the execution's start is the first of the (few) events.
    assert!(
        detail.events[0].contains("ExecutionStarted"),
        "{:?}",
        detail.events
    );
    Ok(())
}
