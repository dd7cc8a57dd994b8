//! The `fakemail` binary: parse the command line, set up logging, dispatch, and turn the
//! outcome into an exit status (0 ok, 1 failure, 2 usage error from clap).

use std::process::ExitCode;

use clap::Parser;
use fakemail::cli::{Cli, Command, ServeArgs};
use fakemail::config::{Config, DataDir};
use fakemail::server::{self, Listeners};
use fakemail::service::Service;
use fakemail::store::Store;
use tracing::info;

/// sled's page cache bound for `serve`.
const CACHE_BYTES: u64 = 64 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fakemail: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config::from_serve(args).map_err(|e| e.to_string())?;
    // A temporary store lives in a directory removed when `_temp` drops, after the server stops.
    let (data_dir, _temp) = match &config.data {
        DataDir::Path(p) => (p.clone(), None),
        DataDir::Temporary => {
            let t = tempfile::Builder::new()
                .prefix("fakemail-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary data dir: {e}"))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let log_dir = config
        .log
        .dir
        .clone()
        .unwrap_or_else(|| data_dir.join("logs"));
    let _log = fakemail::logging::init(&config.log, &log_dir).map_err(|e| e.to_string())?;

    let store = Store::open(&data_dir, CACHE_BYTES).map_err(|e| {
        tracing::error!(error = %e, "cannot open the store");
        e.to_string()
    })?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let listeners = Listeners::bind(&config).await.map_err(|e| {
            tracing::error!(error = %e, "cannot bind");
            e.to_string()
        })?;
        let http = listeners.http_addr().map_err(|e| e.to_string())?;
        // Before the address is printed: whoever reads it may signal at once.
        let shutdown =
            shutdown_signal().map_err(|e| format!("cannot install the signal handlers: {e}"))?;
        info!(
            version = env!("CARGO_PKG_VERSION"),
            http = %http,
            data_dir = %data_dir.display(),
            temporary = config.data == DataDir::Temporary,
            log_dir = %log_dir.display(),
            "fakemail started"
        );
        println!("fakemail {} listening", env!("CARGO_PKG_VERSION"));
        println!("  HTTP API: http://{http}");
        println!("  data dir: {}", data_dir.display());
        println!("  logs:     {}", log_dir.display());
        let service = Service::new(store, config.service.clone());
        server::run(&config, service, listeners, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future that resolves on either.
/// Installing them only when the future is first polled would leave a window after start-up in
/// which a signal still has its default effect and kills the process without a clean stop.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => info!("SIGINT received"),
            _ = term.recv() => info!("SIGTERM received"),
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        info!("SIGINT received");
    })
}
