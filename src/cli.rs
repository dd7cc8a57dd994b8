//! The command line (clap derive). Every flag can also be set by a `FAKEMAIL_<FLAG>` variable;
//! values are parsed and range-checked here, so a bad flag is a usage error (exit status 2).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::service::chaos::RuleSpec;
use clap::{Args, Parser, Subcommand, ValueEnum};

// Values the rest of the library uses too live with their users; the command line names them.
pub use crate::config::{CompatAuth, SmtpAuth};
pub use crate::time::{parse_age, parse_duration};

/// A fake mail server for testing software that sends email.
///
/// fakemail accepts mail over SMTP and its REST API, keeps it in an embedded store and never
/// delivers anything to the real world. Run `fakemail serve` and point your application at it.
#[derive(Debug, Parser)]
#[command(
    name = "fakemail",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (REST API, web UI and SMTP) until SIGINT or SIGTERM.
    ///
    /// It prints the addresses of the HTTP API, the web UI and the SMTP listener, the data
    /// directory, the log directory and where the admin token is, then logs to standard error
    /// and to rotating files. It writes `server.json` and, unless --admin-token is given, `admin-token` into the
    /// data directory. Unless --retention is off and there is no --max-messages, it deletes
    /// expired messages and those beyond the cap at start-up and then every --sweep-interval.
    ///
    /// Run by systemd with NOTIFY_SOCKET set (a Type=notify unit), it sends READY=1 once every
    /// listener is bound and STOPPING=1 when it begins to shut down. On SIGINT or SIGTERM it
    /// stops accepting connections, lets in-flight requests and SMTP messages finish for at most
    /// 10 seconds (an SMTP session gets 421 at its next command), flushes the store and exits
    /// with status 0.
    Serve(Box<ServeArgs>),
    /// Delete messages older than a given age, from a stopped store or through a running server.
    ///
    /// It deletes every message received more than --older-than ago, with all its copies in
    /// every user's mailboxes, and prints how many messages and bytes went, e.g. `deleted 4
    /// messages, 1635 bytes`. When no server uses the data directory, it opens the store itself
    /// and, on a terminal, shows a running total while it takes long. When a `fakemail serve`
    /// holds the data directory, it asks that server to do it (POST /api/v1/admin/purge), at the
    /// address and with the admin token in `server.json`, or the one given with --admin-token;
    /// the line printed then ends with `(through the running server at URL)`.
    Purge(PurgeArgs),
    /// Wait until a server answers ready (GET /readyz); exit status 1 if none does in time.
    ///
    /// It asks GET /readyz several times a second until it answers 200, then prints `fakemail at
    /// URL is ready` and exits with status 0; it exits with status 1 and a message naming the
    /// address and the last error if none does within --wait. Without --url, it asks the address
    /// in the data directory's `server.json` while the process named there runs, else
    /// http://127.0.0.1:8025; with an explicit data directory (--data-dir or FAKEMAIL_DATA_DIR)
    /// there is no such fallback, and it waits for that directory's server to write
    /// `server.json`. Meant for scripts that start `fakemail serve` in the background.
    Ready(ReadyArgs),
    /// Print a shell completion script to standard output.
    Completions(CompletionsArgs),
}

/// Options of `fakemail ready`.
#[derive(Debug, Args)]
pub struct ReadyArgs {
    /// Base URL of the server [default: the one in <data-dir>/server.json of a running server,
    /// else http://127.0.0.1:8025].
    ///
    /// Plain http:// only, e.g. http://127.0.0.1:2525.
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub url: Option<String>,

    /// How long to keep trying, e.g. `10s`, `2m`; `0s` tries once.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,

    /// Wait for the server of this data directory, as its server.json tells, with no fallback
    /// to http://127.0.0.1:8025; ignored with --url [default: $XDG_DATA_HOME/fakemail, else
    /// ~/.local/share/fakemail].
    #[arg(long, env = "FAKEMAIL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Options of `fakemail completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script of `fakemail` for `shell`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "fakemail", out);
}

