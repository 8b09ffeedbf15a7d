//! The environment config: model, parsing, validation and loading from SSM.

mod git_credential;
mod model;
mod repository;
mod validate;

pub use git_credential::{
    GitTransport, CREDENTIAL_PARAMETER_PREFIX, GITHUB_KNOWN_HOSTS, SECRET_PLACEHOLDER_PREFIX,
};
pub use model::*;
pub use repository::RepositoryId;
pub use validate::{
    check, validate, Checks, Findings, Problem, Purpose, KNOWN_ADDONS, MIN_KUBERNETES_MINOR,
    TAG_ENVIRONMENT, TAG_MANAGED_BY,
};

use crate::error::{classify_sdk_error, StepError};

/// SSM parameter name of an environment's config.
pub fn parameter_name(environment: &str) -> String {
    format!("/labflow/environments/{environment}")
}

/// Environment names become SSM path segments, tags and Kubernetes names: keep them simple.
pub fn check_environment_name(environment: &str) -> Result<(), StepError> {
    let ok = !environment.is_empty()
        && environment.len() <= 40
        && environment.starts_with(|c: char| c.is_ascii_lowercase())
        && environment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StepError::InvalidInput(format!(
            "environment name {environment:?} must be 1-40 lower-case letters, digits or '-', starting with a letter"
        )))
    }
}

/// Parse and validate a config document for creating a lab in AWS today. Every problem is
/// reported at once, each with its path.
pub fn parse(environment: &str, json: &str) -> Result<EnvironmentConfig, StepError> {
    parse_with(environment, json, &Checks::create(false))
}

/// Parse and validate a config document under `checks`; warnings are logged.
pub fn parse_with(
    environment: &str,
    json: &str,
    checks: &Checks,
) -> Result<EnvironmentConfig, StepError> {
    // The plain parse is the common, fast case; only a config that fails is parsed again with
    // path tracking, to say where it is wrong.
    let config: EnvironmentConfig = match serde_json::from_str(json) {
        Ok(config) => config,
        Err(_) => {
            let deserializer = &mut serde_json::Deserializer::from_str(json);
            let err = match serde_path_to_error::deserialize::<_, EnvironmentConfig>(deserializer) {
                Ok(config) => return finish(environment, config, checks),
                Err(err) => err,
            };
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(StepError::InvalidInput(format!(
                "environment {environment:?} config is invalid: {path}: {inner}"
            )));
        }
    };
    finish(environment, config, checks)
}

/// The parsed config if it passes validation, else every problem at once.
fn finish(
    environment: &str,
    config: EnvironmentConfig,
    checks: &Checks,
) -> Result<EnvironmentConfig, StepError> {
    let Findings {
        errors: problems,
        warnings,
    } = check(&config, checks);
    for warning in &warnings {
        tracing::warn!(environment, %warning, "environment config");
    }
    if problems.is_empty() {
        Ok(normalised(config))
    } else {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Err(StepError::InvalidInput(format!(
            "environment {environment:?} config is invalid: {}",
            listed.join("; ")
        )))
    }
}

/// The config as every consumer wants it: validation accepts a domain with a trailing dot or in
/// capitals and a hosted zone id with Route53's `/hostedzone/` prefix (both are how the Route53
/// console and API show them), but they reach Ingress hosts, DNS filters and API calls through the
/// cluster variables, where `lab.example.com.` is not a valid Ingress host (RFC 1123, Kubernetes
/// `IsDNS1123Subdomain`) and capitals are refused the same way.
fn normalised(mut config: EnvironmentConfig) -> EnvironmentConfig {
    let dns = &mut config.dns;
    dns.domain = dns.domain.trim_end_matches('.').to_ascii_lowercase();
    dns.hosted_zone_id = dns
        .hosted_zone_id
        .trim_start_matches("/hostedzone/")
        .to_string();
    config
}

/// Read `/labflow/environments/<env>` from SSM and parse it under `checks`.
pub async fn load(
    ssm: &aws_sdk_ssm::Client,
    environment: &str,
    checks: &Checks,
) -> Result<EnvironmentConfig, StepError> {
    check_environment_name(environment)?;
    let name = parameter_name(environment);
    let response = ssm.get_parameter().name(&name).send().await;
    let output = match response {
        Ok(output) => output,
        Err(err) => {
            let not_found = err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found());
            if not_found {
                return Err(StepError::InvalidInput(format!(
                    "environment \"{environment}\" is not configured (no SSM parameter {name})"
                )));
            }
            return Err(classify_sdk_error(
                &format!("reading SSM parameter {name}"),
                err,
            ));
        }
    };
    let value = output
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| StepError::InvalidInput(format!("SSM parameter {name} has no value")))?;
    parse_with(environment, value, checks)
}
