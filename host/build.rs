//! Builds the handler crate as a `wasm32-wasip2` component and leaves it in OUT_DIR, where
//! `runtime.rs` embeds it: a plain `cargo build` of the host is the whole set-up.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is inside the workspace");
    for input in ["handler/src", "handler/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // A target directory of its own: the outer cargo holds the lock on ours while we run.
    let target_dir =
        out_dir.ancestors().nth(4).expect("OUT_DIR is <target>/<profile>/build/<pkg>/out").join("handler-wasm");

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args(["rustc", "--release", "--lib", "-p", "dynabox-handler", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        // For the component's link only (hence `cargo rustc`, not RUSTFLAGS for every crate): 2 MiB
        // of initial linear memory instead of the 1 MiB stack + data + ~60 KiB of heap, so a
        // typical request's heap fits without `memory.grow`. A grow costs an `mprotect` then and
        // another when the next instance in the slot shrinks back: with the handler's size-class
        // allocator (64 KiB chunks) every GetItem grew, which cost 42.2 -> 31.8 µs (instantiate
        // +5.5, call +3.9). Pages never touched cost nothing; the 1 MiB stack stays (a 64 KiB one
        // saved ~0.3 µs). Requests need `Limits::memory_bytes` >= 2 MiB (was 1.1 MiB).
        .args(["--", "-C", "link-arg=--initial-memory=2097152"]);
    // The outer build's flags and target are meant for the host, not for the component.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the handler component failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
    );

    let built = target_dir.join("wasm32-wasip2/release/dynabox_handler.wasm");
    std::fs::copy(&built, out_dir.join("handler.wasm")).expect("the component was built");
}
