//! Simulated controllers that make kubesim behave like a cluster running Flux, workloads and
//! the AWS controllers (DESIGN.md §6). Each runs as a tokio task that reacts to kubesim's change
//! events (plus a short periodic resync), reconciles level-triggered from what is stored, and
//! stops when its [`Controllers`] handle is dropped.
//!
//! ```no_run
//! # async fn demo(sim: &labflow_testbed::kubesim::KubeSim) {
//! use labflow_testbed::controllers::{Controllers, ControllerOptions, FluxOptions};
//! let flux = FluxOptions::default().with_repository("https://github.com/acme/lab", "/tmp/lab");
//! let controllers = Controllers::start(sim, ControllerOptions::default().with_flux(flux));
//! # drop(controllers); }
//! ```

pub mod aws;
pub mod ebs_csi;
pub mod externaldns;
pub mod flux;
mod git;
pub mod lb_aws;
pub mod loadbalancers;
pub mod objects;
pub mod workloads;

pub use aws::AwsAccess;
pub use ebs_csi::EbsCsiOptions;
pub use externaldns::{ExternalDnsOptions, TXT_PREFIX};
pub use flux::FluxOptions;
pub use loadbalancers::{LoadBalancer, LoadBalancerOptions, LoadBalancers};

use crate::faults::FaultPlan;
use crate::kubesim::{ChangeEvent, KubeSim, Store};
use std::future::Future;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Which simulated controllers run.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Flux's source, kustomize and helm controllers.
    pub flux: Option<FluxOptions>,
    /// Deployments become Available.
    pub workloads: bool,
    /// The AWS load balancer controller (acts only while its Deployment exists).
    pub load_balancers: Option<LoadBalancerOptions>,
    /// external-dns writing to Route53 (acts only while its Deployment exists).
    pub external_dns: Option<ExternalDnsOptions>,
    /// The EBS CSI driver making volumes in the AWS emulator (acts only while the EKS add-on's
    /// controller Deployment exists).
    pub ebs_csi: Option<EbsCsiOptions>,
    /// The fault plan whose object failures the controllers honour; None: the kubesim's own.
    pub faults: Option<FaultPlan>,
    /// The periodic resync on top of change events.
    pub resync: Duration,
}

impl Default for ControllerOptions {
    /// Nothing on; turn controllers on with the `with_*` methods.
    fn default() -> Self {
        ControllerOptions {
            flux: None,
            workloads: false,
            load_balancers: None,
            external_dns: None,
            ebs_csi: None,
            faults: None,
            resync: Duration::from_millis(500),
        }
    }
}

impl ControllerOptions {
    /// Everything on except external-dns (which needs an AWS endpoint and a zone).
    pub fn all(flux: FluxOptions) -> Self {
        ControllerOptions {
            flux: Some(flux),
            workloads: true,
            load_balancers: Some(LoadBalancerOptions::default()),
            ..Default::default()
        }
    }

    pub fn with_flux(mut self, flux: FluxOptions) -> Self {
        self.flux = Some(flux);
        self
    }

    pub fn with_workloads(mut self) -> Self {
        self.workloads = true;
        self
    }

    pub fn with_load_balancers(mut self, options: LoadBalancerOptions) -> Self {
        self.load_balancers = Some(options);
        self
    }

    pub fn with_external_dns(mut self, options: ExternalDnsOptions) -> Self {
        self.external_dns = Some(options);
        self
    }

    pub fn with_ebs_csi(mut self, options: EbsCsiOptions) -> Self {
        self.ebs_csi = Some(options);
        self
    }

    /// The AWS-side controllers (load balancers with their AWS resources, the EBS CSI driver)
    /// against the emulator behind `aws`.
    pub fn with_aws_controllers(self, aws: AwsAccess) -> Self {
        self.with_load_balancers(LoadBalancerOptions::default().with_aws(aws.clone()))
            .with_ebs_csi(EbsCsiOptions { aws })
    }

    pub fn with_faults(mut self, plan: FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }
}

/// The running controllers. Dropping it stops them.
pub struct Controllers {
    tasks: Vec<JoinHandle<()>>,
    load_balancers: LoadBalancers,
}

impl Controllers {
    /// Starts the controllers `options` turn on against one kubesim.
    pub fn start(sim: &KubeSim, options: ControllerOptions) -> Controllers {
        let plan = options.faults.clone().unwrap_or_else(|| sim.faults());
        Self::start_on_store(sim.store(), plan, options)
    }

    /// The same on a bare store (no HTTP server needed).
    pub fn start_on_store(
        store: &Store,
        plan: FaultPlan,
        options: ControllerOptions,
    ) -> Controllers {
        let mut tasks = Vec::new();
        let load_balancers = LoadBalancers::default();
        let resync = options.resync;
        if let Some(flux) = options.flux {
            let c = flux::FluxController::new(store, plan.clone(), flux);
            tasks.push(tokio::spawn(run(store.clone(), c, resync)));
        }
        if options.workloads {
            let c = workloads::WorkloadController::new(store, plan.clone());
            tasks.push(tokio::spawn(run(store.clone(), c, resync)));
        }
        if let Some(lb) = options.load_balancers {
            let c = loadbalancers::LoadBalancerController::new(store, lb, load_balancers.clone());
            tasks.push(tokio::spawn(run(store.clone(), c, resync)));
        }
        if let Some(ebs) = options.ebs_csi {
            let c = ebs_csi::EbsCsiController::new(store, ebs);
            tasks.push(tokio::spawn(run(store.clone(), c, resync)));
        }
        if let Some(dns) = options.external_dns {
            let c = externaldns::ExternalDnsController::new(store, dns);
            tasks.push(tokio::spawn(run(store.clone(), c, resync)));
        }
        Controllers {
            tasks,
            load_balancers,
        }
    }

    /// The load balancers that exist on the simulated AWS side.
    pub fn load_balancers(&self) -> &LoadBalancers {
        &self.load_balancers
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One simulated controller: a level-triggered pass over everything it manages.
pub(crate) trait Reconciler: Send + 'static {
    /// Whether a change may concern this controller.
    fn interested(&self, event: &ChangeEvent) -> bool;
    /// One reconcile pass.
    fn pass(&mut self) -> impl Future<Output = ()> + Send;
}

async fn run<R: Reconciler>(store: Store, mut reconciler: R, resync: Duration) {
    let mut rx = store.subscribe();
    loop {
        reconciler.pass().await;
        let wait_for_change = async {
            loop {
                match rx.recv().await {
                    Ok(ev) if reconciler.interested(&ev) => return true,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => return false,
                }
            }
        };
        tokio::select! {
            open = wait_for_change => {
                if !open {
                    return;
                }
                // Let a burst of writes land, then handle it in one pass.
                tokio::time::sleep(Duration::from_millis(5)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(resync) => {}
        }
    }
}

pub(crate) fn is_kind(event: &ChangeEvent, group: &str, resources: &[&str]) -> bool {
    event.group == group && resources.contains(&event.resource.as_str())
}
