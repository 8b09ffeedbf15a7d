//! Route53 through the testbed's AWS endpoint answers ChangeResourceRecordSets the way Route53
//! does, where moto alone is lenient (issue 18 item 13): a DELETE must name an existing record
//! set with exactly its current values, a CREATE must not meet an existing one, the batch is
//! validated change by change and applied all or nothing, and a refused batch is
//! `InvalidChangeBatch` (HTTP 400) listing every problem.
//! https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html

use anyhow::{bail, ensure, Context as _};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;

async fn client() -> anyhow::Result<Client> {
    let moto = tokio::task::spawn_blocking(labflow_testbed::moto::shared).await??;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(labflow_testbed::controllers::aws::https_client())
        .endpoint_url(moto.endpoint())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    Ok(Client::new(&config))
}

async fn zone(client: &Client, domain: &str) -> anyhow::Result<String> {
    let out = client
        .create_hosted_zone()
        .name(domain)
        .caller_reference(format!("{domain}-{}", uuid::Uuid::new_v4()))
        .send()
        .await?;
    let id = out.hosted_zone().context("no hosted zone")?.id();
    Ok(id.trim_start_matches("/hostedzone/").to_string())
}

fn a(name: &str, ttl: i64, values: &[&str]) -> anyhow::Result<ResourceRecordSet> {
    let mut set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(ttl);
    for v in values {
        set = set.resource_records(ResourceRecord::builder().value(*v).build()?);
    }
    Ok(set.build()?)
}

fn txt(name: &str, value: &str) -> anyhow::Result<ResourceRecordSet> {
    Ok(ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build()?)
        .build()?)
}

fn change(action: ChangeAction, set: ResourceRecordSet) -> anyhow::Result<Change> {
    Ok(Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()?)
}

async fn send(client: &Client, zone_id: &str, changes: Vec<Change>) -> Result<(), String> {
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .map_err(|e| e.to_string())?;
    match client
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            match err.into_service_error() {
                ChangeResourceRecordSetsError::InvalidChangeBatch(e) => Err(format!(
                    "InvalidChangeBatch {status:?}: {}",
                    e.message().unwrap_or_default()
                )),
                other => Err(format!("other error {status:?}: {other:?}")),
            }
        }
    }
}

