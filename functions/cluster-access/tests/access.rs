//! cluster-access end to end against the testbed: the EKS simulator (non-zero CREATING delays,
//! real REST-JSON through aws-sdk-eks), moto for SSM and STS, and the cluster's kubesim reached
//! over HTTPS with the CA DescribeCluster returns and an EKS token signed by an STS role
//! session — the identity a Lambda has.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use labflow_cluster_access::{handle, Ctx, Input, Output, Phase};
use labflow_core::aws::AwsClients;
use labflow_core::config::CLUSTER_ADMIN_POLICY;
use labflow_testbed::eks::{EksDelays, EksOptions};
use labflow_testbed::{Testbed, TestbedOptions};
use pretty_assertions::assert_eq;
use serde_json::json;

const AUTOMATION_ROLE: &str = "arn:aws:iam::123456789012:role/labflow-automation";
const PEOPLE_ROLE: &str = "arn:aws:iam::123456789012:role/platform-engineers";
const CONVERGE: Duration = Duration::from_secs(20);

/// The testbed with non-zero EKS transitions and the STS role session the step runs as.
struct World {
    tb: Testbed,
    session: Credentials,
}

async fn world() -> anyhow::Result<World> {
    let tb = Testbed::start(TestbedOptions {
        eks: EksOptions {
            delays: EksDelays::uniform(
                Duration::from_millis(400),
                Duration::from_millis(200),
                Duration::from_millis(150),
            ),
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    let session = tb
        .role_session(AUTOMATION_ROLE, "labflow-cluster-access")
        .await?;
    Ok(World { tb, session })
}

impl World {
    /// The step's clients: the role session; EKS (and SSM) with the crash interceptor.
    async fn ctx(&self, crash: &CrashAfterWrite) -> Ctx {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(labflow_core::aws::https_client())
            .region(Region::new(self.tb.region().to_string()))
            .credentials_provider(self.session.clone())
            .endpoint_url(self.tb.aws_endpoint())
            .load()
            .await;
        let mut aws = AwsClients::from_config(sdk.clone());
        aws.eks = aws_sdk_eks::Client::from_conf(
            aws_sdk_eks::config::Builder::from(&sdk)
                .endpoint_url(self.tb.eks_endpoint())
                .interceptor(crash.clone())
                .build(),
        );
        aws.ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&sdk)
                .interceptor(crash.clone())
                .build(),
        );
        let mut ctx = Ctx::new(aws);
        ctx.automation_role_arn = None;
        ctx
    }

    /// Admin clients (the testbed's own credentials), for seeding and looking.
    async fn admin(&self) -> AwsClients {
        AwsClients::from_config(self.tb.sdk_config().await)
            .with_eks_endpoint(self.tb.eks_endpoint())
    }

    /// `labflow-<env>` created as ensure-cluster leaves it (tagged, API_AND_CONFIG_MAP), still
    /// CREATING; the environment config in SSM.
    async fn environment(&self, prefix: &str) -> anyhow::Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let env = format!("{prefix}-{}", &id[..8]);
        let admin = self.admin().await;
        self.store_config(&env, |_| {}).await?;
        labflow_testkit::eks::owned_by(
            labflow_testkit::eks::create_cluster(
                &admin.eks,
                &cluster(&env),
                "arn:aws:iam::123456789012:role/labflow-lab-cluster",
            ),
            &env,
        )
        .send()
        .await?;
        Ok(env)
    }

    /// Stores the example config, made `env`'s and changed by `change`, as `env`'s config.
    async fn store_config(
        &self,
        env: &str,
        change: impl FnOnce(&mut serde_json::Value),
    ) -> anyhow::Result<()> {
        let mut config = labflow_testkit::config::example_config();
        config["cluster"]["name"] = json!(cluster(env));
        config["dns"]["ownerId"] = json!(cluster(env));
        change(&mut config);
        self.admin()
            .await
            .ssm
            .put_parameter()
            .name(labflow_core::config::parameter_name(env))
            .value(config.to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await?;
        Ok(())
    }

    /// EKS write operations in the simulator's log for one cluster, counted.
    fn eks_writes(&self, env: &str) -> BTreeMap<String, usize> {
        let path = format!("/clusters/{}/", cluster(env));
        let mut m = BTreeMap::new();
        for r in self.tb.eks().write_requests() {
            if r.path.contains(&path) {
                *m.entry(r.operation).or_default() += 1;
            }
        }
        m
    }
}

fn cluster(env: &str) -> String {
    format!("labflow-{env}")
}

fn input(env: &str) -> anyhow::Result<Input> {
    Ok(serde_json::from_value(json!({
        "environment": env,
        "action": "create",
        "source": {"kind": "console", "requestedBy": "test"},
        "executionArn": "arn:aws:states:eu-west-1:123456789012:execution:labflow-lifecycle:test",
    }))?)
}

/// Calls the step the way the state machine does until it reports `done`.
async fn converge(ctx: &Ctx, env: &str) -> anyhow::Result<Vec<Output>> {
    let deadline = Instant::now() + CONVERGE;
    let mut outputs = Vec::new();
    loop {
        let call = Instant::now();
        let output = handle(ctx, input(env)?)
            .await
            .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
        let took = call.elapsed();
        anyhow::ensure!(took < Duration::from_secs(5), "one call took {took:?}");
        let done = output.done;
        outputs.push(output);
        if done {
            return Ok(outputs);
        }
        if Instant::now() > deadline {
            bail!("not done after {CONVERGE:?}: {:?}", outputs.last());
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

/// What a converged environment must look like in EKS and SSM.
async fn assert_converged(w: &World, env: &str) -> anyhow::Result<String> {
    let admin = w.admin().await;
    for principal in [AUTOMATION_ROLE, PEOPLE_ROLE] {
        let entry = admin
            .eks
            .describe_access_entry()
            .cluster_name(cluster(env))
            .principal_arn(principal)
            .send()
            .await
            .with_context(|| format!("access entry of {principal}"))?
            .access_entry
            .context("no access entry")?;
        let tags = entry.tags().cloned().unwrap_or_default();
        assert_eq!(
            tags.get("labflow:environment").map(String::as_str),
            Some(env)
        );
        assert_eq!(
            tags.get("labflow:managed-by").map(String::as_str),
            Some("labflow")
        );
        let policies = admin
            .eks
            .list_associated_access_policies()
            .cluster_name(cluster(env))
            .principal_arn(principal)
            .send()
            .await?;
        let listed: Vec<(String, String)> = policies
            .associated_access_policies()
            .iter()
            .map(|p| {
                (
                    p.policy_arn().unwrap_or_default().to_string(),
                    p.access_scope()
                        .and_then(|s| s.r#type())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [(CLUSTER_ADMIN_POLICY.to_string(), "cluster".to_string())],
            "{principal}"
        );
    }
    let kubeconfig = admin
        .ssm
        .get_parameter()
        .name(format!("/labflow/environments/{env}/kubeconfig"))
        .send()
        .await
        .context("the kubeconfig parameter")?
        .parameter
        .and_then(|p| p.value)
        .context("no kubeconfig value")?;
    Ok(kubeconfig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_end_to_end_and_a_second_run_writes_nothing() -> anyhow::Result<()> {
    let w = world().await?;
    let env = w.environment("access").await?;
    let crash = CrashAfterWrite::default();
    let ctx = w.ctx(&crash).await;
    w.tb.eks().clear_requests();

    let outputs = converge(&ctx, &env).await?;
    // EKS took its time: the first answers say the cluster is not ready, and write nothing.
    let first = &outputs[0];
    assert_eq!(first.phase, Phase::ClusterNotReady, "{first:?}");
    assert!(!first.done && first.changes.is_empty());
    assert!(
        first
            .waiting_for
            .as_deref()
            .is_some_and(|r| r.contains("CREATING")),
        "{first:?}"
    );
    let last = outputs.last().context("no output")?;
    assert!(last.done);
    assert_eq!(last.phase, Phase::Ready);
    assert_eq!(last.automation_role_arn.as_deref(), Some(AUTOMATION_ROLE));
    assert!(
        last.kubernetes_version
            .as_deref()
            .is_some_and(|v| v.starts_with("v1.")),
        "{last:?}"
    );
    assert!(last.waiting_for.is_none());
    let principals: Vec<(&str, Vec<&str>)> = last
        .principals
        .iter()
        .map(|p| {
            (
                p.principal_arn.as_str(),
                p.policies.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        principals,
        [
            (PEOPLE_ROLE, vec![CLUSTER_ADMIN_POLICY]),
            (AUTOMATION_ROLE, vec![CLUSTER_ADMIN_POLICY])
        ]
    );
    let changes: Vec<String> = outputs
        .iter()
        .flat_map(|o| &o.changes)
        .map(|c| format!("{} {}", c.action, c.resource))
        .collect();
    let parameter = format!("/labflow/environments/{env}/kubeconfig");
    assert_eq!(
        changes,
        [
            format!("create accessEntry/{PEOPLE_ROLE}"),
            format!("associate-policy accessEntry/{PEOPLE_ROLE}"),
            format!("create accessEntry/{AUTOMATION_ROLE}"),
            format!("associate-policy accessEntry/{AUTOMATION_ROLE}"),
            format!("create ssmParameter/{parameter}"),
        ]
    );
    assert_eq!(last.kubeconfig_parameter, parameter);
    assert_eq!(
        w.eks_writes(&env),
        BTreeMap::from([
            ("AssociateAccessPolicy".to_string(), 2),
            ("CreateAccessEntry".to_string(), 2)
        ])
    );

    // The kubeconfig: endpoint and CA of the cluster, the exec plugin, nothing secret.
    let kubeconfig = assert_converged(&w, &env).await?;
    let described = w
        .admin()
        .await
        .eks
        .describe_cluster()
        .name(cluster(&env))
        .send()
        .await?
        .cluster
        .context("no cluster")?;
    let endpoint = described.endpoint().context("endpoint")?.to_string();
    let ca = described
        .certificate_authority()
        .and_then(|c| c.data())
        .context("CA")?
        .to_string();
    assert_eq!(last.endpoint.as_deref(), Some(endpoint.as_str()));
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&kubeconfig)?;
    let name = cluster(&env);
    assert_eq!(doc["current-context"].as_str(), Some(name.as_str()));
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"].as_str(),
        Some(endpoint.as_str())
    );
    assert_eq!(
        doc["clusters"][0]["cluster"]["certificate-authority-data"].as_str(),
        Some(ca.as_str())
    );
    let exec = &doc["users"][0]["user"]["exec"];
    assert_eq!(exec["command"].as_str(), Some("aws"));
    let args: Vec<&str> = exec["args"]
        .as_sequence()
        .context("exec args")?
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(
        args,
        [
            "eks",
            "get-token",
            "--cluster-name",
            name.as_str(),
            "--region",
            "eu-west-1"
        ]
    );
    assert!(doc["users"][0]["user"].get("token").is_none());
    // What the exec plugin would produce (an EKS token of the session) opens the cluster with
    // exactly the server and CA the kubeconfig names.
    let token = labflow_core::eks_token::generate_from_config(&ctx.aws.config, &name).await?;
    let client = labflow_core::kube_client::client_for(&endpoint, &ca, &token).await?;
    let version = client.apiserver_version().await?;
    assert_eq!(
        Some(version.git_version.as_str()),
        last.kubernetes_version.as_deref()
    );

    // A second full run: done at once, no write call of any kind.
    let version_before = parameter_version(&w, &parameter).await?;
    w.tb.eks().clear_requests();
    let again = converge(&ctx, &env).await?;
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].changes.is_empty(), "{:?}", again[0].changes);
    assert_eq!(w.eks_writes(&env), BTreeMap::new());
    assert!(
        !w.tb.eks().requests().is_empty(),
        "the second run did not even look"
    );
    assert_eq!(crash.writes(), 5, "only the first run's five writes");
    assert_eq!(parameter_version(&w, &parameter).await?, version_before);
    assert_eq!(assert_converged(&w, &env).await?, kubeconfig);
    Ok(())
}

/// The cluster-scoped access policies `principal` has.
async fn policies_of(w: &World, env: &str, principal: &str) -> anyhow::Result<Vec<String>> {
    let out = w
        .admin()
        .await
        .eks
        .list_associated_access_policies()
        .cluster_name(cluster(env))
        .principal_arn(principal)
        .send()
        .await?;
    let mut policies: Vec<String> = out
        .associated_access_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    policies.sort();
    Ok(policies)
}

/// Access follows the config both ways (issue 26 item 7): a policy taken from a principal is
/// disassociated, a principal taken from the config loses its access entry, and entries labflow
/// did not make (no ownership tags: EKS's own for node roles, someone's by hand) are left alone.
#[tokio::test]
async fn access_taken_from_the_config_is_revoked() -> anyhow::Result<()> {
    const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
    const BY_HAND: &str = "arn:aws:iam::123456789012:role/break-glass";
    let w = world().await?;
    let env = w.environment("revoke").await?;
    let ctx = w.ctx(&CrashAfterWrite::default()).await;
    converge(&ctx, &env).await?;
    assert_eq!(
        policies_of(&w, &env, PEOPLE_ROLE).await?,
        [CLUSTER_ADMIN_POLICY]
    );
    w.admin()
        .await
        .eks
        .create_access_entry()
        .cluster_name(cluster(&env))
        .principal_arn(BY_HAND)
        .send()
        .await?;

    // The engineers are down to viewing.
    w.store_config(&env, |c| {
        c["accessPrincipals"] = json!([{"principalArn": PEOPLE_ROLE, "policies": [VIEW_POLICY]}])
    })
    .await?;
    converge(&ctx, &env).await?;
    assert_eq!(policies_of(&w, &env, PEOPLE_ROLE).await?, [VIEW_POLICY]);

    // ... then out.
    w.store_config(&env, |c| c["accessPrincipals"] = json!([]))
        .await?;
    let outputs = converge(&ctx, &env).await?;
    let described = w
        .admin()
        .await
        .eks
        .describe_access_entry()
        .cluster_name(cluster(&env))
        .principal_arn(PEOPLE_ROLE)
        .send()
        .await;
    assert!(
        described
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "the engineers still have an access entry: {described:?}"
    );
    let changes: Vec<_> = outputs.iter().flat_map(|o| o.changes.iter()).collect();
    assert!(
        changes
            .iter()
            .any(|c| c.action == "delete" && c.resource.contains(PEOPLE_ROLE)),
        "{changes:?}"
    );
    // The automation role keeps its access; the entry made by hand stays.
    assert_eq!(
        policies_of(&w, &env, AUTOMATION_ROLE).await?,
        [CLUSTER_ADMIN_POLICY]
    );
    w.admin()
        .await
        .eks
        .describe_access_entry()
        .cluster_name(cluster(&env))
        .principal_arn(BY_HAND)
        .send()
        .await
        .context("the entry made by hand was removed")?;
    Ok(())
}

async fn parameter_version(w: &World, name: &str) -> anyhow::Result<i64> {
    Ok(w.admin()
        .await
        .ssm
        .get_parameter()
        .name(name)
        .send()
        .await?
        .parameter
        .map(|p| p.version)
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_write_is_recovered_by_the_next_run() -> anyhow::Result<()> {
    let w = world().await?;
    // A clean run makes five writes: two access entries, two associations, the kubeconfig.
    for k in 1..=5 {
        let env = w.environment(&format!("crash{k}")).await?;
        let crash = CrashAfterWrite::default();
        let ctx = w.ctx(&crash).await;
        crash.arm(k);
        let deadline = Instant::now() + CONVERGE;
        let err = loop {
            match handle(&ctx, input(&env)?).await {
                Err(e) => break e,
                Ok(o) if o.done => bail!("write {k}: done without the crash: {o:?}"),
                Ok(_) => {}
            }
            if Instant::now() > deadline {
                bail!("write {k}: never reached");
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        };
        assert!(crash.crashed(), "write {k}: {err}");
        // The write happened; its answer was lost: the state machine retries.
        assert_eq!(err.name(), "labflow.Transient", "write {k}: {err}");
        assert_eq!(crash.writes(), k);

        crash.disarm();
        let outputs = converge(&ctx, &env)
            .await
            .with_context(|| format!("re-run after a crash following write {k}"))?;
        assert!(outputs.last().is_some_and(|o| o.done));
        let kubeconfig = assert_converged(&w, &env).await?;
        assert!(kubeconfig.contains("get-token"));
        // Nothing was done twice: the re-run saw what the crashed call had written.
        assert_eq!(crash.writes(), 5, "write {k}: {:?}", w.eks_writes(&env));
        assert_eq!(
            w.eks_writes(&env),
            BTreeMap::from([
                ("AssociateAccessPolicy".to_string(), 2),
                ("CreateAccessEntry".to_string(), 2)
            ]),
            "write {k}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_in_the_output_or_the_kubeconfig() -> anyhow::Result<()> {
    let w = world().await?;
    let env = w.environment("secret").await?;
    let crash = CrashAfterWrite::default();
    let ctx = w.ctx(&crash).await;
    let outputs = converge(&ctx, &env).await?;
    let kubeconfig = assert_converged(&w, &env).await?;
    let secret = w.session.secret_access_key().to_string();
    let session_token = w.session.session_token().unwrap_or_default().to_string();
    // The token the step itself used (a token of this identity for this cluster).
    let sample =
        labflow_core::eks_token::generate_from_config(&ctx.aws.config, &cluster(&env)).await?;
    assert!(sample.expose().starts_with("k8s-aws-v1."));
    let mut texts: Vec<String> = outputs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    texts.push(kubeconfig);
    for text in &texts {
        assert!(!text.contains("k8s-aws-v1."), "an EKS token in {text}");
        assert!(
            !text.contains("X-Amz-Signature"),
            "a presigned URL in {text}"
        );
        assert!(!text.contains(&secret), "the secret key in {text}");
        assert!(
            !text.contains(&session_token),
            "the session token in {text}"
        );
        assert!(!text.contains("token:"), "a token field in {text}");
    }
    Ok(())
}

/// Makes the step "crash" right after its k-th write call (EKS or SSM): the request reaches the
/// simulator / moto and is handled — the world changes — but the step gets an error instead of
/// the answer, as a Lambda that died (or timed out) after the write would leave things.
#[derive(Debug, Clone, Default)]
struct CrashAfterWrite(Arc<CrashState>);

#[derive(Debug, Default)]
struct CrashState {
    armed: Mutex<Option<usize>>,
    writes: AtomicUsize,
    pending: AtomicBool,
    crashed: AtomicBool,
}

impl CrashAfterWrite {
    fn arm(&self, k: usize) {
        if let Ok(mut a) = self.0.armed.lock() {
            *a = Some(k);
        }
    }

    fn disarm(&self) {
        if let Ok(mut a) = self.0.armed.lock() {
            *a = None;
        }
    }

    fn writes(&self) -> usize {
        self.0.writes.load(Ordering::SeqCst)
    }

    fn crashed(&self) -> bool {
        self.0.crashed.load(Ordering::SeqCst)
    }
}

impl Intercept for CrashAfterWrite {
    fn name(&self) -> &'static str {
        "CrashAfterWrite"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        // awsJson (SSM) names the operation in X-Amz-Target; REST-JSON (EKS) reads are GETs.
        let write = match request.headers().get("x-amz-target") {
            Some(target) => {
                let op = target.rsplit('.').next().unwrap_or("");
                !(op.starts_with("Get") || op.starts_with("Describe") || op.starts_with("List"))
            }
            None => request.method() != "GET",
        };
        if write {
            let n = self.0.writes.fetch_add(1, Ordering::SeqCst) + 1;
            let armed = self.0.armed.lock().ok().and_then(|a| *a);
            if armed == Some(n) {
                self.0.pending.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.pending.swap(false, Ordering::SeqCst) {
            self.0.crashed.store(true, Ordering::SeqCst);
            return Err("crashed right after the write (its answer is lost)".into());
        }
        Ok(())
    }
}

/// A deployment that names each function's role decides its access (issue 26 item 7):
/// cluster-access itself can be cut to the view policy and still proves `/version` answers;
/// health-check's entry carries only the Kubernetes group of its reader ClusterRole, and a
/// changed group list is written to the entry.
#[tokio::test]
async fn named_function_roles_get_only_what_the_config_gives_them() -> anyhow::Result<()> {
    const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
    const HEALTH_ROLE: &str = "arn:aws:iam::123456789012:role/labflow-health-check";
    let w = world().await?;
    let env = w.environment("readonly").await?;
    w.store_config(&env, |c| {
        c["accessPrincipals"] = json!([
            {"principalArn": AUTOMATION_ROLE, "policies": [VIEW_POLICY]},
            {"principalArn": HEALTH_ROLE, "kubernetesGroups": [labflow_core::reader::GROUP]},
        ])
    })
    .await?;
    let ctx = w.ctx(&CrashAfterWrite::default()).await;
    let outputs = converge(&ctx, &env).await?;
    let last = outputs.last().context("no output")?;
    assert!(last.kubernetes_version.is_some(), "{last:?}");
    assert_eq!(policies_of(&w, &env, AUTOMATION_ROLE).await?, [VIEW_POLICY]);
    assert!(policies_of(&w, &env, HEALTH_ROLE).await?.is_empty());
    assert_eq!(
        groups_of(&w, &env, HEALTH_ROLE).await?,
        [labflow_core::reader::GROUP]
    );

    w.store_config(&env, |c| {
        c["accessPrincipals"] = json!([
            {"principalArn": AUTOMATION_ROLE, "policies": [VIEW_POLICY]},
            {"principalArn": HEALTH_ROLE, "kubernetesGroups": ["lab-readers"]},
        ])
    })
    .await?;
    let outputs = converge(&ctx, &env).await?;
    assert_eq!(groups_of(&w, &env, HEALTH_ROLE).await?, ["lab-readers"]);
    let changes: Vec<_> = outputs.iter().flat_map(|o| o.changes.iter()).collect();
    assert!(
        changes
            .iter()
            .any(|c| c.action == "update-groups" && c.resource.contains(HEALTH_ROLE)),
        "{changes:?}"
    );
    Ok(())
}

async fn groups_of(w: &World, env: &str, principal: &str) -> anyhow::Result<Vec<String>> {
    let out = w
        .admin()
        .await
        .eks
        .describe_access_entry()
        .cluster_name(cluster(env))
        .principal_arn(principal)
        .send()
        .await?;
    Ok(out
        .access_entry()
        .map(|e| e.kubernetes_groups().to_vec())
        .unwrap_or_default())
}