/// Options of `fakemail purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete every message received more than this long ago, in whole seconds, e.g. `7d`, `12h`,
    /// `0s` (all).
    ///
    /// Messages are stamped to the second, so the age must be whole seconds: a value such as
    /// `500ms` is a usage error.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: Duration,

    /// Data directory [default: $XDG_DATA_HOME/fakemail, else ~/.local/share/fakemail].
    ///
    /// The data directory of the store, or of the running server, to purge. It must exist and
    /// hold a store: purge never makes one.
    #[arg(long, env = "FAKEMAIL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Only report what would be deleted.
    ///
    /// Nothing is deleted; the line printed says what would be, e.g. `would delete 4 messages,
    /// 1635 bytes`.
    #[arg(long)]
    pub dry_run: bool,

    /// Admin token of a running server [default: the one it wrote into <data-dir>/server.json].
    #[arg(
        long,
        env = "FAKEMAIL_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

/// Options of `fakemail serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// IP address to listen on, for the HTTP API, SMTP, IMAP and POP3.
    ///
    /// `0.0.0.0` or `::` listens on every interface.
    #[arg(
        long,
        env = "FAKEMAIL_BIND",
        default_value = "127.0.0.1",
        value_name = "ADDR"
    )]
    pub bind: IpAddr,

    /// HTTP port; 0 picks a free port (the bound address is printed and logged).
    #[arg(long, env = "FAKEMAIL_PORT", default_value_t = 8025)]
    pub port: u16,

    #[command(flatten)]
    pub smtp: SmtpArgs,

    #[command(flatten)]
    pub imap: ImapArgs,

    #[command(flatten)]
    pub pop3: Pop3Args,

    #[command(flatten)]
    pub data: DataArgs,

    #[command(flatten)]
    pub compat: CompatArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// How long a login token stays valid, e.g. `24h`, `30m`, `7d`.
    ///
    /// Expired sessions are removed at start-up and then every minute.
    #[arg(long, env = "FAKEMAIL_SESSION_TTL", default_value = "24h", value_name = "DURATION",
          value_parser = parse_positive_duration)]
    pub session_ttl: Duration,

    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (at least 1000).
    ///
    /// Lower it only for test suites that register many accounts. Stored hashes keep their own
    /// count, so changing it never breaks logins.
    #[arg(long, env = "FAKEMAIL_PASSWORD_ITERATIONS", default_value_t = 600_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1000..))]
    pub password_iterations: u32,

    /// Largest JSON request body of the account and mailbox endpoints, e.g. `1MiB`.
    ///
    /// A size is a number with an optional unit: `B`, `KiB`, `MiB` or `GiB` (also written `KB`,
    /// `MB`, `GB`, `k`, `m`, `g`; all are binary multiples). A larger body gets HTTP status 413.
    /// Sending a message (POST /api/v1/messages) may take --max-message-size plus this much.
    #[arg(long, env = "FAKEMAIL_MAX_BODY_SIZE", default_value = "1MiB", value_name = "SIZE",
          value_parser = parse_size)]
    pub max_body_size: u64,

    /// Largest message accepted, as RFC 5322 source, e.g. `10MiB`.
    ///
    /// Over the REST API it is measured as the source fakemail builds (headers and encoded
    /// bodies, so non-ASCII text counts up to about three times its size in UTF-8), and a larger
    /// message gets HTTP status 413. SMTP announces it as SIZE, and answers 552 to a larger
    /// message or a larger SIZE=. Units as for --max-body-size.
    #[arg(long, env = "FAKEMAIL_MAX_MESSAGE_SIZE", default_value = "10MiB", value_name = "SIZE",
          value_parser = parse_size)]
    pub max_message_size: u64,

    /// Most recipients (to + cc + bcc) of one message.
    ///
    /// At least 1. Over SMTP, a RCPT beyond it is answered 452.
    #[arg(long, env = "FAKEMAIL_MAX_RECIPIENTS", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_recipients: u32,

    /// Delete messages this long after they arrive, in whole seconds, e.g. `7d`, `12h`; `0` or
    /// `off` keeps them.
    ///
    /// Every message is deleted with all its copies, its age counted from when fakemail received
    /// it; `fakemail purge` deletes older messages on demand.
    #[arg(long, env = "FAKEMAIL_RETENTION", default_value = "7d", value_name = "DURATION|off",
          value_parser = parse_retention)]
    pub retention: Retention,

    /// How often the sweeper applies --retention and --max-messages (it also runs at start-up).
    ///
    /// An expired message is deleted within about this long. It must be greater than zero.
    #[arg(long, env = "FAKEMAIL_SWEEP_INTERVAL", default_value = "1m", value_name = "DURATION",
          value_parser = parse_positive_duration)]
    pub sweep_interval: Duration,

    /// Keep at most this many messages, deleting the oldest beyond it after each delivery and at
    /// every sweep (0: no cap).
    ///
    /// The oldest go with all their copies, never the message just delivered. Since the sweeper
    /// enforces it too, a lower cap takes effect at start-up. A message sent to several
    /// recipients counts once.
    #[arg(
        long,
        env = "FAKEMAIL_MAX_MESSAGES",
        default_value_t = 0,
        value_name = "N"
    )]
    pub max_messages: u64,

    /// Refuse new mail while the data dir's filesystem has less free space than this, e.g.
    /// `64MiB`; `0` turns the check off.
    ///
    /// SMTP then answers 452 4.3.1 (at MAIL and after DATA), a REST or Mailpit send HTTP 507
    /// `storage_full`, IMAP APPEND `NO [OVERQUOTA]`, and /readyz 507; stored mail can still be
    /// read. New mail is taken again by itself once there is room. Keep it well above the
    /// largest message (see --max-message-size), so that the store never meets a full disk in
    /// the middle of a write. Units as for --max-body-size.
    #[arg(long, env = "FAKEMAIL_MIN_FREE_SPACE", default_value = "64MiB", value_name = "SIZE",
          value_parser = parse_size_or_zero)]
    pub min_free_space: u64,

    /// Memory for the store's page cache, e.g. `16MiB`.
    ///
    /// Units as for --max-body-size.
    #[arg(long, env = "FAKEMAIL_CACHE_SIZE", default_value = "16MiB", value_name = "SIZE",
          value_parser = parse_size)]
    pub cache_size: u64,

    /// Allow fault injection: without it the chaos endpoints answer 403 `chaos_disabled`.
    ///
    /// Faults come from the chaos endpoints of the admin API and from --chaos-rule. The variable
    /// takes true/false, yes/no, 1/0.
    #[arg(long, env = "FAKEMAIL_CHAOS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub chaos: bool,

    /// A fault-injection rule to start with (repeatable; needs --chaos).
    ///
    /// A rule is STAGE:PART[:PART...]. Stages: `connect`, `ehlo`, `auth`, `mail`, `rcpt`,
    /// `data`, and `api_send` (REST send). Parts: a reply code (`451`), an enhanced status code
    /// (`4.3.0`), `delay=DURATION`, `disconnect`, `throttle=BYTES_PER_SECOND`, a probability
    /// (`50%`), `next=N`, `max_per_minute=N`, `from=GLOB`, `to=GLOB`, `seed=N`, and last
    /// `text=TEXT`.
    ///
    /// Rules are tried in order; the first that fires wins. Over SMTP a rule is asked once a
    /// command is valid and in sequence, just before it would succeed; `data` rules act at the
    /// DATA command, before its 354, and a throttle paces the body that follows. A 421 reply
    /// closes the connection; `disconnect` closes it with no reply. Injected faults are logged
    /// and counted in the admin stats.
    ///
    /// Examples: `rcpt:451:4.3.0:50%`, `data:delay=2s`, `connect:disconnect:next=3`. The
    /// variable takes several rules separated by `;`.
    #[arg(long, env = "FAKEMAIL_CHAOS_RULE", value_name = "RULE", requires = "chaos",
          value_delimiter = ';', value_parser = parse_chaos_rule)]
    pub chaos_rule: Vec<RuleSpec>,

    /// Token for the admin endpoints [default: random, kept in <data-dir>/admin-token].
    ///
    /// The bearer token of the endpoints under /api/v1/admin/: the purge `fakemail purge` uses,
    /// and the operator view of all mail. Without it, the server uses the token in
    /// <data-dir>/admin-token, making a random one (mode 0600) on its first start; with it, that
    /// file is not used. Either way the server writes the token it takes into
    /// <data-dir>/server.json (mode 0600), where `fakemail purge` finds it.
    #[arg(
        long,
        env = "FAKEMAIL_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Serve no web UI: `/`, `/admin` and `/ui/...` then answer 404 like any unknown path.
    ///
    /// The web UI is a user's mail at `/` and the operator's view of all mail at `/admin`,
    /// both clients of the REST API, which stays as it is. The variable takes true/false,
    /// yes/no, 1/0.
    #[arg(long, env = "FAKEMAIL_NO_UI", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_ui: bool,
}

