//! `labflow local down --kubeconfig` keeps the cluster: what labflow applied there, cluster-scoped
//! objects included, counts as left behind (issue 19 item 7).

use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
use serde_json::json;

#[tokio::test]
async fn labflows_cluster_scoped_objects_in_a_kept_cluster_are_leftovers() -> anyhow::Result<()> {
    let token = "kept-cluster-test-token";
    let sim = KubeSim::start(KubeSimOptions::new("kept").with_static_token(token)).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig.yaml");
    std::fs::write(&path, sim.kubeconfig(token))?;
    let ours = json!({"app.kubernetes.io/managed-by": "labflow"});
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "flux-system", "labels": ours}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "cluster-reconciler-flux-system", "labels": ours},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "someone-elses"}, "rules": []}),
    ] {
        sim.store()
            .put(object)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let mut left = labflow_cli::local::kept_cluster::leftovers(&path).await?;
    left.sort();
    assert_eq!(
        left,
        [
            "ClusterRoleBinding cluster-reconciler-flux-system",
            "Namespace flux-system"
        ]
    );
    for (api_version, kind, name) in [
        ("v1", "Namespace", "flux-system"),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "cluster-reconciler-flux-system",
        ),
    ] {
        sim.store()
            .delete_object(api_version, kind, None, name)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    // Namespace deletion finishes in the background.
    labflow_testkit::wait::until(
        "nothing of labflow's left in the cluster",
        std::time::Duration::from_secs(10),
        || async {
            let left = labflow_cli::local::kept_cluster::leftovers(&path).await?;
            Ok(left.is_empty().then_some(()))
        },
    )
    .await?;
    Ok(())
}
