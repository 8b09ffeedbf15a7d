//! Test support: AWS clients pointed at the shared AWS emulator, unique names, fixtures.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use labflow_core::aws::AwsClients;
use labflow_run_guard::Ctx;
use serde_json::Value;

/// The example config, pinned as `labflow flux pin` would (labflow-testkit).
pub static EXAMPLE_CONFIG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(labflow_testkit::config::example_config_json);

pub async fn clients() -> Result<AwsClients> {
    Ok(AwsClients::from_config(
        labflow_testkit::aws::shared_emulator().await?,
    ))
}

pub async fn ctx(max_age: Duration) -> Result<(Ctx, AwsClients)> {
    let clients = clients().await?;
    Ok((Ctx::new(&clients, max_age), clients))
}

/// A name no other test in this process uses (tests share one emulator).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Write an environment config (the example, adjusted by `mutate`).
pub async fn put_config(
    clients: &AwsClients,
    env: &str,
    mutate: impl FnOnce(&mut Value),
) -> Result<()> {
    let mut value: Value = serde_json::from_str(&EXAMPLE_CONFIG)?;
    mutate(&mut value);
    put(
        clients,
        &format!("/labflow/environments/{env}"),
        &value.to_string(),
    )
    .await
}

pub async fn put(clients: &AwsClients, name: &str, value: &str) -> Result<()> {
    clients
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .with_context(|| format!("put {name}"))?;
    Ok(())
}

pub async fn get(clients: &AwsClients, name: &str) -> Result<Option<String>> {
    match clients.ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// A state machine in the emulator (its executions stay RUNNING until stopped).
pub async fn state_machine(clients: &AwsClients) -> Result<String> {
    let definition = r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#;
    let out = clients
        .sfn
        .create_state_machine()
        .name(unique("sm"))
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/x")
        .send()
        .await?;
    Ok(out.state_machine_arn().to_string())
}

pub async fn start(clients: &AwsClients, state_machine: &str) -> Result<String> {
    start_with(clients, state_machine, "{}").await
}

/// An execution whose input is `input` (DescribeExecution shows it).
pub async fn start_with(clients: &AwsClients, state_machine: &str, input: &str) -> Result<String> {
    let out = clients
        .sfn
        .start_execution()
        .state_machine_arn(state_machine)
        .name(unique("ex"))
        .input(input)
        .send()
        .await?;
    Ok(out.execution_arn().to_string())
}
