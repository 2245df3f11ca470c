//! The `passerby` binary: read the configuration, start the server, stop on SIGTERM or ctrl-c;
//! or run one of the operator's commands (`passerby moderator …`) and exit.

use clap::Parser;
use passerby::{
    config::Cli,
    moderation,
    startup::{App, shutdown_signal},
    telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { config, command } = Cli::parse();
    if let Some(command) = command {
        // An operator's command: a one-line reason and a failing status, no backtrace.
        if let Err(e) = moderation::cli::run(
            command,
            &config.data_dir,
            config.redis_target().as_ref(),
            &mut std::io::stdout(),
        ) {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        return Ok(());
    }
    telemetry::init();
    let app = App::build(config).await?;
    let shutdown = shutdown_signal();
    println!("listening on http://{}", app.local_addr());
    app.run(shutdown).await
}
