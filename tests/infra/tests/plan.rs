//! `terraform plan` of infra/terraform against the AWS emulator (moto), for example.tfvars and
//! variants (two environments, the longest names the variables allow, every optional feature
//! on), with facts about the plan checked in `terraform show -json`.
//!
//! Needs terraform and the hashicorp/aws provider in a filesystem mirror (see
//! labflow_infra_tests::plan); missing either fails the test with what is missing. `make plan`
//! runs only these tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, ensure, Context, Result};
use labflow_infra_tests::plan::{Scratch, Toolchain};
use labflow_infra_tests::{functions, iam_eval, repo};
use serde_json::{json, Value};

/// The zone every variant's `domain` names: the module reads it with a data source.
const ZONE: &str = "example.com";

/// The longest names variables.tf allows (name_prefix, environment keys).
const LONGEST_PREFIX: &str = "abcdefghij-k";
const LONGEST_ENVIRONMENT: &str = "environment-with-the-longest-allowed-nam";

/// One initialised scratch copy for every test of this binary; plans of different variants run
/// side by side in it (`-lock=false`, no state).
fn scratch() -> Result<&'static Scratch> {
    static SCRATCH: OnceLock<Result<Scratch, String>> = OnceLock::new();
    SCRATCH
        .get_or_init(|| prepare().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn prepare() -> Result<Scratch> {
    let toolchain = Toolchain::discover()?;
    let moto = labflow_testbed::moto::shared().context("starting the AWS emulator")?;
    create_zone(&moto.endpoint())?;
    let scratch = Scratch::prepare(toolchain, &moto.endpoint())?;
    for rewrite in &scratch.rewrites {
        eprintln!(
            "plan: provider 5.x rewrite in {}: {} ({})",
            rewrite.file, rewrite.from, rewrite.why
        );
    }
    Ok(scratch)
}

/// The public hosted zone that `data "aws_route53_zone" "main"` looks up, created in moto.
fn create_zone(endpoint: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(labflow_core::aws::https_client())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_route53::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let route53 = aws_sdk_route53::Client::new(&config);
        let zones = route53
            .list_hosted_zones_by_name()
            .dns_name(ZONE)
            .send()
            .await?;
        let exists = zones
            .hosted_zones()
            .iter()
            .any(|z| z.name().trim_end_matches('.') == ZONE);
        if !exists {
            route53
                .create_hosted_zone()
                .name(ZONE)
                .caller_reference("labflow-plan-test")
                .send()
                .await?;
        }
        anyhow::Ok(())
    })
}

/// example.tfvars as committed: its Flux release is the placeholder plan refuses.
fn example_tfvars() -> PathBuf {
    repo::terraform_dir().join("example.tfvars")
}

/// example.tfvars after the README's `labflow flux pin` step (the same edit, with a digest of
/// labflow-testkit's: nothing in a plan downloads the manifest).
fn pinned_example_tfvars(scratch: &Scratch) -> Result<PathBuf> {
    let text = std::fs::read_to_string(example_tfvars())?;
    let pin = labflow_cli::flux_pin::Pin {
        version: labflow_core::versions::FLUX_VERSION.into(),
        url: labflow_cli::flux_pin::manifest_url(
            labflow_cli::flux_pin::DEFAULT_RELEASES,
            labflow_core::versions::FLUX_VERSION,
        ),
        sha256: labflow_testkit::config::test_manifest_sha256(),
    };
    let path = scratch.root().join("example-pinned.tfvars");
    std::fs::write(&path, labflow_cli::flux_pin::pin_tfvars(&text, &pin)?)?;
    Ok(path)
}

/// A var file of our own in the scratch directory.
fn var_file(scratch: &Scratch, name: &str, vars: &Value) -> Result<PathBuf> {
    let path = scratch.root().join(format!("{name}.tfvars.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(vars)?)?;
    Ok(path)
}

/// An environment as a user would configure it (the shape of example.tfvars).
fn environment(branch: &str) -> Value {
    json!({
        "kubernetes_version": "1.35",
        "nodegroups": [{
            "name": "general",
            "instance_types": ["m6a.large"],
            "min": 1, "max": 3, "desired": 2
        }],
        "flux": {
            "version": labflow_core::versions::FLUX_VERSION,
            "manifest_sha256": "5d4a1e2f8c0b7a6d3e9f1c2b4a6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b",
            "repository_url": "https://github.com/example/labflow",
            "branch": branch
        },
        "webhook_branches": [branch]
    })
}

fn base_vars(environments: Value) -> Value {
    json!({
        "aws_region": "eu-west-1",
        "domain": ZONE,
        "availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        "environments": environments
    })
}

// ---- reading the plan ----------------------------------------------------------------------

/// `address -> resource change` for every planned change.
fn changes(plan: &Value) -> Result<BTreeMap<String, &Value>> {
    let list = plan["resource_changes"]
        .as_array()
        .context("plan has no resource_changes")?;
    Ok(list
        .iter()
        .filter_map(|c| Some((c["address"].as_str()?.to_string(), c)))
        .collect())
}

fn planned<'a>(changes: &'a BTreeMap<String, &Value>, address: &str) -> Result<&'a Value> {
    let change = changes
        .get(address)
        .with_context(|| format!("the plan has no {address}"))?;
    ensure!(
        change["change"]["actions"] == json!(["create"]),
        "{address} is planned as {}, not a create",
        change["change"]["actions"]
    );
    Ok(&change["change"]["after"])
}

