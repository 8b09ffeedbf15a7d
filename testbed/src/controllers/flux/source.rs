//! source-controller: GitRepository revisions from local checkouts; other sources become Ready.

use super::super::git;
use super::super::objects::{self, ObjRef};
use super::git_auth;
use super::{injected_failure, log_err, with_ready, FluxController, FINALIZER, SOURCE_API};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const STATIC_KINDS: [&str; 4] = ["HelmRepository", "OCIRepository", "HelmChart", "Bucket"];

pub(super) fn reconcile_all(f: &mut FluxController) {
    for repo in f.source.list(SOURCE_API, "GitRepository", None) {
        reconcile(f, &repo, git_revision);
    }
    for kind in STATIC_KINDS {
        for obj in f.source.list(SOURCE_API, kind, None) {
            reconcile(f, &obj, |_, obj| Ok(static_revision(obj)));
        }
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The `<ref>@sha1:<sha>` revision of a GitRepository, as source-controller reports it.
fn git_revision(f: &FluxController, obj: &Value) -> Result<(String, String), (String, String)> {
    git_auth::check(&f.source, obj)?;
    let url = objects::s(obj, "/spec/url");
    let Some(dir) = f.options.checkout(url) else {
        return Err((
            "GitOperationFailed".into(),
            format!("failed to checkout and determine revision: unable to clone '{url}': repository not found"),
        ));
    };
    let r = |p: &str| {
        obj.pointer(&format!("/spec/ref/{p}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (spec, label) = if let Some(commit) = r("commit") {
        (commit.to_string(), r("branch").map(str::to_string))
    } else if let Some(tag) = r("tag") {
        (format!("refs/tags/{tag}"), Some(tag.to_string()))
    } else if let Some(name) = r("name") {
        (
            name.to_string(),
            Some(name.trim_start_matches("refs/heads/").to_string()),
        )
    } else {
        let branch = r("branch").unwrap_or("master");
        (format!("refs/heads/{branch}"), Some(branch.to_string()))
    };
    let sha = git::rev_parse(dir, &spec).map_err(|e| {
        (
            "GitOperationFailed".to_string(),
            format!("failed to checkout and determine revision: {e}"),
        )
    })?;
    let revision = match label {
        Some(l) => format!("{l}@sha1:{sha}"),
        None => format!("sha1:{sha}"),
    };
    Ok((revision, sha))
}

fn static_revision(obj: &Value) -> (String, String) {
    let seed = format!(
        "{}{}",
        objects::s(obj, "/spec/url"),
        obj.get("spec").map(Value::to_string).unwrap_or_default()
    );
    let digest = sha256_hex(&seed);
    let revision = match objects::s(obj, "/kind") {
        "OCIRepository" => {
            let tag = obj
                .pointer("/spec/ref/tag")
                .and_then(Value::as_str)
                .unwrap_or("latest");
            format!("{tag}@sha256:{digest}")
        }
        "HelmChart" => obj
            .pointer("/spec/version")
            .and_then(Value::as_str)
            .unwrap_or("0.0.0")
            .to_string(),
        _ => format!("sha256:{digest}"),
    };
    (revision, digest)
}

type Resolve = fn(&FluxController, &Value) -> Result<(String, String), (String, String)>;

fn reconcile(f: &mut FluxController, obj: &Value, resolve: Resolve) {
    let client = f.source.clone();
    if objects::is_deleting(obj) {
        log_err(
            "removing finalizer",
            obj,
            client.remove_finalizer(obj, FINALIZER),
        );
        return;
    }
    if !objects::finalizers(obj).iter().any(|x| x == FINALIZER) {
        log_err(
            "adding finalizer",
            obj,
            client.add_finalizer(obj, FINALIZER),
        );
        return;
    }
    if obj.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(status) = injected_failure(&f.plan, obj) {
        log_err("status", obj, client.set_status(obj, status));
        return;
    }
    let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    status["observedGeneration"] = json!(objects::generation(obj));
    let status = match resolve(f, obj) {
        Err((reason, message)) => {
            let mut s = with_ready(obj, status, "False", &reason, &message);
            if let Some(Value::Array(conditions)) = s.get_mut("conditions") {
                objects::set_condition(
                    conditions,
                    "FetchFailed",
                    "True",
                    &reason,
                    &message,
                    objects::generation(obj),
                );
            }
            s
        }
        Ok((revision, id)) => {
            let kind = objects::s(obj, "/kind").to_lowercase();
            let r = ObjRef::of(obj);
            let ns = r.namespace.clone().unwrap_or_default();
            let path = format!("{kind}/{ns}/{}/{id}.tar.gz", r.name);
            let unchanged = objects::s(obj, "/status/artifact/revision") == revision;
            let updated = if unchanged {
                objects::s(obj, "/status/artifact/lastUpdateTime").to_string()
            } else {
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
            };
            status["artifact"] = json!({
                "digest": format!("sha256:{}", sha256_hex(&revision)),
                "lastUpdateTime": updated,
                "path": path,
                "revision": revision,
                "size": 1024,
                "url": format!("http://source-controller.flux-system.svc.cluster.local./{path}"),
            });
            let message = format!("stored artifact for revision '{revision}'");
            let mut s = with_ready(obj, status, "True", "Succeeded", &message);
            if let Some(Value::Array(conditions)) = s.get_mut("conditions") {
                objects::remove_condition(conditions, "FetchFailed");
                objects::set_condition(
                    conditions,
                    "ArtifactInStorage",
                    "True",
                    "Succeeded",
                    &message,
                    objects::generation(obj),
                );
            }
            s
        }
    };
    log_err("status", obj, client.set_status(obj, status));
}

/// The local checkout and commit a source's artifact stands for: (checkout, sha, revision).
pub(super) fn git_artifact(
    f: &FluxController,
    source: &Value,
) -> Option<(std::path::PathBuf, String, String)> {
    let revision = objects::s(source, "/status/artifact/revision");
    let sha = revision.rsplit("sha1:").next().filter(|s| s.len() == 40)?;
    let dir = f.options.checkout(objects::s(source, "/spec/url"))?;
    Some((dir.clone(), sha.to_string(), revision.to_string()))
}