/// How long messages are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep messages forever.
    Off,
    /// Delete messages this long after they arrive.
    For(Duration),
}

/// `off`, `0`, or a positive humantime duration in whole seconds.
pub fn parse_retention(s: &str) -> Result<Retention, String> {
    match s.trim() {
        "off" | "0" | "none" => Ok(Retention::Off),
        other => match parse_age(other)? {
            d if d.is_zero() => Ok(Retention::Off),
            d => Ok(Retention::For(d)),
        },
    }
}

/// The SMTP listener.
#[derive(Debug, Args)]
pub struct SmtpArgs {
    /// SMTP port, on the same address as the HTTP API; 0 picks a free port (the bound address
    /// is printed and logged).
    #[arg(
        long,
        env = "FAKEMAIL_SMTP_PORT",
        default_value_t = 1025,
        value_name = "PORT"
    )]
    pub smtp_port: u16,

    /// Most SMTP connections served at once; more are answered 421 and closed.
    #[arg(long, env = "FAKEMAIL_SMTP_MAX_CONNECTIONS", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub smtp_max_connections: u32,

    /// How long an SMTP client may stay silent before it is answered 421 and disconnected.
    #[arg(long, env = "FAKEMAIL_SMTP_IDLE_TIMEOUT", default_value = "5m", value_name = "DURATION",
          value_parser = parse_positive_duration)]
    pub smtp_idle_timeout: Duration,

    /// SMTP AUTH (PLAIN, LOGIN) against fakemail accounts.
    ///
    /// A client authenticates with an account's address and password. A wrong password is
    /// answered 535; after 5 failures for one address within 15 minutes, 454. AUTH is accepted
    /// without TLS too.
    #[arg(long, env = "FAKEMAIL_SMTP_AUTH", value_enum, value_name = "MODE",
          default_value_t = SmtpAuth::Optional)]
    pub smtp_auth: SmtpAuth,

    /// PEM file with the certificate chain (leaf first) for SMTP STARTTLS; needs --tls-key
    /// [default: a self-signed certificate made at start-up].
    ///
    /// The self-signed certificate is made at each start-up for `localhost`, the loopback
    /// addresses and the --bind address.
    #[arg(
        long,
        env = "FAKEMAIL_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "FAKEMAIL_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// The POP3 listener.
