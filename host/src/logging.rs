//! The log: `tracing` events on stderr, as text or one JSON object a line. Every request runs in
//! a span (`server.rs`) that carries its request id (the `x-amzn-RequestId` its client sees), its
//! operation, account and tables, so whatever is logged while it runs (a trap, a storage failure,
//! a slow request, the access line) says which request it was.
//!
//! Only dynabox's own events are logged: the `log` records of its dependencies (tokio-postgres
//! logs statements with their parameters at debug level: item contents) are not bridged in, and
//! no event of dynabox's carries a secret, a signature or an item.

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

/// The target of the start-up lines (`dynabox listening on http://ADDR`), which scripts read:
/// logged whatever the level.
pub const START: &str = "dynabox::start";

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line, the request's span under "span".
    Json,
}

/// Installs the log for the process. `level`: `tracing` filter directives (`info`,
/// `dynabox=debug`); without them `RUST_LOG`, else `info`.
pub fn init(format: LogFormat, level: Option<&str>) -> anyhow::Result<()> {
    let from_env = std::env::var("RUST_LOG").ok().filter(|directives| !directives.is_empty());
    let directives = level.map(str::to_owned).or(from_env).unwrap_or_else(|| "info".into());
    let filter = EnvFilter::builder().parse(&directives).with_context(|| format!("log level {directives:?}"))?;
    let filter = filter.add_directive(format!("{START}=info").parse()?);
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.init(),
        LogFormat::Json => log.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    Ok(())
}
