//! The example environment config, as tests use it.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `examples/environments/lab.json` as committed. Its `flux.manifestSha256` is the all-zero
/// placeholder that config validation refuses until `labflow flux pin` writes the real digest.
pub const EXAMPLE_CONFIG_FILE: &str = include_str!("../../examples/environments/lab.json");

/// What tests stand in for the Flux release digest of configs whose manifest no test downloads
/// (tests that bootstrap Flux pin the release they serve themselves): a well-formed sha256 that
/// is not a placeholder.
pub fn test_manifest_sha256() -> String {
    hex::encode(Sha256::digest(
        b"labflow-testkit: a Flux release digest for configs whose manifest is never downloaded",
    ))
}

/// The example config, pinned as `labflow flux pin` would pin it (with
/// [`test_manifest_sha256`]), so it passes validation.
pub fn example_config() -> Value {
    let mut config: Value = serde_json::from_str(EXAMPLE_CONFIG_FILE).unwrap_or(Value::Null);
    config["flux"]["manifestSha256"] = Value::String(test_manifest_sha256());
    config
}

/// [`example_config`] as the JSON text SSM would hold.
pub fn example_config_json() -> String {
    example_config().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_pinned_and_otherwise_unchanged() {
        let committed: Value = serde_json::from_str(EXAMPLE_CONFIG_FILE).unwrap_or(Value::Null);
        let pinned = example_config();
        assert!(committed.is_object(), "lab.json is a JSON object");
        assert_ne!(
            committed["flux"]["manifestSha256"],
            pinned["flux"]["manifestSha256"]
        );
        let mut unpinned = pinned.clone();
        unpinned["flux"]["manifestSha256"] = committed["flux"]["manifestSha256"].clone();
        assert_eq!(unpinned, committed);
    }
}
