//! The `passerby` binary: read the configuration, start the server, stop on SIGTERM or ctrl-c.

use clap::Parser;
use passerby::{
    config::Config,
    startup::{App, shutdown_signal},
    telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init();
    let app = App::build(config).await?;
    let shutdown = shutdown_signal();
    println!("listening on http://{}", app.local_addr());
    app.run(shutdown).await
}