#[derive(Debug, Args)]
pub struct Pop3Args {
    /// POP3 port, on the --bind address; 0 picks a free port (the bound address is printed and
    /// logged); `off` serves no POP3.
    ///
    /// Account holders read their `inbox` with their address and password (USER/PASS or AUTH
    /// PLAIN, without TLS too; STLS with the SMTP certificate). Failed logins count against
    /// the same limit as the REST login.
    #[arg(long, env = "FAKEMAIL_POP3_PORT", default_value = "1110", value_name = "PORT",
          value_parser = parse_port_or_off)]
    pub pop3_port: OptionalPort,

    /// Most POP3 connections served at once; more are answered -ERR and closed.
    #[arg(long, env = "FAKEMAIL_POP3_MAX_CONNECTIONS", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pop3_max_connections: u32,

    /// How long a POP3 client may stay silent before it is answered -ERR and disconnected,
    /// deleting nothing (RFC 1939 asks for at least 10 minutes).
    #[arg(long, env = "FAKEMAIL_POP3_IDLE_TIMEOUT", default_value = "10m", value_name = "DURATION",
          value_parser = parse_positive_duration)]
    pub pop3_idle_timeout: Duration,
}

/// The IMAP listener.
#[derive(Debug, Args)]
pub struct ImapArgs {
    /// IMAP port, on the --bind address; 0 picks a free port (the bound address is printed
    /// and logged), `off` serves no IMAP.
    ///
    /// Mail clients log in with an account's address and password (LOGIN or AUTHENTICATE
    /// PLAIN, with or without STARTTLS, which uses the SMTP certificate).
    #[arg(long, env = "FAKEMAIL_IMAP_PORT", default_value = "1143", value_name = "PORT",
          value_parser = parse_port_or_off)]
    pub imap_port: OptionalPort,

    /// Most IMAP connections served at once; more are answered `* BYE` and closed.
    #[arg(long, env = "FAKEMAIL_IMAP_MAX_CONNECTIONS", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub imap_max_connections: u32,

    /// How long an IMAP client may stay silent (idling included) before it is logged out;
    /// RFC 9051 asks for at least 30 minutes.
    #[arg(long, env = "FAKEMAIL_IMAP_IDLE_TIMEOUT", default_value = "30m", value_name = "DURATION",
          value_parser = parse_positive_duration)]
    pub imap_idle_timeout: Duration,
}

