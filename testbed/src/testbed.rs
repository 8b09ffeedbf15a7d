//! One call that starts the whole cloud on loopback (DESIGN.md §6): the AWS emulator (moto),
//! the EKS simulator, and, for every cluster that turns ACTIVE, the simulated controllers on its
//! kubesim. Dropping the [`Testbed`] stops everything it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::task::JoinHandle;

use crate::controllers::{ControllerOptions, Controllers};
use crate::eks::{EksOptions, EksServer, EksSim};
use crate::kubesim::KubeSim;
use crate::moto::{self, Moto, MotoError};

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

/// Controllers running on one cluster's kubesim; they stop when the kubesim goes.
struct Attached {
    sim: Arc<KubeSim>,
    _controllers: Controllers,
}

/// The running testbed.
pub struct Testbed {
    moto: MotoHandle,
    eks: EksServer,
    region: String,
    credentials: (String, String),
    attached: Arc<Mutex<HashMap<String, Attached>>>,
    watcher: Option<JoinHandle<()>>,
}

impl Testbed {
    /// Starts moto (or joins the shared one), the EKS simulator and the controller watcher.
    /// Must be called inside a Tokio runtime.
    pub async fn start(options: TestbedOptions) -> Result<Testbed, TestbedError> {
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
        let credentials = options.eks.credentials.clone();
        let eks = EksServer::start(options.eks).await?;
        let attached = Arc::new(Mutex::new(HashMap::new()));
        let watcher = options.controllers.map(|choose| {
            tokio::spawn(watch_clusters(eks.sim().clone(), choose, attached.clone()))
        });
        Ok(Testbed {
            moto,
            eks,
            region,
            credentials,
            attached,
            watcher,
        })
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

    /// Names of the clusters whose kubesim currently has controllers attached.
    pub fn clusters_with_controllers(&self) -> Vec<String> {
        match self.attached.lock() {
            Ok(a) => a.keys().cloned().collect(),
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

/// Attaches controllers to each kubesim as its cluster turns ACTIVE and drops them when the
/// cluster (and with it the kubesim) is gone.
async fn watch_clusters(
    sim: EksSim,
    choose: ControllersFor,
    attached: Arc<Mutex<HashMap<String, Attached>>>,
) {
    loop {
        let mut live = HashMap::new();
        for name in sim.cluster_names().await {
            if let Some(kube) = sim.kubesim(&name).await {
                live.insert(name, kube);
            }
        }
        if let Ok(mut a) = attached.lock() {
            a.retain(|name, att| live.get(name).is_some_and(|k| Arc::ptr_eq(k, &att.sim)));
            for (name, kube) in live {
                if a.contains_key(&name) {
                    continue;
                }
                if let Some(options) = choose(&name) {
                    let controllers = Controllers::start(&kube, options);
                    a.insert(
                        name,
                        Attached {
                            sim: kube,
                            _controllers: controllers,
                        },
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
