//! `labflow flux pin VERSION`: download a Flux release's `install.yaml`, print its sha256 and
//! write the release (version, URL, sha256) into environment configs and tfvars files, as
//! `terraform providers lock` pins providers. The files keep their layout: only the pinned values
//! change, and each edited file is parsed again to check that exactly those values changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use labflow_flux_bootstrap::manifest;
use serde_json::Value;

/// Where Flux publishes its releases (DESIGN.md §5; fluxcd/flux2 `.goreleaser.yml` uploads
/// `install.yaml` and the checksums file as release assets).
pub const DEFAULT_RELEASES: &str = "https://github.com/fluxcd/flux2/releases/download";

#[derive(Debug, clap::Args)]
pub struct FluxArgs {
    #[command(subcommand)]
    command: FluxCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FluxCommand {
    /// Download VERSION's install.yaml, print its sha256 and write the pin into files.
    #[command(
        after_help = "Every `flux = { ... }` block of a tfvars file is pinned (all its \
environments). Exit codes: 0 pinned; 2 the download, the manifest or a file was refused \
(nothing is written then)."
    )]
    Pin(PinArgs),
}

#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// The Flux release, e.g. 2.9.4.
    pub version: String,
    /// Environment config files (JSON) to write flux.version, manifestUrl and manifestSha256 into.
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// Terraform var files to write version, manifest_url and manifest_sha256 into.
    #[arg(long = "tfvars", value_name = "FILE")]
    pub tfvars: Vec<PathBuf>,
    /// Where releases are downloaded from: `<URL>/v<VERSION>/install.yaml`.
    #[arg(long, value_name = "URL", default_value = DEFAULT_RELEASES)]
    pub releases: String,
}

/// A downloaded and checked release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: String,
    pub url: String,
    pub sha256: String,
}

pub fn run(args: FluxArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        FluxCommand::Pin(args) => pin(&args).map(|()| ExitCode::SUCCESS),
    }
}

