//! Events execution-ended must leave alone: answered before any AWS call (the clients point at
//! a port nothing listens on, so a call would fail the test).

use aws_credential_types::Credentials;
use labflow_core::aws::AwsClients;
use labflow_execution_ended::{handle, Ctx, StatusChange, DETAIL_TYPE};

const MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:labflow-lifecycle";
const EXECUTION: &str = "arn:aws:states:eu-west-1:123456789012:execution:labflow-lifecycle:run-1";

fn ctx() -> anyhow::Result<Ctx> {
    let config = aws_config::SdkConfig::builder()
        .http_client(labflow_core::aws::https_client())
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )),
        )
        .build();
    let clients = AwsClients::from_config(config);
    Ctx::new(&clients, MACHINE, Some("http://127.0.0.1:9"))
        .map_err(|e| anyhow::anyhow!("{}", e.message()))
}

async fn phase(event: StatusChange) -> anyhow::Result<(String, String)> {
    let output = handle(&ctx()?, event)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    Ok((output.phase, output.reason.unwrap_or_default()))
}

#[tokio::test]
async fn success_and_running_are_ignored() -> anyhow::Result<()> {
    for status in ["SUCCEEDED", "RUNNING", "PENDING_REDRIVE"] {
        let (phase, reason) =
            phase(StatusChange::new(EXECUTION, MACHINE, status, None, None)).await?;
        assert_eq!(phase, "ignored", "{status}");
        assert!(reason.contains(status), "{reason}");
    }
    Ok(())
}

#[tokio::test]
async fn other_state_machines_are_ignored() -> anyhow::Result<()> {
    let other = "arn:aws:states:eu-west-1:123456789012:stateMachine:someone-else";
    let (phase, reason) =
        phase(StatusChange::new(EXECUTION, other, "TIMED_OUT", None, None)).await?;
    assert_eq!(phase, "ignored");
    assert!(reason.contains("someone-else"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn other_events_are_ignored() -> anyhow::Result<()> {
    let mut event = StatusChange::new(EXECUTION, MACHINE, "ABORTED", None, None);
    event.detail_type = "AWS API Call via CloudTrail".into();
    assert_eq!(phase(event).await?.0, "ignored");
    let mut event = StatusChange::new(EXECUTION, MACHINE, "ABORTED", None, None);
    event.source = "aws.events".into();
    assert_eq!(phase(event).await?.0, "ignored");
    assert_eq!(DETAIL_TYPE, "Step Functions Execution Status Change");
    Ok(())
}

#[test]
fn the_event_as_eventbridge_sends_it_parses() -> anyhow::Result<()> {
    // The shape of docs.aws.amazon.com/step-functions/latest/dg/cw-events.html (abridged).
    let event: StatusChange = serde_json::from_value(serde_json::json!({
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-03T12:00:00Z",
        "region": "eu-west-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": MACHINE,
            "name": "run-1",
            "status": "TIMED_OUT",
            "startDate": 1_764_763_200_000_u64,
            "stopDate": 1_764_777_600_000_u64,
            "input": "{}",
            "output": null,
            "error": null,
            "cause": null
        }
    }))?;
    assert_eq!(event.detail.status, "TIMED_OUT");
    assert_eq!(event.detail.execution_arn, EXECUTION);
    Ok(())
}
