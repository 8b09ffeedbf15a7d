//! kubesim: a Kubernetes API server simulator speaking the real REST protocol over HTTPS, so an
//! unmodified `kube::Client` can be tested against it (DESIGN.md §6). What it does not
//! implement is listed in testbed/KUBESIM.md.
//!
//! ```no_run
//! # async fn demo() -> Result<(), labflow_testbed::kubesim::StartError> {
//! use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
//! let sim = KubeSim::start(KubeSimOptions::new("lab").with_credentials("AKID", "secret")).await?;
//! println!("{} {}", sim.endpoint(), sim.ca_base64());
//! # Ok(()) }
//! ```

mod apply;
pub mod auth;
pub mod authz;
mod crd;
mod discovery;
pub mod errors;
mod fields;
mod handlers;
mod meta;
mod objects;
mod patch;
mod requests;
pub mod resources;
mod routes;
mod selectors;
mod server;
pub mod store;
pub(crate) mod tls;
mod validation;
mod watch;

pub use auth::AuthConfig;
pub use errors::ApiError;
pub use requests::RequestRecord;
pub use store::{ChangeEvent, EventType, Store};

use base64::Engine;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// How to start a kubesim.
#[derive(Clone)]
pub struct KubeSimOptions {
    /// The EKS cluster name tokens must be bound to (`x-k8s-aws-id`).
    pub cluster_name: String,
    /// (access key id, secret access key) pairs whose signatures are accepted.
    pub credentials: Vec<(String, String)>,
    /// An additional fixed bearer token (for a developer's kubeconfig). Off by default.
    pub static_token: Option<String>,
    /// Request faults (429/500/hang/latency) consulted before each request is handled.
    pub faults: crate::fault_plan::FaultPlan,
    /// Authorization by EKS access entries (see [`authz`]); `None`: every caller is admin.
    pub access: Option<authz::AccessLookup>,
}

impl std::fmt::Debug for KubeSimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSimOptions")
            .field("cluster_name", &self.cluster_name)
            .field("credentials", &self.credentials.len())
            .field("static_token", &self.static_token.is_some())
            .field("access", &self.access.is_some())
            .finish_non_exhaustive()
    }
}

impl KubeSimOptions {
    pub fn new(cluster_name: impl Into<String>) -> Self {
        KubeSimOptions {
            cluster_name: cluster_name.into(),
            credentials: Vec::new(),
            static_token: None,
            faults: crate::fault_plan::FaultPlan::new(),
            access: None,
        }
    }

    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials
            .push((access_key_id.into(), secret_access_key.into()));
        self
    }

    /// Shares a fault plan (e.g. the testbed's) instead of this kubesim's own.
    pub fn with_faults(mut self, plan: crate::fault_plan::FaultPlan) -> Self {
        self.faults = plan;
        self
    }

    /// Authorize callers by the access entries `lookup` reports, as EKS does.
    pub fn with_access(mut self, lookup: authz::AccessLookup) -> Self {
        self.access = Some(lookup);
        self
    }

    pub fn with_static_token(mut self, token: impl Into<String>) -> Self {
        self.static_token = Some(token.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("binding a loopback port: {0}")]
    Bind(#[from] std::io::Error),
}

/// A running kubesim. Stops (server and background tasks) when dropped.
pub struct KubeSim {
    endpoint: String,
    ca_pem: String,
    store: Store,
    requests: requests::RequestLog,
    faults: crate::fault_plan::FaultPlan,
    tasks: Vec<JoinHandle<()>>,
}

impl KubeSim {
    /// Starts serving HTTPS on 127.0.0.1 on a free port, with a freshly generated CA.
    pub async fn start(options: KubeSimOptions) -> Result<KubeSim, StartError> {
        // Clients in this process (kube::Client) pick rustls' process default; with both ring
        // and aws-lc-rs linked (the AWS SDK brings the latter) there is none unless installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = tls::generate(&options.cluster_name)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let store = Store::new();
        let requests = requests::RequestLog::default();
        let ctx = Arc::new(server::Context {
            store: store.clone(),
            auth: AuthConfig {
                cluster_name: options.cluster_name.clone(),
                credentials: options.credentials.clone(),
                static_token: options.static_token.clone(),
                access: options.access.clone(),
            },
            requests: requests.clone(),
            server_address: addr.to_string(),
            faults: options.faults.clone(),
        });
        // The built-in namespaces every cluster has.
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(e) = store.put(namespace) {
                tracing::warn!(error = %e, "kubesim: creating namespace {ns}");
            }
        }
        publish_root_ca(&store, &tls.ca_pem);
        let controller = tokio::spawn(termination_controller(store.clone(), tls.ca_pem.clone()));
        let server = tokio::spawn(server::serve(listener, tls.server_config, ctx));
        tracing::info!(endpoint = %format!("https://{addr}"), cluster = %options.cluster_name, "kubesim started");
        Ok(KubeSim {
            endpoint: format!("https://{addr}"),
            ca_pem: tls.ca_pem,
            store,
            requests,
            faults: options.faults.clone(),
            tasks: vec![controller, server],
        })
    }

    /// `https://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The cluster CA certificate (PEM).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA as EKS's DescribeCluster returns it (`certificateAuthority.data`): base64 of the PEM.
    pub fn ca_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }

    /// A kubeconfig (YAML) for this kubesim with a bearer `token` (one it accepts: see
    /// [`KubeSimOptions::with_static_token`]), as `kind get kubeconfig` gives one for kind.
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: kubesim\nclusters:\n- name: kubesim\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: kubesim\n  user:\n    token: {token}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n",
            self.endpoint,
            self.ca_base64()
        )
    }

    /// Direct access to the objects (no authentication, no request log).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.requests.all()
    }

    /// The fault plan this kubesim's requests are checked against.
    pub fn faults(&self) -> crate::fault_plan::FaultPlan {
        self.faults.clone()
    }

    pub fn clear_requests(&self) {
        self.requests.clear()
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The ConfigMap every namespace gets from kube-controller-manager's root CA publisher
/// (pkg/controller/certificates/rootcacertpublisher: `kube-root-ca.crt`, key `ca.crt`, the
/// cluster CA), made again if deleted; none in a namespace being deleted.
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

fn publish_root_ca(store: &Store, ca_pem: &str) {
    let published: std::collections::BTreeSet<String> = store
        .list_objects("v1", "ConfigMap", None)
        .into_iter()
        .filter(|cm| cm["metadata"]["name"] == ROOT_CA_CONFIGMAP)
        .filter_map(|cm| cm["metadata"]["namespace"].as_str().map(str::to_string))
        .collect();
    for ns in store.list_objects("v1", "Namespace", None) {
        let Some(name) = ns["metadata"]["name"].as_str() else {
            continue;
        };
        if published.contains(name) || !ns["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let configmap = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": name},
            "data": {"ca.crt": ca_pem},
        });
        if let Err(e) = store.put(configmap) {
            tracing::debug!(error = %e, namespace = name, "kubesim: publishing the root CA");
        }
    }
}

/// The namespace and CRD finalizers and the root CA publisher: run after every change, like the
/// real controllers.
async fn termination_controller(store: Store, ca_pem: String) {
    let mut rx = store.subscribe();
    loop {
        match rx.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        // Coalesce bursts of events into one pass.
        while rx.try_recv().is_ok() {}
        store.reconcile_terminations();
        publish_root_ca(&store, &ca_pem);
    }
}
