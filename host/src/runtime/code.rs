//! The engine settings that shape the handler's machine code. `build.rs` compiles the handler
//! ahead of time with them and the runtime loads that code with them, so both include this file
//! (`build.rs` by `#[path]`): code compiled under other settings is refused when it is loaded.

/// Applies every setting that the compiled code depends on.
pub fn apply(config: &mut wasmtime::Config) {
    // The epoch deadline is how a running guest yields and how its sandbox time is checked: the
    // code polls the epoch at loop headers and function entries.
    config.epoch_interruption(true);
}