/// The MailHog- and Mailpit-compatible APIs.
#[derive(Debug, Args)]
pub struct CompatArgs {
    /// Who may use the MailHog and Mailpit APIs.
    ///
    /// Both show all captured mail, like the operator view. `token` asks for the admin token,
    /// as the password of HTTP Basic auth (any user name) or as a Bearer token; a wrong or
    /// missing one is answered 401 with `WWW-Authenticate: Basic`. `none` opens them without
    /// credentials, for a trusted machine; with a --bind that is not a loopback address, a
    /// warning is logged at start-up.
    #[arg(long, env = "FAKEMAIL_COMPAT_AUTH", value_enum, value_name = "MODE",
          default_value_t = CompatAuth::Token)]
    pub compat_auth: CompatAuth,

    /// Serve the MailHog API at the root of a listener of its own on this port, on the --bind
    /// address; 0 picks a free port (the bound address is printed and logged) [default: off].
    ///
    /// For clients that take only a host and a port. The MailHog API is always served under
    /// `/mailhog/` on the HTTP port.
    #[arg(long, env = "FAKEMAIL_MAILHOG_PORT", value_name = "PORT")]
    pub mailhog_port: Option<u16>,

    /// Serve the Mailpit API at the root of a listener of its own on this port, on the --bind
    /// address; 0 picks a free port (the bound address is printed and logged) [default: off].
    ///
    /// For clients that take only a host and a port. The Mailpit API is always served under
    /// `/mailpit/` on the HTTP port.
    #[arg(long, env = "FAKEMAIL_MAILPIT_PORT", value_name = "PORT")]
    pub mailpit_port: Option<u16>,
}

/// Where the data lives.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data directory [default: $XDG_DATA_HOME/fakemail, else ~/.local/share/fakemail].
    ///
    /// The directory of the store; only one server can use it at a time. The default needs
    /// XDG_DATA_HOME set to an absolute path, or else HOME. Cannot be combined with --temporary.
    #[arg(long, env = "FAKEMAIL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Use a throwaway store in a new temporary directory, removed on exit (for test runs).
    ///
    /// Cannot be combined with --data-dir. The variable takes true/false, yes/no, 1/0.
    #[arg(long, env = "FAKEMAIL_TEMPORARY", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub temporary: bool,
}

