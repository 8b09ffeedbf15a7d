//! `list`: the environments the nightly `teardown-all` destroys — every config under
//! `/labflow/environments/` with `nightlyTeardown` on and `protected` off.
//!
//! The lookup is non-recursive: `/labflow/environments/<env>/kubeconfig` and anything else
//! deeper is not an environment config.

use labflow_core::config;
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "/labflow/environments/";

/// `list`'s report: `environments` feeds the state machine's Map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListOutput {
    pub done: bool,
    pub phase: String,
    /// Sorted environment names to tear down.
    pub environments: Vec<String>,
    /// Environments left out, each with why.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Skipped {
    pub environment: String,
    pub reason: String,
}

/// `local_cloud`: the clients talk to the local cloud (`AwsClients::local_cloud`).
pub async fn list(ssm: &aws_sdk_ssm::Client, local_cloud: bool) -> Result<ListOutput, StepError> {
    let mut environments = Vec::new();
    let mut skipped = Vec::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path(PREFIX.trim_end_matches('/'))
        .recursive(false)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| classify_sdk_error("listing environment configs", err))?;
        for parameter in page.parameters() {
            let Some(environment) = parameter
                .name()
                .and_then(|name| name.strip_prefix(PREFIX))
                .filter(|rest| !rest.contains('/'))
            else {
                continue;
            };
            let environment = environment.to_string();
            if let Err(err) = config::check_environment_name(&environment) {
                skipped.push(Skipped {
                    environment,
                    reason: err.message().to_string(),
                });
                continue;
            }
            // Listed for teardown-all: a config gone stale must not keep its lab up.
            let checks = config::Checks::teardown(local_cloud);
            let parsed =
                config::parse_with(&environment, parameter.value().unwrap_or_default(), &checks);
            match parsed {
                Err(err) => skipped.push(Skipped {
                    environment,
                    reason: err.message().to_string(),
                }),
                Ok(config) if config.protected => skipped.push(Skipped {
                    environment,
                    reason: "protected".into(),
                }),
                Ok(config) if !config.nightly_teardown => skipped.push(Skipped {
                    environment,
                    reason: "nightly teardown is off".into(),
                }),
                Ok(_) => environments.push(environment),
            }
        }
    }
    environments.sort();
    skipped.sort_by(|a, b| a.environment.cmp(&b.environment));
    tracing::info!(
        count = environments.len(),
        skipped = skipped.len(),
        "listed environments for teardown-all"
    );
    Ok(ListOutput {
        done: true,
        phase: "listed".into(),
        environments,
        skipped,
    })
}
