//! The validated configuration, built once from the command line. Nothing re-validates later.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::cli::{LogArgs, LogFormat, LogRotation, Retention, ServeArgs};
use crate::service::{self, password};
use crate::smtp::tls::TlsFiles;

/// How long shutdown waits for in-flight requests before it gives up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything `fakemail serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (port 0: any free port).
    pub http_addr: SocketAddr,
    /// The SMTP listener.
    pub smtp: SmtpConfig,
    /// The POP3 listener.
    pub pop3: Pop3Config,
    /// The IMAP listener.
    pub imap: ImapConfig,
    /// Where the store lives.
    pub data: DataDir,
    /// Logging.
    pub log: LogConfig,
    /// Rules of the account service.
    pub service: service::Settings,
    /// Largest JSON body of the account endpoints, in bytes.
    pub max_body_size: u64,
    /// Messages older than this are deleted (`None`: kept forever).
    pub retention: Option<Duration>,
    /// How often the retention sweeper runs.
    pub sweep_interval: Duration,
    /// sled page cache bound, in bytes.
    pub cache_size: u64,
    /// The admin token, when given; otherwise one is generated and kept in the data dir.
    pub admin_token: Option<String>,
    /// Whether the web UI is served (`/`, `/admin`, `/ui/*`); off with `--no-ui`.
    pub ui: bool,
    /// The compatibility APIs (MailHog, Mailpit): who may use them, and their own listeners.
    pub compat: CompatConfig,
}

/// The MailHog- and Mailpit-compatible APIs.
#[derive(Debug, Clone, Copy)]
pub struct CompatConfig {
    /// Whether they need the admin token (`--compat-auth`).
    pub auth: CompatAuth,
    /// A listener of its own serving the MailHog API at its root (`--mailhog-port`; port 0:
    /// any free port).
    pub mailhog_addr: Option<SocketAddr>,
    /// A listener of its own serving the Mailpit API at its root (`--mailpit-port`).
    pub mailpit_addr: Option<SocketAddr>,
}

/// Whether the compatibility APIs need the admin token (`--compat-auth`). Here, not in the
/// command line's module, because the HTTP front-end reads it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompatAuth {
    /// The admin token, as the password of HTTP Basic auth (any user name) or as a Bearer
    /// token.
    Token,
    /// No credentials: for a trusted machine only.
    None,
}

/// IMAP listener settings.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Where it listens (port 0: any free port); `None`: no IMAP (`--imap-port off`).
    pub addr: Option<SocketAddr>,
    /// Connections served at once.
    pub max_connections: usize,
    /// Silence after which a client is logged out.
    pub idle_timeout: Duration,
}

/// SMTP listener settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Where it listens (port 0: any free port).
    pub addr: SocketAddr,
    /// Connections served at once.
    pub max_connections: usize,
    /// Silence after which a client is disconnected.
    pub idle_timeout: Duration,
    /// The STARTTLS certificate and key; `None`: a self-signed certificate made at start-up.
    pub tls: Option<TlsFiles>,
    /// Whether AUTH is offered or required.
    pub auth: SmtpAuth,
}

/// POP3 listener settings.
#[derive(Debug, Clone)]
pub struct Pop3Config {
    /// Where it listens (port 0: any free port); `None`: no POP3.
    pub addr: Option<SocketAddr>,
    /// Connections served at once.
    pub max_connections: usize,
    /// Silence after which a client is disconnected.
    pub idle_timeout: Duration,
}

/// Whether the SMTP listener offers AUTH, and whether it requires it (`--smtp-auth`). Here,
/// not in the command line's module, because the SMTP front-end reads it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmtpAuth {
    /// AUTH is not offered.
    Off,
    /// AUTH is offered; mail from an authenticated client also lands in its account's `sent`,
    /// and unauthenticated clients may send too.
    Optional,
    /// MAIL before a successful AUTH is answered 530.
    Required,
}

/// The data directory: a path, or a throwaway one made at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDir {
    Path(PathBuf),
    Temporary,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `None`: `<data-dir>/logs`.
    pub dir: Option<PathBuf>,
    pub filter: String,
    pub format: LogFormat,
    pub rotation: LogRotation,
    pub keep: usize,
}

/// A configuration problem found before anything started.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot find a default data dir: neither XDG_DATA_HOME nor HOME is set; pass --data-dir or --temporary"
    )]
    NoDataDir,
    #[error(
        "--temporary and --data-dir (FAKEMAIL_TEMPORARY and FAKEMAIL_DATA_DIR) exclude each other; \
         use one of them"
    )]
    TemporaryWithDataDir,
}

