//! A crate outside this workspace that depends on `weir-client` must get the hardened Kafka
//! codec (element counts bounded before allocation, vendor/kafka-protocol/WEIR-PATCH.md).
//!
//! `[patch.crates-io]` only applies inside the workspace that declares it: a dependent crate
//! (or `cargo install`) would resolve the unpatched `kafka-protocol` from crates.io, where an
//! 8-byte request can make a process reserve gigabytes. The fork is therefore its own crate,
//! `weir-kafka-protocol`, depended on by name. This test builds the dependency graph of a
//! fresh crate that depends on `weir-client` and fails if the upstream codec appears in it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf()
}

/// `cargo metadata` of a new crate depending on `dependency` (a path inside this repository).
fn metadata_of_dependent(dependency: &str) -> serde_json::Value {
    let root = repo_root();
    let dir = tempfile::tempdir().expect("temporary directory");
    let manifest = format!(
        "[package]\nname = \"weir-dependent-probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\n\n[dependencies]\n{dependency} = {{ path = {path:?} }}\n\n\
         # Its own workspace: nothing of ours (no [patch]) applies.\n[workspace]\n",
        path = root.join(dependency.trim_start_matches("weir-")).display(),
    );
    std::fs::write(dir.path().join("Cargo.toml"), manifest).expect("write manifest");
    std::fs::create_dir(dir.path().join("src")).expect("src/");
    std::fs::write(dir.path().join("src/lib.rs"), "").expect("write lib.rs");
    // Our lock file pins the same versions the workspace builds with, so the resolution can
    // run offline from the registry cache the workspace build filled.
    std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).expect("copy lock");
    let run = |offline: bool| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["metadata", "--format-version", "1"])
            .current_dir(dir.path());
        if offline {
            cargo.arg("--offline");
        }
        cargo.output().expect("run cargo metadata")
    };
    let mut out = run(true);
    if !out.status.success() {
        // A registry cache without some entry: resolve online instead.
        out = run(false);
    }
    assert!(
        out.status.success(),
        "cargo metadata of a crate depending on {dependency} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

fn package_names(metadata: &serde_json::Value) -> Vec<(String, Option<String>)> {
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["source"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn a_crate_depending_on_weir_client_gets_the_bounded_codec() {
    for dependency in ["weir-client", "weir-protocol"] {
        let packages = package_names(&metadata_of_dependent(dependency));
        let upstream: Vec<_> = packages
            .iter()
            .filter(|(name, _)| name == "kafka-protocol")
            .collect();
        assert!(
            upstream.is_empty(),
            "a crate depending on {dependency} resolves the unpatched codec: {upstream:?}"
        );
        assert!(
            packages
                .iter()
                .any(|(name, _)| name == "weir-kafka-protocol"),
            "a crate depending on {dependency} does not get weir-kafka-protocol: {packages:?}"
        );
    }
}
