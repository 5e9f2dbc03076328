//! Builds the handler crate as a WebAssembly component that imports nothing but `storage` and
//! `auth` (a `wasm32-unknown-unknown` module made a component with wit-component, so no WASI),
//! compiles it to machine code with wasmtime's compiler and leaves that in OUT_DIR, where
//! `runtime.rs` embeds it: a plain `cargo build` of the host is the whole set-up, and the binary
//! carries no compiler.

// The settings the runtime loads the code with.
#[path = "src/runtime/code.rs"]
mod code;

use std::env;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ is inside the workspace");
    declare_inputs(workspace);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    ensure_wasm_target();
    // Not the outer target directory: the outer cargo holds its lock while we run.
    let mut checkout = DefaultHasher::new();
    workspace.hash(&mut checkout);
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out")
        .join(format!("handler-wasm/{:016x}", checkout.finish()));

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args([
            "rustc",
            "--release",
            "--lib",
            "-p",
            "dynabox-handler",
            "--features",
            "component",
            "--target",
            WASM_TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // For the component's link only (hence `cargo rustc`, not RUSTFLAGS for every crate): 2 MiB
        // of initial linear memory instead of the 1 MiB stack + data + ~60 KiB of heap, so a
        // typical request's heap fits without `memory.grow` (the component's allocator starts there,
        // see `handler/src/allocator.rs`). A grow costs an `mprotect` then and
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
    assert!(status.success(), "building the handler component failed");

    let module = std::fs::read(target_dir.join(WASM_TARGET).join("release/dynabox_handler.wasm")).expect("the module");
    // wit-bindgen left the WIT world in the module; the encoder wraps the module in it.
    let built = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .expect("the handler module becomes a component");
    // Compiling takes seconds, and rewriting identical code would make cargo recompile the host
    // for nothing: the code is made again only when the component or the compiler changed. The
    // compiler is this script, which cargo builds anew when wasmtime or `code.rs` changes.
    let mut key = DefaultHasher::new();
    built.hash(&mut key);
    let script = env::current_exe().and_then(|exe| exe.metadata()).and_then(|meta| meta.modified());
    script.expect("the build script's own file").hash(&mut key);
    let key = format!("{:016x}", key.finish());
    let (compiled, compiled_key) = (out_dir.join("handler.cwasm"), out_dir.join("handler.cwasm.key"));
    if compiled.exists() && std::fs::read_to_string(&compiled_key).ok() == Some(key.clone()) {
        return;
    }
    let code = compiler().precompile_component(&built).expect("the handler component compiles");
    std::fs::write(&compiled, code).expect("OUT_DIR is writable");
    std::fs::write(&compiled_key, key).expect("OUT_DIR is writable");
}

/// Tells cargo when to run this script again: when the handler's sources or the contract change,
/// and when the target directory was last built for another checkout.
///
/// Several checkouts may share one target directory (CI's runs do). Cargo gives every checkout's
/// units the same names and tells freshness by modification times, so after building checkout A it
/// would take checkout B, cloned earlier, as built and embed A's handler. `.cargo/config.toml`
/// sets `DYNABOX_CHECKOUT` to the checkout's path, and cargo runs the script again when that value
/// changes. When cargo runs from outside the checkout that file is not read: then the script runs
/// on every build, which costs a recompile of the host each time but never embeds a stranger.
/// (The script itself builds the handler of the checkout it runs for, from CARGO_MANIFEST_DIR at
/// run time, in a target directory of that checkout's own.)
fn declare_inputs(workspace: &Path) {
    let checkout = env::var_os("DYNABOX_CHECKOUT").map(PathBuf::from);
    let same = |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a));
    if !checkout.is_some_and(|checkout| same(&checkout, workspace)) {
        println!("cargo:rerun-if-changed=build.rs.always-rerun");
        return;
    }
    println!("cargo:rerun-if-env-changed=DYNABOX_CHECKOUT");
    for input in ["handler/src", "handler/Cargo.toml", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
}

/// Wasmtime's compiler for the target the host is built for, under the runtime's settings.
/// Without an explicit target it would use every feature of this machine's CPU, and the binary
/// would refuse to start on an older one.
fn compiler() -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    code::apply(&mut config);
    let target = env::var("TARGET").expect("cargo sets TARGET");
    config.target(&target).expect("wasmtime compiles for the host's target");
    wasmtime::Engine::new(&config).expect("the compiler's settings are valid")
}

/// Installs the wasm target's standard library if this toolchain lacks it. rustup adds the targets
/// `rust-toolchain.toml` names only when it installs the toolchain itself, so a machine that had
/// this toolchain before the clone has no wasm target, and `cargo run` would fail on `core`.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc).args(["--print", "target-libdir", "--target", WASM_TARGET]).output();
    let installed = libdir
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).exists());
    if installed {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    // The toolchain cargo runs under (set by rustup's proxies), not whatever rustup's default is.
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    // Its output goes to our stderr: a build script's stdout is read by cargo as directives.
    match rustup.output() {
        Ok(out) if out.status.success() => println!("cargo:warning=installed the {WASM_TARGET} target with rustup"),
        Ok(out) => panic!(
            "the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the {WASM_TARGET} target is missing; install it (`rustup target add {WASM_TARGET}`): {e}"),
    }
}