/// Log output.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Directory for the rotating log files [default: <data-dir>/logs].
    ///
    /// It is created if needed; if it cannot be written, fakemail does not start.
    #[arg(long, env = "FAKEMAIL_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Log filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or tracing directives such
    /// as `info,fakemail=debug`. Per-request access lines are logged at `debug`.
    #[arg(long, env = "FAKEMAIL_LOG_LEVEL", default_value = "info", value_name = "FILTER",
          value_parser = parse_filter)]
    pub log_level: String,

    /// Format of log lines, on stderr and in the files.
    #[arg(long, env = "FAKEMAIL_LOG_FORMAT", value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// When to start a new log file.
    #[arg(long, env = "FAKEMAIL_LOG_ROTATION", value_enum, value_name = "PERIOD", default_value_t = LogRotation::Daily)]
    pub log_rotation: LogRotation,

    /// How many log files to keep (at least 1); older ones are deleted.
    #[arg(long, env = "FAKEMAIL_LOG_KEEP", default_value_t = 7, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub log_keep: u32,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Log file rotation period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogRotation {
    /// A file a day, `fakemail.YYYY-MM-DD.log`.
    Daily,
    /// A file an hour, `fakemail.YYYY-MM-DD-HH.log`.
    Hourly,
    /// One file, `fakemail.log`, never rotated.
    Never,
}

/// A humantime duration greater than zero (`90s`, `15m`, `24h`, `7d`).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (examples: 30s, 15m, 24h, 7d)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// The port of a listener that can be turned off: `None` for `off`. (A type of its own:
/// clap would take an `Option` field for a flag that may be left out.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalPort(pub Option<u16>);

/// A port number, or `off`.
pub fn parse_port_or_off(s: &str) -> Result<OptionalPort, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(OptionalPort(None));
    }
    s.parse::<u16>()
        .map(|p| OptionalPort(Some(p)))
        .map_err(|_| format!("`{s}` is neither a port number (0 to 65535) nor `off`"))
}

/// A byte size: a number with an optional unit, `B`, `KiB`/`KB`/`k`, `MiB`/`MB`/`m`, `GiB`/`GB`/`g`
/// (all binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 512KiB or 10MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

/// `0`, or a size as [`parse_size`] reads it.
pub fn parse_size_or_zero(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_size(s)
}

/// A plain `http://host:port` base URL, without a trailing slash.
pub fn parse_http_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{s}` is not an http:// URL (e.g. http://127.0.0.1:8025)"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{s}` has no host"));
    }
    Ok(s.to_owned())
}

fn parse_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a log level or filter: {e}"))
}

/// A fault-injection rule in its text form (see `--chaos-rule`).
pub fn parse_chaos_rule(s: &str) -> Result<RuleSpec, String> {
    RuleSpec::parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("10 mb"), Ok(10 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_size_or_zero("0"), Ok(0));
        assert_eq!(parse_size_or_zero("64MiB"), Ok(64 << 20));
        assert!(parse_size_or_zero("0x").is_err());
        assert!(parse_size_or_zero("-1").is_err());
        assert_eq!(
            parse_positive_duration("7d"),
            Ok(Duration::from_secs(7 * 86_400))
        );
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("soon").is_err());
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_retention("off"), Ok(Retention::Off));
        assert_eq!(parse_retention("0s"), Ok(Retention::Off));
        assert_eq!(
            parse_retention("2s"),
            Ok(Retention::For(Duration::from_secs(2)))
        );
        assert!(parse_retention("later").is_err());
        assert_eq!(
            parse_http_url("http://127.0.0.1:8025/").as_deref(),
            Ok("http://127.0.0.1:8025")
        );
        assert!(parse_http_url("https://example.test").is_err());
        assert!(parse_http_url("http://").is_err());
        assert!(parse_http_url("127.0.0.1:8025").is_err());
        assert!(
            parse_retention("500ms").is_err(),
            "0s, everything, if rounded down"
        );
        assert!(parse_retention("1500ms").is_err());
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_age("2000ms"), Ok(Duration::from_secs(2)));
        assert!(
            parse_age("500ms")
                .unwrap_err()
                .contains("whole number of seconds")
        );
        assert!(parse_age("1s 1ns").is_err());
    }
}
