//! One call that starts the whole cloud on loopback (DESIGN.md §6): the AWS emulator (moto),
//! the EKS simulator, and, for every cluster that turns ACTIVE, the simulated controllers on its
//! kubesim — plus the fault control API ([`crate::faults::ControlServer`]) on the plan in
//! `TestbedOptions::eks.faults`, which the EKS API and every cluster's kubesim consult (each
//! ACTIVE cluster is registered with it under its name for object faults). Dropping the
//! [`Testbed`] stops everything it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::task::JoinHandle;

use crate::alb_front::AlbFront;
use crate::controllers::AwsAccess;
use crate::controllers::{ControllerOptions, Controllers};
use crate::eks::{EksOptions, EksServer, EksSim};
use crate::faults::{ControlServer, ControlStartError, FaultPlan};
use crate::kubesim::KubeSim;
use crate::moto::{self, Moto, MotoError};
use crate::network::{self, Network};

/// Chooses the controllers for a cluster by name (`None`: a bare API server).
pub type ControllersFor = Arc<dyn Fn(&str) -> Option<ControllerOptions> + Send + Sync>;

/// How the testbed starts.
#[derive(Clone, Default)]
pub struct TestbedOptions {
    pub eks: EksOptions,
    /// Controllers to run on each cluster's kubesim once it is ACTIVE.
    pub controllers: Option<ControllersFor>,
    /// Start a moto of our own instead of the process-wide shared one (tests share one to save
    /// its ~1 s start; the CLI and the binary own theirs).
    pub own_moto: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("AWS emulator: {0}")]
    Moto(#[from] MotoError),
    #[error("EKS simulator: {0}")]
    Eks(#[from] std::io::Error),
    #[error("fault control API: {0}")]
    Control(#[from] ControlStartError),
    #[error("AssumeRole in the AWS emulator: {0}")]
    AssumeRole(String),
    #[error("creating the lab network in the AWS emulator: {0}")]
    Network(#[from] ec2_query::Ec2Error),
}

enum MotoHandle {
    Owned(Moto),
    Shared(&'static Moto),
}

impl MotoHandle {
    fn get(&self) -> &Moto {
        match self {
            MotoHandle::Owned(m) => m,
            MotoHandle::Shared(m) => m,
        }
    }
}

/// Controllers running on one cluster's kubesim (None: only registered with the control API);
/// they stop when the kubesim goes.
struct Attached {
    sim: Arc<KubeSim>,
    controllers: Option<Controllers>,
}

/// The running testbed.
pub struct Testbed {
    moto: MotoHandle,
    eks: EksServer,
    region: String,
    credentials: (String, String),
    principal: String,
    attached: Arc<Mutex<HashMap<String, Attached>>>,
    watcher: Option<JoinHandle<()>>,
    faults: FaultPlan,
    control: Arc<ControlServer>,
    alb_front: AlbFront,
    network: Network,
}

impl Testbed {
    /// Starts moto (or joins the shared one), the EKS simulator and the controller watcher.
    /// Must be called inside a Tokio runtime.
    pub async fn start(mut options: TestbedOptions) -> Result<Testbed, TestbedError> {
        let moto =
            if options.own_moto {
                MotoHandle::Owned(tokio::task::spawn_blocking(Moto::start).await.map_err(
                    |e| TestbedError::Eks(std::io::Error::other(format!("moto start: {e}"))),
                )??)
            } else {
                MotoHandle::Shared(tokio::task::spawn_blocking(moto::shared).await.map_err(
                    |e| TestbedError::Eks(std::io::Error::other(format!("moto start: {e}"))),
                )??)
            };
        let region = options.eks.region.clone();
        let network = network::create(&AwsAccess::new(&moto.get().endpoint(), &region)).await?;
        options.eks.vpc_id = Some(network.vpc_id.clone());
        let credentials = options.eks.credentials.clone();
        let principal = options.eks.principal.clone();
        let faults = options.eks.faults.clone();
        let control = Arc::new(ControlServer::start(faults.clone()).await?);
        let eks = EksServer::start(options.eks).await?;
        let attached: Arc<Mutex<HashMap<String, Attached>>> = Arc::new(Mutex::new(HashMap::new()));
        let alb_front = AlbFront::start(clusters_with_load_balancers(attached.clone())).await?;
        let watcher = Some(tokio::spawn(watch_clusters(
            eks.sim().clone(),
            options.controllers,
            attached.clone(),
            control.clone(),
        )));
        Ok(Testbed {
            faults,
            control,
            moto,
            eks,
            region,
            credentials,
            principal,
            attached,
            watcher,
            alb_front,
            network,
        })
    }

    /// The VPC and subnets made in the emulator, which every cluster reports.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// What a simulated AWS controller needs to reach the emulator.
    pub fn aws_access(&self) -> AwsAccess {
        AwsAccess::new(&self.aws_endpoint(), &self.region)
    }

    /// Where the simulated ALBs of every cluster answer HTTP (see [`crate::alb_front`]).
    pub fn alb_front_addr(&self) -> std::net::SocketAddr {
        self.alb_front.addr()
    }

    /// `http://127.0.0.1:<port>` of the AWS emulator (every service but EKS).
    pub fn aws_endpoint(&self) -> String {
        self.moto.get().endpoint()
    }

    /// `http://127.0.0.1:<port>` of the EKS simulator (`AWS_ENDPOINT_URL_EKS`).
    pub fn eks_endpoint(&self) -> &str {
        self.eks.endpoint()
    }

    pub fn eks(&self) -> &EksSim {
        self.eks.sim()
    }

    pub fn moto(&self) -> &Moto {
        self.moto.get()
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// (access key id, secret access key): moto accepts any, the clusters' kubesims accept EKS
    /// tokens signed with exactly these.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.credentials.0, &self.credentials.1)
    }

    /// The IAM principal [`Testbed::credentials`] are: a cluster created with them without
    /// bootstrapClusterCreatorAdminPermissions needs an access entry for it.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The variables a process exports to talk to this testbed through the AWS SDK.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.aws_endpoint()),
            (
                "AWS_ENDPOINT_URL_EKS".into(),
                self.eks_endpoint().to_string(),
            ),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.credentials.0.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.credentials.1.clone()),
        ]
    }

    /// An SDK configuration for the emulator (region, static credentials, endpoint). EKS
    /// clients must override the endpoint with [`Testbed::eks_endpoint`].
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(crate::controllers::aws::https_client())
            .region(Region::new(self.region.clone()))
            .credentials_provider(Credentials::new(
                self.credentials.0.clone(),
                self.credentials.1.clone(),
                None,
                None,
                "labflow-testbed",
            ))
            .endpoint_url(self.aws_endpoint())
            .load()
            .await
    }

    /// Credentials of an STS session of `role_arn`, issued by the emulator, and trusted by the
    /// clusters that become ACTIVE from now on: the identity a Lambda has (GetCallerIdentity
    /// answers `assumed-role/...`, unlike the emulator's default identity).
    pub async fn role_session(
        &self,
        role_arn: &str,
        session_name: &str,
    ) -> Result<Credentials, TestbedError> {
        let sts = aws_sdk_sts::Client::new(&self.sdk_config().await);
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .send()
            .await
            .map_err(|e| TestbedError::AssumeRole(format!("{e:?}")))?;
        let c = out
            .credentials()
            .ok_or_else(|| TestbedError::AssumeRole("no credentials returned".into()))?;
        self.eks()
            .trust_credentials(c.access_key_id(), c.secret_access_key(), role_arn);
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "testbed-role-session",
        ))
    }

    /// The fault plan the EKS API and every cluster's kubesim check requests against, and whose
    /// object failures the controllers honour.
    pub fn faults(&self) -> FaultPlan {
        self.faults.clone()
    }

    /// `http://127.0.0.1:<port>` of the fault control API (see [`crate::faults::ControlServer`]).
    pub fn control_endpoint(&self) -> String {
        self.control.endpoint()
    }

    /// The load balancers the load balancer controller of `cluster` keeps on the simulated AWS
    /// side (None: no controllers attached to that cluster).
    pub fn load_balancers(&self, cluster: &str) -> Option<crate::controllers::LoadBalancers> {
        let attached = self.attached.lock().ok()?;
        let controllers = attached.get(cluster)?.controllers.as_ref()?;
        Some(controllers.load_balancers().clone())
    }

    /// Names of the clusters whose kubesim currently has controllers attached.
    pub fn clusters_with_controllers(&self) -> Vec<String> {
        match self.attached.lock() {
            Ok(a) => a
                .iter()
                .filter(|(_, att)| att.controllers.is_some())
                .map(|(name, _)| name.clone())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        if let Ok(mut a) = self.attached.lock() {
            a.clear();
        }
    }
}