impl Default for Config {
    /// The defaults of `fakemail serve`, but with a temporary store and free ports: the
    /// starting point of tests.
    fn default() -> Self {
        Config {
            http_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            smtp: SmtpConfig {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                max_connections: 100,
                idle_timeout: Duration::from_secs(300),
                tls: None,
                auth: SmtpAuth::Optional,
            },
            pop3: Pop3Config {
                addr: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
                max_connections: 100,
                idle_timeout: Duration::from_secs(600),
            },
            imap: ImapConfig {
                addr: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
                max_connections: 100,
                idle_timeout: Duration::from_secs(30 * 60),
            },
            data: DataDir::Temporary,
            log: LogConfig {
                dir: None,
                filter: "info".into(),
                format: LogFormat::Text,
                rotation: LogRotation::Daily,
                keep: 7,
            },
            service: service::Settings {
                session_ttl: Duration::from_secs(24 * 3600),
                password_iterations: password::DEFAULT_ITERATIONS,
                max_recipients: 100,
                max_message_size: 10 << 20,
                max_messages: 0,
                min_free_space: 64 << 20,
                chaos: false,
                chaos_rules: Vec::new(),
            },
            max_body_size: 1 << 20,
            retention: Some(Duration::from_secs(7 * 86_400)),
            sweep_interval: Duration::from_secs(60),
            cache_size: 16 << 20,
            admin_token: None,
            ui: true,
            compat: CompatConfig {
                auth: CompatAuth::Token,
                mailhog_addr: None,
                mailpit_addr: None,
            },
        }
    }
}

impl Config {
    /// Builds the config of `fakemail serve`.
    ///
    /// # Errors
    /// [`ConfigError::NoDataDir`] when no data dir is given and none can be derived.
    pub fn from_serve(args: ServeArgs) -> Result<Config, ConfigError> {
        let data = if args.data.temporary {
            if args.data.data_dir.is_some() {
                return Err(ConfigError::TemporaryWithDataDir);
            }
            DataDir::Temporary
        } else {
            DataDir::Path(match args.data.data_dir {
                Some(dir) => dir,
                None => default_data_dir().ok_or(ConfigError::NoDataDir)?,
            })
        };
        Ok(Config {
            http_addr: SocketAddr::new(args.bind, args.port),
            smtp: SmtpConfig {
                addr: SocketAddr::new(args.bind, args.smtp.smtp_port),
                max_connections: args.smtp.smtp_max_connections as usize,
                idle_timeout: args.smtp.smtp_idle_timeout,
                tls: match (args.smtp.tls_cert, args.smtp.tls_key) {
                    (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                    // clap requires both or neither.
                    _ => None,
                },
                auth: args.smtp.smtp_auth,
            },
            pop3: Pop3Config {
                addr: args.pop3.pop3_port.0.map(|p| SocketAddr::new(args.bind, p)),
                max_connections: args.pop3.pop3_max_connections as usize,
                idle_timeout: args.pop3.pop3_idle_timeout,
            },
            imap: ImapConfig {
                addr: args.imap.imap_port.0.map(|p| SocketAddr::new(args.bind, p)),
                max_connections: args.imap.imap_max_connections as usize,
                idle_timeout: args.imap.imap_idle_timeout,
            },
            data,
            log: LogConfig::from(args.log),
            service: service::Settings {
                session_ttl: args.session_ttl,
                password_iterations: args.password_iterations,
                max_recipients: args.max_recipients as usize,
                max_message_size: args.max_message_size,
                max_messages: args.max_messages,
                min_free_space: args.min_free_space,
                chaos: args.chaos,
                chaos_rules: args.chaos_rule,
            },
            max_body_size: args.max_body_size,
            retention: match args.retention {
                Retention::Off => None,
                Retention::For(d) => Some(d),
            },
            sweep_interval: args.sweep_interval,
            cache_size: args.cache_size,
            admin_token: args.admin_token.filter(|t| !t.is_empty()),
            ui: !args.no_ui,
            compat: CompatConfig {
                auth: args.compat.compat_auth,
                mailhog_addr: args
                    .compat
                    .mailhog_port
                    .map(|p| SocketAddr::new(args.bind, p)),
                mailpit_addr: args
                    .compat
                    .mailpit_port
                    .map(|p| SocketAddr::new(args.bind, p)),
            },
        })
    }
}

impl From<LogArgs> for LogConfig {
    fn from(a: LogArgs) -> Self {
        LogConfig {
            dir: a.log_dir,
            filter: a.log_level,
            format: a.log_format,
            rotation: a.log_rotation,
            keep: a.log_keep as usize,
        }
    }
}

/// `$XDG_DATA_HOME/fakemail`, else `$HOME/.local/share/fakemail`.
pub fn default_data_dir() -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    non_empty("XDG_DATA_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| non_empty("HOME").map(|h| h.join(".local").join("share")))
        .map(|base| base.join("fakemail"))
}