/// The references of a resource's attribute in the configuration part of the plan.
fn references(plan: &Value, address: &str, attribute: &str) -> Result<Vec<String>> {
    let resources = plan["configuration"]["root_module"]["resources"]
        .as_array()
        .context("plan has no configuration.root_module.resources")?;
    let resource = resources
        .iter()
        .find(|r| r["address"] == address)
        .with_context(|| format!("no {address} in the plan's configuration"))?;
    Ok(resource["expressions"][attribute]["references"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Facts every successful plan must show, whatever the variant.
fn check_common(plan: &Value, prefix: &str, environments: &[&str]) -> Result<()> {
    let changes = changes(plan)?;

    // Every function crate has a Lambda with its own role.
    let crates = functions::discover(&repo::functions_dir())?;
    ensure!(!crates.is_empty(), "no function crates");
    // Terraform lists `aws_iam_role.lambda[each.key].arn` as these two references.
    let role_refs = references(plan, "aws_lambda_function.step", "role")?;
    ensure!(
        role_refs == ["aws_iam_role.lambda", "each.key"],
        "aws_lambda_function.step's role is not aws_iam_role.lambda[each.key]: {role_refs:?}"
    );
    for function in &crates {
        let lambda = planned(
            &changes,
            &format!("aws_lambda_function.step[\"{}\"]", function.name),
        )?;
        ensure!(lambda["function_name"] == json!(format!("{prefix}-{}", function.name)));
        let role = planned(
            &changes,
            &format!("aws_iam_role.lambda[\"{}\"]", function.name),
        )?;
        ensure!(role["name"] == json!(format!("{prefix}-{}", function.name)));
        planned(
            &changes,
            &format!("aws_iam_role_policy.lambda[\"{}\"]", function.name),
        )?;
    }

    // The public webhook has concurrency of its own, which also caps it; the steps share the
    // account's unreserved pool (-1), which a webhook flood then cannot exhaust (issue 26 item 9).
    for function in &crates {
        let lambda = planned(
            &changes,
            &format!("aws_lambda_function.step[\"{}\"]", function.name),
        )?;
        let reserved = lambda["reserved_concurrent_executions"]
            .as_i64()
            .unwrap_or(-1);
        if function.name == "github-webhook" {
            ensure!(
                reserved >= 1,
                "github-webhook has no reserved concurrency ({reserved}): a flood of its public URL throttles every step"
            );
        } else {
            ensure!(
                reserved == -1,
                "{} reserves concurrency ({reserved}); only the webhook should",
                function.name
            );
        }
    }

    // Executions that end outside the failure path reach execution-ended (issue 18 item 8): the
    // rule's pattern matches the status-change events Step Functions sends for FAILED, TIMED_OUT
    // and ABORTED executions of the lifecycle, and no others.
    let rule = planned(&changes, "aws_cloudwatch_event_rule.execution_ended")?;
    let pattern: Value = serde_json::from_str(
        rule["event_pattern"]
            .as_str()
            .context("the execution-ended rule's pattern is not known at plan time")?,
    )?;
    let machine = pattern["detail"]["stateMachineArn"][0]
        .as_str()
        .context("the pattern names no state machine")?;
    ensure!(
        machine.ends_with(&format!(":stateMachine:{prefix}-lifecycle")),
        "the rule watches {machine}"
    );
    // The event as EventBridge delivers it (docs.aws.amazon.com/step-functions/latest/dg/cw-events.html).
    let event = |status: &str, state_machine: &str| {
        json!({"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
               "detail": {"stateMachineArn": state_machine, "status": status}})
    };
    for status in ["FAILED", "TIMED_OUT", "ABORTED"] {
        ensure!(
            event_matches(&pattern, &event(status, machine)),
            "a {status} execution does not reach execution-ended: {pattern}"
        );
    }
    for (status, state_machine) in [
        ("SUCCEEDED", machine),
        ("RUNNING", machine),
        (
            "FAILED",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:someone-else",
        ),
    ] {
        ensure!(
            !event_matches(&pattern, &event(status, state_machine)),
            "{status} of {state_machine} reaches execution-ended: {pattern}"
        );
    }

    // The scheduler's role is assumable only for our account's default schedule group.
    let trust: Value = serde_json::from_str(
        planned(&changes, "aws_iam_role.scheduler")?["assume_role_policy"]
            .as_str()
            .context("the scheduler's trust policy is not known at plan time")?,
    )?;
    let source_arn = trust["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"].clone();
    ensure!(
        source_arn
            .as_str()
            .is_some_and(|a| a.contains(":scheduler:") && a.ends_with(":schedule-group/default")),
        "the scheduler's trust policy has no aws:SourceArn of the schedule group: {trust}"
    );

    // Every node group starts from a launch template that keeps pods from instance metadata
    // (IMDSv2 tokens, one hop) with an encrypted root volume (issue 26 item 4).
    for env in environments {
        let templates: Vec<&String> = changes
            .keys()
            .filter(|a| a.starts_with(&format!("aws_launch_template.node[\"{env}:")))
            .collect();
        ensure!(!templates.is_empty(), "no node launch template for {env}");
        for address in templates {
            let template = planned(&changes, address)?;
            let metadata = &template["metadata_options"][0];
            ensure!(
                metadata["http_tokens"] == json!("required")
                    && metadata["http_put_response_hop_limit"] == json!(1),
                "{address}: metadata options {metadata}"
            );
            let ebs = &template["block_device_mappings"][0]["ebs"][0];
            ensure!(
                ebs["encrypted"] == json!("true") || ebs["encrypted"] == json!(true),
                "{address}: root volume {ebs}"
            );
        }
    }

    // The VPC CNI's network permissions are on its own Pod Identity role, not on the node role
    // every pod of the node can use (issue 26 item 4).
    for env in environments {
        ensure!(
            !changes.contains_key(&format!(
                "aws_iam_role_policy_attachment.node[\"{env}:AmazonEKS_CNI_Policy\"]"
            )),
            "the node role of {env} still has the CNI policy"
        );
        let cni = planned(
            &changes,
            &format!("aws_iam_role_policy_attachment.vpc_cni[\"{env}\"]"),
        )?;
        ensure!(
            cni["policy_arn"]
                .as_str()
                .is_some_and(|a| a.ends_with(":policy/AmazonEKS_CNI_Policy")),
            "{cni}"
        );
    }

    // The EBS CSI driver reaches only its own cluster's volumes and snapshots (issue 26 item 4):
    // the cluster-scoped managed policy, not the account-wide one.
    for env in environments {
        let ebs = planned(
            &changes,
            &format!("aws_iam_role_policy_attachment.ebs_csi[\"{env}\"]"),
        )?;
        ensure!(
            ebs["policy_arn"]
                .as_str()
                .is_some_and(|a| a.ends_with(":policy/AmazonEBSCSIDriverEKSClusterScopedPolicy")),
            "{env}: the EBS CSI driver's role has {}",
            ebs["policy_arn"]
        );
    }

    // Every environment: its own SecureString for Flux's read-only Git credential, where
    // flux-bootstrap looks for it (issue 26 item 2).
    for env in environments {
        let credential = planned(
            &changes,
            &format!("aws_ssm_parameter.flux_credential[\"{env}\"]"),
        )?;
        ensure!(
            credential["name"] == json!(format!("/labflow/flux-credentials/{env}"))
                && credential["type"] == json!("SecureString"),
            "{env}: the Flux credential parameter is not the SecureString flux-bootstrap reads: {credential}"
        );
    }

    // Every environment: its config in SSM, its certificate and exactly one validation record.
    for env in environments {
        planned(
            &changes,
            &format!("aws_ssm_parameter.environment[\"{env}\"]"),
        )?;
        let cert = planned(&changes, &format!("aws_acm_certificate.env[\"{env}\"]"))?;
        let domain = cert["domain_name"]
            .as_str()
            .with_context(|| format!("certificate of {env} has no planned domain_name"))?;
        // The provider plans the domain itself among the SANs, beside the wildcard.
        let sans = cert["subject_alternative_names"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ensure!(
            sans.contains(&json!(format!("*.{domain}"))),
            "certificate of {env}: SANs {}",
            cert["subject_alternative_names"]
        );
        let record = planned(
            &changes,
            &format!("aws_route53_record.acm_validation[\"{env}\"]"),
        )?;
        ensure!(record["allow_overwrite"] == json!(true));
        planned(
            &changes,
            &format!("aws_acm_certificate_validation.env[\"{env}\"]"),
        )?;
        let records: Vec<&String> = changes
            .keys()
            .filter(|a| a.starts_with("aws_route53_record.acm_validation["))
            .collect();
        ensure!(
            records.len() == environments.len(),
            "one validation record per certificate expected, the plan has {records:?}"
        );
    }

    // IAM role names: known at plan time and within IAM's limit (64 characters, IAM quotas:
    // docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
    let mut role_names = BTreeSet::new();
    for (address, change) in &changes {
        if change["type"] != "aws_iam_role" {
            continue;
        }
        let name = change["change"]["after"]["name"]
            .as_str()
            .with_context(|| format!("{address}: role name not known at plan time"))?;
        ensure!(
            name.len() <= 64,
            "{address}: role name {name:?} is {} characters",
            name.len()
        );
        ensure!(
            role_names.insert(name.to_string()),
            "two roles named {name:?}"
        );
    }
    Ok(())
}

/// EventBridge's matching for the patterns used here: every field of the pattern must be in the
/// event; a list matches a value equal to one of its items, an object matches field by field
/// (EventBridge user guide, "Event patterns").
fn event_matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(key, want)| event.get(key).is_some_and(|got| event_matches(want, got))),
        Value::Array(values) => values.contains(event),
        _ => false,
    }
}

// ---- the variants ----------------------------------------------------------------------------

#[test]
fn example_tfvars_plans() -> Result<()> {
    let scratch = scratch()?;
    let plan = scratch.plan(
        "example",
        &[pinned_example_tfvars(scratch)?],
        &BTreeMap::new(),
    )?;
    check_common(&plan, "labflow", &["lab"])
}

/// Terraform wraps long messages: white space collapsed.
fn one_line(err: &impl std::fmt::Display) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_unpinned_example_is_refused_at_plan_time_saying_how_to_pin_it() -> Result<()> {
    let scratch = scratch()?;
    let err = scratch
        .plan("unpinned", &[example_tfvars()], &BTreeMap::new())
        .err()
        .context("a plan with the all-zero manifest_sha256 succeeded")?;
    let message = one_line(&err);
    ensure!(
        message.contains("not the all-zero placeholder")
            && message.contains("labflow flux pin <version> --tfvars"),
        "the error does not say how to pin the release: {err}"
    );
    Ok(())
}

#[test]
fn a_manifest_url_a_cluster_in_aws_cannot_reach_is_refused_at_plan_time() -> Result<()> {
    let scratch = scratch()?;
    let mut env = environment("main");
    env["flux"]["manifest_url"] = json!("http://127.0.0.1:8080/install.yaml");
    let file = var_file(
        scratch,
        "loopback-manifest",
        &base_vars(json!({ "lab": env })),
    )?;
    let err = scratch
        .plan("loopback-manifest", &[file], &BTreeMap::new())
        .err()
        .context("a plan with a loopback manifest_url succeeded")?;
    ensure!(
        one_line(&err).contains("flux.manifest_url must be an https:// URL"),
        "{err}"
    );
    Ok(())
}

#[test]
fn two_environments_plan() -> Result<()> {
    let scratch = scratch()?;
    let vars = base_vars(json!({ "lab": environment("main"), "staging": environment("staging") }));
    let file = var_file(scratch, "two-environments", &vars)?;
    let plan = scratch.plan("two-environments", &[file], &BTreeMap::new())?;
    check_common(&plan, "labflow", &["lab", "staging"])?;
    let changes = changes(&plan)?;
    for env in ["lab", "staging"] {
        for kind in ["cluster", "node"] {
            let role = planned(&changes, &format!("aws_iam_role.{kind}[\"{env}\"]"))?;
            ensure!(role["tags"]["labflow:environment"] == json!(env));
        }
    }
    Ok(())
}

#[test]
fn longest_allowed_names_plan() -> Result<()> {
    let scratch = scratch()?;
    let mut vars = base_vars(json!({ LONGEST_ENVIRONMENT: environment("main") }));
    vars["name_prefix"] = json!(LONGEST_PREFIX);
    let file = var_file(scratch, "longest-names", &vars)?;
    let plan = scratch.plan("longest-names", &[file], &BTreeMap::new())?;
    check_common(&plan, LONGEST_PREFIX, &[LONGEST_ENVIRONMENT])
}

/// Terraform's refusal of a variable value by its validation block with this message.
fn refused_by_validation(output: &str, message: &str) -> bool {
    output.contains("Invalid value for variable") && output.contains(message)
}

#[test]
fn a_name_one_character_too_long_is_refused_at_plan_time() -> Result<()> {
    let scratch = scratch()?;
    let mut vars = base_vars(json!({ format!("{LONGEST_ENVIRONMENT}e"): environment("main") }));
    vars["name_prefix"] = json!(LONGEST_PREFIX);
    let file = var_file(scratch, "too-long", &vars)?;
    let err = scratch
        .plan("too-long", &[file], &BTreeMap::new())
        .err()
        .context("an environment name over the limit planned")?;
    ensure!(
        refused_by_validation(&err.to_string(), "Environment names:"),
        "expected the environments variable's validation message, got: {err}"
    );
    let mut vars = base_vars(json!({ "lab": environment("main") }));
    vars["name_prefix"] = json!(format!("{LONGEST_PREFIX}x"));
    let file = var_file(scratch, "too-long-prefix", &vars)?;
    let err = scratch
        .plan("too-long-prefix", &[file], &BTreeMap::new())
        .err()
        .context("a name_prefix over the limit planned")?;
    ensure!(
        refused_by_validation(&err.to_string(), "name_prefix:"),
        "expected name_prefix's validation message, got: {err}"
    );
    Ok(())
}

#[test]
fn optional_features_plan() -> Result<()> {
    let scratch = scratch()?;
    let mut vars = base_vars(json!({ "lab": environment("main") }));
    vars["alarm_email"] = json!("oncall@example.com");
    vars["single_nat_gateway"] = json!(false);
    vars["github_api_url"] = json!("https://github.example.com/api/v3");
    let file = var_file(scratch, "optional-features", &vars)?;
    let plan = scratch.plan("optional-features", &[file], &BTreeMap::new())?;
    check_common(&plan, "labflow", &["lab"])?;
    let changes = changes(&plan)?;
    let subscription = planned(&changes, "aws_sns_topic_subscription.alarm_email[0]")?;
    ensure!(subscription["endpoint"] == json!("oncall@example.com"));
    let nat_gateways = changes
        .keys()
        .filter(|a| a.starts_with("aws_nat_gateway.main"))
        .count();
    ensure!(
        nat_gateways == 3,
        "one NAT gateway per zone expected, got {nat_gateways}"
    );
    let status = planned(&changes, "aws_lambda_function.step[\"github-status\"]")?;
    ensure!(
        status["environment"][0]["variables"]["GITHUB_API_URL"]
            == json!("https://github.example.com/api/v3"),
        "github-status does not get GITHUB_API_URL: {}",
        status["environment"]
    );
    Ok(())
}

#[test]
fn a_plan_before_make_package_says_to_run_it() -> Result<()> {
    let scratch = scratch()?;
    let empty = scratch.root().join("no-zips");
    std::fs::create_dir_all(&empty)?;
    let vars = BTreeMap::from([("lambda_dist_dir".to_string(), empty.display().to_string())]);
    let err = scratch
        .plan("no-zips", &[pinned_example_tfvars(scratch)?], &vars)
        .err()
        .context("a plan without the Lambda zips succeeded")?;
    // Terraform wraps long messages: compare with white space collapsed.
    let message = err
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    ensure!(
        message.contains("does not exist: run `make package LAMBDA_ARCH=arm64`"),
        "the error does not say to run `make package`: {err}"
    );
    Ok(())
}

// ---- IAM policy sizes, from the policies as Terraform renders them ---------------------------

/// IAM quotas (docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): all inline
/// policies of a role together, one managed policy, one role trust policy (default quota);
/// "IAM doesn't count white space when calculating the size of a policy".
const ROLE_INLINE_POLICIES_MAX: usize = 10_240;
const MANAGED_POLICY_MAX: usize = 6_144;
const TRUST_POLICY_MAX: usize = 2_048;

/// A policy's size as IAM counts it: the JSON without white space outside strings.
fn policy_size(document: &str) -> Result<usize> {
    let value: Value = serde_json::from_str(document).context("policy is not JSON")?;
    Ok(serde_json::to_string(&value)?.len())
}

fn actions_of(document: &str) -> Result<BTreeSet<String>> {
    let value: Value = serde_json::from_str(document)?;
    let mut actions = BTreeSet::new();
    for statement in value["Statement"].as_array().context("no Statement")? {
        match &statement["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => {
                actions.extend(list.iter().filter_map(|a| a.as_str().map(String::from)))
            }
            other => anyhow::bail!("statement without Action: {other}"),
        }
    }
    Ok(actions)
}

