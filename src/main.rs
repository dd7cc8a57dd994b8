//! The `fakemail` binary: parse the command line, set up logging, dispatch, and turn the
//! outcome into an exit status (0 ok, 1 failure, 2 usage error from clap).

use std::process::ExitCode;

use clap::Parser;
use fakemail::cli::{Cli, Command, PurgeArgs, ReadyArgs, ServeArgs};
use fakemail::config::{Config, DataDir};
use fakemail::server::{self, Server};
use fakemail::store::Store;
use fakemail::{purge, runfile};
use tracing::info;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Purge(args) => purge(&args),
        Command::Ready(args) => ready(&args),
        Command::Completions(args) => {
            fakemail::cli::write_completions(args.shell, &mut std::io::stdout());
            Ok(())
        }
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
    let config = match Config::from_serve(args) {
        Ok(c) => c,
        // A contradiction between flags is a usage error (status 2), like clap's own.
        Err(e @ fakemail::config::ConfigError::TemporaryWithDataDir) => {
            use clap::CommandFactory;
            Cli::command()
                .error(clap::error::ErrorKind::ArgumentConflict, e.to_string())
                .exit()
        }
        Err(e) => return Err(e.to_string()),
    };
    // A temporary store lives in a directory removed when `_temp` drops, after the server stops.
    let (data_dir, _temp) = match &config.data {
        DataDir::Path(p) => (p.clone(), None),
        DataDir::Temporary => {
            let t = server::temporary_data_dir()
                .map_err(|e| format!("cannot create a temporary data dir: {e}"))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let log_dir = config
        .log
        .dir
        .clone()
        .unwrap_or_else(|| data_dir.join("logs"));
    // The store first: its lock decides whether this process may use the data dir at all, so
    // a second server never writes into the first one's log files.
    let store = Store::open(&data_dir, config.cache_size).map_err(|e| e.to_string())?;
    // One left by a server that was killed would send `fakemail purge` to a dead address, or
    // with a stale token, until this server writes its own.
    runfile::remove_server_info(&data_dir);
    let _log = fakemail::logging::init(&config.log, &log_dir).map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let temporary = config.data == DataDir::Temporary;
        let ui = config.ui;
        let server = Server::bind(config, store).await.map_err(|e| {
            tracing::error!(error = %e, "cannot start");
            e.to_string()
        })?;
        let (http, smtp, pop3) = (server.http_addr(), server.smtp_addr(), server.pop3_addr());
        // Before the address is printed: whoever reads it may signal at once.
        let shutdown =
            shutdown_signal().map_err(|e| format!("cannot install the signal handlers: {e}"))?;
        // `--admin-token` is set by `Server::bind`; without it, the one kept in the data dir.
        let (admin_token, token_file) = match server.config().admin_token.as_deref() {
            Some(t) => (t.to_owned(), None),
            None => {
                let t = runfile::ensure_admin_token(&data_dir).map_err(|e| {
                    format!(
                        "cannot write the admin token into {}: {e}",
                        data_dir.display()
                    )
                })?;
                server.service().set_admin_token(&t);
                (t, Some(runfile::admin_token_path(&data_dir)))
            }
        };
        let info = runfile::ServerInfo {
            http: runfile::local_url(http),
            smtp: Some(runfile::local_addr(smtp).to_string()),
            pop3: pop3.map(|a| runfile::local_addr(a).to_string()),
            pid: std::process::id(),
            admin_token: Some(admin_token),
        };
        runfile::write_server_info(&data_dir, &info).map_err(|e| {
            format!(
                "cannot write {} into {}: {e}",
                runfile::SERVER_FILE,
                data_dir.display()
            )
        })?;
        info!(
            version = env!("CARGO_PKG_VERSION"),
            http = %http,
            smtp = %smtp,
            pop3 = %pop3.map_or("off".to_owned(), |a| a.to_string()),
            tls = %server.smtp_tls().source,
            data_dir = %data_dir.display(),
            temporary,
            log_dir = %log_dir.display(),
            "fakemail started"
        );
        println!("fakemail {} listening", env!("CARGO_PKG_VERSION"));
        println!("  HTTP API: http://{http}");
        if ui {
            println!("  web UI:   http://{http}/ (all mail: /admin)");
        }
        println!("  SMTP:     {smtp}");
        if let Some(addr) = server.imap_addr() {
            info!(imap = %addr, "serving IMAP");
            println!("  IMAP:     {addr}");
        }
        if let Some(pop3) = pop3 {
            println!("  POP3:     {pop3}");
        }
        let compat = server.compat_addrs();
        println!("  MailHog API: http://{http}/mailhog");
        if let Some(addr) = compat.mailhog {
            info!(mailhog = %addr, "the MailHog API has a port of its own");
            println!("  MailHog API: http://{addr}");
        }
        if let Some(addr) = compat.mailpit {
            info!(mailpit = %addr, "the Mailpit API has a port of its own");
            println!("  Mailpit API: http://{addr}");
        }
        println!("  data dir: {}", data_dir.display());
        println!("  logs:     {}", log_dir.display());
        match &token_file {
            Some(path) => println!("  admin token: {}", path.display()),
            None => println!("  admin token: from --admin-token"),
        }
        let result = server.run(shutdown).await;
        runfile::remove_server_info(&data_dir);
        result.map_err(|e| e.to_string())
    })
}

fn purge(args: &PurgeArgs) -> Result<(), String> {
    let (removed, via) = purge::run(args, true)?;
    println!("{}", purge::report(removed, args.dry_run, &via));
    Ok(())
}

fn ready(args: &ReadyArgs) -> Result<(), String> {
    let target = fakemail::ready::wait(args)?;
    println!("fakemail at {} is ready", target.url);
    Ok(())
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

/// Caps glibc's malloc arenas at two, unless `MALLOC_ARENA_MAX` says otherwise, and fixes its
/// mmap threshold at its default of 128 KiB, unless `MALLOC_MMAP_THRESHOLD_` does. glibc gives
/// threads that allocate at once arenas of their own and keeps what is freed in each: under
/// steady ingest with retention sweeping, the server's resident size grew 1.7 times in three
/// minutes while the number of messages stored stayed the same; with two arenas it stays
/// near flat (docs/performance.md, the soak). And glibc raises its mmap threshold to the size
/// of each large block freed (up to 32 MiB), and the heap it keeps untrimmed to twice that:
/// after one large transient block, memory of that size stays resident for good (a soak
/// stepped up by 36 MiB at once). A fixed threshold turns that off. musl, in the static
/// release build, has neither.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a parameter of the allocator, and runs before any other
        // thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
