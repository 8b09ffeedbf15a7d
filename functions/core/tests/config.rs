//! Environment config: parsing, every validation rule, unknown fields, and loading from the AWS
//! emulator's SSM over real HTTP.

use anyhow::Result;
use labflow_core::config::{self, EnvironmentConfig};
use labflow_core::StepError;
use serde_json::{json, Value};

/// The example config as `labflow flux pin` leaves it (the committed file carries the placeholder).
fn example() -> Value {
    labflow_testkit::config::example_config()
}

fn parse(value: &Value) -> Result<EnvironmentConfig, StepError> {
    config::parse("lab", &value.to_string())
}

fn invalid_message(value: &Value) -> String {
    match parse(value) {
        Ok(_) => panic!("config unexpectedly valid: {value}"),
        Err(StepError::InvalidInput(message)) => message,
        Err(other) => panic!("wrong error kind: {other:?}"),
    }
}

/// Apply `mutate` to the example and assert the error names `path` with `fragment`.
fn assert_rejected(mutate: impl FnOnce(&mut Value), path: &str, fragment: &str) {
    let mut value = example();
    mutate(&mut value);
    let message = invalid_message(&value);
    let expected = format!("{path}: ");
    assert!(
        message.contains(&expected),
        "expected path {path:?} in: {message}"
    );
    assert!(
        message.contains(fragment),
        "expected {fragment:?} in: {message}"
    );
}

#[test]
fn example_config_is_valid() -> Result<()> {
    let config = parse(&example())?;
    assert_eq!(config.cluster.name, "labflow-lab");
    assert_eq!(config.nodegroups[0].scaling.max, 4);
    assert_eq!(
        config.flux.repository.path_for("lab"),
        "./infra/gitops/clusters/lab"
    );
    assert!(config.nightly_teardown);
    Ok(())
}

#[test]
fn defaults_apply_to_a_minimal_config() -> Result<()> {
    let mut value = example();
    let obj = value.as_object_mut().expect("object");
    for key in [
        "nodegroups",
        "addons",
        "podIdentities",
        "accessPrincipals",
        "healthDeadlineMinutes",
        "nightlyTeardown",
        "protected",
        "tags",
    ] {
        obj.remove(key);
    }
    for key in ["logging", "authenticationMode"] {
        value["cluster"]
            .as_object_mut()
            .expect("object")
            .remove(key);
    }
    let config = parse(&value)?;
    assert_eq!(config.health_deadline_minutes, 30);
    assert!(!config.protected && !config.nightly_teardown);
    assert_eq!(config.cluster.logging.len(), 3);
    // Access entries only: the aws-auth ConfigMap would be a second door into the cluster that
    // labflow does not manage (issue 26 item 7).
    assert_eq!(config.cluster.authentication_mode.as_eks(), "API");
    Ok(())
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let mut value = example();
    value["cluster"]["nmae"] = json!("typo");
    let message = invalid_message(&value);
    assert!(message.contains("cluster"), "{message}");
    assert!(message.contains("unknown field `nmae`"), "{message}");

    let mut value = example();
    value["nodegroups"][0]["scaling"]["maximum"] = json!(3);
    let message = invalid_message(&value);
    assert!(message.contains("nodegroups[0].scaling"), "{message}");
    assert!(message.contains("unknown field `maximum`"), "{message}");
}

#[test]
fn wrong_types_and_enums_are_rejected_with_their_path() {
    assert_rejected(
        |v| v["nodegroups"][0]["capacityType"] = json!("CHEAP"),
        "nodegroups[0].capacityType",
        "unknown variant",
    );
    assert_rejected(
        |v| v["cluster"]["logging"] = json!(["api", "everything"]),
        "cluster.logging[1]",
        "unknown variant",
    );
    assert_rejected(
        |v| v["cluster"]["authenticationMode"] = json!("CONFIG_MAP"),
        "cluster.authenticationMode",
        "unknown variant",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["scaling"]["min"] = json!(-1),
        "nodegroups[0].scaling.min",
        "invalid value",
    );
}