fn state_resources(state: &Value) -> Result<Vec<&Value>> {
    state["values"]["root_module"]["resources"]
        .as_array()
        .map(|r| r.iter().collect())
        .context("state has no resources")
}

/// Apply only the IAM parts of the module for `count` environments (a moto of its own) and
/// check every role and policy against IAM's limits; returns the largest role's inline total.
fn check_policy_sizes(count: usize, targets: &[&str]) -> Result<(usize, Value)> {
    let scratch = scratch()?;
    let moto = labflow_testbed::moto::Moto::start().context("starting an AWS emulator")?;
    create_zone(&moto.endpoint())?;
    let environments: serde_json::Map<String, Value> = (1..=count)
        .map(|i| (format!("env{i:02}"), environment(&format!("env{i:02}"))))
        .collect();
    let name = format!("iam-{count}-environments");
    let file = var_file(scratch, &name, &base_vars(Value::Object(environments)))?;
    let state = scratch.apply_targets(&name, &moto.endpoint(), &[file], targets)?;
    let resources = state_resources(&state)?;

    let mut inline_by_role: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for resource in &resources {
        let values = &resource["values"];
        let address = resource["address"].as_str().unwrap_or("?");
        match resource["type"].as_str() {
            Some("aws_iam_role_policy") => {
                let role = values["role"]
                    .as_str()
                    .context("role policy without role")?;
                let size = policy_size(values["policy"].as_str().context("no policy")?)?;
                *inline_by_role.entry(role.to_string()).or_default() += size;
            }
            Some("aws_iam_policy") => {
                let size = policy_size(values["policy"].as_str().context("no policy")?)?;
                if size > MANAGED_POLICY_MAX {
                    problems.push(format!("{address}: managed policy of {size} characters"));
                }
            }
            Some("aws_iam_role") => {
                let trust = values["assume_role_policy"]
                    .as_str()
                    .context("no trust policy")?;
                let size = policy_size(trust)?;
                if size > TRUST_POLICY_MAX {
                    problems.push(format!("{address}: trust policy of {size} characters"));
                }
            }
            _ => {}
        }
    }
    ensure!(
        !inline_by_role.is_empty(),
        "the apply created no role policies"
    );
    for (role, size) in &inline_by_role {
        eprintln!("iam ({count} environments): {role}: inline policies {size} characters");
        if *size > ROLE_INLINE_POLICIES_MAX {
            problems.push(format!(
                "role {role}: inline policies total {size} characters (IAM allows {ROLE_INLINE_POLICIES_MAX})"
            ));
        }
    }

    // The grouped statements still grant exactly what each crate declares (and the runtime's
    // own needs): read from the rendered policy, not from the HCL.
    for function in functions::discover(&repo::functions_dir())? {
        let address = format!("aws_iam_role_policy.lambda[\"{}\"]", function.name);
        let Some(policy) = resources.iter().find(|r| r["address"] == json!(address)) else {
            continue;
        };
        let granted = actions_of(policy["values"]["policy"].as_str().context("no policy")?)?;
        let declared = function.declared_actions()?;
        let expected: BTreeSet<String> = declared
            .operations
            .iter()
            .chain(&declared.implied)
            .cloned()
            .chain(functions::RUNTIME_ACTIONS.iter().map(|a| a.to_string()))
            .collect();
        if granted != expected {
            problems.push(format!(
                "{address} grants {:?} beyond what {} declares and misses {:?}",
                granted.difference(&expected).collect::<Vec<_>>(),
                function.name,
                expected.difference(&granted).collect::<Vec<_>>()
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    let largest = inline_by_role.values().copied().max().unwrap_or(0);
    Ok((largest, state))
}

/// The rendered policy of a Lambda's role, from an apply's state.
fn lambda_policy(state: &Value, function: &str) -> Result<Value> {
    let address = format!("aws_iam_role_policy.lambda[\"{function}\"]");
    let resource = state_resources(state)?
        .into_iter()
        .find(|r| r["address"] == json!(address))
        .with_context(|| format!("no {address} in the state"))?;
    Ok(serde_json::from_str(
        resource["values"]["policy"].as_str().context("no policy")?,
    )?)
}

/// In an account that never used EKS, CreateCluster and CreateNodegroup create EKS's
/// service-linked roles with the caller's permission (EKS user guide, "Using roles for Amazon
/// EKS clusters" / "... node groups"): ensure-cluster must hold iam:CreateServiceLinkedRole for
/// exactly those two services.
fn check_service_linked_roles(state: &Value) -> Result<()> {
    let policy = lambda_policy(state, "ensure-cluster")?;
    let statements = policy["Statement"].as_array().context("no Statement")?;
    let statement = statements
        .iter()
        .find(|s| {
            s["Action"] == json!("iam:CreateServiceLinkedRole")
                || s["Action"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("iam:CreateServiceLinkedRole")))
        })
        .context("ensure-cluster may not create EKS's service-linked roles (iam:CreateServiceLinkedRole)")?;
    let services: BTreeSet<&str> =
        match &statement["Condition"]["StringEquals"]["iam:AWSServiceName"] {
            Value::String(s) => BTreeSet::from([s.as_str()]),
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => anyhow::bail!(
                "iam:CreateServiceLinkedRole without an iam:AWSServiceName condition: {other}"
            ),
        };
    ensure!(
        services == BTreeSet::from(["eks.amazonaws.com", "eks-nodegroup.amazonaws.com"]),
        "iam:CreateServiceLinkedRole for {services:?}, expected EKS's two services"
    );
    Ok(())
}

/// The ARN of the resource at `address` in an apply's state.
fn resource_arn<'a>(state: &'a Value, address: &str) -> Result<&'a str> {
    state_resources(state)?
        .into_iter()
        .find(|r| r["address"] == json!(address))
        .and_then(|r| r["values"]["arn"].as_str())
        .with_context(|| format!("no {address} in the state"))
}

/// labflow's KMS key (`arn:aws:kms:<region>:<account>:key/<id>`), its region and account.
fn labflow_key(state: &Value) -> Result<(&str, &str, &str)> {
    let key_arn = resource_arn(state, "aws_kms_key.labflow")?;
    let parts: Vec<&str> = key_arn.split(':').collect();
    ensure!(parts.len() == 6, "unexpected key ARN {key_arn}");
    Ok((key_arn, parts[3], parts[4]))
}

/// Every Lambda role decrypts with labflow's key only what it is for (issue 26 item 10, issue 18
/// item 4): its own environment (context `aws:lambda:FunctionArn`), labflow's SecureStrings
/// through SSM (context `PARAMETER_ARN`), and, for the state machine's callers, our state
/// machine's data; never ciphertext of any other kind or context.
fn check_runtime_decrypt(state: &Value) -> Result<()> {
    let (key_arn, region, account) = labflow_key(state)?;
    let function_arn =
        |name: &str| format!("arn:aws:lambda:{region}:{account}:function:labflow-{name}");
    let token = format!("arn:aws:ssm:{region}:{account}:parameter/labflow/github/token");
    let ssm = format!("ssm.{region}.amazonaws.com");
    let decrypt = || iam_eval::Request::new("kms:Decrypt", key_arn);
    let mut problems = Vec::new();
    let crates = functions::discover(&repo::functions_dir())?;
    for function in &crates {
        let policy = lambda_policy(state, &function.name)?.to_string();
        let mut expect = |what: &str, request: iam_eval::Request, allowed: bool| -> Result<()> {
            if iam_eval::allows(&policy, &request)? != allowed {
                problems.push(format!(
                    "{}: kms:Decrypt {what} is {}",
                    function.name,
                    if allowed { "denied" } else { "allowed" }
                ));
            }
            Ok(())
        };
        expect(
            "of its own environment",
            decrypt().with(
                "kms:EncryptionContext:aws:lambda:FunctionArn",
                &function_arn(&function.name),
            ),
            true,
        )?;
        expect("without an encryption context", decrypt(), false)?;
        expect(
            "of another function's environment",
            decrypt().with(
                "kms:EncryptionContext:aws:lambda:FunctionArn",
                &function_arn("someone-else"),
            ),
            false,
        )?;
        expect(
            "of a labflow SecureString through SSM",
            decrypt()
                .with("kms:ViaService", &ssm)
                .with("kms:EncryptionContext:PARAMETER_ARN", &token),
            true,
        )?;
        expect(
            "of a labflow SecureString's ciphertext outside SSM",
            decrypt().with("kms:EncryptionContext:PARAMETER_ARN", &token),
            false,
        )?;
        expect(
            "of another state machine's data",
            decrypt().with(
                "kms:EncryptionContext:aws:states:stateMachineArn",
                &format!("arn:aws:states:{region}:{account}:stateMachine:someone-else"),
            ),
            false,
        )?;
    }
    // The EKS secrets key: grants only on behalf of an AWS service (EKS), not to whoever
    // ensure-cluster names.
    let policy = lambda_policy(state, "ensure-cluster")?.to_string();
    let secrets_key = resource_arn(state, "aws_kms_key.eks_secrets")?;
    let grant = || iam_eval::Request::new("kms:CreateGrant", secrets_key);
    if !iam_eval::allows(&policy, &grant().with("kms:GrantIsForAWSResource", "true"))? {
        problems.push("ensure-cluster may not create EKS's grant on the secrets key".into());
    }
    if iam_eval::allows(&policy, &grant())?
        || iam_eval::allows(&policy, &grant().with("kms:GrantIsForAWSResource", "false"))?
    {
        problems.push("ensure-cluster may create grants on the secrets key for anyone".into());
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// A lab's Flux gets its own read-only credential, never the token that writes commit statuses
/// (issue 26 item 2): only the two functions that post statuses may read that token, and
/// flux-bootstrap reads the environments' Flux credentials (and may decrypt them through SSM).
fn check_git_credentials(state: &Value) -> Result<()> {
    let (key_arn, region, account) = labflow_key(state)?;
    let parameter = |name: &str| format!("arn:aws:ssm:{region}:{account}:parameter{name}");
    let status_token = parameter("/labflow/github/token");
    let flux_credential = parameter("/labflow/flux-credentials/lab");
    let mut problems = Vec::new();
    for function in functions::discover(&repo::functions_dir())? {
        let policy = lambda_policy(state, &function.name)?.to_string();
        let may_read_status_token = iam_eval::allows(
            &policy,
            &iam_eval::Request::new("ssm:GetParameter", &status_token),
        )?;
        let posts_statuses = matches!(function.name.as_str(), "github-status" | "execution-ended");
        if may_read_status_token != posts_statuses {
            problems.push(format!(
                "{}: reading the status token is {}",
                function.name,
                if may_read_status_token {
                    "allowed"
                } else {
                    "denied"
                }
            ));
        }
        let may_read_flux_credential = iam_eval::allows(
            &policy,
            &iam_eval::Request::new("ssm:GetParameter", &flux_credential),
        )?;
        if may_read_flux_credential != (function.name == "flux-bootstrap") {
            problems.push(format!(
                "{}: reading a Flux credential is {}",
                function.name,
                if may_read_flux_credential {
                    "allowed"
                } else {
                    "denied"
                }
            ));
        }
    }
    let policy = lambda_policy(state, "flux-bootstrap")?.to_string();
    let decrypt = iam_eval::Request::new("kms:Decrypt", key_arn)
        .with("kms:ViaService", &format!("ssm.{region}.amazonaws.com"))
        .with("kms:EncryptionContext:PARAMETER_ARN", &flux_credential);
    if !iam_eval::allows(&policy, &decrypt)? {
        problems.push("flux-bootstrap may not decrypt a Flux credential through SSM".into());
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// external-dns and cert-manager of one environment change records of that environment's domain
/// only (issue 26 item 3): the zone is shared by every lab, and a lab's controllers are as
/// trustworthy as the manifests Flux applies there. Asked of the rendered policies with the keys
/// Route53 sets on ChangeResourceRecordSets (Route53 developer guide, "Using IAM policy
/// conditions for fine-grained access control": normalized record names, record types).
/// The inline policy of a Pod Identity role (`<env>:<controller>`) in the applied state.
fn pod_identity_policy(state: &Value, key: &str) -> Result<String> {
    let address = format!("aws_iam_role_policy.pod_identity[\"{key}\"]");
    state_resources(state)?
        .into_iter()
        .find(|r| r["address"] == json!(address))
        .and_then(|r| r["values"]["policy"].as_str().map(str::to_string))
        .with_context(|| format!("no {address} in the state"))
}

/// teardown's sweep after the cluster (issue 19 item 9) deletes load balancers, target groups,
/// security groups and volumes only when they carry the tag the controllers gave them for one of
/// labflow's clusters: never a resource of the account that is not a lab's.
fn check_teardown_sweep_scope(state: &Value) -> Result<()> {
    let policy = lambda_policy(state, "teardown")?.to_string();
    let ours = "labflow-env01";
    let lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/k8s-web-0123456789/0123456789abcdef";
    let tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/k8s-web-0123456789/0123456789abcdef";
    let sg = "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0";
    let volume = "arn:aws:ec2:eu-west-1:123456789012:volume/vol-0123456789abcdef0";
    let tagged = |action: &'static str, resource: &'static str, key: &str, cluster: &str| {
        iam_eval::Request::new(action, resource).with(&format!("aws:ResourceTag/{key}"), cluster)
    };
    let lbc = "elbv2.k8s.aws/cluster";
    let cases = [
        (
            "delete a lab's NLB",
            tagged("elasticloadbalancing:DeleteLoadBalancer", lb, lbc, ours),
            true,
        ),
        (
            "delete a production NLB",
            tagged("elasticloadbalancing:DeleteLoadBalancer", lb, lbc, "prod"),
            false,
        ),
        (
            "delete an untagged NLB",
            iam_eval::Request::new("elasticloadbalancing:DeleteLoadBalancer", lb),
            false,
        ),
        (
            "delete a lab's target group",
            tagged("elasticloadbalancing:DeleteTargetGroup", tg, lbc, ours),
            true,
        ),
        (
            "delete a production target group",
            tagged("elasticloadbalancing:DeleteTargetGroup", tg, lbc, "prod"),
            false,
        ),
        (
            "delete a lab's security group",
            tagged("ec2:DeleteSecurityGroup", sg, lbc, ours),
            true,
        ),
        (
            "delete an untagged security group",
            iam_eval::Request::new("ec2:DeleteSecurityGroup", sg),
            false,
        ),
        (
            "delete a lab's volume",
            tagged("ec2:DeleteVolume", volume, "KubernetesCluster", ours),
            true,
        ),
        (
            "delete a production volume",
            tagged("ec2:DeleteVolume", volume, "KubernetesCluster", "prod"),
            false,
        ),
        (
            "delete an untagged volume",
            iam_eval::Request::new("ec2:DeleteVolume", volume),
            false,
        ),
    ];
    let mut problems = Vec::new();
    for (what, request, allowed) in cases {
        if iam_eval::allows(&policy, &request)? != allowed {
            problems.push(format!("teardown may {what}: {}", !allowed));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// One lab's load balancer controller writes only what carries its own cluster's name in
/// `elbv2.k8s.aws/cluster` (or, for backend rules, the cluster's own security group), and
/// cannot re-tag anything to or from another cluster (issue 26 item 4). The upstream policy
/// only asks that the tag exist, so every lab's controller could delete every lab's load
/// balancers.
fn check_lbc_scope(state: &Value) -> Result<()> {
    let policy = pod_identity_policy(state, "env01:aws-load-balancer-controller")?;
    let vpc = state_resources(state)?
        .into_iter()
        .find(|r| r["address"] == json!("aws_vpc.main"))
        .and_then(|r| r["values"]["arn"].as_str().map(str::to_string))
        .context("no VPC in the state")?;
    let (own, other) = ("labflow-env01", "labflow-env02");
    let lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/k8s-web-0123456789/0123456789abcdef";
    let listener = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/k8s-web-0123456789/0123456789abcdef/fedcba9876543210";
    let tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/k8s-web-0123456789/0123456789abcdef";
    let sg = "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0";
    let tagged = |action: &'static str, resource: &'static str, cluster: &str| {
        iam_eval::Request::new(action, resource)
            .with("aws:ResourceTag/elbv2.k8s.aws/cluster", cluster)
            .with("ec2:Vpc", &vpc)
    };
    let cases = [
        (
            "delete its own ALB",
            tagged("elasticloadbalancing:DeleteLoadBalancer", lb, own),
            true,
        ),
        (
            "delete another lab's ALB",
            tagged("elasticloadbalancing:DeleteLoadBalancer", lb, other),
            false,
        ),
        (
            "delete an untagged ALB",
            iam_eval::Request::new("elasticloadbalancing:DeleteLoadBalancer", lb),
            false,
        ),
        (
            "delete another lab's listener",
            tagged("elasticloadbalancing:DeleteListener", listener, other),
            false,
        ),
        (
            "register targets in another lab's target group",
            tagged("elasticloadbalancing:RegisterTargets", tg, other),
            false,
        ),
        (
            "register targets in its own target group",
            tagged("elasticloadbalancing:RegisterTargets", tg, own),
            true,
        ),
        (
            "modify another lab's listener",
            tagged("elasticloadbalancing:ModifyListener", listener, other),
            false,
        ),
        (
            "open another lab's security group",
            tagged("ec2:AuthorizeSecurityGroupIngress", sg, other),
            false,
        ),
        (
            "open its own security group",
            tagged("ec2:AuthorizeSecurityGroupIngress", sg, own),
            true,
        ),
        (
            "open its cluster's security group",
            iam_eval::Request::new("ec2:AuthorizeSecurityGroupIngress", sg)
                .with("aws:ResourceTag/aws:eks:cluster-name", own)
                .with("ec2:Vpc", &vpc),
            true,
        ),
        (
            "open any other security group of the VPC",
            iam_eval::Request::new("ec2:AuthorizeSecurityGroupIngress", sg).with("ec2:Vpc", &vpc),
            false,
        ),
        (
            "delete another lab's security group",
            tagged("ec2:DeleteSecurityGroup", sg, other),
            false,
        ),
        (
            "create an ALB for another lab",
            iam_eval::Request::new("elasticloadbalancing:CreateLoadBalancer", lb)
                .with("aws:RequestTag/elbv2.k8s.aws/cluster", other),
            false,
        ),
        (
            "create an ALB for itself",
            iam_eval::Request::new("elasticloadbalancing:CreateLoadBalancer", lb)
                .with("aws:RequestTag/elbv2.k8s.aws/cluster", own),
            true,
        ),
        (
            "hand its ALB to another lab",
            tagged("elasticloadbalancing:AddTags", lb, own)
                .with("aws:RequestTag/elbv2.k8s.aws/cluster", other),
            false,
        ),
        (
            "claim another lab's listener",
            iam_eval::Request::new("elasticloadbalancing:AddTags", listener)
                .with("aws:ResourceTag/elbv2.k8s.aws/cluster", other)
                .with("aws:RequestTag/elbv2.k8s.aws/cluster", own),
            false,
        ),
        (
            "tag the listener it creates",
            iam_eval::Request::new("elasticloadbalancing:AddTags", listener)
                .with("elasticloadbalancing:CreateAction", "CreateListener")
                .with("aws:RequestTag/elbv2.k8s.aws/cluster", own),
            true,
        ),
    ];
    let mut problems = Vec::new();
    for (what, request, allowed) in cases {
        if iam_eval::allows(&policy, &request)? != allowed {
            problems.push(format!(
                "env01's load balancer controller may {what}: {}",
                !allowed
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// The scheduler's role decrypts with labflow's key only its own schedule's data (issue 26
/// item 10): before, any ciphertext of the key.
fn check_scheduler_decrypt(state: &Value) -> Result<()> {
    let policy = state_resources(state)?
        .into_iter()
        .find(|r| r["address"] == json!("aws_iam_role_policy.scheduler"))
        .and_then(|r| r["values"]["policy"].as_str().map(str::to_string))
        .context("no scheduler policy in the state")?;
    let (key, region, account) = labflow_key(state)?;
    let schedule =
        |name: &str| format!("arn:aws:scheduler:{region}:{account}:schedule/default/{name}");
    let decrypt = |context: Option<&str>| {
        let request = iam_eval::Request::new("kms:Decrypt", key);
        match context {
            Some(arn) => request.with("kms:EncryptionContext:aws:scheduler:schedule-arn", arn),
            None => request,
        }
    };
    let own = schedule("labflow-nightly-teardown");
    let other = schedule("someone-elses");
    let mut problems = Vec::new();
    for (what, request, allowed) in [
        ("its own schedule's input", decrypt(Some(&own)), true),
        ("another schedule's input", decrypt(Some(&other)), false),
        (
            "anything without an encryption context",
            decrypt(None),
            false,
        ),
    ] {
        if iam_eval::allows(&policy, &request)? != allowed {
            problems.push(format!("the scheduler may decrypt {what}: {}", !allowed));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

fn check_dns_scope(state: &Value) -> Result<()> {
    let policy_of = |key: &str| pod_identity_policy(state, key);
    let zone = format!(
        "arn:aws:route53:::hostedzone/{}",
        state_resources(state)?
            .into_iter()
            .find(|r| r["address"] == json!("data.aws_route53_zone.main"))
            .and_then(|r| r["values"]["zone_id"].as_str())
            .context("no zone in the state")?
    );
    let domain = format!("env01.{}", ZONE.trim_end_matches('.'));
    let change = |names: &[&str], types: &[&str]| {
        iam_eval::Request::new("route53:ChangeResourceRecordSets", &zone)
            .with_all(
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                names,
            )
            .with_all("route53:ChangeResourceRecordSetsRecordTypes", types)
    };
    let own_app = format!("app.{domain}");
    // What external-dns v0.21 writes for a load balancer host: A and AAAA ALIAS and their
    // registry entries (`cname-` for the A), prefixed `labflow-` (testbed externaldns.rs).
    let own_entries = [
        format!("labflow-cname-app.{domain}"),
        format!("labflow-aaaa-app.{domain}"),
    ];
    let apex_entries = [
        format!("labflow-cname-{domain}"),
        format!("labflow-aaaa-{domain}"),
    ];
    let other_apex_entry = format!("labflow-cname-env02.{}", ZONE.trim_end_matches('.'));
    let own_challenge = format!("_acme-challenge.app.{domain}");
    let apex_challenge = format!("_acme-challenge.{domain}");
    let other_lab = format!("app.env02.{}", ZONE.trim_end_matches('.'));
    let other_challenge = format!("_acme-challenge.app.env02.{}", ZONE.trim_end_matches('.'));
    let zone_apex = ZONE.trim_end_matches('.').to_string();
    let mut problems = Vec::new();
    let external_dns = policy_of("env01:external-dns")?;
    for (names, types, allowed) in [
        (
            vec![own_app.as_str(), &own_entries[0], &own_entries[1]],
            vec!["A", "AAAA", "TXT"],
            true,
        ),
        (
            vec![domain.as_str(), &apex_entries[0], &apex_entries[1]],
            vec!["A", "AAAA", "TXT"],
            true,
        ),
        (vec![other_apex_entry.as_str()], vec!["TXT"], false),
        (vec![other_lab.as_str()], vec!["A"], false),
        (vec![own_app.as_str(), zone_apex.as_str()], vec!["A"], false),
    ] {
        if iam_eval::allows(&external_dns, &change(&names, &types))? != allowed {
            problems.push(format!(
                "external-dns of env01: {names:?} allowed = {}",
                !allowed
            ));
        }
    }
    let cert_manager = policy_of("env01:cert-manager")?;
    for (names, types, allowed) in [
        (vec![own_challenge.as_str()], vec!["TXT"], true),
        (vec![apex_challenge.as_str()], vec!["TXT"], true),
        (vec![other_challenge.as_str()], vec!["TXT"], false),
        (vec![own_app.as_str()], vec!["TXT"], false),
        (vec![own_challenge.as_str()], vec!["A"], false),
    ] {
        if iam_eval::allows(&cert_manager, &change(&names, &types))? != allowed {
            problems.push(format!(
                "cert-manager of env01: {names:?} {types:?} allowed = {}",
                !allowed
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// `passable_roles` in step with the roles (issue 25): ensure-cluster may pass every role an
/// environment's cluster, node groups and Pod Identity associations use, to EKS, and none of
/// the Lambdas' own roles (IAM's `*` spans `-`, so `<prefix>-*-cluster` once matched the role
/// `<prefix>-ensure-cluster`, and an environment named `ensure` would have collided with it).
fn check_passable_roles(state: &Value) -> Result<()> {
    let policy = lambda_policy(state, "ensure-cluster")?.to_string();
    let mut checked = 0;
    for resource in state_resources(state)? {
        if resource["type"] != "aws_iam_role" {
            continue;
        }
        let arn = resource["values"]["arn"]
            .as_str()
            .context("role without arn")?;
        let (passable, service) = match resource["name"].as_str().unwrap_or("") {
            "cluster" | "node" => (true, "eks.amazonaws.com"),
            "pod_identity" => (true, "pods.eks.amazonaws.com"),
            "lambda" => (false, "eks.amazonaws.com"),
            _ => continue,
        };
        let request =
            iam_eval::Request::new("iam:PassRole", arn).with("iam:PassedToService", service);
        let allowed = iam_eval::allows(&policy, &request)?;
        ensure!(
            allowed == passable,
            "ensure-cluster {} pass {arn} to {service}",
            if allowed { "may" } else { "may not" }
        );
        checked += 1;
    }
    ensure!(checked > 9, "only {checked} roles checked");
    Ok(())
}

/// KMS actions a caller of each Step Functions API needs when the state machine is encrypted
/// with a customer managed key, in the encryption context `aws:states:stateMachineArn` = the
/// state machine (Step Functions developer guide, "Data at rest encryption",
/// docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html; the per-API list as
/// given by the Step Functions team in aws-samples/aws-stepfunctions-examples#74:
/// StartExecution needs kms:GenerateDataKey and kms:Decrypt, reading an execution kms:Decrypt).
const STATES_KMS: &[(&str, &[&str])] = &[
    (
        "states:StartExecution",
        &["kms:GenerateDataKey", "kms:Decrypt"],
    ),
    ("states:DescribeExecution", &["kms:Decrypt"]),
    ("states:GetExecutionHistory", &["kms:Decrypt"]),
    ("states:StopExecution", &["kms:Decrypt"]),
];

const STATES_CONTEXT_KEY: &str = "kms:EncryptionContext:aws:states:stateMachineArn";

/// Every policy that may call the state machine's APIs also holds the KMS actions those calls
/// need on its key, for that state machine only; and the known callers (webhook, run-guard,
/// nightly schedule, the operators' policy for `labflow start`/`status`) are among them.
fn check_state_machine_encryption(state: &Value) -> Result<()> {
    let resources = state_resources(state)?;
    let (key_arn, region, account) = labflow_key(state)?;
    let machine = format!("arn:aws:states:{region}:{account}:stateMachine:labflow-lifecycle");
    let other_machine = format!("arn:aws:states:{region}:{account}:stateMachine:someone-else");
    let execution = format!("arn:aws:states:{region}:{account}:execution:labflow-lifecycle:run-1");

    let mut policies: Vec<(String, String)> = Vec::new();
    for resource in &resources {
        let document = match resource["type"].as_str() {
            Some("aws_iam_role_policy" | "aws_iam_policy") => resource["values"]["policy"].as_str(),
            _ => None,
        };
        if let (Some(document), Some(address)) = (document, resource["address"].as_str()) {
            policies.push((address.to_string(), document.to_string()));
        }
    }

    let mut problems = Vec::new();
    let mut callers: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (address, document) in &policies {
        for (operation, kms_actions) in STATES_KMS {
            let target = if *operation == "states:StartExecution" {
                &machine
            } else {
                &execution
            };
            if !iam_eval::allows(document, &iam_eval::Request::new(operation, target))? {
                continue;
            }
            callers
                .entry(address.clone())
                .or_default()
                .insert(operation);
            for kms in *kms_actions {
                let ours = iam_eval::Request::new(kms, key_arn).with(STATES_CONTEXT_KEY, &machine);
                if !iam_eval::allows(document, &ours)? {
                    problems.push(format!(
                        "{address} may call {operation} but not {kms} on the state machine's key"
                    ));
                }
            }
        }
        // Least privilege: data keys only for our state machine's context.
        let foreign = iam_eval::Request::new("kms:GenerateDataKey", key_arn)
            .with(STATES_CONTEXT_KEY, &other_machine);
        if iam_eval::allows(document, &foreign)? {
            problems.push(format!(
                "{address} may generate data keys for any state machine"
            ));
        }
    }
    let expected = [
        (
            "aws_iam_role_policy.lambda[\"github-webhook\"]",
            "states:StartExecution",
        ),
        (
            "aws_iam_role_policy.lambda[\"run-guard\"]",
            "states:DescribeExecution",
        ),
        ("aws_iam_role_policy.scheduler", "states:StartExecution"),
        ("aws_iam_policy.operator", "states:StartExecution"),
        ("aws_iam_policy.operator", "states:GetExecutionHistory"),
    ];
    for (address, operation) in expected {
        if !callers
            .get(address)
            .is_some_and(|ops| ops.contains(operation))
        {
            problems.push(format!("{address} should be able to call {operation}"));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("kms: state machine callers {callers:?}");
    Ok(())
}

/// The operators' policy grants exactly what `labflow start`/`status` call (cli/src/remote).
fn check_operator_policy(state: &Value) -> Result<()> {
    let resource = state_resources(state)?
        .into_iter()
        .find(|r| r["address"] == json!("aws_iam_policy.operator"))
        .context("no aws_iam_policy.operator in the state")?;
    let granted = actions_of(resource["values"]["policy"].as_str().context("no policy")?)?;
    let source_path = repo::root().join("cli/src/remote/mod.rs");
    let source = std::fs::read_to_string(&source_path)?;
    let declared = functions::declared_actions(&source, &source_path.display().to_string())?;
    ensure!(
        granted == declared.all(),
        "the operator policy grants {granted:?}, the CLI declares {:?}",
        declared.all()
    );
    Ok(())
}

#[test]
fn iam_policies_fit_iams_limits_for_one_and_fifty_environments() -> Result<()> {
    // One environment: the Lambda, controller, cluster, node, flow-log, scheduler and state
    // machine roles and the operators' policy.
    let (one, state) = check_policy_sizes(
        1,
        &[
            "aws_iam_role_policy.lambda",
            "aws_iam_role_policy.state_machine",
            "aws_iam_role_policy.pod_identity",
            "aws_iam_role_policy.flow_logs",
            "aws_iam_role_policy.scheduler",
            "aws_iam_policy.operator",
            "aws_iam_role.cluster",
            "aws_iam_role.node",
        ],
    )?;
    // Fifty: the roles whose policies may grow with environments, the Lambdas' and the state
    // machine's (the per-environment roles have the same shape for every environment, so one is
    // checked above).
    let (fifty, fifty_state) = check_policy_sizes(
        50,
        &[
            "aws_iam_role_policy.lambda",
            "aws_iam_role_policy.state_machine",
        ],
    )?;
    for state in [&state, &fifty_state] {
        ensure!(
            state_resources(state)?
                .iter()
                .any(|r| r["address"] == json!("aws_iam_role_policy.state_machine")),
            "the state machine's role policy was not measured"
        );
    }
    check_service_linked_roles(&state)?;
    check_passable_roles(&state)?;
    check_runtime_decrypt(&state)?;
    check_git_credentials(&state)?;
    check_dns_scope(&state)?;
    check_lbc_scope(&state)?;
    check_teardown_sweep_scope(&state)?;
    check_scheduler_decrypt(&state)?;
    check_state_machine_encryption(&state)?;
    check_operator_policy(&state)?;
    eprintln!("iam: largest inline total {one} characters for 1 environment, {fifty} for 50");
    Ok(())
}