async fn records(client: &Client, zone_id: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await?;
    let mut all: Vec<(String, String)> = out
        .resource_record_sets()
        .iter()
        .filter(|s| !matches!(s.r#type(), RrType::Ns | RrType::Soa))
        .map(|s| (s.name().to_string(), s.r#type().as_str().to_string()))
        .collect();
    all.sort();
    Ok(all)
}

#[tokio::test]
async fn delete_of_a_missing_or_different_record_is_invalid_change_batch() -> anyhow::Result<()> {
    let client = client().await?;
    let zone_id = zone(&client, "rules-delete.example.com").await?;
    let host = "web.rules-delete.example.com";
    send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Create,
            a(host, 60, &["192.0.2.1", "192.0.2.2"])?,
        )?],
    )
    .await
    .map_err(anyhow::Error::msg)?;

    // Never existed.
    let missing = send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Delete,
            a("gone.rules-delete.example.com", 60, &["192.0.2.9"])?,
        )?],
    )
    .await;
    ensure!(
        missing.as_ref().err().is_some_and(|e| e.starts_with("InvalidChangeBatch Some(400)")
            && e.contains("Tried to delete resource record set [name='gone.rules-delete.example.com.', type='A'] but it was not found")),
        "{missing:?}"
    );
    // Other TTL, other values.
    for wrong in [
        a(host, 300, &["192.0.2.1", "192.0.2.2"])?,
        a(host, 60, &["192.0.2.1"])?,
    ] {
        let refused = send(
            &client,
            &zone_id,
            vec![change(ChangeAction::Delete, wrong)?],
        )
        .await;
        ensure!(
            refused.as_ref().err().is_some_and(|e| e.contains(
                "Tried to delete resource record set [name='web.rules-delete.example.com.', type='A'] but the values provided do not match the current values"
            )),
            "{refused:?}"
        );
    }
    // The exact values delete it (the name may carry the root's dot); a second delete finds
    // nothing. (Route53 compares the values as a set; moto's own journal check behind the rule
    // layer also wants them in the order they were created in, which listing preserves.)
    send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Delete,
            a(&format!("{host}."), 60, &["192.0.2.1", "192.0.2.2"])?,
        )?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let again = send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Delete,
            a(host, 60, &["192.0.2.1", "192.0.2.2"])?,
        )?],
    )
    .await;
    ensure!(
        again
            .as_ref()
            .err()
            .is_some_and(|e| e.contains("but it was not found")),
        "deleting a deleted record: {again:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_batch_changes_nothing_and_names_every_problem() -> anyhow::Result<()> {
    let client = client().await?;
    let zone_id = zone(&client, "rules-batch.example.com").await?;
    let keep = "keep.rules-batch.example.com";
    let owner = "\"heritage=external-dns,external-dns/owner=o\"";
    send(
        &client,
        &zone_id,
        vec![
            change(ChangeAction::Create, a(keep, 60, &["192.0.2.1"])?)?,
            change(
                ChangeAction::Create,
                txt("a-keep.rules-batch.example.com", owner)?,
            )?,
        ],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let before = records(&client, &zone_id).await?;

    // A valid delete, a delete of something missing and a create of something existing: all
    // refused together, nothing applied.
    let refused = send(
        &client,
        &zone_id,
        vec![
            change(ChangeAction::Delete, a(keep, 60, &["192.0.2.1"])?)?,
            change(
                ChangeAction::Delete,
                txt("missing.rules-batch.example.com", owner)?,
            )?,
            change(
                ChangeAction::Create,
                txt("a-keep.rules-batch.example.com", owner)?,
            )?,
        ],
    )
    .await;
    let Err(message) = refused else {
        bail!("the batch was accepted");
    };
    ensure!(
        message.contains("[name='missing.rules-batch.example.com.', type='TXT'] but it was not found")
            && message.contains("Tried to create resource record set [name='a-keep.rules-batch.example.com.', type='TXT'] but it already exists"),
        "{message}"
    );
    ensure!(
        records(&client, &zone_id).await? == before,
        "nothing changed"
    );

    // The same record set twice in one batch: the second delete finds it gone.
    let twice = send(
        &client,
        &zone_id,
        vec![
            change(ChangeAction::Delete, a(keep, 60, &["192.0.2.1"])?)?,
            change(ChangeAction::Delete, a(keep, 60, &["192.0.2.1"])?)?,
        ],
    )
    .await;
    ensure!(
        twice
            .as_ref()
            .err()
            .is_some_and(|e| e.contains("but it was not found")),
        "{twice:?}"
    );
    ensure!(
        records(&client, &zone_id).await? == before,
        "nothing changed"
    );

    // Changes are validated in order: delete then re-create is how a record is replaced.
    send(
        &client,
        &zone_id,
        vec![
            change(ChangeAction::Delete, a(keep, 60, &["192.0.2.1"])?)?,
            change(ChangeAction::Create, a(keep, 120, &["192.0.2.7"])?)?,
        ],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ensure!(records(&client, &zone_id).await? == before);
    Ok(())
}

#[tokio::test]
async fn alias_records_are_matched_on_their_target() -> anyhow::Result<()> {
    let client = client().await?;
    let zone_id = zone(&client, "rules-alias.example.com").await?;
    let alias = |dns: &str| -> anyhow::Result<ResourceRecordSet> {
        Ok(ResourceRecordSet::builder()
            .name("app.rules-alias.example.com")
            .r#type(RrType::A)
            .alias_target(
                AliasTarget::builder()
                    .hosted_zone_id("Z32O12XQLNTSW2")
                    .dns_name(dns)
                    .evaluate_target_health(true)
                    .build()?,
            )
            .build()?)
    };
    send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Create,
            alias("k8s-web-1234.eu-west-1.elb.amazonaws.com")?,
        )?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let other = send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Delete,
            alias("k8s-other-9999.eu-west-1.elb.amazonaws.com")?,
        )?],
    )
    .await;
    ensure!(
        other
            .as_ref()
            .err()
            .is_some_and(|e| e.contains("do not match the current values")),
        "{other:?}"
    );
    send(
        &client,
        &zone_id,
        vec![change(
            ChangeAction::Delete,
            alias("K8S-web-1234.eu-west-1.elb.amazonaws.com.")?,
        )?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    Ok(())
}

#[tokio::test]
async fn other_services_pass_through_unchanged() -> anyhow::Result<()> {
    let moto = tokio::task::spawn_blocking(labflow_testbed::moto::shared).await??;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(labflow_testbed::controllers::aws::https_client())
        .endpoint_url(moto.endpoint())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let value = "x".repeat(4096);
    ssm.put_parameter()
        .name("/rules/passthrough")
        .value(&value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await?;
    let got = ssm
        .get_parameter()
        .name("/rules/passthrough")
        .send()
        .await?;
    ensure!(got.parameter().and_then(|p| p.value()) == Some(value.as_str()));
    let missing = ssm.get_parameter().name("/rules/missing").send().await;
    ensure!(
        missing
            .err()
            .and_then(|e| e
                .into_service_error()
                .is_parameter_not_found()
                .then_some(()))
            .is_some(),
        "moto's errors come through"
    );
    Ok(())
}

#[tokio::test]
async fn fault_hook_removes_a_record_before_the_next_change() -> anyhow::Result<()> {
    let client = client().await?;
    let moto = tokio::task::spawn_blocking(labflow_testbed::moto::shared).await??;
    let zone_id = zone(&client, "rules-vanish.example.com").await?;
    let host = "web.rules-vanish.example.com";
    send(
        &client,
        &zone_id,
        vec![change(ChangeAction::Create, a(host, 60, &["192.0.2.1"])?)?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    moto.route53_faults()
        .vanish_before_next_change(&format!("/hostedzone/{zone_id}"), host, "A");
    let late = send(
        &client,
        &zone_id,
        vec![change(ChangeAction::Delete, a(host, 60, &["192.0.2.1"])?)?],
    )
    .await;
    ensure!(
        late.as_ref()
            .err()
            .is_some_and(|e| e.contains("but it was not found")),
        "{late:?}"
    );
    ensure!(records(&client, &zone_id).await?.is_empty());
    // Once only.
    send(
        &client,
        &zone_id,
        vec![change(ChangeAction::Create, a(host, 60, &["192.0.2.1"])?)?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ensure!(records(&client, &zone_id).await?.len() == 1);
    Ok(())
}

#[tokio::test]
async fn step_functions_refuses_an_execution_input_over_256_kib() -> anyhow::Result<()> {
    let moto = tokio::task::spawn_blocking(labflow_testbed::moto::shared).await??;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(labflow_testbed::controllers::aws::https_client())
        .endpoint_url(moto.endpoint())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let machine = sfn
        .create_state_machine()
        .name(format!("rules-size-{}", uuid::Uuid::new_v4().simple()))
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/x")
        .send()
        .await?;
    let at_limit = format!("{{\"a\":\"{}\"}}", "x".repeat(262_144 - 8));
    ensure!(at_limit.len() == 262_144);
    sfn.start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("at-limit")
        .input(&at_limit)
        .send()
        .await?;
    let over = format!("{{\"a\":\"{}\"}}", "é".repeat(131_069));
    ensure!(over.chars().count() < 262_144 && over.len() > 262_144);
    let err = match sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("over")
        .input(&over)
        .send()
        .await
    {
        Ok(out) => bail!("started {out:?}"),
        Err(err) => err,
    };
    let meta = aws_sdk_sfn::error::ProvideErrorMetadata::code(&err).map(str::to_string);
    ensure!(
        meta.as_deref() == Some("ValidationException"),
        "{:?}",
        aws_sdk_sfn::error::DisplayErrorContext(&err)
    );
    Ok(())
}