#[test]
fn every_validation_rule() {
    assert_rejected(
        |v| v["addons"][4]["version"] = json!("v1.45.0-eksbuild.2"),
        "addons[4].version",
        "v1.58.0 or later",
    );
    assert_rejected(
        |v| v["addons"][4]["configurationValues"] = json!("controller: {}"),
        "addons[4].configurationValues",
        "JSON object",
    );
    assert_rejected(
        |v| {
            v["addons"][4]["configurationValues"] =
                json!({"controller": {"k8sTagClusterId": "labflow-other-lab"}})
        },
        "addons[4].configurationValues.controller.k8sTagClusterId",
        "must be the cluster's name \"labflow-lab\"",
    );
    assert_rejected(
        |v| v["cluster"]["name"] = json!("bad name!"),
        "cluster.name",
        "letters",
    );
    assert_rejected(
        |v| v["cluster"]["version"] = json!("1.32"),
        "cluster.version",
        "≥ 1.33",
    );
    assert_rejected(
        |v| v["cluster"]["version"] = json!("latest"),
        "cluster.version",
        "must look like",
    );
    assert_rejected(
        |v| v["cluster"]["roleArn"] = json!("my-role"),
        "cluster.roleArn",
        "ARN",
    );
    assert_rejected(
        |v| v["cluster"]["subnetIds"] = json!(["subnet-1"]),
        "cluster.subnetIds",
        "at least 2",
    );
    assert_rejected(
        |v| v["cluster"]["subnetIds"][1] = json!("vpc-1"),
        "cluster.subnetIds[1]",
        "not a subnet id",
    );
    assert_rejected(
        |v| v["cluster"]["subnetIds"][1] = v["cluster"]["subnetIds"][0].clone(),
        "cluster.subnetIds[1].id",
        "duplicate",
    );
    assert_rejected(
        |v| v["cluster"]["securityGroupIds"][0] = json!("group"),
        "cluster.securityGroupIds[0]",
        "not a security group",
    );
    assert_rejected(
        |v| v["cluster"]["endpointAccess"] = json!({"public": false, "private": false}),
        "cluster.endpointAccess",
        "both be off",
    );
    assert_rejected(
        |v| {
            v["cluster"]["endpointAccess"] =
                json!({"public": false, "private": true, "publicCidrs": ["1.2.3.4/32"]})
        },
        "cluster.endpointAccess.publicCidrs",
        "public access is off",
    );
    assert_rejected(
        |v| v["cluster"]["endpointAccess"]["publicCidrs"] = json!(["10.0.0.0/33"]),
        "cluster.endpointAccess.publicCidrs[0]",
        "CIDR",
    );
    assert_rejected(
        |v| v["cluster"]["kmsKeyArn"] = json!("alias/foo"),
        "cluster.kmsKeyArn",
        "ARN",
    );
    assert_rejected(
        |v| v["cluster"]["logging"] = json!(["api", "api"]),
        "cluster.logging[1]",
        "duplicate",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["scaling"] = json!({"min": 3, "max": 2, "desired": 2}),
        "nodegroups[0].scaling.min",
        "must be ≤ max",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["scaling"] = json!({"min": 1, "max": 2, "desired": 5}),
        "nodegroups[0].scaling.desired",
        "between min and max",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["scaling"] = json!({"min": 0, "max": 0, "desired": 0}),
        "nodegroups[0].scaling.max",
        "≥ 1",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["name"] = json!("Spot_General"),
        "nodegroups[0].name",
        "letters",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["nodeRoleArn"] = json!("arn:aws:iam::1:user/x"),
        "nodegroups[0].nodeRoleArn",
        "ARN",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["subnetIds"] = json!(["subnet-elsewhere"]),
        "nodegroups[0].subnetIds[0]",
        "not one of cluster.subnetIds",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["instanceTypes"] = json!([]),
        "nodegroups[0].instanceTypes",
        "at least one",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["instanceTypes"] = json!(["big"]),
        "nodegroups[0].instanceTypes[0]",
        "not an instance type",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["diskSizeGib"] = json!(5),
        "nodegroups[0].diskSizeGib",
        "between 20",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["taints"] = json!([{"key": "", "effect": "NO_SCHEDULE"}]),
        "nodegroups[0].taints[0].key",
        "empty",
    );
    assert_rejected(
        |v| {
            let ng = v["nodegroups"][0].clone();
            v["nodegroups"].as_array_mut().expect("array").push(ng);
        },
        "nodegroups[1].name",
        "duplicate",
    );
    assert_rejected(
        |v| v["addons"][0]["name"] = json!("istio"),
        "addons[0].name",
        "unknown add-on",
    );
    assert_rejected(
        |v| v["addons"][1]["name"] = json!("vpc-cni"),
        "addons[1].name",
        "duplicate",
    );
    assert_rejected(
        |v| v["addons"][0]["version"] = json!("1.2"),
        "addons[0].version",
        "v1.2.3",
    );
    assert_rejected(
        |v| v["podIdentities"][0]["namespace"] = json!("Kube_System"),
        "podIdentities[0].namespace",
        "Kubernetes name",
    );
    assert_rejected(
        |v| v["podIdentities"][0]["serviceAccount"] = json!(""),
        "podIdentities[0].serviceAccount",
        "empty",
    );
    assert_rejected(
        |v| v["podIdentities"][0]["roleArn"] = json!("x"),
        "podIdentities[0].roleArn",
        "ARN",
    );
    assert_rejected(
        |v| v["podIdentities"][1] = v["podIdentities"][0].clone(),
        "podIdentities[1]",
        "duplicate association",
    );
    assert_rejected(
        |v| {
            v["accessPrincipals"][0]["principalArn"] =
                json!("arn:aws:sts::123456789012:assumed-role/admin/session")
        },
        "accessPrincipals[0].principalArn",
        "not an assumed-role",
    );
    assert_rejected(
        |v| v["accessPrincipals"][0]["principalArn"] = json!("bob"),
        "accessPrincipals[0].principalArn",
        "IAM role or user",
    );
    assert_rejected(
        |v| v["accessPrincipals"][0]["policies"] = json!(["arn:aws:iam::aws:policy/Admin"]),
        "accessPrincipals[0].policies[0]",
        "access policy",
    );
    assert_rejected(
        |v| v["accessPrincipals"][0]["kubernetesGroups"] = json!(["system:masters"]),
        "accessPrincipals[0].kubernetesGroups[0]",
        "not starting with system:",
    );
    // EKS refuses a disk size beside a launch template (CreateNodegroup API reference).
    assert_rejected(
        |v| {
            v["nodegroups"][0]["launchTemplate"] =
                json!({"id": "lt-0123456789abcdef0", "version": "1"});
            v["nodegroups"][0]["diskSizeGib"] = json!(50);
        },
        "nodegroups[0].diskSizeGib",
        "launch template",
    );
    assert_rejected(
        |v| v["nodegroups"][0]["launchTemplate"] = json!({"id": "template", "version": "1"}),
        "nodegroups[0].launchTemplate.id",
        "launch template id",
    );
    // Another account's principal would get cluster admin of our lab.
    assert_rejected(
        |v| {
            v["accessPrincipals"][0]["principalArn"] =
                json!("arn:aws:iam::999999999999:role/outsider")
        },
        "accessPrincipals[0].principalArn",
        "not the lab's account \"123456789012\"",
    );
    assert_rejected(
        |v| v["accessPrincipals"] = json!([{"principalArn": "arn:aws:iam::123456789012:role/a"}, {"principalArn": "arn:aws:iam::123456789012:role/a"}]),
        "accessPrincipals[1].principalArn",
        "duplicate",
    );
    assert_rejected(
        |v| v["flux"]["version"] = json!("2.7"),
        "flux.version",
        "exact version",
    );
    assert_rejected(
        |v| v["flux"]["version"] = json!("2.6.0"),
        "flux.version",
        "≥ 2.7",
    );
    assert_rejected(
        |v| v["flux"]["manifestUrl"] = json!("ftp://x/install.yaml"),
        "flux.manifestUrl",
        "https",
    );
    assert_rejected(
        |v| v["flux"]["manifestSha256"] = json!("ABC"),
        "flux.manifestSha256",
        "64 lower-case hex",
    );
    assert_rejected(
        |v| v["flux"]["repository"]["url"] = json!("git@github.com:x/y"),
        "flux.repository.url",
        "https",
    );
    assert_rejected(
        |v| v["flux"]["repository"]["branch"] = json!(" "),
        "flux.repository.branch",
        "empty",
    );
    assert_rejected(
        |v| v["flux"]["repository"]["path"] = json!("/abs/../x"),
        "flux.repository.path",
        "relative",
    );
    assert_rejected(
        |v| v["flux"]["repository"]["interval"] = json!("soon"),
        "flux.repository.interval",
        "duration",
    );
    assert_rejected(
        |v| v["dns"]["hostedZoneId"] = json!("zone-1"),
        "dns.hostedZoneId",
        "hosted zone id",
    );
    assert_rejected(
        |v| v["dns"]["domain"] = json!("localhost"),
        "dns.domain",
        "domain name",
    );
    assert_rejected(
        |v| v["dns"]["ownerId"] = json!("two words"),
        "dns.ownerId",
        "without spaces",
    );
    assert_rejected(
        |v| v["dns"]["certificateArn"] = json!("arn:aws:iam::1:role/x"),
        "dns.certificateArn",
        "ARN",
    );
    assert_rejected(
        |v| v["healthDeadlineMinutes"] = json!(0),
        "healthDeadlineMinutes",
        "between 1 and 1440",
    );
    assert_rejected(
        |v| v["tags"]["aws:createdBy"] = json!("me"),
        "tags.aws:createdBy",
        "reserved",
    );
    assert_rejected(
        |v| v["tags"]["labflow:environment"] = json!("other"),
        "tags.labflow:environment",
        "set by labflow",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut value = example();
    value["cluster"]["version"] = json!("1.20");
    value["nodegroups"][0]["scaling"] = json!({"min": 5, "max": 4, "desired": 4});
    value["dns"]["ownerId"] = json!("");
    let message = invalid_message(&value);
    for path in [
        "cluster.version: ",
        "nodegroups[0].scaling.min: must be ≤ max",
        "dns.ownerId: ",
    ] {
        assert!(message.contains(path), "missing {path:?} in {message}");
    }
    assert_eq!(message.matches("; ").count(), 3, "four problems: {message}");
}

#[test]
fn environment_names_are_checked() {
    for bad in ["", "Lab", "lab/../x", "1lab", "lab env"] {
        assert!(
            config::check_environment_name(bad).is_err(),
            "{bad:?} accepted"
        );
    }
    assert!(config::check_environment_name("lab-2").is_ok());
}

mod ssm {
    use super::*;
    use aws_sdk_ssm::types::ParameterType;

    async fn client() -> Result<aws_sdk_ssm::Client> {
        let moto = labflow_testbed::moto::shared()?;
        let config = aws_sdk_ssm::config::Builder::new()
            .http_client(labflow_core::aws::https_client())
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        Ok(aws_sdk_ssm::Client::from_conf(config))
    }

    #[tokio::test]
    async fn missing_parameter_names_the_environment_and_parameter() -> Result<()> {
        let ssm = client().await?;
        let err = config::load(&ssm, "nowhere", &config::Checks::create(true))
            .await
            .expect_err("no such parameter");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert_eq!(
            err.to_string(),
            "environment \"nowhere\" is not configured (no SSM parameter /labflow/environments/nowhere)"
        );
        Ok(())
    }

    #[tokio::test]
    async fn config_loads_from_ssm() -> Result<()> {
        let ssm = client().await?;
        ssm.put_parameter()
            .name("/labflow/environments/ssm-load")
            .value(labflow_testkit::config::example_config_json())
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await?;
        let config = config::load(&ssm, "ssm-load", &config::Checks::create(true)).await?;
        assert_eq!(config.cluster.name, "labflow-lab");
        Ok(())
    }

    #[tokio::test]
    async fn invalid_config_in_ssm_is_invalid_input() -> Result<()> {
        let ssm = client().await?;
        ssm.put_parameter()
            .name("/labflow/environments/ssm-bad")
            .value("{\"cluster\": 1}")
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await?;
        let err = config::load(&ssm, "ssm-bad", &config::Checks::create(true))
            .await
            .expect_err("invalid");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert!(err.to_string().contains("cluster"), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn unreachable_ssm_is_transient() -> Result<()> {
        let port = labflow_testbed::moto::free_port()?;
        let config = aws_sdk_ssm::config::Builder::new()
            .http_client(labflow_core::aws::https_client())
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
            .build();
        let ssm = aws_sdk_ssm::Client::from_conf(config);
        let err = config::load(&ssm, "lab", &config::Checks::create(true))
            .await
            .expect_err("nothing listens");
        assert_eq!(err.name(), "labflow.Transient", "{err}");
        Ok(())
    }
}
