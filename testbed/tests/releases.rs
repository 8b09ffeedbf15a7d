//! The release stand-in serves a Flux install manifest built from the real, pinned Flux CRDs.

use std::collections::HashMap;

use anyhow::{Context, Result};
use labflow_testbed::releases::{flux_install_manifest, ReleaseServer, FLUX_CONTROLLERS};

#[tokio::test]
async fn serves_a_flux_install_manifest_with_crds_first_and_controllers() -> Result<()> {
    let crds = labflow_testbed::paths::crd_cache_dir().context("no CRD cache: run make crds")?;
    let manifest = flux_install_manifest(&crds, "2.9.4")?;
    let kinds: Vec<String> = manifest
        .split("\n---\n")
        .filter_map(|doc| {
            doc.lines()
                .find(|l| l.starts_with("kind: "))
                .map(|l| l[6..].to_string())
        })
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "CustomResourceDefinition")
            .count(),
        11
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "Deployment").count(),
        FLUX_CONTROLLERS.len()
    );
    assert!(manifest.contains("name: gitrepositories.source.toolkit.fluxcd.io"));

    let server = ReleaseServer::start(HashMap::from([(
        "/v2.9.4/install.yaml".to_string(),
        manifest.clone().into_bytes(),
    )]))
    .await?;
    let body = reqwest_get(&server.url("/v2.9.4/install.yaml")).await?;
    assert_eq!(body.0, 200);
    assert_eq!(body.1, manifest);
    assert_eq!(reqwest_get(&server.url("/nope")).await?.0, 404);
    assert_eq!(
        server.requests(),
        vec!["/v2.9.4/install.yaml".to_string(), "/nope".to_string()]
    );
    Ok(())
}

#[test]
fn missing_cache_says_run_make_crds() {
    let err =
        flux_install_manifest(std::path::Path::new("/nonexistent"), "2.9.4").expect_err("no cache");
    assert!(err.to_string().contains("make crds"), "{err}");
}

/// Minimal HTTP/1.1 GET over a TCP stream (keeps the test free of an HTTP client dependency).
async fn reqwest_get(url: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").context("http url")?;
    let (host, path) = rest.split_once('/').context("path")?;
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw)?;
    let status: u16 = text.split(' ').nth(1).context("status")?.parse()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