/// Each cluster with controllers: its objects and its load balancer controller's balancers.
fn clusters_with_load_balancers(
    attached: Arc<Mutex<HashMap<String, Attached>>>,
) -> crate::alb_front::Clusters {
    Arc::new(move || match attached.lock() {
        Ok(a) => a
            .values()
            .filter_map(|att| {
                let controllers = att.controllers.as_ref()?;
                Some((
                    att.sim.store().clone(),
                    controllers.load_balancers().clone(),
                ))
            })
            .collect(),
        Err(_) => Vec::new(),
    })
}

/// Registers each kubesim with the control API and attaches controllers to it as its cluster
/// turns ACTIVE; drops both when the cluster (and with it the kubesim) is gone.
async fn watch_clusters(
    sim: EksSim,
    choose: Option<ControllersFor>,
    attached: Arc<Mutex<HashMap<String, Attached>>>,
    control: Arc<ControlServer>,
) {
    loop {
        let mut live = HashMap::new();
        for name in sim.cluster_names().await {
            if let Some(kube) = sim.kubesim(&name).await {
                live.insert(name, kube);
            }
        }
        if let Ok(mut a) = attached.lock() {
            a.retain(|name, att| {
                let keep = live.get(name).is_some_and(|k| Arc::ptr_eq(k, &att.sim));
                if !keep {
                    control.unregister_cluster(name);
                }
                keep
            });
            for (name, kube) in live {
                if a.contains_key(&name) {
                    continue;
                }
                control.register_cluster(&name, kube.store());
                let controllers = choose
                    .as_ref()
                    .and_then(|choose| choose(&name))
                    .map(|options| Controllers::start(&kube, options));
                a.insert(
                    name,
                    Attached {
                        sim: kube,
                        controllers,
                    },
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