fn pin(args: &PinArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pin = runtime.block_on(download(&args.version, &args.releases))?;
    println!("flux {}: {}", pin.version, pin.url);
    println!("sha256 {}", pin.sha256);
    // Edit everything in memory first: a refused file leaves every file as it was.
    let mut edits = Vec::new();
    for path in &args.configs {
        let text = read(path)?;
        let edited = pin_config(&text, &pin).with_context(|| format!("{}", path.display()))?;
        edits.push((path, edited));
    }
    for path in &args.tfvars {
        let text = read(path)?;
        let edited = pin_tfvars(&text, &pin).with_context(|| format!("{}", path.display()))?;
        edits.push((path, edited));
    }
    for (path, edited) in edits {
        std::fs::write(path, edited).with_context(|| format!("writing {}", path.display()))?;
        println!("pinned {}", path.display());
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The release's `install.yaml` URL under `releases`.
pub fn manifest_url(releases: &str, version: &str) -> String {
    format!("{}/v{version}/install.yaml", releases.trim_end_matches('/'))
}

/// Download and check `version`'s `install.yaml`. When the release publishes a checksums file
/// (`flux_<version>_checksums.txt`, which lists `install.yaml`), the digest must agree with it.
pub async fn download(version: &str, releases: &str) -> anyhow::Result<Pin> {
    let parts: Vec<&str> = version.split('.').collect();
    ensure!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "VERSION must be an exact Flux release like {}, got {version:?}",
        labflow_core::versions::FLUX_VERSION
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("labflow-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let url = manifest_url(releases, version);
    eprintln!("downloading {url}");
    let bytes = manifest::download(&http, &url)
        .await
        .map_err(|e| anyhow!("{}", e.message()))?;
    check_flux_manifest(&bytes).with_context(|| format!("{url} is not a Flux install manifest"))?;
    let sha256 = manifest::sha256_hex(&bytes);

    let checksums_url = format!(
        "{}/v{version}/flux_{version}_checksums.txt",
        releases.trim_end_matches('/')
    );
    match manifest::download(&http, &checksums_url).await {
        Ok(list) => {
            let list = String::from_utf8_lossy(&list);
            let listed = list.lines().find_map(|line| {
                let (digest, name) = line.split_once(char::is_whitespace)?;
                (name.trim() == "install.yaml").then(|| digest.trim().to_ascii_lowercase())
            });
            match listed {
                Some(digest) if digest == sha256 => {
                    eprintln!("checked against {checksums_url}");
                }
                Some(digest) => bail!(
                    "{url} has sha256 {sha256}, but the release's {checksums_url} lists {digest}"
                ),
                None => eprintln!("{checksums_url} does not list install.yaml: not cross-checked"),
            }
        }
        Err(err) => eprintln!("no checksums file ({}): not cross-checked", err.message()),
    }
    Ok(Pin {
        version: version.to_string(),
        url,
        sha256,
    })
}

/// A Flux `install.yaml` defines the source-controller's GitRepository kind: refuse anything else
/// (an error page, another project's manifest) before its digest is pinned.
fn check_flux_manifest(bytes: &[u8]) -> anyhow::Result<()> {
    let objects = manifest::parse(bytes).map_err(|e| anyhow!("{}", e.message()))?;
    let defines_git_repository = objects.iter().any(|o| {
        o["kind"] == "CustomResourceDefinition"
            && o["metadata"]["name"] == "gitrepositories.source.toolkit.fluxcd.io"
    });
    ensure!(
        defines_git_repository,
        "no CustomResourceDefinition gitrepositories.source.toolkit.fluxcd.io among its {} objects",
        objects.len()
    );
    Ok(())
}

// ---- environment configs (JSON) ------------------------------------------------------------

/// `text` (an environment config) with `flux.version`, `flux.manifestUrl` and
/// `flux.manifestSha256` set to `pin`; nothing else changes.
pub fn pin_config(text: &str, pin: &Pin) -> anyhow::Result<String> {
    let before: Value = serde_json::from_str(text).context("not JSON")?;
    ensure!(
        before.get("flux").is_some_and(Value::is_object),
        "no \"flux\" object: not an environment config"
    );
    let mut expected = before.clone();
    expected["flux"]["version"] = Value::from(pin.version.as_str());
    expected["flux"]["manifestUrl"] = Value::from(pin.url.as_str());
    expected["flux"]["manifestSha256"] = Value::from(pin.sha256.as_str());

    let flux = json_value_span(text, "flux").context("no \"flux\" object")?;
    let mut object = text[flux.clone()].to_string();
    for (key, value) in [
        ("version", &pin.version),
        ("manifestUrl", &pin.url),
        ("manifestSha256", &pin.sha256),
    ] {
        let quoted = serde_json::to_string(value)?;
        object = match json_value_span(&object, key) {
            Some(span) => format!("{}{quoted}{}", &object[..span.start], &object[span.end..]),
            // A missing key goes first in the object.
            None => object.replacen('{', &format!("{{\"{key}\": {quoted}, "), 1),
        };
    }
    let edited = format!("{}{object}{}", &text[..flux.start], &text[flux.end..]);
    let after: Option<Value> = serde_json::from_str(&edited).ok();
    if after.as_ref() == Some(&expected) {
        Ok(edited)
    } else {
        // The layout defeated the in-place edit: write the values, formatted anew.
        Ok(format!("{}\n", serde_json::to_string_pretty(&expected)?))
    }
}

/// The byte range of the value of the first `"key":` at the top level of the JSON object that
/// `text` holds (or of `text` itself if it is an object).
fn json_value_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let start = text.find('{')?;
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b'"' => {
                let end = string_end(bytes, i)?;
                if depth == 1 && &text[i + 1..end] == key {
                    let rest = text[end + 1..].trim_start();
                    if let Some(after_colon) = rest.strip_prefix(':') {
                        let value_start = text.len() - after_colon.trim_start().len();
                        let value_end = value_end(bytes, value_start)?;
                        return Some(value_start..value_end);
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the closing quote of the string opening at `open`.
fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of the JSON value starting at `start`.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => string_end(bytes, start).map(|e| e + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    b'"' => i = string_end(bytes, i)?,
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let len = bytes[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(bytes.len() - start);
            Some(start + len)
        }
    }
}

// ---- Terraform var files -------------------------------------------------------------------

/// `text` (a tfvars file) with `version`, `manifest_url` and `manifest_sha256` set to `pin` in
/// every `flux = { ... }` block; comments and layout stay. Refused when the file has no such
/// block, or when the result does not parse as HCL with exactly those values changed.
pub fn pin_tfvars(text: &str, pin: &Pin) -> anyhow::Result<String> {
    let before: Value = hcl::from_str(text).context("not a Terraform var file (HCL)")?;
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    let mut blocks = 0;
    while let Some(line) = lines.next() {
        out.push(line.to_string());
        let opens_flux = line
            .trim_start()
            .strip_prefix("flux")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .is_some_and(|rest| rest.trim() == "{");
        if !opens_flux {
            continue;
        }
        blocks += 1;
        let indent = format!("{}  ", leading_space(line));
        let mut wanted = vec![
            ("version", pin.version.as_str()),
            ("manifest_url", pin.url.as_str()),
            ("manifest_sha256", pin.sha256.as_str()),
        ];
        let mut body = Vec::new();
        for inner in lines.by_ref() {
            if inner.trim() == "}" {
                // Keys the block lacked go first, aligned as `terraform fmt` would not mind.
                for (key, value) in wanted.drain(..) {
                    out.push(format!("{indent}{key} = {}", hcl_string(value)));
                }
                out.append(&mut body);
                out.push(inner.to_string());
                break;
            }
            let key = inner
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| !k.starts_with('#'));
            match key.and_then(|k| wanted.iter().position(|(w, _)| *w == k)) {
                Some(at) => {
                    let (_, value) = wanted.remove(at);
                    let (lhs, _) = inner.split_once('=').unwrap_or((inner, ""));
                    body.push(format!("{lhs}= {}", hcl_string(value)));
                }
                None => body.push(inner.to_string()),
            }
        }
    }
    ensure!(blocks > 0, "no `flux = {{` block to pin");
    let mut edited = out.join("\n");
    if text.ends_with('\n') {
        edited.push('\n');
    }
    let after: Value = hcl::from_str(&edited).context("the edit broke the file")?;
    ensure!(
        after == expected_tfvars(&before, pin),
        "the file's layout defeated the edit (only single-line `key = value` entries inside \
         `flux = {{ ... }}` blocks, closed by a `}}` line of their own, can be pinned)"
    );
    Ok(edited)
}

/// `before` with every `environments.*.flux` pinned.
fn expected_tfvars(before: &Value, pin: &Pin) -> Value {
    let mut expected = before.clone();
    if let Some(envs) = expected
        .get_mut("environments")
        .and_then(Value::as_object_mut)
    {
        for env in envs.values_mut() {
            if let Some(flux) = env.get_mut("flux").and_then(Value::as_object_mut) {
                flux.insert("version".into(), Value::from(pin.version.as_str()));
                flux.insert("manifest_url".into(), Value::from(pin.url.as_str()));
                flux.insert("manifest_sha256".into(), Value::from(pin.sha256.as_str()));
            }
        }
    }
    expected
}

fn leading_space(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

fn hcl_string(value: &str) -> String {
    // JSON string escapes are valid HCL string escapes for what a URL or digest contains.
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> Pin {
        Pin {
            version: "2.9.4".into(),
            url: "https://mirror.example.com/v2.9.4/install.yaml".into(),
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn a_compact_config_is_edited_in_place_and_missing_keys_are_added() -> anyhow::Result<()> {
        let text = r#"{"cluster":{"version":"1.35"},"flux":{"version":"2.7.3","repository":{"url":"https://x"}}}"#;
        let edited = pin_config(text, &pin())?;
        let value: Value = serde_json::from_str(&edited)?;
        assert_eq!(value["cluster"]["version"], "1.35", "{edited}");
        assert_eq!(value["flux"]["version"], "2.9.4");
        assert_eq!(value["flux"]["manifestSha256"], pin().sha256.as_str());
        assert_eq!(value["flux"]["repository"]["url"], "https://x");
        assert!(!edited.contains('\n'), "re-formatted: {edited}");
        Ok(())
    }

    #[test]
    fn a_file_without_flux_is_refused() {
        assert!(pin_config(r#"{"cluster":{}}"#, &pin()).is_err());
        assert!(pin_tfvars("aws_region = \"eu-west-1\"\n", &pin()).is_err());
    }

    #[test]
    fn every_environment_of_a_tfvars_file_is_pinned_and_a_missing_url_added() -> anyhow::Result<()>
    {
        let text = "environments = {\n  a = {\n    flux = {\n      version = \"2.7.3\" # old\n      manifest_sha256 = \"00\"\n      repository_url = \"https://x\"\n    }\n  }\n  b = {\n    flux = {\n      version = \"2.7.3\"\n      manifest_sha256 = \"00\"\n      repository_url = \"https://y\"\n    }\n  }\n}\n";
        let edited = pin_tfvars(text, &pin())?;
        let value: Value = hcl::from_str(&edited)?;
        for env in ["a", "b"] {
            let flux = &value["environments"][env]["flux"];
            assert_eq!(flux["version"], "2.9.4", "{edited}");
            assert_eq!(flux["manifest_url"], pin().url.as_str());
            assert_eq!(flux["manifest_sha256"], pin().sha256.as_str());
        }
        assert_eq!(
            value["environments"]["b"]["flux"]["repository_url"],
            "https://y"
        );
        Ok(())
    }
}
